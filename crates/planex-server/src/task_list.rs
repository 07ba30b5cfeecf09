//! `GET /v1/tasks`: the caller's tenant's tasks, newest first, optionally of one status, a page at
//! a time with an opaque cursor (`Store::list_tasks`; docs/ARCHITECTURE.md §7).
//!
//! Key decision: a page walks a bounded part of the tenant's index, so with a status filter a
//! page may hold fewer than `limit` tasks (even none) and still carry `next_cursor`: clients
//! follow `next_cursor` until it is `null`, never stop at a short page.

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiQuery;
use axum::extract::State;
use planex_store::{TaskCursor, TaskListing, TaskQuery, TaskStatus};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The page size when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 20;
/// The largest page size a client may ask for.
pub const MAX_LIMIT: usize = 100;

/// `GET /v1/tasks` query.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TaskListQuery {
    /// Only tasks in this status: `planning`, `running`, `complete`, `partial`, `failed`,
    /// `rejected` or `cancelled`.
    #[serde(default)]
    #[param(value_type = Option<String>)]
    pub status: Option<TaskStatus>,
    /// Most tasks on the page (1-100, default 20).
    #[serde(default)]
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page (left out: the newest tasks).
    #[serde(default)]
    pub cursor: Option<String>,
}

/// One task of a listing: what it is and where it stands (`GET /v1/tasks/{id}` has the rest).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TaskListItem {
    /// Its id.
    pub task_id: String,
    /// `planning`, `running`, `complete`, `partial`, `failed`, `rejected` or `cancelled`.
    pub status: String,
    /// The start of its task text (at most 200 characters).
    pub task: String,
    /// The cost center charged, when one was.
    pub cost_center: Option<String>,
    /// Its task type, when one was named.
    pub task_type: Option<String>,
    /// Creation time (ms since the epoch).
    pub created_at_ms: u64,
    /// When it finished (ms since the epoch), once it has.
    pub finished_at_ms: Option<u64>,
}

/// A page of `GET /v1/tasks`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TaskList {
    /// The tasks, newest first.
    pub tasks: Vec<TaskListItem>,
    /// Pass as `cursor` for the next page; `null` when there are no more tasks. A page may be
    /// shorter than `limit` and still have one.
    pub next_cursor: Option<String>,
}

impl From<TaskListing> for TaskListItem {
    fn from(task: TaskListing) -> Self {
        TaskListItem {
            task_id: task.task_id.0,
            status: task.status.to_string(),
            task: task.task,
            cost_center: task.cost_center,
            task_type: task.task_type,
            created_at_ms: task.created_at_ms,
            finished_at_ms: task.finished_at_ms,
        }
    }
}

/// List your tasks, newest first.
#[utoipa::path(get, path = "/v1/tasks", tag = "tasks", params(TaskListQuery),
    responses(
        (status = 200, body = TaskList),
        (status = 400, description = "A bad status, limit or cursor", body = ErrorBody),
        (status = 401, body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list_tasks(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<TaskListQuery>,
) -> Result<axum::Json<TaskList>, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit {limit} is out of range: ask for 1 to {MAX_LIMIT} tasks a page"
        ))
        .with_param("limit"));
    }
    let after = query
        .cursor
        .as_deref()
        .map(str::parse::<TaskCursor>)
        .transpose()
        .map_err(|e| ApiError::bad_request(e.to_string()).with_param("cursor"))?;
    let page = state
        .engine()
        .store()
        .list_tasks(&TaskQuery {
            tenant: caller.tenant.clone(),
            status: query.status,
            after,
            limit,
        })
        .await?;
    Ok(axum::Json(TaskList {
        tasks: page.tasks.into_iter().map(TaskListItem::from).collect(),
        next_cursor: page.next.map(|c| c.to_string()),
    }))
}
