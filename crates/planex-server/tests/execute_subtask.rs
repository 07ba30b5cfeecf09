//! `POST /v1/execute`'s sub-task contract and the step ids `http` tools receive, over real HTTP:
//! the API served on a loopback socket, `http` tools pointed at a recording server on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use common::Options;
use common::served::Served;
use planex_core::ToolSpec;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// One request the recording tool server saw: its path, its query, and its step and request id
/// headers.
type Request = (
    String,
    BTreeMap<String, String>,
    Option<String>,
    Option<String>,
);

/// What the recording tool server saw, per request.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<Request>>>);

impl Seen {
    fn all(&self) -> Vec<Request> {
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
            _ => (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({"error": "bad query"})),
            ),
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
        "kind": {"type": "http", "base_url": base, "path": path, "allow_internal": true},
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
    tools.push(planex_testkit::fixtures::llm_tool(
        "summarize",
        "text",
        "executor",
    ));
    let api = Served::start(Options {
        tools: Some(tools),
        metrics: true,
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
    assert_eq!(
        first[0].1["q"], "alpha and beta",
        "the placeholders were filled in"
    );
    assert_eq!(first[0].2.as_deref(), Some("7"), "X-Step-ID");
    assert_eq!(first[0].3.as_deref(), Some("req-sub-1"), "X-Request-ID");

    // Refused before any call: placeholders to steps outside depends_on, or without a result.
    let refusals = [
        (
            json!({"tool_name": "fetch", "args": {"q": "{step_1_result}"}}),
            "placeholder_not_in_depends_on",
        ),
        (
            json!({"step_id": 2, "tool_name": "fetch", "args": {"q": "{step_1_result}"}, "depends_on": [1]}),
            "missing_result",
        ),
        (
            json!({"step_id": 2, "tool_name": "fetch", "args": {"q": "{step_1_result.price}"}, "depends_on": [1],
                "results": {"1": {"cost": 3}}}),
            "missing_field",
        ),
        (
            json!({"step_id": 2, "tool_name": "fetch", "args": {"q": "x"}, "results": {"one": "a"}}),
            "results_key",
        ),
        (
            json!({"step_id": 4_294_967_295u64, "tool_name": "fetch", "args": {"q": "x"}}),
            "step_id_out_of_range",
        ),
        (
            json!({"step_id": 2, "tool_name": "fetch", "args": {"q": "x"}, "depends_on": [2]}),
            "cycle",
        ),
        (
            json!({"tool_name": "fetch", "args": {"q": 5}}),
            "invalid_args",
        ),
        (json!({"tool_name": "teleport", "args": {}}), "unknown_tool"),
    ];
    for (body, rule) in refusals {
        let (status, refused) = api.post("/v1/execute", &body, &[]).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{rule}: {refused}"
        );
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
        failed["error"]["message"]
            .as_str()
            .unwrap()
            .contains("failed without retry"),
        "{failed}"
    );
    let bad: Vec<_> = seen.all().into_iter().filter(|r| r.0 == "/bad").collect();
    assert_eq!(bad.len(), 1, "a 4xx is not retried");
    assert_eq!(
        (bad[0].2.as_deref(), bad[0].3.as_deref()),
        (Some("9"), Some("req-sub-2"))
    );

    // The old body still works (step id 1, no dependencies).
    let (status, old) = api
        .post(
            "/v1/execute",
            &json!({"tool_name": "summarize", "args": {"text": "GPUs are fast."}}),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{old}");
    assert_eq!(old["step_id"], 1);
    assert!(old["result"].as_str().unwrap().contains("[simulated]"));

    // Tool calls are counted by tool and outcome (model calls are not tool calls).
    let metrics = api.get_text("/metrics").await;
    for series in [
        "tool_calls_total{tool=\"fetch\",outcome=\"ok\"}",
        "tool_calls_total{tool=\"fetch_bad\",outcome=\"error\"}",
        "tool_call_seconds_count{tool=\"fetch\"}",
    ] {
        assert!(metrics.contains(series), "{series} in {metrics}");
    }
    assert!(
        !metrics.contains("tool_calls_total{tool=\"summarize\""),
        "{metrics}"
    );
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
        .post(
            "/v1/tasks?wait=true",
            &json!({"task": "Fetch twice", "plan": plan}),
            &[("x-request-id", "req-plan-1")],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["status"], "complete", "{view}");
    let seen = seen.all();
    let steps: Vec<(Option<&str>, &str)> = seen
        .iter()
        .map(|r| (r.2.as_deref(), r.1["q"].as_str()))
        .collect();
    assert_eq!(
        steps,
        [(Some("11"), "first"), (Some("12"), "first, second")]
    );
    let task_id = view["task_id"].as_str().unwrap();
    let request_ids: Vec<Option<String>> = seen.iter().map(|r| r.3.clone()).collect();
    assert_eq!(
        request_ids,
        [Some(format!("{task_id}-11")), Some(format!("{task_id}-12"))]
    );
    api.stop().await;
}
