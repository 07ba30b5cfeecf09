//! The call-by-call billing check of a chaos run: the tasks' call records against the
//! simulator's ledger of the answers it produced (`--record-calls`).
//!
//! - every record that names a completion id was served, whole, with exactly the usage billed;
//! - no completion id is billed twice;
//! - the served answers no record names (their worker or API died after the server answered and
//!   before the call's usage was settled) are covered by the records that name none
//!   (`interrupted` ones, at their worst case; `abandoned` ones name their answer);
//! - overall, billed ≥ served.
//!
//! Answers the simulator cut off part-way are not served: their client got no usage, and an
//! attempt without usage is billed nothing (docs/ARCHITECTURE.md §5); they are reported apart.

use planex_core::{CallRecord, Stage};
use planex_sim::{CallLedger, ServedCall};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// One record that names the answer it bills.
#[derive(Debug)]
struct NamedBill {
    /// The answer's completion id.
    response_id: String,
    /// The task whose record it is.
    task: String,
    prompt_tokens: u64,
    completion_tokens: u64,
}

/// The model calls of the accepted tasks, as their records bill them.
#[derive(Debug, Default)]
pub struct Billed {
    /// Records naming a completion id.
    named: Vec<NamedBill>,
    /// Records naming none (`interrupted`): how many, and their tokens.
    unnamed_calls: usize,
    unnamed_tokens: u64,
}

impl Billed {
    /// Adds task `task`'s model-call records (tool calls cost no tokens and are left out).
    pub fn add(&mut self, task: &str, calls: &[CallRecord]) {
        for call in calls.iter().filter(|c| c.stage != Stage::ToolCall) {
            let (prompt, completion) = (call.usage.prompt_tokens, call.usage.completion_tokens);
            match &call.response_id {
                Some(id) => self.named.push(NamedBill {
                    response_id: id.clone(),
                    task: task.to_owned(),
                    prompt_tokens: prompt,
                    completion_tokens: completion,
                }),
                None => {
                    self.unnamed_calls += 1;
                    self.unnamed_tokens += prompt + completion;
                }
            }
        }
    }

    /// Tokens billed in all.
    pub fn tokens(&self) -> u64 {
        let named: u64 = self
            .named
            .iter()
            .map(|b| b.prompt_tokens + b.completion_tokens)
            .sum();
        self.unnamed_tokens + named
    }
}

/// What the call-by-call comparison found.
#[derive(Debug, Default, Serialize)]
pub struct BillingCheck {
    /// Answers served whole.
    pub served_calls: usize,
    /// Tokens of those answers (prompt plus completion).
    pub served_tokens: u64,
    /// Tokens billed by the tasks' model-call records.
    pub billed_tokens: u64,
    /// Records that name a served answer and bill exactly its usage.
    pub matched_calls: usize,
    /// Served answers that no record names, and their tokens.
    pub unnamed_served_calls: usize,
    /// Tokens of the served answers no record names.
    pub unnamed_served_tokens: u64,
    /// Records that name no answer (`abandoned` or `interrupted`), and their tokens.
    pub unnamed_billed_calls: usize,
    /// Tokens of those records.
    pub unnamed_billed_tokens: u64,
    /// Answers cut off part-way (not served, not billed), and the tokens they would have had.
    pub cut_off_answers: u64,
    /// Tokens the cut-off answers would have reported.
    pub cut_off_tokens: u64,
}

/// Compares `billed` with the simulator's `ledger`; each broken invariant is pushed on
/// `violations`.
pub fn compare(
    billed: &Billed,
    ledger: &CallLedger,
    cut_off: (u64, u64),
    violations: &mut Vec<String>,
) -> BillingCheck {
    let served: HashMap<&str, &ServedCall> = ledger
        .calls
        .iter()
        .filter(|c| c.whole)
        .map(|c| (c.id.as_str(), c))
        .collect();
    let mut check = BillingCheck {
        served_calls: served.len(),
        served_tokens: served.values().map(|c| tokens(c)).sum(),
        billed_tokens: billed.tokens(),
        unnamed_billed_calls: billed.unnamed_calls,
        unnamed_billed_tokens: billed.unnamed_tokens,
        cut_off_answers: cut_off.0,
        cut_off_tokens: cut_off.1,
        ..BillingCheck::default()
    };
    if !ledger.recording || ledger.dropped > 0 {
        violations.push(format!(
            "the simulator's call ledger is incomplete (recording {}, {} answers dropped): no call-by-call check",
            ledger.recording, ledger.dropped
        ));
        return check;
    }
    let mut billed_by_id: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for bill in &billed.named {
        let (id, task) = (&bill.response_id, &bill.task);
        let (prompt, completion) = (bill.prompt_tokens, bill.completion_tokens);
        billed_by_id.entry(id).or_default().push(task);
        match served.get(id.as_str()) {
            None => violations.push(format!(
                "task {task} bills call {id}, which the simulator never served whole"
            )),
            Some(call)
                if (
                    u64::from(call.prompt_tokens),
                    u64::from(call.completion_tokens),
                ) != (prompt, completion) =>
            {
                violations.push(format!(
                    "task {task} bills call {id} at {prompt}+{completion} tokens; the simulator served {}+{}",
                    call.prompt_tokens, call.completion_tokens
                ));
            }
            Some(_) => check.matched_calls += 1,
        }
    }
    for (id, tasks) in billed_by_id.iter().filter(|(_, tasks)| tasks.len() > 1) {
        violations.push(format!(
            "call {id} is billed {} times: {tasks:?}",
            tasks.len()
        ));
    }
    for call in served
        .values()
        .filter(|c| !billed_by_id.contains_key(c.id.as_str()))
    {
        check.unnamed_served_calls += 1;
        check.unnamed_served_tokens += tokens(call);
    }
    if check.unnamed_served_tokens > check.unnamed_billed_tokens {
        violations.push(format!(
            "{} served calls ({} tokens) are named by no record, and the records that name no call bill only {} tokens",
            check.unnamed_served_calls, check.unnamed_served_tokens, check.unnamed_billed_tokens
        ));
    }
    if check.billed_tokens < check.served_tokens {
        violations.push(format!(
            "the simulator served {} tokens and the tasks' records bill only {}",
            check.served_tokens, check.billed_tokens
        ));
    }
    check
}

fn tokens(call: &ServedCall) -> u64 {
    u64::from(call.prompt_tokens) + u64::from(call.completion_tokens)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use planex_testkit::store::call_record;

    fn served(id: &str, prompt: u32, completion: u32) -> ServedCall {
        ServedCall {
            id: id.into(),
            prompt_tokens: prompt,
            completion_tokens: completion,
            whole: true,
            traceparent: None,
        }
    }

    fn named(id: &str, prompt: u64, completion: u64) -> CallRecord {
        let mut call = call_record(Stage::Step, prompt);
        call.usage.completion_tokens = completion;
        call.response_id = Some(id.into());
        call
    }

    fn ledger(calls: Vec<ServedCall>) -> CallLedger {
        CallLedger {
            recording: true,
            calls,
            dropped: 0,
        }
    }

    #[test]
    fn exact_bills_pass_and_each_kind_of_wrong_bill_is_named() {
        let ledger = ledger(vec![
            served("a", 10, 5),
            served("b", 7, 3),
            served("c", 4, 4),
        ]);
        let mut billed = Billed::default();
        billed.add("t1", &[named("a", 10, 5), named("b", 7, 3)]);
        // "c" was served and recorded by no one, but an abandoned record covers it.
        billed.add("t2", &[call_record(Stage::Step, 8)]);
        let mut violations = Vec::new();
        let check = compare(&billed, &ledger, (1, 9), &mut violations);
        assert!(violations.is_empty(), "{violations:?}");
        assert_eq!((check.matched_calls, check.unnamed_served_calls), (2, 1));

        let mut wrong = Billed::default();
        wrong.add(
            "t1",
            &[named("a", 10, 4), named("b", 7, 3), named("b", 7, 3)],
        );
        wrong.add("t2", &[named("z", 1, 1)]);
        let mut violations = Vec::new();
        compare(&wrong, &ledger, (0, 0), &mut violations);
        let text = violations.join("\n");
        assert!(text.contains("bills call a at 10+4 tokens"), "{text}");
        assert!(text.contains("call b is billed 2 times"), "{text}");
        assert!(text.contains("never served whole"), "{text}");
        assert!(text.contains("named by no record"), "{text}");
    }
}
