//! `/metrics` after a known run: every docs/ARCHITECTURE.md §7 metric is exposed under its name, histograms
//! have buckets, and the values moved by what the run did. One test in its own binary, because the
//! Prometheus recorder is process-wide.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::http::{Method, StatusCode};
use common::{Harness, Options, lookups};
use planex_core::Decimal;
use serde_json::json;
use std::collections::BTreeMap;

/// Parses the text exposition format: `name{labels} value` per sample line. Panics on a line that
/// is not a comment and not a valid sample, so the format itself is checked.
fn parse(text: &str) -> BTreeMap<String, f64> {
    let mut samples = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let split = line
            .rfind(' ')
            .unwrap_or_else(|| panic!("no value in {line:?}"));
        let (series, value) = line.split_at(split);
        let value: f64 = match value.trim() {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name in {line:?}"
        );
        if name_end < series.len() {
            assert!(series.ends_with('}'), "unterminated labels in {line:?}");
        }
        samples.insert(series.to_owned(), value);
    }
    samples
}

fn get(samples: &BTreeMap<String, f64>, series: &str) -> f64 {
    samples.get(series).copied().unwrap_or(0.0)
}

fn sum_of(samples: &BTreeMap<String, f64>, prefix: &str) -> f64 {
    samples
        .iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .map(|(_, v)| v)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_as_expected_after_a_known_run() {
    // Steps are estimated at 100,000 tokens until observed, so a budget of two and a half of
    // them is over for four steps and (as two planner calls cost far less) worth a re-plan.
    let h = Harness::start(Options {
        metrics: true,
        summarize_tier: "planner",
        workload: vec![("Four lookups".into(), vec![lookups(4)])],
        budget: planex_engine::BudgetSettings {
            default_tokens_per_step: 100_000,
            ..planex_engine::BudgetSettings::default()
        },
        ..Options::default()
    })
    .await;
    let scrape = || async {
        let (status, headers, body) = h.call(Method::GET, "/metrics", None, &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain")
        );
        let text = body.as_str().unwrap().to_owned();
        (parse(&text), text)
    };
    let (before, text) = scrape().await;
    for name in [
        "plan_cache_hits_total",
        "budget_replans_total",
        "step_retries_total",
    ] {
        assert!(
            before.contains_key(name),
            "{name} is exposed from the start:\n{text}"
        );
    }
    // A known run: one budget re-plan ending in a rejection (first, while step estimates are the
    // defaults), one task of three steps (planned, then cached, with no budget), and a request
    // that fails validation.
    let step = h.engine.budget().unwrap().step_estimate(
        "lookup",
        h.engine.executor().models.get("executor").unwrap().price(),
    );
    let budget = (step * Decimal::from(5) / Decimal::from(2)).round_dp(9);
    let (s, _, _) = h
        .call(
            Method::POST,
            // `?wait=true`: a refusal of the plan is the answer (without it the task is accepted
            // first and ends `rejected`).
            "/v1/tasks?wait=true",
            Some(json!({"task": "Four lookups", "budget_usd": budget.to_string()})),
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    let task = json!({"task": "Known metrics task", "max_subtasks": 3, "budget_usd": "0"});
    let (s, _, first) = h
        .call(Method::POST, "/v1/tasks?wait=true", Some(task.clone()), &[])
        .await;
    assert_eq!(s, StatusCode::OK, "{first}");
    let (s, _, _) = h
        .call(Method::POST, "/v1/tasks?wait=true", Some(task), &[])
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) = h
        .call(
            Method::POST,
            "/v1/execute",
            Some(json!({"tool_name": "lookup", "args": {}})),
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (after, text) = scrape().await;
    let delta = |series: &str| get(&after, series) - get(&before, series);

    let steps = first["steps"].as_array().unwrap().len() as f64;
    assert_eq!(delta("plan_cache_hits_total"), 1.0, "{text}");
    assert_eq!(delta("budget_replans_total"), 1.0);
    assert_eq!(delta("budget_rejections_total{budget=\"task\"}"), 1.0);
    // Workers record a finished task right after its completion event (which woke the waiter),
    // so the last task may not be counted yet; the first surely is, and both have `steps` steps.
    let finished = delta("subtasks_per_task_bucket{le=\"+Inf\"}");
    assert!((1.0..=2.0).contains(&finished), "{text}");
    assert_eq!(delta("subtasks_per_task_sum"), finished * steps);
    assert!(delta("task_cost_usd_count") >= 1.0);
    assert_eq!(
        delta("subtasks_per_task_bucket{le=\"2\"}"),
        0.0,
        "three-step tasks"
    );
    assert!(delta("task_cost_usd_sum") > 0.0);
    assert!(sum_of(&after, "planner_token_total{stage=\"plan\"}") > 0.0);
    assert!(sum_of(&after, "executor_token_total{") > 0.0);
    assert!(
        sum_of(&after, "ttft_seconds_bucket{") > 0.0,
        "histograms have buckets"
    );
    assert!(sum_of(&after, "step_duration_seconds_bucket{") > 0.0);
    assert!(
        after.contains_key("queue_depth{tier=\"executor\"}"),
        "{text}"
    );
    assert_eq!(get(&after, "queue_depth{tier=\"executor\"}"), 0.0);
    assert!(
        !text.contains("quantile="),
        "no summaries: histograms need explicit buckets"
    );
    let tasks_ok = "http_requests_total{method=\"POST\",route=\"/v1/tasks\",status=\"200\"}";
    assert_eq!(delta(tasks_ok), 2.0, "{text}");
    assert_eq!(
        delta("http_requests_total{method=\"POST\",route=\"/v1/tasks\",status=\"429\"}"),
        1.0
    );
    assert_eq!(
        delta("http_requests_total{method=\"POST\",route=\"/v1/execute\",status=\"422\"}"),
        1.0
    );
    assert!(
        get(
            &after,
            "http_request_duration_seconds_count{method=\"POST\",route=\"/v1/tasks\"}"
        ) >= 3.0
    );
    // Routes are labelled by template, never by raw path.
    let id = first["task_id"].as_str().unwrap();
    h.call(Method::GET, &format!("/v1/tasks/{id}"), None, &[])
        .await;
    let (last, text) = scrape().await;
    assert!(!text.contains(id));
    assert_eq!(
        get(
            &last,
            "http_requests_total{method=\"GET\",route=\"/v1/tasks/{id}\",status=\"200\"}"
        ),
        1.0
    );
    h.stop().await;
}
