//! Deterministic synthetic prose: the vocabulary and sentence generator behind executor answers
//! and search snippets.
//!
//! Key decision: text is drawn from a seeded ChaCha RNG and sized with the real tokenizer, so
//! the same request always yields the same words and a predictable token count.

use rand::Rng;
use rand::seq::IndexedRandom;
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

use crate::tokens;

const WORDS: &[&str] = &[
    "analysis",
    "market",
    "pricing",
    "growth",
    "demand",
    "supply",
    "capacity",
    "latency",
    "throughput",
    "model",
    "provider",
    "region",
    "cost",
    "forecast",
    "trend",
    "report",
    "data",
    "source",
    "signal",
    "benchmark",
    "result",
    "estimate",
    "range",
    "quarter",
    "annual",
    "share",
    "segment",
    "customer",
    "workload",
    "cluster",
    "network",
    "storage",
    "compute",
    "energy",
    "policy",
    "risk",
    "factor",
    "driver",
    "outlook",
    "summary",
    "evidence",
    "finding",
    "metric",
    "baseline",
    "increase",
    "decrease",
    "stable",
    "significant",
    "moderate",
    "notable",
    "recent",
    "current",
    "expected",
    "observed",
    "reported",
    "relative",
    "overall",
    "primary",
    "secondary",
    "several",
    "multiple",
    "key",
    "early",
    "late",
    "higher",
    "lower",
    "average",
    "median",
    "typical",
    "suggests",
    "indicates",
    "shows",
    "remains",
    "reaches",
    "exceeds",
    "follows",
    "compared",
    "across",
    "within",
    "between",
    "during",
    "while",
    "because",
    "although",
    "and",
    "the",
    "of",
    "in",
    "for",
    "with",
    "to",
    "on",
    "by",
    "from",
    "as",
    "is",
    "are",
    "was",
    "were",
    "this",
    "that",
    "these",
    "most",
    "some",
    "each",
    "new",
    "large",
    "small",
    "public",
    "private",
    "open",
    "global",
    "local",
    "industry",
    "sector",
    "analysts",
    "teams",
    "users",
    "vendors",
];

/// A ChaCha RNG seeded from the sha256 of `parts` (separated so `["ab","c"] != ["a","bc"]`).
pub fn rng_from(parts: &[&str]) -> ChaCha8Rng {
    use rand::SeedableRng;
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
    }
    ChaCha8Rng::from_seed(hasher.finalize().into())
}

/// Hex sha256 of `parts` (same separation as [`rng_from`]).
pub fn sha_hex(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One sentence of 6–14 words, capitalised, ending with a period.
pub fn sentence(rng: &mut ChaCha8Rng) -> String {
    let n = rng.random_range(6..=14);
    let mut words: Vec<String> = (0..n)
        .map(|_| (*WORDS.choose(rng).unwrap_or(&"data")).to_owned())
        .collect();
    if let Some(first) = words.first_mut() {
        let mut chars = first.chars();
        if let Some(c) = chars.next() {
            *first = c.to_uppercase().chain(chars).collect();
        }
    }
    format!("{}.", words.join(" "))
}

/// Text that starts with `prefix` and has about `target` tokens (never more).
pub fn prose(rng: &mut ChaCha8Rng, prefix: &str, target: u32) -> String {
    let mut text = prefix.to_owned();
    // Pre-tokenisation splits at word boundaries, so summing per-sentence counts is close to
    // exact and avoids re-encoding the whole text on every step; `truncate` makes it a bound.
    let mut estimate = tokens::count(&text);
    while estimate < target {
        let mut piece = String::new();
        if !text.is_empty() && !text.ends_with(' ') {
            piece.push(' ');
        }
        piece.push_str(&sentence(rng));
        estimate = estimate.saturating_add(tokens::count(&piece));
        text.push_str(&piece);
    }
    tokens::truncate(&text, target.max(1))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn prose_is_deterministic_and_sized() {
        let a = prose(&mut rng_from(&["x"]), "[simulated] ", 50);
        let b = prose(&mut rng_from(&["x"]), "[simulated] ", 50);
        assert_eq!(a, b);
        assert!(a.starts_with("[simulated] "));
        let n = tokens::count(&a);
        assert!((45..=50).contains(&n), "{n}");
    }
}
