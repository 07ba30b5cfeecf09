//! A `planex worker` process's own metrics endpoint (`--metrics-addr`), after it ran a failing
//! and a retried step of a real task (processes from `cluster/`): its `/metrics` passes the
//! strict parser (`prometheus_client` plus type checks, from the test venv) and `promtool check
//! metrics` with the step metrics a worker records, and its errors are JSON.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cluster;

use cluster::{Cluster, Options};
use planex_core::TaskId;
use planex_testkit::exposition;
use std::time::Duration;

const DONE: Duration = Duration::from_secs(120);

/// The metrics a worker process records itself (the API process records the planner's and the
/// budget's); `dlq_total{tool}` and `step_retries_total` are moved by this test's faults.
const WORKER_METRICS: &[&str] = &[
    "executor_token_total:step_type",
    "ttft_seconds:tier",
    "step_duration_seconds:tier,tool",
    "step_retries_total",
    "dlq_total:tool",
    "queue_depth:tier",
    "plan_cache_hits_total",
    "budget_replans_total",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_processes_metrics_pass_a_strict_parser_and_promtool_and_its_errors_are_json() {
    let task_text = "Search two facts";
    let workload = serde_json::json!({"task": task_text, "plan": {"task": task_text, "steps": [
        {"step_id": 1, "tool_name": "web_search", "args": {"query": "always #sim:fail=500"}, "depends_on": []},
        {"step_id": 2, "tool_name": "web_search", "args": {"query": "once #sim:fail=500x1"}, "depends_on": []},
    ]}})
    .to_string();
    let cluster = tokio::task::block_in_place(|| {
        Cluster::start(Options {
            workload,
            ..Options::default()
        })
    });
    let (_executor, ready_line) = tokio::task::block_in_place(|| {
        cluster.worker_with(
            "executor",
            "exec-m",
            30.0,
            5.0,
            &["--metrics-addr", "127.0.0.1:0"],
        )
    });
    let _planner = tokio::task::block_in_place(|| cluster.worker("planner", "plan-m", 30.0, 5.0));
    let task: TaskId = cluster.submit(task_text).await;
    let store = cluster.store().await;
    let record = planex_store::wait_for_task(&store, &task, DONE)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("task {task} did not finish within {DONE:?}"));
    let states: Vec<_> = record
        .steps
        .values()
        .map(|s| (s.spec.step.tool_name.clone(), s.state))
        .collect();
    assert!(
        states.contains(&("web_search".into(), planex_store::StepState::Failed)),
        "{states:?}"
    );

    let base = ready_line
        .split("metrics on ")
        .nth(1)
        .unwrap_or_else(|| panic!("no metrics address in {ready_line:?}"))
        .trim_end_matches(')')
        .trim_end_matches("/metrics")
        .to_owned();
    let scrape = cluster
        .http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(scrape.status(), 200);
    assert!(
        scrape.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = scrape.text().await.unwrap();
    exposition::assert_valid(&text, WORKER_METRICS);
    assert!(
        text.contains("dlq_total{tool=\"web_search\"} 1"),
        "the failed step is counted:\n{text}"
    );

    let unknown = cluster
        .http
        .get(format!("{base}/v1/tasks"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let body: serde_json::Value = unknown.json().await.unwrap();
    assert_eq!(body["error"]["type"], "not_found", "{body}");
    let health: serde_json::Value = cluster
        .http
        .get(format!("{base}/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    // The port has limits like the API's: a long target is a JSON 414, a big body a JSON 413.
    let long = cluster
        .http
        .get(format!(
            "{base}/healthz?{}",
            "q".repeat(planex_server::MAX_URI_BYTES)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(long.status(), 414);
    let body: serde_json::Value = long.json().await.unwrap();
    assert_eq!(body["error"]["type"], "uri_too_long", "{body}");
    let big = cluster
        .http
        .post(format!("{base}/healthz"))
        .body(vec![b'x'; 1 << 20])
        .send()
        .await
        .unwrap();
    assert_eq!(big.status(), 413);
}
