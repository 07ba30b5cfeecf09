//! `planex` as a process: the README's first command, JSON output, failures and a separate
//! `planex sim` process standing in for real model servers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cli_command;
mod sim_process;

use cli_command::planex;
use sim_process::SimProcess;

use assert_cmd::Command;
use std::time::Duration;

const TASK: &str = "Compare H200 and L40S GPU clouds for serving a 70B model";

#[test]
fn run_with_the_embedded_default_prints_a_full_simulated_run() {
    let out = planex()
        .args(["run", TASK])
        .assert()
        .success()
        .get_output()
        .clone();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("SIMULATED"),
        "the run must say the output is simulated: {stderr}"
    );
    assert!(
        stdout.contains("Plan: ") && stdout.contains("level 1"),
        "{stdout}"
    );
    assert!(stdout.contains("web_search"), "{stdout}");
    assert!(stdout.contains("complete in"), "{stdout}");
    assert!(
        stdout.contains("Answer (SIMULATED model output):\n[simulated]"),
        "{stdout}"
    );
    for row in ["plan ", "step ", "synthesis ", "total "] {
        assert!(stdout.contains(row), "cost table lacks {row:?}: {stdout}");
    }
}

#[test]
fn json_output_is_machine_readable_and_consistent() {
    let out = planex()
        .args(["run", "--json", TASK])
        .assert()
        .success()
        .get_output()
        .clone();
    let result: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("stdout is one JSON document");
    assert_eq!(result["status"], "complete");
    assert_eq!(result["simulated"], true);
    assert!(
        result["answer"]
            .as_str()
            .unwrap()
            .starts_with("[simulated]")
    );
    let steps = result["steps"].as_array().unwrap();
    assert!(steps.len() >= 4, "a plan of 3-10 steps plus synthesis");
    assert!(steps.iter().all(|s| s["state"] == "complete"));
    // One priced call per step plus the planner call.
    assert_eq!(
        result["cost"]["total"]["calls"].as_u64().unwrap(),
        steps.len() as u64 + 1
    );
    let by_stage = &result["cost"]["by_stage"];
    let tokens = |stage: &str| {
        let u = &by_stage[stage]["usage"];
        u["prompt_tokens"].as_u64().unwrap() + u["completion_tokens"].as_u64().unwrap()
    };
    let total = &result["cost"]["total"]["usage"];
    assert_eq!(
        tokens("plan") + tokens("step") + tokens("synthesis"),
        total["prompt_tokens"].as_u64().unwrap() + total["completion_tokens"].as_u64().unwrap()
    );
}

#[test]
fn a_dead_planner_endpoint_fails_with_a_one_line_reason() {
    let dead_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = planex_app::DEFAULT_CONFIG.replace(
        "simulated = { ttft_ms = 120, tokens_per_second = 2500 }",
        &format!("endpoints = [\"http://127.0.0.1:{dead_port}/v1\"]\nretry = {{ max_retries = 1, initial_backoff_ms = 10 }}"),
    );
    let dir = tempdir();
    let path = dir.join("planex.toml");
    std::fs::write(&path, config).unwrap();
    let out = planex()
        .args(["run", "--config", path.to_str().unwrap(), TASK])
        .assert()
        .failure()
        .get_output()
        .clone();
    let stderr = String::from_utf8(out.stderr).unwrap();
    let last = stderr.lines().last().unwrap();
    assert!(
        last.starts_with("planex: task failed: the planner call failed"),
        "{stderr}"
    );
    assert!(last.contains("2 attempts"), "{last}");
    // The transport error's chain reaches the failed connect (the line is cut, so not further).
    assert!(last.to_lowercase().contains("connect"), "{last}");
}

/// No paid answer from nothing: with every executor call failing (a dead endpoint, not retried),
/// the synthesis step is skipped, only the planner call is billed, and the run ends `failed` with
/// each step's reason.
#[test]
fn when_every_step_fails_no_synthesis_is_billed_and_the_run_fails() {
    let dead_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = planex_app::DEFAULT_CONFIG.replace(
        "simulated = { ttft_ms = 40, tokens_per_second = 6000 }",
        &format!(
            "endpoints = [\"http://127.0.0.1:{dead_port}/v1\"]\nretry = {{ max_retries = 0 }}"
        ),
    );
    let dir = tempdir();
    let path = dir.join("planex.toml");
    std::fs::write(&path, config).unwrap();
    let out = planex()
        .args(["run", "--json", "--config", path.to_str().unwrap(), TASK])
        .assert()
        .failure()
        .get_output()
        .clone();
    let result: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("stdout is one JSON document");
    assert_eq!(result["status"], "failed", "{result}");
    let steps = result["steps"].as_array().unwrap();
    let synthesis = steps
        .iter()
        .find(|s| s["tool_name"] == "planex.synthesize")
        .expect("a synthesis step");
    assert_eq!(synthesis["state"], "skipped", "{synthesis}");
    assert!(
        steps
            .iter()
            .all(|s| s["state"] == "failed" || s["state"] == "skipped"),
        "{result}"
    );
    assert_eq!(
        result["cost"]["total"]["calls"], 1,
        "only the planner call is billed: {result}"
    );
    let error = result["error"].as_str().unwrap();
    assert!(error.contains("step 1 failed"), "{error}");
    assert!(error.contains("no dependency step completed"), "{error}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr
            .lines()
            .last()
            .unwrap()
            .starts_with("planex: task failed: "),
        "{stderr}"
    );
}

#[test]
fn a_missing_config_file_prints_the_io_cause_in_one_line() {
    let out = planex()
        .args(["run", "--config", "/nonexistent/planex.toml", TASK])
        .assert()
        .failure()
        .get_output()
        .clone();
    let stderr = String::from_utf8(out.stderr).unwrap();
    let line = stderr
        .lines()
        .find(|l| l.starts_with("planex: error: "))
        .unwrap_or_else(|| panic!("no error line: {stderr}"));
    // What failed and what to do, then the I/O error it comes from.
    assert!(
        line.contains("cannot read config file /nonexistent/planex.toml"),
        "{line}"
    );
    let not_found = std::io::Error::from(std::io::ErrorKind::NotFound).to_string();
    assert!(
        line.contains(": No such file or directory") || line.contains(&not_found),
        "{line}"
    );
}

#[test]
fn an_unreachable_redis_store_prints_the_redis_cause_in_one_line() {
    let dead_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://127.0.0.1:{dead_port}");
    let out = planex()
        .args(["run", "--store", &url, TASK])
        .assert()
        .failure()
        .get_output()
        .clone();
    let stderr = String::from_utf8(out.stderr).unwrap();
    let line = stderr
        .lines()
        .find(|l| l.starts_with("planex: error: "))
        .unwrap_or_else(|| panic!("no error line: {stderr}"));
    // The CLI's context, the store's message naming the URL, then Redis' own words.
    assert!(line.contains("opening the redis store"), "{line}");
    assert!(
        line.contains(&format!("redis connect to {url} failed")),
        "{line}"
    );
    assert!(line.to_lowercase().contains("refused"), "{line}");
}

#[test]
fn config_errors_name_the_field() {
    let dir = tempdir();
    let path = dir.join("bad.toml");
    std::fs::write(
        &path,
        planex_app::DEFAULT_CONFIG.replace("synthesis = true", "synthesis = true\ncolour = 1"),
    )
    .unwrap();
    let out = planex()
        .args(["config", "--config", path.to_str().unwrap()])
        .assert()
        .failure()
        .get_output()
        .clone();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("colour"), "{stderr}");
    planex()
        .args(["config"])
        .assert()
        .success()
        .stdout(predicates::str::contains("built-in simulator"));
}

#[test]
fn run_against_separate_sim_processes_as_real_servers() {
    let planner = SimProcess::start("llama-70b", &[]);
    let executor = SimProcess::start("qwen-7b", &[]);
    let config = planex_app::DEFAULT_CONFIG
        .replace("sim-llama-3.3-70b", "llama-70b")
        .replace("sim-qwen2.5-7b", "qwen-7b")
        .replace(
            "simulated = { ttft_ms = 120, tokens_per_second = 2500 }",
            &format!("endpoints = [\"{}\"]", planner.base_url),
        )
        .replace(
            "simulated = { ttft_ms = 40, tokens_per_second = 6000 }",
            &format!("endpoints = [\"{}\"]", executor.base_url),
        );
    let dir = tempdir();
    let path = dir.join("planex.toml");
    std::fs::write(&path, config).unwrap();
    let out = planex()
        .args(["run", "--json", "--config", path.to_str().unwrap(), TASK])
        .assert()
        .success()
        .get_output()
        .clone();
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["status"], "complete");
    assert_eq!(
        result["simulated"], false,
        "no in-process simulator was used"
    );
    let stats: serde_json::Value = reqwest_stats(&executor.base_url);
    assert!(stats["executor_requests"].as_u64().unwrap() >= 3, "{stats}");
}

fn reqwest_stats(base_url: &str) -> serde_json::Value {
    let url = format!("{}/sim/stats", base_url.trim_end_matches("/v1"));
    let body = std::process::Command::new("curl")
        .args(["-s", &url])
        .output()
        .unwrap()
        .stdout;
    serde_json::from_slice(&body).unwrap()
}

fn tempdir() -> std::path::PathBuf {
    planex_testkit::temp_dir::fresh("planex-cli").unwrap()
}

/// Regression: `PLANEX_LOG` (the log filter) was read as a config override and rejected as an
/// unknown field, so setting it made every command fail.
#[test]
fn planex_log_is_not_mistaken_for_a_config_field() {
    let mut cmd = Command::cargo_bin("planex").unwrap();
    cmd.env("PLANEX_LOG", "warn")
        .timeout(Duration::from_secs(60));
    cmd.args(["config"])
        .assert()
        .success()
        .stdout(predicates::str::contains("config OK"));
}

#[test]
fn tools_list_prints_the_catalog_plans_may_use() {
    let out = planex()
        .args(["tools", "list", "--json"])
        .assert()
        .success()
        .get_output()
        .clone();
    let tools: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let search = tools
        .iter()
        .find(|t| t["name"] == "web_search")
        .expect("the embedded default has web_search");
    assert!(
        search["kind"] == "llm" || search["kind"] == "http",
        "{search}"
    );
    assert!(
        search["args"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["required"] == true),
        "{search}"
    );
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted, "by name");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains("\"prompt\""), "no templates: {text}");
    let table = planex()
        .args(["tools", "list"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let table = String::from_utf8(table).unwrap();
    assert!(table.starts_with("TOOL"), "{table}");
    assert!(table.contains("web_search"), "{table}");
}

/// The Kubernetes deployment turns auth on from the environment, with the keys from the Secret
/// `planex-api-keys` as `PLANEX_API_KEYS` (deploy/kubernetes/planex-api.yaml): the config loads
/// with them and is refused without them, so an API pod never serves without auth.
#[test]
fn the_kubernetes_config_takes_auth_and_keys_from_the_environment() {
    let config = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/kubernetes/planex.toml"
    );
    let digest = "a".repeat(64);
    planex()
        .args(["config", "--config", config])
        .env("PLANEX_SERVER__AUTH", "true")
        .env(
            "PLANEX_API_KEYS",
            format!("[{{key_sha256=\"{digest}\", tenant=\"acme\"}}]"),
        )
        .assert()
        .success();
    let refused = planex()
        .args(["config", "--config", config])
        .env("PLANEX_SERVER__AUTH", "true")
        .env_remove("PLANEX_API_KEYS")
        .assert()
        .failure()
        .get_output()
        .clone();
    let stderr = String::from_utf8(refused.stderr).unwrap();
    assert!(stderr.contains("no [[api_keys]]"), "{stderr}");
    let manifest = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/kubernetes/planex-api.yaml"
    ))
    .unwrap();
    for needle in ["PLANEX_SERVER__AUTH", "PLANEX_API_KEYS", "planex-api-keys"] {
        assert!(
            manifest.contains(needle),
            "planex-api.yaml must set {needle}"
        );
    }
}
