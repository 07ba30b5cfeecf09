//! Python tools for tests: a virtualenv with pinned packages (validators, SDK clients), created
//! once under the workspace's `target/` and reused by every later test and test process.
//!
//! Key decision: a venv is built in a private `…partial-PID-N` directory and then renamed to
//! `target/pyenv-HASH`, where HASH covers the interpreter and the requirement list. A rename is
//! atomic, so a `pyenv-HASH` that exists is complete, and test processes racing to create it
//! need no lock file (which a killed process could leave behind): the loser of the race drops
//! its copy and uses the winner's. Threads of one process wait on a mutex instead, so one test
//! binary installs once. A moved venv works because only `bin/python` is used (it finds
//! `pyvenv.cfg` beside itself), never the `bin/pip` scripts whose shebangs name the old path.
//! `.ci/run` creates [`TEST_TOOLS`] before the tests run (step "python test tools"); the check
//! scripts the tests run with it live in `crates/planex-testkit/python/` ([`script`]).

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The packages planex's own tests use, every one pinned (the full resolved set, so a new
/// release of a dependency cannot change what the tests run): `openapi-spec-validator` checks
/// `/openapi.json`, `prometheus-client` parses `/metrics`, `openai` (the official SDK, with
/// `pydantic`) drives the agent endpoint.
pub const TEST_TOOLS: &[&str] = &[
    "openapi-spec-validator==0.7.1",
    "openapi-schema-validator==0.6.3",
    "jsonschema==4.26.0",
    "jsonschema-path==0.3.4",
    "jsonschema-specifications==2025.9.1",
    "referencing==0.36.2",
    "rpds-py==2026.9.1",
    "attrs==26.1.0",
    "lazy-object-proxy==1.13.0",
    "pathable==0.4.4",
    "PyYAML==6.0.4",
    "requests==2.34.2",
    "certifi==2026.10.19.post1",
    "charset-normalizer==3.5.3",
    "idna==3.20",
    "urllib3==2.8.0",
    "rfc3339-validator==0.1.4",
    "six==1.17.0",
    "typing_extensions==4.16.0",
    "prometheus-client==0.21.1",
    "openai==3.60.0",
    "anyio==4.16.0",
    "h11==0.16.0",
    "httpcore2==2.16.2",
    "httpx2==2.16.2",
    "jiter==0.19.0",
    "pydantic==2.14.4",
    "pydantic_core==2.50.5",
    "annotated-types==0.8.0",
    "typing-inspection==0.4.5",
    "sniffio==1.3.1",
    "truststore==0.10.5",
];

/// The packages of the MCP server the MCP tests run (`python/mcp_server.py`, written with the
/// official Python SDK), every one pinned; a venv of its own, as its resolved set differs from
/// [`TEST_TOOLS`]'s.
pub const MCP_SERVER_TOOLS: &[&str] = &[
    "annotated-types==0.8.0",
    "anyio==4.16.0",
    "attrs==26.1.0",
    "cffi==2.1.1",
    "click==8.5.1",
    "cryptography==50.0.2",
    "h11==0.16.0",
    "httpcore2==2.16.2",
    "httpx2==2.16.2",
    "idna==3.20",
    "jsonschema==4.26.0",
    "jsonschema-specifications==2025.9.1",
    "mcp==2.3.0",
    "mcp-types==2.3.0",
    "opentelemetry-api==1.45.2",
    "pycparser==3.12",
    "pydantic==2.14.4",
    "pydantic_core==2.50.5",
    "PyJWT==2.15.1",
    "python-multipart==0.0.34",
    "referencing==0.37.0",
    "rpds-py==2026.9.1",
    "sse-starlette==3.7.1",
    "starlette==1.10.0",
    "truststore==0.10.5",
    "typing-inspection==0.4.5",
    "typing_extensions==4.16.0",
    "uvicorn==0.55.0",
];

/// The environment variable naming the interpreter that creates venvs (default `python3`).
pub const PYTHON_ENV: &str = "PLANEX_PYTHON";

/// At most this many bytes of a failed command's output go into an error (its tail).
const OUTPUT_TAIL: usize = 4000;

/// Serialises venv creation within one process (see the module comment).
static CREATING: Mutex<()> = Mutex::new(());
static PARTIAL: AtomicU64 = AtomicU64::new(0);

/// Why a virtualenv could not be created.
#[derive(Debug, thiserror::Error)]
pub enum PythonError {
    /// A requirement without an exact `==` version.
    #[error("requirement {0:?} is not pinned: write it as name==version")]
    Unpinned(String),
    /// The interpreter could not be run at all.
    #[error(
        "cannot run {python:?} (install Python 3 with its venv module, or set {PYTHON_ENV} to an interpreter): {source}"
    )]
    Missing {
        /// The interpreter that was tried.
        python: String,
        /// Why spawning it failed.
        #[source]
        source: std::io::Error,
    },
    /// A Python command exited unsuccessfully; `output` is the tail of its stderr and stdout.
    #[error("{what} failed ({status}); its output ends with:\n{output}")]
    Failed {
        /// What was being done, with the hint that fits it.
        what: String,
        /// The exit status.
        status: std::process::ExitStatus,
        /// The tail of what it printed.
        output: String,
    },
    /// A directory under `target/` could not be created, renamed or removed.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The directory concerned.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Returns the `python` of a virtualenv holding exactly `requirements` (each `name==version`),
/// creating it under the workspace's `target/` (or `$CARGO_TARGET_DIR`) on first use with `pip`.
/// Safe to call from many threads and test processes at once.
pub fn venv(requirements: &[&str]) -> Result<PathBuf, PythonError> {
    if let Some(unpinned) = requirements.iter().find(|r| !r.contains("==")) {
        return Err(PythonError::Unpinned((*unpinned).to_owned()));
    }
    let python = std::env::var(PYTHON_ENV).unwrap_or_else(|_| "python3".to_owned());
    // A poisoned lock only means another test panicked while holding it; the directory state
    // is checked afresh below, so it is safe to go on.
    let _creating = CREATING.lock().unwrap_or_else(|poison| poison.into_inner());
    let identity = interpreter_identity(&python)?;
    let root = target_dir();
    let done = root.join(format!("pyenv-{}", key(&identity, requirements)));
    if venv_python(&done).is_file() {
        return Ok(venv_python(&done));
    }
    std::fs::create_dir_all(&root).map_err(|source| PythonError::Io {
        action: "create",
        path: root.clone(),
        source,
    })?;
    let partial = partial_dir(&done);
    let built = build(&python, &partial, requirements).and_then(|()| publish(&partial, &done));
    if built.is_err() {
        // Best effort: a leftover partial directory is never used, only wastes space.
        let _ = std::fs::remove_dir_all(&partial);
    }
    built.map(|()| venv_python(&done))
}

/// [`venv`] with [`TEST_TOOLS`].
pub fn test_tools() -> Result<PathBuf, PythonError> {
    venv(TEST_TOOLS)
}

/// [`venv`] with [`MCP_SERVER_TOOLS`].
pub fn mcp_server_tools() -> Result<PathBuf, PythonError> {
    venv(MCP_SERVER_TOOLS)
}

/// The path of a check script shipped in `crates/planex-testkit/python/` (`check_openapi.py`,
/// `check_metrics.py`; each documents its arguments).
pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("python")
        .join(name)
}

/// Runs `python SCRIPT ARGS…` with `stdin` as its standard input; returns its output whatever
/// its exit status (the caller asserts on it), or an error when it cannot be started.
pub fn run_script(
    python: &Path,
    script: &Path,
    args: &[&str],
    stdin: &[u8],
) -> std::io::Result<Output> {
    use std::io::Write;
    let mut child = Command::new(python)
        .arg(script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(mut input) = child.stdin.take() {
        // A script that exits without reading its input closes the pipe; its output says why.
        let _ = input.write_all(stdin);
    }
    child.wait_with_output()
}

fn venv_python(dir: &Path) -> PathBuf {
    dir.join("bin").join("python")
}

/// The directory venvs live in: `$CARGO_TARGET_DIR`, else this workspace's `target/`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"),
    }
}

/// The interpreter's real path and version, so a different Python gets a different venv.
fn interpreter_identity(python: &str) -> Result<String, PythonError> {
    let output = Command::new(python)
        .args([
            "-c",
            "import sys; print(sys.executable); print(sys.version)",
        ])
        .stdin(Stdio::null())
        .output()
        .map_err(|source| PythonError::Missing {
            python: python.to_owned(),
            source,
        })?;
    check(output, format!("`{python} -c 'import sys'`"))
}

fn key(identity: &str, requirements: &[&str]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(identity.as_bytes());
    for requirement in requirements {
        hasher.update(b"\n");
        hasher.update(requirement.as_bytes());
    }
    hasher
        .finalize()
        .iter()
        .take(8)
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn build(python: &str, dir: &Path, requirements: &[&str]) -> Result<(), PythonError> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|source| PythonError::Io {
            action: "remove the stale",
            path: dir.to_owned(),
            source,
        })?;
    }
    let output = Command::new(python)
        .args(["-m", "venv"])
        .arg(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| PythonError::Missing {
            python: python.to_owned(),
            source,
        })?;
    check(
        output,
        format!("`{python} -m venv` (on Debian: apt-get install python3-venv)"),
    )?;
    let output = Command::new(venv_python(dir))
        .args(["-m", "pip", "install", "--disable-pip-version-check"])
        .args(["--no-input", "--quiet"])
        .args(requirements)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| PythonError::Missing {
            python: venv_python(dir).display().to_string(),
            source,
        })?;
    check(
        output,
        format!(
            "pip install {} (check the pins exist and PyPI is reachable)",
            requirements.join(" ")
        ),
    )
    .map(|_| ())
}

/// Renames the finished venv into place; when another process got there first, drops ours.
fn publish(partial: &Path, done: &Path) -> Result<(), PythonError> {
    publish_dir(partial, done, |dir| venv_python(dir).is_file()).map_err(|source| PythonError::Io {
        action: "rename the new virtualenv to",
        path: done.to_owned(),
        source,
    })
}

/// A private directory beside `done` to build into (`DONE.partial-PID-N`), unique per call.
pub(crate) fn partial_dir(done: &Path) -> PathBuf {
    done.with_extension(format!(
        "partial-{}-{}",
        std::process::id(),
        PARTIAL.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Renames the finished `partial` directory to `done`; when another process got there first
/// (`complete(done)` holds), drops ours and keeps theirs.
pub(crate) fn publish_dir(
    partial: &Path,
    done: &Path,
    complete: impl Fn(&Path) -> bool,
) -> std::io::Result<()> {
    match std::fs::rename(partial, done) {
        Ok(()) => Ok(()),
        Err(_) if complete(done) => {
            let _ = std::fs::remove_dir_all(partial);
            Ok(())
        }
        Err(error) => Err(error),
    }
}

/// Its stdout when `output` succeeded, else [`PythonError::Failed`] with the tail of its output.
fn check(output: Output, what: String) -> Result<String, PythonError> {
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    let mut text = String::from_utf8_lossy(&output.stderr).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stdout));
    let start = text.len().saturating_sub(OUTPUT_TAIL);
    let start = (start..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    Err(PythonError::Failed {
        what,
        status: output.status,
        output: text[start..].to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Also the CI step "python test tools": creates the venv the other suites use.
    #[test]
    fn test_tools_venv_imports_the_validators_and_is_reused() {
        let python = test_tools().unwrap();
        let output = Command::new(&python)
            .args(["-c", "import openapi_spec_validator, prometheus_client"])
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        assert_eq!(test_tools().unwrap(), python, "a second call reuses it");
        assert!(python.starts_with(target_dir()), "{python:?}");
    }

    #[test]
    fn mcp_server_tools_venv_imports_the_sdk() {
        let python = mcp_server_tools().unwrap();
        let output = Command::new(&python)
            .args(["-c", "import mcp.server.mcpserver, uvicorn"])
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
    }

    #[test]
    fn the_shipped_check_scripts_exist() {
        for name in ["check_openapi.py", "check_metrics.py", "mcp_server.py"] {
            assert!(script(name).is_file(), "{}", script(name).display());
        }
    }

    #[test]
    fn unpinned_requirements_are_refused_before_anything_runs() {
        let error = venv(&["prometheus-client"]).unwrap_err();
        assert!(matches!(error, PythonError::Unpinned(_)), "{error}");
        assert!(error.to_string().contains("name==version"), "{error}");
    }

    #[test]
    fn pip_failure_reports_pips_output() {
        let error = venv(&["planex-no-such-package-for-tests==0.0.1"]).unwrap_err();
        let PythonError::Failed { what, output, .. } = &error else {
            panic!("expected a pip failure, got {error}");
        };
        assert!(what.starts_with("pip install"), "{error}");
        assert!(
            output.contains("planex-no-such-package-for-tests"),
            "{error}"
        );
    }

    #[test]
    fn losing_the_race_to_publish_keeps_the_winners_venv_and_drops_ours() {
        let root = crate::temp_dir::fresh("planex-pyenv-race").unwrap();
        let done = root.join("pyenv-x");
        let ours = root.join("pyenv-x.partial-1-0");
        for dir in [&done, &ours] {
            std::fs::create_dir_all(dir.join("bin")).unwrap();
            std::fs::write(venv_python(dir), "").unwrap();
        }
        std::fs::write(done.join("winner"), "").unwrap();
        publish(&ours, &done).unwrap();
        assert!(done.join("winner").is_file(), "the winner's venv is kept");
        assert!(!ours.exists(), "ours is removed");
        // With no winner, ours is renamed into place.
        std::fs::create_dir_all(ours.join("bin")).unwrap();
        std::fs::write(venv_python(&ours), "").unwrap();
        let fresh = root.join("pyenv-y");
        publish(&ours, &fresh).unwrap();
        assert!(venv_python(&fresh).is_file() && !ours.exists());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_missing_interpreter_says_how_to_fix_it() {
        let error = interpreter_identity("planex-no-such-python3").unwrap_err();
        assert!(matches!(error, PythonError::Missing { .. }), "{error}");
        assert!(error.to_string().contains(PYTHON_ENV), "{error}");
    }

    #[test]
    fn different_interpreters_and_requirements_get_different_keys() {
        assert_ne!(key("a", &["x==1"]), key("b", &["x==1"]));
        assert_ne!(key("a", &["x==1"]), key("a", &["x==2"]));
        assert_eq!(key("a", &["x==1"]).len(), 16);
    }
}
