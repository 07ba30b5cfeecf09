//! Routing table cases: tool tier, rules by tool, category and input size, planner hints, synthesis.

use super::*;
use planex_core::{HttpTool, LlmTool, ToolSpec};
use serde_json::json;

fn llm(name: &str, max_tokens: u32) -> ToolSpec {
    ToolSpec {
        name: name.into(),
        description: format!("{name} a text"),
        input_schema: json!({"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}),
        output_schema: None,
        tier: "small".into(),
        kind: ToolKind::Llm(LlmTool::new(format!("{name}: {{text}}"), max_tokens)),
    }
}

fn catalog() -> Catalog {
    let search = ToolSpec {
        name: "search".into(),
        description: "search".into(),
        input_schema: json!({"type": "object", "properties": {"text": {"type": "string"}}}),
        output_schema: None,
        tier: "small".into(),
        kind: ToolKind::Http(HttpTool {
            method: "GET".into(),
            base_url: "http://127.0.0.1:9".into(),
            path: "/s?q={text}".into(),
            headers: Default::default(),
            body: None,
            timeout_ms: 1000,
            max_response_bytes: 1000,
            allow_internal: false,
        }),
    };
    Catalog::new(vec![
        llm("extract", 100),
        llm("classify", 16),
        llm("compare", 400),
        llm("summarize", 300),
        search,
    ])
    .unwrap()
}

fn settings(rules: Vec<RouteRule>, hint_tiers: &[&str]) -> RoutingSettings {
    let mut settings = RoutingSettings::tool_tiers_only();
    settings.rules = rules;
    settings.categories = BTreeMap::from([
        (
            "extraction".into(),
            vec!["extract".into(), "classify".into()],
        ),
        (
            "reasoning".into(),
            vec!["compare".into(), "summarize".into()],
        ),
    ]);
    settings.hint_tiers = hint_tiers.iter().map(|s| s.to_string()).collect();
    settings
}

fn rule(tier: &str) -> RouteRule {
    RouteRule {
        tier: tier.into(),
        ..RouteRule::default()
    }
}

/// A five-step plan: two lookups, an extraction over one of them, a comparison over all three,
/// and a short classification.
fn plan_value() -> serde_json::Value {
    json!({"steps": [
        {"step_id": 1, "tool_name": "search", "args": {"text": "H200 prices"}, "depends_on": []},
        {"step_id": 2, "tool_name": "search", "args": {"text": "L40S prices"}, "depends_on": []},
        {"step_id": 3, "tool_name": "extract", "args": {"text": "{step_1_result}"}, "depends_on": [1], "tier": "medium"},
        {"step_id": 4, "tool_name": "compare", "args": {"text": "{step_1_result} {step_2_result} {step_3_result}"}, "depends_on": [1, 2, 3]},
        {"step_id": 5, "tool_name": "classify", "args": {"text": "short"}, "depends_on": []}
    ]})
}

fn route(settings: &RoutingSettings, synthesis: bool) -> Vec<RouteDecision> {
    explain_plan(plan_value(), &catalog(), settings, "planner", synthesis).unwrap()
}

fn tiers(decisions: &[RouteDecision]) -> Vec<&str> {
    decisions.iter().map(|d| d.tier.as_str()).collect()
}

#[test]
fn without_rules_every_step_runs_on_its_tools_tier() {
    let decisions = route(&settings(vec![], &[]), true);
    assert_eq!(
        tiers(&decisions),
        ["small", "small", "small", "small", "small", "planner"]
    );
    assert_eq!(decisions[0].source, RouteSource::Tool);
    assert_eq!(decisions[5].source, RouteSource::Synthesis);
    assert_eq!(decisions[5].step_id, StepId(6));
    assert!(
        decisions[2].reason.contains("hints are off"),
        "{}",
        decisions[2].reason
    );
}

#[test]
fn input_estimates_count_literal_text_and_dependency_output_caps() {
    let decisions = route(&settings(vec![], &[]), false);
    // "search" is http: no prompt; "H200 prices" is 11 chars -> 3 tokens.
    assert_eq!(decisions[0].estimated_input_tokens, 3);
    // extract: prompt "extract: {text}" (15 chars) + one search result (512 tokens assumed).
    assert_eq!(decisions[2].estimated_input_tokens, 512 + 4);
    // compare: two search results, extract's 100-token cap, prompt (15) and two spaces.
    assert_eq!(decisions[3].estimated_input_tokens, 512 + 512 + 100 + 5);
}

#[test]
fn rules_route_by_tool_category_and_size_and_the_first_match_wins() {
    let rules = vec![
        RouteRule {
            tools: vec!["classify".into()],
            ..rule("tiny")
        },
        RouteRule {
            category: Some("reasoning".into()),
            min_input_tokens: Some(1000),
            ..rule("medium")
        },
        RouteRule {
            category: Some("extraction".into()),
            ..rule("small")
        },
        RouteRule {
            max_input_tokens: Some(10),
            ..rule("tiny")
        },
    ];
    let decisions = route(&settings(rules, &[]), false);
    assert_eq!(
        tiers(&decisions),
        ["tiny", "tiny", "small", "medium", "tiny"],
        "{decisions:#?}"
    );
    assert_eq!(decisions[0].source, RouteSource::Rule { rule: 4 });
    assert!(decisions[0].reason.contains("~3 input tokens <= 10"));
    assert_eq!(decisions[2].source, RouteSource::Rule { rule: 3 });
    assert_eq!(decisions[3].source, RouteSource::Rule { rule: 2 });
    assert!(
        decisions[3]
            .reason
            .starts_with("rule 2 (category reasoning, ~1129 input tokens >= 1000)"),
        "{}",
        decisions[3].reason
    );
    assert_eq!(decisions[4].source, RouteSource::Rule { rule: 1 });
}

#[test]
fn a_small_reasoning_step_stays_on_the_small_tier() {
    let rules = vec![RouteRule {
        category: Some("reasoning".into()),
        min_input_tokens: Some(2000),
        ..rule("medium")
    }];
    let decisions = route(&settings(rules, &[]), false);
    assert_eq!(decisions[3].tier, "small");
    assert!(decisions[3].reason.contains("no routing rule matched"));
}

#[test]
fn an_allowed_planner_hint_wins_over_rules() {
    let rules = vec![rule("small")];
    let decisions = route(&settings(rules.clone(), &["medium"]), false);
    assert_eq!(decisions[2].tier, "medium");
    assert_eq!(decisions[2].source, RouteSource::Hint);
    assert_eq!(decisions[3].source, RouteSource::Rule { rule: 1 });
    // A hint for a tier that is not allowed is ignored, and the reason says so.
    let decisions = route(&settings(rules, &["large"]), false);
    assert_eq!(decisions[2].tier, "small");
    assert!(
        decisions[2]
            .reason
            .contains("planner hint \"medium\" ignored (routing.hint_tiers allows large)"),
        "{}",
        decisions[2].reason
    );
}

#[test]
fn tier_hints_are_split_off_before_validation() {
    let mut value = plan_value();
    let hints = split_tier_hints(&mut value);
    assert_eq!(hints, TierHints::from([(StepId(3), "medium".to_owned())]));
    assert!(value["steps"][2].get("tier").is_none());
    assert!(Plan::from_value(value, &catalog(), PlanLimits { max_steps: 5 }).is_ok());
    let mut odd = json!({"steps": [{"step_id": 1, "tier": 7}], "other": 1});
    assert_eq!(split_tier_hints(&mut odd)[&StepId(1)], "?");
    assert!(split_tier_hints(&mut json!("not a plan")).is_empty());
}

#[test]
fn an_invalid_plan_is_explained_by_its_validation_error() {
    let bad = json!({"steps": [{"step_id": 1, "tool_name": "nope", "args": {}, "depends_on": []}]});
    let err = explain_plan(bad, &catalog(), &settings(vec![], &[]), "planner", true).unwrap_err();
    assert!(err.to_string().contains("unknown tool \"nope\""), "{err}");
}

#[test]
fn target_tiers_lists_rule_and_hint_tiers_once() {
    let s = settings(vec![rule("medium"), rule("small")], &["medium", "large"]);
    assert_eq!(s.target_tiers(), vec!["large", "medium", "small"]);
}
