//! The conformance suite against the in-process store.

use planex_store::{MemoryStore, MemoryStoreOptions, Store};
use planex_testkit::conformance::MAX_DELIVERIES;
use std::sync::Arc;

async fn memory_store() -> Arc<dyn Store> {
    Arc::new(MemoryStore::with_options(MemoryStoreOptions {
        max_deliveries: MAX_DELIVERIES,
        ..MemoryStoreOptions::default()
    }))
}

planex_testkit::conformance_tests!(memory_store);
