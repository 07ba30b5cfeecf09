//! A real OTLP/HTTP trace receiver on a loopback port: `POST /v1/traces` bodies are decoded as
//! protobuf `ExportTraceServiceRequest`s (the `opentelemetry-proto` messages) into
//! [`ReceivedSpan`]s, and the raw bodies are kept too, so a test can check what left a process
//! byte for byte (no secret in any of it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test harness.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use prost::Message;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// One span as the receiver got it; ids in lowercase hex, attributes as text.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedSpan {
    /// `service.name` of the resource that sent it.
    pub service: String,
    /// The span's name.
    pub name: String,
    /// 32 hex digits.
    pub trace_id: String,
    /// 16 hex digits.
    pub span_id: String,
    /// 16 hex digits, empty for a root span.
    pub parent_span_id: String,
    /// Attributes, values rendered as text (strings as they are, numbers in decimal).
    pub attributes: BTreeMap<String, String>,
}

impl ReceivedSpan {
    /// Attribute `key`, if set.
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

#[derive(Default)]
struct Received {
    spans: Mutex<(Vec<ReceivedSpan>, Vec<u8>)>,
    arrived: Notify,
}

/// The receiver; it stops when dropped.
pub struct OtlpReceiver {
    url: String,
    received: Arc<Received>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn text(value: &Option<AnyValue>) -> String {
    match value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn attributes(list: &[KeyValue]) -> BTreeMap<String, String> {
    list.iter()
        .map(|kv| (kv.key.clone(), text(&kv.value)))
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn traces(State(received): State<Arc<Received>>, body: Bytes) -> StatusCode {
    let Ok(request) = ExportTraceServiceRequest::decode(body.as_ref()) else {
        return StatusCode::BAD_REQUEST;
    };
    let mut spans = Vec::new();
    for resource in &request.resource_spans {
        let service = resource
            .resource
            .as_ref()
            .map(|r| attributes(&r.attributes))
            .and_then(|a| a.get("service.name").cloned())
            .unwrap_or_default();
        for scope in &resource.scope_spans {
            for span in &scope.spans {
                spans.push(ReceivedSpan {
                    service: service.clone(),
                    name: span.name.clone(),
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    attributes: attributes(&span.attributes),
                });
            }
        }
    }
    {
        let mut kept = received.spans.lock().unwrap();
        kept.0.extend(spans);
        kept.1.extend_from_slice(&body);
    }
    received.arrived.notify_waiters();
    StatusCode::OK
}

impl OtlpReceiver {
    /// Listens on 127.0.0.1 on a free port.
    pub async fn start() -> OtlpReceiver {
        let received = Arc::new(Received::default());
        let app = axum::Router::new()
            .route("/v1/traces", post(traces))
            .with_state(received.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        OtlpReceiver {
            url,
            received,
            server,
        }
    }

    /// The collector base URL (`http://127.0.0.1:PORT`), for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.received.spans.lock().unwrap().0.clone()
    }

    /// Every request body received so far, concatenated.
    pub fn raw(&self) -> Vec<u8> {
        self.received.spans.lock().unwrap().1.clone()
    }

    /// Waits (woken by each export, never polling on a timer) until `done` holds for the spans
    /// received, and returns them; panics after `timeout` with what had arrived.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        what: &str,
        done: impl Fn(&[ReceivedSpan]) -> bool,
    ) -> Vec<ReceivedSpan> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let arrived = self.received.arrived.notified();
            let spans = self.spans();
            if done(&spans) {
                return spans;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                let names: Vec<String> = spans
                    .iter()
                    .map(|s| format!("{} ({})", s.name, s.service))
                    .collect();
                panic!(
                    "no {what} within {timeout:?}; {} spans arrived: {names:?}",
                    spans.len()
                );
            }
        }
    }
}
