#![allow(clippy::unwrap_used, clippy::panic)]
use super::*;
use crate::check::check_steps;
use crate::error::StoreError;
use serde_json::json;

/// `StepSpec` as it was before it wrapped a core `Step`: the shape specs of running tasks are
/// stored in (as JSON strings in Redis), which every later version must keep reading and writing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct StepSpecV1 {
    step_id: StepId,
    tool_name: String,
    args: serde_json::Map<String, serde_json::Value>,
    depends_on: Vec<StepId>,
    tier: String,
    stage: Stage,
    #[serde(default)]
    tolerate_failed_deps: bool,
}

fn summarize_spec() -> StepSpec {
    let mut args = serde_json::Map::new();
    args.insert("text".into(), json!("{step_1_result} and {step_2_result}"));
    args.insert("style".into(), json!({"bullets": true, "max": 3}));
    StepSpec {
        step: Step {
            step_id: StepId(3),
            tool_name: "summarize".into(),
            args,
            depends_on: vec![StepId(1), StepId(2)],
        },
        tier: "executor".into(),
        stage: Stage::Step,
        tolerate_failed_deps: false,
    }
}

fn v1(spec: &StepSpec) -> StepSpecV1 {
    StepSpecV1 {
        step_id: spec.step.step_id,
        tool_name: spec.step.tool_name.clone(),
        args: spec.step.args.clone(),
        depends_on: spec.step.depends_on.clone(),
        tier: spec.tier.clone(),
        stage: spec.stage,
        tolerate_failed_deps: spec.tolerate_failed_deps,
    }
}

#[test]
fn step_spec_json_is_byte_identical_to_the_previous_shape() {
    let spec = summarize_spec();
    let written = serde_json::to_string(&spec).unwrap();
    assert_eq!(
        written,
        r#"{"step_id":3,"tool_name":"summarize","args":{"style":{"bullets":true,"max":3},"text":"{step_1_result} and {step_2_result}"},"depends_on":[1,2],"tier":"executor","stage":"step","tolerate_failed_deps":false}"#
    );
    assert_eq!(written, serde_json::to_string(&v1(&spec)).unwrap());
    let mut synthesis = summarize_spec();
    synthesis.stage = Stage::Synthesis;
    synthesis.tolerate_failed_deps = true;
    assert_eq!(
        serde_json::to_string(&synthesis).unwrap(),
        serde_json::to_string(&v1(&synthesis)).unwrap()
    );
}

#[test]
fn specs_written_by_either_shape_read_back_in_the_other() {
    let spec = summarize_spec();
    let old_text = serde_json::to_string(&v1(&spec)).unwrap();
    assert_eq!(serde_json::from_str::<StepSpec>(&old_text).unwrap(), spec);
    let new_text = serde_json::to_string(&spec).unwrap();
    assert_eq!(
        serde_json::from_str::<StepSpecV1>(&new_text).unwrap(),
        v1(&spec)
    );
    // Specs stored before `tolerate_failed_deps` existed have no such field.
    let oldest = r#"{"step_id":7,"tool_name":"planex.synthesize","args":{},"depends_on":[1],"tier":"planner","stage":"synthesis"}"#;
    let read: StepSpec = serde_json::from_str(oldest).unwrap();
    assert_eq!(read.step.step_id, StepId(7));
    assert_eq!(read.step.depends_on, vec![StepId(1)]);
    assert_eq!(read.stage, Stage::Synthesis);
    assert!(!read.tolerate_failed_deps);
}

#[test]
fn check_steps_names_what_is_wrong() {
    let task = TaskId::from("t");
    let with = |id: u32, deps: &[u32]| {
        let mut spec = summarize_spec();
        spec.step.step_id = StepId(id);
        spec.step.depends_on = deps.iter().map(|d| StepId(*d)).collect();
        spec
    };
    assert_eq!(check_steps(&task, &[with(1, &[]), with(2, &[1])]), Ok(()));
    let detail = |steps: &[StepSpec]| match check_steps(&task, steps) {
        Err(StoreError::InvalidSteps { detail, .. }) => detail,
        other => panic!("expected InvalidSteps, got {other:?}"),
    };
    assert_eq!(detail(&[]), "a task needs at least one step");
    assert_eq!(
        detail(&[with(1, &[]), with(1, &[])]),
        "step 1 appears twice"
    );
    assert_eq!(detail(&[with(1, &[9])]), "step 1 depends on unknown step 9");
    assert!(detail(&[with(1, &[2]), with(2, &[1])]).contains("cycle"));
}

fn record(steps: Vec<(StepSpec, Option<&str>)>) -> TaskRecord {
    let mut record = TaskRecord::new(NewTask {
        task_id: TaskId::from("t"),
        task: "t".into(),
        tenant: None,
        cost_center: None,
        task_type: None,
        end_user: None,
        retry_of: None,
        trace_parent: None,
    });
    for (spec, result) in steps {
        let mut step = StepRecord::new(spec);
        step.result = result.map(|r| json!(r));
        record.steps.insert(step.spec.step.step_id, step);
    }
    record
}

fn step_spec(id: u32, deps: &[u32], stage: Stage) -> StepSpec {
    let mut spec = summarize_spec();
    spec.step.step_id = StepId(id);
    spec.step.depends_on = deps.iter().map(|d| StepId(*d)).collect();
    spec.stage = stage;
    spec
}

#[test]
fn answer_is_the_synthesis_result_else_the_sinks_results() {
    let plan = || {
        vec![
            (step_spec(1, &[], Stage::Step), Some("one")),
            (step_spec(2, &[1], Stage::Step), Some("two")),
            (step_spec(3, &[], Stage::Step), Some("three")),
        ]
    };
    // No synthesis step: the sinks (2 and 3), in step order.
    assert_eq!(record(plan()).answer().as_deref(), Some("two\n\nthree"));
    let mut with_synthesis = plan();
    with_synthesis.push((step_spec(4, &[1, 2, 3], Stage::Synthesis), Some("all")));
    assert_eq!(record(with_synthesis).answer().as_deref(), Some("all"));
    // A synthesis step without a result depends on every plan step, so nothing is a plan sink.
    let mut failed_synthesis = plan();
    failed_synthesis.push((step_spec(4, &[1, 2, 3], Stage::Synthesis), None));
    assert_eq!(record(failed_synthesis).answer(), None);
    // Sinks without results are left out; none at all is no answer.
    let unfinished = vec![(step_spec(1, &[], Stage::Step), None)];
    assert_eq!(record(unfinished).answer(), None);
}
