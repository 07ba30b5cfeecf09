//! npm packages for tests (the reference MCP servers), installed once under the workspace's
//! `target/` and reused by every later test and test process.
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
