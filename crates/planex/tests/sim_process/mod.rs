//! A `planex sim` child process standing in for a real model server, and the readiness-line
//! reader every process test uses.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use planex_testkit::process::{OutputLines, first_url};
use std::process::{Child, Stdio};
use std::time::Duration;

/// A `planex sim` child process, stopped on drop.
pub struct SimProcess {
    child: Child,
    /// Its OpenAI base URL (`http://127.0.0.1:PORT/v1`).
    pub base_url: String,
}

impl SimProcess {
    /// Starts `planex sim --port 0 --model MODEL EXTRA…` and waits (with a timeout) for the line
    /// that reports its bound address.
    pub fn start(model: &str, extra: &[&str]) -> SimProcess {
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("planex"))
            .args(["sim", "--port", "0", "--model", model])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let line = first_line(&mut child, "planex sim");
        let base_url = first_url(&line).unwrap().to_owned();
        SimProcess { child, base_url }
    }
}

/// The first line a child process prints on its (piped) stdout: the readiness line of `planex
/// sim`, `planex serve` and the like. Waits at most 60 s.
pub fn first_line(child: &mut Child, what: &str) -> String {
    OutputLines::read(child.stdout.take().unwrap())
        .wait_for("", Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{what} did not print its readiness line: {e}"))
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The embedded default config with its planner and executor tiers pointed at these simulator
/// processes (served as models `llama-70b` and `qwen-7b`).
pub fn default_config_against(planner: &SimProcess, executor: &SimProcess) -> String {
    planex_app::DEFAULT_CONFIG
        .replace("sim-llama-3.3-70b", "llama-70b")
        .replace("sim-qwen2.5-7b", "qwen-7b")
        .replace(
            "simulated = { ttft_ms = 120, tokens_per_second = 2500 }",
            &format!("endpoints = [\"{}\"]", planner.base_url),
        )
        .replace(
            "simulated = { ttft_ms = 40, tokens_per_second = 6000 }",
            &format!("endpoints = [\"{}\"]", executor.base_url),
        )
}
