//! The executor role: deterministic synthetic answers labelled `[simulated]`.
//!
//! Key decision: the RNG is seeded by the sha256 of all message contents, so the same step
//! prompt always gets the same answer, and the length is sized with the real tokenizer to about
//! min(max_tokens, output tokens) tokens.

use serde_json::json;

use crate::text;
use crate::tokens;

/// Label every executor answer starts with.
pub const LABEL: &str = "[simulated] ";

/// Executor answer for `contents` with about `target` tokens; a small JSON object
/// `{"simulated":true,"summary":…}` when `json` is set.
pub fn answer(contents: &[&str], target: u32, json: bool) -> String {
    let mut rng = text::rng_from(contents);
    if !json {
        return text::prose(&mut rng, LABEL, target.max(1));
    }
    let empty = json!({"simulated": true, "summary": ""}).to_string();
    let overhead = tokens::count(&empty);
    let summary = text::prose(&mut rng, LABEL, target.saturating_sub(overhead).max(4));
    json!({"simulated": true, "summary": summary}).to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn answers_are_deterministic_labelled_and_sized() {
        let a = answer(&["sys", "hello"], 120, false);
        assert_eq!(a, answer(&["sys", "hello"], 120, false));
        assert_ne!(a, answer(&["sys", "hello!"], 120, false));
        assert!(a.starts_with(LABEL));
        assert!((110..=120).contains(&tokens::count(&a)));
        let j: serde_json::Value = serde_json::from_str(&answer(&["x"], 40, true)).unwrap();
        assert_eq!(j["simulated"], true);
        assert!(j["summary"].as_str().unwrap().starts_with(LABEL));
    }
}
