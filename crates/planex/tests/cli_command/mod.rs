//! `planex` as a command for the process tests: the binary this package builds, with the log
//! filter unset and a timeout, so a hung command fails its test instead of stalling the run.
#![allow(clippy::unwrap_used, dead_code)]

use assert_cmd::Command;
use std::time::Duration;

/// `planex` with `PLANEX_LOG` removed and a 120 s timeout.
pub fn planex() -> Command {
    let mut cmd = Command::cargo_bin("planex").unwrap();
    cmd.env_remove("PLANEX_LOG")
        .timeout(Duration::from_secs(120));
    cmd
}
