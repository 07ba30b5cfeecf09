//! Streaming answers as OpenAI server-sent events: a role chunk after TTFT, content chunks of a
//! few tokens paced by tokens-per-second, a `finish_reason: "stop"` chunk, the optional usage
//! chunk (`choices: []`), then `data: [DONE]`.
//!
//! A cut-off answer (`--truncate-rate`, `#sim:truncate`) stops after about half its deltas and
//! ends the body with an error, so the connection breaks with no finish chunk, no usage and no
//! `[DONE]`, as when a model server dies mid-answer.
//!
//! Key decision: a spawned task writes the chunks into a channel that is the response body and
//! owns the concurrency slot, so the request counts as in flight until its last chunk, and a
//! client that goes away ends the task at the next send. The answer is counted (and entered in
//! the call ledger) as whole once its usage is handed on, before `[DONE]`, or as not whole when
//! it stops early. An unpaced answer (`tokens_per_second = 0`) is the same events in one write.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::answer::{Meta, Usage, token_time};
use crate::state::{SimState, Slot};
use crate::tokens;
use crate::tool_calls::SimCall;

/// Tokens per content chunk.
const TOKENS_PER_CHUNK: usize = tokens::STREAM_PIECE_TOKENS;

fn chunk(meta: &Meta, choices: Value, usage: Option<Value>, include_usage: bool) -> Bytes {
    let mut value = json!({
        "id": meta.id,
        "object": "chat.completion.chunk",
        "created": meta.created,
        "model": meta.model,
        "system_fingerprint": "planex-sim",
        "choices": choices,
    });
    if include_usage {
        value["usage"] = usage.unwrap_or(Value::Null);
    }
    Bytes::from(format!("data: {value}\n\n"))
}

fn delta(delta: Value, finish: Option<&str>) -> Value {
    json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}])
}

/// What a streamed answer carries.
pub(crate) enum Answer {
    /// Text content.
    Text(String),
    /// Tool calls: each call's id and name in its first piece, its arguments in pieces after.
    ToolCalls(Vec<SimCall>),
}

impl Answer {
    /// The answer's deltas after the role chunk, each with the tokens it counts for pacing.
    fn deltas(&self) -> Vec<(Value, u32)> {
        match self {
            Answer::Text(content) => tokens::pieces(content, TOKENS_PER_CHUNK)
                .iter()
                .map(|(piece, count)| (json!({"content": piece}), *count))
                .collect(),
            Answer::ToolCalls(calls) => {
                let mut deltas = Vec::new();
                for (index, call) in calls.iter().enumerate() {
                    let head = json!({"tool_calls": [{"index": index, "id": call.id, "type": "function",
                        "function": {"name": call.name, "arguments": ""}}]});
                    deltas.push((head, tokens::count(&call.name)));
                    for (piece, count) in tokens::pieces(&call.arguments, TOKENS_PER_CHUNK).iter() {
                        let count = *count;
                        let delta = json!({"tool_calls": [{"index": index, "function": {"arguments": piece}}]});
                        deltas.push((delta, count));
                    }
                }
                deltas
            }
        }
    }

    /// The text its completion tokens are counted from.
    pub(crate) fn counted_text(&self) -> String {
        match self {
            Answer::Text(content) => content.clone(),
            Answer::ToolCalls(calls) => crate::tool_calls::counted_text(calls),
        }
    }

    /// The assistant message of a whole (non-streamed) answer.
    pub(crate) fn message(&self) -> Value {
        match self {
            Answer::Text(content) => json!({"role": "assistant", "content": content}),
            Answer::ToolCalls(calls) => crate::tool_calls::message(calls),
        }
    }

    /// Its `finish_reason`.
    pub(crate) fn finish_reason(&self) -> &'static str {
        match self {
            Answer::Text(_) => "stop",
            Answer::ToolCalls(_) => "tool_calls",
        }
    }
}

/// How a streamed answer is written.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Shape {
    /// Whether the client asked for the final usage chunk.
    pub(crate) include_usage: bool,
    /// Whether the answer is cut off part-way.
    pub(crate) cut_off: bool,
}

/// The error that ends a cut-off body: the server closes the connection mid-answer.
fn cut_off_error() -> std::io::Error {
    std::io::Error::other("answer cut off part-way (simulated fault)")
}

/// A 200 whose JSON body breaks off after half its bytes (a whole answer cut off part-way): the
/// head and that half are written, and the connection breaks a moment later.
pub(crate) fn cut_off_body(mut json: Vec<u8>) -> Response {
    json.truncate(json.len() / 2);
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(1);
    tokio::spawn(async move {
        if tx.send(Ok(Bytes::from(json))).await.is_ok() {
            // An error in the same poll would discard the unflushed head too: the server dies
            // just after it began answering.
            tokio::time::sleep(CUT_OFF_AFTER).await;
            let _ = tx.send(Err(cut_off_error())).await;
        }
    });
    let mut response = Response::new(Body::from_stream(ReceiverStream::new(rx)));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// How long after its last bytes a cut-off answer's connection breaks.
const CUT_OFF_AFTER: std::time::Duration = std::time::Duration::from_millis(5);

/// Builds the SSE response and spawns the task that writes it.
pub(crate) fn respond(
    state: SimState,
    slot: Slot,
    meta: Meta,
    body: Answer,
    usage: Usage,
    shape: Shape,
) -> Response {
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    tokio::spawn(async move {
        let _slot = slot;
        write_chunks(&state, &meta, &body, usage, shape, &tx).await;
    });
    let mut response = Response::new(Body::from_stream(ReceiverStream::new(rx)));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// Writes the answer's chunks, paced, and counts the answer: whole once its usage chunk (or,
/// without one, its finish chunk) is handed on, before `[DONE]` (a client may stop reading at
/// `[DONE]` and look at the counters at once); not whole when it was cut off or its client went
/// away first.
async fn write_chunks(
    state: &SimState,
    meta: &Meta,
    body: &Answer,
    usage: Usage,
    shape: Shape,
    tx: &mpsc::Sender<Result<Bytes, std::io::Error>>,
) {
    let cut = || state.add_answer(meta, usage, false);
    let include_usage = shape.include_usage;
    let config = state.config().clone();
    let start = tokio::time::Instant::now();
    state
        .sleep(std::time::Duration::from_millis(config.ttft_ms))
        .await;
    let first = delta(json!({"role": "assistant", "content": ""}), None);
    if config.tokens_per_second <= 0.0 && !shape.cut_off {
        // Nothing to pace: the whole answer is due now, so it goes as one write.
        return write_at_once(state, meta, body, usage, include_usage, first, tx).await;
    }
    if tx
        .send(Ok(chunk(meta, first, None, include_usage)))
        .await
        .is_err()
    {
        return cut();
    }
    let paced_from = tokio::time::Instant::now().max(start);
    let deltas = body.deltas();
    // A cut-off answer keeps its first half (at least one delta when it has any).
    let kept = if shape.cut_off {
        deltas.len().div_ceil(2)
    } else {
        deltas.len()
    };
    let mut emitted: u32 = 0;
    for (piece, count) in deltas.into_iter().take(kept) {
        emitted = emitted.saturating_add(count);
        let due = paced_from + token_time(emitted, config.tokens_per_second);
        state.sleep_until(due).await;
        let bytes = chunk(meta, delta(piece, None), None, include_usage);
        if tx.send(Ok(bytes)).await.is_err() {
            return cut();
        }
    }
    if shape.cut_off {
        tokio::time::sleep(CUT_OFF_AFTER).await;
        let _ = tx.send(Err(cut_off_error())).await;
        return cut();
    }
    let mut tail = vec![finish_chunk(meta, body, include_usage)];
    if include_usage {
        tail.push(usage_chunk(meta, usage));
    }
    for bytes in tail {
        if tx.send(Ok(bytes)).await.is_err() {
            return cut();
        }
    }
    state.add_answer(meta, usage, true);
    let _ = tx.send(Ok(Bytes::from_static(b"data: [DONE]\n\n"))).await;
}

fn finish_chunk(meta: &Meta, body: &Answer, include_usage: bool) -> Bytes {
    chunk(
        meta,
        delta(json!({}), Some(body.finish_reason())),
        None,
        include_usage,
    )
}

fn usage_chunk(meta: &Meta, usage: Usage) -> Bytes {
    chunk(meta, json!([]), Some(usage.to_json()), true)
}

/// An unpaced answer (`tokens_per_second = 0`) as one write: the role chunk, every delta, the
/// finish and usage chunks and `[DONE]`, so the client gets one TCP write, not one per chunk
/// (the events and their order are those of a paced answer). The answer is counted whole once
/// the channel has room for it, before the write.
async fn write_at_once(
    state: &SimState,
    meta: &Meta,
    body: &Answer,
    usage: Usage,
    include_usage: bool,
    first: Value,
    tx: &mpsc::Sender<Result<Bytes, std::io::Error>>,
) {
    let mut all = Vec::with_capacity(4096);
    all.extend_from_slice(&chunk(meta, first, None, include_usage));
    for (piece, _) in body.deltas() {
        all.extend_from_slice(&chunk(meta, delta(piece, None), None, include_usage));
    }
    all.extend_from_slice(&finish_chunk(meta, body, include_usage));
    if include_usage {
        all.extend_from_slice(&usage_chunk(meta, usage));
    }
    all.extend_from_slice(b"data: [DONE]\n\n");
    let Ok(permit) = tx.reserve().await else {
        return state.add_answer(meta, usage, false);
    };
    state.add_answer(meta, usage, true);
    permit.send(Ok(Bytes::from(all)));
}
