//! What the budget guard learns from finished tasks: token means per tool (and for the
//! planner and the synthesis), and the defaults it assumes until something is observed.

use std::collections::HashMap;
use std::sync::Mutex;

/// Prompt tokens of a synthesis besides its inputs (instructions and the task).
pub(super) const SYNTHESIS_PROMPT_TOKENS: u64 = 150;
/// A synthesis answer's tokens until one is observed.
pub(super) const SYNTHESIS_ANSWER_TOKENS: u64 = 512;
/// A plan's answer tokens until one is observed.
pub(super) const PLAN_ANSWER_TOKENS: u64 = 256;
/// The key under which planner calls' token means are kept.
pub(super) const PLAN_TOOL: &str = "planex.plan";

/// Token means per tool, learned from finished tasks.
#[derive(Default)]
pub(super) struct TokenStats {
    by_tool: Mutex<HashMap<String, (u64, u64, u64)>>,
}

impl TokenStats {
    pub(super) fn observe(&self, tool: &str, prompt: u64, completion: u64) {
        let mut map = self
            .by_tool
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = map.entry(tool.to_owned()).or_default();
        entry.0 += 1;
        entry.1 += prompt;
        entry.2 += completion;
    }

    pub(super) fn mean(&self, tool: &str) -> Option<(u64, u64)> {
        let map = self
            .by_tool
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(tool)
            .filter(|(n, _, _)| *n > 0)
            .map(|(n, p, c)| (p.div_ceil(*n), c.div_ceil(*n)))
    }
}
