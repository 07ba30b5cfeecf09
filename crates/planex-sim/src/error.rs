//! Error type of the simulator.
//!
//! Key decision: one `thiserror` enum for everything the library can fail at (configuration,
//! workload file, binding); HTTP-level failures are answers, not errors, and live in `openai.rs`.

use std::path::PathBuf;

/// Everything that can go wrong while configuring or starting the simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A configuration value is out of range (e.g. a rate outside 0..=1).
    #[error("invalid simulator configuration: {0}")]
    InvalidConfig(String),
    /// The workload file could not be read.
    #[error("cannot read workload file {}; check the path and that it is readable", .path.display())]
    WorkloadIo {
        /// The file that was being read.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A line of the workload file is not a valid entry.
    #[error("workload line {line}: {message}")]
    Workload {
        /// 1-based line number in the file.
        line: usize,
        /// What is wrong with that line.
        message: String,
        /// The JSON parser's error, when the line is not JSON.
        #[source]
        source: Option<serde_json::Error>,
    },
    /// The listening socket could not be bound.
    #[error("cannot bind {addr}; pick a free host:port (port 0 picks one)")]
    Bind {
        /// The `host:port` that was requested.
        addr: String,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP server failed while running.
    #[error("simulator server failed")]
    Serve(#[source] std::io::Error),
}
