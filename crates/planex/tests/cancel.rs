//! Cancelling a running task on the distributed deployment (real processes, a private
//! `redis-server`, a `planex sim` with slow executor calls): `planex cancel` stops the spending,
//! no executor call starts after it returned, later steps are skipped and the reservation is gone.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cluster;

use cluster::{Cluster, Options, sim_stats};
use futures::StreamExt;
use planex_core::TaskId;
use planex_store::{CANCELLED, EventKind, SpendLedger, StepState, Store, TaskStatus};
use std::time::Duration;

const DONE: Duration = Duration::from_secs(120);

/// Four chains of four `summarize` steps (16 steps; each link needs the one before).
fn sixteen_steps() -> serde_json::Value {
    let steps: Vec<serde_json::Value> = (1..=16u32)
        .map(|id| {
            let depends_on: Vec<u32> = if id > 4 { vec![id - 4] } else { vec![] };
            let text = if id > 4 {
                format!("{{step_{}_result}}", id - 4)
            } else {
                format!("part {id}")
            };
            serde_json::json!({"step_id": id, "tool_name": "summarize", "args": {"text": text}, "depends_on": depends_on})
        })
        .collect();
    serde_json::Value::Array(steps)
}

/// The executor requests the simulator has received.
async fn executor_requests(cluster: &Cluster) -> u64 {
    let stats = sim_stats(&cluster.http, &cluster.sim_url).await;
    stats["executor_requests"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_running_task_starts_no_new_call_skips_the_rest_and_releases_its_reservation()
{
    let task_text = "Summarize sixteen parts slowly";
    let workload = serde_json::json!({"task": task_text, "plan": {"task": task_text, "steps": sixteen_steps()}})
        .to_string();
    let cluster = tokio::task::block_in_place(|| {
        Cluster::start(Options {
            workload,
            ttft_ms: 400,
            ..Options::default()
        })
    });
    let mut worker =
        tokio::task::block_in_place(|| cluster.worker("executor", "exec-1", 30.0, 30.0));
    let response = cluster
        .http
        .post(format!("{}/v1/tasks", cluster.api))
        .json(&serde_json::json!({"task": task_text, "max_subtasks": 16}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let body: serde_json::Value = response.json().await.unwrap();
    let task = TaskId(body["task_id"].as_str().unwrap().to_owned());
    let store = cluster.store().await;
    let mut events = store.events(&task).await.unwrap();
    tokio::time::timeout(DONE, async {
        while let Some(event) = events.next().await {
            if matches!(event.kind, EventKind::StepCompleted { .. }) {
                return;
            }
        }
        panic!("the event stream ended before a step completed");
    })
    .await
    .expect("a first step completes");

    let cancel = tokio::task::block_in_place(|| {
        std::process::Command::new(env!("CARGO_BIN_EXE_planex"))
            .args(["cancel", &task.0, "--url", &cluster.api])
            .env_remove("PLANEX_LOG")
            .env_remove("PLANEX_API_KEY")
            .output()
            .unwrap()
    });
    assert!(cancel.status.success(), "{cancel:?}");
    let said = String::from_utf8(cancel.stdout).unwrap();
    assert!(said.contains("cancelled"), "{said}");
    // What had started when the cancel returned: calls the simulator saw, and steps running
    // whose call may still be on its way.
    let seen_at_cancel = executor_requests(&cluster).await;
    let record = store.get_task(&task).await.unwrap().unwrap();
    assert_eq!(record.status, TaskStatus::Cancelled, "{:?}", record.error);
    let running: Vec<_> = record
        .steps
        .values()
        .filter(|s| s.state == StepState::Running)
        .map(|s| s.spec.step.step_id)
        .collect();
    let skipped = record
        .steps
        .values()
        .filter(|s| s.state == StepState::Skipped)
        .count();
    assert!(skipped >= 8, "the later steps are skipped: {skipped}");
    for step in record.steps.values() {
        if step.state == StepState::Skipped {
            assert_eq!(step.error.as_deref(), Some(CANCELLED));
        }
    }
    // The task's reservation was settled by the cancel.
    let held = SpendLedger::held(&store).await.unwrap();
    assert!(!held.iter().any(|id| id.starts_with(&task.0)), "{held:?}");

    // A graceful stop lets the steps in flight finish, so afterwards nothing more can start.
    worker.sigterm();
    tokio::task::block_in_place(|| worker.wait_line("stopped", cluster::START));
    assert!(worker.exit_success());
    let seen_at_end = executor_requests(&cluster).await;
    assert!(
        seen_at_end <= seen_at_cancel + running.len() as u64,
        "no executor call started after the cancel: {seen_at_cancel} seen then, {} running, {seen_at_end} at the end",
        running.len()
    );
    let record = store.get_task(&task).await.unwrap().unwrap();
    assert_eq!(record.status, TaskStatus::Cancelled);
    for id in &running {
        assert_eq!(
            record.steps[id].state,
            StepState::Complete,
            "step {id} was in flight: it finishes and is recorded"
        );
    }
    let step_calls = record
        .calls
        .iter()
        .filter(|c| c.stage == planex_core::Stage::Step)
        .count();
    assert_eq!(
        step_calls as u64, seen_at_end,
        "every executor call made is on the task's bill"
    );
    // Cancelling again is a conflict: the task had finished.
    let again = cluster
        .http
        .post(format!("{}/v1/tasks/{}/cancel", cluster.api, task.0))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409);
    let body: serde_json::Value = again.json().await.unwrap();
    assert_eq!(body["error"]["details"]["status"], "cancelled");
}
