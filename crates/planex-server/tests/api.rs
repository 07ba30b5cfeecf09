//! The API end to end through the router: tasks, events, plan, execute, errors, auth and tenancy,
//! and the plan cache. Model calls go over real HTTP to simulators.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::http::{Method, StatusCode};
use common::{Harness, Key, Options};
use serde_json::json;

const TASK: &str = "Compare H200 and L40S GPU clouds for serving a 70B model";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_wait_read_and_stream_events() {
    let h = Harness::start(Options::default()).await;
    let (status, headers, view) = h
        .call(
            Method::POST,
            "/v1/tasks?wait=true",
            Some(json!({"task": TASK, "max_subtasks": 4})),
            &[("x-request-id", "req-abc-123")],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(headers["x-request-id"], "req-abc-123");
    assert_eq!(view["status"], "complete");
    assert!(view["answer"].as_str().unwrap().contains("[simulated]"));
    let steps = view["steps"].as_array().unwrap();
    assert!(!steps.is_empty() && steps.len() <= 4);
    assert!(
        steps
            .iter()
            .all(|s| s["state"] == "complete" && s["attempts"] == 1)
    );
    let cost = &view["cost"];
    assert_eq!(cost["by_stage"]["plan"]["calls"], 1);
    assert_eq!(
        cost["by_stage"]["step"]["calls"].as_u64().unwrap(),
        steps.len() as u64
    );
    assert!(cost["by_tier"]["executor"]["cost_usd"].is_string());
    assert!(!cost["by_tool"].as_object().unwrap().is_empty());
    assert_eq!(cost["cost_center"], "default");
    // The caller's request id reached the planner's model server (it echoes the header back).
    assert_eq!(
        h.planner.echoed_request_ids()[0].as_deref(),
        Some("req-abc-123")
    );

    let id = view["task_id"].as_str().unwrap();
    let (status, _, again) = h
        .call(Method::GET, &format!("/v1/tasks/{id}"), None, &[])
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["status"], "complete");
    let (status, headers, events) = h
        .call(Method::GET, &format!("/v1/tasks/{id}/events"), None, &[])
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let text = events.as_str().unwrap();
    for name in [
        "planned",
        "step_started",
        "step_completed",
        "task_completed",
    ] {
        assert!(
            text.contains(&format!("event: {name}\n")),
            "{name} missing in {text}"
        );
    }
    assert!(text.trim_end().ends_with('}'));

    let (status, headers, accepted) = h
        .call(
            Method::POST,
            "/v1/tasks",
            Some(json!({"task": "Another task about GPUs", "synthesis": true})),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let location = headers["location"].to_str().unwrap();
    assert_eq!(
        location,
        format!("/v1/tasks/{}", accepted["task_id"].as_str().unwrap())
    );
    assert_eq!(accepted["events"], format!("{location}/events"));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_json_with_the_right_status() {
    let h = Harness::start(Options {
        body_limit: 2048,
        ..Options::default()
    })
    .await;
    let check = |status: StatusCode, body: &serde_json::Value, want: StatusCode, kind: &str| {
        assert_eq!(status, want, "{body}");
        assert_eq!(body["error"]["type"], kind, "{body}");
        assert!(!body["error"]["message"].as_str().unwrap().is_empty());
    };
    let (s, _, b) = h
        .call(Method::POST, "/v1/tasks", Some(json!({"tsk": "x"})), &[])
        .await;
    check(s, &b, StatusCode::BAD_REQUEST, "invalid_request");
    let (s, _, b) = h
        .call(Method::POST, "/v1/tasks", Some(json!({"task": "  "})), &[])
        .await;
    check(s, &b, StatusCode::BAD_REQUEST, "invalid_request");
    let (s, _, b) = h
        .call(
            Method::POST,
            "/v1/tasks",
            Some(json!({"task": "x", "max_subtasks": 1000})),
            &[],
        )
        .await;
    check(s, &b, StatusCode::BAD_REQUEST, "invalid_request");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_subtasks")
    );
    let (s, _, b) = h
        .call(
            Method::POST,
            "/v1/tasks",
            Some(json!({"task": "x", "tools": ["nope"]})),
            &[],
        )
        .await;
    check(s, &b, StatusCode::BAD_REQUEST, "invalid_request");
    let (s, _, b) = h
        .call(
            Method::POST,
            "/v1/tasks",
            Some(json!({"task": "x".repeat(4096)})),
            &[],
        )
        .await;
    check(s, &b, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    let (s, _, b) = h
        .call(Method::GET, "/v1/tasks/no-such-task", None, &[])
        .await;
    check(s, &b, StatusCode::NOT_FOUND, "not_found");
    let (s, _, b) = h.call(Method::GET, "/v1/nothing", None, &[]).await;
    check(s, &b, StatusCode::NOT_FOUND, "not_found");
    let (s, _, b) = h.call(Method::DELETE, "/v1/tasks", None, &[]).await;
    check(s, &b, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    let (s, _, b) = h
        .call(Method::GET, "/v1/spend?month=2026-13", None, &[])
        .await;
    check(s, &b, StatusCode::BAD_REQUEST, "invalid_request");
    let (s, _, b) = h
        .call(
            Method::POST,
            "/v1/tasks",
            Some(json!({"task": "x"})),
            &[("x-cost-center", "bad center!")],
        )
        .await;
    check(s, &b, StatusCode::BAD_REQUEST, "invalid_request");
    let (s, _, b) = h
        .call(
            Method::POST,
            "/v1/tasks?wait=maybe",
            Some(json!({"task": "x"})),
            &[],
        )
        .await;
    check(s, &b, StatusCode::BAD_REQUEST, "invalid_request");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_and_tenant_isolation() {
    let h = Harness::start(Options {
        keys: vec![
            Key {
                token: "key-of-acme",
                tenant: "acme",
                monthly_budget: None,
                cost_centers: &["marketing"],
            },
            Key {
                token: "key-of-globex",
                tenant: "globex",
                monthly_budget: None,
                cost_centers: &[],
            },
        ],
        ..Options::default()
    })
    .await;
    let acme = ("authorization", "Bearer key-of-acme");
    let globex = ("authorization", "Bearer key-of-globex");
    let (s, headers, b) = h
        .call(Method::POST, "/v1/tasks", Some(json!({"task": TASK})), &[])
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{b}");
    assert_eq!(b["error"]["type"], "unauthorized");
    assert_eq!(headers["www-authenticate"], "Bearer");
    let (s, _, _) = h
        .call(
            Method::POST,
            "/v1/tasks",
            Some(json!({"task": TASK})),
            &[("authorization", "Bearer wrong")],
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _, view) = h
        .call(
            Method::POST,
            "/v1/tasks?wait=true",
            Some(json!({"task": TASK, "max_subtasks": 3})),
            &[acme],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{view}");
    assert_eq!(view["tenant"], "acme");
    assert_eq!(
        view["cost"]["cost_center"], "research",
        "the key's default cost center"
    );
    let path = format!("/v1/tasks/{}", view["task_id"].as_str().unwrap());
    assert_eq!(
        h.call(Method::GET, &path, None, &[acme]).await.0,
        StatusCode::OK
    );
    let (s, _, b) = h.call(Method::GET, &path, None, &[globex]).await;
    assert_eq!(
        s,
        StatusCode::NOT_FOUND,
        "another tenant's task is not found: {b}"
    );
    assert_eq!(
        h.call(Method::GET, &format!("{path}/events"), None, &[globex])
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        h.call(Method::GET, &path, None, &[]).await.0,
        StatusCode::UNAUTHORIZED
    );
    // A cost center header the key allows overrides its default, and spend is reported per cost
    // center.
    let (s, _, view) = h
        .call(
            Method::POST,
            "/v1/tasks?wait=true",
            Some(json!({"task": "Summarize the GPU market", "max_subtasks": 3})),
            &[acme, ("x-cost-center", "marketing")],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{view}");
    assert_eq!(view["cost"]["cost_center"], "marketing");
    let (s, _, spend) = h.call(Method::GET, "/v1/spend", None, &[acme]).await;
    assert_eq!(s, StatusCode::OK, "{spend}");
    assert_eq!(spend["tenant"], "acme");
    let centers = spend["cost_centers"].as_object().unwrap();
    assert!(
        centers.contains_key("research") && centers.contains_key("marketing"),
        "{spend}"
    );
    let total: f64 = spend["total"]["spent_usd"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(total > 0.0);
    assert_eq!(spend["total"]["reserved_usd"], "0");
    let (_, _, other) = h.call(Method::GET, "/v1/spend", None, &[globex]).await;
    assert_eq!(
        other["total"]["spent_usd"], "0",
        "globex spent nothing: {other}"
    );
    // Probes and the API description need no key.
    assert_eq!(
        h.call(Method::GET, "/healthz", None, &[]).await.0,
        StatusCode::OK
    );
    assert_eq!(
        h.call(Method::GET, "/openapi.json", None, &[]).await.0,
        StatusCode::OK
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_cache_hits_skip_the_planner() {
    let h = Harness::start(Options::default()).await;
    let body = json!({"task": TASK, "max_subtasks": 5});
    let (s, _, first) = h
        .call(Method::POST, "/v1/plan", Some(body.clone()), &[])
        .await;
    assert_eq!(s, StatusCode::OK, "{first}");
    assert_eq!(first["cached"], false);
    assert_eq!(first["cost"]["total"]["calls"], 1);
    assert_eq!(h.planner_requests(), 1);
    let (_, _, second) = h
        .call(Method::POST, "/v1/plan", Some(body.clone()), &[])
        .await;
    assert_eq!(second["cached"], true);
    assert_eq!(second["plan"], first["plan"]);
    assert_eq!(h.planner_requests(), 1, "a cache hit makes no planner call");
    // A task with the same text and limit reuses the plan too.
    let (s, _, view) = h
        .call(Method::POST, "/v1/tasks?wait=true", Some(body.clone()), &[])
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(view["status"], "complete");
    assert_eq!(
        view["cost"]["by_stage"].get("plan"),
        None,
        "no planner call was made"
    );
    assert_eq!(h.planner_requests(), 1);
    // A different limit is a different key; `cache: false` bypasses the lookup.
    h.call(
        Method::POST,
        "/v1/plan",
        Some(json!({"task": TASK, "max_subtasks": 4})),
        &[],
    )
    .await;
    assert_eq!(h.planner_requests(), 2);
    let (_, _, bypass) = h
        .call(
            Method::POST,
            "/v1/plan",
            Some(json!({"task": TASK, "max_subtasks": 5, "cache": false})),
            &[],
        )
        .await;
    assert_eq!(bypass["cached"], false);
    assert_eq!(h.planner_requests(), 3);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execute_validates_before_any_model_call() {
    let h = Harness::start(Options::default()).await;
    let (s, headers, ok) = h
        .call(
            Method::POST,
            "/v1/execute",
            Some(json!({"tool_name": "summarize", "args": {"text": "GPUs are fast."}})),
            &[("x-request-id", "exec-1")],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{ok}");
    assert_eq!(headers["x-request-id"], "exec-1");
    assert!(ok["result"].as_str().unwrap().contains("[simulated]"));
    assert_eq!(ok["attempts"], 1);
    assert_eq!(ok["cost"]["by_tool"]["summarize"]["calls"], 1);
    let calls = h.executor_sim.stats().requests_total;
    assert_eq!(calls, 1);
    let (s, _, bad) = h
        .call(
            Method::POST,
            "/v1/execute",
            Some(json!({"tool_name": "summarize", "args": {"text": 5}})),
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    assert_eq!(bad["error"]["type"], "validation_failed");
    assert_eq!(bad["error"]["details"]["rule"], "invalid_args");
    assert!(
        bad["error"]["details"]["errors"][0]
            .as_str()
            .unwrap()
            .contains("/text")
    );
    let (s, _, unknown) = h
        .call(
            Method::POST,
            "/v1/execute",
            Some(json!({"tool_name": "teleport", "args": {}})),
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(unknown["error"]["details"]["rule"], "unknown_tool");
    assert_eq!(
        h.executor_sim.stats().requests_total,
        calls,
        "invalid steps never reach a model"
    );
    // A step that keeps failing is a 502 after the tier's retries.
    let (s, _, failed) = h
        .call(
            Method::POST,
            "/v1/execute",
            Some(json!({"tool_name": "summarize", "args": {"text": "x #sim:fail=500"}})),
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::BAD_GATEWAY, "{failed}");
    assert_eq!(failed["error"]["details"]["attempts"], 3);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_planner_call_is_a_retryable_503_to_a_waiting_client() {
    let h = Harness::start(Options::default()).await;
    // The simulator answers 500 to a prompt carrying this marker (the harness's tiers retry twice).
    let task = json!({"task": "Plan this #sim:fail=500"});
    let (s, headers, body) = h
        .call(Method::POST, "/v1/tasks?wait=true", Some(task.clone()), &[])
        .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(headers["retry-after"], "5");
    assert_eq!(body["error"]["type"], "unavailable");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("planner tier failed") && !message.contains("http://"),
        "{message}"
    );
    assert!(h.planner_requests() >= 1);
    let id = body["error"]["details"]["task_id"].as_str().unwrap();
    let (_, _, view) = h
        .call(Method::GET, &format!("/v1/tasks/{id}"), None, &[])
        .await;
    assert_eq!(view["status"], "failed");
    // Without waiting the task is accepted (202) and ends `failed` with the cause.
    let (s, _, accepted) = h.call(Method::POST, "/v1/tasks", Some(task), &[]).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{accepted}");
    h.stop().await;
}
