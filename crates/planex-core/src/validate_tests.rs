use super::*;
use crate::test_support::catalog;
use serde_json::json;

fn limits(max_steps: usize) -> PlanLimits {
    PlanLimits { max_steps }
}

fn validate(v: Value) -> Result<Plan, PlanError> {
    Plan::from_value(v, &catalog(), PlanLimits::default())
}

fn refused(v: Value) -> PlanError {
    match validate(v) {
        Ok(plan) => panic!("plan should have been refused: {plan:?}"),
        Err(e) => e,
    }
}

fn search(id: u32, deps: &[u32]) -> Value {
    json!({"step_id": id, "tool_name": "web_search", "args": {"query": format!("q{id}")}, "depends_on": deps})
}

fn summarize(id: u32, text: &str, deps: &[u32]) -> Value {
    json!({"step_id": id, "tool_name": "summarize", "args": {"text": text}, "depends_on": deps})
}

fn fan_out() -> Value {
    json!({"task": "compare GPU clouds", "steps": [
        search(1, &[]), search(2, &[]), search(3, &[]),
        summarize(4, "{step_1_result}\n{step_2_result}\n{step_3_result.items.0}", &[1, 2, 3]),
    ]})
}

fn assert_names(err: &PlanError, parts: &[&str]) {
    let msg = err.to_string();
    for part in parts {
        assert!(msg.contains(part), "message {msg:?} should name {part:?}");
    }
}

#[test]
fn valid_fan_out_plan_passes() {
    let plan = validate(fan_out()).map_err(|e| e.to_string());
    let Ok(plan) = plan else { panic!("{plan:?}") };
    assert_eq!(plan.task, "compare GPU clouds");
    assert_eq!(plan.steps.len(), 4);
    assert_eq!(
        plan.steps[3].depends_on,
        vec![StepId(1), StepId(2), StepId(3)]
    );
}

#[test]
fn fenced_json_is_accepted_and_task_defaults_to_empty() {
    let text = format!(
        "\n ```json\n{}\n```  \n",
        json!({"steps": [search(1, &[])]})
    );
    let plan = Plan::parse(&text, &catalog(), limits(4)).map_err(|e| e.to_string());
    assert_eq!(
        plan.map(|p| (p.task, p.steps.len())),
        Ok((String::new(), 1))
    );
}

#[test]
fn invalid_json_is_a_shape_error() {
    let err = Plan::parse("{\"steps\": [", &catalog(), limits(4)).err();
    assert!(matches!(err, Some(PlanError::Shape { .. })), "{err:?}");
}

#[test]
fn shape_errors_name_the_json_path() {
    let err = refused(
        json!({"steps": [search(1, &[]), search(2, &[]), {"step_id": 3, "tool_name": "x", "args": {}, "depends_on": [0]}]}),
    );
    assert!(matches!(err, PlanError::Shape { .. }));
    assert_names(
        &err,
        &["steps[2].depends_on[0]: expected a positive integer"],
    );

    let err =
        refused(json!({"steps": [{"step_id": 1, "tool_name": "web_search", "depends_on": []}]}));
    assert_names(&err, &["steps[0].args: missing"]);
    let err = refused(json!({"steps": [], "extra": 1}));
    assert_names(&err, &["unknown field \"extra\""]);
    let err = refused(
        json!({"steps": [{"step_id": 1, "tool_name": "web_search", "args": {}, "why": "x"}]}),
    );
    assert_names(&err, &["steps[0]", "\"why\""]);
    let err = refused(json!({"steps": [{"step_id": "1", "tool_name": "web_search", "args": {}}]}));
    assert_names(&err, &["steps[0].step_id"]);
    let err = refused(json!([1]));
    assert!(matches!(err, PlanError::Shape { .. }));
}

#[test]
fn depends_on_may_be_omitted_and_repeats_merge() {
    let plan = validate(json!({"steps": [
        {"step_id": 1, "tool_name": "web_search", "args": {"query": "a"}},
        summarize(2, "{step_1_result}", &[1, 1]),
    ]}));
    let deps: Vec<Vec<StepId>> = plan
        .map(|p| p.steps.into_iter().map(|s| s.depends_on).collect())
        .unwrap_or_default();
    assert_eq!(deps, vec![vec![], vec![StepId(1)]]);
}

#[test]
fn empty_plan() {
    let err = refused(json!({"steps": []}));
    assert_eq!(err, PlanError::Empty);
    assert_names(&err, &["no steps"]);
}

#[test]
fn too_many_steps() {
    let err = Plan::from_value(fan_out(), &catalog(), limits(3)).err();
    assert_eq!(err, Some(PlanError::TooManySteps { count: 4, max: 3 }));
    assert_names(
        &PlanError::TooManySteps { count: 4, max: 3 },
        &["4 steps", "at most 3"],
    );
}

#[test]
fn duplicate_step_id() {
    let err = refused(json!({"steps": [search(1, &[]), search(2, &[]), search(2, &[])]}));
    assert_eq!(err, PlanError::DuplicateStepId { step_id: StepId(2) });
    assert_names(&err, &["step_id 2"]);
}

#[test]
fn unknown_tool_lists_known_tools() {
    let err = refused(
        json!({"steps": [search(1, &[]), {"step_id": 2, "tool_name": "translate", "args": {}, "depends_on": [1]}]}),
    );
    assert!(
        matches!(&err, PlanError::UnknownTool { step_id: StepId(2), tool, known } if tool == "translate" && known.len() == 3)
    );
    assert_names(
        &err,
        &["step 2", "\"translate\"", "extract, summarize, web_search"],
    );
}

#[test]
fn args_must_match_the_schema() {
    let err = refused(
        json!({"steps": [{"step_id": 1, "tool_name": "web_search", "args": {"query": 42}, "depends_on": []}]}),
    );
    assert!(
        matches!(&err, PlanError::InvalidArgs { step_id: StepId(1), tool, errors } if tool == "web_search" && errors.len() == 1)
    );
    assert_names(&err, &["step 1", "web_search", "/query"]);
}

#[test]
fn placeholders_are_plain_strings_for_the_schema() {
    let plan = validate(json!({"steps": [search(1, &[]),
        {"step_id": 2, "tool_name": "web_search", "args": {"query": "{step_1_result.best}"}, "depends_on": [1]}]}));
    assert!(plan.is_ok(), "{plan:?}");
}

#[test]
fn unknown_dependency() {
    let err = refused(json!({"steps": [search(1, &[]), summarize(2, "x", &[1, 9])]}));
    assert_eq!(
        err,
        PlanError::UnknownDependency {
            step_id: StepId(2),
            missing: StepId(9)
        }
    );
    assert_names(&err, &["step 2", "step 9"]);
}

#[test]
fn self_dependency_is_a_cycle() {
    let err = refused(json!({"steps": [search(1, &[]), summarize(2, "x", &[1, 2])]}));
    assert_eq!(
        err,
        PlanError::Cycle {
            cycle: vec![StepId(2), StepId(2)]
        }
    );
    assert_names(&err, &["step 2 -> step 2"]);
}

#[test]
fn placeholder_must_name_a_dependency() {
    let err = refused(
        json!({"steps": [search(1, &[]), search(2, &[]), summarize(3, "{step_1_result} {step_2_result}", &[1])]}),
    );
    assert_eq!(
        err,
        PlanError::PlaceholderNotInDependsOn {
            step_id: StepId(3),
            referenced: StepId(2)
        }
    );
    assert_names(
        &err,
        &[
            "step 3",
            "{step_2_result}",
            "step 2 is not in its depends_on",
        ],
    );
}

#[test]
fn cycle_is_reported_in_order() {
    let err = refused(
        json!({"steps": [search(1, &[]), summarize(2, "x", &[1, 3]), summarize(3, "y", &[2]), summarize(4, "z", &[3])]}),
    );
    assert_eq!(
        err,
        PlanError::Cycle {
            cycle: vec![StepId(2), StepId(3), StepId(2)]
        }
    );
    assert_names(&err, &["step 2 -> step 3 -> step 2"]);
}

#[test]
fn later_dependencies_are_fine_in_a_whole_plan() {
    let plan = validate(json!({"steps": [summarize(2, "{step_1_result}", &[1]), search(1, &[])]}));
    assert!(plan.is_ok(), "{plan:?}");
}

#[test]
fn builder_happy_path() {
    let c = catalog();
    let mut b = PlanBuilder::new("t", &c, limits(4));
    assert!(b.is_empty());
    let Value::Object(plan) = fan_out() else {
        panic!("fixture")
    };
    for step in plan["steps"].as_array().cloned().unwrap_or_default() {
        let id = step["step_id"].clone();
        let accepted = b.push(step).map(|s| s.step_id.0);
        assert_eq!(accepted.ok().map(Value::from), Some(id));
    }
    assert_eq!(b.len(), 4);
    let built = b.finish().map_err(|e| e.to_string());
    let whole = validate(fan_out()).map_err(|e| e.to_string());
    assert_eq!(built.map(|p| p.steps), whole.map(|p| p.steps));
}

#[test]
fn builder_refuses_forward_dependency_and_stays_unchanged() {
    let c = catalog();
    let mut b = PlanBuilder::new("t", &c, limits(4));
    assert!(b.push(search(1, &[])).is_ok());
    let err = b.push(summarize(2, "{step_3_result}", &[3])).err();
    let Some(err) = err else {
        panic!("forward dependency must be refused")
    };
    assert_eq!(
        err,
        PlanError::ForwardDependency {
            step_id: StepId(2),
            dependency: StepId(3)
        }
    );
    assert_names(&err, &["step 2", "step 3"]);
    assert_eq!(b.len(), 1);
    assert_eq!(
        b.push(search(1, &[])).err(),
        Some(PlanError::DuplicateStepId { step_id: StepId(1) })
    );
    assert!(matches!(
        b.push(summarize(2, "x", &[2])).err(),
        Some(PlanError::Cycle { .. })
    ));
}

#[test]
fn builder_limits_and_empty() {
    let c = catalog();
    assert_eq!(
        PlanBuilder::new("t", &c, limits(1)).finish().err(),
        Some(PlanError::Empty)
    );
    let mut b = PlanBuilder::new("t", &c, limits(1));
    assert!(b.push(search(1, &[])).is_ok());
    assert_eq!(
        b.push(search(2, &[])).err(),
        Some(PlanError::TooManySteps { count: 2, max: 1 })
    );
    let err = b
        .push(json!({"step_id": 2, "tool_name": "web_search"}))
        .err();
    assert!(
        matches!(&err, Some(PlanError::Shape { detail, .. }) if detail.starts_with("steps[1]")),
        "{err:?}"
    );
}

#[test]
fn serialized_plan_round_trips_through_validation() {
    let plan = validate(fan_out()).map_err(|e| e.to_string());
    let again = plan.clone().and_then(|p| {
        let value = serde_json::to_value(&p).map_err(|e| e.to_string())?;
        validate(value).map_err(|e| e.to_string())
    });
    assert_eq!(again, plan);
}

/// Regression: a step id of 4294967295 (u32::MAX) was accepted, so the synthesis step's id (one
/// past the highest) wrapped to 0.
#[test]
fn a_step_id_that_leaves_no_room_for_the_synthesis_id_is_refused() {
    let err = refused(json!({"steps": [search(1, &[]), search(4_294_967_295, &[1])]}));
    assert_eq!(err.rule(), "step_id_out_of_range");
    assert_eq!(err.step_index(), Some(1));
    assert_names(&err, &["steps[1].step_id", "4294967295", "4294967294"]);
    let err = refused(
        json!({"steps": [search(2, &[]), {"step_id": 3, "tool_name": "web_search",
        "args": {"query": "q"}, "depends_on": [5_000_000_000u64]}]}),
    );
    assert_eq!(err.rule(), "step_id_out_of_range");
    assert_names(&err, &["steps[1].depends_on[0]", "5000000000"]);
    // The highest id allowed is accepted.
    let top = validate(json!({"steps": [search(StepId::MAX.0, &[])]}));
    assert!(top.is_ok(), "{top:?}");
    // Zero and negative ids stay shape errors, naming the step by position.
    let err = refused(
        json!({"steps": [search(1, &[]), {"step_id": -3, "tool_name": "web_search",
        "args": {"query": "q"}, "depends_on": []}]}),
    );
    assert_eq!((err.rule(), err.step_index()), ("shape", Some(1)));
}

#[test]
fn details_name_the_rule_and_the_step() {
    let err = refused(json!({"steps": [search(1, &[]), summarize(2, "{step_1_result}", &[])]}));
    assert_eq!(
        err.details(),
        json!({"rule": "placeholder_not_in_depends_on", "step_id": 2, "step_index": null,
               "error": err.to_string(), "referenced": 1})
    );
    let err = refused(json!({"steps": [{"step_id": 1, "tool_name": "nope", "args": {}}]}));
    assert_eq!(err.details()["tool"], "nope");
    assert!(
        err.details()["known"]
            .as_array()
            .is_some_and(|k| !k.is_empty())
    );
    let err = refused(json!({"steps": [search(1, &[2]), search(2, &[1])]}));
    assert_eq!((err.rule(), err.step_id()), ("cycle", Some(StepId(1))));
    assert_eq!(
        refused(json!({"steps": []})).details()["step_id"],
        Value::Null
    );
}

#[test]
fn a_lone_step_is_checked_by_every_rule_that_needs_no_other_step() {
    let c = catalog();
    let ok = Step::validate(summarize(3, "{step_1_result.items.0}", &[1]), &c);
    assert_eq!(ok.map(|s| s.depends_on), Ok(vec![StepId(1)]));
    let rule = |v: Value| Step::validate(v, &c).err().map(|e| e.rule());
    assert_eq!(
        rule(summarize(3, "{step_2_result}", &[1])),
        Some("placeholder_not_in_depends_on")
    );
    assert_eq!(rule(summarize(3, "x", &[3])), Some("cycle"));
    assert_eq!(
        rule(json!({"step_id": 1, "tool_name": "nope", "args": {}})),
        Some("unknown_tool")
    );
    assert_eq!(
        rule(json!({"step_id": 1, "tool_name": "web_search", "args": {"query": 7}})),
        Some("invalid_args")
    );
    assert_eq!(
        rule(
            json!({"step_id": 4_294_967_295u64, "tool_name": "web_search", "args": {"query": "q"}})
        ),
        Some("step_id_out_of_range")
    );
    let shape = Step::validate(
        json!({"step_id": 1, "tool_name": "web_search", "args": []}),
        &c,
    );
    assert!(
        matches!(&shape, Err(PlanError::Shape { detail, step_index: None }) if detail.starts_with("step.args")),
        "{shape:?}"
    );
}

#[test]
fn only_client_plans_serialize_their_source() {
    let mut plan = validate(fan_out()).unwrap();
    assert_eq!(plan.source, PlanSource::Planner);
    assert!(serde_json::to_value(&plan).unwrap().get("source").is_none());
    plan.source = PlanSource::Client;
    assert_eq!(serde_json::to_value(&plan).unwrap()["source"], "client");
}
