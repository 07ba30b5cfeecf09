//! The memory store's dead-letter queue: letters parked in order with ids of the Redis stream's
//! shape (`dead_letters.rs` at the crate root), paged newest first, purged one at a time.

use super::state::Inner;
use crate::dead_letters::{DeadLetter, DeadLetterPage, DeadLetterQuery, LetterId, page_of};

impl Inner {
    /// Parks `letter` at the end of the queue with the next id.
    pub(super) fn park(&mut self, mut letter: DeadLetter) {
        let id = LetterId::next_after(self.last_letter, letter.at_ms);
        self.last_letter = Some(id);
        letter.id = id.to_string();
        self.dlq.push_back(letter);
    }

    /// One page of `query`, newest first.
    pub(super) fn letter_page(&self, query: &DeadLetterQuery) -> DeadLetterPage {
        let walk = self
            .dlq
            .iter()
            .rev()
            .filter(|l| {
                query
                    .before
                    .is_none_or(|before| letter_id(l).is_some_and(|id| id < before))
            })
            .cloned();
        page_of(query, walk, false)
    }

    /// The letter with `id`.
    pub(super) fn letter(&self, id: LetterId) -> Option<DeadLetter> {
        self.dlq.iter().find(|l| letter_id(l) == Some(id)).cloned()
    }

    /// Takes the letter with `id` out of the queue; false when there was none.
    pub(super) fn purge_letter(&mut self, id: LetterId) -> bool {
        let before = self.dlq.len();
        self.dlq.retain(|l| letter_id(l) != Some(id));
        self.dlq.len() < before
    }
}

fn letter_id(letter: &DeadLetter) -> Option<LetterId> {
    letter.id.parse().ok()
}
