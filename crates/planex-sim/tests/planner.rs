//! Planner role: schema-valid, deterministic plans; workload-pinned plan sequences.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{chat, planner_body, validate_plan};
use planex_sim::{SimConfig, Workload};
use planex_testkit::sim::start;
use serde_json::{Value, json};

async fn plan_text(server: &planex_sim::SimServer, task: &str, max: usize) -> String {
    let (status, answer) = chat(server, &planner_body(task, max)).await;
    assert_eq!(status, 200, "{answer}");
    answer["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn plans_are_valid_and_deterministic_per_task() {
    let server = start(SimConfig::default()).await;
    let task = "Compare GPU cloud pricing across three providers for 2026";
    let first = plan_text(&server, task, 10).await;
    let plan: Value = serde_json::from_str(&first).unwrap();
    let steps = validate_plan(&plan, 10);
    // Fan-in: the last step depends on something, the first does not.
    assert!(steps[0]["depends_on"].as_array().unwrap().is_empty());
    assert!(
        !steps.last().unwrap()["depends_on"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(plan_text(&server, task, 10).await, first);
    let other = plan_text(
        &server,
        "Summarize recent research on speculative decoding",
        10,
    )
    .await;
    assert_ne!(other, first);

    let mut distinct = std::collections::HashSet::new();
    for i in 0..40 {
        let max = [2, 3, 4, 10][i % 4];
        let text = plan_text(
            &server,
            &format!("Research topic number {i} #sim:tokens=5"),
            max,
        )
        .await;
        assert!(!text.contains("#sim:"), "markers must not leak into args");
        let plan: Value = serde_json::from_str(&text).unwrap();
        let steps = validate_plan(&plan, max);
        distinct.insert(steps.len());
    }
    assert!(distinct.len() >= 3, "plan sizes vary: {distinct:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn workload_pins_a_sequence_of_plans() {
    let valid = json!({"steps": [
        {"step_id": 1, "tool_name": "web_search", "args": {"query": "pinned"}, "depends_on": []}]});
    let line = json!({"id": "w1", "task": "Pinned task", "plans": ["{\"steps\": [", valid],
                      "expected": "ignored"});
    let file = format!(
        "# workload\n\n{line}\n{}\n",
        json!({"task": "Single", "plan": valid})
    );
    let workload = Workload::from_jsonl(&file).unwrap();
    let server = start(SimConfig {
        workload,
        ..SimConfig::default()
    })
    .await;
    assert_eq!(plan_text(&server, "Pinned task", 10).await, "{\"steps\": [");
    let second = plan_text(&server, "Pinned task", 10).await;
    assert_eq!(serde_json::from_str::<Value>(&second).unwrap(), valid);
    assert_eq!(plan_text(&server, "Pinned task", 10).await, second);
    assert_eq!(plan_text(&server, "Single", 10).await, valid.to_string());
    // Unpinned tasks get a generated plan; reset restarts the sequence.
    validate_plan(
        &serde_json::from_str(&plan_text(&server, "Free", 10).await).unwrap(),
        10,
    );
    server.state().reset();
    assert_eq!(plan_text(&server, "Pinned task", 10).await, "{\"steps\": [");
    server.shutdown().await;
}

#[test]
fn args_into_config_reads_workload_and_reports_bad_lines() {
    use clap::Parser;
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        sim: planex_sim::SimArgs,
    }
    let dir = planex_testkit::temp_dir::fresh("planex-sim-test").unwrap();
    let good = dir.join("good.jsonl");
    std::fs::write(&good, "{\"task\":\"t\",\"plan\":{\"steps\":[]}}\n").unwrap();
    let bad = dir.join("bad.jsonl");
    std::fs::write(&bad, "{\"task\":\"t\",\"plan\":{}}\n{oops\n").unwrap();

    let cli = Cli::parse_from(["x", "--workload", good.to_str().unwrap(), "--port", "0"]);
    let config = cli.sim.into_config().unwrap();
    assert_eq!(config.port, 0);
    assert_eq!(config.model, "sim-model");
    assert_eq!(config.max_concurrency, 64);
    assert_eq!(config.output_tokens, 120);
    assert_eq!(config.hang_ms, 600_000);
    assert_eq!(config.max_body_bytes, 32 * 1024 * 1024);
    assert_eq!(config.workload.len(), 1);

    let err = Cli::parse_from(["x", "--workload", bad.to_str().unwrap()])
        .sim
        .into_config()
        .unwrap_err();
    assert!(err.to_string().contains("line 2"), "{err}");
    let err = Cli::parse_from(["x", "--error-rate", "1.5"])
        .sim
        .into_config()
        .unwrap_err();
    assert!(err.to_string().contains("error-rate"));
    std::fs::remove_dir_all(&dir).unwrap();
}
