//! planex-server: the HTTP face of planex (docs/ARCHITECTURE.md §5 and §7).
//!
//! Tasks (`POST /v1/tasks`, `GET /v1/tasks/{id}`, SSE events), plan only (`/v1/plan`), one step
//! (`/v1/execute`), an OpenAI-compatible agent endpoint (`/v1/chat/completions`), spend per tenant
//! and cost center (`/v1/spend`), probes, Prometheus metrics and the OpenAPI document. API keys map
//! callers to tenants; budgets and the plan cache live in the engine, so every replica enforces
//! them identically.
//!
//! Key decisions: the server holds no task state (everything is in the `Store` behind the engine),
//! so replicas are interchangeable; [`app`] builds the whole router from a state value, so tests
//! drive it with `tower::ServiceExt::oneshot` and no socket; every route is listed in one function
//! (`router::table`), which is where new routes go, and [`route_table`] reads that same list.

mod auth;
mod dashboard;
mod dead_letters;
mod error;
mod extract;
mod health;
mod idempotency;
pub mod metrics;
mod openai;
mod openapi;
mod plan_exec;
pub mod rate_limit;
mod redact;
mod router;
mod scaling;
mod settings;
mod spend;
mod spend_export;
mod state;
mod task_changes;
mod task_list;
mod tasks;
pub mod telemetry;
mod tools;
mod views;
pub mod worker_metrics;

pub use auth::{COST_CENTER, Caller, is_cost_center_name};
pub use error::{ApiError, ErrorBody, ErrorDetail};
pub use extract::{ApiJson, REQUEST_ID, RequestId};
pub use idempotency::IDEMPOTENCY_KEY;
pub use openapi::openapi_json;
pub use router::{MAX_URI_BYTES, app, route_table, routes, serve};
pub use settings::{ApiKeyEntry, DEFAULT_COST_CENTER, ServerSettings, parse_sha256};
pub use state::AppState;
pub use views::*;
