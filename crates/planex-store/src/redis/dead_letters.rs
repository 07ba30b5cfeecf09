//! The Redis store's dead-letter queue (`P:dlq`, a stream capped at `dead_letter_cap` entries):
//! letters are parked by the completion and claim scripts; here they are read a page at a time
//! (`XREVRANGE`, newest first, from the cursor exclusive), one by id (`XRANGE ID ID`) and purged
//! (`XDEL`). A letter's id is its stream entry id.

use super::codec;
use super::errors::unavailable;
use super::shared::{Core, Retry};
use crate::dead_letters::{
    DeadLetter, DeadLetterPage, DeadLetterQuery, LetterId, SCAN_LIMIT, page_of,
};
use crate::error::StoreError;

/// Letters read per `XREVRANGE` while a page fills.
const BATCH: usize = 200;

/// Decodes stream entries into letters, each with its entry id.
fn letters(entries: Vec<(String, Vec<String>)>) -> Result<Vec<DeadLetter>, StoreError> {
    entries
        .into_iter()
        .filter_map(|(id, fields)| fields.get(1).map(|json| (id, json.clone())))
        .map(|(id, json)| {
            let mut letter = codec::dead_letter(&json)?;
            letter.id = id;
            Ok(letter)
        })
        .collect()
}

/// Up to `count` entries before `before` (exclusive; `None`: from the newest), newest first.
async fn newest_first(
    core: &Core,
    before: Option<LetterId>,
    count: usize,
) -> Result<Vec<DeadLetter>, StoreError> {
    let mut cmd = redis::cmd("XREVRANGE");
    cmd.arg(core.keys.dead_letters())
        .arg(before.map_or_else(|| "+".to_owned(), |id| format!("({id}")))
        .arg("-")
        .arg("COUNT")
        .arg(count);
    let entries: Vec<(String, Vec<String>)> = core
        .query(Retry::Idempotent, &cmd)
        .await
        .map_err(|e| unavailable("read dead letters", e))?;
    letters(entries)
}

/// The most recent `limit` letters, newest last.
pub(super) async fn recent(core: &Core, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let mut letters = newest_first(core, None, limit).await?;
    letters.reverse();
    Ok(letters)
}

/// One page of `query`: batches of [`BATCH`] letters, newest first, until the page is full or
/// [`SCAN_LIMIT`] letters were walked.
pub(super) async fn page(
    core: &Core,
    query: &DeadLetterQuery,
) -> Result<DeadLetterPage, StoreError> {
    let limit = query.limit.max(1);
    let mut walked = Vec::new();
    let mut cursor = query.before;
    let mut more = true;
    while walked.len() < SCAN_LIMIT && walked.iter().filter(|l| query.matches(l)).count() < limit {
        let want = BATCH.min(SCAN_LIMIT - walked.len());
        let batch = newest_first(core, cursor, want).await?;
        more = batch.len() == want;
        cursor = batch.last().and_then(|l| l.id.parse().ok());
        walked.extend(batch);
        if !more {
            break;
        }
    }
    Ok(page_of(query, walked, more))
}

/// The letter with `id`, if the stream still holds it.
pub(super) async fn one(core: &Core, id: LetterId) -> Result<Option<DeadLetter>, StoreError> {
    let mut cmd = redis::cmd("XRANGE");
    let id = id.to_string();
    cmd.arg(core.keys.dead_letters()).arg(&id).arg(&id);
    let entries: Vec<(String, Vec<String>)> = core
        .query(Retry::Idempotent, &cmd)
        .await
        .map_err(|e| unavailable("read a dead letter", e))?;
    Ok(letters(entries)?.into_iter().next())
}

/// Deletes the letter with `id`; false when there was none.
pub(super) async fn purge(core: &Core, id: LetterId) -> Result<bool, StoreError> {
    let mut cmd = redis::cmd("XDEL");
    cmd.arg(core.keys.dead_letters()).arg(id.to_string());
    let deleted: u64 = core
        .query(Retry::Idempotent, &cmd)
        .await
        .map_err(|e| unavailable("purge a dead letter", e))?;
    Ok(deleted > 0)
}
