//! planex-testkit: the test harness shared by planex's test suites and benchmarks, kept out of the
//! product crates so that no test-only code is compiled into them.
//!
//! - [`redis`]: a private `redis-server` on a free loopback port that stops by itself when
//!   dropped (usable outside `#[test]`: it returns errors rather than panicking).
//! - [`conformance`]: the backend-neutral `Store`, `SpendLedger` and `PlanCache` suites, with the
//!   [`conformance_tests!`], [`ledger_conformance_tests!`] and [`plan_cache_conformance_tests!`]
//!   macros that turn them into one `#[tokio::test]` per case; [`store`] holds their task and step
//!   fixtures.
//! - [`sim`], [`llm`], [`sim_pair`], [`fixtures`]: simulators on loopback ports, tier settings
//!   with fast retries, a recording `ChatModel`, tool and plan fixtures.
//! - [`python`]: a virtualenv with pinned Python tools (spec validators, metric parsers, SDKs)
//!   under `target/`, created once and shared by test processes.
//! - [`exposition`]: strict checks of a Prometheus `/metrics` text (the strict parse and
//!   `promtool check metrics`), with the metrics the product requires.
//! - [`process`] and [`temp_dir`]: reading a child process's readiness line, fresh scratch
//!   directories.
//! - [`cluster_config`]: the `planex.toml` of a multi-process test bed (Redis, one simulator, two
//!   tiers, two tools).
//! - [`otlp`]: a real OTLP/HTTP trace receiver (protobuf, decoded with `opentelemetry-proto`).
//! - [`slow_client`]: a client that never finishes its request head, to check a listener's
//!   header-read timeout.
//!
//! Key decision: a dev-only crate (`publish = false`), a normal dependency of nothing but
//! benchmarks. The crates it depends on use it from their integration tests (`tests/`) only, as a
//! dev-dependency; their `#[cfg(test)]` unit tests cannot, since the types would not match.
//! Helpers meant for tests panic with a clear message; the launcher API returns errors.

pub mod cluster_config;
pub mod conformance;
pub mod engine_harness;
pub mod exposition;
pub mod fixtures;
pub mod llm;
pub mod node;
pub mod otlp;
pub mod process;
pub mod python;
pub mod redis;
pub mod sim;
pub mod sim_pair;
pub mod slow_client;
pub mod store;
pub mod temp_dir;
