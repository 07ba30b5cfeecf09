//! `/metrics` of the API over a real socket, after runs that move every required metric, passes
//! a strict parser (`prometheus_client` plus type checks, from the test venv) and `promtool check
//! metrics`, with each metric of docs/ARCHITECTURE.md §7 present under its labels. In its own
//! binary: the Prometheus recorder is process-wide.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Harness, Options};
use planex_testkit::exposition;
use planex_testkit::fixtures::plan_json;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_apis_metrics_pass_a_strict_parser_and_promtool_with_every_required_metric() {
    // One step fails on every attempt (dead-lettered), one fails once and is retried.
    let faults = plan_json(json!([
        {"step_id": 1, "tool_name": "lookup", "args": {"topic": "always #sim:fail=500"}, "depends_on": []},
        {"step_id": 2, "tool_name": "lookup", "args": {"topic": "once #sim:fail=500x1"}, "depends_on": []},
    ]));
    let h = Harness::start(Options {
        metrics: true,
        workload: vec![("Faulty lookups".into(), vec![faults])],
        ..Options::default()
    })
    .await;
    let served = h.serve_http().await;
    let client = reqwest::Client::new();
    let base = format!("http://{}", served.addr);
    let submit = |body: serde_json::Value| {
        client
            .post(format!("{base}/v1/tasks?wait=true"))
            .json(&body)
            .send()
    };
    let faulty = submit(json!({"task": "Faulty lookups"})).await.unwrap();
    assert_eq!(faulty.status(), 200);
    let faulty: serde_json::Value = faulty.json().await.unwrap();
    assert_eq!(faulty["steps"][0]["state"], "failed", "{faulty}");
    assert_eq!(faulty["steps"][1]["state"], "complete", "{faulty}");
    let refused = submit(json!({"task": "Too dear", "budget_usd": "0.000000001"}))
        .await
        .unwrap();
    assert_eq!(refused.status(), 429);
    // A second plain task, so the first task's histograms are certainly recorded (workers
    // record a task right after the completion event that wakes the waiter).
    let plain = submit(json!({"task": "Compare two GPU clouds", "max_subtasks": 2}))
        .await
        .unwrap();
    assert_eq!(plain.status(), 200);

    let scrape = client.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(scrape.status(), 200);
    let content_type = scrape.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = scrape.text().await.unwrap();
    exposition::assert_valid(&text, exposition::REQUIRED_METRICS);
    // The rename: the steps-per-task histogram has its three series, and no stray family.
    for series in [
        "subtasks_per_task_bucket{",
        "subtasks_per_task_sum ",
        "subtasks_per_task_count ",
    ] {
        assert!(text.contains(series), "{series} in:\n{text}");
    }
    assert!(text.contains("dlq_total{tool=\"lookup\"} 1"), "{text}");
    drop(served);
    h.stop().await;
}
