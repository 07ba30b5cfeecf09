//! Client-supplied plans over real HTTP: the API served on a loopback socket, model calls to
//! simulators. The plans are the repository's fixtures (`examples/plans.jsonl`,
//! `examples/hostile-plans.jsonl`) over the embedded default tool catalog.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::http::StatusCode;
use common::Options;
use common::served::Served;
use planex_core::ToolSpec;
use serde_json::{Value, json};

/// The tools of the embedded default config (`crates/planex-app/src/default.toml`), which the
/// fixtures are written against.
fn default_tools() -> Vec<ToolSpec> {
    #[derive(serde::Deserialize)]
    struct Tools {
        tools: Vec<ToolSpec>,
    }
    let text = include_str!("../../planex-app/src/default.toml");
    toml::from_str::<Tools>(text).unwrap().tools
}

/// The entries of a fixture file (comments and blank lines skipped).
fn fixture(name: &str) -> Vec<Value> {
    let path = format!("{}/../../examples/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The `POST /v1/tasks` body of a fixture entry (`plan` nested or flat `steps`).
fn body_of(entry: &Value) -> Value {
    let mut body = json!({
        "task": entry["task"],
        "plan": entry.get("plan").cloned().unwrap_or_else(|| json!({"steps": entry["steps"]})),
    });
    for key in ["budget_usd", "synthesis"] {
        if let Some(value) = entry.get(key) {
            body[key] = value.clone();
        }
    }
    body
}

fn with_default_tools() -> Options {
    Options {
        tools: Some(default_tools()),
        ..Options::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hostile_plan_is_a_422_naming_its_rule_and_nothing_is_recorded_or_billed() {
    let api = Served::start(with_default_tools()).await;
    let hostile = fixture("hostile-plans.jsonl");
    assert!(hostile.len() >= 20, "the fixture lost plans");
    for entry in &hostile {
        let id = entry["id"].as_str().unwrap();
        let rule = id.split('/').next().unwrap();
        for path in ["/v1/tasks", "/v1/tasks?wait=true"] {
            let (status, body) = api.post(path, &body_of(entry), &[]).await;
            assert_eq!(
                status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{id} {path}: {body}"
            );
            let error = &body["error"];
            assert_eq!(error["type"], "validation_failed", "{id}: {body}");
            assert_eq!(error["details"]["rule"], rule, "{id}: {body}");
            assert!(
                error["message"]
                    .as_str()
                    .unwrap()
                    .starts_with("invalid plan: "),
                "{id}: {body}"
            );
            // Rules about one step name it, by id or (when its id is unreadable) by position.
            let names_step =
                !error["details"]["step_id"].is_null() || !error["details"]["step_index"].is_null();
            let whole_plan = matches!(rule, "empty" | "too_many_steps")
                || id.starts_with("shape/steps-not")
                || id.starts_with("shape/plan-not")
                || id.starts_with("shape/unknown-plan");
            assert_eq!(names_step, !whole_plan, "{id}: {body}");
        }
    }
    api.assert_nothing_recorded_or_billed("hostile plans").await;
    assert_eq!(api.planner_stats().await["planner_requests"], 0);
    assert_eq!(
        api.h.executor_sim.stats().requests_total,
        0,
        "no hostile step reached an executor"
    );
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_good_plan_completes_with_no_planner_call() {
    let api = Served::start(with_default_tools()).await;
    let good = fixture("plans.jsonl");
    assert_eq!(good.len(), 8);
    for entry in &good {
        let id = entry["id"].as_str().unwrap();
        let (status, view) = api.post("/v1/tasks?wait=true", &body_of(entry), &[]).await;
        assert_eq!(status, StatusCode::OK, "{id}: {view}");
        assert_eq!(view["status"], "complete", "{id}: {view}");
        assert_eq!(view["plan_source"], "client", "{id}");
        assert_eq!(view["plan"]["source"], "client", "{id}");
        assert_eq!(view["task"], entry["task"], "{id}");
        let plan = body_of(entry)["plan"]["steps"].as_array().unwrap().len();
        // The harness runs no synthesis step: exactly the client's steps ran, as written.
        let steps = view["steps"].as_array().unwrap();
        assert_eq!(steps.len(), plan, "{id}");
        assert!(
            steps.iter().all(|s| s["state"] == "complete"),
            "{id}: {view}"
        );
        assert!(
            view["cost"]["by_stage"].get("plan").is_none(),
            "{id}: {view}"
        );
        assert_eq!(
            api.planner_stats().await["planner_requests"],
            0,
            "{id}: the planner was called"
        );
    }
    // `.field` placeholders were filled in from the JSON results.
    let (_, view) = api
        .post("/v1/tasks?wait=true", &body_of(&good[4]), &[])
        .await;
    assert_eq!(good[4]["id"], "field-placeholders");
    let compare = &view["steps"][2]["result"];
    assert!(
        compare.as_str().unwrap().starts_with("[simulated]"),
        "{view}"
    );
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_plans_neither_read_nor_write_the_plan_cache() {
    let api = Served::start(Options::default()).await;
    let task = "Look up H200 prices and summarize them";
    let plan = json!({"steps": [
        {"step_id": 5, "tool_name": "lookup", "args": {"topic": "H200 prices"}, "depends_on": []},
    ]});
    // A client plan first: it must not fill the cache for this task text.
    let (status, view) = api
        .post(
            "/v1/tasks?wait=true",
            &json!({"task": task, "plan": plan}),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(api.h.planner_requests(), 0);
    let (status, planned) = api
        .post("/v1/tasks?wait=true", &json!({"task": task}), &[])
        .await;
    assert_eq!(status, StatusCode::OK, "{planned}");
    assert_eq!(planned["plan_source"], "planner");
    assert_eq!(
        api.h.planner_requests(),
        1,
        "the planner plans: nothing was cached"
    );
    // Now the planner's plan is cached; a client plan for the same text still runs its own.
    let (status, view) = api
        .post(
            "/v1/tasks?wait=true",
            &json!({"task": task, "plan": plan}),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["plan_source"], "client");
    let ids: Vec<&Value> = view["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["step_id"])
        .collect();
    assert_eq!(ids, [&json!(5)], "{view}");
    assert_eq!(api.h.planner_requests(), 1);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_is_known_at_submission_is_a_4xx_at_submission() {
    let api = Served::start(Options::default()).await;
    let plan = json!({"steps": [{"step_id": 1, "tool_name": "lookup", "args": {"topic": "x"}}]});
    let cases = [
        (
            "no tools",
            json!({"task": "Look something up", "tools": []}),
            StatusCode::BAD_REQUEST,
            "no tools are available",
        ),
        (
            "no tools, plan",
            json!({"plan": plan, "tools": []}),
            StatusCode::BAD_REQUEST,
            "no tools are available",
        ),
        (
            "long task",
            json!({"task": "x".repeat(40_000)}),
            StatusCode::BAD_REQUEST,
            "max_task_chars",
        ),
        (
            "unknown field",
            json!({"task": "t", "plan": plan, "priority": 1}),
            StatusCode::BAD_REQUEST,
            "priority",
        ),
        (
            "no task, no plan",
            json!({}),
            StatusCode::BAD_REQUEST,
            "task text is empty",
        ),
        (
            "max_subtasks with a plan",
            json!({"plan": plan, "max_subtasks": 3}),
            StatusCode::BAD_REQUEST,
            "max_client_plan_steps",
        ),
        (
            "tool outside tools",
            json!({"plan": plan, "tools": ["summarize"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown tool",
        ),
        (
            "over its budget",
            json!({"plan": plan, "budget_usd": "0.000000001"}),
            StatusCode::TOO_MANY_REQUESTS,
            "budget",
        ),
    ];
    for (what, body, status, says) in cases {
        for path in ["/v1/tasks", "/v1/tasks?wait=true"] {
            let (got, answer) = api.post(path, &body, &[]).await;
            assert_eq!(got, status, "{what} {path}: {answer}");
            let message = answer["error"]["message"].as_str().unwrap();
            assert!(message.contains(says), "{what}: {message}");
        }
    }
    let (_, refused) = api
        .post(
            "/v1/tasks",
            &json!({"plan": plan, "budget_usd": "0.000000001"}),
            &[],
        )
        .await;
    assert_eq!(
        refused["error"]["details"]["task_id"],
        Value::Null,
        "{refused}"
    );
    api.assert_nothing_recorded_or_billed("refused submissions")
        .await;
    assert_eq!(api.h.planner_requests(), 0);
    // A plan without task text gets the plan's own task, else a description of the plan.
    let (status, accepted) = api
        .post("/v1/tasks?wait=true", &json!({"plan": plan}), &[])
        .await;
    assert_eq!(status, StatusCode::OK, "{accepted}");
    assert_eq!(
        accepted["task"],
        "Run the client-supplied plan of 1 step (lookup)"
    );
    let mut own = plan.clone();
    own["task"] = json!("Find x");
    let (_, accepted) = api
        .post("/v1/tasks?wait=true", &json!({"plan": own}), &[])
        .await;
    assert_eq!(accepted["task"], "Find x", "{accepted}");
    api.stop().await;
}
