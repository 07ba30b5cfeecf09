//! `http` tools: a request template sent to a configured base URL.
//!
//! Key decision: templated values are percent-encoded into the path and query, and the final URL is
//! checked to keep the base URL's scheme, host, port and path prefix, so no arg can redirect a request
//! to another host (no SSRF through templates). Responses over the size limit are errors, not
//! silently truncated. Where a request may go at all (no internal addresses unless allowed,
//! redirects within the origin) is `http_guard.rs`.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use planex_core::{HttpTool, StepId, render};
use planex_llm::{CallContext, RetryPolicy};
use reqwest::Url;
use serde_json::{Map, Value};
use std::time::Duration;

/// Characters left as they are in a templated URL component (RFC 3986 unreserved).
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn encode_component(text: &str) -> String {
    utf8_percent_encode(text, COMPONENT).to_string()
}

/// Builds the request URL and proves it stays under the configured base URL.
pub fn build_url(tool: &HttpTool, args: &Map<String, Value>) -> Result<Url, String> {
    let base = Url::parse(&tool.base_url).map_err(|e| {
        format!(
            "http tool base_url {:?} is not a valid URL: {e}",
            tool.base_url
        )
    })?;
    let path = render(&tool.path, args, encode_component).map_err(|e| e.to_string())?;
    let joined = format!(
        "{}/{}",
        base.as_str().trim_end_matches('/'),
        path.trim_start_matches('/')
    );
    let url =
        Url::parse(&joined).map_err(|e| format!("templated URL {joined:?} is not valid: {e}"))?;
    let same_origin = url.scheme() == base.scheme()
        && url.host_str() == base.host_str()
        && url.port_or_known_default() == base.port_or_known_default();
    let base_path = base.path().trim_end_matches('/');
    if !same_origin || !url.path().starts_with(base_path) {
        return Err(format!(
            "templated URL {url} leaves the configured base URL {base}; args cannot change the host or escape the path"
        ));
    }
    Ok(url)
}

/// Sends the request with retries (transport errors, timeouts, 429 and 5xx; other 4xx are not
/// retried); returns the result (JSON when the response says so, else text) and the attempts
/// made. Every attempt carries `X-Step-ID` (the step's id) and, when the caller gave one,
/// `X-Request-ID`, so the tool's server can tie its requests to a plan step. What each attempt
/// retried failed with is added to `errors` (the last one is the result's error).
pub async fn call(
    clients: &crate::http_guard::HttpClients,
    tool: &HttpTool,
    args: &Map<String, Value>,
    retry: &RetryPolicy,
    step_id: StepId,
    ctx: &CallContext,
    errors: &mut Vec<String>,
) -> (Result<Value, String>, u32) {
    let mut attempts = 0;
    loop {
        attempts += 1;
        match attempt(clients.for_tool(tool), tool, args, step_id, ctx).await {
            Ok(value) => return (Ok(value), attempts),
            Err((message, retryable)) => {
                if !retryable || attempts > retry.max_retries {
                    let verdict = if retryable {
                        "gave up"
                    } else {
                        "failed without retry"
                    };
                    return (
                        Err(format!(
                            "http tool {verdict} after {attempts} attempt(s): {message}"
                        )),
                        attempts,
                    );
                }
                errors.push(format!("http tool, attempt {attempts}: {message}"));
                tokio::time::sleep(retry.delay(attempts - 1, None)).await;
            }
        }
    }
}

/// One request. The error carries whether it is worth retrying.
async fn attempt(
    client: &reqwest::Client,
    tool: &HttpTool,
    args: &Map<String, Value>,
    step_id: StepId,
    ctx: &CallContext,
) -> Result<Value, (String, bool)> {
    let fatal = |m: String| (m, false);
    let url = build_url(tool, args).map_err(fatal)?;
    crate::http_guard::check_literal(&url, tool).map_err(fatal)?;
    let method =
        reqwest::Method::from_bytes(tool.method.to_ascii_uppercase().as_bytes()).map_err(|_| {
            fatal(format!(
                "http tool method {:?} is not an HTTP method",
                tool.method
            ))
        })?;
    let mut request = client
        .request(method, url.clone())
        .timeout(Duration::from_millis(tool.timeout_ms));
    for (name, value) in &tool.headers {
        let value = render(value, args, str::to_owned).map_err(|e| fatal(e.to_string()))?;
        request = request.header(name, value);
    }
    request = request.header("X-Step-ID", step_id.to_string());
    if let Some(request_id) = &ctx.request_id {
        request = request.header("X-Request-ID", request_id);
    }
    if let Some(body) = &tool.body {
        request = request.json(&render_json(body, args).map_err(fatal)?);
    }
    let mut response = request.send().await.map_err(|e| {
        let chain = planex_core::cause::chain_text(&e);
        // Refused destinations (an internal address, a redirect off the origin) are final.
        if crate::http_guard::Refused::is_in(&e) {
            return (format!("{} {url} was refused: {chain}", tool.method), false);
        }
        let what = if e.is_timeout() {
            "timed out"
        } else {
            "could not be sent"
        };
        (format!("{} {url} {what}: {chain}", tool.method), true)
    })?;
    let status = response.status();
    let is_json = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| (format!("reading the response of {url} failed: {e}"), true))?
    {
        if body.len() + chunk.len() > tool.max_response_bytes {
            return Err(fatal(format!(
                "response of {url} is larger than max_response_bytes ({} bytes); raise the limit or narrow the request",
                tool.max_response_bytes
            )));
        }
        body.extend_from_slice(&chunk);
    }
    let text = String::from_utf8_lossy(&body).into_owned();
    if !status.is_success() {
        let retryable = status.as_u16() == 429 || status.is_server_error();
        let snippet: String = text.chars().take(300).collect();
        return Err((
            format!("{url} answered HTTP {status}: {snippet}"),
            retryable,
        ));
    }
    if is_json {
        serde_json::from_str(&text).map_err(|e| (format!("{url} sent invalid JSON: {e}"), true))
    } else {
        Ok(Value::String(text))
    }
}

/// Renders `{arg}` placeholders in every string leaf of a JSON body template.
fn render_json(template_value: &Value, args: &Map<String, Value>) -> Result<Value, String> {
    Ok(match template_value {
        Value::String(s) => {
            Value::String(render(s, args, str::to_owned).map_err(|e| e.to_string())?)
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| render_json(v, args))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), render_json(v, args)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(path: &str) -> HttpTool {
        HttpTool {
            method: "GET".into(),
            base_url: "http://127.0.0.1:9000/api".into(),
            path: path.into(),
            headers: Default::default(),
            body: None,
            timeout_ms: 1000,
            max_response_bytes: 1000,
            allow_internal: false,
        }
    }

    fn args(query: &str) -> Map<String, Value> {
        serde_json::json!({"q": query})
            .as_object()
            .cloned()
            .unwrap()
    }

    #[test]
    fn values_are_encoded_into_the_query() {
        let url = build_url(&tool("/search?q={q}"), &args("gpu prices & more")).unwrap();
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:9000/api/search?q=gpu%20prices%20%26%20more"
        );
    }

    #[test]
    fn templated_values_cannot_change_the_host() {
        for evil in [
            "@evil.example/x",
            "//evil.example/x",
            "http://evil.example/",
        ] {
            let url = build_url(&tool("/{q}"), &args(evil)).unwrap();
            assert_eq!(url.host_str(), Some("127.0.0.1"), "{evil}");
        }
        let escape = build_url(&tool("/{q}/x"), &args("..")).unwrap_err();
        assert!(
            escape.contains("leaves the configured base URL"),
            "{escape}"
        );
    }
}
