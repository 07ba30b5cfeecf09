//! `GET /v1/tasks/events`: the caller's tenant's task status changes, live, as Server-Sent Events
//! (`Store::task_changes`; the dashboard's tasks list follows it; docs/ARCHITECTURE.md §7).
//!
//! Key decision: an event says which task changed and to what, nothing more; a client refreshes
//! what it shows from `GET /v1/tasks`. The stream opens with `resync` and says `resync` again
//! wherever changes may have been missed (a Redis reconnect, a client too slow to keep up), so a
//! client that reloads its list on `resync` and applies `task` events never shows a stale list.

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use planex_store::TaskChange;

/// The SSE event of one change.
fn event_of(change: TaskChange) -> Event {
    match change {
        TaskChange::Status {
            task_id, status, ..
        } => Event::default().event("task").data(
            serde_json::json!({"task_id": task_id.0, "status": status.to_string()}).to_string(),
        ),
        TaskChange::Resync => Event::default().event("resync").data("{}"),
    }
}

/// Follow your tasks' status changes.
#[utoipa::path(get, path = "/v1/tasks/events", tag = "tasks",
    responses(
        (status = 200, description = "text/event-stream, live only (no history). Event names: `resync` (first, and again wherever changes may have been missed: reload the list from `GET /v1/tasks`) and `task` (`{task_id, status}`: one of your tasks was created, started or finished). It ends only when the server shuts down.", content_type = "text/event-stream", body = String),
        (status = 401, body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn follow(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    let changes = state.engine().store().task_changes().await?;
    let tenant = caller.tenant.clone();
    let shutdown = state.shutdown_token().clone().cancelled_owned();
    let events = futures::stream::once(async { TaskChange::Resync })
        .chain(changes)
        .filter(move |change| futures::future::ready(change.concerns(tenant.as_deref())))
        .map(|change| Ok::<Event, std::convert::Infallible>(event_of(change)))
        .take_until(shutdown);
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response())
}
