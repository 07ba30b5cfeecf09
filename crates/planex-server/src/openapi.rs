//! The OpenAPI 3 document of the API, generated from the handlers' annotations and the body types
//! (utoipa), served at `/openapi.json`.
//!
//! Key decision: the document is derived from the code that serves the routes, so it cannot drift
//! from them; a test checks that every route of the router appears in it.

use crate::error::{ErrorBody, ErrorDetail};
use crate::openai::{ChatCompletionRequest, ChatMessageIn};
use crate::views::*;
use crate::{health, openai, plan_exec, spend, tasks};
use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "bearer",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "planex",
        description = "Plan once on a big model, execute every step on small ones. Errors are `{error: {type, message, details}}`; send `Authorization: Bearer <key>` when auth is on, `X-Cost-Center` to pick a cost center the key may charge (else 403), `X-Request-ID` to trace a request into the model servers; `task_type` (body of `POST /v1/tasks`, or `metadata.task_type` of `/v1/chat/completions`) names the task type whose drift statistics and guards apply."
    ),
    paths(
        tasks::submit, tasks::get_task, tasks::events, tasks::cancel, plan_exec::plan,
        plan_exec::execute,
        openai::chat_completions, spend::spend, health::healthz, health::readyz, health::metrics,
    ),
    components(schemas(
        SubmitTask, Accepted, TaskView, StepView, CostView, CostLine, PlanRequest, PlanView,
        ExecuteRequest, ExecuteView, SpendView, SpendLine, ErrorBody, ErrorDetail,
        ChatCompletionRequest, ChatMessageIn,
    )),
    modifiers(&BearerAuth),
    tags(
        (name = "tasks", description = "Submit and follow tasks"),
        (name = "plan", description = "Plan only, or run one step"),
        (name = "openai", description = "OpenAI-compatible agent endpoint"),
        (name = "spend", description = "Spend and budgets"),
        (name = "ops", description = "Probes and metrics"),
    )
)]
struct ApiDoc;

/// The OpenAPI document as JSON text.
pub fn openapi_json() -> String {
    ApiDoc::openapi().to_pretty_json().unwrap_or_else(|e| {
        format!("{{\"error\": \"could not render the OpenAPI document: {e}\"}}")
    })
}

/// `GET /openapi.json`.
pub async fn serve_openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], openapi_json())
}
