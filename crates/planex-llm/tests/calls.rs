//! Successful calls against the simulator: streaming and non-streaming usage, TTFT, content
//! deltas as they arrive (retries numbered), endpoint spreading, request ids, model listing and an
//! unknown model.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{MODEL, ask, start_sim, tier};
use planex_core::Price;
use planex_llm::{
    CallContext, ChatModel, DeltaSink, Endpoint, LlmError, Tier, TierConfig, list_models,
};

#[tokio::test]
async fn streaming_and_non_streaming_report_the_same_usage() {
    let sim = start_sim().await;
    let request = ask("Summarize the history of the printing press in two sentences.");
    let streamed = tier(&[sim.base_url()], true, 0)
        .chat(&request, &CallContext::default())
        .await
        .unwrap();
    let plain = tier(&[sim.base_url()], false, 0)
        .chat(&request, &CallContext::default())
        .await
        .unwrap();
    assert!(streamed.usage.prompt_tokens > 0);
    assert!(streamed.usage.completion_tokens > 0);
    assert_eq!(streamed.usage, plain.usage);
    assert_eq!(streamed.content, plain.content);
    assert!(streamed.ttft.is_some());
    assert!(plain.ttft.is_none());
    assert_eq!(streamed.model, MODEL);
    assert_eq!(streamed.attempts, 1);
    sim.shutdown().await;
}

/// A followed call streams even on a tier that does not (`stream: false`): its content arrives as
/// several deltas that add up to the answer, each numbered with its attempt; after a failed first
/// attempt every delta is the second's.
#[tokio::test]
async fn a_followed_call_passes_its_content_on_as_it_arrives() {
    let sim = start_sim().await;
    let tier = tier(&[sim.base_url()], false, 1);
    for (prompt, attempt) in [
        ("Describe the printing press at length. #sim:tokens=40", 1),
        (
            "Describe the steam engine. #sim:tokens=40 #sim:fail=500x1",
            2,
        ),
    ] {
        let (sink, mut deltas) = DeltaSink::channel();
        let ctx = CallContext {
            deltas: Some(sink),
            ..CallContext::default()
        };
        let outcome = tier.chat(&ask(prompt), &ctx).await.unwrap();
        drop(ctx);
        let mut received = Vec::new();
        while let Some(delta) = deltas.recv().await {
            received.push(delta);
        }
        assert!(received.len() > 1, "{received:?}");
        assert!(
            received.iter().all(|d| d.attempt == attempt),
            "{received:?}"
        );
        let text: String = received.iter().map(|d| d.text.as_str()).collect();
        assert_eq!(text, outcome.content);
        assert!(outcome.ttft.is_some(), "the call was streamed");
        assert_eq!(outcome.attempts, attempt);
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn calls_are_spread_over_endpoints() {
    let (a, b) = (start_sim().await, start_sim().await);
    let tier = tier(&[a.base_url(), b.base_url()], true, 0);
    for i in 0..4 {
        tier.chat(&ask(&format!("call {i}")), &CallContext::default())
            .await
            .unwrap();
    }
    assert_eq!(a.stats().requests_total, 2);
    assert_eq!(b.stats().requests_total, 2);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn the_request_id_reaches_the_server() {
    let sim = start_sim().await;
    let tier = tier(&[sim.base_url()], true, 0);
    let ctx = CallContext::with_request_id("task-42-step-3");
    let outcome = tier.chat(&ask("hello"), &ctx).await.unwrap();
    assert_eq!(
        outcome.response_request_id.as_deref(),
        Some("task-42-step-3")
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn list_models_returns_the_served_model() {
    let sim = start_sim().await;
    let client = planex_llm::default_client().unwrap();
    let models = list_models(&client, &Endpoint::new(sim.base_url()))
        .await
        .unwrap();
    assert_eq!(models, vec![MODEL.to_string()]);
    sim.shutdown().await;
}

#[tokio::test]
async fn an_unknown_model_is_a_404_and_not_retried() {
    let sim = start_sim().await;
    let mut config = TierConfig::new(
        "small",
        "no-such-model",
        vec![Endpoint::new(sim.base_url())],
        Price::free(),
    );
    config.retry = planex_testkit::llm::fast_retry(3);
    let tier = Tier::new(config, planex_llm::default_client().unwrap()).unwrap();
    let failure = tier
        .chat(&ask("hi"), &CallContext::default())
        .await
        .unwrap_err();
    assert_eq!(failure.attempts, 1);
    assert!(
        matches!(failure.error, LlmError::Status { status: 404, .. }),
        "{failure}"
    );
    assert!(failure.to_string().contains("model name"), "{failure}");
    assert_eq!(sim.stats().requests_total, 1);
    sim.shutdown().await;
}

/// Each answer's `id` reaches the outcome, streamed or not: the same id the server's call ledger
/// has for it, with the same usage (what lets a bill be checked call by call).
#[tokio::test]
async fn the_servers_completion_id_reaches_the_outcome() {
    let sim = planex_testkit::sim::start(planex_sim::SimConfig {
        output_tokens: 16,
        record_calls: true,
        ..planex_testkit::sim::config(MODEL)
    })
    .await;
    let mut outcomes = Vec::new();
    for stream in [true, false] {
        let outcome = tier(&[sim.base_url()], stream, 0)
            .chat(&ask("hello"), &CallContext::default())
            .await
            .unwrap();
        outcomes.push(outcome);
    }
    let served = sim.state().calls().calls;
    assert_eq!(served.len(), 2);
    for (outcome, call) in outcomes.iter().zip(&served) {
        assert_eq!(outcome.response_id.as_deref(), Some(call.id.as_str()));
        assert!(call.whole);
        assert_eq!(
            (outcome.usage.prompt_tokens, outcome.usage.completion_tokens),
            (
                u64::from(call.prompt_tokens),
                u64::from(call.completion_tokens)
            )
        );
    }
    assert_ne!(served[0].id, served[1].id);
    sim.shutdown().await;
}
