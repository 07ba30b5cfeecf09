//! MCP tools against a server written with the official Python SDK (PyPI `mcp`, pinned in a venv
//! of its own), as processes: over streamable HTTP, a structured result feeds a `.field`
//! placeholder, a tool error (`isError`) fails its step with the tool's message and skips its
//! dependent, and a call that hangs past `timeout_secs` is cancelled and fails; over stdio, a
//! server that dies mid-call fails that step with the reason, and the next task of the same
//! process succeeds on the restarted server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cli_command;
mod sim_process;

use cli_command::planex;
use planex_testkit::process::{OutputLines, first_url};
use serde_json::{Value, json};
use sim_process::SimProcess;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

/// A child process killed on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn python() -> PathBuf {
    planex_testkit::python::mcp_server_tools().unwrap()
}

fn server_script() -> String {
    planex_testkit::python::script("mcp_server.py")
        .display()
        .to_string()
}

/// Simulator processes for the tiers and a config with `server` appended; returns them and the
/// config's path in `dir`.
fn config(dir: &Path, server: &str) -> (SimProcess, SimProcess, PathBuf) {
    let planner = SimProcess::start("llama-70b", &[]);
    let executor = SimProcess::start("qwen-7b", &[]);
    let mut text = sim_process::default_config_against(&planner, &executor);
    text.push_str(server);
    let path = dir.join("planex.toml");
    std::fs::write(&path, text).unwrap();
    (planner, executor, path)
}

/// `planex run --json --config CONFIG ARGS…`: its results, one per task.
fn run(config: &Path, args: &[&str]) -> Vec<Value> {
    let out = planex()
        .args(["run", "--json", "--config"])
        .arg(config)
        .args(args)
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    // `--plan` prints one (pretty) JSON document, `--plans` one line per task.
    let results: Vec<Value> = match serde_json::from_str(&stdout) {
        Ok(one) => vec![one],
        Err(_) => stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect(),
    };
    assert!(
        !results.is_empty(),
        "no result: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    results
}

fn step(result: &Value, id: u64) -> &Value {
    result["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step_id"] == id)
        .unwrap_or_else(|| panic!("no step {id} in {result}"))
}

#[test]
fn over_streamable_http_results_errors_and_timeouts_are_step_outcomes() {
    let dir = planex_testkit::temp_dir::fresh("planex-mcp-http").unwrap();
    let mut child = std::process::Command::new(python())
        .args([server_script(), "http".to_owned()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let line = OutputLines::read(child.stdout.take().unwrap())
        .wait_for("listening on", Duration::from_secs(60))
        .unwrap();
    let _server = Killed(child);
    let url = first_url(&line).unwrap().to_owned();
    let (_planner, _executor, config) = config(
        &dir,
        &format!("\n[[mcp_servers]]\nname = \"py\"\nurl = \"{url}\"\ntimeout_secs = 1\n"),
    );
    let plan = json!({"task": "Use the Python tools", "steps": [
        {"step_id": 1, "tool_name": "py__lookup", "args": {"topic": "GPUs"}, "depends_on": []},
        {"step_id": 2, "tool_name": "summarize", "args": {"text": "About {step_1_result.topic}"}, "depends_on": [1]},
        {"step_id": 3, "tool_name": "py__fail", "args": {"reason": "not today"}, "depends_on": []},
        {"step_id": 4, "tool_name": "summarize", "args": {"text": "{step_3_result}"}, "depends_on": [3]},
        {"step_id": 5, "tool_name": "py__hang", "args": {"seconds": 30}, "depends_on": []},
    ]});
    let path = dir.join("plan.json");
    std::fs::write(&path, plan.to_string()).unwrap();
    let result = run(&config, &["--plan", path.to_str().unwrap()]).remove(0);
    assert_eq!(result["status"], "partial", "{result}");
    assert_eq!(
        step(&result, 1)["result"]["topic"],
        "GPUs",
        "structured content"
    );
    assert_eq!(step(&result, 1)["result"]["facts"][0], "GPUs fact one");
    assert_eq!(step(&result, 2)["state"], "complete");
    let failed = step(&result, 3)["error"].as_str().unwrap();
    assert!(
        failed.contains("py/fail reported an error") && failed.contains("refused: not today"),
        "{failed}"
    );
    assert_eq!(step(&result, 4)["state"], "skipped");
    let hung = step(&result, 5)["error"].as_str().unwrap();
    assert!(
        hung.contains("did not answer within 1 s and was cancelled"),
        "{hung}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_stdio_server_that_dies_mid_call_fails_that_step_and_is_started_again() {
    let dir = planex_testkit::temp_dir::fresh("planex-mcp-stdio").unwrap();
    let (_planner, _executor, config) = config(
        &dir,
        &format!(
            "\n[[mcp_servers]]\nname = \"py\"\ncommand = {}\nargs = {}\ntimeout_secs = 20\n",
            json!(python().display().to_string()),
            json!([server_script(), "stdio"])
        ),
    );
    let plans = dir.join("plans.jsonl");
    let lines = [
        json!({"task": "Crash the server", "steps": [
            {"step_id": 1, "tool_name": "py__crash", "args": {"note": "now"}, "depends_on": []},
            {"step_id": 2, "tool_name": "summarize", "args": {"text": "{step_1_result}"}, "depends_on": [1]}]}),
        json!({"task": "Then look something up", "steps": [
            {"step_id": 1, "tool_name": "py__lookup", "args": {"topic": "L40S"}, "depends_on": []}]}),
    ];
    std::fs::write(
        &plans,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
    let results = run(&config, &["--plans", plans.to_str().unwrap()]);
    assert_eq!(results.len(), 2, "{results:?}");
    let crashed = &results[0];
    assert_ne!(crashed["status"], "complete", "{crashed}");
    assert_eq!(step(crashed, 1)["state"], "failed");
    let error = step(crashed, 1)["error"].as_str().unwrap();
    assert!(
        error.contains("lost the connection during the call of crash")
            && error.contains("not retried"),
        "{error}"
    );
    assert_eq!(
        step(crashed, 1)["attempts"],
        1,
        "a call that was sent is not repeated"
    );
    assert_eq!(step(crashed, 2)["state"], "skipped");
    let next = &results[1];
    assert_eq!(next["status"], "complete", "{next}");
    assert_eq!(step(next, 1)["result"]["topic"], "L40S");
    std::fs::remove_dir_all(&dir).unwrap();
}
