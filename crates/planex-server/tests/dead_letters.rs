//! Dead letters through the router, model calls over real HTTP to simulators: a step that fails
//! for good is listed for its tenant only (another tenant gets 404 for its id and an empty list),
//! filtered by tool and error, replayed as a new task that reuses the completed steps' results
//! (no model call for them) and reruns the dead step and its dependents, and purged.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::http::{Method, StatusCode};
use common::{Harness, Options, two_tenants};
use planex_core::{StepId, TaskId};
use planex_store::TaskStatus;
use serde_json::{Value, json};
use std::time::Duration;

const ACME: [(&str, &str); 1] = [("authorization", "Bearer key-acme")];
const GLOBEX: [(&str, &str); 1] = [("authorization", "Bearer key-globex")];
const DONE: Duration = Duration::from_secs(60);

/// Four steps: 1 and 4 succeed, 2 fails once with HTTP 400 (not retried: it is dead at once, and
/// its replay succeeds, the simulator's `x1` marker having fired), 3 depends on 2.
fn plan() -> Value {
    json!({"steps": [
        {"step_id": 1, "tool_name": "lookup", "args": {"topic": "GPU prices"}, "depends_on": []},
        {"step_id": 2, "tool_name": "summarize", "args": {"text": "{step_1_result} #sim:fail=400x1"}, "depends_on": [1]},
        {"step_id": 3, "tool_name": "summarize", "args": {"text": "{step_2_result}"}, "depends_on": [2]},
        {"step_id": 4, "tool_name": "lookup", "args": {"topic": "TPU prices"}, "depends_on": []},
    ]})
}

async fn letters(h: &Harness, key: &[(&str, &str)], query: &str) -> Vec<Value> {
    let (status, _, page) = h
        .call(Method::GET, &format!("/v1/dead-letters{query}"), None, key)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["dead_letters"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_is_listed_for_its_tenant_only_replayed_reusing_results_and_purged() {
    let h = Harness::start(Options {
        keys: two_tenants(),
        ..Options::default()
    })
    .await;
    let (status, _, original) = h
        .call(
            Method::POST,
            "/v1/tasks?wait=true",
            Some(json!({"task": "Compare accelerator prices", "plan": plan()})),
            &ACME,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{original}");
    assert_eq!(original["status"], "partial", "{original}");
    let original_id = original["task_id"].as_str().unwrap().to_owned();

    let listed = letters(&h, &ACME, "").await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    let letter = &listed[0];
    assert_eq!(letter["task_id"], original_id.as_str());
    assert_eq!(
        (letter["step_id"].as_u64(), letter["tool_name"].as_str()),
        (Some(2), Some("summarize"))
    );
    assert!(
        letter["error"].as_str().unwrap().contains("400"),
        "{letter}"
    );
    let id = letter["id"].as_str().unwrap().to_owned();
    assert_eq!(
        letters(&h, &ACME, "?tool=summarize&error=400").await.len(),
        1
    );
    assert!(letters(&h, &ACME, "?tool=lookup").await.is_empty());
    assert!(
        letters(&h, &ACME, "?error=no%20such%20text")
            .await
            .is_empty()
    );

    // Another tenant sees nothing of it: not in its list, 404 for its id on every route.
    assert!(letters(&h, &GLOBEX, "").await.is_empty());
    for (method, path) in [
        (Method::GET, format!("/v1/dead-letters/{id}")),
        (Method::POST, format!("/v1/dead-letters/{id}/replay")),
        (Method::DELETE, format!("/v1/dead-letters/{id}")),
    ] {
        let (status, _, body) = h.call(method.clone(), &path, None, &GLOBEX).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
    }
    let (status, _, shown) = h
        .call(Method::GET, &format!("/v1/dead-letters/{id}"), None, &ACME)
        .await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    assert_eq!(shown["id"], id.as_str());

    // The replay: a new task, linked to the original, that reuses steps 1 and 4.
    let calls_before = h.executor_sim.stats().executor_requests;
    let (status, headers, replayed) = h
        .call(
            Method::POST,
            &format!("/v1/dead-letters/{id}/replay?purge=true"),
            None,
            &ACME,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{replayed}");
    assert_eq!(replayed["retry_of"], original_id.as_str());
    assert_eq!(replayed["reused_steps"], json!([1, 4]));
    assert_eq!(replayed["rerun_steps"], json!([2, 3]));
    assert_eq!(replayed["purged"], true);
    let new_id = TaskId(replayed["task_id"].as_str().unwrap().to_owned());
    assert_ne!(new_id.0, original_id);
    assert_eq!(
        headers["location"].to_str().unwrap(),
        format!("/v1/tasks/{new_id}")
    );
    let record = h.engine.wait(&new_id, DONE).await.unwrap();
    assert_eq!(record.status, TaskStatus::Complete, "{:?}", record.error);
    assert_eq!(
        record.retry_of.as_ref().map(|t| t.0.as_str()),
        Some(original_id.as_str())
    );
    let before: Vec<Value> = original["steps"].as_array().unwrap().clone();
    for step in [1u32, 4] {
        let reused = &record.steps[&StepId(step)];
        assert_eq!(reused.attempts, 0, "step {step} was not run again");
        let was = before.iter().find(|s| s["step_id"] == step).unwrap();
        assert_eq!(
            reused.result.as_ref().unwrap(),
            &was["result"],
            "step {step}'s result is the original's"
        );
    }
    let rerun: Vec<u32> = record
        .calls
        .iter()
        .filter_map(|c| c.step_id.map(|s| s.0))
        .collect();
    assert_eq!(rerun, vec![2, 3], "only the rerun steps called a model");
    assert_eq!(
        h.executor_sim.stats().executor_requests - calls_before,
        2,
        "two executor calls: steps 2 and 3"
    );
    let (_, _, new_view) = h
        .call(Method::GET, &format!("/v1/tasks/{new_id}"), None, &ACME)
        .await;
    assert_eq!(new_view["retry_of"], original_id.as_str());

    // The original is unchanged, and the purged letter is gone.
    let (_, _, again) = h
        .call(
            Method::GET,
            &format!("/v1/tasks/{original_id}"),
            None,
            &ACME,
        )
        .await;
    assert_eq!(again["status"], "partial");
    assert!(again.get("retry_of").is_none());
    assert!(letters(&h, &ACME, "").await.is_empty());
    let (status, _, _) = h
        .call(Method::GET, &format!("/v1/dead-letters/{id}"), None, &ACME)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_ids_cursors_and_limits_are_clear_errors() {
    let h = Harness::start(Options {
        keys: two_tenants(),
        ..Options::default()
    })
    .await;
    for (query, param) in [
        ("?limit=0", "limit"),
        ("?limit=101", "limit"),
        ("?cursor=abc", "cursor"),
    ] {
        let (status, _, body) = h
            .call(
                Method::GET,
                &format!("/v1/dead-letters{query}"),
                None,
                &ACME,
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["error"]["param"], param, "{body}");
    }
    let (status, _, body) = h
        .call(Method::GET, "/v1/dead-letters?colour=red", None, &ACME)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    for path in ["/v1/dead-letters/not-an-id", "/v1/dead-letters/1-0"] {
        let (status, _, body) = h.call(Method::GET, path, None, &ACME).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("dead letter"),
            "{body}"
        );
    }
    let (status, _, _) = h.call(Method::GET, "/v1/dead-letters", None, &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// A dead synthesis step (its plan steps all complete) is replayed by reusing every plan step and
/// running the synthesis alone; a key of the tenant that may not charge the original's cost
/// center is refused (403) and nothing is made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_synthesis_is_replayed_alone_and_only_by_a_key_that_may_charge_its_cost_center() {
    let keys = vec![
        common::Key {
            token: "key-ads",
            tenant: "acme",
            monthly_budget: None,
            cost_centers: &["ads"],
        },
        common::Key {
            token: "key-research",
            tenant: "acme",
            monthly_budget: None,
            cost_centers: &[],
        },
    ];
    let h = Harness::start(Options {
        keys,
        synthesis: true,
        ..Options::default()
    })
    .await;
    let ads = [
        ("authorization", "Bearer key-ads"),
        ("x-cost-center", "ads"),
    ];
    let research = [("authorization", "Bearer key-research")];
    // The synthesis prompt quotes the task text: its marker fails the synthesis once (HTTP 400).
    let plan = json!({"steps": [
        {"step_id": 1, "tool_name": "lookup", "args": {"topic": "GPU prices"}, "depends_on": []},
    ]});
    let (status, _, original) = h
        .call(
            Method::POST,
            "/v1/tasks?wait=true",
            Some(json!({"task": "Price GPUs #sim:fail=400x1", "plan": plan})),
            &ads,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{original}");
    let letters = letters(&h, &ads, "").await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0]["tool_name"], "planex.synthesize");
    let id = letters[0]["id"].as_str().unwrap().to_owned();
    let replay = format!("/v1/dead-letters/{id}/replay");

    let (status, _, refused) = h.call(Method::POST, &replay, None, &research).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ads"),
        "{refused}"
    );

    let (status, _, replayed) = h.call(Method::POST, &replay, None, &ads).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{replayed}");
    assert_eq!(replayed["reused_steps"], json!([1]));
    assert_eq!(replayed["rerun_steps"], json!([2]));
    let new_id = TaskId(replayed["task_id"].as_str().unwrap().to_owned());
    let record = h.engine.wait(&new_id, DONE).await.unwrap();
    assert_eq!(record.status, TaskStatus::Complete, "{:?}", record.error);
    assert_eq!(record.cost_center.as_deref(), Some("ads"));
    assert!(record.answer().is_some());
    let (_, _, page) = h.call(Method::GET, "/v1/tasks?limit=10", None, &ads).await;
    assert_eq!(
        page["tasks"].as_array().unwrap().len(),
        2,
        "one replay only: {page}"
    );
}
