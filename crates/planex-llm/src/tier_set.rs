//! The set of configured tiers, looked up by name.
//!
//! Key decision: `escalate_to` references are checked when the set is built, so a typo in the config
//! fails at startup with the list of known tiers instead of at the first failed step.

use crate::config::TierConfig;
use crate::error::TierSetError;
use crate::tier::Tier;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Tiers by name.
#[derive(Debug, Clone, Default)]
pub struct TierSet {
    tiers: BTreeMap<String, Arc<Tier>>,
}

impl TierSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds every tier with the shared `client` and validates names and `escalate_to` references.
    pub fn from_configs(
        configs: Vec<TierConfig>,
        client: &reqwest::Client,
    ) -> Result<TierSet, TierSetError> {
        let mut set = TierSet::new();
        for config in configs {
            if set.tiers.contains_key(&config.name) {
                return Err(TierSetError::DuplicateTier { name: config.name });
            }
            set.insert(Arc::new(Tier::new(config, client.clone())?));
        }
        set.validate()?;
        Ok(set)
    }

    /// A set of already built tiers (no validation; call [`TierSet::validate`] when it matters).
    pub fn from_tiers(tiers: impl IntoIterator<Item = Arc<Tier>>) -> TierSet {
        let mut set = TierSet::new();
        for tier in tiers {
            set.insert(tier);
        }
        set
    }

    /// Adds or replaces a tier, returning the one it replaced. Call [`TierSet::validate`] after a
    /// batch of inserts.
    pub fn insert(&mut self, tier: Arc<Tier>) -> Option<Arc<Tier>> {
        self.tiers.insert(tier.name().to_string(), tier)
    }

    /// Checks that every `escalate_to` names another tier of the set.
    pub fn validate(&self) -> Result<(), TierSetError> {
        for tier in self.tiers.values() {
            let Some(target) = &tier.config().escalate_to else {
                continue;
            };
            if target == tier.name() {
                return Err(TierSetError::SelfEscalation {
                    tier: tier.name().to_string(),
                });
            }
            if !self.tiers.contains_key(target) {
                return Err(TierSetError::UnknownEscalation {
                    tier: tier.name().to_string(),
                    target: target.clone(),
                    known: self.known(),
                });
            }
        }
        Ok(())
    }

    /// The tier of that name.
    pub fn get(&self, name: &str) -> Result<Arc<Tier>, TierSetError> {
        self.tiers
            .get(name)
            .cloned()
            .ok_or_else(|| TierSetError::UnknownTier {
                name: name.to_string(),
                known: self.known(),
            })
    }

    /// The tier that `name` escalates to, if it names one.
    pub fn escalation_of(&self, name: &str) -> Result<Option<Arc<Tier>>, TierSetError> {
        match &self.get(name)?.config().escalate_to {
            Some(target) => self.get(target).map(Some),
            None => Ok(None),
        }
    }

    /// Tier names in sorted order.
    pub fn names(&self) -> Vec<&str> {
        self.tiers.keys().map(String::as_str).collect()
    }

    /// Tiers in name order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Tier>> {
        self.tiers.values()
    }

    /// Number of tiers.
    pub fn len(&self) -> usize {
        self.tiers.len()
    }

    /// Whether the set has no tier.
    pub fn is_empty(&self) -> bool {
        self.tiers.is_empty()
    }

    fn known(&self) -> Vec<String> {
        self.tiers.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::Endpoint;
    use planex_core::Price;

    fn config(name: &str, escalate_to: Option<&str>) -> TierConfig {
        let mut config = TierConfig::new(
            name,
            "m",
            vec![Endpoint::new("http://127.0.0.1:9/v1")],
            Price::free(),
        );
        config.escalate_to = escalate_to.map(str::to_string);
        config
    }

    #[test]
    fn builds_and_looks_up_tiers() {
        let client = reqwest::Client::new();
        let set = TierSet::from_configs(
            vec![config("small", Some("planner")), config("planner", None)],
            &client,
        )
        .unwrap();
        assert_eq!(set.names(), vec!["planner", "small"]);
        assert_eq!(set.get("small").unwrap().name(), "small");
        assert_eq!(
            set.escalation_of("small").unwrap().unwrap().name(),
            "planner"
        );
        assert!(set.escalation_of("planner").unwrap().is_none());
        let err = set.get("big").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown tier \"big\" (known tiers: planner, small)"
        );
    }

    #[test]
    fn rejects_bad_escalations_duplicates_and_empty_tiers() {
        let client = reqwest::Client::new();
        let err = TierSet::from_configs(vec![config("small", Some("huge"))], &client).unwrap_err();
        assert!(
            matches!(err, TierSetError::UnknownEscalation { ref target, .. } if target == "huge"),
            "{err}"
        );
        let err = TierSet::from_configs(vec![config("small", Some("small"))], &client).unwrap_err();
        assert!(matches!(err, TierSetError::SelfEscalation { .. }));
        let err =
            TierSet::from_configs(vec![config("a", None), config("a", None)], &client).unwrap_err();
        assert!(matches!(err, TierSetError::DuplicateTier { .. }));
        let mut empty = config("e", None);
        empty.endpoints.clear();
        let err = TierSet::from_configs(vec![empty], &client).unwrap_err();
        assert!(
            matches!(err, TierSetError::Tier(crate::LlmError::NoEndpoints { .. })),
            "{err}"
        );
    }

    #[test]
    fn tier_rejects_unusable_settings() {
        let client = reqwest::Client::new();
        let mut zero = config("z", None);
        zero.max_concurrency = 0;
        assert!(
            Tier::new(zero, client.clone())
                .unwrap_err()
                .to_string()
                .contains("max_concurrency")
        );
        let mut bad_url = config("u", None);
        bad_url.endpoints = vec![Endpoint::new("127.0.0.1:8000/v1")];
        assert!(
            Tier::new(bad_url, client)
                .unwrap_err()
                .to_string()
                .contains("http://")
        );
    }
}
