//! W3C trace context (`traceparent`, `tracestate`) of tracing spans: read from the current span
//! to send along (model calls, a task's stored context), and set as a span's parent when it
//! arrives (an API request's headers, a claimed step's lease). docs/ARCHITECTURE.md §7 (traces).
//!
//! Key decision: these work on the tracing spans through the OpenTelemetry bridge, so with no
//! OTLP exporter installed they do nothing at all (no context is read, none is sent, no parent is
//! set); planex then neither invents trace ids nor forwards ones it does not record.

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use std::collections::HashMap;
use tracing_opentelemetry::{OpenTelemetrySpanExt, SetParentError};

/// The `traceparent` header's name.
pub const TRACEPARENT: &str = "traceparent";
/// The `tracestate` header's name.
pub const TRACESTATE: &str = "tracestate";

/// The W3C headers (`traceparent`, and `tracestate` when there is one) of `span`'s trace
/// context; empty when the span is not recorded by an OpenTelemetry layer.
pub fn headers_of(span: &tracing::Span) -> Vec<(&'static str, String)> {
    let context = span.context();
    if !context.span().span_context().is_valid() {
        return Vec::new();
    }
    let mut carrier: HashMap<String, String> = HashMap::new();
    TraceContextPropagator::new().inject_context(&context, &mut carrier);
    [TRACEPARENT, TRACESTATE]
        .into_iter()
        .filter_map(|name| {
            carrier
                .remove(name)
                .filter(|v| !v.is_empty())
                .map(|v| (name, v))
        })
        .collect()
}

/// The `traceparent` of the current span (`None` when it is not recorded): what a task stores so
/// that its steps, run by other processes, join its trace.
pub fn current_traceparent() -> Option<String> {
    headers_of(&tracing::Span::current())
        .into_iter()
        .find(|(name, _)| *name == TRACEPARENT)
        .map(|(_, value)| value)
}

/// Makes `span` a child of the remote span that `traceparent` (and `tracestate`) names. Does
/// nothing when the header is malformed or no OpenTelemetry layer records `span`. Call it before
/// the span is first entered.
pub fn set_remote_parent(span: &tracing::Span, traceparent: &str, tracestate: Option<&str>) {
    let mut carrier: HashMap<String, String> = HashMap::new();
    carrier.insert(TRACEPARENT.to_owned(), traceparent.to_owned());
    if let Some(state) = tracestate {
        carrier.insert(TRACESTATE.to_owned(), state.to_owned());
    }
    let context = TraceContextPropagator::new().extract(&carrier);
    if !context.span().span_context().is_valid() {
        return;
    }
    match span.set_parent(context) {
        // Without an OpenTelemetry layer, or with the span filtered out, there is nothing to
        // parent: that is not an error.
        Ok(()) | Err(SetParentError::LayerNotFound | SetParentError::SpanDisabled) => {}
        // A span entered before its parent was set: a bug here, worth a line in a debug log.
        Err(error) => tracing::debug!(%error, "a span's remote parent could not be set"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_an_opentelemetry_layer_nothing_is_read_or_set() {
        let span = tracing::info_span!("unrecorded");
        assert!(headers_of(&span).is_empty());
        set_remote_parent(
            &span,
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            None,
        );
        assert!(headers_of(&span).is_empty());
        assert_eq!(span.in_scope(current_traceparent), None);
    }
}
