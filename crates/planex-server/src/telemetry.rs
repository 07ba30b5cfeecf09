//! Optional OpenTelemetry export of planex's tracing spans over OTLP/HTTP.
//!
//! Key decisions: off by default twice over. The exporter is behind the `otlp` cargo feature (its
//! dependency tree, a second HTTP client and protobuf, is large), and even when built in it runs
//! only when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (the standard variable). The spans already carry
//! the GenAI semantic-convention names (`otel.name` = `chat {model}`, `execute_tool {tool}`,
//! `invoke_agent planex`; attributes `gen_ai.operation.name`, `gen_ai.request.model`,
//! `gen_ai.usage.input_tokens`, …), which the tracing bridge turns into span names and attributes.
//! The layer has its own `info` filter, so `PLANEX_LOG` (the console) does not decide what is
//! exported.

use tracing::Subscriber;
use tracing_subscriber::Layer;
use tracing_subscriber::registry::LookupSpan;

/// Flushes and stops the exporter when dropped (keep it alive until the process ends).
pub struct TelemetryGuard {
    #[cfg(feature = "otlp")]
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        #[cfg(feature = "otlp")]
        if let Some(provider) = self.provider.take()
            && let Err(error) = provider.shutdown()
        {
            eprintln!("planex: could not flush OpenTelemetry spans: {error}");
        }
    }
}

/// The OTLP layer when the `otlp` feature is built in and `OTEL_EXPORTER_OTLP_ENDPOINT` is set;
/// `None` otherwise. Problems are returned as a message for the caller to print.
#[allow(clippy::type_complexity)]
pub fn otlp_layer<S>() -> (
    Option<Box<dyn Layer<S> + Send + Sync>>,
    TelemetryGuard,
    Option<String>,
)
where
    S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    let endpoint = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
        .ok()
        .filter(|v| !v.trim().is_empty());
    otlp_layer_for(endpoint)
}

/// As [`otlp_layer`], with the endpoint given (`None`: no export).
#[allow(clippy::type_complexity)]
pub fn otlp_layer_for<S>(
    endpoint: Option<String>,
) -> (
    Option<Box<dyn Layer<S> + Send + Sync>>,
    TelemetryGuard,
    Option<String>,
)
where
    S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    #[cfg(feature = "otlp")]
    {
        let Some(endpoint) = endpoint else {
            return (None, TelemetryGuard { provider: None }, None);
        };
        match build(&endpoint) {
            Ok((layer, provider)) => (
                Some(layer),
                TelemetryGuard {
                    provider: Some(provider),
                },
                None,
            ),
            Err(error) => (
                None,
                TelemetryGuard { provider: None },
                Some(format!(
                    "OpenTelemetry export to {endpoint} is off: {error}"
                )),
            ),
        }
    }
    #[cfg(not(feature = "otlp"))]
    {
        let warning = endpoint.map(|e| {
            format!(
                "OTEL_EXPORTER_OTLP_ENDPOINT={e} is set, but this build has no OTLP exporter (build with --features otlp)"
            )
        });
        (None, TelemetryGuard {}, warning)
    }
}

#[cfg(feature = "otlp")]
#[allow(clippy::type_complexity)]
fn build<S>(
    endpoint: &str,
) -> Result<
    (
        Box<dyn Layer<S> + Send + Sync>,
        opentelemetry_sdk::trace::SdkTracerProvider,
    ),
    String,
>
where
    S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::WithExportConfig;
    let url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(url)
        .build()
        .map_err(|e| e.to_string())?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name("planex")
        .build();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build();
    let tracer = provider.tracer("planex");
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_filter(tracing_subscriber::filter::LevelFilter::INFO);
    Ok((Box::new(layer), provider))
}
