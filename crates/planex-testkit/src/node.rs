//! npm packages for tests (the reference MCP servers), installed once under the workspace's
//! `target/` and reused by every later test and test process.
//!
//! Key decision: as with the Python venvs (`python.rs`), a package is installed into a private
//! `…partial-PID-N` directory and renamed to `target/npm-HASH` when complete, so a directory that
//! exists is whole and racing processes need no lock file. `.ci/run` installs [`MCP_SERVERS`]
//! before the tests (step "mcp test servers").

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The reference filesystem MCP server (stdio), pinned.
pub const FILESYSTEM_SERVER: &str = "@modelcontextprotocol/server-filesystem@2026.8.31";

/// The npm packages the tests use.
pub const MCP_SERVERS: &[&str] = &[FILESYSTEM_SERVER];

static INSTALLING: Mutex<()> = Mutex::new(());
static PARTIAL: AtomicU64 = AtomicU64::new(0);

/// The directory (with `node_modules/`) holding `packages` (each `name@version`), installed with
/// `npm` on first use. Safe to call from many threads and test processes at once.
pub fn packages(packages: &[&str]) -> Result<PathBuf, String> {
    if let Some(unpinned) = packages
        .iter()
        .find(|p| !p.trim_start_matches('@').contains('@'))
    {
        return Err(format!(
            "package {unpinned:?} is not pinned: write it as name@version"
        ));
    }
    // A poisoned lock only means another test panicked holding it; the state is checked afresh.
    let _installing = INSTALLING.lock().unwrap_or_else(|p| p.into_inner());
    let mut hash = Sha256::new();
    for package in packages {
        hash.update(package.as_bytes());
        hash.update(b"\n");
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
    let partial = done.with_extension(format!(
        "partial-{}-{}",
        std::process::id(),
        PARTIAL.fetch_add(1, Ordering::Relaxed)
    ));
    let installed = install(&partial, packages).and_then(|()| publish(&partial, &done));
    if installed.is_err() {
        let _ = std::fs::remove_dir_all(&partial);
    }
    installed.map(|()| done)
}

fn install(dir: &Path, packages: &[&str]) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let output = Command::new("npm")
        .args([
            "install",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            "--prefix",
        ])
        .arg(dir)
        .args(packages)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run npm (install Node.js 18 or later): {e}"))?;
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
        "npm install {} failed ({}):\n{tail}",
        packages.join(" "),
        output.status
    ))
}

/// Renames the finished install into place; another process that got there first wins.
fn publish(partial: &Path, done: &Path) -> Result<(), String> {
    match std::fs::rename(partial, done) {
        Ok(()) => Ok(()),
        Err(_) if done.join("node_modules").is_dir() => {
            let _ = std::fs::remove_dir_all(partial);
            Ok(())
        }
        Err(e) => Err(format!("cannot move {} into place: {e}", partial.display())),
    }
}

/// The command and arguments that start the reference filesystem MCP server on `root`.
pub fn filesystem_server(root: &Path) -> Result<(String, Vec<String>), String> {
    let dir = packages(MCP_SERVERS)?;
    let entry = dir.join("node_modules/@modelcontextprotocol/server-filesystem/dist/index.js");
    if !entry.is_file() {
        return Err(format!("{} is missing after the install", entry.display()));
    }
    Ok((
        "node".to_owned(),
        vec![entry.display().to_string(), root.display().to_string()],
    ))
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
