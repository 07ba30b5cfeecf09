//! `GET /v1/tools` through the router: the catalog as users see it (kinds, tiers, arguments,
//! schemas, availability), without prompt templates; keys are required when configured.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::http::{Method, StatusCode};
use common::{Harness, Options, two_tenants};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalog_lists_each_tool_with_its_arguments_and_availability() {
    let h = Harness::start(Options {
        keys: two_tenants(),
        ..Options::default()
    })
    .await;
    let key = [("authorization", "Bearer key-acme")];
    let (status, _, body) = h.call(Method::GET, "/v1/tools", None, &key).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let tools = body["tools"].as_array().unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["lookup", "summarize"]);
    let summarize = &tools[1];
    assert_eq!(summarize["kind"], "llm");
    assert_eq!(summarize["tier"], "executor");
    assert_eq!(summarize["available"], true);
    assert_eq!(summarize["args"][0]["name"], "text");
    assert_eq!(summarize["args"][0]["type"], "string");
    assert_eq!(summarize["args"][0]["required"], true);
    assert_eq!(summarize["input_schema"]["required"][0], "text");
    assert!(!body.to_string().contains("prompt"), "{body}");
    assert_eq!(
        h.call(Method::GET, "/v1/tools", None, &[]).await.0,
        StatusCode::UNAUTHORIZED
    );
    h.stop().await;
}
