//! Every error is an OpenAI-shaped JSON body: schemas outside the strict subset (400
//! `invalid_json_schema` naming the keyword and its path) and framework rejections (unknown
//! route 404, wrong method 405, body too large 413, wrong content type 415, malformed JSON 400).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{assert_openai_error, chat, client, executor_body, schema_body};
use planex_sim::SimConfig;
use planex_testkit::sim::start;
use serde_json::{Value, json};

/// A strict object around one property `p` with schema `inner`.
fn around(inner: Value) -> Value {
    json!({"type": "object", "additionalProperties": false, "required": ["p"],
        "properties": {"p": inner}})
}

#[tokio::test]
async fn schemas_outside_the_strict_subset_are_a_400_naming_keyword_and_path() {
    let server = start(SimConfig::default()).await;
    let string = json!({"type": "string"});
    let cases = [
        (
            around(
                json!({"type": "object", "additionalProperties": false, "patternProperties": {"^x": string}}),
            ),
            "patternProperties",
            "#/properties/p",
        ),
        (
            around(
                json!({"type": "string", "if": {"minLength": 2}, "then": {"maxLength": 3}, "else": {}}),
            ),
            "else",
            "#/properties/p",
        ),
        (
            around(json!({"not": {"type": "null"}, "type": "string"})),
            "not",
            "#/properties/p",
        ),
        (
            json!({"type": "object", "additionalProperties": false, "properties": {"a": string, "b": string},
                "required": [], "dependentRequired": {"a": ["b"]}}),
            "dependentRequired",
            "#",
        ),
        (
            around(json!({"oneOf": [string, {"type": "integer"}]})),
            "oneOf",
            "#/properties/p",
        ),
        (
            around(json!({"allOf": [string]})),
            "allOf",
            "#/properties/p",
        ),
        (
            around(json!({"type": "object", "properties": {"q": string}, "required": ["q"]})),
            "additionalProperties",
            "#/properties/p",
        ),
        (
            json!({"type": "object", "additionalProperties": false, "required": ["items"],
                "properties": {"items": {"type": "array", "items": {"type": "object", "additionalProperties": true}}}}),
            "additionalProperties",
            "#/properties/items/items",
        ),
        (
            around(json!({"description": "no type"})),
            "type",
            "#/properties/p",
        ),
        (
            around(json!({"type": "string", "pattern": "(?=x)x"})),
            "pattern",
            "#/properties/p",
        ),
        (
            around(json!({"type": "string", "format": "credit-card"})),
            "format",
            "#/properties/p",
        ),
        (
            around(json!({"$ref": "https://example.invalid/schema.json"})),
            "$ref",
            "#/properties/p",
        ),
        (
            around(json!({"$ref": "#/$defs/missing"})),
            "$ref",
            "#/$defs/missing",
        ),
        (
            json!({"type": "object", "additionalProperties": false, "required": ["p"],
                "properties": {"p": string}, "$defs": {"unused": {"type": "string", "uniqueItems": true}}}),
            "uniqueItems",
            "#/$defs/unused",
        ),
        (
            around(json!({"type": "integer", "minimum": 5, "maximum": 4})),
            "minimum",
            "#/properties/p",
        ),
        (
            around(json!({"type": "array", "items": string, "minItems": 3, "maxItems": 2})),
            "minItems",
            "#/properties/p",
        ),
        (
            json!({"type": "object", "additionalProperties": false, "required": ["next"], "properties": {"next": {"$ref": "#"}}}),
            "schema",
            "#",
        ),
    ];
    for (schema, keyword, path) in cases {
        let (status, body) = chat(&server, &schema_body("strict_thing", &schema, true, "x")).await;
        assert_eq!(status, 400, "{keyword}: {body}");
        let error = assert_openai_error(&body);
        assert_eq!(error["type"], "invalid_request_error");
        assert_eq!(error["code"], "invalid_json_schema");
        assert_eq!(error["param"], "response_format");
        let message = error["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("`{keyword}` at {path} ")),
            "{keyword} {path}: {message}"
        );
        assert!(message.contains("'strict_thing'"), "{message}");
    }
    // Refused before the role is counted, like any invalid request.
    let stats = server.stats();
    assert_eq!(stats.planner_requests + stats.executor_requests, 0);

    // Without strict, unknown keywords and open objects are accepted; unsatisfiable schemas are not.
    let open = around(
        json!({"type": "object", "properties": {"q": string}, "patternProperties": {"^x": string}}),
    );
    let (status, body) = chat(&server, &schema_body("lenient", &open, false, "x")).await;
    assert_eq!(status, 200, "{body}");
    let endless =
        json!({"type": "object", "required": ["next"], "properties": {"next": {"$ref": "#"}}});
    let (status, body) = chat(&server, &schema_body("lenient", &endless, false, "x")).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no finite instance")
    );

    // A `json_schema` format without the `json_schema` object is a 400 on `response_format`.
    let mut missing = executor_body("x");
    missing["response_format"] = json!({"type": "json_schema"});
    let (status, body) = chat(&server, &missing).await;
    assert_eq!(status, 400);
    assert_eq!(assert_openai_error(&body)["param"], "response_format");
    server.shutdown().await;
}

#[tokio::test]
async fn a_schema_named_plan_that_is_out_of_the_subset_is_refused_not_planned() {
    // It used to reach the plan generator (by name) and fail there with "lists no tools".
    let server = start(SimConfig::default()).await;
    let mut body = common::planner_body("x", 5);
    body["response_format"]["json_schema"]["schema"] = json!({"type": "object"});
    let (status, error) = chat(&server, &body).await;
    assert_eq!(status, 400);
    let error = assert_openai_error(&error);
    assert_eq!(error["code"], "invalid_json_schema");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("`additionalProperties` at #"),
        "{error}"
    );
    server.shutdown().await;
}

async fn send(request: reqwest::RequestBuilder) -> (u16, reqwest::header::HeaderMap, Value) {
    let response = request
        .header("x-request-id", "rej-1")
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"),
        "{status}: {headers:?}"
    );
    assert_eq!(headers["x-request-id"], "rej-1");
    (status, headers, response.json().await.unwrap())
}

#[tokio::test]
async fn framework_rejections_have_openai_error_bodies() {
    let server = start(SimConfig {
        max_body_bytes: 2048,
        ..SimConfig::default()
    })
    .await;
    let base = server.base_url();
    let c = client();

    let (status, _, body) = send(c.get(format!("{base}/nope"))).await;
    assert_eq!(status, 404);
    let error = assert_openai_error(&body);
    assert_eq!(error["code"], "unknown_url");
    assert!(
        error["message"].as_str().unwrap().contains("GET /v1/nope"),
        "{error}"
    );

    for (method, url, allowed) in [
        (
            reqwest::Method::GET,
            format!("{base}/chat/completions"),
            "POST",
        ),
        (reqwest::Method::DELETE, format!("{base}/models"), "GET"),
    ] {
        let (status, headers, body) = send(c.request(method.clone(), &url)).await;
        assert_eq!(status, 405, "{method} {url}");
        assert!(headers["allow"].to_str().unwrap().contains(allowed));
        let error = assert_openai_error(&body);
        assert_eq!(error["type"], "invalid_request_error");
        assert_eq!(error["code"], "method_not_allowed");
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains(&format!("use {allowed}")),
            "{error}"
        );
    }

    let mut big = executor_body("x");
    big["messages"][1]["content"] = json!("word ".repeat(1000));
    let (status, _, body) = send(c.post(format!("{base}/chat/completions")).json(&big)).await;
    assert_eq!(status, 413);
    let error = assert_openai_error(&body);
    assert_eq!(error["code"], "request_too_large");
    assert!(
        error["message"].as_str().unwrap().contains("2048 bytes"),
        "{error}"
    );

    let small = executor_body("hi").to_string();
    let (status, _, body) = send(
        c.post(format!("{base}/chat/completions"))
            .header("content-type", "text/plain")
            .body(small.clone()),
    )
    .await;
    assert_eq!(status, 415);
    assert_eq!(assert_openai_error(&body)["code"], "unsupported_media_type");

    let (status, _, body) = send(
        c.post(format!("{base}/chat/completions"))
            .header("content-type", "application/json")
            .body("{\"messages\": [oops"),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(assert_openai_error(&body)["type"], "invalid_request_error");

    // A JSON body without a content type, or with parameters on it, is still read.
    for content_type in [None, Some("application/json; charset=utf-8")] {
        let mut request = c
            .post(format!("{base}/chat/completions"))
            .body(small.clone());
        if let Some(value) = content_type {
            request = request.header("content-type", value);
        }
        assert_eq!(
            request.send().await.unwrap().status(),
            200,
            "{content_type:?}"
        );
    }
    server.shutdown().await;
}
