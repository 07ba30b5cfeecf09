//! API keys and tenancy: who is calling, for which tenant and cost center.
//!
//! Key decisions: only sha256 hashes of keys are held (from config), a presented key is hashed and
//! compared against every entry without early exit; a caller sees only its own tenant's tasks, and
//! another tenant's task answers 404 (not 403), so task ids cannot be probed. With auth disabled
//! every caller is the `anonymous` tenant. A key charges only the cost centers its entry allows (its
//! own default plus `cost_centers`): a request naming another one, in `X-Cost-Center` or a body's
//! `cost_center`, is refused with 403 listing the allowed ones, because a cost center is a budget and
//! a spend line that another team owns. With auth disabled any cost center may be named.

use crate::AppState;
use crate::error::ApiError;
use crate::rate_limit::{KeyLimits, TaskSlot};
use axum::extract::FromRequestParts;
use axum::http::Method;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use serde_json::json;
use sha2::{Digest, Sha256};

/// The header that overrides the key's default cost center.
pub const COST_CENTER: &str = "x-cost-center";

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The tenant (`None` when auth is disabled).
    pub tenant: Option<String>,
    /// The cost center charged: `X-Cost-Center`, else the key's default.
    pub cost_center: Option<String>,
    /// The cost centers this caller may charge (`None` when auth is disabled: any).
    pub allowed_cost_centers: Option<Vec<String>>,
    /// The caller's API key (its index in `[[api_keys]]`) and that key's rate limits.
    pub key: Option<(usize, KeyLimits)>,
}

impl Caller {
    /// Whether this caller may see a task owned by `tenant`.
    pub fn owns(&self, tenant: Option<&str>) -> bool {
        match &self.tenant {
            // Auth disabled: one tenant, everything visible.
            None => true,
            Some(mine) => tenant == Some(mine.as_str()),
        }
    }

    /// A concurrent-task slot when the caller's key limits its concurrent tasks (`None`:
    /// unlimited); a 429 when all its slots are taken.
    pub fn task_slot(&self, state: &AppState) -> Result<Option<TaskSlot>, ApiError> {
        match self.key {
            Some((
                index,
                KeyLimits {
                    concurrent_tasks: Some(limit),
                    ..
                },
            )) => state.rate_limits().task_slot(index, limit).map(Some),
            _ => Ok(None),
        }
    }

    /// The tenant name used for budgets and spend.
    pub fn tenant_name(&self) -> &str {
        self.tenant.as_deref().unwrap_or("anonymous")
    }

    /// Checks that this caller may charge cost center `requested` (a header's or a body's) and
    /// returns its checked name: 400 for a malformed name, 403 when the key does not allow it.
    pub fn charge(&self, requested: &str) -> Result<String, ApiError> {
        let name = check_cost_center(requested)?;
        match &self.allowed_cost_centers {
            Some(allowed) if !allowed.contains(&name) => Err(ApiError::forbidden(format!(
                "this API key may not charge cost center {name:?}; it may charge: {} \
                     (list more in cost_centers of its [[api_keys]] entry)",
                allowed.join(", ")
            ))
            .with_details(json!({
                "cost_center": name,
                "allowed_cost_centers": allowed,
                "tenant": self.tenant,
            }))),
            _ => Ok(name),
        }
    }
}

/// Whether `name` is a well-formed cost center: 1 to 64 letters, digits, `-`, `_` or `.` (it becomes
/// a metric and ledger key, so it must stay short and plain).
pub fn is_cost_center_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// Checks a cost center name (see [`is_cost_center_name`]; surrounding blanks are trimmed).
pub fn check_cost_center(name: &str) -> Result<String, ApiError> {
    let text = name.trim();
    if !is_cost_center_name(text) {
        return Err(ApiError::bad_request(
            "a cost center must be 1 to 64 characters of letters, digits, '-', '_' or '.'",
        ));
    }
    Ok(text.to_owned())
}

fn cost_center_header(parts: &Parts) -> Result<Option<String>, ApiError> {
    let Some(value) = parts.headers.get(COST_CENTER) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| ApiError::bad_request("X-Cost-Center must be plain ASCII"))?;
    check_cost_center(text).map(Some)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header_cc = cost_center_header(parts)?;
        let settings = state.server_settings();
        if !settings.auth {
            return Ok(Caller {
                tenant: None,
                cost_center: header_cc,
                allowed_cost_centers: None,
                key: None,
            });
        }
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::unauthorized("missing API key; send Authorization: Bearer <key>")
            })?;
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for (index, entry) in settings.api_keys.iter().enumerate() {
            let diff = entry
                .key_sha256
                .iter()
                .zip(presented.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b));
            if diff == 0 && found.is_none() {
                found = Some((index, entry));
            }
        }
        let (index, entry) = found.ok_or_else(|| {
            ApiError::unauthorized("unknown API key; check the key or ask for one")
        })?;
        // Requests that create work count against the key's rate (reads do not).
        if let (true, Some(per_second)) = (
            parts.method == Method::POST,
            entry.limits.requests_per_second,
        ) {
            state.rate_limits().request(index, per_second)?;
        }
        let mut caller = Caller {
            tenant: Some(entry.tenant.clone()),
            cost_center: entry.cost_center.clone(),
            allowed_cost_centers: Some(entry.allowed_cost_centers()),
            key: Some((index, entry.limits)),
        };
        if let Some(requested) = header_cc {
            caller.cost_center = Some(caller.charge(&requested)?);
        }
        Ok(caller)
    }
}
