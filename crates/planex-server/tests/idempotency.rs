//! `Idempotency-Key` on `POST /v1/tasks` and `/v1/chat/completions` through the router: a retry
//! finds the first task and plans (bills) nothing new; keys are per tenant; a key reused for
//! another body is 422. Model calls go over real HTTP to simulators.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::http::{Method, StatusCode};
use common::{Harness, Options, two_tenants};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_key_twice_is_one_task_and_tenants_are_separate() {
    let h = Harness::start(Options {
        keys: two_tenants(),
        ..Options::default()
    })
    .await;
    let body = json!({"task": "Compare two GPU clouds", "max_subtasks": 2});
    let post = |token: &'static str, query: &'static str, body: serde_json::Value| {
        let h = &h;
        async move {
            let auth = format!("Bearer {token}");
            h.call(
                Method::POST,
                &format!("/v1/tasks{query}"),
                Some(body),
                &[("authorization", &auth), ("idempotency-key", "order-42")],
            )
            .await
        }
    };
    let (status, _, first) = post("key-acme", "?wait=true", body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let id = first["task_id"].as_str().unwrap().to_owned();
    let planned = h.planner_requests();
    let (status, headers, again) = post("key-acme", "", body.clone()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{again}");
    assert_eq!(
        again["task_id"],
        id.as_str(),
        "the retry names the first task"
    );
    assert_eq!(headers["location"], format!("/v1/tasks/{id}").as_str());
    assert_eq!(again["status"], "complete");
    assert_eq!(h.planner_requests(), planned, "the retry planned nothing");
    // Another tenant's key of the same name is its own.
    let (status, _, other) = post("key-globex", "?wait=true", body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{other}");
    assert_ne!(other["task_id"], id.as_str());
    let other_id = other["task_id"].as_str().unwrap();
    let read = |token: &'static str| {
        let h = &h;
        let path = format!("/v1/tasks/{other_id}");
        async move {
            let auth = format!("Bearer {token}");
            h.call(Method::GET, &path, None, &[("authorization", &auth)])
                .await
                .0
        }
    };
    assert_eq!(
        read("key-globex").await,
        StatusCode::OK,
        "globex's own task"
    );
    assert_eq!(read("key-acme").await, StatusCode::NOT_FOUND);
    // The same key with another body is refused, naming the first task.
    let (status, _, reused) = post(
        "key-acme",
        "",
        json!({"task": "Something else entirely", "max_subtasks": 2}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{reused}");
    assert_eq!(reused["error"]["type"], "idempotency_key_reused");
    assert!(
        reused["error"]["message"]
            .as_str()
            .unwrap()
            .contains(id.as_str())
    );
    // A chat completion under the same key is another request.
    let (status, _, chat) = h
        .call(
            Method::POST,
            "/v1/chat/completions",
            Some(json!({"model": "planex", "messages": [{"role": "user", "content": "Compare two GPU clouds"}]})),
            &[("authorization", "Bearer key-acme"), ("idempotency-key", "order-42")],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{chat}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_submission_frees_its_key_and_chat_retries_find_their_task() {
    let h = Harness::start(Options::default()).await;
    let key = [("idempotency-key", "k-1")];
    let (status, _, refused) = h
        .call(Method::POST, "/v1/tasks", Some(json!({"task": "  "})), &key)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    let (status, _, accepted) = h
        .call(
            Method::POST,
            "/v1/tasks",
            Some(json!({"task": "Now a real task"})),
            &key,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::ACCEPTED,
        "a corrected retry may use the key: {accepted}"
    );
    let chat = json!({"model": "planex", "messages": [{"role": "user", "content": "Summarize GPU prices"}]});
    let key = [("idempotency-key", "chat-1")];
    let (status, _, first) = h
        .call(
            Method::POST,
            "/v1/chat/completions",
            Some(chat.clone()),
            &key,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let planned = h.planner_requests();
    let (status, _, again) = h
        .call(Method::POST, "/v1/chat/completions", Some(chat), &key)
        .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["planex"]["task_id"], first["planex"]["task_id"]);
    assert_eq!(again["choices"], first["choices"]);
    assert_eq!(h.planner_requests(), planned, "the retry planned nothing");
    let (status, _, bad) = h
        .call(
            Method::POST,
            "/v1/tasks",
            Some(json!({"task": "x"})),
            &[("idempotency-key", "")],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    h.stop().await;
}

/// A retry that arrives while the first submission with its key is still being accepted (here:
/// waiting for room in its tenant's budget, which a task whose planner call hangs holds) is `409
/// submission_in_progress` with `Retry-After`, never a `202` naming a task not recorded yet. Once
/// the first is accepted, a retry names its task. Which of two concurrent requests claims the key
/// first is up to the scheduler; the other is the retry, so exactly one of them is the 409.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_during_the_first_submissions_admission_is_409_until_its_task_is_recorded() {
    use std::sync::Arc;
    let hold_task = json!({"task": "Hold the budget #sim:hang", "cache": false});
    // What a task whose planner call hangs holds: its planner call's expected cost.
    let probe = Harness::start(Options {
        keys: vec![common::Key {
            token: "k",
            tenant: "acme",
            monthly_budget: Some(1.into()),
            cost_centers: &[],
        }],
        ..Options::default()
    })
    .await;
    let bearer = [("authorization", "Bearer k")];
    let (status, _, _) = probe
        .call(Method::POST, "/v1/tasks", Some(hold_task.clone()), &bearer)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (_, _, spend) = probe.call(Method::GET, "/v1/spend", None, &bearer).await;
    let held: planex_core::Decimal = spend["total"]["reserved_usd"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(held > 0.into(), "{spend}");
    probe.stop().await;
    let h = Arc::new(
        Harness::start(Options {
            keys: vec![common::Key {
                token: "k",
                tenant: "acme",
                // A tenth more than one hold: less than a planner call is expected to cost, so a
                // second task waits while the first holds its planner call's worst case, and
                // fits once the first runs at its real cost.
                monthly_budget: Some(held * planex_core::Decimal::new(11, 1)),
                cost_centers: &[],
            }],
            budget: planex_engine::BudgetSettings {
                admission_wait: std::time::Duration::from_secs(60),
                ..planex_engine::BudgetSettings::default()
            },
            ..Options::default()
        })
        .await,
    );
    let auth = ("authorization", "Bearer k");
    // The planner call of this task hangs: it holds its planner call's worst case meanwhile.
    let (status, _, holder) = h
        .call(Method::POST, "/v1/tasks", Some(hold_task), &[auth])
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{holder}");

    let body = json!({"task": "Compare two GPU clouds", "cache": false});
    let submit = || {
        let (h, body) = (h.clone(), body.clone());
        tokio::spawn(async move {
            h.call(
                Method::POST,
                "/v1/tasks",
                Some(body),
                &[auth, ("idempotency-key", "slow-1")],
            )
            .await
        })
    };
    let (mut first, mut second) = (submit(), submit());
    let (early, waiting) = tokio::select! {
        answer = &mut first => (answer.unwrap(), second),
        answer = &mut second => (answer.unwrap(), first),
    };
    let (status, headers, conflict) = early;
    assert_eq!(status, StatusCode::CONFLICT, "{conflict}");
    assert_eq!(conflict["error"]["type"], "submission_in_progress");
    assert_eq!(headers["retry-after"], "2");
    assert!(
        !waiting.is_finished(),
        "the first submission is still waiting for room"
    );

    // The holder's hang ends (every simulated wait does): it plans and runs at its real cost,
    // below its worst case, so its hold shrinks and the waiting submission is accepted.
    h.planner_sim.state().cancel_waits();
    h.executor_sim.state().cancel_waits();
    let (status, _, accepted) = tokio::time::timeout(std::time::Duration::from_secs(30), waiting)
        .await
        .expect("the waiting submission is accepted once the hold settles")
        .unwrap();
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let id = accepted["task_id"].as_str().unwrap();
    let (status, _, again) = h
        .call(
            Method::POST,
            "/v1/tasks",
            Some(body.clone()),
            &[auth, ("idempotency-key", "slow-1")],
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{again}");
    assert_eq!(again["task_id"], id, "a retry now names the recorded task");
    Arc::try_unwrap(h).ok().unwrap().stop().await;
}
