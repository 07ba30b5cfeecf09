//! Fuzz target of the Redis codec (bolero; a plain test with random inputs and seeds,
//! coverage-guided with `cargo bolero test`): whatever a task's hashes, call list, event or dead
//! letter hold (a corrupted key, a value written by another version), decoding returns a record
//! or a `Corrupt` error, never a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use std::collections::HashMap;

/// Fields of a plausible task: the seeds the random inputs are mixed into.
const SEED_TASK: &[(&str, &str)] = &[
    ("status", "running"),
    ("task", "t"),
    ("plan", "{\"steps\":[]}"),
    ("created", "1700000000"),
    ("ids", "1,2"),
];
const SEED_STEPS: &[(&str, &str)] = &[
    (
        "1",
        "{\"step_id\":1,\"tool_name\":\"x\",\"args\":{},\"depends_on\":[],\"tier\":\"e\",\"stage\":\"step\"}",
    ),
    ("1:state", "complete"),
    ("1:result", "\"r\""),
    ("1:deliveries", "2"),
    ("2:state", "pending"),
];
const SEED_CALL: &str = "{\"stage\":\"step\",\"tier\":\"e\",\"model\":\"m\",\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1},\"cost_usd\":\"0.1\"}";

fn check(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let parts: Vec<&str> = text.split('\u{0}').collect();
    let mut task: HashMap<String, String> = SEED_TASK
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let mut steps: HashMap<String, String> = SEED_STEPS
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    // Pairs of parts overwrite fields of either hash (by the key's first byte).
    for pair in parts.chunks(2) {
        if let [key, value] = pair {
            let map = if key.len() % 2 == 0 {
                &mut task
            } else {
                &mut steps
            };
            map.insert((*key).to_owned(), (*value).to_owned());
        }
    }
    let calls = vec![SEED_CALL.to_owned(), text.to_string()];
    let id = TaskId("t".into());
    let _ = task_record(&id, task.clone(), steps.clone(), calls.clone());
    let _ = task_summary(
        &id,
        task.get("status").cloned(),
        task.get("nsteps").cloned(),
        calls,
    );
    let _ = event(1, &text);
    let _ = dead_letter(&text);
    let _ = published_event(&text);
}

#[test]
fn redis_records_decode_or_fail_cleanly() {
    check(b"");
    check(b"status\0weird\0plan\0{not json");
    check(b"1:state\0sideways\0\x31\0[]");
    bolero::check!().for_each(check);
}
