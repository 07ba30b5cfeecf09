//! Opens the configured store, with the budget ledger, plan cache and drift statistics that go
//! with it.
//!
//! Key decision: a shared backend (Redis) brings its own ledger and plan cache, common to every
//! process using it, so budgets and cached plans hold across replicas; the memory store gets
//! in-process ones. This is the one place a backend's ledger and cache plug into the engine.

use crate::AppError;
use crate::config::{Retention, StoreSettings};
use planex_store::{
    DriftStore, MemoryDriftStore, MemoryLedger, MemoryPlanCache, MemoryStore, MemoryStoreOptions,
    PlanCache, RedisStore, RedisStoreOptions, SpendLedger, Store,
};
use std::sync::Arc;

/// An open store and the budget ledger and plan cache that belong with it.
pub struct Backend {
    /// Task state, ready queues, events and dead letters.
    pub store: Arc<dyn Store>,
    /// Reservations and spend per tenant and cost center.
    pub ledger: Arc<dyn SpendLedger>,
    /// Plans of identical requests.
    pub plan_cache: Arc<dyn PlanCache>,
    /// Drift baselines and recent samples per task type.
    pub drift: Arc<dyn DriftStore>,
}

impl Backend {
    /// Opens `settings`' store, keeping finished tasks as `retention` says; `cache_entries`
    /// bounds the in-memory plan cache of the memory store.
    pub async fn open(
        settings: &StoreSettings,
        retention: &Retention,
        cache_entries: usize,
    ) -> Result<Backend, AppError> {
        match settings {
            StoreSettings::Memory => Ok(Backend {
                store: Arc::new(MemoryStore::with_options(MemoryStoreOptions {
                    finished_task_ttl: retention.keep_finished,
                    max_finished_tasks: retention.max_finished_tasks,
                    max_finished_bytes: retention.max_finished_bytes,
                    ..MemoryStoreOptions::default()
                })),
                ledger: Arc::new(MemoryLedger::new()),
                plan_cache: Arc::new(MemoryPlanCache::new(cache_entries)),
                drift: Arc::new(MemoryDriftStore::new()),
            }),
            StoreSettings::Redis { url } => {
                let redis = Arc::new(
                    RedisStore::connect_with(
                        url,
                        RedisStoreOptions {
                            finished_task_ttl: retention.keep_finished,
                            ..RedisStoreOptions::default()
                        },
                    )
                    .await
                    .map_err(|source| AppError::Store {
                        backend: "redis",
                        source,
                    })?,
                );
                if let Some(risk) = redis
                    .eviction_policy()
                    .await
                    .as_deref()
                    .and_then(planex_store::eviction_risk)
                {
                    tracing::warn!("{risk}");
                }
                Ok(Backend {
                    store: redis.clone(),
                    ledger: redis.clone(),
                    plan_cache: redis.clone(),
                    drift: redis,
                })
            }
        }
    }
}
