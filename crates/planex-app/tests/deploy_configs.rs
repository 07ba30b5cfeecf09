//! The configs shipped in deploy/ load and validate: what Kubernetes and docker compose mount.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use planex_app::{Config as Settings, StoreSettings};
use std::path::Path;

fn load(relative: &str) -> Settings {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative);
    let text = std::fs::read_to_string(&path).unwrap();
    Settings::from_toml(&text).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

#[test]
fn the_kubernetes_config_is_valid_and_pins_the_served_models() {
    let settings = load("deploy/kubernetes/planex.toml");
    assert!(matches!(settings.store, StoreSettings::Redis { .. }));
    assert!(!settings.is_simulated());
    let names: Vec<&str> = settings.tiers.iter().map(|t| t.model.as_str()).collect();
    assert_eq!(
        names,
        [
            "qwen2.5-7b-instruct-2025-01",
            "llama-3.3-70b-instruct-2025-01"
        ]
    );
    // The same ids are the served names in the pool manifests.
    for (manifest, id) in [
        ("planner-vllm.yaml", "llama-3.3-70b-instruct-2025-01"),
        ("executor-sglang.yaml", "qwen2.5-7b-instruct-2025-01"),
    ] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../deploy/kubernetes")
            .join(manifest);
        let yaml = std::fs::read_to_string(path).unwrap();
        assert!(
            yaml.contains(&format!("--served-model-name={id}")),
            "{manifest} must serve {id}"
        );
    }
    assert!(settings.tiers.iter().all(|t| t.health.pin_model));
}

#[test]
fn the_compose_config_is_valid_and_routes_across_three_tiers() {
    let settings = load("deploy/compose/planex.toml");
    let tiers: Vec<&str> = settings.tiers.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(tiers, ["medium", "planner", "small"]);
    let small = settings.tiers.iter().find(|t| t.name == "small").unwrap();
    assert_eq!(small.endpoints.len(), 2);
    assert_eq!(small.escalate_to.as_deref(), Some("medium"));
    assert_eq!(settings.engine.routing.rules.len(), 2);
    assert_eq!(settings.engine.planner.tier_hints, ["medium"]);
}
