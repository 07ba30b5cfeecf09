//! The `planex` processes a chaos run starts, kills with SIGKILL and replaces: `planex serve` and
//! `planex worker`. Readiness is each process's own stdout line (never a sleep); stderr goes to a
//! log file per process in the run's directory, named in every error.

use anyhow::{Context, Result, anyhow};
use planex_testkit::process::OutputLines;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How long a process may take to say it serves.
const READY: Duration = Duration::from_secs(60);

/// One running `planex` process; killed with SIGKILL when dropped, so a failed run leaves nothing.
pub struct PlanexProc {
    /// The name it was started under (its log is `DIR/NAME.log`).
    pub name: String,
    child: Child,
    lines: OutputLines,
    log: PathBuf,
}

impl PlanexProc {
    /// Starts `planex ARGS`, then waits for a stdout line containing `ready` and returns it too.
    pub fn start(
        planex: &Path,
        name: &str,
        args: &[&str],
        dir: &Path,
        ready: &str,
    ) -> Result<(PlanexProc, String)> {
        let log = dir.join(format!("{name}.log"));
        let stderr = std::fs::File::create(&log)
            .with_context(|| format!("cannot create the log file {}", log.display()))?;
        let mut child = Command::new(planex)
            .args(args)
            .env("PLANEX_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("cannot start {} for {name}", planex.display()))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("{name}: its stdout was not piped"))?;
        let proc = PlanexProc {
            name: name.to_owned(),
            child,
            lines: OutputLines::read(stdout),
            log,
        };
        let line = proc.lines.wait_for(ready, READY).map_err(|e| {
            anyhow!(
                "{name} did not become ready: {e}; its log ({}):\n{}",
                proc.log.display(),
                std::fs::read_to_string(&proc.log).unwrap_or_default()
            )
        })?;
        Ok((proc, line))
    }

    /// SIGKILL: the process dies at once, holding whatever it held.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PlanexProc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The `planex` binary next to this one (`cargo build --release -p planex -p planex-bench` puts
/// both in `target/release`), unless `explicit` names one.
pub fn planex_binary(explicit: Option<PathBuf>) -> Result<PathBuf> {
    let path = match explicit {
        Some(path) => path,
        None => std::env::current_exe()
            .context("cannot find this executable's path")?
            .with_file_name("planex"),
    };
    if !path.is_file() {
        anyhow::bail!(
            "no planex binary at {}: build it beside planex-bench (cargo build --release -p planex -p planex-bench) or pass --planex PATH",
            path.display()
        );
    }
    Ok(path)
}

/// A worker process and the tier it serves.
pub struct Worker {
    /// The tier it serves.
    pub tier: String,
    /// The process.
    pub proc: PlanexProc,
}
