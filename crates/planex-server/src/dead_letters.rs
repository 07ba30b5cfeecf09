//! Dead letters over HTTP: `GET /v1/dead-letters` (the caller's tenant's letters, newest first,
//! filtered by tool and error text, a page at a time), `GET /v1/dead-letters/{id}`, `POST
//! /v1/dead-letters/{id}/replay` and `DELETE /v1/dead-letters/{id}` (docs/ARCHITECTURE.md §7).
//!
//! Key decisions: a letter of another tenant is answered exactly like one that does not exist
//! (404), so ids leak nothing. A replay submits a new task linked to the letter's task
//! (`retry_of`, `Engine::replay`) and answers `202` like a submission; with `?purge=true` the
//! letter is purged once the new task is recorded. The letter's task itself never changes.

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiQuery, RequestId};
use crate::task_list::{DEFAULT_LIMIT, MAX_LIMIT};
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use planex_store::{DeadLetter, DeadLetterQuery, LetterId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// `GET /v1/dead-letters` query.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterListQuery {
    /// Only letters of this tool.
    #[serde(default)]
    pub tool: Option<String>,
    /// Only letters whose error (or an earlier attempt's) contains this text, ignoring case.
    #[serde(default)]
    pub error: Option<String>,
    /// Most letters on the page (1-100, default 20).
    #[serde(default)]
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page (left out: the newest letters).
    #[serde(default)]
    pub cursor: Option<String>,
}

/// One dead letter: a step that failed for good, with why.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeadLetterView {
    /// Its id (`MS-SEQ`), for `GET`, `replay` and `DELETE`.
    pub id: String,
    /// The task.
    pub task_id: String,
    /// The step.
    pub step_id: u32,
    /// Its tool.
    pub tool_name: String,
    /// Its tier.
    pub tier: String,
    /// Why it failed (the last attempt's error).
    pub error: String,
    /// Attempts made by the last worker (retries and escalation included).
    pub attempts: u32,
    /// Deliveries to workers (more than 1: a worker died or hung holding it).
    pub deliveries: u32,
    /// When it was parked (ms since the epoch).
    pub at_ms: u64,
    /// What went wrong before `error`, in order: lost deliveries, then earlier attempts.
    pub attempt_errors: Vec<String>,
}

impl From<DeadLetter> for DeadLetterView {
    fn from(letter: DeadLetter) -> Self {
        DeadLetterView {
            id: letter.id,
            task_id: letter.task_id.0,
            step_id: letter.step_id.0,
            tool_name: letter.tool_name,
            tier: letter.tier,
            error: crate::redact::urls(&letter.error),
            attempts: letter.attempts,
            deliveries: letter.deliveries,
            at_ms: letter.at_ms,
            attempt_errors: letter
                .attempt_errors
                .iter()
                .map(|e| crate::redact::urls(e))
                .collect(),
        }
    }
}

impl DeadLetterView {
    /// Whether the shown (redacted) error or an earlier attempt's contains `text`, ignoring case.
    fn mentions(&self, text: &str) -> bool {
        planex_store::errors_mention(&self.error, &self.attempt_errors, text)
    }
}

/// A page of `GET /v1/dead-letters`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeadLetterList {
    /// The letters, newest first.
    pub dead_letters: Vec<DeadLetterView>,
    /// Pass as `cursor` for the next page; `null` when there are no more. A page may be shorter
    /// than `limit` (filters are applied over a bounded walk) and still have one.
    pub next_cursor: Option<String>,
}

/// `POST /v1/dead-letters/{id}/replay` query.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReplayQuery {
    /// Purge the letter once the new task is recorded (default false).
    #[serde(default)]
    pub purge: bool,
}

/// The answer to a replay: the new task, and what it reuses and runs again.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReplayView {
    /// The new task's id.
    pub task_id: String,
    /// The task it repeats (the letter's).
    pub retry_of: String,
    /// Where to read the new task.
    pub location: String,
    /// Where its events stream.
    pub events: String,
    /// Plan steps started complete with the original's results (not run or billed again).
    pub reused_steps: Vec<u32>,
    /// Steps that run again: the dead step, steps it skipped, any other unfinished step, and the
    /// synthesis step.
    pub rerun_steps: Vec<u32>,
    /// Whether the letter was purged (`?purge=true`).
    pub purged: bool,
}

/// The letter with `id`, when it is the caller's tenant's (else 404, as for no letter).
async fn owned_letter(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<(LetterId, DeadLetter), ApiError> {
    let letter_id: LetterId = id
        .parse()
        .map_err(|e: planex_store::BadLetterId| ApiError::not_found(e.to_string()))?;
    let not_found = || {
        ApiError::not_found(format!(
            "no dead letter {id} (purged, trimmed past the queue's cap, or never parked); `GET /v1/dead-letters` lists them"
        ))
    };
    let letter = state
        .engine()
        .store()
        .dead_letter(letter_id)
        .await?
        .ok_or_else(not_found)?;
    if letter.tenant != caller.tenant {
        return Err(not_found());
    }
    Ok((letter_id, letter))
}

/// List your dead letters, newest first.
#[utoipa::path(get, path = "/v1/dead-letters", tag = "dead-letters", params(DeadLetterListQuery),
    responses(
        (status = 200, body = DeadLetterList),
        (status = 400, description = "A bad limit or cursor", body = ErrorBody),
        (status = 401, body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<DeadLetterListQuery>,
) -> Result<axum::Json<DeadLetterList>, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit {limit} is out of range: ask for 1 to {MAX_LIMIT} dead letters a page"
        ))
        .with_param("limit"));
    }
    let before = query
        .cursor
        .as_deref()
        .map(str::parse::<LetterId>)
        .transpose()
        .map_err(|e| ApiError::bad_request(e.to_string()).with_param("cursor"))?;
    let error = query.error.filter(|e| !e.is_empty());
    let page = state
        .engine()
        .store()
        .dead_letter_page(&DeadLetterQuery {
            tenant: caller.tenant.clone(),
            tool: query.tool.filter(|t| !t.is_empty()),
            error: error.clone(),
            before,
            limit,
        })
        .await?;
    // The store matched the raw error text; a letter matching only in what the view redacts (an
    // internal address) is left out, so the filter reveals nothing the letters do not show.
    let shown = page
        .letters
        .into_iter()
        .map(DeadLetterView::from)
        .filter(|view| error.as_ref().is_none_or(|text| view.mentions(text)))
        .collect();
    Ok(axum::Json(DeadLetterList {
        dead_letters: shown,
        next_cursor: page.next.map(|id| id.to_string()),
    }))
}

/// Read one dead letter.
#[utoipa::path(get, path = "/v1/dead-letters/{id}", tag = "dead-letters",
    params(("id" = String, Path, description = "Dead letter id (`MS-SEQ`)")),
    responses(
        (status = 200, body = DeadLetterView),
        (status = 401, body = ErrorBody),
        (status = 404, description = "No such dead letter for this tenant", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<DeadLetterView>, ApiError> {
    let (_, letter) = owned_letter(&state, &caller, &id).await?;
    Ok(axum::Json(letter.into()))
}

/// Replay a dead letter: a new task repeating the letter's task, linked by `retry_of`, that
/// reuses the results of its completed plan steps and runs the rest again (the dead step, the
/// steps it skipped, the synthesis). The original task is not changed.
#[utoipa::path(post, path = "/v1/dead-letters/{id}/replay", tag = "dead-letters",
    params(("id" = String, Path, description = "Dead letter id (`MS-SEQ`)"), ReplayQuery),
    responses(
        (status = 202, description = "Accepted: the new task is planning its start", body = ReplayView),
        (status = 400, description = "Nothing to replay (the task never ran, completed every step, or was re-planned)", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "This key may not charge the cost center of the letter's task", body = ErrorBody),
        (status = 404, description = "No such dead letter (or its task expired) for this tenant", body = ErrorBody),
        (status = 409, description = "The letter's task is still running: replay it once it ends", body = ErrorBody),
        (status = 422, description = "The plan no longer passes today's rules (a tool was removed)", body = ErrorBody),
        (status = 429, description = "Over budget, or the key's concurrent tasks are all taken", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn replay(
    State(state): State<AppState>,
    caller: Caller,
    request_id: RequestId,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ReplayQuery>,
) -> Result<Response, ApiError> {
    let (letter_id, letter) = owned_letter(&state, &caller, &id).await?;
    let original = state
        .engine()
        .store()
        .get_task(&letter.task_id)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "task {} of dead letter {id} is gone (finished tasks expire): it cannot be replayed; purge the letter",
                letter.task_id
            ))
        })?;
    // The replay charges the original's cost center: this key must be allowed to (403 otherwise).
    if let Some(center) = &original.cost_center {
        caller.charge(center)?;
    }
    let slot = caller.task_slot(&state)?;
    let replayed = match state.engine().replay(&original, Some(request_id.0)).await {
        Ok(replayed) => replayed,
        Err(planex_engine::EngineError::Store(planex_store::StoreError::WrongStatus {
            status,
            ..
        })) => {
            return Err(ApiError::conflict(format!(
                "task {} of dead letter {id} is {status}: replay it once it ends",
                letter.task_id
            ))
            .with_details(serde_json::json!({"status": status})));
        }
        Err(error) => return Err(error.into()),
    };
    let task_id = replayed.accepted.task_id.clone();
    if let Some(slot) = slot {
        slot.hold_until_done(state.engine().store().clone(), task_id.clone());
    }
    let purged = query.purge && state.engine().store().purge_dead_letter(letter_id).await?;
    let location = format!("/v1/tasks/{task_id}");
    let view = ReplayView {
        task_id: task_id.0.clone(),
        retry_of: letter.task_id.0,
        events: format!("{location}/events"),
        location: location.clone(),
        reused_steps: replayed.reused.iter().map(|s| s.0).collect(),
        rerun_steps: replayed.rerun.iter().map(|s| s.0).collect(),
        purged,
    };
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        axum::Json(view),
    )
        .into_response())
}

/// Purge a dead letter (its task is unchanged).
#[utoipa::path(delete, path = "/v1/dead-letters/{id}", tag = "dead-letters",
    params(("id" = String, Path, description = "Dead letter id (`MS-SEQ`)")),
    responses(
        (status = 204, description = "Purged"),
        (status = 401, body = ErrorBody),
        (status = 404, description = "No such dead letter for this tenant", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn purge(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let (letter_id, _) = owned_letter(&state, &caller, &id).await?;
    state.engine().store().purge_dead_letter(letter_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
