//! Answers cut off part-way (`#sim:truncate`, `--truncate-rate`) and the call ledger
//! (`--record-calls`, `GET /sim/calls`) that lets a client's bills be checked call by call.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{client, executor_body};
use planex_sim::{CallLedger, SimConfig, SimServer};
use planex_testkit::sim::start;
use serde_json::Value;

/// POSTs `body` and reads the whole response: (status, body text), or the read error.
async fn send(server: &SimServer, body: &Value) -> (u16, Result<String, reqwest::Error>) {
    let response = client()
        .post(format!("{}/chat/completions", server.base_url()))
        .json(body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await)
}

fn streamed(mut body: Value) -> Value {
    body["stream"] = true.into();
    body["stream_options"] = serde_json::json!({"include_usage": true});
    body
}

async fn ledger(server: &SimServer) -> CallLedger {
    client()
        .get(format!(
            "{}/sim/calls",
            server.base_url().trim_end_matches("/v1")
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_cut_off_stream_breaks_the_connection_before_its_usage_and_done() {
    let server = start(SimConfig {
        record_calls: true,
        ..SimConfig::default()
    })
    .await;
    let (status, body) = send(
        &server,
        &streamed(executor_body("a long answer #sim:truncate #sim:tokens=40")),
    )
    .await;
    assert_eq!(status, 200);
    let error = body.expect_err("a cut-off stream must not read as a whole body");
    assert!(error.is_body() || error.is_decode(), "{error:?}");

    // The same request without the marker streams whole, ending in usage and [DONE].
    let (_, whole) = send(
        &server,
        &streamed(executor_body("a long answer #sim:tokens=40")),
    )
    .await;
    let whole = whole.unwrap();
    assert!(whole.trim_end().ends_with("data: [DONE]"), "{whole}");

    let stats = server.stats();
    assert_eq!(stats.cut_off_answers, 1);
    assert_eq!(stats.errors_injected, 1);
    let calls = ledger(&server).await;
    assert!(calls.recording);
    assert_eq!(
        calls.calls.iter().map(|c| c.whole).collect::<Vec<_>>(),
        [false, true]
    );
    let served = &calls.calls[1];
    assert!(
        whole.contains(&served.id),
        "the ledger's id is the answer's id"
    );
    let usage = format!(
        "\"completion_tokens\":{},\"prompt_tokens\":{}",
        served.completion_tokens, served.prompt_tokens
    );
    assert!(whole.contains(&usage), "{usage} in {whole}");
    assert_eq!(
        stats.completion_tokens_total,
        u64::from(served.completion_tokens),
        "only the whole answer is served"
    );
    assert_eq!(
        stats.cut_off_tokens_total,
        u64::from(calls.calls[0].prompt_tokens + calls.calls[0].completion_tokens)
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_cut_off_whole_answer_is_half_a_json_body_then_a_broken_connection() {
    let server = start(SimConfig::default()).await;
    let (status, body) = send(&server, &executor_body("answer #sim:truncate")).await;
    assert_eq!(status, 200);
    assert!(body.is_err(), "the body must break off: {body:?}");
    let stats = server.stats();
    assert_eq!(
        (stats.cut_off_answers, stats.completion_tokens_total),
        (1, 0)
    );
    // Not recording: the ledger is empty.
    let calls = ledger(&server).await;
    assert!(!calls.recording && calls.calls.is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn the_truncate_rate_cuts_off_a_seeded_share_of_answers_and_reset_clears_the_ledger() {
    let server = start(SimConfig {
        truncate_rate: 0.5,
        record_calls: true,
        seed: 3,
        ..SimConfig::default()
    })
    .await;
    let mut broken = 0;
    for i in 0..40 {
        let (status, body) = send(&server, &executor_body(&format!("question {i}"))).await;
        assert_eq!(status, 200);
        broken += usize::from(body.is_err());
    }
    assert!((5..=35).contains(&broken), "{broken} of 40 cut off");
    let calls = ledger(&server).await;
    assert_eq!(calls.calls.iter().filter(|c| !c.whole).count(), broken);
    assert_eq!(server.stats().cut_off_answers, broken as u64);
    server.state().reset();
    assert!(ledger(&server).await.calls.is_empty());
    assert_eq!(server.stats().cut_off_answers, 0);
    server.shutdown().await;
}
