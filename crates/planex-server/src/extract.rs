//! Request extractors: JSON bodies with our error shape, and the per-request id.
//!
//! Key decision: bodies are read as bytes under the configured limit and parsed with serde here,
//! so an oversized body is a JSON 413, a malformed one a JSON 400 naming the field, and a missing
//! `Content-Type` is not an error (curl users forget it).

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use serde::de::DeserializeOwned;

/// The header carrying the request id, in and out (and on to the model servers).
pub const REQUEST_ID: &str = "x-request-id";

/// A JSON body parsed into `T`.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let limit = request
            .extensions()
            .get::<BodyLimit>()
            .map(|l| l.0)
            .unwrap_or(0);
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::payload_too_large(limit)
                } else {
                    ApiError::bad_request(format!("could not read the request body: {rejection}"))
                }
            })?;
        serde_json::from_slice(&bytes).map(ApiJson).map_err(|e| {
            ApiError::bad_request(format!(
                "the request body is not valid JSON of the expected shape: {e}"
            ))
        })
    }
}

/// A query string parsed into `T`, with JSON 400 errors.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|q| ApiQuery(q.0))
            .map_err(|e| ApiError::bad_request(format!("invalid query string: {}", e.body_text())))
    }
}

/// The configured body limit, put in request extensions so 413 messages can name it.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// This request's id: the caller's `X-Request-ID`, or a fresh UUID.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

impl RequestId {
    /// Reads a usable caller id (visible ASCII, at most 128 bytes) or makes one.
    pub fn from_header(value: Option<&HeaderValue>) -> Self {
        let given = value
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()));
        RequestId(
            given
                .map(str::to_owned)
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        )
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<RequestId>()
            .cloned()
            .unwrap_or_else(|| RequestId::from_header(parts.headers.get(REQUEST_ID))))
    }
}
