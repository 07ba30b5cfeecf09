//! `POST /v1/chat/completions`: parse, route to planner or executor, inject faults, pace, and
//! answer (non-streaming here, streaming in `stream.rs`).
//!
//! Key decision: the body is parsed by hand (not axum's `Json` extractor) so every malformed
//! body gets a 400 in the OpenAI error shape; the model check, the role (and its schema check)
//! and role counting happen before the concurrency queue, fault draws and pacing after a slot is
//! held.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::json;

use crate::answer::{Meta, Usage, token_time};
use crate::content;
use crate::markers::Markers;
use crate::openai::{ApiError, ChatRequest};
use crate::rejection;
use crate::role;
use crate::state::{Counter, SimState};
use crate::stream;
use crate::text;
use crate::tokens;
use crate::tool_calls;

/// The chat-completions handler.
pub async fn chat_completions(
    State(state): State<SimState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state.bump(Counter::Requests);
    if let Err(e) = rejection::check_content_type(&headers) {
        return e.into_response();
    }
    let request: ChatRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => {
            return ApiError::bad_request(format!("invalid request body: {e}")).into_response();
        }
    };
    if request.messages.is_empty() {
        return ApiError::bad_request("`messages` must not be empty").into_response();
    }
    if request
        .temperature
        .is_some_and(|t| !(0.0..=2.0).contains(&t))
    {
        return ApiError::bad_request("`temperature` must be between 0 and 2").into_response();
    }
    let served = state.config().model.clone();
    if let Some(model) = request.model.as_deref().filter(|m| *m != served) {
        return ApiError::model_not_found(model).into_response();
    }
    let role = match role::classify(&request) {
        Ok(role) => role,
        Err(e) => return e.into_response(),
    };
    state.bump(if role.is_planner() {
        Counter::Planner
    } else {
        Counter::Executor
    });

    let Some(slot) = state.acquire().await else {
        return ApiError::injected(503).into_response();
    };
    let texts: Vec<String> = request.messages.iter().map(|m| m.text()).collect();
    let contents: Vec<&str> = texts.iter().map(String::as_str).collect();
    let markers = Markers::scan(contents.iter().copied());
    let decision = state.faults().for_chat(&markers, &text::sha_hex(&contents));
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
    let meta = Meta {
        id: format!("chatcmpl-sim-{:012x}", state.next_sequence()),
        created: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        model: served,
        traceparent: headers
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    };
    let calls = match tool_calls::decide(&request, &meta.id) {
        Ok(calls) => calls,
        Err(e) => return e.into_response(),
    };
    if let Some(calls) = calls {
        let calls = if decision.malformed {
            tool_calls::malformed(calls)
        } else {
            calls
        };
        let answer = stream::Answer::ToolCalls(calls);
        return respond(
            state,
            slot,
            meta,
            &request,
            &contents,
            answer,
            decision.truncate,
        )
        .await;
    }
    let answer = match content::build(
        &state,
        &request,
        &role,
        &contents,
        &markers,
        decision.malformed,
    ) {
        Ok(answer) => answer,
        Err(e) => return e.into_response(),
    };
    respond(
        state,
        slot,
        meta,
        &request,
        &contents,
        stream::Answer::Text(answer),
        decision.truncate,
    )
    .await
}

/// Answers `answer` (text or tool calls), whole or streamed, paced by its tokens; `cut_off`
/// breaks the connection after about half of it.
async fn respond(
    state: SimState,
    slot: crate::state::Slot,
    meta: Meta,
    request: &ChatRequest,
    contents: &[&str],
    answer: stream::Answer,
    cut_off: bool,
) -> Response {
    let usage = Usage {
        prompt_tokens: tokens::prompt_tokens(contents.iter().copied()),
        completion_tokens: tokens::count(&answer.counted_text()),
    };
    if request.stream {
        let shape = stream::Shape {
            include_usage: request.include_usage(),
            cut_off,
        };
        return stream::respond(state, slot, meta, answer, usage, shape);
    }
    // Counted when produced, before the simulated generation time: a client that goes away
    // meanwhile was still served the answer, as a real server would have generated it.
    state.add_answer(&meta, usage, !cut_off);
    let config = state.config();
    let delay = Duration::from_millis(config.ttft_ms)
        + token_time(usage.completion_tokens, config.tokens_per_second);
    state.sleep(delay).await;
    drop(slot);
    let body = json!({
        "id": meta.id,
        "object": "chat.completion",
        "created": meta.created,
        "model": meta.model,
        "system_fingerprint": "planex-sim",
        "choices": [{
            "index": 0,
            "message": answer.message(),
            "logprobs": null,
            "finish_reason": answer.finish_reason(),
        }],
        "usage": usage.to_json(),
    });
    if cut_off {
        return stream::cut_off_body(body.to_string().into_bytes());
    }
    (StatusCode::OK, Json(body)).into_response()
}
