//! The ledger, plan cache and drift store conformance suites against the in-process backends.

use planex_store::{
    DriftStore, MemoryDriftStore, MemoryLedger, MemoryPlanCache, PlanCache, SpendLedger,
};
use std::sync::Arc;

async fn memory_ledger() -> Arc<dyn SpendLedger> {
    Arc::new(MemoryLedger::new())
}

async fn memory_cache() -> Arc<dyn PlanCache> {
    Arc::new(MemoryPlanCache::new(100))
}

planex_testkit::ledger_conformance_tests!(memory_ledger);
planex_testkit::plan_cache_conformance_tests!(memory_cache);

async fn memory_drift() -> Arc<dyn DriftStore> {
    Arc::new(MemoryDriftStore::new())
}

planex_testkit::drift_conformance_tests!(memory_drift);
