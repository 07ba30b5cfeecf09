//! With the `otlp` feature: spans reach an OTLP/HTTP receiver with their GenAI names and attributes.
//! (`cargo test -p planex-server --features otlp --test otlp`; without the feature this is empty.)
#![cfg(feature = "otlp")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::body::Bytes;
use axum::routing::post;
use tracing_subscriber::layer::SubscriberExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_exported_with_genai_attributes() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Bytes>();
    let app = axum::Router::new().route(
        "/v1/traces",
        post(move |body: Bytes| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(body);
                ""
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let endpoint = format!("http://{addr}");
    let exported = tokio::task::spawn_blocking(move || {
        let (layer, guard, warning) = planex_server::telemetry::otlp_layer_for(Some(endpoint));
        assert!(warning.is_none(), "{warning:?}");
        let subscriber = tracing_subscriber::registry().with(layer.unwrap());
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!(
                "chat",
                otel.name = "chat sim-model",
                gen_ai.operation.name = "chat",
                gen_ai.request.model = "sim-model",
                gen_ai.usage.input_tokens = 12u64
            );
            span.in_scope(|| tracing::info!("inside"));
        });
        drop(guard);
    });
    exported.await.unwrap();
    let body = tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
        .await
        .unwrap()
        .unwrap();
    let has = |needle: &str| body.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(has("chat sim-model"), "span name");
    assert!(has("gen_ai.operation.name") && has("gen_ai.request.model"));
    assert!(has("gen_ai.usage.input_tokens"));
    assert!(has("planex"), "service name");
}
