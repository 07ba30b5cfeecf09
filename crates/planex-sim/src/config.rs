//! Simulator configuration: the library struct [`SimConfig`] and the CLI flags [`SimArgs`].
//!
//! Key decision: the CLI crate flattens [`SimArgs`] into its `sim` subcommand and calls
//! [`SimArgs::into_config`], which validates ranges and reads the workload file once, so the
//! server itself never touches the file system.

use std::path::PathBuf;

use crate::error::SimError;
use crate::workload::Workload;

/// Runtime configuration of a simulated model server.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Host or IP to bind.
    pub host: String,
    /// TCP port to bind; 0 picks any free port.
    pub port: u16,
    /// The one model id served.
    pub model: String,
    /// Time to first token, in milliseconds.
    pub ttft_ms: u64,
    /// Completion tokens per second per request; 0 means instant.
    pub tokens_per_second: f64,
    /// Requests served at once; further requests wait in a queue.
    pub max_concurrency: usize,
    /// Executor answer length in tokens (capped by the request's `max_tokens`).
    pub output_tokens: u32,
    /// Fraction of chat requests answered with a 5xx error.
    pub error_rate: f64,
    /// Fraction of chat requests answered with 429.
    pub rate_limit_rate: f64,
    /// Fraction of chat requests that hang for `hang_ms`.
    pub hang_rate: f64,
    /// How long a hanging request hangs, in milliseconds.
    pub hang_ms: u64,
    /// Fraction of chat answers whose content is invalid JSON.
    pub malformed_rate: f64,
    /// Fraction of chat answers cut off part-way: the connection breaks after about half the
    /// answer (streamed or not), with no usage and no end of stream.
    pub truncate_rate: f64,
    /// Keep a ledger of every answer produced (`GET /sim/calls`), for checking a client's bills
    /// call by call; off by default (it grows with every request, up to [`MAX_RECORDED_CALLS`]).
    pub record_calls: bool,
    /// Seed of the ChaCha RNG that draws random faults.
    pub seed: u64,
    /// Pinned plans per task text.
    pub workload: Workload,
    /// The largest request body accepted, in bytes (larger ones get 413).
    pub max_body_bytes: usize,
    /// A client that has not sent a request's whole head within this is disconnected.
    pub header_read_timeout: std::time::Duration,
}

/// The most answers the call ledger keeps (`--record-calls`); later ones are counted as dropped.
pub const MAX_RECORDED_CALLS: usize = 1_000_000;

/// The default request body limit: 32 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".to_owned(),
            port: 8100,
            model: "sim-model".to_owned(),
            ttft_ms: 0,
            tokens_per_second: 0.0,
            max_concurrency: 64,
            output_tokens: 120,
            error_rate: 0.0,
            rate_limit_rate: 0.0,
            hang_rate: 0.0,
            hang_ms: 600_000,
            malformed_rate: 0.0,
            truncate_rate: 0.0,
            record_calls: false,
            seed: 0,
            workload: Workload::default(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            header_read_timeout: planex_http::DEFAULT_HEADER_READ_TIMEOUT,
        }
    }
}

impl SimConfig {
    /// Checks that every value is in range.
    pub fn validate(&self) -> Result<(), SimError> {
        let rates = [
            ("error-rate", self.error_rate),
            ("rate-limit-rate", self.rate_limit_rate),
            ("hang-rate", self.hang_rate),
            ("malformed-rate", self.malformed_rate),
            ("truncate-rate", self.truncate_rate),
        ];
        for (name, rate) in rates {
            if !(0.0..=1.0).contains(&rate) {
                return Err(SimError::InvalidConfig(format!(
                    "--{name} must be between 0 and 1, got {rate}"
                )));
            }
        }
        if !self.tokens_per_second.is_finite() || self.tokens_per_second < 0.0 {
            return Err(SimError::InvalidConfig(format!(
                "--tokens-per-second must be >= 0, got {}",
                self.tokens_per_second
            )));
        }
        if self.max_concurrency == 0 {
            return Err(SimError::InvalidConfig(
                "--max-concurrency must be at least 1".to_owned(),
            ));
        }
        if self.header_read_timeout.is_zero() {
            return Err(SimError::InvalidConfig(
                "--header-read-timeout-secs must be at least 1".to_owned(),
            ));
        }
        if self.max_body_bytes == 0 {
            return Err(SimError::InvalidConfig(
                "--max-body-bytes must be at least 1".to_owned(),
            ));
        }
        if self.model.trim().is_empty() {
            return Err(SimError::InvalidConfig(
                "--model must not be empty".to_owned(),
            ));
        }
        Ok(())
    }
}

/// Command-line flags of `planex sim` (flatten into a clap subcommand).
#[derive(clap::Args, Clone, Debug)]
pub struct SimArgs {
    /// Host or IP to bind.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// TCP port to bind (0 = any free port).
    #[arg(long, default_value_t = 8100)]
    pub port: u16,
    /// The one model id served.
    #[arg(long = "model", value_name = "NAME", default_value = "sim-model")]
    pub model: String,
    /// Time to first token in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub ttft_ms: u64,
    /// Completion tokens per second per request (0 = instant).
    #[arg(long, default_value_t = 0.0)]
    pub tokens_per_second: f64,
    /// Requests served at once; more wait in a queue.
    #[arg(long, default_value_t = 64)]
    pub max_concurrency: usize,
    /// Executor answer length in tokens (capped by the request's max_tokens).
    #[arg(long, default_value_t = 120)]
    pub output_tokens: u32,
    /// Fraction of chat requests answered with a 5xx error.
    #[arg(long, default_value_t = 0.0)]
    pub error_rate: f64,
    /// Fraction of chat requests answered with 429 (Retry-After: 1).
    #[arg(long, default_value_t = 0.0)]
    pub rate_limit_rate: f64,
    /// Fraction of chat requests that hang for --hang-ms.
    #[arg(long, default_value_t = 0.0)]
    pub hang_rate: f64,
    /// How long a hanging request hangs, in milliseconds.
    #[arg(long, default_value_t = 600_000)]
    pub hang_ms: u64,
    /// Fraction of answers whose message content is invalid JSON.
    #[arg(long, default_value_t = 0.0)]
    pub malformed_rate: f64,
    /// Fraction of answers cut off part-way (the connection breaks; no usage, no end of stream).
    #[arg(long, default_value_t = 0.0)]
    pub truncate_rate: f64,
    /// Keep a ledger of every answer (id and usage) at GET /sim/calls, to check bills call by call.
    #[arg(long)]
    pub record_calls: bool,
    /// Seed of the fault RNG (runs are reproducible).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// JSONL file pinning plans per task text.
    #[arg(long, value_name = "FILE")]
    pub workload: Option<PathBuf>,
    /// The largest request body accepted, in bytes (larger ones get 413).
    #[arg(long, default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,
    /// Seconds a client may take to send a request's head before it is disconnected.
    #[arg(long, default_value_t = 30)]
    pub header_read_timeout_secs: u64,
}

impl SimArgs {
    /// Turns the flags into a validated [`SimConfig`], reading the workload file if given.
    pub fn into_config(self) -> Result<SimConfig, SimError> {
        let workload = match &self.workload {
            Some(path) => Workload::from_path(path)?,
            None => Workload::default(),
        };
        let config = SimConfig {
            host: self.host,
            port: self.port,
            model: self.model,
            ttft_ms: self.ttft_ms,
            tokens_per_second: self.tokens_per_second,
            max_concurrency: self.max_concurrency,
            output_tokens: self.output_tokens,
            error_rate: self.error_rate,
            rate_limit_rate: self.rate_limit_rate,
            hang_rate: self.hang_rate,
            hang_ms: self.hang_ms,
            malformed_rate: self.malformed_rate,
            truncate_rate: self.truncate_rate,
            record_calls: self.record_calls,
            seed: self.seed,
            workload,
            max_body_bytes: self.max_body_bytes,
            header_read_timeout: std::time::Duration::from_secs(self.header_read_timeout_secs),
        };
        config.validate()?;
        Ok(config)
    }
}
