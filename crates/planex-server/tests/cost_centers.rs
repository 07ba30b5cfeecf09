//! Cost centers per API key, end to end through the router: a key charges only the cost centers its
//! entry allows (its own, plus `cost_centers`), whether named by `X-Cost-Center` or by the body's
//! `cost_center`; anything else is a 403 listing the allowed ones. With auth disabled any cost center
//! may be named. Model calls go over real HTTP to simulators.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::http::{Method, StatusCode};
use common::{Harness, Key, Options};
use serde_json::{Value, json};

const TASK: &str = "Compare two GPU clouds for a 70B model";

fn keys() -> Options {
    Options {
        keys: vec![
            // Own cost center `research` only (no `cost_centers`).
            Key {
                token: "key-plain",
                tenant: "acme",
                monthly_budget: None,
                cost_centers: &[],
            },
            // `research` plus an explicit list.
            Key {
                token: "key-listed",
                tenant: "acme",
                monthly_budget: None,
                cost_centers: &["ads", "sales"],
            },
        ],
        ..Options::default()
    }
}

/// Submits `TASK` with `key`, naming `header` in `X-Cost-Center` and `body` in the body's
/// `cost_center`; waits for the task when `wait`.
async fn submit(
    h: &Harness,
    key: Option<&str>,
    header: Option<&str>,
    body: Option<&str>,
    wait: bool,
) -> (StatusCode, Value) {
    let bearer = key.map(|k| format!("Bearer {k}"));
    let mut headers = Vec::new();
    if let Some(bearer) = &bearer {
        headers.push(("authorization", bearer.as_str()));
    }
    if let Some(cc) = header {
        headers.push(("x-cost-center", cc));
    }
    let mut payload = json!({"task": TASK, "max_subtasks": 2});
    if let Some(cc) = body {
        payload["cost_center"] = json!(cc);
    }
    let uri = if wait {
        "/v1/tasks?wait=true"
    } else {
        "/v1/tasks"
    };
    let (status, _, view) = h.call(Method::POST, uri, Some(payload), &headers).await;
    (status, view)
}

fn assert_forbidden(status: StatusCode, view: &Value, wanted: &str, allowed: &[&str]) {
    assert_eq!(status, StatusCode::FORBIDDEN, "{view}");
    assert_eq!(view["error"]["type"], "forbidden", "{view}");
    let message = view["error"]["message"].as_str().unwrap();
    assert!(message.contains(wanted), "{message}");
    for name in allowed {
        assert!(
            message.contains(name),
            "the message lists {name}: {message}"
        );
    }
    assert_eq!(view["error"]["details"]["cost_center"], wanted, "{view}");
    assert_eq!(
        view["error"]["details"]["allowed_cost_centers"],
        json!(allowed),
        "{view}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_may_not_charge_a_cost_center_it_does_not_own() {
    let h = Harness::start(keys()).await;
    let (s, view) = submit(&h, Some("key-plain"), Some("marketing"), None, false).await;
    assert_forbidden(s, &view, "marketing", &["research"]);
    let (s, view) = submit(&h, Some("key-plain"), None, Some("marketing"), false).await;
    assert_forbidden(s, &view, "marketing", &["research"]);
    // An allowed header does not make a foreign body cost center acceptable.
    let (s, view) = submit(&h, Some("key-plain"), Some("research"), Some("ads"), false).await;
    assert_forbidden(s, &view, "ads", &["research"]);
    // The other routes that charge read the header through the same check.
    let (s, _, view) = h
        .call(
            Method::POST,
            "/v1/plan",
            Some(json!({"task": TASK})),
            &[
                ("authorization", "Bearer key-plain"),
                ("x-cost-center", "marketing"),
            ],
        )
        .await;
    assert_forbidden(s, &view, "marketing", &["research"]);
    assert_eq!(
        h.planner_requests(),
        0,
        "a refused request makes no model call"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_charges_its_own_cost_center_by_header_body_or_default() {
    let h = Harness::start(keys()).await;
    let (s, view) = submit(&h, Some("key-plain"), None, None, true).await;
    assert_eq!(s, StatusCode::OK, "{view}");
    assert_eq!(view["cost"]["cost_center"], "research", "{view}");
    let (s, view) = submit(&h, Some("key-plain"), Some("research"), None, false).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{view}");
    let (s, view) = submit(&h, Some("key-plain"), None, Some("research"), true).await;
    assert_eq!(s, StatusCode::OK, "{view}");
    assert_eq!(view["cost"]["cost_center"], "research", "{view}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_with_a_cost_center_list_may_charge_each_of_them() {
    let h = Harness::start(keys()).await;
    for cc in ["research", "ads", "sales"] {
        let (s, view) = submit(&h, Some("key-listed"), Some(cc), None, true).await;
        assert_eq!(s, StatusCode::OK, "{cc}: {view}");
        assert_eq!(view["cost"]["cost_center"], cc, "{view}");
        let (s, view) = submit(&h, Some("key-listed"), None, Some(cc), false).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{cc}: {view}");
    }
    let (s, view) = submit(&h, Some("key-listed"), Some("marketing"), None, false).await;
    assert_forbidden(s, &view, "marketing", &["research", "ads", "sales"]);
    let (s, view) = submit(&h, Some("key-listed"), None, Some("marketing"), false).await;
    assert_forbidden(s, &view, "marketing", &["research", "ads", "sales"]);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_auth_any_cost_center_may_be_named() {
    let h = Harness::start(Options::default()).await;
    let (s, view) = submit(&h, None, Some("marketing"), None, true).await;
    assert_eq!(s, StatusCode::OK, "{view}");
    assert_eq!(view["cost"]["cost_center"], "marketing", "{view}");
    let (s, view) = submit(&h, None, None, Some("ads"), false).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{view}");
    h.stop().await;
}
