//! npm packages for tests (the reference MCP servers, playwright-core for the dashboard test),
//! installed once under the workspace's `target/` and reused by every later test and test process.
//!
//! Key decisions: the packages and every transitive dependency are pinned by
//! `crates/planex-testkit/node/package-lock.json` and installed with `npm ci`. As with the
//! Python venvs (`python.rs`), the install goes into a private `…partial-PID-N` directory renamed
//! to `target/npm-HASH` (HASH of the manifest and lock) when complete, so a directory that exists
//! is whole and racing processes need no lock file. `.ci/run` installs them before the tests
//! (step "mcp test servers").

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// The directory of the npm manifest and lock file the test servers are installed from.
fn manifest_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("node")
}

static INSTALLING: Mutex<()> = Mutex::new(());

/// The directory (with `node_modules/`) holding the packages of `crates/planex-testkit/node/`
/// exactly as its `package-lock.json` pins them, installed with `npm ci` on first use. Safe to
/// call from many threads and test processes at once.
pub fn packages() -> Result<PathBuf, String> {
    // A poisoned lock only means another test panicked holding it; the state is checked afresh.
    let _installing = INSTALLING.lock().unwrap_or_else(|p| p.into_inner());
    let manifest = manifest_dir();
    let mut hash = Sha256::new();
    for file in ["package.json", "package-lock.json"] {
        let text = std::fs::read(manifest.join(file))
            .map_err(|e| format!("cannot read {}: {e}", manifest.join(file).display()))?;
        hash.update(&text);
    }
    let key: String = hash
        .finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();
    let done = crate::python::target_dir().join(format!("npm-{key}"));
    if done.join("node_modules").is_dir() {
        return Ok(done);
    }
    let partial = crate::python::partial_dir(&done);
    let installed = install(&manifest, &partial).and_then(|()| {
        crate::python::publish_dir(&partial, &done, |dir| dir.join("node_modules").is_dir())
            .map_err(|e| format!("cannot move {} into place: {e}", partial.display()))
    });
    if installed.is_err() {
        let _ = std::fs::remove_dir_all(&partial);
    }
    installed.map(|()| done)
}

fn install(manifest: &Path, dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    for file in ["package.json", "package-lock.json"] {
        std::fs::copy(manifest.join(file), dir.join(file))
            .map_err(|e| format!("cannot copy {file} into {}: {e}", dir.display()))?;
    }
    let output = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run npm (install Node.js 18 or later with npm): {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&output.stderr).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stdout));
    let tail: String = text
        .chars()
        .rev()
        .take(4000)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    Err(format!(
        "npm ci in {} failed ({}):\n{tail}",
        dir.display(),
        output.status
    ))
}

/// The command and arguments that start the reference filesystem MCP server on `root`.
pub fn filesystem_server(root: &Path) -> Result<(String, Vec<String>), String> {
    let dir = packages()?;
    let entry = dir.join("node_modules/@modelcontextprotocol/server-filesystem/dist/index.js");
    if !entry.is_file() {
        return Err(format!("{} is missing after the install", entry.display()));
    }
    Ok((
        "node".to_owned(),
        vec![entry.display().to_string(), root.display().to_string()],
    ))
}

/// Debian's Chromium, which the dashboard test drives (`CHROMIUM` names another binary).
pub fn chromium() -> Result<PathBuf, String> {
    let path = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "no Chromium at {}: install Debian's package (apt-get install chromium; .ci/run does) or set CHROMIUM to a Chromium binary",
            path.display()
        ))
    }
}

/// Runs `dashboard_check.mjs` (next to the npm manifest; playwright-core drives Chromium) against
/// the dashboard at `base`: the page submits `task` (a `POST /v1/tasks` body) and follows it;
/// screenshots go into `out_dir`. Returns the script's JSON report and whether it passed.
pub fn check_dashboard(
    base: &str,
    task: &serde_json::Value,
    out_dir: &Path,
) -> Result<(serde_json::Value, bool), String> {
    let chromium = chromium()?;
    let dir = packages()?;
    // ES modules resolve packages from the script's own directory: run it from the install.
    let script = dir.join("dashboard_check.mjs");
    std::fs::copy(manifest_dir().join("dashboard_check.mjs"), &script)
        .map_err(|e| format!("cannot copy the dashboard script: {e}"))?;
    std::fs::create_dir_all(out_dir)
        .map_err(|e| format!("cannot create {}: {e}", out_dir.display()))?;
    // Bounded: a browser that hangs fails the test instead of holding it (coreutils `timeout`).
    let output = Command::new("timeout")
        .args(["300", "node"])
        .arg(&script)
        .args([base, &task.to_string()])
        .arg(out_dir)
        .env("CHROMIUM", &chromium)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run node: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    let report = serde_json::from_str(line).map_err(|e| {
        format!(
            "the dashboard script printed no report ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    })?;
    Ok((report, output.status.success()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Installs what the tests need (`.ci/run` runs this before the tests).
    #[test]
    fn mcp_servers() {
        let dir = std::env::temp_dir();
        let (command, args) = filesystem_server(&dir).unwrap();
        assert_eq!(command, "node");
        assert!(Path::new(&args[0]).is_file(), "{args:?}");
    }
}
