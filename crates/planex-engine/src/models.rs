//! The engine's view of the model tiers: a name → `Arc<dyn ChatModel>` map.
//!
//! The engine depends on the `ChatModel` seam, not on the HTTP client, so tests and later issues
//! (routing, health-aware pools) can plug other implementations in without touching the scheduler.

use crate::EngineError;
use planex_llm::{ChatModel, TierSet};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The tiers the engine can run calls on.
#[derive(Clone, Default)]
pub struct Models {
    tiers: BTreeMap<String, Arc<dyn ChatModel>>,
}

impl Models {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every tier of a `TierSet`.
    pub fn from_tier_set(tiers: &TierSet) -> Self {
        let mut models = Models::new();
        for tier in tiers.iter() {
            models.insert(tier.clone());
        }
        models
    }

    /// Adds (or replaces) a tier under its own name.
    pub fn insert(&mut self, model: Arc<dyn ChatModel>) {
        self.tiers.insert(model.tier_name().to_owned(), model);
    }

    /// The tier named `name`.
    pub fn get(&self, name: &str) -> Result<&Arc<dyn ChatModel>, EngineError> {
        self.tiers
            .get(name)
            .ok_or_else(|| EngineError::UnknownTier {
                tier: name.to_owned(),
                known: self.names(),
            })
    }

    /// Tier names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.tiers.keys().cloned().collect()
    }
}
