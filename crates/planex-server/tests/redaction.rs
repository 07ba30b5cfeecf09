//! No internal address reaches a tenant: a task whose steps fail against a model server keeps the
//! endpoint's URL in its stored errors (for operators), but `GET /v1/tasks/{id}`, its event
//! stream and error bodies name it only as `<internal endpoint>`. Model calls go over real HTTP
//! to simulators.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::http::{Method, StatusCode};
use common::{Harness, Options};
use futures::StreamExt;
use planex_core::TaskId;
use serde_json::json;

const ADDRESS: &str = "http://127.0.0.1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_steps_name_no_internal_endpoint_in_views_events_or_errors() {
    let h = Harness::start(Options::default()).await;
    let plan = json!({"steps": [
        {"step_id": 1, "tool_name": "summarize", "args": {"text": "x #sim:fail=500"}, "depends_on": []},
        {"step_id": 2, "tool_name": "lookup", "args": {"topic": "GPUs"}, "depends_on": []},
    ]});
    let (status, _, view) = h
        .call(
            Method::POST,
            "/v1/tasks?wait=true",
            Some(json!({"task": "Two lookups", "plan": plan})),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["status"], "partial", "{view}");
    let id = view["task_id"].as_str().unwrap();

    // The store keeps the full cause, so the test would see a leak.
    let record = h
        .engine
        .store()
        .get_task(&TaskId::from(id))
        .await
        .unwrap()
        .unwrap();
    let stored = serde_json::to_string(&record).unwrap();
    assert!(
        stored.contains(ADDRESS),
        "the stored errors name the endpoint: {stored}"
    );

    let (_, _, read) = h
        .call(Method::GET, &format!("/v1/tasks/{id}"), None, &[])
        .await;
    let text = read.to_string();
    assert!(!text.contains(ADDRESS), "{text}");
    let failed = read["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["state"] == "failed")
        .expect("step 1 failed");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("<internal endpoint>"),
        "{failed}"
    );

    let events: Vec<String> = h
        .engine
        .store()
        .events(&TaskId::from(id))
        .await
        .unwrap()
        .map(|e| serde_json::to_string(&e).unwrap())
        .collect()
        .await;
    assert!(
        events.iter().any(|e| e.contains(ADDRESS)),
        "stored events name it"
    );
    let (status, _, stream) = h
        .call(Method::GET, &format!("/v1/tasks/{id}/events"), None, &[])
        .await;
    assert_eq!(status, StatusCode::OK);
    let stream = stream.as_str().unwrap();
    assert!(stream.contains("step_failed"), "{stream}");
    assert!(!stream.contains(ADDRESS), "{stream}");

    let (status, _, body) = h
        .call(
            Method::POST,
            "/v1/execute",
            Some(json!({"tool_name": "summarize", "args": {"text": "y #sim:fail=500"}})),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(!body.to_string().contains(ADDRESS), "{body}");
    h.stop().await;
}
