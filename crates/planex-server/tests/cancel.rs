//! `POST /v1/tasks/{id}/cancel` through the router: tenant-scoped, the task ends `cancelled`
//! with its waiting steps skipped and nothing reserved, a finished task is 409. Model calls go
//! over real HTTP to simulators (the first step hangs there, so it is in flight at the cancel).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::http::{Method, StatusCode};
use common::{Harness, Options, two_tenants};
use futures::StreamExt;
use planex_core::{StepId, TaskId};
use planex_store::EventKind;
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_is_tenant_scoped_skips_waiting_steps_and_answers_409_once_finished() {
    let plan = planex_testkit::fixtures::plan_json(json!([
        {"step_id": 1, "tool_name": "lookup", "args": {"topic": "wait #sim:hang"}, "depends_on": []},
        {"step_id": 2, "tool_name": "summarize", "args": {"text": "{step_1_result}"}, "depends_on": [1]}
    ]));
    let h = Harness::start(Options {
        keys: two_tenants(),
        workload: vec![("Long task".into(), vec![plan])],
        ..Options::default()
    })
    .await;
    let acme = [("authorization", "Bearer key-acme")];
    let (status, _, accepted) = h
        .call(
            Method::POST,
            "/v1/tasks",
            Some(json!({"task": "Long task"})),
            &acme,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let id = accepted["task_id"].as_str().unwrap().to_owned();
    let mut events = h
        .engine
        .store()
        .events(&TaskId::from(id.as_str()))
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(event) = events.next().await {
            if matches!(
                event.kind,
                EventKind::StepStarted {
                    step_id: StepId(1),
                    ..
                }
            ) {
                return;
            }
        }
        panic!("the events ended before step 1 started");
    })
    .await
    .expect("step 1 starts");
    let path = format!("/v1/tasks/{id}/cancel");
    let (status, _, other) = h
        .call(
            Method::POST,
            &path,
            None,
            &[("authorization", "Bearer key-globex")],
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "another tenant's task: {other}"
    );
    let (status, _, view) = h.call(Method::POST, &path, None, &acme).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["status"], "cancelled");
    let steps = view["steps"].as_array().unwrap();
    assert_eq!(steps[0]["state"], "running", "the step in flight finishes");
    assert!(
        steps[1..]
            .iter()
            .all(|s| s["state"] == "skipped" && s["error"] == "cancelled"),
        "{steps:?}"
    );
    let (_, _, spend) = h.call(Method::GET, "/v1/spend", None, &acme).await;
    assert_eq!(spend["total"]["reserved_usd"], "0", "{spend}");
    let (status, _, again) = h.call(Method::POST, &path, None, &acme).await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");
    assert_eq!(again["error"]["details"]["status"], "cancelled");
    h.stop().await;
}
