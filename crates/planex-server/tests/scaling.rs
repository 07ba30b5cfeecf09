//! `GET /v1/scaling` through the router: one decision per tier with the numbers and the reason.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::http::{Method, StatusCode};
use common::{Harness, Options};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scaling_report_has_a_decision_and_a_reason_per_tier() {
    let h = Harness::start(Options::default()).await;
    let (status, _, view) = h
        .call(
            Method::POST,
            "/v1/tasks?wait=true",
            Some(json!({"task": "Compare two GPU clouds", "max_subtasks": 3})),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    let (status, _, report) = h.call(Method::GET, "/v1/scaling", None, &[]).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["thresholds"]["executor_queue_depth"], 100);
    assert_eq!(report["thresholds"]["planner_ttft_p95_seconds"], 2.0);
    let tiers = report["tiers"].as_array().unwrap();
    let names: Vec<&str> = tiers.iter().map(|t| t["tier"].as_str().unwrap()).collect();
    assert_eq!(names, ["executor", "planner"]);
    for tier in tiers {
        // The task is done: nothing queued, nothing in flight, one healthy node, hold.
        assert_eq!(tier["queue_depth"], 0, "{tier}");
        assert_eq!(tier["in_flight"], 0, "{tier}");
        assert_eq!(tier["desired_replicas"], 1, "{tier}");
        assert_eq!(tier["action"], "hold", "{tier}");
        assert!(!tier["reason"].as_str().unwrap().is_empty());
    }
    assert_eq!(tiers[0]["rule"], "queue_depth");
    assert_eq!(tiers[1]["rule"], "ttft");
    let (status, _, _) = h.call(Method::POST, "/v1/scaling", None, &[]).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    h.stop().await;
}
