//! One HTTP call to a running `planex serve` for the commands that act on it (`planex cancel`,
//! `planex dlq`, `planex spend`): the server's URL and API key as flags, the JSON answer back, and errors that
//! say what to check.

use anyhow::{Context, Result};
use reqwest::Method;

/// Where the server is and how to authenticate, shared by the commands' flags.
#[derive(clap::Args, Clone)]
pub struct ServerArgs {
    /// The running `planex serve`.
    #[arg(long, global = true, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// The API key (when the server requires one; default: `PLANEX_API_KEY`).
    #[arg(long, global = true, env = "PLANEX_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
}

/// An answer: its HTTP status and JSON body (`Null` for an empty body, as `204` has).
pub struct Answer {
    /// The HTTP status.
    pub status: reqwest::StatusCode,
    /// The JSON body.
    pub body: serde_json::Value,
}

impl Answer {
    /// The error message of a failed answer (`error.message`, else the body).
    pub fn message(&self) -> String {
        self.body["error"]["message"]
            .as_str()
            .map_or_else(|| self.body.to_string(), str::to_owned)
    }
}

impl ServerArgs {
    /// Sends `method path` (with `body` as JSON, when given) and reads the JSON answer.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Answer> {
        let (status, text, _) = self.call_text(method.clone(), path, body).await?;
        let body = if text.trim().is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).with_context(|| {
                format!("{method} {path} answered HTTP {status} without JSON: {text}")
            })?
        };
        Ok(Answer { status, body })
    }

    /// Sends `method path` (with `body` as JSON, when given) and reads the answer as text, with
    /// its headers.
    pub async fn call_text(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<(reqwest::StatusCode, String, reqwest::header::HeaderMap)> {
        let endpoint = format!("{}{path}", self.url.trim_end_matches('/'));
        let client = planex_llm::default_client()?;
        let mut request = client.request(method.clone(), &endpoint);
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.with_context(|| {
            format!("{method} {endpoint} failed; is `planex serve` running there?")
        })?;
        let status = response.status();
        let headers = response.headers().clone();
        let text = response
            .text()
            .await
            .with_context(|| format!("reading the answer of {method} {endpoint}"))?;
        Ok((status, text, headers))
    }
}
