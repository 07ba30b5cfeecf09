//! The catalog a running process uses, replaceable while it runs: MCP servers' tool lists change
//! (`notifications/tools/list_changed`), and the planner, the validation of plans and the
//! executor must all see the new list at once.
//!
//! Key decision: the catalog itself stays an immutable value (its hash keys the plan cache, a
//! plan is validated against one catalog); what changes is which catalog is current. Readers take
//! an `Arc` snapshot and use it for the whole operation, so a step or a plan never sees half of
//! one list and half of another.

use crate::Catalog;
use std::sync::{Arc, PoisonError, RwLock};

/// A shared, replaceable [`Catalog`]; clones share it.
#[derive(Debug, Clone)]
pub struct LiveCatalog(Arc<RwLock<Arc<Catalog>>>);

impl LiveCatalog {
    /// A live catalog whose current value is `catalog`.
    pub fn new(catalog: Arc<Catalog>) -> Self {
        LiveCatalog(Arc::new(RwLock::new(catalog)))
    }

    /// The current catalog.
    pub fn current(&self) -> Arc<Catalog> {
        // A writer only swaps an `Arc`, so a poisoned lock still holds a whole catalog.
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Makes `catalog` current for every later reader; returns the one it replaces.
    pub fn replace(&self, catalog: Arc<Catalog>) -> Arc<Catalog> {
        let mut current = self.0.write().unwrap_or_else(PoisonError::into_inner);
        std::mem::replace(&mut *current, catalog)
    }
}

impl From<Arc<Catalog>> for LiveCatalog {
    fn from(catalog: Arc<Catalog>) -> Self {
        LiveCatalog::new(catalog)
    }
}

impl From<Catalog> for LiveCatalog {
    fn from(catalog: Catalog) -> Self {
        LiveCatalog::new(Arc::new(catalog))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_replacement() {
        let one = Catalog::new(vec![crate::ToolSpec::one_arg_llm("a", "x", "t", 8)]).unwrap();
        let two = Catalog::new(vec![crate::ToolSpec::one_arg_llm("b", "x", "t", 8)]).unwrap();
        let live = LiveCatalog::from(one);
        let reader = live.clone();
        let snapshot = reader.current();
        let old = live.replace(Arc::new(two));
        assert!(old.contains("a") && snapshot.contains("a"));
        assert!(reader.current().contains("b") && !reader.current().contains("a"));
    }
}
