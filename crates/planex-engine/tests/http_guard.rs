//! `http` tools against real servers on 127.0.0.1: internal destinations (an IP literal, a name
//! resolving to loopback, the metadata address) are refused without being retried unless the tool
//! allows them; redirects are followed within the origin only; oversized and slow responses fail
//! with a clear error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use planex_core::{Catalog, HttpTool, StepId, ToolKind, ToolSpec};
use planex_engine::mcp::McpServers;
use planex_engine::{Executor, Models};
use planex_llm::{CallContext, RetryPolicy};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A tiny HTTP/1.1 server on 127.0.0.1: `/ok` JSON, `/same` redirects to `/ok`, `/other`
/// redirects to `http://localhost:PORT/ok` (another origin), `/big` 64 KiB, `/slow` answers after
/// 5 s. Returns its port.
async fn server() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut head = vec![0u8; 4096];
                let n = socket.read(&mut head).await.unwrap_or(0);
                let text = String::from_utf8_lossy(&head[..n]).into_owned();
                let path = text.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let (status, extra, body) = match path.split('?').next().unwrap_or("/") {
                    "/ok" => ("200 OK", String::new(), r#"{"ok": true}"#.to_owned()),
                    "/same" => ("302 Found", "Location: /ok\r\n".to_owned(), String::new()),
                    "/other" => (
                        "302 Found",
                        format!("Location: http://localhost:{port}/ok\r\n"),
                        String::new(),
                    ),
                    "/big" => ("200 OK", String::new(), "x".repeat(65_536)),
                    "/slow" => {
                        tokio::time::sleep(Duration::from_secs(5)).await;
                        ("200 OK", String::new(), "late".to_owned())
                    }
                    _ => ("404 Not Found", String::new(), String::new()),
                };
                let kind = if body.starts_with('{') {
                    "application/json"
                } else {
                    "text/plain"
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: {kind}\r\ncontent-length: {}\r\nconnection: close\r\n{extra}\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    port
}

fn tool(name: &str, base: &str, path: &str, allow_internal: bool) -> ToolSpec {
    ToolSpec {
        name: name.into(),
        description: name.into(),
        input_schema: serde_json::json!({"type": "object"}),
        output_schema: None,
        tier: "tools".into(),
        kind: ToolKind::Http(HttpTool {
            method: "GET".into(),
            base_url: base.into(),
            path: path.into(),
            headers: Default::default(),
            body: None,
            timeout_ms: 500,
            max_response_bytes: 4096,
            allow_internal,
        }),
    }
}

fn executor(tools: Vec<ToolSpec>) -> Executor {
    Executor {
        catalog: Catalog::new(tools).unwrap().into(),
        models: Models::new(),
        http: planex_engine::http_guard::HttpClients::new().unwrap(),
        // Retries on: a refusal must not be retried, a timeout may.
        http_retry: RetryPolicy {
            max_retries: 2,
            initial_backoff: Duration::from_millis(10),
            ..RetryPolicy::default()
        },
        synthesis_input_chars: 4096,
        budget: None,
        mcp: Arc::new(McpServers::none()),
    }
}

async fn call(executor: &Executor, name: &str) -> (Result<serde_json::Value, String>, u32) {
    let outcome = executor
        .call_tool(
            name,
            &serde_json::Map::new(),
            StepId(1),
            &CallContext::default(),
        )
        .await;
    (outcome.result, outcome.attempts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_destinations_are_refused_unless_allowed_and_redirects_stay_in_the_origin() {
    let port = server().await;
    let loopback = format!("http://127.0.0.1:{port}");
    let by_name = format!("http://localhost:{port}");
    let executor = executor(vec![
        tool("literal", &loopback, "/ok", false),
        tool("by_name", &by_name, "/ok", false),
        tool(
            "metadata",
            "http://169.254.169.254",
            "/latest/meta-data/",
            false,
        ),
        tool("allowed", &loopback, "/ok", true),
        tool("same_origin", &loopback, "/same", true),
        tool("other_origin", &loopback, "/other", true),
        tool("big", &loopback, "/big", true),
        tool("slow", &loopback, "/slow", true),
    ]);
    for name in ["literal", "by_name", "metadata"] {
        let (result, attempts) = call(&executor, name).await;
        let error = result.unwrap_err();
        assert!(
            error.contains("internal address") && error.contains("allow_internal"),
            "{name}: {error}"
        );
        assert_eq!(attempts, 1, "{name}: a refusal is not retried");
    }
    assert_eq!(call(&executor, "allowed").await.0.unwrap()["ok"], true);
    assert_eq!(
        call(&executor, "same_origin").await.0.unwrap()["ok"],
        true,
        "a redirect within the origin is followed"
    );
    let (result, attempts) = call(&executor, "other_origin").await;
    let error = result.unwrap_err();
    assert!(error.contains("leaves the tool's origin"), "{error}");
    assert_eq!(attempts, 1);
    let error = call(&executor, "big").await.0.unwrap_err();
    assert!(error.contains("larger than max_response_bytes"), "{error}");
    let (result, attempts) = call(&executor, "slow").await;
    let error = result.unwrap_err();
    assert!(error.contains("timed out"), "{error}");
    assert_eq!(attempts, 3, "a timeout is retried");
}
