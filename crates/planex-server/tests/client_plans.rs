//! Client-supplied plans and `/v1/execute`'s sub-task contract, over real HTTP: the API served on a
//! loopback socket, model calls to simulators, `http` tools to a recording server on 127.0.0.1.
//! The plans are the repository's fixtures (`examples/plans.jsonl`, `examples/hostile-plans.jsonl`)
//! over the embedded default tool catalog.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use common::{Harness, Options};
use planex_core::ToolSpec;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The tools of the embedded default config (`crates/planex-app/src/default.toml`), which the
/// fixtures are written against.
fn default_tools() -> Vec<ToolSpec> {
    #[derive(serde::Deserialize)]
    struct Tools {
        tools: Vec<ToolSpec>,
    }
    let text = include_str!("../../planex-app/src/default.toml");
    toml::from_str::<Tools>(text).unwrap().tools
}

/// The entries of a fixture file (comments and blank lines skipped).
fn fixture(name: &str) -> Vec<Value> {
    let path = format!("{}/../../examples/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The `POST /v1/tasks` body of a fixture entry (`plan` nested or flat `steps`).
fn body_of(entry: &Value) -> Value {
    let mut body = json!({
        "task": entry["task"],
        "plan": entry.get("plan").cloned().unwrap_or_else(|| json!({"steps": entry["steps"]})),
    });
    for key in ["budget_usd", "synthesis"] {
        if let Some(value) = entry.get(key) {
            body[key] = value.clone();
        }
    }
    body
}

/// The harness's API served on a loopback port.
struct Served {
    h: Harness,
    base: String,
    client: reqwest::Client,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Served {
    async fn start(options: Options) -> Served {
        let h = Harness::start(options).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(planex_server::serve(
            listener,
            h.state.clone(),
            async move {
                let _ = stopped.await;
            },
        ));
        Served {
            h,
            base,
            client: reqwest::Client::new(),
            stop,
            server,
        }
    }

    async fn post(&self, path: &str, body: &Value, headers: &[(&str, &str)]) -> (StatusCode, Value) {
        let mut request = self.client.post(format!("{}{path}", self.base)).json(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> Value {
        let url = format!("{}{path}", self.base);
        self.client.get(url).send().await.unwrap().json().await.unwrap()
    }

    /// The planner simulator's `/sim/stats`, read over HTTP.
    async fn planner_stats(&self) -> Value {
        let url = format!("{}/sim/stats", self.h.planner_sim.base_url().trim_end_matches("/v1"));
        self.client.get(url).send().await.unwrap().json().await.unwrap()
    }

    /// Nothing recorded or booked: no task left planning, no reservation held, no spend.
    async fn assert_nothing_recorded_or_billed(&self, what: &str) {
        let planning = self.h.engine.store().planning_tasks(u64::MAX, 100).await.unwrap();
        assert!(planning.is_empty(), "{what}: tasks recorded: {planning:?}");
        let guard = self.h.engine.budget().unwrap();
        let held = guard.ledger().held().await.unwrap();
        assert!(held.is_empty(), "{what}: reservations held: {held:?}");
        let spend = self.get("/v1/spend").await;
        assert_eq!(spend["total"]["spent_usd"], "0", "{what}: {spend}");
        assert_eq!(spend["total"]["reserved_usd"], "0", "{what}: {spend}");
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.server.await.unwrap().unwrap();
        self.h.stop().await;
    }
}

fn with_default_tools() -> Options {
    Options {
        tools: Some(default_tools()),
        ..Options::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hostile_plan_is_a_422_naming_its_rule_and_nothing_is_recorded_or_billed() {
    let api = Served::start(with_default_tools()).await;
    let hostile = fixture("hostile-plans.jsonl");
    assert!(hostile.len() >= 20, "the fixture lost plans");
    for entry in &hostile {
        let id = entry["id"].as_str().unwrap();
        let rule = id.split('/').next().unwrap();
        for path in ["/v1/tasks", "/v1/tasks?wait=true"] {
            let (status, body) = api.post(path, &body_of(entry), &[]).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{id} {path}: {body}");
            let error = &body["error"];
            assert_eq!(error["type"], "validation_failed", "{id}: {body}");
            assert_eq!(error["details"]["rule"], rule, "{id}: {body}");
            assert!(
                error["message"].as_str().unwrap().starts_with("invalid plan: "),
                "{id}: {body}"
            );
            // Rules about one step name it, by id or (when its id is unreadable) by position.
            let names_step =
                !error["details"]["step_id"].is_null() || !error["details"]["step_index"].is_null();
            let whole_plan = matches!(rule, "empty" | "too_many_steps")
                || id.starts_with("shape/steps-not")
                || id.starts_with("shape/plan-not")
                || id.starts_with("shape/unknown-plan");
            assert_eq!(names_step, !whole_plan, "{id}: {body}");
        }
    }
    api.assert_nothing_recorded_or_billed("hostile plans").await;
    assert_eq!(api.planner_stats().await["planner_requests"], 0);
    assert_eq!(
        api.h.executor_sim.stats().requests_total,
        0,
        "no hostile step reached an executor"
    );
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_good_plan_completes_with_no_planner_call() {
    let api = Served::start(with_default_tools()).await;
    let good = fixture("plans.jsonl");
    assert_eq!(good.len(), 8);
    for entry in &good {
        let id = entry["id"].as_str().unwrap();
        let (status, view) = api.post("/v1/tasks?wait=true", &body_of(entry), &[]).await;
        assert_eq!(status, StatusCode::OK, "{id}: {view}");
        assert_eq!(view["status"], "complete", "{id}: {view}");
        assert_eq!(view["plan_source"], "client", "{id}");
        assert_eq!(view["plan"]["source"], "client", "{id}");
        assert_eq!(view["task"], entry["task"], "{id}");
        let plan = body_of(entry)["plan"]["steps"].as_array().unwrap().len();
        // The harness runs no synthesis step: exactly the client's steps ran, as written.
        let steps = view["steps"].as_array().unwrap();
        assert_eq!(steps.len(), plan, "{id}");
        assert!(steps.iter().all(|s| s["state"] == "complete"), "{id}: {view}");
        assert!(view["cost"]["by_stage"].get("plan").is_none(), "{id}: {view}");
        assert_eq!(
            api.planner_stats().await["planner_requests"],
            0,
            "{id}: the planner was called"
        );
    }
    // `.field` placeholders were filled in from the JSON results.
    let (_, view) = api
        .post("/v1/tasks?wait=true", &body_of(&good[4]), &[])
        .await;
    assert_eq!(good[4]["id"], "field-placeholders");
    let compare = &view["steps"][2]["result"];
    assert!(compare.as_str().unwrap().starts_with("[simulated]"), "{view}");
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_plans_neither_read_nor_write_the_plan_cache() {
    let api = Served::start(Options::default()).await;
    let task = "Look up H200 prices and summarize them";
    let plan = json!({"steps": [
        {"step_id": 5, "tool_name": "lookup", "args": {"topic": "H200 prices"}, "depends_on": []},
    ]});
    // A client plan first: it must not fill the cache for this task text.
    let (status, view) = api
        .post("/v1/tasks?wait=true", &json!({"task": task, "plan": plan}), &[])
        .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(api.h.planner_requests(), 0);
    let (status, planned) = api
        .post("/v1/tasks?wait=true", &json!({"task": task}), &[])
        .await;
    assert_eq!(status, StatusCode::OK, "{planned}");
    assert_eq!(planned["plan_source"], "planner");
    assert_eq!(api.h.planner_requests(), 1, "the planner plans: nothing was cached");
    // Now the planner's plan is cached; a client plan for the same text still runs its own.
    let (status, view) = api
        .post("/v1/tasks?wait=true", &json!({"task": task, "plan": plan}), &[])
        .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["plan_source"], "client");
    let ids: Vec<&Value> = view["steps"].as_array().unwrap().iter().map(|s| &s["step_id"]).collect();
    assert_eq!(ids, [&json!(5)], "{view}");
    assert_eq!(api.h.planner_requests(), 1);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_is_known_at_submission_is_a_4xx_at_submission() {
    let api = Served::start(Options::default()).await;
    let plan = json!({"steps": [{"step_id": 1, "tool_name": "lookup", "args": {"topic": "x"}}]});
    let cases = [
        ("no tools", json!({"task": "Look something up", "tools": []}), StatusCode::BAD_REQUEST, "no tools are available"),
        ("no tools, plan", json!({"plan": plan, "tools": []}), StatusCode::BAD_REQUEST, "no tools are available"),
        ("long task", json!({"task": "x".repeat(40_000)}), StatusCode::BAD_REQUEST, "max_task_chars"),
        ("unknown field", json!({"task": "t", "plan": plan, "priority": 1}), StatusCode::BAD_REQUEST, "priority"),
        ("no task, no plan", json!({}), StatusCode::BAD_REQUEST, "task text is empty"),
        ("max_subtasks with a plan", json!({"plan": plan, "max_subtasks": 3}), StatusCode::BAD_REQUEST, "max_client_plan_steps"),
        ("tool outside tools", json!({"plan": plan, "tools": ["summarize"]}), StatusCode::UNPROCESSABLE_ENTITY, "unknown tool"),
        ("over its budget", json!({"plan": plan, "budget_usd": "0.000000001"}), StatusCode::TOO_MANY_REQUESTS, "budget"),
    ];
    for (what, body, status, says) in cases {
        for path in ["/v1/tasks", "/v1/tasks?wait=true"] {
            let (got, answer) = api.post(path, &body, &[]).await;
            assert_eq!(got, status, "{what} {path}: {answer}");
            let message = answer["error"]["message"].as_str().unwrap();
            assert!(message.contains(says), "{what}: {message}");
        }
    }
    let (_, refused) = api
        .post("/v1/tasks", &json!({"plan": plan, "budget_usd": "0.000000001"}), &[])
        .await;
    assert_eq!(refused["error"]["details"]["task_id"], Value::Null, "{refused}");
    api.assert_nothing_recorded_or_billed("refused submissions").await;
    assert_eq!(api.h.planner_requests(), 0);
    // A plan without task text gets the plan's own task, else a description of the plan.
    let (status, accepted) = api.post("/v1/tasks?wait=true", &json!({"plan": plan}), &[]).await;
    assert_eq!(status, StatusCode::OK, "{accepted}");
    assert_eq!(accepted["task"], "Run the client-supplied plan of 1 step (lookup)");
    let mut own = plan.clone();
    own["task"] = json!("Find x");
    let (_, accepted) = api.post("/v1/tasks?wait=true", &json!({"plan": own}), &[]).await;
    assert_eq!(accepted["task"], "Find x", "{accepted}");
    api.stop().await;
}

/// What the recording tool server saw: per request, its path and query and its step and request
/// id headers.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<(String, BTreeMap<String, String>, Option<String>, Option<String>)>>>);

impl Seen {
    fn all(&self) -> Vec<(String, BTreeMap<String, String>, Option<String>, Option<String>)> {
        self.0.lock().unwrap().clone()
    }
}

/// A tool server on 127.0.0.1: `/ok` answers JSON, `/bad` answers 400; every request is recorded.
async fn tool_server(seen: Seen) -> String {
    async fn record(
        State(seen): State<Seen>,
        uri: axum::http::Uri,
        headers: HeaderMap,
        Query(query): Query<BTreeMap<String, String>>,
    ) -> (StatusCode, axum::Json<Value>) {
        let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_owned());
        let path = uri.path().to_owned();
        seen.0.lock().unwrap().push((
            path.clone(),
            query.clone(),
            header("x-step-id"),
            header("x-request-id"),
        ));
        match path.as_str() {
            "/ok" => (StatusCode::OK, axum::Json(json!({"echo": query.get("q")}))),
            _ => (StatusCode::BAD_REQUEST, axum::Json(json!({"error": "bad query"}))),
        }
    }
    let app = axum::Router::new()
        .route("/ok", axum::routing::get(record))
        .route("/bad", axum::routing::get(record))
        .with_state(seen);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

fn http_tool(name: &str, base: &str, path: &str) -> ToolSpec {
    serde_json::from_value(json!({
        "name": name,
        "description": format!("{name} over http"),
        "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"], "additionalProperties": false},
        "tier": "executor",
        "kind": {"type": "http", "base_url": base, "path": path},
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execute_takes_the_reference_sub_task_and_forwards_step_and_request_ids() {
    let seen = Seen::default();
    let base = tool_server(seen.clone()).await;
    let mut tools = vec![
        http_tool("fetch", &base, "/ok?q={q}"),
        http_tool("fetch_bad", &base, "/bad?q={q}"),
    ];
    tools.push(planex_testkit::fixtures::llm_tool("summarize", "text", "executor"));
    let api = Served::start(Options {
        tools: Some(tools),
        ..Options::default()
    })
    .await;
    let sub_task = json!({
        "step_id": 7, "tool_name": "fetch", "depends_on": [3, 4], "task_id": "client-task-1",
        "args": {"q": "{step_3_result.summary} and {step_4_result}"},
        "results": {"3": {"summary": "alpha"}, "4": "beta"},
    });
    let (status, ran) = api
        .post("/v1/execute", &sub_task, &[("x-request-id", "req-sub-1")])
        .await;
    assert_eq!(status, StatusCode::OK, "{ran}");
    assert_eq!(ran["step_id"], 7);
    assert_eq!(ran["task_id"], "client-task-1");
    assert_eq!(ran["args"]["q"], "alpha and beta");
    assert_eq!(ran["result"]["echo"], "alpha and beta");
    let first = seen.all();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].1["q"], "alpha and beta", "the placeholders were filled in");
    assert_eq!(first[0].2.as_deref(), Some("7"), "X-Step-ID");
    assert_eq!(first[0].3.as_deref(), Some("req-sub-1"), "X-Request-ID");

    // Refused before any call: placeholders to steps outside depends_on, or without a result.
    let refusals = [
        (json!({"tool_name": "fetch", "args": {"q": "{step_1_result}"}}), "placeholder_not_in_depends_on"),
        (json!({"step_id": 2, "tool_name": "fetch", "args": {"q": "{step_1_result}"}, "depends_on": [1]}), "missing_result"),
        (json!({"step_id": 2, "tool_name": "fetch", "args": {"q": "{step_1_result.price}"}, "depends_on": [1],
                "results": {"1": {"cost": 3}}}), "missing_field"),
        (json!({"step_id": 2, "tool_name": "fetch", "args": {"q": "x"}, "results": {"one": "a"}}), "results_key"),
        (json!({"step_id": 4_294_967_295u64, "tool_name": "fetch", "args": {"q": "x"}}), "step_id_out_of_range"),
        (json!({"step_id": 2, "tool_name": "fetch", "args": {"q": "x"}, "depends_on": [2]}), "cycle"),
        (json!({"tool_name": "fetch", "args": {"q": 5}}), "invalid_args"),
        (json!({"tool_name": "teleport", "args": {}}), "unknown_tool"),
    ];
    for (body, rule) in refusals {
        let (status, refused) = api.post("/v1/execute", &body, &[]).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{rule}: {refused}");
        assert_eq!(refused["error"]["details"]["rule"], rule, "{refused}");
    }
    assert_eq!(seen.all().len(), 1, "no refused step reached the tool");

    // A 4xx from the tool is not retried: one request, a 502 saying so.
    let (status, failed) = api
        .post(
            "/v1/execute",
            &json!({"step_id": 9, "tool_name": "fetch_bad", "args": {"q": "x"}, "depends_on": []}),
            &[("x-request-id", "req-sub-2")],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{failed}");
    assert_eq!(failed["error"]["details"]["attempts"], 1, "{failed}");
    assert!(
        failed["error"]["message"].as_str().unwrap().contains("failed without retry"),
        "{failed}"
    );
    let bad: Vec<_> = seen.all().into_iter().filter(|r| r.0 == "/bad").collect();
    assert_eq!(bad.len(), 1, "a 4xx is not retried");
    assert_eq!((bad[0].2.as_deref(), bad[0].3.as_deref()), (Some("9"), Some("req-sub-2")));

    // The old body still works (step id 1, no dependencies).
    let (status, old) = api
        .post("/v1/execute", &json!({"tool_name": "summarize", "args": {"text": "GPUs are fast."}}), &[])
        .await;
    assert_eq!(status, StatusCode::OK, "{old}");
    assert_eq!(old["step_id"], 1);
    assert!(old["result"].as_str().unwrap().contains("[simulated]"));
    api.stop().await;
}

/// Plan steps' `http` calls carry `X-Step-ID` too (and the worker's request id, `TASK-STEP`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_steps_send_their_step_id_to_http_tools() {
    let seen = Seen::default();
    let base = tool_server(seen.clone()).await;
    let api = Served::start(Options {
        tools: Some(vec![http_tool("fetch", &base, "/ok?q={q}")]),
        ..Options::default()
    })
    .await;
    let plan = json!({"steps": [
        {"step_id": 11, "tool_name": "fetch", "args": {"q": "first"}, "depends_on": []},
        {"step_id": 12, "tool_name": "fetch", "args": {"q": "{step_11_result.echo}, second"}, "depends_on": [11]},
    ]});
    let (status, view) = api
        .post("/v1/tasks?wait=true", &json!({"task": "Fetch twice", "plan": plan}), &[("x-request-id", "req-plan-1")])
        .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["status"], "complete", "{view}");
    let seen = seen.all();
    let steps: Vec<(Option<&str>, &str)> = seen
        .iter()
        .map(|r| (r.2.as_deref(), r.1["q"].as_str()))
        .collect();
    assert_eq!(steps, [(Some("11"), "first"), (Some("12"), "first, second")]);
    let task_id = view["task_id"].as_str().unwrap();
    let request_ids: Vec<Option<String>> = seen.iter().map(|r| r.3.clone()).collect();
    assert_eq!(
        request_ids,
        [Some(format!("{task_id}-11")), Some(format!("{task_id}-12"))]
    );
    api.stop().await;
}
