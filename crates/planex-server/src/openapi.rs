//! The OpenAPI 3 document of the API, generated from the handlers' annotations and the body types
//! (utoipa), served at `/openapi.json`.
//!
//! Key decision: the document is derived from the code that serves the routes, so it cannot drift
//! from them; a test holds `route_table` (the router's own list) against it, and validates it
//! and real responses with openapi-spec-validator. The errors every route can give whatever its
//! handler does (400 and 413 from the body checks, 414 from the head check) are added to every
//! operation here ([`CommonErrors`]), so no handler has to repeat them.

use crate::dashboard;
use crate::dead_letters::{self, DeadLetterList, DeadLetterView, ReplayView};
use crate::error::{ErrorBody, ErrorDetail};
use crate::openai::{ChatCompletionRequest, ChatMessageIn, Stop, StreamOptions};
use crate::spend_export::{self, ExportRow, SpendExport};
use crate::task_changes;
use crate::task_list::{self, TaskList, TaskListItem};
use crate::tools::{self, ToolArgView, ToolList, ToolView};
use crate::views::*;
use crate::{health, openai, plan_exec, scaling, spend, tasks};
use axum::http::header;
use axum::response::IntoResponse;
use planex_engine::scaling::{ScalingAction, ScalingReport, ScalingRule, Thresholds, TierDecision};
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
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

/// Adds the errors of the request checks (docs/ARCHITECTURE.md, API) to every operation that does
/// not document them itself: 414 everywhere; 400 and 413 where there is a request body.
struct CommonErrors;

impl CommonErrors {
    fn add(operation: &mut Operation, status: &str, description: &str) {
        let error = ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("ErrorBody")))
            .build();
        operation
            .responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| {
                RefOr::T(
                    ResponseBuilder::new()
                        .description(description)
                        .content("application/json", error)
                        .build(),
                )
            });
    }
}

impl Modify for CommonErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for operation in [&mut item.get, &mut item.post].into_iter().flatten() {
                Self::add(
                    operation,
                    "414",
                    "The request target is over 8 KiB (`uri_too_long`)",
                );
                if operation.request_body.is_some() {
                    Self::add(
                        operation,
                        "400",
                        "The body is not JSON of the expected shape (`invalid_request`)",
                    );
                    Self::add(
                        operation,
                        "413",
                        "The body (or its declared `Content-Length`) is over `[server] body_limit_bytes` (`payload_too_large`)",
                    );
                }
            }
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
        tasks::submit, task_list::list_tasks, task_changes::follow, tasks::get_task, tasks::events, tasks::cancel,
        dead_letters::list, dead_letters::show, dead_letters::purge, dead_letters::replay, plan_exec::plan,
        plan_exec::execute, tools::list_tools,
        openai::chat_completions, openai::models::list_models, openai::models::retrieve_model, spend::spend, spend_export::export, scaling::scaling, health::healthz,
        health::readyz, health::metrics, serve_openapi, dashboard::index, dashboard::ui_asset,
    ),
    components(schemas(
        SubmitTask, Accepted, TaskView, StepView, CostView, CostLine, PlanRequest, PlanView,
        ExecuteRequest, ExecuteView, SpendView, SpendLine, ErrorBody, ErrorDetail,
        ChatCompletionRequest, ChatMessageIn, Stop, StreamOptions, ScalingReport, TierDecision, Thresholds,
        ScalingRule, ScalingAction, TaskList, TaskListItem, ToolList, ToolView, ToolArgView,
        DeadLetterView, DeadLetterList, ReplayView, SpendExport, ExportRow,
    )),
    modifiers(&BearerAuth, &CommonErrors),
    tags(
        (name = "tasks", description = "Submit and follow tasks"),
        (name = "dead-letters", description = "Steps that failed for good: list, replay, purge"),
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

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "ops", responses(
    (status = 200, description = "The OpenAPI 3.1 document of the API", content_type = "application/json", body = Object),
))]
pub async fn serve_openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], openapi_json())
}
