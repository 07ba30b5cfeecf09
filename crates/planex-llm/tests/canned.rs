//! Edge cases the simulator does not produce, against a tiny canned HTTP server on 127.0.0.1:
//! unparseable bodies, truncated streams, missing usage, and the exact request we send.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use planex_core::{Price, Usage};
use planex_llm::{
    CallContext, ChatMessage, ChatModel, ChatRequest, Endpoint, LlmError, RetryPolicy, Tier,
    TierConfig,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// A server answering every request with `response` and reporting each raw request it read.
async fn canned(content_type: &str, body: &str) -> (String, mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}/v1", listener.local_addr().unwrap());
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut raw = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let n = socket.read(&mut buf).await.unwrap();
                raw.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&raw).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let length = text[..end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().to_string())
                        })
                        .map_or(0, |v| v.parse::<usize>().unwrap());
                    if raw.len() >= end + 4 + length {
                        tx.send(text).unwrap();
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            socket.write_all(response.as_bytes()).await.unwrap();
            socket.shutdown().await.unwrap();
        }
    });
    (base_url, rx)
}

fn tier(base_url: &str, stream: bool, max_retries: u32) -> Tier {
    let endpoint = Endpoint::new(base_url).with_api_key("sk-test");
    let mut config = TierConfig::new("small", "canned-model", vec![endpoint], Price::free());
    config.stream = stream;
    config.retry = RetryPolicy {
        max_retries,
        initial_backoff: Duration::from_millis(1),
        jitter: 0.0,
        ..RetryPolicy::default()
    };
    Tier::new(config, reqwest::Client::new()).unwrap()
}

fn request() -> ChatRequest {
    ChatRequest::new(vec![
        ChatMessage::system("be brief"),
        ChatMessage::user("hi"),
    ])
    .with_response_format(serde_json::json!({"type": "json_object"}))
}

#[tokio::test]
async fn an_unparseable_body_is_malformed_and_retried() {
    let (url, mut requests) = canned("application/json", "<html>gateway</html>").await;
    let failure = tier(&url, false, 2)
        .chat(&request(), &CallContext::default())
        .await
        .unwrap_err();
    assert_eq!(failure.attempts, 3);
    assert!(
        matches!(failure.error, LlmError::Malformed { .. }),
        "{failure}"
    );
    assert!(
        failure.to_string().contains("<html>gateway</html>"),
        "{failure}"
    );
    let raw = requests.recv().await.unwrap();
    assert!(raw.starts_with("POST /v1/chat/completions "), "{raw}");
    assert!(
        raw.to_ascii_lowercase()
            .contains("authorization: bearer sk-test"),
        "{raw}"
    );
    assert!(
        raw.contains(r#""response_format":{"type":"json_object"}"#),
        "{raw}"
    );
    assert!(!raw.contains("guided"), "{raw}");
}

#[tokio::test]
async fn a_stream_without_done_is_malformed() {
    let body = "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n";
    let (url, _requests) = canned("text/event-stream", body).await;
    let failure = tier(&url, true, 0)
        .chat(&request(), &CallContext::default())
        .await
        .unwrap_err();
    assert!(
        matches!(failure.error, LlmError::Malformed { ref detail, .. } if detail.contains("[DONE]")),
        "{failure}"
    );
}

#[tokio::test]
async fn a_stream_without_usage_counts_zero_tokens() {
    let body = "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\ndata: [DONE]\n\n";
    let (url, mut requests) = canned("text/event-stream", body).await;
    let model: Arc<dyn ChatModel> = Arc::new(tier(&url, true, 0));
    let ctx = CallContext::with_request_id("req-1");
    let outcome = model.chat(&request(), &ctx).await.unwrap();
    assert_eq!(outcome.content, "Hi");
    assert_eq!(outcome.usage, Usage::default());
    assert_eq!(outcome.model, "canned-model");
    assert!(outcome.ttft.is_some());
    assert_eq!(model.cost(&outcome.usage), planex_core::Decimal::ZERO);
    let raw = requests.recv().await.unwrap();
    assert!(
        raw.to_ascii_lowercase().contains("x-request-id: req-1"),
        "{raw}"
    );
    assert!(
        raw.contains(r#""stream":true,"stream_options":{"include_usage":true}"#),
        "{raw}"
    );
}

#[tokio::test]
async fn a_json_answer_to_a_streaming_request_is_accepted() {
    let body = r#"{"model":"served","choices":[{"message":{"role":"assistant","content":"ok"}}],
        "usage":{"prompt_tokens":3,"completion_tokens":1,"prompt_tokens_details":{"cached_tokens":2}}}"#;
    let (url, _requests) = canned("application/json", body).await;
    let outcome = tier(&url, true, 0)
        .chat(&request(), &CallContext::default())
        .await
        .unwrap();
    assert_eq!(outcome.content, "ok");
    assert_eq!(outcome.model, "served");
    assert_eq!(
        outcome.usage,
        Usage {
            prompt_tokens: 3,
            completion_tokens: 1,
            cached_tokens: 2
        }
    );
    assert_eq!(outcome.ttft, None);
}
