//! Fuzz target of the MCP result decoder (bolero; a plain test with random inputs and seeds,
//! coverage-guided with `cargo bolero test`): any `tools/call` result a server sends, as JSON,
//! becomes a step result or a step error, never a panic; a result over the size limit is an error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

const SEEDS: &[&str] = &[
    r#"{"content":[{"type":"text","text":"hello"}]}"#,
    r#"{"content":[{"type":"text","text":"a"},{"type":"image","data":"AA==","mimeType":"image/png"}],"structuredContent":{"x":[1,2]}}"#,
    r#"{"content":[{"type":"text","text":"refused"}],"isError":true}"#,
    r#"{"content":[],"structuredContent":null}"#,
];

fn check(bytes: &[u8]) {
    let Ok(result) = serde_json::from_slice::<CallToolResult>(bytes) else {
        return;
    };
    let tool = McpTool {
        server: "s".into(),
        tool: "t".into(),
    };
    if let Ok(whole) = value(result.clone(), &tool, 1 << 20)
        && whole.to_string().len() > 8
    {
        assert!(
            value(result, &tool, 8).is_err(),
            "a result over the limit is refused"
        );
    }
}

#[test]
fn mcp_results_become_a_result_or_an_error() {
    for seed in SEEDS {
        check(seed.as_bytes());
    }
    bolero::check!().for_each(check);
}
