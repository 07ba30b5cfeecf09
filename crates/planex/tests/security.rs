//! Security as a user's audit would check it, against real processes (`planex serve` over two
//! `planex sim` model servers): another tenant's ids are not found on any task route, and no
//! secret (an API key, the model servers' bearer token) appears in the logs, even at debug level,
//! or in the config dump.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cli_command;
mod sim_process;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sim_process::{SimProcess, default_config_against, first_line};
use std::process::{Command, Stdio};
use std::time::Duration;

const ACME_KEY: &str = "sk-acme-9f2c1d7e-secret";
const GLOBEX_KEY: &str = "sk-globex-4b8a0e6f-secret";
const UPSTREAM_TOKEN: &str = "upstream-bearer-77d1c0-secret";

fn sha256(text: &str) -> String {
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha256sum (coreutils) runs");
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_owned()
}

/// The default config against the simulators, both tiers sending `UPSTREAM_TOKEN`, two tenants.
fn config(planner: &SimProcess, executor: &SimProcess) -> String {
    let mut config = default_config_against(planner, executor);
    for tier in ["[tiers.planner]\n", "[tiers.executor]\n"] {
        config = config.replace(
            tier,
            &format!("{tier}api_key_env = \"SECURITY_TEST_UPSTREAM_TOKEN\"\n"),
        );
    }
    for (key, tenant) in [(ACME_KEY, "acme"), (GLOBEX_KEY, "globex")] {
        config.push_str(&format!(
            "\n[[api_keys]]\nkey_sha256 = \"{}\"\ntenant = \"{tenant}\"\n",
            sha256(key)
        ));
    }
    config
}

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    key: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = http.request(method, url).bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_see_only_their_tasks_and_no_secret_reaches_the_logs() {
    let planner =
        tokio::task::block_in_place(|| SimProcess::start("llama-70b", &["--ttft-ms", "0"]));
    let executor =
        tokio::task::block_in_place(|| SimProcess::start("qwen-7b", &["--ttft-ms", "0"]));
    let dir = planex_testkit::temp_dir::fresh("planex-security").unwrap();
    let path = dir.join("planex.toml");
    std::fs::write(&path, config(&planner, &executor)).unwrap();
    let mut serve = Command::new(assert_cmd::cargo::cargo_bin("planex"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&path)
        .env("PLANEX_LOG", "debug")
        .env("SECURITY_TEST_UPSTREAM_TOKEN", UPSTREAM_TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let line = tokio::task::block_in_place(|| first_line(&mut serve, "planex serve"));
    let api = planex_testkit::process::first_url(&line)
        .unwrap()
        .to_owned();
    let http = reqwest::Client::new();
    let (status, view) = call(
        &http,
        reqwest::Method::POST,
        format!("{api}/v1/tasks?wait=true"),
        ACME_KEY,
        Some(json!({"task": "Compare two GPU clouds", "max_subtasks": 3})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["status"], "complete", "{view}");
    let id = view["task_id"].as_str().unwrap().to_owned();
    // Every task route answers another tenant 404, as for an id that does not exist.
    for (method, path) in [
        (reqwest::Method::GET, format!("/v1/tasks/{id}")),
        (reqwest::Method::GET, format!("/v1/tasks/{id}/events")),
        (reqwest::Method::POST, format!("/v1/tasks/{id}/cancel")),
    ] {
        let (status, body) = call(
            &http,
            method.clone(),
            format!("{api}{path}"),
            GLOBEX_KEY,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
        assert_eq!(body["error"]["type"], "not_found", "{body}");
    }
    let (status, own) = call(
        &http,
        reqwest::Method::GET,
        format!("{api}/v1/tasks/{id}"),
        ACME_KEY,
        None,
    )
    .await;
    assert_eq!(
        (status, own["status"].as_str()),
        (StatusCode::OK, Some("complete"))
    );
    let (_, listed) = call(
        &http,
        reqwest::Method::GET,
        format!("{api}/v1/tasks"),
        GLOBEX_KEY,
        None,
    )
    .await;
    assert!(
        !listed.to_string().contains(&id),
        "globex lists acme's task: {listed}"
    );
    let (_, listed) = call(
        &http,
        reqwest::Method::GET,
        format!("{api}/v1/tasks"),
        ACME_KEY,
        None,
    )
    .await;
    assert!(listed.to_string().contains(&id), "{listed}");
    let (_, spend) = call(
        &http,
        reqwest::Method::GET,
        format!("{api}/v1/spend"),
        GLOBEX_KEY,
        None,
    )
    .await;
    assert_eq!(spend["tenant"], "globex", "{spend}");
    assert_eq!(spend["total"]["spent_usd"], "0", "{spend}");
    // Stop and read everything the server wrote, at debug level.
    assert!(
        Command::new("kill")
            .args(["-TERM", &serve.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let output = tokio::task::block_in_place(|| {
        let (done, exited) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = done.send(serve.wait_with_output());
        });
        exited
            .recv_timeout(Duration::from_secs(60))
            .expect("planex serve exits after SIGTERM")
            .unwrap()
    });
    let logs = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        logs.contains(&id),
        "the logs are the debug logs of this run"
    );
    for secret in [ACME_KEY, GLOBEX_KEY, UPSTREAM_TOKEN] {
        assert!(
            !logs.contains(secret),
            "a secret reached the logs: {secret}"
        );
    }
    // The config dump names where the token comes from, never the token.
    let dump = cli_command::planex()
        .args(["config", "--config"])
        .arg(&path)
        .env("SECURITY_TEST_UPSTREAM_TOKEN", UPSTREAM_TOKEN)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let dump = String::from_utf8(dump).unwrap();
    assert!(dump.contains("executor"), "{dump}");
    for secret in [ACME_KEY, GLOBEX_KEY, UPSTREAM_TOKEN] {
        assert!(
            !dump.contains(secret),
            "a secret is in the config dump: {dump}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
