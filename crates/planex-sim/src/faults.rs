//! Fault decisions: per-request markers first, then seeded random faults.
//!
//! Key decision: every chat request draws the same number of values from one ChaCha RNG
//! (seeded by `--seed`, re-seeded on reset) whatever the rates, so a run with the same seed and
//! request order injects the same faults; `xN` markers keep a counter keyed by marker text plus
//! the sha of the request contents.

use std::collections::HashMap;
use std::sync::Mutex;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::config::SimConfig;
use crate::markers::Markers;

/// What to do to one request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Decision {
    /// Answer with this HTTP error status instead of a completion.
    pub error: Option<u16>,
    /// Hang for `--hang-ms` before answering.
    pub hang: bool,
    /// Answer 200 with invalid JSON content.
    pub malformed: bool,
    /// Answer 200 and break the connection after about half the answer.
    pub truncate: bool,
}

impl Decision {
    /// Whether any fault is injected.
    pub fn is_fault(&self) -> bool {
        self.error.is_some() || self.hang || self.malformed || self.truncate
    }
}

/// Shared fault state of a server.
#[derive(Debug)]
pub struct FaultInjector {
    seed: u64,
    error_rate: f64,
    rate_limit_rate: f64,
    hang_rate: f64,
    malformed_rate: f64,
    truncate_rate: f64,
    rng: Mutex<ChaCha8Rng>,
    counters: Mutex<HashMap<String, u32>>,
}

const ERROR_CODES: [u16; 3] = [500, 502, 503];

impl FaultInjector {
    /// A fresh injector for `config`.
    pub fn new(config: &SimConfig) -> Self {
        Self {
            seed: config.seed,
            error_rate: config.error_rate,
            rate_limit_rate: config.rate_limit_rate,
            hang_rate: config.hang_rate,
            malformed_rate: config.malformed_rate,
            truncate_rate: config.truncate_rate,
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(config.seed)),
            counters: Mutex::new(HashMap::new()),
        }
    }

    /// Clears `xN` counters and re-seeds the RNG.
    pub fn reset(&self) {
        *self.rng.lock().unwrap_or_else(|e| e.into_inner()) = ChaCha8Rng::seed_from_u64(self.seed);
        self.counters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Decision from markers only (search requests and the first stage of chat requests).
    pub fn by_markers(&self, markers: &Markers, contents_sha: &str) -> Decision {
        let error = markers.fail.as_ref().and_then(|fail| match fail.times {
            None => Some(fail.status),
            Some(n) => {
                let mut counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
                let seen = counters
                    .entry(format!("{}|{contents_sha}", fail.raw))
                    .or_insert(0);
                (*seen < n).then(|| {
                    *seen += 1;
                    fail.status
                })
            }
        });
        Decision {
            error,
            hang: error.is_none() && markers.hang,
            malformed: error.is_none() && markers.malformed,
            truncate: error.is_none() && markers.truncate,
        }
    }

    /// Decision for a chat request: markers, then (if they inject nothing) random faults.
    pub fn for_chat(&self, markers: &Markers, contents_sha: &str) -> Decision {
        let marked = self.by_markers(markers, contents_sha);
        let draws: [f64; 6] = {
            let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
            std::array::from_fn(|_| rng.random::<f64>())
        };
        if marked.is_fault() {
            return marked;
        }
        let [error, limit, hang, malformed, code, truncate] = draws;
        let mut decision = Decision::default();
        if error < self.error_rate {
            let index = ((code * ERROR_CODES.len() as f64) as usize).min(ERROR_CODES.len() - 1);
            decision.error = ERROR_CODES.get(index).copied();
        } else if limit < self.rate_limit_rate {
            decision.error = Some(429);
        } else if hang < self.hang_rate {
            decision.hang = true;
        } else if malformed < self.malformed_rate {
            decision.malformed = true;
        } else if truncate < self.truncate_rate {
            decision.truncate = true;
        }
        decision
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn counted_marker_fails_n_times_then_resets() {
        let f = FaultInjector::new(&SimConfig::default());
        let m = Markers::scan(["#sim:fail=503x2"]);
        let codes: Vec<_> = (0..3).map(|_| f.for_chat(&m, "a").error).collect();
        assert_eq!(codes, [Some(503), Some(503), None]);
        assert_eq!(f.for_chat(&m, "b").error, Some(503));
        f.reset();
        assert_eq!(f.for_chat(&m, "a").error, Some(503));
    }

    #[test]
    fn random_faults_are_seeded() {
        let config = SimConfig {
            malformed_rate: 0.5,
            seed: 7,
            ..SimConfig::default()
        };
        let run = || {
            let f = FaultInjector::new(&config);
            (0..32)
                .map(|_| f.for_chat(&Markers::default(), "").malformed)
                .collect::<Vec<_>>()
        };
        let a = run();
        assert_eq!(a, run());
        assert!(a.contains(&true) && a.contains(&false));
    }
}
