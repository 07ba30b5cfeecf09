//! The API's wire contract over a real loopback socket: `/openapi.json` is valid OpenAPI 3.1
//! (openapi-spec-validator from the pinned test venv), documents every route the router serves
//! and the responses the API really gives; request limits answer from the head (an early 413 for
//! a declared `Content-Length` over the limit, a 414 for a long target); every error, of the API
//! and of a worker's metrics server, is a JSON `{error: {type, message, details}}`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Harness, Options};
use planex_testkit::python;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Long enough for any answer on loopback; only a hang reaches it.
const HANG: Duration = Duration::from_secs(30);

/// Runs a check script of the test venv and fails the test with its output unless it passes.
fn run_check(script: &str, args: &[&str], stdin: &[u8]) {
    let python = python::test_tools().unwrap_or_else(|e| panic!("the Python test tools: {e}"));
    let output = python::run_script(&python, &python::script(script), args, stdin).unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{script} {args:?} failed:\n{text}");
}

/// One documented operation's answer: the route template, method, status and JSON body.
struct Sample {
    path: &'static str,
    method: &'static str,
    status: u16,
    body: Option<Value>,
}

/// Sends a request and records its answer as a [`Sample`] under `path` (a template).
async fn sample(
    client: &reqwest::Client,
    base: &str,
    (path, method): (&'static str, &'static str),
    uri: &str,
    body: Option<&str>,
) -> Sample {
    let url = format!("{base}{uri}");
    let request = match method {
        "get" => client.get(url),
        "delete" => client.delete(url),
        _ => client.post(url).header("content-type", "application/json"),
    };
    let request = match body {
        Some(body) => request.body(body.to_owned()),
        None => request,
    };
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let json = response
        .headers()
        .get("content-type")
        .is_some_and(|t| t.to_str().unwrap().starts_with("application/json"));
    let body = if json {
        Some(response.json::<Value>().await.unwrap())
    } else {
        None
    };
    Sample {
        path,
        method,
        status,
        body,
    }
}

#[test]
fn every_route_the_router_serves_is_documented_and_the_document_has_no_other() {
    let doc: Value = serde_json::from_str(&planex_server::openapi_json()).unwrap();
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|k| ["get", "post", "put", "patch", "delete"].contains(&k.as_str()))
                .map(move |method| (path.clone(), method.clone()))
        })
        .collect();
    let served: BTreeSet<(String, String)> = planex_server::route_table()
        .into_iter()
        .map(|(path, method)| (path.to_owned(), method.as_str().to_lowercase()))
        .collect();
    let undocumented: Vec<_> = served.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "routes without docs (add them to openapi.rs): {undocumented:?}"
    );
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(unserved.is_empty(), "documented, not served: {unserved:?}");
    assert!(served.contains(&("/v1/scaling".into(), "get".into())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_json_is_valid_openapi_3_1_and_real_responses_match_it() {
    let h = Harness::start(Options {
        metrics: true,
        body_limit: 4096,
        ..Options::default()
    })
    .await;
    let served = h.serve_http().await;
    let base = format!("http://{}", served.addr);
    let client = reqwest::Client::new();
    let spec = client
        .get(format!("{base}/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(spec.status(), 200);
    let spec = spec.text().await.unwrap();

    let task = r#"{"task": "Compare two GPU clouds", "max_subtasks": 2}"#;
    let mut samples = Vec::new();
    let finished = sample(
        &client,
        &base,
        ("/v1/tasks", "post"),
        "/v1/tasks?wait=true&timeout_secs=20",
        Some(task),
    )
    .await;
    assert_eq!(finished.status, 200, "{:?}", finished.body);
    let id = finished.body.as_ref().unwrap()["task_id"]
        .as_str()
        .unwrap()
        .to_owned();
    samples.push(finished);
    let task_uri = format!("/v1/tasks/{id}");
    for (route, uri, body) in [
        (("/v1/tasks", "post"), "/v1/tasks", Some(task)),
        (("/v1/tasks", "post"), "/v1/tasks", Some("{not json")),
        (("/v1/tasks", "post"), "/v1/tasks", Some(&*"x".repeat(5000))),
        (("/v1/tasks", "get"), "/v1/tasks?limit=1", None),
        (("/v1/tasks", "get"), "/v1/tasks?status=done", None),
        (("/v1/tasks/{id}", "get"), task_uri.as_str(), None),
        (("/v1/tasks/{id}", "get"), "/v1/tasks/no-such-task", None),
        (
            ("/v1/tasks/{id}/cancel", "post"),
            &format!("{task_uri}/cancel"),
            None,
        ),
        (
            ("/v1/tasks/{id}/events", "get"),
            "/v1/tasks/nope/events",
            None,
        ),
        (
            ("/v1/plan", "post"),
            "/v1/plan",
            Some(r#"{"task": "Plan a trip", "max_subtasks": 2}"#),
        ),
        (
            ("/v1/execute", "post"),
            "/v1/execute",
            Some(r#"{"tool_name": "lookup", "args": {"topic": "GPUs"}}"#),
        ),
        (
            ("/v1/execute", "post"),
            "/v1/execute",
            Some(r#"{"tool_name": "lookup", "args": {}}"#),
        ),
        (
            ("/v1/chat/completions", "post"),
            "/v1/chat/completions",
            Some(
                r#"{"model": "planex", "messages": [{"role": "user", "content": "Compare two GPU clouds"}]}"#,
            ),
        ),
        (("/v1/tools", "get"), "/v1/tools", None),
        (("/v1/dead-letters", "get"), "/v1/dead-letters", None),
        (
            ("/v1/dead-letters", "get"),
            "/v1/dead-letters?limit=0",
            None,
        ),
        (
            ("/v1/dead-letters/{id}", "get"),
            "/v1/dead-letters/1-0",
            None,
        ),
        (
            ("/v1/dead-letters/{id}", "delete"),
            "/v1/dead-letters/1-0",
            None,
        ),
        (
            ("/v1/dead-letters/{id}/replay", "post"),
            "/v1/dead-letters/1-0/replay",
            None,
        ),
        (("/v1/spend", "get"), "/v1/spend", None),
        (("/v1/spend/export", "get"), "/v1/spend/export", None),
        (
            ("/v1/spend/export", "get"),
            "/v1/spend/export?format=xml",
            None,
        ),
        (("/", "get"), "/", None),
        (("/ui/{file}", "get"), "/ui/app.js", None),
        (("/ui/{file}", "get"), "/ui/nope.js", None),
        (("/v1/spend", "get"), "/v1/spend?month=2026-13", None),
        (("/v1/scaling", "get"), "/v1/scaling", None),
        (("/healthz", "get"), "/healthz", None),
        (("/readyz", "get"), "/readyz", None),
        (("/metrics", "get"), "/metrics", None),
        (("/openapi.json", "get"), "/openapi.json", None),
        (
            ("/v1/spend", "get"),
            &format!("/v1/spend?month={}", "9".repeat(9000)),
            None,
        ),
    ] {
        samples.push(sample(&client, &base, route, uri, body).await);
    }
    let statuses: Vec<_> = samples
        .iter()
        .map(|s| (s.method, s.path, s.status))
        .collect();
    // The answers are the ones meant: the samples cover successes and each kind of error.
    for expected in [
        ("post", "/v1/tasks", 202),
        ("post", "/v1/tasks", 400),
        ("post", "/v1/tasks", 413),
        ("get", "/v1/tasks", 200),
        ("get", "/v1/tasks", 400),
        ("get", "/v1/tasks/{id}", 404),
        ("post", "/v1/tasks/{id}/cancel", 409),
        ("post", "/v1/plan", 200),
        ("post", "/v1/execute", 200),
        ("post", "/v1/execute", 422),
        ("post", "/v1/chat/completions", 200),
        ("get", "/v1/tools", 200),
        ("get", "/v1/spend", 200),
        ("get", "/v1/spend", 400),
        ("get", "/v1/spend", 414),
        ("get", "/v1/scaling", 200),
        ("get", "/v1/dead-letters", 200),
        ("get", "/v1/spend/export", 200),
        ("get", "/v1/spend/export", 400),
        ("get", "/", 200),
        ("get", "/ui/{file}", 404),
        ("get", "/v1/dead-letters", 400),
        ("delete", "/v1/dead-letters/{id}", 404),
        ("post", "/v1/dead-letters/{id}/replay", 404),
        ("get", "/readyz", 200),
        ("get", "/metrics", 200),
    ] {
        assert!(statuses.contains(&expected), "{expected:?} in {statuses:?}");
    }
    let samples: Vec<Value> = samples
        .into_iter()
        .map(|s| json!({"path": s.path, "method": s.method, "status": s.status, "body": s.body}))
        .collect();
    let dir = planex_testkit::temp_dir::fresh("planex-openapi").unwrap();
    let spec_file = dir.join("openapi.json");
    let samples_file = dir.join("samples.json");
    std::fs::write(&spec_file, spec).unwrap();
    std::fs::write(&samples_file, serde_json::to_vec(&samples).unwrap()).unwrap();
    run_check(
        "check_openapi.py",
        &[spec_file.to_str().unwrap(), samples_file.to_str().unwrap()],
        b"",
    );
    std::fs::remove_dir_all(&dir).unwrap();
    drop(served);
    h.stop().await;
}

/// Writes `head` (and `body`) on a fresh connection and reads the answer up to the end of the
/// body its `Content-Length` announces; returns the status and the body.
async fn raw_exchange(addr: std::net::SocketAddr, head: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let answer = async {
        loop {
            let n = stream.read(&mut buf).await.unwrap();
            received.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&received).into_owned();
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text[..end]
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap())
                    })
                    .unwrap_or(0);
                if received.len() >= end + 4 + length || n == 0 {
                    let status = text[9..12].parse().unwrap();
                    return (status, received[end + 4..].to_vec());
                }
            }
            assert!(n > 0, "the connection closed before an answer: {text:?}");
        }
    };
    tokio::time::timeout(HANG, answer)
        .await
        .unwrap_or_else(|_| panic!("no answer to {head:?} within {HANG:?}: the server waits"))
}

fn assert_error_body(body: &[u8], kind: &str) -> Value {
    let body: Value = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(body)));
    assert_eq!(body["error"]["type"], kind, "{body}");
    assert!(
        !body["error"]["message"].as_str().unwrap().is_empty(),
        "{body}"
    );
    assert!(body["error"].get("details").is_some(), "{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_content_length_over_the_limit_is_refused_before_the_body_arrives() {
    let h = Harness::start(Options {
        body_limit: 4096,
        ..Options::default()
    })
    .await;
    let served = h.serve_http().await;
    // The body will never come: only an answer from the head can arrive.
    let head = "POST /v1/tasks HTTP/1.1\r\nhost: planex\r\ncontent-type: application/json\r\ncontent-length: 99999999\r\n\r\n";
    let (status, body) = raw_exchange(served.addr, head, br#"{"task": "a"#).await;
    assert_eq!(status, 413);
    let body = assert_error_body(&body, "payload_too_large");
    assert_eq!(body["error"]["details"]["limit_bytes"], 4096);
    // Within the limit, the same route reads the body and answers it.
    let task = br#"{"task": "Compare two GPU clouds"}"#;
    let head = format!(
        "POST /v1/tasks HTTP/1.1\r\nhost: planex\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        task.len()
    );
    let (status, _) = raw_exchange(served.addr, &head, task).await;
    assert_eq!(status, 202);
    // A chunked body over the limit (no Content-Length) is still refused, once read that far.
    let chunk = "x".repeat(5000);
    let chunked = format!("{:x}\r\n{chunk}\r\n0\r\n\r\n", chunk.len());
    let head = "POST /v1/plan HTTP/1.1\r\nhost: planex\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
    let (status, body) = raw_exchange(served.addr, head, chunked.as_bytes()).await;
    assert_eq!(status, 413);
    assert_error_body(&body, "payload_too_large");
    drop(served);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_the_api_answers_has_the_json_error_body() {
    let h = Harness::start(Options::default()).await;
    let served = h.serve_http().await;
    let addr = served.addr;
    let get = |target: String| format!("GET {target} HTTP/1.1\r\nhost: planex\r\n\r\n");
    let post = |target: &str, content_type: &str, body: &str| {
        format!(
            "POST {target} HTTP/1.1\r\nhost: planex\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    for (request, status, kind) in [
        (get("/no/such/route".into()), 404, "not_found"),
        (get("/v1/tasks/no-such-task".into()), 404, "not_found"),
        (
            post("/healthz", "application/json", "{}"),
            405,
            "method_not_allowed",
        ),
        (
            "DELETE /v1/tasks HTTP/1.1\r\nhost: planex\r\n\r\n".to_owned(),
            405,
            "method_not_allowed",
        ),
        (
            get(format!("/v1/spend?month={}", "9".repeat(9000))),
            414,
            "uri_too_long",
        ),
        (
            post("/v1/tasks", "application/json", "{\"task\": "),
            400,
            "invalid_request",
        ),
        (
            post("/v1/tasks", "application/json", "{\"tusk\": \"typo\"}"),
            400,
            "invalid_request",
        ),
        // No 415: the body is read as JSON whatever the Content-Type (docs/ARCHITECTURE.md, API),
        // so a form-encoded body is a JSON 400 naming the problem.
        (
            post("/v1/plan", "application/x-www-form-urlencoded", "task=x"),
            400,
            "invalid_request",
        ),
        (get("/v1/spend?month=May".into()), 400, "invalid_request"),
    ] {
        let (got, body) = raw_exchange(addr, &request, b"").await;
        assert_eq!(got, status, "{request:.80}");
        assert_error_body(&body, kind);
    }
    // Over 65,534 bytes hyper answers 414 itself, before the app (with an empty body).
    let (status, _) = raw_exchange(addr, &get(format!("/{}", "a".repeat(70_000))), b"").await;
    assert_eq!(status, 414);
    drop(served);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workers_metrics_server_answers_json_errors_and_json_health() {
    let store: std::sync::Arc<dyn planex_store::Store> =
        std::sync::Arc::new(planex_store::MemoryStore::new());
    let stop = tokio_util::sync::CancellationToken::new();
    let token = stop.clone();
    let addr = planex_server::worker_metrics::spawn("127.0.0.1:0", store, "executor".into(), {
        async move { token.cancelled().await }
    })
    .await
    .unwrap();
    let (status, body) = raw_exchange(addr, "GET /healthz HTTP/1.1\r\nhost: w\r\n\r\n", b"").await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap()["status"],
        "ok"
    );
    let (status, body) = raw_exchange(addr, "GET /v1/tasks HTTP/1.1\r\nhost: w\r\n\r\n", b"").await;
    assert_eq!(status, 404);
    assert_error_body(&body, "not_found");
    let head = "POST /metrics HTTP/1.1\r\nhost: w\r\ncontent-length: 0\r\n\r\n";
    let (status, body) = raw_exchange(addr, head, b"").await;
    assert_eq!(status, 405);
    assert_error_body(&body, "method_not_allowed");
    let (status, body) = raw_exchange(addr, "GET /metrics HTTP/1.1\r\nhost: w\r\n\r\n", b"").await;
    assert_eq!(status, 200);
    assert!(
        String::from_utf8_lossy(&body).contains("queue_depth{tier=\"executor\"} 0"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    stop.cancel();
}
