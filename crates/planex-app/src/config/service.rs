//! The service sections of `planex.toml`: `[server]`, `[[api_keys]]`, `[budget]` and `[cache]`,
//! validated once into the server's, the budget guard's and the plan cache's own settings.
//!
//! Key decisions: API keys are configured only as sha256 hashes (`key_sha256`), so a leaked config
//! file leaks no credential; auth is on exactly when keys are configured unless `[server] auth`
//! says otherwise, and `auth = true` without keys is an error (it would lock everyone out). A
//! tenant's monthly budget may be given on any of its keys, but all of them must agree.

use super::error::{ConfigError, invalid};
use super::raw::{RawApiKey, RawBudget, RawCache, RawServer};
use planex_core::Decimal;
use planex_engine::{BudgetSettings, CacheSettings};
use planex_server::{ApiKeyEntry, ServerSettings, is_cost_center_name, parse_sha256};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

/// Everything the HTTP service adds to the engine's config, each part in its own crate's type.
#[derive(Debug, Clone, Default)]
pub struct ServiceSettings {
    /// `[server]` and `[[api_keys]]`.
    pub server: ServerSettings,
    /// `[budget]` plus tenants' monthly budgets from `[[api_keys]]`.
    pub budget: BudgetSettings,
    /// `[cache]`.
    pub cache: CacheSettings,
}

impl ServiceSettings {
    /// Validates the raw sections; every error names its field.
    pub(crate) fn from_raw(
        server: &RawServer,
        api_keys: &[RawApiKey],
        budget: &RawBudget,
        cache: &RawCache,
    ) -> Result<ServiceSettings, ConfigError> {
        let listen: SocketAddr = server.listen.parse().map_err(|e| {
            invalid(
                "server.listen",
                format!(
                    "{:?} is not an address ({e}); write IP:PORT such as \"127.0.0.1:8080\"",
                    server.listen
                ),
            )
        })?;
        if server.body_limit_bytes < 1024 {
            return Err(invalid(
                "server.body_limit_bytes",
                "must be at least 1024 bytes",
            ));
        }
        if server.idempotency_ttl_secs == 0 {
            return Err(invalid("server.idempotency_ttl_secs", "must be at least 1"));
        }
        if server.wait_timeout_secs == 0 {
            return Err(invalid("server.wait_timeout_secs", "must be at least 1"));
        }
        if server.agent_name.trim().is_empty() {
            return Err(invalid("server.agent_name", "must not be empty"));
        }
        let agent_partial_is_error = match server.agent_partial.as_str() {
            "answer" => false,
            "error" => true,
            other => {
                return Err(invalid(
                    "server.agent_partial",
                    format!("must be \"answer\" or \"error\", got {other:?}"),
                ));
            }
        };
        let auth = match server.auth {
            Some(true) if api_keys.is_empty() => {
                return Err(invalid(
                    "server.auth",
                    "auth = true but no [[api_keys]] are configured; add keys or set auth = false",
                ));
            }
            Some(auth) => auth,
            None => !api_keys.is_empty(),
        };
        let mut keys = Vec::new();
        let mut tenants: BTreeMap<String, Decimal> = BTreeMap::new();
        for (i, key) in api_keys.iter().enumerate() {
            let field = |f: &str| format!("api_keys[{i}].{f}");
            let hash = parse_sha256(&key.key_sha256).ok_or_else(|| {
                invalid(
                    field("key_sha256"),
                    "must be 64 hex digits: the sha256 of the key (printf %s \"$KEY\" | sha256sum)",
                )
            })?;
            if keys.iter().any(|k: &ApiKeyEntry| k.key_sha256 == hash) {
                return Err(invalid(field("key_sha256"), "the same key is listed twice"));
            }
            if key.tenant.trim().is_empty() || key.tenant.contains('/') {
                return Err(invalid(
                    field("tenant"),
                    "must be a non-empty name without '/'",
                ));
            }
            if let Some(amount) = key.monthly_budget_usd {
                if amount.is_sign_negative() {
                    return Err(invalid(field("monthly_budget_usd"), "must not be negative"));
                }
                match tenants.get(&key.tenant) {
                    Some(other) if *other != amount => {
                        return Err(invalid(
                            field("monthly_budget_usd"),
                            format!(
                                "tenant {:?} already has a monthly budget of {other} on another key; give every key of a tenant the same budget",
                                key.tenant
                            ),
                        ));
                    }
                    _ => {
                        tenants.insert(key.tenant.clone(), amount);
                    }
                }
            }
            if let Some(bad) = key.cost_centers.iter().find(|c| !is_cost_center_name(c)) {
                return Err(invalid(
                    field("cost_centers"),
                    format!(
                        "{bad:?} is not a cost center name: use 1 to 64 letters, digits, '-', '_' or '.'"
                    ),
                ));
            }
            for (name, value) in [
                ("requests_per_second", key.requests_per_second),
                ("max_concurrent_tasks", key.max_concurrent_tasks),
            ] {
                if value == Some(0) {
                    return Err(invalid(
                        field(name),
                        "must be at least 1 (leave it out for no limit)",
                    ));
                }
            }
            keys.push(ApiKeyEntry {
                key_sha256: hash,
                tenant: key.tenant.clone(),
                cost_center: key.cost_center.clone(),
                cost_centers: key.cost_centers.clone(),
                limits: planex_server::rate_limit::KeyLimits {
                    requests_per_second: key.requests_per_second,
                    concurrent_tasks: key.max_concurrent_tasks,
                },
            });
        }
        let mut cost_centers = BTreeMap::new();
        for (i, cc) in budget.cost_centers.iter().enumerate() {
            if cc.monthly_budget_usd.is_sign_negative() {
                return Err(invalid(
                    format!("budget.cost_centers[{i}].monthly_budget_usd"),
                    "must not be negative",
                ));
            }
            cost_centers.insert((cc.tenant.clone(), cc.name.clone()), cc.monthly_budget_usd);
        }
        let (tenant_task_usd, cost_center_task_usd) = task_budgets(budget)?;
        if budget.default_tokens_per_step == 0 {
            return Err(invalid(
                "budget.default_tokens_per_step",
                "must be at least 1",
            ));
        }
        if cache.max_entries == 0 {
            return Err(invalid("cache.max_entries", "must be at least 1"));
        }
        Ok(ServiceSettings {
            server: ServerSettings {
                listen,
                auth,
                api_keys: keys,
                body_limit_bytes: server.body_limit_bytes,
                wait_timeout: Duration::from_secs(server.wait_timeout_secs),
                agent_name: server.agent_name.clone(),
                agent_partial_is_error,
                idempotency_ttl: Duration::from_secs(server.idempotency_ttl_secs),
                header_read_timeout: ServerSettings::DEFAULT_HEADER_READ_TIMEOUT,
            },
            budget: BudgetSettings {
                enabled: budget.enabled,
                default_tokens_per_step: budget.default_tokens_per_step,
                retry_after: Duration::from_secs(budget.retry_after_secs),
                tenant_monthly_usd: tenants,
                cost_center_monthly_usd: cost_centers,
                default_task_usd: unlimited_if_zero(budget.task_budget_usd),
                tenant_task_usd,
                cost_center_task_usd,
                admission_wait: Duration::from_secs(budget.admission_wait_secs),
            },
            cache: CacheSettings {
                enabled: cache.enabled,
                ttl: Duration::from_secs(cache.ttl_secs),
                max_entries: cache.max_entries,
                planner_version: cache.planner_version.clone(),
            },
        })
    }
}

/// A per-task budget: `0` means unlimited (`None`).
fn unlimited_if_zero(amount: Decimal) -> Option<Decimal> {
    (!amount.is_zero()).then_some(amount)
}

/// Per-task budgets by tenant and by (tenant, cost center), from `[budget]`.
#[allow(clippy::type_complexity)]
fn task_budgets(
    budget: &RawBudget,
) -> Result<
    (
        BTreeMap<String, Option<Decimal>>,
        BTreeMap<(String, String), Option<Decimal>>,
    ),
    ConfigError,
> {
    if budget.task_budget_usd.is_sign_negative() {
        return Err(invalid(
            "budget.task_budget_usd",
            "must be 0 (unlimited) or more",
        ));
    }
    let (mut tenants, mut centers) = (BTreeMap::new(), BTreeMap::new());
    for (i, entry) in budget.task_budgets.iter().enumerate() {
        if entry.usd.is_sign_negative() {
            return Err(invalid(
                format!("budget.task_budgets[{i}].usd"),
                "must be 0 (unlimited) or more",
            ));
        }
        let amount = unlimited_if_zero(entry.usd);
        match &entry.cost_center {
            Some(cc) => centers.insert((entry.tenant.clone(), cc.clone()), amount),
            None => tenants.insert(entry.tenant.clone(), amount),
        };
    }
    Ok((tenants, centers))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    fn key(tenant: &str, budget: Option<i64>, hash: &str) -> RawApiKey {
        RawApiKey {
            key_sha256: hash.into(),
            tenant: tenant.into(),
            cost_center: None,
            cost_centers: Vec::new(),
            monthly_budget_usd: budget.map(Decimal::from),
            requests_per_second: None,
            max_concurrent_tasks: None,
        }
    }

    fn settings(keys: &[RawApiKey], server: RawServer) -> Result<ServiceSettings, ConfigError> {
        ServiceSettings::from_raw(&server, keys, &RawBudget::default(), &RawCache::default())
    }

    #[test]
    fn auth_follows_the_keys_unless_told() {
        assert!(!settings(&[], RawServer::default()).unwrap().server.auth);
        let keys = [key("acme", Some(5), HASH)];
        let s = settings(&keys, RawServer::default()).unwrap();
        assert!(s.server.auth);
        assert_eq!(s.budget.tenant_monthly_usd["acme"], Decimal::from(5));
        let off = RawServer {
            auth: Some(false),
            ..RawServer::default()
        };
        assert!(!settings(&keys, off).unwrap().server.auth);
        let on = RawServer {
            auth: Some(true),
            ..RawServer::default()
        };
        let err = settings(&[], on).unwrap_err().to_string();
        assert!(err.contains("server.auth"), "{err}");
    }

    #[test]
    fn bad_values_name_their_field() {
        let err = settings(&[key("acme", None, "abc")], RawServer::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("api_keys[0].key_sha256"), "{err}");
        let other = HASH.replace('9', "8");
        let err = settings(
            &[key("acme", Some(5), HASH), key("acme", Some(6), &other)],
            RawServer::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("api_keys[1].monthly_budget_usd"), "{err}");
        let listen = RawServer {
            listen: "localhost".into(),
            ..RawServer::default()
        };
        let err = settings(&[], listen).unwrap_err().to_string();
        assert!(err.contains("server.listen"), "{err}");
    }

    #[test]
    fn the_sections_load_from_planex_toml() {
        let text = format!(
            "{}\n[server]\nlisten = \"0.0.0.0:9000\"\nbody_limit_bytes = 4096\n\n[[api_keys]]\nkey_sha256 = \"{HASH}\"\ntenant = \"acme\"\ncost_center = \"research\"\nmonthly_budget_usd = 12.5\n\n[budget]\nretry_after_secs = 5\ncost_centers = [{{ tenant = \"acme\", name = \"research\", monthly_budget_usd = 2 }}]\n\n[cache]\nttl_secs = 60\nplanner_version = \"2026-05\"\n",
            crate::config::DEFAULT_CONFIG
        );
        let service = crate::config::Config::from_toml(&text).unwrap().service;
        assert_eq!(service.server.listen.port(), 9000);
        assert!(service.server.auth);
        assert_eq!(
            service.server.api_keys[0].cost_center.as_deref(),
            Some("research")
        );
        assert_eq!(
            service.budget.tenant_monthly_usd["acme"],
            Decimal::new(125, 1)
        );
        assert_eq!(
            service.budget.cost_center_monthly_usd[&("acme".into(), "research".into())],
            Decimal::from(2)
        );
        assert_eq!(service.cache.ttl, Duration::from_secs(60));
        let err = crate::config::Config::from_toml(&format!(
            "{}\n[cache]\nttl = 5\n",
            crate::config::DEFAULT_CONFIG
        ))
        .unwrap_err();
        let err = planex_core::cause::chain_text(&err);
        assert!(err.contains("ttl"), "{err}");
    }

    #[test]
    fn a_key_lists_the_cost_centers_it_may_charge() {
        let keys = |extra: &str| {
            format!(
                "{}\n[[api_keys]]\nkey_sha256 = \"{HASH}\"\ntenant = \"acme\"\ncost_center = \"research\"\n{extra}\n",
                crate::config::DEFAULT_CONFIG
            )
        };
        let service =
            crate::config::Config::from_toml(&keys("cost_centers = [\"ads\", \"sales\"]"))
                .unwrap()
                .service;
        let key = &service.server.api_keys[0];
        assert_eq!(key.cost_centers, ["ads", "sales"]);
        assert_eq!(key.allowed_cost_centers(), ["research", "ads", "sales"]);
        // Without the field a key may charge only its own cost center.
        let service = crate::config::Config::from_toml(&keys("")).unwrap().service;
        assert_eq!(
            service.server.api_keys[0].allowed_cost_centers(),
            ["research"]
        );
        let err = crate::config::Config::from_toml(&keys("cost_centers = [\"bad name\"]"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("api_keys[0].cost_centers"), "{err}");
        // Unknown fields of a key are still refused.
        let err = crate::config::Config::from_toml(&keys("cost_centres = [\"ads\"]")).unwrap_err();
        let err = planex_core::cause::chain_text(&err);
        assert!(err.contains("cost_centres"), "{err}");
    }
}
