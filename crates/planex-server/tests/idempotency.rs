//! `Idempotency-Key` on `POST /v1/tasks` and `/v1/chat/completions` through the router: a retry
//! finds the first task and plans (bills) nothing new; keys are per tenant; a key reused for
//! another body is 422. Model calls go over real HTTP to simulators.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::http::{Method, StatusCode};
use common::{Harness, Options, two_tenants};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_key_twice_is_one_task_and_tenants_are_separate() {
    let h = Harness::start(Options {
        keys: two_tenants(),
        ..Options::default()
    })
    .await;
    let body = json!({"task": "Compare two GPU clouds", "max_subtasks": 2});
    let post = |token: &'static str, query: &'static str, body: serde_json::Value| {
        let h = &h;
        async move {
            let auth = format!("Bearer {token}");
            h.call(
                Method::POST,
                &format!("/v1/tasks{query}"),
                Some(body),
                &[("authorization", &auth), ("idempotency-key", "order-42")],
            )
            .await
        }
    };
    let (status, _, first) = post("key-acme", "?wait=true", body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let id = first["task_id"].as_str().unwrap().to_owned();
    let planned = h.planner_requests();
    let (status, headers, again) = post("key-acme", "", body.clone()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{again}");
    assert_eq!(
        again["task_id"],
        id.as_str(),
        "the retry names the first task"
    );
    assert_eq!(headers["location"], format!("/v1/tasks/{id}").as_str());
    assert_eq!(again["status"], "complete");
    assert_eq!(h.planner_requests(), planned, "the retry planned nothing");
    // Another tenant's key of the same name is its own.
    let (status, _, other) = post("key-globex", "?wait=true", body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{other}");
    assert_ne!(other["task_id"], id.as_str());
    let other_id = other["task_id"].as_str().unwrap();
    let read = |token: &'static str| {
        let h = &h;
        let path = format!("/v1/tasks/{other_id}");
        async move {
            let auth = format!("Bearer {token}");
            h.call(Method::GET, &path, None, &[("authorization", &auth)])
                .await
                .0
        }
    };
    assert_eq!(
        read("key-globex").await,
        StatusCode::OK,
        "globex's own task"
    );
    assert_eq!(read("key-acme").await, StatusCode::NOT_FOUND);
    // The same key with another body is refused, naming the first task.
    let (status, _, reused) = post(
        "key-acme",
        "",
        json!({"task": "Something else entirely", "max_subtasks": 2}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{reused}");
    assert_eq!(reused["error"]["type"], "idempotency_key_reused");
    assert!(
        reused["error"]["message"]
            .as_str()
            .unwrap()
            .contains(id.as_str())
    );
    // A chat completion under the same key is another request.
    let (status, _, chat) = h
        .call(
            Method::POST,
            "/v1/chat/completions",
            Some(json!({"model": "planex", "messages": [{"role": "user", "content": "Compare two GPU clouds"}]})),
            &[("authorization", "Bearer key-acme"), ("idempotency-key", "order-42")],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{chat}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_submission_frees_its_key_and_chat_retries_find_their_task() {
    let h = Harness::start(Options::default()).await;
    let key = [("idempotency-key", "k-1")];
    let (status, _, refused) = h
        .call(Method::POST, "/v1/tasks", Some(json!({"task": "  "})), &key)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    let (status, _, accepted) = h
        .call(
            Method::POST,
            "/v1/tasks",
            Some(json!({"task": "Now a real task"})),
            &key,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::ACCEPTED,
        "a corrected retry may use the key: {accepted}"
    );
    let chat = json!({"model": "planex", "messages": [{"role": "user", "content": "Summarize GPU prices"}]});
    let key = [("idempotency-key", "chat-1")];
    let (status, _, first) = h
        .call(
            Method::POST,
            "/v1/chat/completions",
            Some(chat.clone()),
            &key,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let planned = h.planner_requests();
    let (status, _, again) = h
        .call(Method::POST, "/v1/chat/completions", Some(chat), &key)
        .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["planex"]["task_id"], first["planex"]["task_id"]);
    assert_eq!(again["choices"], first["choices"]);
    assert_eq!(h.planner_requests(), planned, "the retry planned nothing");
    let (status, _, bad) = h
        .call(
            Method::POST,
            "/v1/tasks",
            Some(json!({"task": "x"})),
            &[("idempotency-key", "")],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    h.stop().await;
}
