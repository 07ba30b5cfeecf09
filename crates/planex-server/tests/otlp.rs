//! Spans reach a real OTLP/HTTP receiver (protobuf, decoded with `opentelemetry-proto`) with their
//! GenAI names and attributes, and a remote `traceparent` set as a span's parent puts it in the
//! caller's trace. (The end-to-end test across processes is `crates/planex/tests/traces.rs`.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use planex_testkit::otlp::OtlpReceiver;
use std::time::Duration;
use tracing_subscriber::layer::SubscriberExt;

const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_exported_with_genai_attributes_under_the_callers_trace() {
    let receiver = OtlpReceiver::start().await;
    let endpoint = receiver.url().to_owned();
    tokio::task::spawn_blocking(move || {
        let telemetry = planex_server::telemetry::otlp_layer_to(&endpoint);
        assert!(telemetry.warning.is_none(), "{:?}", telemetry.warning);
        let subscriber = tracing_subscriber::registry().with(telemetry.layer.unwrap());
        tracing::subscriber::with_default(subscriber, || {
            let request = tracing::info_span!("http_request");
            planex_llm::trace_context::set_remote_parent(
                &request,
                &format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01"),
                None,
            );
            request.in_scope(|| {
                let span = tracing::info_span!(
                    "chat",
                    otel.name = "chat sim-model",
                    gen_ai.operation.name = "chat",
                    gen_ai.request.model = "sim-model",
                    gen_ai.usage.input_tokens = 12u64
                );
                span.in_scope(|| {
                    let sent = planex_llm::trace_context::current_traceparent().unwrap();
                    assert!(sent.starts_with(&format!("00-{CALLER_TRACE}-")), "{sent}");
                    tracing::info!("inside");
                });
            });
        });
        drop(telemetry.guard);
    })
    .await
    .unwrap();
    let spans = receiver
        .wait_until(Duration::from_secs(10), "chat span", |spans| {
            spans.iter().any(|s| s.name == "chat sim-model")
        })
        .await;
    let chat = spans.iter().find(|s| s.name == "chat sim-model").unwrap();
    let request = spans.iter().find(|s| s.name == "http_request").unwrap();
    assert_eq!(chat.attr("gen_ai.operation.name"), Some("chat"));
    assert_eq!(chat.attr("gen_ai.request.model"), Some("sim-model"));
    assert_eq!(chat.attr("gen_ai.usage.input_tokens"), Some("12"));
    let service = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| "planex".into());
    assert_eq!(
        chat.service, service,
        "planex unless OTEL_SERVICE_NAME says otherwise"
    );
    assert_eq!(chat.trace_id, CALLER_TRACE);
    assert_eq!(chat.parent_span_id, request.span_id);
    assert_eq!(request.parent_span_id, CALLER_SPAN);
}
