//! `POST /v1/tasks` against a `planex serve` child process whose planner is a `planex sim` child
//! with a slow time to first token: the id comes back before planning, a client that gives up
//! orphans nothing, and a retried `Idempotency-Key` finds the same task.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cluster;

use cluster::{Proc, START, sim_stats};
use planex_testkit::process::first_url;
use std::path::PathBuf;
use std::time::Duration;

/// Longest a task of these tests may take.
const DONE: Duration = Duration::from_secs(120);

/// A `planex sim` planner (slow TTFT) and a `planex serve` on the memory store, with in-process
/// workers and a simulated executor tier.
struct Serve {
    dir: PathBuf,
    api: String,
    sim_url: String,
    http: reqwest::Client,
    _sim: Proc,
    _serve: Proc,
}

impl Serve {
    fn start(planner_ttft_ms: u64) -> Serve {
        let dir = planex_testkit::temp_dir::fresh("planex-accept").unwrap();
        let sim = Proc::spawn(
            "planner-sim",
            &[
                "sim",
                "--port",
                "0",
                "--model",
                "sim-planner",
                "--ttft-ms",
                &planner_ttft_ms.to_string(),
            ],
            &dir,
        );
        let line = sim.wait_line("listening on", START);
        let sim_url = first_url(&line).unwrap().to_owned();
        let config = dir.join("planex.toml");
        std::fs::write(
            &config,
            format!(
                r#"[engine]
max_subtasks = 3
synthesis = false

[tiers.planner]
model = "sim-planner"
endpoints = ["{sim_url}"]
usd_per_hour = 4.54
tokens_per_second = 2500

[tiers.executor]
model = "sim-executor"
usd_per_hour = 0.96
tokens_per_second = 6000
simulated = {{ ttft_ms = 5, tokens_per_second = 0 }}

[[tools]]
name = "summarize"
description = "Summarize a text in a few sentences"
tier = "executor"
input_schema = {{ type = "object", properties = {{ text = {{ type = "string", minLength = 1 }} }}, required = ["text"], additionalProperties = false }}
kind = {{ type = "llm", prompt = "Summarize:\n\n{{text}}", max_tokens = 64 }}
"#
            ),
        )
        .unwrap();
        let serve = Proc::spawn(
            "serve",
            &[
                "serve",
                "--config",
                config.to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
            ],
            &dir,
        );
        let line = serve.wait_line("listening on", START);
        let api = first_url(&line).unwrap().to_owned();
        Serve {
            dir,
            api,
            sim_url,
            http: reqwest::Client::new(),
            _sim: sim,
            _serve: serve,
        }
    }

    /// `POST /v1/tasks` (with `?query`), optionally with an `Idempotency-Key`.
    async fn post(
        &self,
        query: &str,
        key: Option<&str>,
        body: serde_json::Value,
    ) -> (u16, Option<String>, serde_json::Value) {
        let mut request = self
            .http
            .post(format!("{}/v1/tasks{query}", self.api))
            .json(&body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned());
        (status, location, response.json().await.unwrap())
    }

    /// `GET PATH` as JSON.
    async fn get(&self, path: &str) -> serde_json::Value {
        let response = self
            .http
            .get(format!("{}{path}", self.api))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.unwrap()
    }

    /// Reads the task's SSE stream until `task_completed` and returns everything it read.
    async fn events_until_done(&self, id: &str) -> String {
        let mut response = self
            .http
            .get(format!("{}/v1/tasks/{id}/events", self.api))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let mut text = String::new();
        let read = async {
            while let Some(chunk) = response.chunk().await.unwrap() {
                text.push_str(&String::from_utf8_lossy(&chunk));
                if text.contains("event: task_completed") {
                    return;
                }
            }
        };
        tokio::time::timeout(DONE, read)
            .await
            .unwrap_or_else(|_| panic!("task {id} did not complete within {DONE:?}"));
        text
    }
}

impl Serve {
    /// How many planner requests the planner simulator has served.
    async fn planner_requests(&self) -> u64 {
        let stats = sim_stats(&self.http, &self.sim_url).await;
        stats["planner_requests"].as_u64().unwrap()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_answers_202_with_the_id_while_the_task_is_still_planning() {
    let serve = tokio::task::block_in_place(|| Serve::start(1000));
    let (status, location, body) = serve
        .post(
            "",
            None,
            serde_json::json!({"task": "Summarize GPU prices"}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let id = body["task_id"].as_str().unwrap().to_owned();
    assert_eq!(
        location.as_deref(),
        Some(format!("/v1/tasks/{id}").as_str())
    );
    assert_eq!(
        body["status"], "planning",
        "answered before the planner (1 s TTFT) did"
    );
    // The event stream works from the first moment and follows the task to its end.
    let events = serve.events_until_done(&id).await;
    assert!(events.contains("event: planned"), "{events}");
    // The plan streamed: each step was announced as the planner wrote it, before the plan closed.
    let first_step = events
        .find("event: step_planned")
        .expect("step_planned events");
    assert!(
        first_step < events.find("event: planned").unwrap(),
        "{events}"
    );
    let view = serve.get(&format!("/v1/tasks/{id}")).await;
    assert_eq!(view["status"], "complete", "{view}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_gives_up_during_planning_orphans_nothing_and_its_retry_finds_the_task() {
    let serve = tokio::task::block_in_place(|| Serve::start(1000));
    let body = serde_json::json!({"task": "Summarize GPU prices", "max_subtasks": 2});
    // `curl -m 0.1`: the client gives up while the planner (1 s TTFT) is still thinking.
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let gave_up = impatient
        .post(format!("{}/v1/tasks?wait=true", serve.api))
        .header("Idempotency-Key", "retry-me")
        .json(&body)
        .send()
        .await
        .expect_err("the client gives up after 100 ms");
    assert!(gave_up.is_timeout(), "{gave_up}");
    // Its retry (same key) names the task the first attempt created, which planned on.
    let (status, location, again) = serve.post("", Some("retry-me"), body.clone()).await;
    assert_eq!(status, 202, "{again}");
    let id = again["task_id"].as_str().unwrap().to_owned();
    assert_eq!(
        location.as_deref(),
        Some(format!("/v1/tasks/{id}").as_str())
    );
    let (status, _, done) = serve.post("?wait=true", Some("retry-me"), body).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["task_id"], id.as_str());
    assert_eq!(done["status"], "complete", "{done}");
    let view = serve.get(&format!("/v1/tasks/{id}")).await;
    assert_eq!(view["status"], "complete");
    assert_eq!(
        serve.planner_requests().await,
        1,
        "one task was planned, once: the retries created and billed nothing"
    );
    // Nothing stays reserved: the planner call and the steps were settled.
    let spend = serve.get("/v1/spend").await;
    assert_eq!(spend["total"]["reserved_usd"], "0", "{spend}");
    assert_ne!(spend["total"]["spent_usd"], "0", "{spend}");
}
