//! The OpenAI-compatible endpoint (plain and streaming), probes, the OpenAPI document, and `serve`
//! on a real socket with a graceful stop. Model calls go over real HTTP to simulators.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::http::{Method, StatusCode};
use common::{Harness, Options};
use serde_json::json;

const TASK: &str = "Compare H200 and L40S GPU clouds for serving a 70B model";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_endpoint_answers_plain_and_streaming_clients() {
    let h = Harness::start(Options::default()).await;
    let body = json!({"model": "planex", "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": TASK}]});
    let (s, _, answer) = h
        .call(
            Method::POST,
            "/v1/chat/completions",
            Some(body.clone()),
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{answer}");
    assert_eq!(answer["object"], "chat.completion");
    assert_eq!(answer["model"], "planex");
    let content = answer["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(content.contains("[simulated]"), "{content}");
    assert_eq!(answer["choices"][0]["finish_reason"], "stop");
    let usage = &answer["usage"];
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
    );
    assert!(usage["total_tokens"].as_u64().unwrap() > 0);
    assert_eq!(answer["planex"]["status"], "complete");
    assert!(answer["planex"]["cost"]["total"]["cost_usd"].is_string());

    let mut streaming = body.clone();
    streaming["stream"] = json!(true);
    streaming["stream_options"] = json!({"include_usage": true});
    streaming["messages"][1]["content"] =
        json!([{"type": "text", "text": "Stream this GPU comparison"}]);
    let (s, headers, events) = h
        .call(Method::POST, "/v1/chat/completions", Some(streaming), &[])
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let data: Vec<&str> = events
        .as_str()
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect();
    assert_eq!(data.last(), Some(&"[DONE]"));
    let chunks: Vec<serde_json::Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk")
    );
    let progress: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["reasoning_content"].as_str())
        .collect();
    assert!(
        progress.contains("planned") && progress.contains("completed"),
        "{progress}"
    );
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert!(content.contains("[simulated]"), "{content}");
    let first_content = chunks
        .iter()
        .position(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .is_some_and(|t| !t.is_empty())
        })
        .unwrap();
    let last_progress = chunks
        .iter()
        .rposition(|c| c["choices"][0]["delta"]["reasoning_content"].is_string())
        .unwrap();
    assert!(
        last_progress < first_content,
        "progress comes before the answer"
    );
    assert!(
        chunks
            .iter()
            .any(|c| c["choices"][0]["finish_reason"] == "stop")
    );
    let usage_chunk = chunks.last().unwrap();
    assert_eq!(usage_chunk["choices"], json!([]));
    assert!(usage_chunk["usage"]["total_tokens"].as_u64().unwrap() > 0);

    let (s, _, wrong) = h
        .call(
            Method::POST,
            "/v1/chat/completions",
            Some(json!({"model": "gpt-4", "messages": [{"role": "user", "content": "hi"}]})),
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{wrong}");
    let (s, _, _) = h
        .call(
            Method::POST,
            "/v1/chat/completions",
            Some(json!({"model": "planex", "messages": [{"role": "system", "content": "hi"}]})),
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_planner_tier() {
    let h = Harness::start(Options::default()).await;
    let (s, _, ready) = h.call(Method::GET, "/readyz", None, &[]).await;
    assert_eq!(s, StatusCode::OK, "{ready}");
    let (s, _, _) = h.call(Method::GET, "/metrics", None, &[]).await;
    assert_eq!(
        s,
        StatusCode::SERVICE_UNAVAILABLE,
        "no recorder in this harness"
    );
    let Harness {
        planner_sim,
        executor_sim,
        state,
        ..
    } = h;
    planner_sim.shutdown().await;
    let app = planex_server::app(state);
    let response = tower::ServiceExt::oneshot(
        app,
        axum::http::Request::get("/readyz")
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("planner"),
        "{body}"
    );
    executor_sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_documents_every_route() {
    let doc: serde_json::Value = serde_json::from_str(&planex_server::openapi_json()).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/v1/tasks", "post"),
        ("/v1/tasks/{id}", "get"),
        ("/v1/tasks/{id}/events", "get"),
        ("/v1/plan", "post"),
        ("/v1/execute", "post"),
        ("/v1/chat/completions", "post"),
        ("/v1/spend", "get"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
    ] {
        assert!(
            paths[path].get(method).is_some(),
            "{method} {path} is not documented"
        );
    }
    assert!(doc["components"]["schemas"]["TaskView"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_answers_on_a_socket_and_stops_gracefully() {
    let hanging = planex_testkit::fixtures::plan_json(
        json!([{"step_id": 1, "tool_name": "lookup", "args": {"topic": "wait #sim:hang"}, "depends_on": []}]),
    );
    let h = Harness::start(Options {
        workload: vec![("Long task".into(), vec![hanging])],
        ..Options::default()
    })
    .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(planex_server::serve(
        listener,
        h.state.clone(),
        async move {
            let _ = stopped.await;
        },
    ));
    let client = reqwest::Client::new();
    let health = client
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    // An open event stream of a running task must not hold the shutdown open.
    let (_, _, accepted) = h
        .call(
            Method::POST,
            "/v1/tasks",
            Some(json!({"task": "Long task"})),
            &[],
        )
        .await;
    let events = client
        .get(format!(
            "http://{addr}/v1/tasks/{}/events",
            accepted["task_id"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), 200);
    stop.send(()).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(10), server)
        .await
        .expect("graceful shutdown finished")
        .unwrap()
        .unwrap();
    drop(events);
    h.stop().await;
}
