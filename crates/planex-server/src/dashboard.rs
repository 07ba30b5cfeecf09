//! The live dashboard served at `/` (docs/ARCHITECTURE.md §7): one page and its script and style,
//! embedded in the binary (`assets/dashboard/`), plain modern JavaScript with no build step and
//! nothing fetched from elsewhere.
//!
//! Key decision: the page is a client of the public API and nothing else: it sends the API key a
//! user typed (kept in the browser's localStorage) with every request, so it sees exactly what
//! that key may see, and the assets themselves hold no data and need no key. A strict
//! Content-Security-Policy keeps every request on this origin.

use crate::error::ApiError;
use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};

const INDEX: &str = include_str!("../assets/dashboard/index.html");
const SCRIPT: &str = include_str!("../assets/dashboard/app.js");
const STYLE: &str = include_str!("../assets/dashboard/app.css");

/// Everything the page loads comes from this origin; nothing may frame it.
const POLICY: &str = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// The dashboard: tasks, a task's DAG and timeline, tiers, dead letters, spend.
#[utoipa::path(get, path = "/", tag = "ops", responses(
    (status = 200, description = "The dashboard page (HTML); its data comes from this API with the key typed into it", content_type = "text/html", body = String),
))]
pub async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX)
}

/// The dashboard's script and style.
#[utoipa::path(get, path = "/ui/{file}", tag = "ops",
    params(("file" = String, Path, description = "`app.js` or `app.css`")),
    responses(
        (status = 200, description = "The asset", content_type = "text/plain", body = String),
        (status = 404, description = "No such asset", body = crate::error::ErrorBody),
    ))]
pub async fn ui_asset(Path(file): Path<String>) -> Result<Response, ApiError> {
    match file.as_str() {
        "app.js" => Ok(asset("text/javascript; charset=utf-8", SCRIPT)),
        "app.css" => Ok(asset("text/css; charset=utf-8", STYLE)),
        _ => Err(ApiError::not_found(format!(
            "no dashboard asset {file:?}; the dashboard is at /"
        ))),
    }
}
