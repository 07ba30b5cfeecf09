//! The engine side of the plan cache (docs/ARCHITECTURE.md §5): the key, the lookup with re-validation, and
//! the hit counter.
//!
//! Key decision: the key is sha256 over the task text, the planner model and its pinned version,
//! the hash of the catalog the plan was made for (so a tool subset or a changed schema never
//! reuses a plan) and `max_subtasks`; a hit is validated again against the live catalog, so even a
//! corrupt or stale entry can only cause a planner call, never a bad dispatch.

use planex_core::{Catalog, Plan, PlanLimits};
use planex_store::PlanCache;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;

/// Validated `[cache]` settings.
#[derive(Debug, Clone)]
pub struct CacheSettings {
    /// Reuse plans of identical requests.
    pub enabled: bool,
    /// How long a plan is reused.
    pub ttl: Duration,
    /// Most plans kept in memory.
    pub max_entries: usize,
    /// Pinned planner version (part of the key).
    pub planner_version: String,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            enabled: true,
            ttl: Duration::from_secs(3600),
            max_entries: 10_000,
            planner_version: String::new(),
        }
    }
}

/// A plan cache backend with its settings.
#[derive(Clone)]
pub struct PlanCacheLayer {
    cache: Arc<dyn PlanCache>,
    settings: CacheSettings,
}

/// The cache key of a planning request (hex sha256).
pub fn plan_cache_key(
    task: &str,
    planner_model: &str,
    planner_version: &str,
    catalog: &Catalog,
    max_subtasks: usize,
) -> String {
    let mut hasher = Sha256::new();
    // Length-prefixed fields: no two different tuples hash the same input.
    for field in [
        task,
        planner_model,
        planner_version,
        &catalog.hash(),
        &max_subtasks.to_string(),
    ] {
        hasher.update((field.len() as u64).to_le_bytes());
        hasher.update(field.as_bytes());
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl PlanCacheLayer {
    /// A cache over `backend`.
    pub fn new(cache: Arc<dyn PlanCache>, settings: CacheSettings) -> Self {
        PlanCacheLayer { cache, settings }
    }

    /// The settings.
    pub fn settings(&self) -> &CacheSettings {
        &self.settings
    }

    /// The key for this request.
    pub fn key(&self, task: &str, model: &str, catalog: &Catalog, max_subtasks: usize) -> String {
        plan_cache_key(
            task,
            model,
            &self.settings.planner_version,
            catalog,
            max_subtasks,
        )
    }

    /// A cached plan that still validates against `catalog`; counts hits.
    pub async fn get(&self, key: &str, catalog: &Catalog, limits: PlanLimits) -> Option<Plan> {
        let value = match self.cache.get(key).await {
            Ok(value) => value?,
            Err(error) => {
                tracing::warn!(error = %planex_core::cause::ErrorChain(&error), "plan cache lookup failed; planning without it");
                return None;
            }
        };
        match Plan::from_value(value, catalog, limits) {
            Ok(plan) => {
                metrics::counter!("plan_cache_hits_total").increment(1);
                Some(plan)
            }
            Err(error) => {
                tracing::warn!(%error, "cached plan no longer validates; planning again");
                None
            }
        }
    }

    /// Stores a fresh plan (failures are logged: the cache is an optimisation).
    pub async fn put(&self, key: &str, plan: &Plan) {
        let Ok(value) = serde_json::to_value(plan) else {
            return;
        };
        if let Err(error) = self.cache.put(key, value, self.settings.ttl).await {
            tracing::warn!(error = %planex_core::cause::ErrorChain(&error), "could not store the plan in the cache");
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use planex_core::{LlmTool, ToolKind, ToolSpec};

    fn catalog(names: &[&str]) -> Catalog {
        Catalog::new(
            names
                .iter()
                .map(|n| ToolSpec {
                    name: (*n).into(),
                    description: "d".into(),
                    input_schema: serde_json::json!({"type": "object"}),
                    output_schema: None,
                    tier: "t".into(),
                    kind: ToolKind::Llm(LlmTool::new("p", 8)),
                })
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn every_part_of_the_key_matters() {
        let c = catalog(&["a", "b"]);
        let base = plan_cache_key("task", "m", "v1", &c, 5);
        assert_eq!(base, plan_cache_key("task", "m", "v1", &c, 5));
        assert_eq!(base.len(), 64);
        assert_ne!(base, plan_cache_key("task!", "m", "v1", &c, 5));
        assert_ne!(base, plan_cache_key("task", "m2", "v1", &c, 5));
        assert_ne!(base, plan_cache_key("task", "m", "v2", &c, 5));
        assert_ne!(base, plan_cache_key("task", "m", "v1", &catalog(&["a"]), 5));
        assert_ne!(base, plan_cache_key("task", "m", "v1", &c, 6));
        assert_ne!(
            plan_cache_key("ab", "c", "", &c, 1),
            plan_cache_key("a", "bc", "", &c, 1)
        );
    }
}
