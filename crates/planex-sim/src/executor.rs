//! The executor role: deterministic synthetic answers labelled `[simulated]`.
//!
//! Key decision: the RNG is seeded by the sha256 of all message contents, so the same step
//! prompt always gets the same answer (memoised: sized once per prompt), and the length is sized with the real tokenizer to about
//! min(max_tokens, output tokens) tokens. A prompt line `Missing steps: 2, 3.` (planex's synthesis
//! prompt names the plan steps that have no result so) makes the answer begin with the same list,
//! `[simulated] Missing steps: 2, 3. …`, so a test can see that a partial answer says what is missing.

use serde_json::json;

use crate::text;
use crate::tokens;

/// Label every executor answer starts with.
pub const LABEL: &str = "[simulated] ";

/// The start of a prompt line listing the steps whose results are missing.
pub const MISSING_STEPS: &str = "Missing steps:";

/// `Missing steps: 2, 3. ` when a line of `contents` lists missing steps (the last such line wins).
fn missing_note(contents: &[&str]) -> Option<String> {
    contents
        .iter()
        .flat_map(|c| c.lines())
        .filter_map(|line| line.trim().strip_prefix(MISSING_STEPS))
        .map(|rest| rest.trim().trim_end_matches('.').trim().to_owned())
        .rfind(|list| !list.is_empty())
        .map(|list| format!("{MISSING_STEPS} {list}. "))
}

/// Answers memoised by their request (`memo.rs`): the same step prompt gets the same answer, so
/// it is sized with the tokenizer once.
const ANSWERS_KEPT: usize = 4_096;

static ANSWERS: std::sync::LazyLock<crate::memo::Memo<String>> =
    std::sync::LazyLock::new(|| crate::memo::Memo::new(ANSWERS_KEPT));

/// Executor answer for `contents` with about `target` tokens; a small JSON object
/// `{"simulated":true,"summary":…}` when `json` is set. It starts with the missing steps when the
/// prompt lists them.
pub fn answer(contents: &[&str], target: u32, json: bool) -> String {
    let key = format!("{}:{target}:{json}", text::sha_hex(contents));
    ANSWERS.get_or(&key, || compose(contents, target, json))
}

fn compose(contents: &[&str], target: u32, json: bool) -> String {
    let mut rng = text::rng_from(contents);
    let prefix = match missing_note(contents) {
        Some(note) => format!("{LABEL}{note}"),
        None => LABEL.to_owned(),
    };
    // Never cut the note off: the answer is at least as long as its prefix.
    let floor = tokens::count(&prefix);
    if !json {
        return text::prose(&mut rng, &prefix, target.max(floor).max(1));
    }
    let empty = json!({"simulated": true, "summary": ""}).to_string();
    let overhead = tokens::count(&empty);
    let summary = text::prose(
        &mut rng,
        &prefix,
        target.saturating_sub(overhead).max(floor).max(4),
    );
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

    #[test]
    fn an_answer_names_the_missing_steps_its_prompt_lists() {
        let prompt = "Task: t\n[step 1] ok\n[step 2] (no result)\n\nMissing steps: 2, 3.\nSay so.";
        let a = answer(&["sys", prompt], 120, false);
        assert!(a.starts_with("[simulated] Missing steps: 2, 3. "), "{a}");
        assert_eq!(a, answer(&["sys", prompt], 120, false));
        let tiny = answer(&["sys", prompt], 2, false);
        assert!(tiny.contains("Missing steps: 2, 3."), "{tiny}");
        let j: serde_json::Value = serde_json::from_str(&answer(&[prompt], 40, true)).unwrap();
        assert!(
            j["summary"]
                .as_str()
                .unwrap()
                .contains("Missing steps: 2, 3."),
            "{j}"
        );
        assert!(!answer(&["sys", "no list here"], 60, false).contains(MISSING_STEPS));
    }
}
