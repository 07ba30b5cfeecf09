//! Dead letters: the steps that failed for good, parked for people to inspect, replay or purge
//! (`Store::dead_letter_page`, behind `GET /v1/dead-letters` and `planex dlq`).
//!
//! Key decisions: a letter's id is its place in the dead-letter queue (`MS-SEQ`, the Redis
//! stream entry id; the memory store makes ids of the same shape), so ids order letters by when
//! they were parked and a page's cursor is simply the last id it showed. Letters carry their
//! task's tenant and a page only ever holds one tenant's letters. Filters (tool, error text) are
//! applied while walking the queue newest first, and one call walks at most [`SCAN_LIMIT`]
//! letters: a rare filter can give a short page that still has a cursor, so one request never
//! scans the whole queue.

use planex_core::{StepId, TaskId};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

pub use crate::listing::SCAN_LIMIT;

/// A failed step parked for inspection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Its id in the dead-letter queue (`MS-SEQ`; see [`LetterId`]). Empty only in letters built
    /// by hand: stores always set it.
    #[serde(default)]
    pub id: String,
    /// The task.
    pub task_id: TaskId,
    /// The task's tenant (`None`: a task created without one, or a letter parked before letters
    /// named tenants).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The step.
    pub step_id: StepId,
    /// Its tool.
    pub tool_name: String,
    /// Its tier.
    pub tier: String,
    /// Why it failed.
    pub error: String,
    /// Attempts made by the last worker.
    pub attempts: u32,
    /// Deliveries to workers.
    pub deliveries: u32,
    /// When it was parked (ms since epoch).
    pub at_ms: u64,
    /// What went wrong before `error`, in order: each delivery a worker lost (its lease expired:
    /// it died or hung) and each failed attempt of the last worker before its last one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempt_errors: Vec<String>,
}

/// A dead letter's id: when it was parked (ms since the epoch) and a sequence number among the
/// letters of that millisecond. Written `MS-SEQ`, as Redis writes stream entry ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LetterId {
    /// Milliseconds since the epoch (the store's clock).
    pub ms: u64,
    /// Order among letters of the same millisecond.
    pub seq: u64,
}

impl LetterId {
    /// The id after `last` for a letter parked at `now_ms`: `now_ms-0`, unless the clock has not
    /// moved past `last`, then one more than `last` (ids only grow).
    pub fn next_after(last: Option<LetterId>, now_ms: u64) -> LetterId {
        match last {
            Some(last) if last.ms >= now_ms => LetterId {
                ms: last.ms,
                seq: last.seq + 1,
            },
            _ => LetterId { ms: now_ms, seq: 0 },
        }
    }
}

/// An id that is not a dead letter's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a dead letter id; ids look like 1764000000000-0, as `GET /v1/dead-letters` and \
     `planex dlq list` show them"
)]
pub struct BadLetterId(pub String);

impl fmt::Display for LetterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

impl FromStr for LetterId {
    type Err = BadLetterId;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || BadLetterId(text.to_owned());
        let (ms, seq) = text.split_once('-').ok_or_else(bad)?;
        let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
        if !digits(ms) || !digits(seq) {
            return Err(bad());
        }
        Ok(LetterId {
            ms: ms.parse().map_err(|_| bad())?,
            seq: seq.parse().map_err(|_| bad())?,
        })
    }
}

/// What to list: one tenant's letters (`None`: letters of tasks created without a tenant, as when
/// the API runs without keys), optionally of one tool and with an error containing some text,
/// parked before a cursor, at most `limit`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeadLetterQuery {
    /// The tenant whose letters are listed.
    pub tenant: Option<String>,
    /// Only letters of this tool, when given.
    pub tool: Option<String>,
    /// Only letters whose error (or an earlier attempt's) contains this text, ignoring case.
    pub error: Option<String>,
    /// Only letters parked before this one (`None`: start at the newest).
    pub before: Option<LetterId>,
    /// Most letters on the page (at least 1).
    pub limit: usize,
}

impl DeadLetterQuery {
    /// Whether `letter` belongs on this query's pages (its tenant and filters; not the cursor).
    pub fn matches(&self, letter: &DeadLetter) -> bool {
        if letter.tenant != self.tenant {
            return false;
        }
        if self.tool.as_ref().is_some_and(|t| *t != letter.tool_name) {
            return false;
        }
        match &self.error {
            None => true,
            Some(text) => errors_mention(&letter.error, &letter.attempt_errors, text),
        }
    }
}

/// Whether `error` or one of `earlier` contains `text`, ignoring case: the `error` filter of
/// [`DeadLetterQuery`] (the API applies it again to the errors as it shows them).
pub fn errors_mention(error: &str, earlier: &[String], text: &str) -> bool {
    let text = text.to_lowercase();
    std::iter::once(error)
        .chain(earlier.iter().map(String::as_str))
        .any(|e| e.to_lowercase().contains(&text))
}

/// A page of dead letters, newest first.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeadLetterPage {
    /// The letters on it.
    pub letters: Vec<DeadLetter>,
    /// Where the next page starts (pass it as `before`); `None` when the queue is exhausted.
    pub next: Option<LetterId>,
}

/// Builds a page from letters walked newest first (each with its id), stopping after `limit`
/// matches or [`SCAN_LIMIT`] letters walked; `more` says whether letters are left beyond `walk`.
pub(crate) fn page_of(
    query: &DeadLetterQuery,
    walk: impl IntoIterator<Item = DeadLetter>,
    more: bool,
) -> DeadLetterPage {
    let limit = query.limit.max(1);
    let mut page = DeadLetterPage::default();
    let mut walk = walk.into_iter().peekable();
    let mut walked = 0;
    while let Some(letter) = walk.next() {
        walked += 1;
        let id = letter.id.parse::<LetterId>().ok();
        if query.matches(&letter) {
            page.letters.push(letter);
        }
        if page.letters.len() >= limit || walked >= SCAN_LIMIT {
            if walk.peek().is_some() || more {
                page.next = id;
            }
            return page;
        }
    }
    page
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn letter(id: &str, tenant: Option<&str>, tool: &str, error: &str) -> DeadLetter {
        DeadLetter {
            id: id.into(),
            task_id: TaskId::from("t"),
            tenant: tenant.map(str::to_owned),
            step_id: StepId(1),
            tool_name: tool.into(),
            tier: "small".into(),
            error: error.into(),
            attempts: 1,
            deliveries: 1,
            at_ms: 0,
            attempt_errors: vec!["HTTP 503 from the endpoint".into()],
        }
    }

    #[test]
    fn ids_round_trip_order_and_refuse_what_is_not_one() {
        let id: LetterId = "1764000000000-7".parse().unwrap();
        assert_eq!(id.to_string(), "1764000000000-7");
        assert!(id < "1764000000000-8".parse().unwrap());
        assert!(id < "1764000000001-0".parse().unwrap());
        for bad in ["", "12", "12-", "-1", "a-1", "1-b", "1-2-3", "+1-2"] {
            assert!(bad.parse::<LetterId>().is_err(), "{bad}");
        }
        let first = LetterId::next_after(None, 10);
        assert_eq!(first, LetterId { ms: 10, seq: 0 });
        assert_eq!(
            LetterId::next_after(Some(first), 9),
            LetterId { ms: 10, seq: 1 }
        );
        assert_eq!(
            LetterId::next_after(Some(first), 11),
            LetterId { ms: 11, seq: 0 }
        );
    }

    #[test]
    fn a_query_matches_its_tenant_tool_and_error_text_only() {
        let query = DeadLetterQuery {
            tenant: Some("acme".into()),
            tool: Some("web_search".into()),
            error: Some("timed OUT".into()),
            ..Default::default()
        };
        assert!(query.matches(&letter("1-0", Some("acme"), "web_search", "call timed out")));
        assert!(!query.matches(&letter("1-0", Some("other"), "web_search", "timed out")));
        assert!(!query.matches(&letter("1-0", None, "web_search", "timed out")));
        assert!(!query.matches(&letter("1-0", Some("acme"), "summarize", "timed out")));
        assert!(!query.matches(&letter("1-0", Some("acme"), "web_search", "HTTP 400")));
        let earlier = DeadLetterQuery {
            tenant: Some("acme".into()),
            error: Some("503".into()),
            ..Default::default()
        };
        assert!(earlier.matches(&letter("1-0", Some("acme"), "x", "HTTP 400")));
    }

    #[test]
    fn a_page_stops_at_its_limit_with_a_cursor_and_ends_without_one() {
        let query = DeadLetterQuery {
            limit: 2,
            ..Default::default()
        };
        let walk = ["3-0", "2-0", "1-0"].map(|id| letter(id, None, "x", "e"));
        let page = page_of(&query, walk.clone(), false);
        assert_eq!(page.letters.len(), 2);
        assert_eq!(page.next, Some("2-0".parse().unwrap()));
        let last = page_of(&query, walk[2..].to_vec(), false);
        assert_eq!(last.letters.len(), 1);
        assert_eq!(last.next, None);
        let exact = page_of(&query, walk[1..].to_vec(), false);
        assert_eq!(exact.next, None, "nothing is left after the page");
        assert!(page_of(&query, walk[1..].to_vec(), true).next.is_some());
    }
}
