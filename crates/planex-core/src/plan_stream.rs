//! Steps out of a plan that is still being written: the planner's answer arrives as a stream of
//! text pieces, and each object of its `steps` array is handed on as soon as its closing brace
//! arrives, so it can be validated ([`crate::PlanBuilder`]) and dispatched while the rest of the
//! plan is generated.
//!
//! Key decisions: a small scanner tracks only what locating the step objects needs (nesting
//! depth, strings and their escapes, the key of each top-level value), and each step's own text is
//! then parsed by `serde_json`, so a step is read exactly as [`crate::Plan::parse`] would read it.
//! Text before the plan's first `{` (a Markdown fence) is skipped. The whole text is kept, so the
//! finished plan can still be parsed and checked as a whole: text that is not a plan yields no
//! step, and the whole-plan parse reports the error in the usual words. Only objects are counted
//! as steps (a non-object element of `steps` makes the whole plan invalid anyway).

use serde_json::Value;

/// Where the scanner is in the plan's JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// Before the plan's opening `{`.
    Before,
    /// Inside the plan (the scanner's depth says where).
    Inside,
    /// After the plan's closing `}`.
    After,
}

/// Yields the step objects of a streamed plan as they close.
#[derive(Debug)]
pub struct StepStream {
    text: String,
    /// Bytes of `text` already scanned.
    scanned: usize,
    place: Place,
    /// Nesting of `{` and `[` inside the plan (1 = the plan object itself).
    depth: usize,
    in_string: bool,
    escaped: bool,
    /// The start of the string being read at depth 1 (a key of the plan object).
    key_start: Option<usize>,
    /// The last key read at depth 1.
    last_key: String,
    /// Whether the array being read at depth 2 is the plan's `steps`.
    in_steps: bool,
    /// Where the step object being read starts.
    step_start: Option<usize>,
    /// Steps handed on so far.
    yielded: usize,
}

/// One piece of a streamed plan.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamedStep {
    /// A step object, exactly as written (not validated yet), and its index in `steps`.
    Step {
        /// Its position in the plan's `steps` array.
        index: usize,
        /// The object.
        value: Value,
    },
    /// The text of the step at `index` is not valid JSON (`detail` says why): the plan is
    /// invalid, and the caller should not use this step or any later one.
    Malformed {
        /// Its position.
        index: usize,
        /// What is wrong.
        detail: String,
    },
}

impl Default for StepStream {
    fn default() -> Self {
        Self::new()
    }
}

impl StepStream {
    /// A stream before the plan's first character.
    pub fn new() -> Self {
        StepStream {
            text: String::new(),
            scanned: 0,
            place: Place::Before,
            depth: 0,
            in_string: false,
            escaped: false,
            key_start: None,
            last_key: String::new(),
            in_steps: false,
            step_start: None,
            yielded: 0,
        }
    }

    /// Adds the next piece of the plan's text; returns the steps it completes, in order.
    pub fn push(&mut self, piece: &str) -> Vec<StreamedStep> {
        self.text.push_str(piece);
        let mut out = Vec::new();
        let bytes = self.text.as_bytes();
        let mut at = self.scanned;
        while at < bytes.len() {
            let byte = bytes[at];
            match self.place {
                Place::Before => {
                    if byte == b'{' {
                        self.place = Place::Inside;
                        self.depth = 1;
                    }
                }
                Place::After => break,
                Place::Inside if self.in_string => {
                    if self.escaped {
                        self.escaped = false;
                    } else if byte == b'\\' {
                        self.escaped = true;
                    } else if byte == b'"' {
                        self.in_string = false;
                        if let Some(start) = self.key_start.take() {
                            // Keys are short; a key with escapes is compared as written.
                            self.last_key = self.text[start..at].to_owned();
                        }
                    }
                }
                Place::Inside => match byte {
                    b'"' => {
                        self.in_string = true;
                        if self.depth == 1 {
                            self.key_start = Some(at + 1);
                        }
                    }
                    b'{' | b'[' => {
                        if self.depth == 1 && byte == b'[' {
                            self.in_steps = self.last_key == "steps";
                        }
                        if self.depth == 2 && self.in_steps && byte == b'{' {
                            self.step_start = Some(at);
                        }
                        self.depth += 1;
                    }
                    b'}' | b']' => {
                        self.depth = self.depth.saturating_sub(1);
                        if self.depth == 2
                            && byte == b'}'
                            && let Some(start) = self.step_start.take()
                        {
                            let index = self.yielded + out.len();
                            out.push(step(index, &self.text[start..=at]));
                        }
                        if self.depth == 1 {
                            self.in_steps = false;
                        }
                        if self.depth == 0 {
                            self.place = Place::After;
                        }
                    }
                    _ => {}
                },
            }
            at += 1;
        }
        self.scanned = at;
        self.yielded += out.len();
        out
    }

    /// Steps handed on so far.
    pub fn steps_seen(&self) -> usize {
        self.yielded
    }

    /// Whether the plan's closing brace has arrived.
    pub fn is_closed(&self) -> bool {
        self.place == Place::After
    }

    /// The whole text received so far (to parse the finished plan as a whole).
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// The step object at `index` whose text is `text`.
fn step(index: usize, text: &str) -> StreamedStep {
    match serde_json::from_str::<Value>(text) {
        Ok(value) => StreamedStep::Step { index, value },
        Err(e) => StreamedStep::Malformed {
            index,
            detail: format!("steps[{index}] is not valid JSON: {e}"),
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    const PLAN: &str = r#"```json
{"task": "t {not a step}", "steps": [
  {"step_id": 1, "tool_name": "search", "args": {"query": "a \"}\" b", "n": [1, {"x": 2}]}, "depends_on": []},
  {"step_id": 2, "tool_name": "summarize", "args": {"text": "{step_1_result}"}, "depends_on": [1]}
], "notes": [{"ignored": true}]}
```"#;

    fn ids(steps: &[StreamedStep]) -> Vec<u64> {
        steps
            .iter()
            .map(|s| match s {
                StreamedStep::Step { value, .. } => value["step_id"].as_u64().unwrap(),
                StreamedStep::Malformed { detail, .. } => panic!("{detail}"),
            })
            .collect()
    }

    #[test]
    fn each_step_is_yielded_when_it_closes_whatever_the_pieces() {
        for size in [1, 2, 3, 7, 16, PLAN.len()] {
            let mut stream = StepStream::new();
            let mut seen = Vec::new();
            let chars: Vec<char> = PLAN.chars().collect();
            for piece in chars.chunks(size) {
                let piece: String = piece.iter().collect();
                seen.extend(stream.push(&piece));
            }
            assert_eq!(ids(&seen), [1, 2], "pieces of {size}");
            assert!(stream.is_closed());
            assert_eq!(stream.text(), PLAN);
            let StreamedStep::Step { value, index } = &seen[0] else {
                panic!()
            };
            assert_eq!(*index, 0);
            assert_eq!(value["args"]["query"], "a \"}\" b");
            assert!(
                matches!(&seen[1], StreamedStep::Step { index: 1, .. }),
                "{seen:?}"
            );
        }
    }

    #[test]
    fn the_first_step_is_out_long_before_the_plan_ends() {
        let mut stream = StepStream::new();
        let end_of_first = PLAN.find("\"depends_on\": []}").unwrap() + "\"depends_on\": []}".len();
        assert!(stream.push(&PLAN[..end_of_first - 1]).is_empty());
        assert_eq!(
            ids(&stream.push(&PLAN[end_of_first - 1..end_of_first])),
            [1]
        );
        assert!(!stream.is_closed());
    }

    #[test]
    fn a_step_that_is_not_json_is_reported_and_other_arrays_are_ignored() {
        let mut stream = StepStream::new();
        let out =
            stream.push(r#"{"other": [{"a": 1}], "steps": [{"step_id": 1, "args": {"a": tru}}]}"#);
        assert_eq!(out.len(), 1);
        assert!(
            matches!(&out[0], StreamedStep::Malformed { index: 0, detail } if detail.contains("steps[0]"))
        );
        let mut none = StepStream::new();
        assert!(none.push("I cannot plan this.").is_empty());
        assert!(!none.is_closed());
    }
}
