//! What workers tell the store about themselves besides their heartbeat: their rolling TTFT per
//! tier called ([`crate::Store::report_ttft`]).

use std::time::Duration;

/// A worker's rolling time to first token on its tier, as its heartbeat reports it
/// ([`crate::Store::report_ttft`]): TTFT is measured where the calls are made, so this is how an
/// API replica that makes no calls to a tier learns the tier's TTFT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerTtft {
    /// The worker's id.
    pub worker: String,
    /// The p95 of its window.
    pub p95: Duration,
    /// Samples in its window.
    pub samples: usize,
}
