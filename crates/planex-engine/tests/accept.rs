//! `Engine::accept`: the task is recorded (in `planning`) before the planner answers, planning
//! runs in the background, and it has a deadline. The planner is a real simulator over loopback
//! HTTP with a slow time to first token.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use planex_engine::TaskRequest;
use planex_store::TaskStatus;
use planex_testkit::engine_harness::*;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_records_the_task_before_planning_and_planning_has_a_deadline() {
    let h = Harness::start(HarnessOptions {
        planner_ttft_ms: 3_000,
        planning_deadline: Some(Duration::from_millis(300)),
        ..HarnessOptions::default()
    })
    .await;
    let accepted = h
        .engine
        .accept(TaskRequest {
            task: "Summarize GPU prices".into(),
            ..TaskRequest::default()
        })
        .await
        .unwrap();
    let task = accepted.task_id.clone();
    let record = h.store.get_task(&task).await.unwrap().unwrap();
    assert_eq!(
        record.status,
        TaskStatus::Planning,
        "recorded before the planner (3 s TTFT) answered"
    );
    // Dropping the handle does not stop the planning: the deadline ends it.
    drop(accepted);
    let record = planex_store::wait_for_task(h.store.as_ref(), &task, WAIT)
        .await
        .unwrap()
        .expect("the task ends at the planning deadline");
    assert_eq!(record.status, TaskStatus::Failed);
    let error = record.error.unwrap();
    assert!(
        error.contains("planning did not finish within 0.3 s"),
        "{error}"
    );
    // Refusals that need no plan are synchronous, and nothing is recorded.
    let refused = h
        .engine
        .accept(TaskRequest {
            task: "  ".into(),
            ..TaskRequest::default()
        })
        .await;
    assert!(matches!(
        refused,
        Err(planex_engine::EngineError::InvalidRequest(_))
    ));
    h.stop().await;
}
