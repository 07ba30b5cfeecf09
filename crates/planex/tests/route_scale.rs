//! `planex route explain`, `planex scale status` and the start-up model pin, as processes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cli_command;
mod sim_process;

use cli_command::planex;
use sim_process::SimProcess;

use std::path::PathBuf;

fn tempdir() -> PathBuf {
    planex_testkit::temp_dir::fresh("planex-route").unwrap()
}

const ROUTING: &str = r#"
[tiers.medium]
model = "sim-qwen2.5-14b"
usd_per_hour = 2.2
tokens_per_second = 3000
simulated = { ttft_ms = 60, tokens_per_second = 3000 }

[routing]
hint_tiers = ["medium"]
categories = { extraction = ["extract", "classify"], reasoning = ["compare"] }

[[routing.rules]]
category = "reasoning"
min_input_tokens = 500
tier = "medium"

[[routing.rules]]
category = "extraction"
tier = "executor"
"#;

const PLAN: &str = r#"{"steps": [
  {"step_id": 1, "tool_name": "web_search", "args": {"query": "H200 prices"}, "depends_on": []},
  {"step_id": 2, "tool_name": "web_search", "args": {"query": "L40S prices"}, "depends_on": []},
  {"step_id": 3, "tool_name": "extract", "args": {"text": "{step_1_result}"}, "depends_on": [1]},
  {"step_id": 4, "tool_name": "compare", "args": {"items": "{step_1_result} {step_2_result} {step_3_result}"}, "depends_on": [1, 2, 3]},
  {"step_id": 5, "tool_name": "summarize", "args": {"text": "{step_2_result}"}, "depends_on": [2], "tier": "medium"}
]}"#;

fn files(plan: &str) -> (PathBuf, PathBuf) {
    let dir = tempdir();
    let config = dir.join("planex.toml");
    std::fs::write(
        &config,
        format!("{}\n{ROUTING}", planex_app::DEFAULT_CONFIG),
    )
    .unwrap();
    let plan_path = dir.join("plan.json");
    std::fs::write(&plan_path, plan).unwrap();
    (config, plan_path)
}

#[test]
fn route_explain_prints_each_steps_tier_and_why() {
    let (config, plan) = files(PLAN);
    let out = planex()
        .args([
            "route",
            "explain",
            plan.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ])
        .assert()
        .success()
        .get_output()
        .clone();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let line = |step: &str| {
        stdout
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{step} ")))
            .unwrap_or_else(|| panic!("no line for step {step}: {stdout}"))
            .to_owned()
    };
    assert!(line("1").contains("executor") && line("1").contains("no routing rule matched"));
    assert!(line("3").contains("executor") && line("3").contains("rule 2 (category extraction)"));
    assert!(line("4").contains("medium") && line("4").contains("rule 1 (category reasoning"));
    assert!(
        line("5").contains("medium") && line("5").contains("the planner asked for tier medium")
    );
    assert!(line("6").contains("planner") && line("6").contains("synthesis"));
    assert!(
        stdout.contains("steps per tier: executor: 3, medium: 2, planner: 1"),
        "{stdout}"
    );
    let json = planex()
        .args([
            "route",
            "explain",
            "--json",
            "--no-synthesis",
            plan.to_str().unwrap(),
        ])
        .args(["--config", config.to_str().unwrap()])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let decisions: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(decisions.as_array().unwrap().len(), 5);
    assert_eq!(decisions[3]["tier"], "medium");
    assert_eq!(
        decisions[3]["source"],
        serde_json::json!({"by": "rule", "rule": 1})
    );
}

#[test]
fn route_explain_rejects_an_invalid_plan_with_the_rule_it_breaks() {
    let (config, plan) = files(
        r#"{"steps": [{"step_id": 1, "tool_name": "extract", "args": {"text": "{step_2_result}"}, "depends_on": []}]}"#,
    );
    planex()
        .args([
            "route",
            "explain",
            plan.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ])
        .assert()
        .failure()
        .stderr(predicates::str::contains("is invalid"))
        .stderr(predicates::str::contains("step_2_result"));
    planex()
        .args(["route", "explain", "/nonexistent/plan.json"])
        .assert()
        .failure()
        .stderr(predicates::str::contains("reading the plan file"));
}

#[test]
fn scale_status_reports_a_decision_per_tier() {
    let out = planex()
        .args(["scale", "status", "--json"])
        .assert()
        .success()
        .get_output()
        .clone();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let tiers = report["tiers"].as_array().unwrap();
    assert_eq!(tiers.len(), 2);
    assert_eq!(tiers[0]["tier"], "executor");
    assert_eq!(tiers[0]["rule"], "queue_depth");
    assert_eq!(tiers[0]["healthy_endpoints"], 1);
    assert_eq!(tiers[1]["rule"], "ttft");
    let table = planex().args(["scale", "status"]).assert().success();
    let stdout = String::from_utf8(table.get_output().stdout.clone()).unwrap();
    assert!(stdout.contains("queue depth 0 <= 100: hold"), "{stdout}");
    assert!(stdout.contains("executor queue depth > 100"), "{stdout}");
}

#[test]
fn a_planner_endpoint_serving_another_model_is_refused_at_start_up() {
    // The operator upgraded the server to a new model version; the config still pins the old one.
    let planner = SimProcess::start("llama-3.3-70b@2025-03", &[]);
    let config = planex_app::DEFAULT_CONFIG
        .replace("sim-llama-3.3-70b", "llama-3.3-70b@2025-01")
        .replace(
            "simulated = { ttft_ms = 120, tokens_per_second = 2500 }",
            &format!("endpoints = [\"{}\"]", planner.base_url),
        );
    let dir = tempdir();
    let path = dir.join("planex.toml");
    std::fs::write(&path, config).unwrap();
    let out = planex()
        .args(["run", "--config", path.to_str().unwrap(), "anything"])
        .assert()
        .failure()
        .get_output()
        .clone();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("tier planner: no usable endpoint"),
        "{stderr}"
    );
    assert!(stderr.contains("serves llama-3.3-70b@2025-03"), "{stderr}");
    assert!(
        stderr.contains("pinned to model \"llama-3.3-70b@2025-01\""),
        "{stderr}"
    );
    // `scale status --url` at something that is not a planex server explains itself.
    let origin = planner.base_url.trim_end_matches("/v1").to_owned();
    planex()
        .args(["scale", "status", "--url", &origin])
        .assert()
        .failure()
        .stderr(predicates::str::contains("/v1/scaling answered HTTP 4"));
}

#[test]
fn escalated_steps_are_shown_in_run_results() {
    // Every executor call fails (HTTP 5xx); the executor tier escalates to the planner tier.
    let executor = SimProcess::start("sim-qwen2.5-7b", &["--error-rate", "1.0"]);
    let config = planex_app::DEFAULT_CONFIG.replace(
        "simulated = { ttft_ms = 40, tokens_per_second = 6000 }",
        &format!(
            "endpoints = [\"{}\"]\nescalate_to = \"planner\"\nretry = {{ max_retries = 0 }}",
            executor.base_url
        ),
    );
    let dir = tempdir();
    let path = dir.join("planex.toml");
    std::fs::write(&path, config).unwrap();
    let out = planex()
        .args([
            "run",
            "--json",
            "--max-subtasks",
            "3",
            "--config",
            path.to_str().unwrap(),
        ])
        .arg("Compare two GPU clouds")
        .assert()
        .success()
        .get_output()
        .clone();
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["status"], "complete");
    let escalations = result["escalations"].as_array().unwrap();
    let steps = result["steps"].as_array().unwrap().len() - 1; // all but the synthesis step
    assert_eq!(escalations.len(), steps, "{result}");
    for e in escalations {
        assert_eq!(e["from"], "executor");
        assert_eq!(e["to"], "planner");
        assert_eq!(e["succeeded"], true);
    }
    // The escalated calls are charged to the planner tier.
    assert!(
        result["cost"]["by_tier"]["planner"]["calls"]
            .as_u64()
            .unwrap()
            > 2
    );
}
