//! OpenTelemetry export of planex's tracing spans over OTLP/HTTP (protobuf), built into every
//! binary and off until configured with the standard `OTEL_*` variables (docs/ARCHITECTURE.md §7).
//!
//! Key decisions:
//! - On only when `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT` is set,
//!   and not turned off by `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`. The SDK reads
//!   the rest itself: headers (`OTEL_EXPORTER_OTLP_HEADERS`), timeout, sampler
//!   (`OTEL_TRACES_SAMPLER`), batching (`OTEL_BSP_*`), resource (`OTEL_SERVICE_NAME`,
//!   `OTEL_RESOURCE_ATTRIBUTES`; the service name defaults to `planex`). A protocol other than
//!   `http/protobuf` is refused with a warning rather than sent where it cannot be read.
//! - The spans already carry the GenAI semantic-convention names (`otel.name` = `chat {model}`,
//!   `execute_tool {tool}`, `invoke_agent planex`; attributes `gen_ai.operation.name`,
//!   `gen_ai.request.model`, `gen_ai.usage.input_tokens`, …), which the tracing bridge turns into
//!   span names and attributes. The trace context crosses processes through the task's stored
//!   `traceparent` (planex-llm's `trace_context`).
//! - The layer has its own `info` filter, so `PLANEX_LOG` (the console) does not decide what is
//!   exported. Exported spans and events hold what the logs hold: no API keys, no endpoint keys,
//!   no prompt or answer text (the security tests check the logs; the OTLP test checks the export).

use tracing::Subscriber;
use tracing_subscriber::Layer;
use tracing_subscriber::registry::LookupSpan;

/// A boxed layer for the process's subscriber.
pub type BoxedLayer<S> = Box<dyn Layer<S> + Send + Sync>;

/// Flushes and stops the exporter when dropped (keep it alive until the process ends).
pub struct TelemetryGuard {
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(error) = provider.shutdown()
        {
            eprintln!("planex: could not flush OpenTelemetry spans: {error}");
        }
    }
}

/// What [`otlp_layer`] built: the layer (when export is on), the guard that flushes it, and a
/// warning for the caller to print (a setting that could not be honoured).
pub struct Telemetry<S> {
    /// The exporting layer, `None` when export is off.
    pub layer: Option<BoxedLayer<S>>,
    /// Keep alive until the process ends: dropping it flushes the spans.
    pub guard: TelemetryGuard,
    /// Why export is off although something asked for it, or what was ignored.
    pub warning: Option<String>,
}

/// Where, if anywhere, the environment asks spans to be exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportChoice {
    /// No endpoint set, or export turned off.
    Off,
    /// Export over OTLP/HTTP; the endpoint is read by the SDK from the environment.
    FromEnvironment,
    /// Asked for, but not possible: the reason.
    Refused(String),
}

/// Reads the `OTEL_*` variables through `var` (the process environment in [`otlp_layer`]).
pub fn export_choice(var: impl Fn(&str) -> Option<String>) -> ExportChoice {
    let set = |name: &str| var(name).filter(|v| !v.trim().is_empty());
    if set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_none()
        && set("OTEL_EXPORTER_OTLP_ENDPOINT").is_none()
    {
        return ExportChoice::Off;
    }
    if set("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
        return ExportChoice::Off;
    }
    if let Some(exporters) = set("OTEL_TRACES_EXPORTER") {
        // A comma-separated list, case-insensitive (the OpenTelemetry environment spec).
        let names: Vec<String> = exporters
            .split(',')
            .map(|name| name.trim().to_ascii_lowercase())
            .collect();
        if names.iter().any(|name| name == "none") {
            return ExportChoice::Off;
        }
        if !names.iter().any(|name| name == "otlp") {
            return ExportChoice::Refused(format!(
                "OTEL_TRACES_EXPORTER={exporters} names no exporter planex has (it exports traces over OTLP only): set it to otlp or none"
            ));
        }
    }
    let protocol =
        set("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").or_else(|| set("OTEL_EXPORTER_OTLP_PROTOCOL"));
    if let Some(protocol) = protocol
        && protocol.trim() != "http/protobuf"
    {
        return ExportChoice::Refused(format!(
            "OTLP protocol {protocol} is not supported: planex sends http/protobuf (a collector's port 4318, e.g. OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318); unset OTEL_EXPORTER_OTLP_PROTOCOL or set it to http/protobuf"
        ));
    }
    ExportChoice::FromEnvironment
}

/// The OTLP layer as the process environment asks for it (see the module docs).
pub fn otlp_layer<S>() -> Telemetry<S>
where
    S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    match export_choice(|name| std::env::var(name).ok()) {
        ExportChoice::Off => off(None),
        ExportChoice::Refused(why) => off(Some(format!("OpenTelemetry export is off: {why}"))),
        ExportChoice::FromEnvironment => start(None),
    }
}

/// As [`otlp_layer`], exporting to `endpoint` (the collector's base URL; `/v1/traces` is
/// appended) whatever the environment says.
pub fn otlp_layer_to<S>(endpoint: &str) -> Telemetry<S>
where
    S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    start(Some(format!(
        "{}/v1/traces",
        endpoint.trim_end_matches('/')
    )))
}

fn off<S>(warning: Option<String>) -> Telemetry<S> {
    Telemetry {
        layer: None,
        guard: TelemetryGuard { provider: None },
        warning,
    }
}

fn start<S>(traces_url: Option<String>) -> Telemetry<S>
where
    S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    match build(traces_url) {
        Ok((layer, provider)) => Telemetry {
            layer: Some(layer),
            guard: TelemetryGuard {
                provider: Some(provider),
            },
            warning: None,
        },
        Err(error) => off(Some(format!(
            "OpenTelemetry export is off: the OTLP exporter could not be built: {error}"
        ))),
    }
}

fn build<S>(
    traces_url: Option<String>,
) -> Result<(BoxedLayer<S>, opentelemetry_sdk::trace::SdkTracerProvider), String>
where
    S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::WithExportConfig;
    let mut exporter = opentelemetry_otlp::SpanExporter::builder().with_http();
    if let Some(url) = traces_url {
        exporter = exporter.with_endpoint(url);
    }
    let exporter = exporter.build().map_err(|e| e.to_string())?;
    let mut resource = opentelemetry_sdk::Resource::builder();
    let named = |var: &str| std::env::var(var).is_ok_and(|v| !v.trim().is_empty());
    let named_in_attributes = std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|a| {
        a.split(',')
            .any(|kv| kv.trim().starts_with("service.name="))
    });
    if !named("OTEL_SERVICE_NAME") && !named_in_attributes {
        resource = resource.with_service_name("planex");
    }
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    let tracer = provider.tracer("planex");
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_filter(tracing_subscriber::filter::LevelFilter::INFO);
    Ok((Box::new(layer), provider))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn choice(vars: &[(&str, &str)]) -> ExportChoice {
        export_choice(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn export_is_off_until_an_endpoint_is_set_and_honours_the_off_switches() {
        assert_eq!(choice(&[]), ExportChoice::Off);
        assert_eq!(
            choice(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "  ")]),
            ExportChoice::Off
        );
        let on = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318");
        assert_eq!(choice(&[on]), ExportChoice::FromEnvironment);
        assert_eq!(
            choice(&[(
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://c:4318/v1/traces"
            )]),
            ExportChoice::FromEnvironment
        );
        assert_eq!(
            choice(&[on, ("OTEL_SDK_DISABLED", "TRUE")]),
            ExportChoice::Off
        );
        assert_eq!(
            choice(&[on, ("OTEL_TRACES_EXPORTER", "none")]),
            ExportChoice::Off
        );
        assert_eq!(
            choice(&[on, ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")]),
            ExportChoice::FromEnvironment
        );
        assert_eq!(
            choice(&[on, ("OTEL_TRACES_EXPORTER", "console, OTLP")]),
            ExportChoice::FromEnvironment,
            "a list, case-insensitive"
        );
        assert_eq!(
            choice(&[on, ("OTEL_TRACES_EXPORTER", "None")]),
            ExportChoice::Off
        );
    }

    #[test]
    fn an_unsupported_protocol_or_exporter_is_refused_with_what_to_set() {
        let on = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317");
        let ExportChoice::Refused(why) = choice(&[on, ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")])
        else {
            panic!("grpc accepted");
        };
        assert!(
            why.contains("grpc") && why.contains("http/protobuf"),
            "{why}"
        );
        let ExportChoice::Refused(why) = choice(&[on, ("OTEL_TRACES_EXPORTER", "zipkin")]) else {
            panic!("zipkin accepted");
        };
        assert!(why.contains("zipkin") && why.contains("otlp"), "{why}");
        assert!(matches!(
            choice(&[on, ("OTEL_TRACES_EXPORTER", "zipkin,console")]),
            ExportChoice::Refused(_)
        ));
    }
}
