//! Rate limits per API key through the router: one key limited (requests per second, concurrent
//! tasks) while another is not; refusals are 429 with `Retry-After` and `x-ratelimit-*` headers,
//! and on the agent endpoint in OpenAI's shape. Model calls go over real HTTP to simulators.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::http::{Method, StatusCode};
use common::{Harness, Options, two_tenants};
use planex_server::rate_limit::KeyLimits;
use serde_json::json;

const ACME: [(&str, &str); 1] = [("authorization", "Bearer key-acme")];
const GLOBEX: [(&str, &str); 1] = [("authorization", "Bearer key-globex")];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_over_its_request_rate_gets_429_with_headers_and_another_key_does_not() {
    let h = Harness::start(Options {
        keys: two_tenants(),
        limits: vec![(
            "key-acme",
            KeyLimits {
                requests_per_second: Some(2),
                concurrent_tasks: None,
            },
        )],
        ..Options::default()
    })
    .await;
    // An empty task is refused (400) after the rate check, so nothing runs.
    let empty = || Some(json!({"task": ""}));
    let mut acme = Vec::new();
    let mut globex = Vec::new();
    for _ in 0..10 {
        acme.push(h.call(Method::POST, "/v1/tasks", empty(), &ACME).await);
        globex.push(h.call(Method::POST, "/v1/tasks", empty(), &GLOBEX).await);
    }
    // Ten requests back to back against a bucket of 2 a second: the bucket runs dry.
    let limited: Vec<_> = acme
        .iter()
        .filter(|(status, _, _)| *status == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    assert!(!limited.is_empty(), "acme was never limited");
    let (_, headers, body) = limited[0];
    assert_eq!(body["error"]["type"], "rate_limited", "{body}");
    assert!(headers.get("retry-after").is_some(), "{headers:?}");
    assert_eq!(headers["x-ratelimit-limit-requests"], "2");
    assert_eq!(headers["x-ratelimit-remaining-requests"], "0");
    assert!(headers.get("x-ratelimit-reset-requests").is_some());
    assert!(
        globex
            .iter()
            .all(|(status, _, _)| *status == StatusCode::BAD_REQUEST),
        "the unlimited key is never limited: {:?}",
        globex.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    // Reads do not count.
    let (status, _, _) = h.call(Method::GET, "/v1/spend", None, &ACME).await;
    assert_eq!(status, StatusCode::OK);
    // The agent endpoint answers the same limit in OpenAI's shape.
    let chat = || {
        Some(json!({"model": "planex", "messages": [{"role": "user", "content": "hi"}], "n": 2}))
    };
    let mut refused = None;
    for _ in 0..10 {
        let (status, _, body) = h
            .call(Method::POST, "/v1/chat/completions", chat(), &ACME)
            .await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            refused = Some(body);
            break;
        }
    }
    let body = refused.expect("the agent endpoint is rate limited too");
    assert_eq!(body["error"]["type"], "rate_limit_error", "{body}");
    assert_eq!(body["error"]["code"], "rate_limit_exceeded", "{body}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_at_its_concurrent_task_limit_gets_429_and_another_key_does_not() {
    let plan = planex_testkit::fixtures::plan_json(json!([
        {"step_id": 1, "tool_name": "lookup", "args": {"topic": "wait #sim:hang"}, "depends_on": []}
    ]));
    let h = Harness::start(Options {
        keys: two_tenants(),
        workload: vec![("Long task".into(), vec![plan])],
        limits: vec![(
            "key-acme",
            KeyLimits {
                requests_per_second: None,
                concurrent_tasks: Some(1),
            },
        )],
        ..Options::default()
    })
    .await;
    let long = || Some(json!({"task": "Long task"}));
    let (status, _, first) = h.call(Method::POST, "/v1/tasks", long(), &ACME).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    let (status, headers, body) = h.call(Method::POST, "/v1/tasks", long(), &ACME).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("concurrent tasks"),
        "{body}"
    );
    assert_eq!(headers["x-ratelimit-limit-tasks"], "1");
    assert!(headers.get("retry-after").is_some());
    let (status, _, other) = h.call(Method::POST, "/v1/tasks", long(), &GLOBEX).await;
    assert_eq!(
        status,
        StatusCode::ACCEPTED,
        "another key is not limited: {other}"
    );
    // The refused submission created nothing: only the first task holds acme's slot.
    assert_eq!(h.state.rate_limits().running(0), 1);
    for (task, key) in [(&first, &ACME), (&other, &GLOBEX)] {
        let id = task["task_id"].as_str().unwrap();
        let (status, _, _) = h
            .call(Method::POST, &format!("/v1/tasks/{id}/cancel"), None, key)
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    h.stop().await;
}
