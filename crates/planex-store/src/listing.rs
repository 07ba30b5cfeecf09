//! Listing a tenant's tasks, newest first, a page at a time (`Store::list_tasks`, behind
//! `GET /v1/tasks`).
//!
//! Key decisions: each backend keeps an index of task ids per tenant ordered by creation time, so
//! a page costs the page, not the tenant's history. A status filter is applied while walking that
//! index, and one call walks at most [`SCAN_LIMIT`] entries: a rare status can give a short (even
//! empty) page that still has a cursor, so one request never scans a tenant's whole history. The
//! cursor is the last entry walked (creation ms and task id), so pages stay stable while tasks are
//! added: new tasks appear before the first page, never inside a later one.

use crate::types::TaskStatus;
use planex_core::TaskId;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Most index entries one `list_tasks` call walks (matching or not).
pub const SCAN_LIMIT: usize = 2_000;

/// Longest task text a listing shows (characters; the full text is on the task itself).
pub const PREVIEW_CHARS: usize = 200;

/// Where a page of tasks starts: after this entry (older than it, newest first).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TaskCursor {
    /// The entry's creation time (ms since the epoch, the store's clock).
    pub created_at_ms: u64,
    /// The entry's task id (orders tasks created in the same millisecond).
    pub task_id: TaskId,
}

/// A cursor that is not one `list_tasks` gave out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "cursor {0:?} is not one this API gave out; pass the `next_cursor` of the previous page, or \
     leave it out for the first page"
)]
pub struct BadCursor(pub String);

impl fmt::Display for TaskCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_{}", self.created_at_ms, self.task_id.0)
    }
}

impl FromStr for TaskCursor {
    type Err = BadCursor;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || BadCursor(text.to_owned());
        let (ms, id) = text.split_once('_').ok_or_else(bad)?;
        let created_at_ms = ms.parse().map_err(|_| bad())?;
        if id.is_empty() {
            return Err(bad());
        }
        Ok(TaskCursor {
            created_at_ms,
            task_id: TaskId(id.to_owned()),
        })
    }
}

/// What to list: one tenant's tasks (`None`: the tasks created without a tenant, as when the API
/// runs without keys), optionally of one status, after a cursor, at most `limit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskQuery {
    /// The tenant whose tasks are listed.
    pub tenant: Option<String>,
    /// Only tasks in this status, when given.
    pub status: Option<TaskStatus>,
    /// Start after this entry (`None`: the newest task).
    pub after: Option<TaskCursor>,
    /// Most tasks on the page (at least 1).
    pub limit: usize,
}

/// One task on a page: what identifies it and where it stands, not its steps or results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskListing {
    /// Its id.
    pub task_id: TaskId,
    /// Its status now.
    pub status: TaskStatus,
    /// The start of its task text (at most [`PREVIEW_CHARS`] characters).
    pub task: String,
    /// Its cost center, when one was charged.
    pub cost_center: Option<String>,
    /// Its task type, when one was named.
    pub task_type: Option<String>,
    /// Creation time (ms since the epoch).
    pub created_at_ms: u64,
    /// When it finished (ms since the epoch), once it has.
    pub finished_at_ms: Option<u64>,
}

/// A page of tasks, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TaskPage {
    /// The tasks on it.
    pub tasks: Vec<TaskListing>,
    /// Where the next page starts; `None` when the listing is exhausted.
    pub next: Option<TaskCursor>,
}

/// `text` cut to [`PREVIEW_CHARS`] characters (with `…` when cut).
pub fn preview(text: &str) -> String {
    planex_core::clip_chars(text, PREVIEW_CHARS)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_what_they_did_not_give() {
        let cursor = TaskCursor {
            created_at_ms: 1_764_000_000_123,
            task_id: TaskId("a_b-c".into()),
        };
        assert_eq!(cursor.to_string().parse::<TaskCursor>().unwrap(), cursor);
        for bad in ["", "123", "x_abc", "123_", "-1_a"] {
            assert!(bad.parse::<TaskCursor>().is_err(), "{bad}");
        }
    }

    #[test]
    fn previews_cut_long_texts_on_a_character_boundary() {
        assert_eq!(preview("short"), "short");
        let long = "é".repeat(PREVIEW_CHARS + 5);
        let cut = preview(&long);
        assert_eq!(cut.chars().count(), PREVIEW_CHARS + 1);
        assert!(cut.ends_with('…'));
    }
}
