//! Retry behaviour against the simulator: 5xx retried, 4xx not, hangs time out, dead endpoints are
//! routed around.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{ask, start_sim, tier};
use planex_llm::{CallContext, ChatModel, LlmError};
use std::time::Duration;

#[tokio::test]
async fn server_errors_are_retried_until_success() {
    let sim = start_sim().await;
    let tier = tier(&[sim.base_url()], false, 3);
    let outcome = tier
        .chat(
            &ask("summarize this #sim:fail=500x2"),
            &CallContext::default(),
        )
        .await
        .unwrap();
    assert_eq!(outcome.attempts, 3);
    assert!(!outcome.content.is_empty());
    assert_eq!(sim.stats().requests_total, 3);
    sim.shutdown().await;
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let sim = start_sim().await;
    let tier = tier(&[sim.base_url()], true, 3);
    let failure = tier
        .chat(&ask("bad request #sim:fail=400"), &CallContext::default())
        .await
        .unwrap_err();
    assert_eq!(failure.attempts, 1);
    assert!(
        matches!(failure.error, LlmError::Status { status: 400, .. }),
        "{failure}"
    );
    assert!(!failure.error.is_retryable());
    assert_eq!(sim.stats().requests_total, 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn rate_limits_are_retried_with_retry_after_capped_by_policy() {
    let sim = start_sim().await;
    // The sim answers 429 with `Retry-After: 1`; the policy caps every wait at 50 ms.
    let tier = tier(&[sim.base_url()], true, 3);
    let outcome = tier
        .chat(&ask("busy #sim:fail=429x1"), &CallContext::default())
        .await
        .unwrap();
    assert_eq!(outcome.attempts, 2);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_hanging_server_times_out_each_attempt() {
    let sim = start_sim().await;
    let mut config = tier(&[sim.base_url()], true, 1).config().clone();
    config.timeout = Duration::from_millis(200);
    let tier = planex_llm::Tier::new(config, planex_llm::default_client().unwrap()).unwrap();
    let failure = tier
        .chat(&ask("never answers #sim:hang"), &CallContext::default())
        .await
        .unwrap_err();
    assert_eq!(failure.attempts, 2);
    match &failure.error {
        LlmError::Timeout { after, endpoint } => {
            assert_eq!(*after, Duration::from_millis(200));
            assert_eq!(endpoint, &sim.base_url());
        }
        other => panic!("expected a timeout, got {other}"),
    }
    assert!(
        failure
            .to_string()
            .starts_with("tier executor: gave up after 2 attempts:"),
        "{failure}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_dead_endpoint_is_routed_around() {
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        format!("http://127.0.0.1:{port}/v1")
    };
    let sim = start_sim().await;
    // Round robin starts at the first endpoint, so the first attempt hits the dead one.
    let tier = tier(&[dead, sim.base_url()], true, 3);
    let outcome = tier
        .chat(&ask("still works"), &CallContext::default())
        .await
        .unwrap();
    assert_eq!(outcome.attempts, 2);
    assert_eq!(outcome.endpoint, sim.base_url());
    sim.shutdown().await;
}

#[tokio::test]
async fn retries_off_fails_on_the_first_server_error() {
    let sim = start_sim().await;
    let tier = tier(&[sim.base_url()], false, 0);
    let failure = tier
        .chat(&ask("once #sim:fail=503x5"), &CallContext::default())
        .await
        .unwrap_err();
    assert_eq!(failure.attempts, 1);
    assert_eq!(failure.error.status(), Some(503));
    sim.shutdown().await;
}

#[tokio::test]
async fn a_refused_connection_keeps_the_reqwest_error_in_the_chain() {
    use planex_core::cause::{SharedSource, chain_text};
    use std::error::Error as _;
    let dead_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{dead_port}/v1");
    let failure = tier(std::slice::from_ref(&url), false, 0)
        .chat(&ask("hello"), &CallContext::default())
        .await
        .unwrap_err();
    assert!(
        matches!(failure.error, LlmError::Transport { .. }),
        "{failure:?}"
    );
    // The transport error's source is the reqwest error itself, not its text.
    let source = failure
        .error
        .source()
        .expect("a transport error has a source");
    let reqwest_error = source
        .downcast_ref::<SharedSource>()
        .and_then(|s| s.downcast_ref::<reqwest::Error>())
        .unwrap_or_else(|| panic!("not a reqwest error: {source:?}"));
    assert!(reqwest_error.is_connect(), "{reqwest_error:?}");
    // The failure's message names the tier and endpoint once; the chain adds reqwest's causes.
    let message = failure.to_string();
    assert!(message.contains(&url), "{message}");
    assert!(!message.contains(&reqwest_error.to_string()), "{message}");
    let chain = chain_text(&failure);
    assert!(chain.starts_with(&message), "{chain}");
    assert!(chain.contains(&reqwest_error.to_string()), "{chain}");
}

/// An answer that breaks off part-way (the connection drops mid-body or mid-stream) is a failed
/// attempt, retried on another endpoint; every attempt cut off fails the call with that reason.
#[tokio::test]
async fn an_answer_cut_off_part_way_is_retried() {
    let cutting = planex_testkit::sim::start(planex_sim::SimConfig {
        truncate_rate: 1.0,
        ..planex_testkit::sim::config(common::MODEL)
    })
    .await;
    let sim = start_sim().await;
    for stream in [true, false] {
        let outcome = tier(&[cutting.base_url(), sim.base_url()], stream, 3)
            .chat(&ask("cut me off"), &CallContext::default())
            .await
            .unwrap();
        assert_eq!(outcome.endpoint, sim.base_url(), "stream: {stream}");
        assert!(outcome.attempts >= 2, "stream: {stream}");
        assert!(outcome.usage.completion_tokens > 0);

        let failure = tier(&[cutting.base_url()], stream, 1)
            .chat(&ask("cut me off"), &CallContext::default())
            .await
            .unwrap_err();
        assert_eq!(failure.attempts, 2, "stream: {stream}");
        assert!(failure.error.is_retryable(), "{failure}");
    }
    assert!(cutting.stats().cut_off_answers >= 4);
    cutting.shutdown().await;
    sim.shutdown().await;
}
