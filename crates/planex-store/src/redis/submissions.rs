//! The Redis store's idempotency keys: `P:idem:{TENANT}:{DIGEST}`, a string holding the
//! [`Submission`] as JSON, with a `PX` expiry.
//!
//! Key decision: no script is needed: `SET … NX PX` claims the key atomically and, when it was
//! taken, a `GET` reads the winner; a key that expired between the two is claimed again.

use super::errors::{corrupt_by, unavailable, unavailable_because};
use super::shared::Core;
use crate::Submission;
use crate::error::StoreError;
use std::time::Duration;

/// Remembers `submission` under the key unless it names one already (returned instead).
pub(super) async fn remember(
    core: &Core,
    tenant: &str,
    digest: &str,
    submission: &Submission,
    ttl: Duration,
) -> Result<Option<Submission>, StoreError> {
    let key = core.keys.idempotency(tenant, digest);
    let value = serde_json::to_string(submission)
        .map_err(|e| corrupt_by("cannot encode an idempotency key's submission", e))?;
    let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
    // Twice at most: the second round only runs when the key expired between SET and GET.
    for _ in 0..2 {
        let set: Option<String> = redis::cmd("SET")
            .arg(&key)
            .arg(&value)
            .arg("NX")
            .arg("PX")
            .arg(ttl_ms)
            .query_async(&mut core.conn())
            .await
            .map_err(|e| unavailable("remember an idempotency key", e))?;
        if set.is_some() {
            return Ok(None);
        }
        let existing: Option<String> = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut core.conn())
            .await
            .map_err(|e| unavailable("read an idempotency key", e))?;
        if let Some(existing) = existing {
            let submission = serde_json::from_str(&existing)
                .map_err(|e| corrupt_by(format!("idempotency key {key}"), e))?;
            return Ok(Some(submission));
        }
    }
    Err(unavailable_because(format!(
        "redis idempotency key {key} was neither free nor readable twice in a row; retry the request"
    )))
}

/// Keeps the key for `ttl` from now (`PEXPIRE`; a key that is gone stays gone).
pub(super) async fn confirm(
    core: &Core,
    tenant: &str,
    digest: &str,
    ttl: Duration,
) -> Result<(), StoreError> {
    let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
    let _kept: i64 = redis::cmd("PEXPIRE")
        .arg(core.keys.idempotency(tenant, digest))
        .arg(ttl_ms)
        .query_async(&mut core.conn())
        .await
        .map_err(|e| unavailable("keep an idempotency key", e))?;
    Ok(())
}

/// Forgets the key.
pub(super) async fn forget(core: &Core, tenant: &str, digest: &str) -> Result<(), StoreError> {
    let _deleted: i64 = redis::cmd("DEL")
        .arg(core.keys.idempotency(tenant, digest))
        .query_async(&mut core.conn())
        .await
        .map_err(|e| unavailable("forget an idempotency key", e))?;
    Ok(())
}
