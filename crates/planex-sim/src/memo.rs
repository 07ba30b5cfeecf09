//! Bounded, process-wide memos of pure functions of a text (token counts, answers), so the
//! simulator's cheap path (the same prompts and answers again and again in benchmarks and load
//! tests) does not re-run the tokenizer for what it has counted before.
//!
//! Key decisions: the key is the whole text (no hash that could collide and change a count),
//! only texts up to [`MAX_KEY_BYTES`] are kept, and a full memo is cleared at once, so memory is
//! bounded by `capacity × MAX_KEY_BYTES` plus the values, with no eviction bookkeeping on the hot
//! path. Results never differ from the computation's own: the memoised functions are pure.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// Longest text a memo keeps (longer ones are computed every time).
pub(crate) const MAX_KEY_BYTES: usize = 8 * 1024;

/// A memo of `V`s by text.
pub(crate) struct Memo<V> {
    entries: Mutex<HashMap<Box<str>, V>>,
    capacity: usize,
}

impl<V: Clone> Memo<V> {
    /// An empty memo of at most `capacity` texts.
    pub(crate) fn new(capacity: usize) -> Self {
        Memo {
            entries: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    /// The value for `key`: the memoised one, or `compute()` (kept when `key` is short enough).
    pub(crate) fn get_or(&self, key: &str, compute: impl FnOnce() -> V) -> V {
        if key.len() > MAX_KEY_BYTES {
            return compute();
        }
        if let Some(value) = self.lock().get(key) {
            return value.clone();
        }
        // Computed outside the lock: two threads may compute the same value once each, which is
        // harmless (the same result), while a lock held over the tokenizer would serialise it.
        let value = compute();
        let mut entries = self.lock();
        if entries.len() >= self.capacity {
            entries.clear();
        }
        entries.insert(key.into(), value.clone());
        value
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Box<str>, V>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn a_value_is_computed_once_per_short_text_and_the_memo_stays_bounded() {
        let memo = Memo::new(2);
        let calls = Cell::new(0);
        let count = |text: &str| {
            memo.get_or(text, || {
                calls.set(calls.get() + 1);
                text.len()
            })
        };
        assert_eq!(count("abc"), 3);
        assert_eq!(count("abc"), 3);
        assert_eq!(calls.get(), 1, "the second lookup is memoised");
        count("de");
        count("fgh"); // full: cleared, then kept
        assert!(memo.lock().len() <= 2);
        let long = "x".repeat(MAX_KEY_BYTES + 1);
        assert_eq!(count(&long), MAX_KEY_BYTES + 1);
        assert_eq!(count(&long), MAX_KEY_BYTES + 1);
        assert!(
            !memo.lock().contains_key(long.as_str()),
            "long texts are not kept"
        );
    }
}
