//! planex-sim: an OpenAI-compatible **simulated** model server for tests, demos and benchmarks.
//!
//! It stands in for a GPU pool: configurable TTFT, tokens per second and concurrency limit,
//! seeded random faults (5xx, 429, hangs, malformed JSON, answers cut off part-way) plus deterministic per-request
//! `#sim:` markers. As a planner (a `response_format` json_schema with the plan shape: `steps`
//! items with a `tool_name` enum) it answers a plan valid for the sent schema, deterministic per
//! task text (a workload file can pin exact plans); as a ReAct agent (json_schema named
//! `react_step`) it follows that plan one action per call and then answers; any other
//! json_schema gets JSON valid against it (OpenAI's strict subset; out-of-subset schemas get a
//! 400 `invalid_json_schema`); as an executor it answers deterministic text labelled
//! `[simulated]`; offered `tools`, it answers with tool calls a `#sim:call=` script in the prompt
//! decides (else one call of the first tool), then text. Every error is an OpenAI-shaped JSON body. Usage is counted with the real
//! `cl100k_base` tokenizer. All output is synthetic.
//!
//! Key decision: everything observable (plans, answers, faults, search results) is a pure
//! function of the request and the seed, so tests and benchmarks are reproducible.

mod answer;
mod chat;
mod config;
mod content;
mod error;
mod executor;
mod faults;
mod joiner;
mod markers;
mod memo;
mod openai;
mod planner;
mod react;
mod rejection;
mod role;
mod search;
mod server;
mod state;
mod stream;
mod structured;
mod text;
mod tokens;
mod tool_calls;
mod workload;

pub use config::{MAX_RECORDED_CALLS, SimArgs, SimConfig};
pub use error::SimError;
pub use server::{SimServer, router, run_forever};
pub use state::{CallLedger, ServedCall, SimState, SimStats};
pub use workload::Workload;
