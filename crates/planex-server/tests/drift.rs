//! Task types and the drift guard through the API: `task_type` reaches the task record, an invalid
//! one is a 400, a drifting type is planned with a stricter `max_subtasks`, and the `task_type_*`
//! gauges and `plan_drift_total` appear on `/metrics`. One test binary of its own, because the
//! Prometheus recorder is process-wide.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::http::{Method, StatusCode};
use common::{Harness, Options};
use planex_engine::{ConfiguredBaseline, DriftSettings};
use serde_json::json;

/// The value of the sample line `series` on a `/metrics` page, if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_types_reach_records_and_drift_tightens_plans_and_shows_on_metrics() {
    let mut drift = DriftSettings {
        window_tasks: 10,
        min_window_tasks: 2,
        ..DriftSettings::default()
    };
    drift.task_types.insert(
        "wide".into(),
        ConfiguredBaseline {
            steps: Some(1.0),
            cost_usd: Some("0.000001".parse().unwrap()),
        },
    );
    let h = Harness::start(Options {
        metrics: true,
        drift: Some(drift),
        ..Options::default()
    })
    .await;

    // Invalid task types are refused before anything runs.
    for bad in ["a b", "x{y}", ""] {
        let (status, _, body) = h
            .call(
                Method::POST,
                "/v1/tasks",
                Some(json!({"task": "Survey GPU prices", "task_type": bad})),
                &[],
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad:?}: {body}");
        assert!(body.to_string().contains("task_type"), "{body}");
    }
    let (status, _, body) = h
        .call(
            Method::POST,
            "/v1/chat/completions",
            Some(json!({"model": "planex", "messages": [{"role": "user", "content": "Survey GPU prices"}],
                "metadata": {"task_type": "bad type"}})),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(h.planner_requests(), 0, "no refused request was planned");

    // Two tasks of type `wide`: the simulator plans 3 to 10 steps, over twice the baseline of 1.
    for task in [
        "Compare H200 and L40S clouds",
        "Survey vector databases for RAG",
    ] {
        let (status, _, view) = h
            .call(
                Method::POST,
                "/v1/tasks?wait=true",
                Some(json!({"task": task, "task_type": "wide"})),
                &[],
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{view}");
        assert_eq!(view["task_type"], "wide");
        assert!(view["steps"].as_array().unwrap().len() >= 3, "{view}");
        let id = view["task_id"].as_str().unwrap();
        let (_, _, again) = h
            .call(Method::GET, &format!("/v1/tasks/{id}"), None, &[])
            .await;
        assert_eq!(again["task_type"], "wide");
    }
    // Now the type drifts: the next task is planned with the baseline's one step.
    let (status, _, view) = h
        .call(
            Method::POST,
            "/v1/tasks?wait=true",
            Some(
                json!({"task": "Rank GPU clouds by price", "task_type": "wide", "max_subtasks": 8}),
            ),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["steps"].as_array().unwrap().len(), 1, "{view}");
    // A task without a type is `default`, and the OpenAI endpoint reads metadata.task_type.
    let (status, _, view) = h
        .call(
            Method::POST,
            "/v1/tasks?wait=true",
            Some(json!({"task": "Rank GPU clouds by price"})),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["task_type"], "default");
    let (status, _, body) = h
        .call(
            Method::POST,
            "/v1/chat/completions",
            Some(json!({"model": "planex", "messages": [{"role": "user", "content": "Summarize GPU news"}],
                "metadata": {"task_type": "chat"}})),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (status, _, page) = h.call(Method::GET, "/metrics", None, &[]).await;
    assert_eq!(status, StatusCode::OK);
    let text = page.as_str().unwrap();
    let wide = |name: &str| sample(text, &format!("{name}{{task_type=\"wide\"}}"));
    assert_eq!(wide("plan_drift_total"), Some(1.0), "{text}");
    assert_eq!(wide("task_type_baseline_steps"), Some(1.0), "{text}");
    assert_eq!(
        wide("task_type_baseline_cost_usd"),
        Some(0.000001),
        "{text}"
    );
    assert!(wide("task_type_steps_p95").unwrap() >= 3.0, "{text}");
    assert!(wide("task_type_cost_usd_mean").unwrap() > 0.0, "{text}");
    assert_eq!(wide("task_type_recent_tasks"), Some(3.0), "{text}");
    let recent = |t: &str| {
        sample(
            text,
            &format!("task_type_recent_tasks{{task_type=\"{t}\"}}"),
        )
    };
    assert_eq!(recent("default"), Some(1.0), "{text}");
    assert_eq!(recent("chat"), Some(1.0), "{text}");
    // Learning types have no baseline yet, so no baseline gauge that an alert could compare.
    assert_eq!(
        sample(text, "task_type_baseline_steps{task_type=\"chat\"}"),
        None
    );
    for name in [
        "# HELP task_type_steps_p95",
        "# HELP task_type_cost_usd_mean",
        "# HELP plan_drift_total",
    ] {
        assert!(text.contains(name), "{name} is described: {text}");
    }
    h.stop().await;
}

#[test]
fn openapi_documents_the_task_type_fields() {
    let doc: serde_json::Value = serde_json::from_str(&planex_server::openapi_json()).unwrap();
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["SubmitTask"]["properties"]["task_type"]["type"],
        json!(["string", "null"]),
        "{}",
        schemas["SubmitTask"]
    );
    assert!(schemas["TaskView"]["properties"]["task_type"].is_object());
    assert!(schemas["ChatCompletionRequest"]["properties"]["metadata"].is_object());
}
