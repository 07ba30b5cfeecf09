//! `/readyz` of `planex serve` on Redis says whether anything would run the steps it accepts:
//! not ready while a tier with work has no live worker (naming the tier), ready once every tier
//! has one, not ready again when a tier's last worker stops; `workers_live{tier}` says the same.
//! Real processes: a private `redis-server`, `planex sim`, `planex serve` and `planex worker`s.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cluster;

use cluster::{Cluster, Options};
use serde_json::Value;

async fn readyz(cluster: &Cluster) -> (u16, Value) {
    let response = cluster
        .http
        .get(format!("{}/readyz", cluster.api))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

/// The value of `workers_live{tier="TIER"}` in the API's `/metrics`.
async fn workers_live(cluster: &Cluster, tier: &str) -> Option<f64> {
    let text = cluster
        .http
        .get(format!("{}/metrics", cluster.api))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let prefix = format!("workers_live{{tier=\"{tier}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.trim().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_needs_a_live_worker_for_every_tier_with_work() {
    let cluster = tokio::task::block_in_place(|| Cluster::start(Options::default()));
    let (status, body) = readyz(&cluster).await;
    assert_eq!(status, 503, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("no live worker for tier executor, planner"),
        "{message}"
    );
    assert!(message.contains("planex worker --tier"), "{message}");
    assert_eq!(workers_live(&cluster, "executor").await, Some(0.0));

    let executor = tokio::task::block_in_place(|| cluster.worker("executor", "exec-1", 30.0, 5.0));
    let (status, body) = readyz(&cluster).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        body["error"]["details"]["tiers_without_workers"],
        serde_json::json!(["planner"])
    );
    assert_eq!(workers_live(&cluster, "executor").await, Some(1.0));

    let _planner = tokio::task::block_in_place(|| cluster.worker("planner", "plan-1", 30.0, 5.0));
    let (status, body) = readyz(&cluster).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["workers"],
        serde_json::json!({"executor": 1, "planner": 1})
    );

    // The executor tier's only worker stops cleanly (it retires its heartbeat).
    executor.sigterm();
    let mut executor = executor;
    assert!(
        tokio::task::block_in_place(|| executor.exit_success()),
        "{}",
        cluster.logs()
    );
    let (status, body) = readyz(&cluster).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        body["error"]["details"]["tiers_without_workers"],
        serde_json::json!(["executor"])
    );
    assert_eq!(workers_live(&cluster, "executor").await, Some(0.0));
}
