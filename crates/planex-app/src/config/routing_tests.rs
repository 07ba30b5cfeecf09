//! `[routing]`, `[health]` and `[scaling]` parsing and the field-naming errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::config::{Config, ConfigError, DEFAULT_CONFIG};
use planex_core::cause::chain_text;
use planex_engine::RouteRule;
use planex_engine::scaling::ScalingRule;
use planex_llm::HealthCheckKind;
use std::time::Duration;

const MEDIUM: &str = r#"
[tiers.medium]
model = "sim-qwen2.5-14b"
usd_per_hour = 2.2
tokens_per_second = 3000
simulated = { ttft_ms = 60, tokens_per_second = 3000 }
"#;

fn with(extra: &str) -> Result<Config, ConfigError> {
    Config::from_toml(&format!("{DEFAULT_CONFIG}\n{MEDIUM}\n{extra}"))
}

#[test]
fn the_default_routes_by_tool_tier_with_default_health_and_scaling() {
    let settings = Config::from_toml(DEFAULT_CONFIG).unwrap();
    assert!(settings.engine.routing.rules.is_empty());
    assert!(settings.engine.planner.tier_hints.is_empty());
    assert_eq!(settings.engine.scaling.executor_queue_depth, 100);
    assert_eq!(
        settings.engine.scaling.planner_ttft_p95,
        Duration::from_secs(2)
    );
    assert_eq!(
        settings.engine.scaling.scale_in_after,
        Duration::from_secs(600)
    );
    assert!(settings.tiers.iter().all(|t| t.health.pin_model));
}

#[test]
fn rules_categories_hints_health_and_scaling_are_read() {
    let settings = with(
        r#"
[routing]
hint_tiers = ["medium"]
categories = { reasoning = ["compare", "summarize"] }
[[routing.rules]]
category = "reasoning"
min_input_tokens = 1500
tier = "medium"
[[routing.rules]]
tool = ["extract", "classify"]
tier = "executor"

[health]
allowed_fails = 2
cooldown_secs = 5
check = "health"
interval_secs = 0
pin_model = false

[scaling]
executor_queue_depth = 40
scale_in_after_secs = 120
[scaling.tiers.medium]
rule = "ttft"
max_replicas = 4
"#,
    )
    .unwrap();
    let routing = &settings.engine.routing;
    assert_eq!(
        routing.rules,
        vec![
            RouteRule {
                category: Some("reasoning".into()),
                min_input_tokens: Some(1500),
                tier: "medium".into(),
                ..RouteRule::default()
            },
            RouteRule {
                tools: vec!["extract".into(), "classify".into()],
                tier: "executor".into(),
                ..RouteRule::default()
            },
        ]
    );
    assert_eq!(settings.engine.planner.tier_hints, vec!["medium"]);
    let health = &settings.tiers[0].health;
    assert_eq!(health.allowed_fails, 2);
    assert_eq!(health.cooldown, Duration::from_secs(5));
    assert_eq!(health.check, HealthCheckKind::Health);
    assert!(health.interval.is_zero());
    assert!(!health.pin_model);
    let scaling = &settings.engine.scaling;
    assert_eq!(scaling.executor_queue_depth, 40);
    assert_eq!(scaling.scale_in_after, Duration::from_secs(120));
    let medium = &scaling.tiers["medium"];
    assert_eq!(medium.rule, ScalingRule::Ttft);
    assert_eq!((medium.min_replicas, medium.max_replicas), (1, 4));
}

#[test]
fn mistakes_name_the_field_and_what_would_be_valid() {
    let cases = [
        (
            "[[routing.rules]]\ntool = \"extract\"\ntier = \"huge\"",
            "routing.rules[0].tier",
            "\"huge\" is not a tier",
        ),
        (
            "[[routing.rules]]\ntool = \"extrakt\"\ntier = \"medium\"",
            "routing.rules[0].tool",
            "\"extrakt\" is not a tool",
        ),
        (
            "[[routing.rules]]\ncategory = \"reasoning\"\ntier = \"medium\"",
            "routing.rules[0].category",
            "\"reasoning\" is not a category",
        ),
        (
            "[[routing.rules]]\nmin_input_tokens = 9\nmax_input_tokens = 3\ntier = \"medium\"",
            "routing.rules[0].min_input_tokens",
            "could never match",
        ),
        (
            "[routing]\ncategories = { x = [\"nope\"] }",
            "routing.categories.x[0]",
            "\"nope\" is not a tool",
        ),
        (
            "[routing]\nhint_tiers = [\"xl\"]",
            "routing.hint_tiers[0]",
            "\"xl\" is not a tier",
        ),
        ("[health]\ncheck = \"ping\"", "health.check", "`models`"),
        (
            "[health]\ncooldown_secs = -1",
            "health.cooldown_secs",
            ">= 0",
        ),
        (
            "[scaling]\nmin_replicas = 0",
            "scaling.min_replicas",
            "one warm node",
        ),
        (
            "[scaling]\nmax_replicas = 0",
            "scaling.max_replicas",
            "at least min_replicas",
        ),
        (
            "[scaling.tiers.medium]\nrule = \"cpu\"",
            "scaling.tiers.medium.rule",
            "`queue_depth`",
        ),
        (
            "[scaling.tiers.gpu9]\nmin_replicas = 1",
            "scaling.tiers.gpu9",
            "not a tier",
        ),
    ];
    for (extra, field, hint) in cases {
        let err = chain_text(&with(extra).unwrap_err());
        assert!(err.contains(field), "{extra}: {err}");
        assert!(err.contains(hint), "{extra}: {err}");
    }
    let err = chain_text(&with("[routing]\nrulez = []").unwrap_err());
    assert!(err.contains("rulez"), "{err}");
}
