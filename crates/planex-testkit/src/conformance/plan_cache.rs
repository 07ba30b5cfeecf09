//! Backend-neutral conformance cases for `PlanCache`.
//!
//! A backend's test file calls `planex_testkit::plan_cache_conformance_tests!(cache_factory)`, where
//! the factory is an async fn returning a fresh, empty `Arc<dyn PlanCache>`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test cases: failing = panicking.

use planex_store::PlanCache;
use std::sync::Arc;
use std::time::Duration;

/// A stored plan is returned for its key and replaced by a newer one; other keys miss.
pub async fn cache_put_then_get(cache: Arc<dyn PlanCache>) {
    assert_eq!(cache.get("k").await.unwrap(), None);
    let plan = serde_json::json!({"steps": [{"step_id": 1}]});
    cache
        .put("k", plan.clone(), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(cache.get("k").await.unwrap(), Some(plan));
    assert_eq!(cache.get("other").await.unwrap(), None);
    let newer = serde_json::json!({"steps": []});
    cache
        .put("k", newer.clone(), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(cache.get("k").await.unwrap(), Some(newer));
}

/// A plan stored with a zero TTL is not kept.
pub async fn cache_zero_ttl_stores_nothing(cache: Arc<dyn PlanCache>) {
    cache
        .put("z", serde_json::json!({}), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(cache.get("z").await.unwrap(), None);
}

/// Generates one `#[tokio::test]` per `PlanCache` conformance case for a backend, from an async
/// factory of fresh, empty `Arc<dyn PlanCache>`s.
#[macro_export]
macro_rules! plan_cache_conformance_tests {
    ($factory:path) => {
        $crate::plan_cache_conformance_tests!(@cases $factory; cache_put_then_get, cache_zero_ttl_stores_nothing);
    };
    (@cases $factory:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                $crate::conformance::plan_cache::$case($factory().await).await;
            }
        )*
    };
}
