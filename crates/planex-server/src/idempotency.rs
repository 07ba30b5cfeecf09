//! The `Idempotency-Key` header of `POST /v1/tasks` and `POST /v1/chat/completions`: a retried
//! submission with the same key (of the same tenant) finds the task the first one created, and
//! creates and bills nothing new.
//!
//! Key decisions: the key is claimed in the store *before* the task is accepted (with the task id
//! it will get), so concurrent retries agree on one task; a submission refused before its task was
//! recorded (a 4xx) forgets the key again, so a corrected retry may use it. The claim is kept only
//! for [`pending_ttl`] until the task is recorded ([`Claim::recorded`] then keeps it for the full
//! TTL): a replica killed between the two leaves a claim that lapses by itself, and a retry that
//! finds a claim whose task is not recorded (yet) gets `409 submission_in_progress` with
//! `Retry-After`, never a `202` naming a task that does not exist. A key reused with a
//! different body (or on the other endpoint) is refused with 422 `idempotency_key_reused`. Keys are
//! kept as sha256 digests, scoped by tenant, for `[server] idempotency_ttl_secs` (24 h).

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use axum::http::HeaderMap;
use planex_core::TaskId;
use planex_store::Submission;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::time::Duration;

/// The request header.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Longest key accepted, in bytes.
const MAX_KEY_BYTES: usize = 255;

/// What a submission's `Idempotency-Key` decided.
pub(crate) enum Claim {
    /// No key: submit as usual.
    None,
    /// The key is new: submit under this task id; call [`Claim::refused`] if that fails.
    Fresh {
        /// The id the task must be created with.
        task_id: TaskId,
        tenant: String,
        digest: String,
    },
    /// The key names this task already: answer with it, create nothing.
    Existing(TaskId),
}

impl Claim {
    /// The task id a fresh submission must use.
    pub(crate) fn task_id(&self) -> Option<TaskId> {
        match self {
            Claim::Fresh { task_id, .. } => Some(task_id.clone()),
            _ => None,
        }
    }

    /// The task is recorded: keeps the key for the full `[server] idempotency_ttl_secs` (a failure
    /// is logged: the key then lapses after [`pending_ttl`], and a later retry creates a new task).
    pub(crate) async fn recorded(&self, state: &AppState) {
        if let Claim::Fresh { tenant, digest, .. } = self
            && let Err(error) = state
                .engine()
                .store()
                .confirm_submission(tenant, digest, state.server_settings().idempotency_ttl)
                .await
        {
            tracing::warn!(error = %planex_core::cause::ErrorChain(&error), "could not keep the idempotency key of an accepted task; a retry after it lapses submits the task again");
        }
    }

    /// The submission was refused before its task was recorded: forgets the key so a retry
    /// may use it again (a failure to forget is logged; the key then expires by itself).
    pub(crate) async fn refused(&self, state: &AppState) {
        if let Claim::Fresh { tenant, digest, .. } = self
            && let Err(error) = state
                .engine()
                .store()
                .forget_submission(tenant, digest)
                .await
        {
            tracing::warn!(error = %planex_core::cause::ErrorChain(&error), "could not forget the idempotency key of a refused submission; it expires by itself");
        }
    }
}

/// Claims the request's `Idempotency-Key` (if any) for a submission to `endpoint` with `body`.
pub(crate) async fn claim(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    endpoint: &str,
    body: &impl Serialize,
) -> Result<Claim, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(Claim::None);
    };
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= MAX_KEY_BYTES)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "Idempotency-Key must be 1 to {MAX_KEY_BYTES} visible ASCII characters, e.g. a UUID"
            ))
        })?;
    let digest = hex(&Sha256::digest(key.as_bytes()));
    let body = serde_json::to_string(body).map_err(ApiError::internal)?;
    let fingerprint = hex(&Sha256::digest(format!("{endpoint}\n{body}").as_bytes()));
    let tenant = caller.tenant_name().to_owned();
    let task_id = TaskId::new_random();
    let mine = Submission {
        task_id: task_id.clone(),
        fingerprint,
    };
    let ttl = pending_ttl(state).min(state.server_settings().idempotency_ttl);
    let existing = state
        .engine()
        .store()
        .remember_submission(&tenant, &digest, &mine, ttl)
        .await?;
    match existing {
        None => Ok(Claim::Fresh {
            task_id,
            tenant,
            digest,
        }),
        Some(first) if first.fingerprint == mine.fingerprint => Ok(Claim::Existing(first.task_id)),
        Some(first) => Err(ApiError::idempotency_key_reused(format!(
            "Idempotency-Key {key:?} was used for another request (task {}); use a new key for a new request",
            first.task_id
        ))),
    }
}

/// How long a claim is kept before its task is recorded: longer than accepting can take (the
/// longest wait for budget room, `[budget] admission_wait_secs`, plus a minute), so a live first
/// request always records its task under its claim.
pub(crate) fn pending_ttl(state: &AppState) -> Duration {
    let wait = state
        .engine()
        .budget()
        .map_or(Duration::ZERO, |guard| guard.settings().admission_wait);
    wait + Duration::from_secs(60)
}

/// How long a retry is asked to wait when the first submission with its key is still being
/// accepted.
const IN_PROGRESS_RETRY_AFTER: Duration = Duration::from_secs(2);

/// The task a retry's key names, if it is recorded; else `409 submission_in_progress`: the first
/// request is still accepting it, or it died before recording it (its claim then lapses within
/// [`pending_ttl`], after which a retry submits the task afresh).
pub(crate) async fn existing_task(state: &AppState, task_id: TaskId) -> Result<TaskId, ApiError> {
    if state.engine().store().get_task(&task_id).await?.is_some() {
        return Ok(task_id);
    }
    Err(ApiError::submission_in_progress(format!(
            "a submission with this Idempotency-Key is still being accepted (task {task_id}) or was cut off before its task was recorded; retry after {} s (a cut-off claim lapses within {} s)",
            IN_PROGRESS_RETRY_AFTER.as_secs(),
            pending_ttl(state).as_secs()
        ))
    .with_retry_after(IN_PROGRESS_RETRY_AFTER))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
