//! The memory store's idempotency keys: a map with expiry, bounded.
//!
//! Key decision: expired keys are dropped lazily (on each insert, oldest first, from an insertion
//! queue), and beyond `max_idempotency_keys` the oldest key goes even if it has not expired, so a
//! long-running `planex serve --store memory` cannot grow without bound.

use crate::Submission;
use std::collections::{HashMap, VecDeque};
use std::time::Duration;
use tokio::time::Instant;

/// A tenant and a key digest.
type Key = (String, String);

/// Remembered submissions by tenant and key digest.
#[derive(Default)]
pub(super) struct Submissions {
    by_key: HashMap<Key, (Submission, Instant)>,
    /// Keys in the order they were remembered, with their expiry then.
    order: VecDeque<(Key, Instant)>,
}

impl Submissions {
    /// Remembers `submission` under the key unless a live one is there (returned instead).
    pub(super) fn remember(
        &mut self,
        key: Key,
        submission: &Submission,
        ttl: Duration,
        cap: usize,
    ) -> Option<Submission> {
        let now = Instant::now();
        if let Some((existing, expires)) = self.by_key.get(&key)
            && *expires > now
        {
            return Some(existing.clone());
        }
        self.evict(now, cap.saturating_sub(1));
        let expires = now + ttl;
        self.by_key
            .insert(key.clone(), (submission.clone(), expires));
        self.order.push_back((key, expires));
        None
    }

    /// Keeps a remembered key for `ttl` from now (nothing happens to a key not remembered).
    pub(super) fn confirm(&mut self, key: Key, ttl: Duration) {
        let expires = Instant::now() + ttl;
        if let Some((_, e)) = self.by_key.get_mut(&key) {
            *e = expires;
            self.order.push_back((key, expires));
        }
    }

    /// Forgets the key.
    pub(super) fn forget(&mut self, key: &Key) {
        self.by_key.remove(key);
    }

    /// Drops expired keys, then the oldest until at most `keep` are left.
    fn evict(&mut self, now: Instant, keep: usize) {
        while let Some((key, expires)) = self.order.front() {
            if *expires > now && self.by_key.len() <= keep {
                break;
            }
            // Only the entry this queue item was made for (a key remembered again is newer).
            if self.by_key.get(key).is_some_and(|(_, e)| e == expires) {
                self.by_key.remove(key);
            }
            self.order.pop_front();
        }
    }
}
