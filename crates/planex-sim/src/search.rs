//! `GET /sim/search?q=TEXT&limit=N`: deterministic synthetic search results, a stand-in for an
//! HTTP tool such as a web search service.
//!
//! Key decision: results depend only on the query (markers stripped) and the limit, and the
//! same `#sim:` markers as chat requests apply (no random faults), so HTTP-tool failures can be
//! tested deterministically.

use std::collections::HashMap;
use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rand::Rng;
use serde_json::{Value, json};

use crate::markers::{self, Markers};
use crate::openai::ApiError;
use crate::state::{Counter, SimState};
use crate::text;

const DEFAULT_LIMIT: usize = 5;
const MAX_LIMIT: usize = 20;
const KINDS: &[&str] = &[
    "overview",
    "analysis",
    "report",
    "guide",
    "news",
    "comparison",
    "data",
];

/// Results for `query` (markers stripped), `limit` of them.
pub fn results(query: &str, limit: usize) -> Value {
    let clean = markers::strip(query);
    let mut rng = text::rng_from(&["planex-sim search", &clean]);
    let slug: String = clean
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(6)
        .map(str::to_ascii_lowercase)
        .collect::<Vec<_>>()
        .join("-");
    let slug = if slug.is_empty() {
        "query".to_owned()
    } else {
        slug
    };
    let items: Vec<Value> = (1..=limit)
        .map(|i| {
            let kind = KINDS
                .get(rng.random_range(0..KINDS.len()))
                .copied()
                .unwrap_or("overview");
            json!({
                "title": format!("{clean}: {kind} {i}"),
                "url": format!("https://example.invalid/{slug}/{kind}-{i}"),
                "snippet": format!("[simulated] {} {}", text::sentence(&mut rng), text::sentence(&mut rng)),
            })
        })
        .collect();
    json!({"query": query, "simulated": true, "results": items})
}

/// The search handler.
pub async fn search(
    State(state): State<SimState>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let Some(query) = params.get("q").filter(|q| !q.trim().is_empty()) else {
        return ApiError::bad_request("missing query parameter `q`").into_response();
    };
    let limit = match params.get("limit").map(|l| l.parse::<usize>()) {
        None => DEFAULT_LIMIT,
        Some(Ok(n)) => n.clamp(1, MAX_LIMIT),
        Some(Err(_)) => {
            return ApiError::bad_request("`limit` must be a positive integer").into_response();
        }
    };
    let marks = Markers::scan([query.as_str()]);
    let decision = crate::faults::Decision {
        // A search answer is never cut off part-way: `#sim:truncate` is for chat answers.
        truncate: false,
        ..state.faults().by_markers(&marks, &text::sha_hex(&[query]))
    };
    if decision.is_fault() {
        state.bump(Counter::Faults);
    }
    if let Some(status) = decision.error {
        return ApiError::injected(status).into_response();
    }
    if decision.hang {
        state
            .sleep(Duration::from_millis(state.config().hang_ms))
            .await;
    }
    let body = results(query, limit);
    if decision.malformed {
        let text = crate::content::malformed(&body.to_string());
        let mut response = (StatusCode::OK, text).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        return response;
    }
    (StatusCode::OK, Json(body)).into_response()
}
