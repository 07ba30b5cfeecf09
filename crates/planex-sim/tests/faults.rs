//! Fault injection, concurrency limit and the synthetic search endpoint.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{chat, client, executor_body, planner_body};
use planex_sim::SimConfig;
use planex_testkit::sim::start;
use serde_json::{Value, json};

#[tokio::test]
async fn counted_fail_marker_then_success() {
    let server = start(SimConfig::default()).await;
    let body = executor_body("flaky step #sim:fail=500x2");
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(chat(&server, &body).await.0);
    }
    assert_eq!(statuses, [500, 500, 200]);
    // Different contents have their own counter.
    assert_eq!(
        chat(&server, &executor_body("other #sim:fail=500x2"))
            .await
            .0,
        500
    );
    assert_eq!(server.stats().errors_injected, 3);
    server.state().reset();
    assert_eq!(chat(&server, &body).await.0, 500);
    server.shutdown().await;
}

#[tokio::test]
async fn permanent_fail_marker_and_rate_limit_header() {
    let server = start(SimConfig::default()).await;
    for _ in 0..3 {
        let (status, error) = chat(&server, &executor_body("bad #sim:fail=400")).await;
        assert_eq!(status, 400);
        assert_eq!(error["error"]["type"], "invalid_request_error");
    }
    let response = client()
        .post(format!("{}/chat/completions", server.base_url()))
        .json(&planner_body("plan #sim:fail=429", 5))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "1");
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["type"], "rate_limit_error");
    server.shutdown().await;
}

#[tokio::test]
async fn malformed_and_hang_markers() {
    let server = start(SimConfig {
        hang_ms: 1,
        ..SimConfig::default()
    })
    .await;
    let (status, answer) = chat(&server, &planner_body("plan it #sim:malformed", 6)).await;
    assert_eq!(status, 200);
    let content = answer["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(content.starts_with("{\"steps\":"));
    assert!(serde_json::from_str::<Value>(content).is_err());
    assert!(answer["usage"]["completion_tokens"].as_u64().unwrap() > 0);
    let (status, _) = chat(&server, &executor_body("slow #sim:hang")).await;
    assert_eq!(status, 200);
    assert_eq!(server.stats().errors_injected, 2);
    server.shutdown().await;
}

#[tokio::test]
async fn seeded_error_rates() {
    let always = start(SimConfig {
        error_rate: 1.0,
        seed: 42,
        ..SimConfig::default()
    })
    .await;
    let never = start(SimConfig {
        error_rate: 0.0,
        seed: 42,
        ..SimConfig::default()
    })
    .await;
    for i in 0..10 {
        let body = executor_body(&format!("request {i}"));
        let (status, error) = chat(&always, &body).await;
        assert!((500..600).contains(&status), "{status}");
        assert_eq!(error["error"]["type"], "server_error");
        assert_eq!(chat(&never, &body).await.0, 200);
    }
    assert_eq!(always.stats().errors_injected, 10);
    assert_eq!(never.stats().errors_injected, 0);

    // Same seed, same request order -> same faults.
    let run = || async {
        let server = start(SimConfig {
            rate_limit_rate: 0.5,
            seed: 7,
            ..SimConfig::default()
        })
        .await;
        let mut statuses = Vec::new();
        for i in 0..16 {
            statuses.push(chat(&server, &executor_body(&format!("r{i}"))).await.0);
        }
        server.shutdown().await;
        statuses
    };
    let first = run().await;
    assert_eq!(first, run().await);
    assert!(first.contains(&429) && first.contains(&200), "{first:?}");
    always.shutdown().await;
    never.shutdown().await;
}

#[tokio::test]
async fn concurrency_limit_is_never_exceeded() {
    let server = start(SimConfig {
        max_concurrency: 3,
        ttft_ms: 40,
        ..SimConfig::default()
    })
    .await;
    let requests = (0..20).map(|i| {
        let body = executor_body(&format!("parallel {i}"));
        let url = format!("{}/chat/completions", server.base_url());
        async move {
            client()
                .post(url)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
        }
    });
    let statuses = futures::future::join_all(requests).await;
    assert!(statuses.iter().all(|s| *s == 200));
    let stats = server.stats();
    assert_eq!(stats.requests_total, 20);
    assert!(
        stats.max_in_flight >= 1 && stats.max_in_flight <= 3,
        "{stats:?}"
    );
    assert_eq!(stats.in_flight, 0);
    server.shutdown().await;
}

async fn search(server: &planex_sim::SimServer, query: &str) -> (u16, String) {
    let encoded: String = query
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let response = client()
        .get(format!(
            "http://{}/sim/search?q={encoded}&limit=3",
            server.addr()
        ))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn search_is_deterministic_and_supports_markers() {
    let server = start(SimConfig::default()).await;
    let (status, first) = search(&server, "gpu cloud pricing").await;
    assert_eq!(status, 200);
    let value: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(value["query"], "gpu cloud pricing");
    assert_eq!(value["simulated"], true);
    let results = value["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    for r in results {
        assert!(
            r["url"]
                .as_str()
                .unwrap()
                .starts_with("https://example.invalid/")
        );
        assert!(r["title"].is_string() && r["snippet"].is_string());
    }
    assert_eq!(search(&server, "gpu cloud pricing").await.1, first);
    assert_ne!(search(&server, "tpu pricing").await.1, first);

    let flaky = "gpu #sim:fail=503x1";
    assert_eq!(search(&server, flaky).await.0, 503);
    assert_eq!(search(&server, flaky).await.0, 200);
    assert_eq!(search(&server, "x #sim:fail=404").await.0, 404);
    let (status, body) = search(&server, "x #sim:malformed").await;
    assert_eq!(status, 200);
    assert!(serde_json::from_str::<Value>(&body).is_err());
    let missing = client()
        .get(format!("http://{}/sim/search", server.addr()))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 400);
    assert_eq!(json!(server.stats().requests_total), json!(0));
    server.shutdown().await;
}
