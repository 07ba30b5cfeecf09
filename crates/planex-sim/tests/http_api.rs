//! OpenAI-compatible surface: models, usage, streaming, errors, request ids, stats.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{chat, client, executor_body};
use planex_sim::{SimConfig, SimServer};
use planex_testkit::sim::start;
use serde_json::{Value, json};

#[tokio::test]
async fn lists_the_served_model_and_health() {
    let server = start(SimConfig {
        model: "qwen-sim".into(),
        ..SimConfig::default()
    })
    .await;
    assert!(server.base_url().starts_with("http://127.0.0.1:"));
    assert!(server.base_url().ends_with("/v1"));
    let models: Value = client()
        .get(format!("{}/models", server.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["object"], "list");
    assert_eq!(models["data"][0]["id"], "qwen-sim");
    assert_eq!(models["data"][0]["owned_by"], "planex-sim");
    let health = client()
        .get(format!("http://{}/health", server.addr()))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    server.shutdown().await;
}

#[tokio::test]
async fn non_streaming_answer_and_usage() {
    let server = start(SimConfig::default()).await;
    let body = executor_body("Summarize the findings about GPU pricing.");
    let (status, answer) = chat(&server, &body).await;
    assert_eq!(status, 200);
    assert_eq!(answer["object"], "chat.completion");
    assert_eq!(answer["model"], "sim-model");
    assert_eq!(answer["system_fingerprint"], "planex-sim");
    assert_eq!(answer["choices"][0]["finish_reason"], "stop");
    assert_eq!(answer["choices"][0]["message"]["role"], "assistant");
    let content = answer["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(content.starts_with("[simulated] "));
    let usage = &answer["usage"];
    // "You are a helpful executor." = 6 tokens, the user message = 9 tokens (cl100k_base).
    assert_eq!(usage["prompt_tokens"], (6 + 4) + (9 + 4) + 3);
    let completion = usage["completion_tokens"].as_u64().unwrap();
    assert!((110..=120).contains(&completion), "{completion}");
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["prompt_tokens"].as_u64().unwrap() + completion
    );
    assert_eq!(usage["prompt_tokens_details"]["cached_tokens"], 0);
    // Deterministic; max_tokens caps; #sim:tokens sets the length.
    assert_eq!(chat(&server, &body).await.1["choices"], answer["choices"]);
    let mut capped = body.clone();
    capped["max_tokens"] = json!(10);
    let n = chat(&server, &capped).await.1["usage"]["completion_tokens"].as_u64();
    assert!(n.unwrap() <= 10);
    let n = chat(&server, &executor_body("short please #sim:tokens=30"))
        .await
        .1["usage"]["completion_tokens"]
        .as_u64();
    assert!((25..=30).contains(&n.unwrap()));
    let mut json_mode = body.clone();
    json_mode["response_format"] = json!({"type": "json_object"});
    let (_, answer) = chat(&server, &json_mode).await;
    let inner: Value =
        serde_json::from_str(answer["choices"][0]["message"]["content"].as_str().unwrap()).unwrap();
    assert_eq!(inner["simulated"], true);
    server.shutdown().await;
}

fn parse_sse(text: &str) -> (Vec<Value>, bool) {
    let mut chunks = Vec::new();
    let mut done = false;
    for event in text.split("\n\n").filter(|e| !e.trim().is_empty()) {
        let data = event.strip_prefix("data: ").expect("data line");
        if data == "[DONE]" {
            done = true;
        } else {
            assert!(!done, "chunk after [DONE]");
            chunks.push(serde_json::from_str(data).unwrap());
        }
    }
    (chunks, done)
}

#[tokio::test]
async fn streaming_delivers_content_and_matching_usage() {
    let server = start(SimConfig {
        tokens_per_second: 10_000.0,
        ..SimConfig::default()
    })
    .await;
    let plain = executor_body("Stream me an answer about caching.");
    let (_, reference) = chat(&server, &plain).await;
    let mut streamed = plain.clone();
    streamed["stream"] = json!(true);
    streamed["stream_options"] = json!({"include_usage": true});
    let response = client()
        .post(format!("{}/chat/completions", server.base_url()))
        .header("x-request-id", "req-42")
        .json(&streamed)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-request-id"], "req-42");
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let (chunks, done) = parse_sse(&response.text().await.unwrap());
    assert!(done);
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk")
    );
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"].get(0)?["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, reference["choices"][0]["message"]["content"]);
    assert!(chunks.len() > 5, "content comes in several chunks");
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"], json!([]));
    assert_eq!(last["usage"], reference["usage"]);
    let stop = &chunks[chunks.len() - 2];
    assert_eq!(stop["choices"][0]["finish_reason"], "stop");

    // Without include_usage there is no usage chunk.
    streamed["stream_options"] = json!({"include_usage": false});
    let (chunks, done) = parse_sse(&answer_text(&server, &streamed).await);
    assert!(done && chunks.iter().all(|c| c.get("usage").is_none()));
    server.shutdown().await;
}

/// The body of a chat completion's answer to `body`.
async fn answer_text(server: &SimServer, body: &Value) -> String {
    client()
        .post(format!("{}/chat/completions", server.base_url()))
        .json(body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The events of a streamed answer without their per-request fields (id, created).
async fn streamed_events(server: &SimServer, body: &Value) -> Vec<Value> {
    let text = answer_text(server, body).await;
    let (chunks, done) = parse_sse(&text);
    assert!(done, "{text}");
    chunks
        .into_iter()
        .map(|c| json!({"choices": c["choices"], "usage": c.get("usage"), "model": c["model"]}))
        .collect()
}

/// With `tokens_per_second = 0` the whole stream goes out in one write (the cheap path): the
/// client sees the same events, in the same order, as from a paced answer, and the call is
/// counted as served whole.
#[tokio::test]
async fn an_unpaced_stream_has_the_events_of_a_paced_one() {
    let unpaced = start(SimConfig::default()).await;
    let paced = start(SimConfig {
        tokens_per_second: 100_000.0,
        ..SimConfig::default()
    })
    .await;
    let mut told = 0;
    for prompt in [
        "Stream me an answer about caching.",
        "And one about queues.",
    ] {
        let mut body = executor_body(prompt);
        body["stream"] = json!(true);
        body["stream_options"] = json!({"include_usage": true});
        let fast = streamed_events(&unpaced, &body).await;
        assert!(fast.len() > 5, "{fast:?}");
        assert_eq!(fast, streamed_events(&paced, &body).await, "{prompt}");
        // Asked again: the memoised answer is the same answer.
        assert_eq!(fast, streamed_events(&unpaced, &body).await, "{prompt}");
        told += 2 * fast.last().unwrap()["usage"]["completion_tokens"]
            .as_u64()
            .unwrap();
    }
    let stats = unpaced.stats();
    assert_eq!(stats.cut_off_answers, 0, "{stats:?}");
    assert_eq!(stats.completion_tokens_total, told, "{stats:?}");
    unpaced.shutdown().await;
    paced.shutdown().await;
}

#[tokio::test]
async fn wrong_model_bad_body_and_request_id() {
    let server = start(SimConfig::default()).await;
    let mut body = executor_body("hi");
    body["model"] = json!("gpt-nope");
    let (status, error) = chat(&server, &body).await;
    assert_eq!(status, 404);
    assert_eq!(error["error"]["type"], "invalid_request_error");
    assert_eq!(error["error"]["code"], "model_not_found");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("gpt-nope")
    );

    for bad in ["{not json", "{\"model\":\"sim-model\"}", "[1,2]"] {
        let response = client()
            .post(format!("{}/chat/completions", server.base_url()))
            .header("content-type", "application/json")
            .header("X-Request-ID", "abc-123")
            .body(bad)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{bad}");
        assert_eq!(response.headers()["x-request-id"], "abc-123");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["type"], "invalid_request_error");
        assert!(error["error"]["message"].is_string());
    }
    let stats = server.stats();
    assert_eq!(stats.requests_total, 4);
    assert_eq!(stats.planner_requests + stats.executor_requests, 0);
    server.shutdown().await;
}

#[tokio::test]
async fn stats_endpoint_and_reset() {
    let server = start(SimConfig::default()).await;
    let (_, one) = chat(&server, &executor_body("one")).await;
    let (_, two) = chat(&server, &common::planner_body("plan something", 6)).await;
    let sum =
        |field: &str| one["usage"][field].as_u64().unwrap() + two["usage"][field].as_u64().unwrap();
    let url = format!("http://{}/sim/stats", server.addr());
    let stats: Value = client()
        .get(&url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        stats,
        json!({"requests_total": 2, "planner_requests": 1, "executor_requests": 1,
               "errors_injected": 0, "in_flight": 0, "max_in_flight": 1,
               "prompt_tokens_total": sum("prompt_tokens"),
               "completion_tokens_total": sum("completion_tokens"),
               "cut_off_answers": 0, "cut_off_tokens_total": 0})
    );
    assert_eq!(server.stats().requests_total, 2);
    let reset = client()
        .post(format!("http://{}/sim/reset", server.addr()))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), 200);
    let stats: Value = client()
        .get(&url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["requests_total"], 0);
    assert_eq!(stats["planner_requests"], 0);
    assert_eq!(stats["prompt_tokens_total"], 0);
    server.shutdown().await;
}

/// The simulator disconnects a client that never finishes its request head (it listens like the
/// API, through planex-http), and goes on serving others.
#[tokio::test]
async fn a_client_that_never_finishes_its_request_head_is_disconnected() {
    let server = planex_testkit::sim::start(SimConfig {
        header_read_timeout: std::time::Duration::from_millis(300),
        ..SimConfig::default()
    })
    .await;
    planex_testkit::slow_client::assert_unfinished_head_is_disconnected(
        &server.addr().to_string(),
        std::time::Duration::from_secs(30),
    )
    .await;
    let (status, _) = common::chat(&server, &common::executor_body("still served")).await;
    assert_eq!(status, 200);
    server.shutdown().await;
}
