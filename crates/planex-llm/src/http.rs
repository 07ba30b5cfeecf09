//! HTTP plumbing shared by chat calls and health checks: the default client, `GET /models`, and
//! turning reqwest errors and headers into our terms.
//!
//! Key decision: reqwest's own error text ("error sending request") hides the cause, so transport
//! errors keep the `reqwest::Error` as their source and the chain (`{:#}`,
//! `planex_core::cause::ErrorChain`) shows "connection refused" and the like.

use crate::endpoint::Endpoint;
use crate::error::{LlmError, truncate_body};
use crate::wire::WireModelList;
use planex_core::cause::SharedSource;
use std::time::Duration;

/// Limit on one `GET /models` call.
pub const LIST_MODELS_TIMEOUT: Duration = Duration::from_secs(10);

/// A `reqwest::Client` suited to model servers: 10 s connect timeout, TCP keep-alive. Build one per
/// process and share it between tiers (it pools connections).
pub fn default_client() -> Result<reqwest::Client, LlmError> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .tcp_keepalive(Duration::from_secs(30))
        .build()
        .map_err(|e| LlmError::ClientSetup {
            source: SharedSource::new(e),
        })
}

/// The model ids an endpoint serves (`GET {base_url}/models`), for health checks and model pinning.
pub async fn list_models(
    client: &reqwest::Client,
    endpoint: &Endpoint,
) -> Result<Vec<String>, LlmError> {
    let url = endpoint.url("models");
    let call = async {
        let mut request = client.get(&url);
        if let Some(key) = &endpoint.api_key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.map_err(|e| transport(endpoint, e))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| transport(endpoint, e))?;
        if !status.is_success() {
            return Err(LlmError::Status {
                endpoint: endpoint.base_url.clone(),
                status: status.as_u16(),
                body: truncate_body(&String::from_utf8_lossy(&body)),
            });
        }
        let list: WireModelList =
            serde_json::from_slice(&body).map_err(|e| LlmError::Malformed {
                endpoint: endpoint.base_url.clone(),
                detail: format!(
                    "GET /models body is not a model list: {}",
                    truncate_body(&String::from_utf8_lossy(&body))
                ),
                source: Some(SharedSource::new(e)),
            })?;
        Ok(list.data.into_iter().map(|m| m.id).collect())
    };
    tokio::time::timeout(LIST_MODELS_TIMEOUT, call)
        .await
        .unwrap_or_else(|_| {
            Err(LlmError::Timeout {
                endpoint: endpoint.base_url.clone(),
                after: LIST_MODELS_TIMEOUT,
            })
        })
}

/// A transport error of `endpoint`.
pub(crate) fn transport(endpoint: &Endpoint, error: reqwest::Error) -> LlmError {
    LlmError::Transport {
        endpoint: endpoint.base_url.clone(),
        source: SharedSource::new(error),
    }
}

/// A `Retry-After` header given in seconds (HTTP dates are ignored).
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    let secs: f64 = value.parse().ok()?;
    Duration::try_from_secs_f64(secs).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};

    #[test]
    fn retry_after_reads_seconds_only() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, HeaderValue::from_static("2"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("0.5"));
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(500)));
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, HeaderValue::from_static("-1"));
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn endpoint_urls_join_with_one_slash() {
        assert_eq!(
            Endpoint::new("http://h:1/v1/").url("models"),
            "http://h:1/v1/models"
        );
        assert_eq!(
            Endpoint::new("http://h:1/v1").url("/chat/completions"),
            "http://h:1/v1/chat/completions"
        );
    }
}
