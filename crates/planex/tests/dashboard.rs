//! The dashboard in a real headless browser (Debian's Chromium driven by playwright-core):
//! against real processes (a private `redis-server`, `planex sim` answering each call after
//! 1.5 s, `planex serve`, a worker per tier), every page loads with no console error and no
//! request leaving 127.0.0.1, the tasks list shows a task it did not have turn complete without a
//! reload (pushed by `GET /v1/tasks/events`), a task's page shows its last step turn complete
//! without a reload, and the dead-letter page replays a letter into a new task. Screenshots of each page are saved
//! under `target/dashboard-screenshots/`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cluster;

use cluster::{Cluster, Options};
use planex_core::TaskId;
use planex_store::TaskStatus;
use std::time::Duration;

const DONE: Duration = Duration::from_secs(120);

async fn submit(cluster: &Cluster, task: &str, steps: serde_json::Value) -> TaskId {
    let response = cluster
        .http
        .post(format!("{}/v1/tasks", cluster.api))
        .json(&serde_json::json!({"task": task, "plan": {"steps": steps}, "synthesis": false}))
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = response.json().await.unwrap();
    TaskId(
        body["task_id"]
            .as_str()
            .unwrap_or_else(|| panic!("{body}"))
            .to_owned(),
    )
}

/// The final record of the task whose id the browser check reported as `field`.
async fn reported_task(
    store: &dyn planex_store::Store,
    report: &serde_json::Value,
    field: &str,
) -> planex_store::TaskRecord {
    let task_id = TaskId(
        report[field]
            .as_str()
            .unwrap_or_else(|| panic!("no {field}: {report}"))
            .to_owned(),
    );
    planex_store::wait_for_task(store, &task_id, DONE)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("task {task_id} did not finish"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_live_steps_and_replays_a_dead_letter_in_a_browser() {
    let cluster = tokio::task::block_in_place(|| {
        Cluster::start(Options {
            ttft_ms: 1500,
            ..Options::default()
        })
    });
    let _executor = tokio::task::block_in_place(|| cluster.worker("executor", "exec-1", 30.0, 5.0));
    let _planner = tokio::task::block_in_place(|| cluster.worker("planner", "plan-1", 30.0, 5.0));
    let store = cluster.store().await;
    // A dead letter to replay: step 2 fails once with HTTP 400 (not retried).
    let partial = submit(&cluster, "Summarize GPU prices", serde_json::json!([
        {"step_id": 1, "tool_name": "web_search", "args": {"query": "GPU prices"}, "depends_on": []},
        {"step_id": 2, "tool_name": "summarize", "args": {"text": "{step_1_result} #sim:fail=400x1"}, "depends_on": [1]},
    ]))
    .await;
    let record = planex_store::wait_for_task(&store, &partial, DONE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.status, TaskStatus::Partial);
    // The task the page submits and watches: four steps in a chain, 1.5 s each.
    let steps: Vec<serde_json::Value> = (1..=4u32)
        .map(|id| {
            let (args, deps) = if id == 1 {
                (serde_json::json!({"query": "GPU clouds"}), vec![])
            } else {
                (
                    serde_json::json!({"text": format!("{{step_{}_result}}", id - 1)}),
                    vec![id - 1],
                )
            };
            let tool = if id == 1 { "web_search" } else { "summarize" };
            serde_json::json!({"step_id": id, "tool_name": tool, "args": args, "depends_on": deps})
        })
        .collect();
    let watched = serde_json::json!({"task": "Compare two GPU clouds", "plan": {"steps": steps}, "synthesis": false});
    let out = planex_testkit::python::target_dir().join("dashboard-screenshots");
    let (report, passed) = tokio::task::block_in_place(|| {
        planex_testkit::node::check_dashboard(&cluster.api, &watched, &out)
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        passed,
        "the browser check failed: {report}\n{}",
        cluster.logs()
    );
    assert_eq!(report["console_errors"], serde_json::json!([]), "{report}");
    assert_eq!(report["blocked"], serde_json::json!([]), "{report}");
    assert_ne!(
        report["first_state"], "complete",
        "the step was still running when drawn: {report}"
    );
    assert_eq!(report["last_state"], "complete", "{report}");
    // The tasks list got the new task and its end from the change stream: it has no other way
    // to refresh (one stream, opened once).
    assert_ne!(
        report["list_first_state"], "complete",
        "the task was drawn before it ended: {report}"
    );
    assert_eq!(report["list_last_state"], "complete", "{report}");
    assert_eq!(report["list_streams"], 1, "{report}");
    let record = reported_task(&store, &report, "list_task_id").await;
    assert_eq!(record.status, TaskStatus::Complete, "{:?}", record.error);
    for name in [
        "tasks",
        "task",
        "tiers",
        "dead-letters",
        "dead-letters-replayed",
        "spend",
    ] {
        let file = out.join(format!("{name}.png"));
        assert!(
            std::fs::metadata(&file)
                .map(|m| m.len() > 1000)
                .unwrap_or(false),
            "{}",
            file.display()
        );
    }
    let record = reported_task(&store, &report, "task_id").await;
    assert_eq!(record.status, TaskStatus::Complete, "{:?}", record.error);
    let record = reported_task(&store, &report, "replayed_task").await;
    assert_eq!(
        record.retry_of.as_ref(),
        Some(&partial),
        "the page replayed the letter's task"
    );
    assert_eq!(record.status, TaskStatus::Complete, "{:?}", record.error);
    // The spend page compares the month's tasks with a ReAct loop on the planner tier.
    let savings = report["savings"].as_str().unwrap();
    assert!(
        savings.contains("% saved") && savings.contains("ReAct"),
        "{savings}"
    );
}
