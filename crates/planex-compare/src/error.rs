//! The crate's one error type, [`CompareError`].
//!
//! Key decision: each variant says what failed and what the user can do; a wrapped library error is
//! kept as the `source` (never pasted into the message), so a caller printing the whole chain (anyhow's
//! `{:#}`) shows every cause once.

use planex_app::ConfigError;
use planex_engine::EngineError;
use planex_llm::{ChatFailure, LlmError, TierSetError};
use planex_sim::SimError;
use std::path::PathBuf;

/// Everything the savings feature can fail at.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// A flag or argument is out of range; the message names it and the allowed values.
    #[error("{0}")]
    InvalidArgument(String),
    /// The config file could not be loaded.
    #[error("cannot load the config {}; fix what the cause names, or leave out --config to use the embedded default", config_name(.path))]
    Config {
        /// The file, or `None` for the embedded default.
        path: Option<PathBuf>,
        /// Why it was refused.
        #[source]
        source: ConfigError,
    },
    /// The config names no tier of that name (`planex cost --config`).
    #[error("{} has no tier {tier:?} (tiers: {}); pass --executor-tier with one of them", .path.display(), .known.join(", "))]
    UnknownTier {
        /// The config file.
        path: PathBuf,
        /// The tier asked for.
        tier: String,
        /// The tiers the file defines.
        known: Vec<String>,
    },
    /// The workload file could not be read.
    #[error("cannot read the workload file {}; check the path and that the file is readable", .path.display())]
    WorkloadRead {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A line of a workload is not a task.
    #[error(
        "the workload {origin} is not valid; write one JSON object per line: {{\"task\": \"…\", \"plan\": {{\"steps\": […]}}}}"
    )]
    WorkloadInvalid {
        /// Where the workload came from (`file PATH`, or what generated it).
        origin: String,
        /// The line and what is wrong with it.
        #[source]
        source: WorkloadLineError,
    },
    /// The workload file holds no task.
    #[error("the workload file {} has no tasks; write one JSON object per line: {{\"task\": \"…\", \"plan\": {{\"steps\": […]}}}}", .path.display())]
    WorkloadEmpty {
        /// The file.
        path: PathBuf,
    },
    /// The simulators could not take the workload's pinned plans.
    #[error(
        "cannot load the workload's pinned plans for the simulators; fix the plan the cause names (the `planex sim --workload` format)"
    )]
    PinnedPlans(#[source] SimError),
    /// A simulated tier's server did not start.
    #[error("cannot start the simulator for tier {tier}; check that loopback ports can be bound")]
    SimulatorStart {
        /// The tier.
        tier: String,
        /// Why it did not start.
        #[source]
        source: SimError,
    },
    /// The HTTP client for the model tiers could not be built.
    #[error("cannot build the HTTP client for the model tiers")]
    HttpClient(#[source] LlmError),
    /// The configured tiers could not be set up.
    #[error("cannot set up the model tiers; fix [tiers] in the config as the cause says")]
    Tiers(#[source] TierSetError),
    /// The engine refused its setup (a tier that does not exist, …).
    #[error("cannot set up {what}; fix the config as the cause says")]
    Engine {
        /// What was being set up.
        what: &'static str,
        /// The engine's reason.
        #[source]
        source: EngineError,
    },
    /// A tool's name collides with the ReAct baseline's reserved final action.
    #[error(
        "a tool is named {name:?}, the ReAct baseline's reserved final action; rename the tool"
    )]
    ReservedToolName {
        /// The reserved name.
        name: &'static str,
    },
    /// The unmeasured call made to a tier before the comparison failed.
    #[error(
        "the warm-up call to tier {tier} failed; check that its endpoints are up and serve the configured model"
    )]
    WarmUp {
        /// The tier.
        tier: String,
        /// The failed call (boxed: it carries every attempt's error).
        #[source]
        source: Box<ChatFailure>,
    },
    /// A task of a savings curve did not finish both ways.
    #[error(
        "the {steps}-step, {lanes}-lane curve task did not finish both ways (first error: {first_error}); run `planex workload lanes --steps {steps} --width {lanes}` through `planex compare --workload` to see the runs"
    )]
    CurvePointFailed {
        /// Steps of the task.
        steps: usize,
        /// Parallel lanes of the task.
        lanes: usize,
        /// The first run's error.
        first_error: String,
    },
    /// The output directory of the charts could not be created.
    #[error("cannot create the chart directory {}; choose another --out-dir", .path.display())]
    ChartDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A chart could not be drawn.
    #[error("drawing the chart {} failed", .path.display())]
    ChartDraw {
        /// The chart's file.
        path: PathBuf,
        /// The drawing library's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A chart could not be written.
    #[error("cannot write the chart {}; check that the directory is writable", .path.display())]
    ChartWrite {
        /// The chart's file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A report could not be turned into JSON.
    #[error("cannot print the report as JSON; print it without --json")]
    Json(#[from] serde_json::Error),
}

fn config_name(path: &Option<PathBuf>) -> String {
    match path {
        Some(path) => format!("file {}", path.display()),
        None => "embedded in planex (the default)".to_owned(),
    }
}

/// What is wrong with one line of a JSONL workload.
#[derive(Debug, thiserror::Error)]
#[error("line {line} {problem}")]
pub struct WorkloadLineError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong, e.g. `has no string field "task"`.
    pub problem: String,
    /// The JSON parser's error, when the line is not JSON.
    #[source]
    pub json: Option<serde_json::Error>,
}
