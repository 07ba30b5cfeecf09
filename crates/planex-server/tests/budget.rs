//! The budget guard through the API: dispatch under budget, one re-plan with a stricter
//! `max_subtasks` over it, 429 with `Retry-After` when still over, tenant budgets, escalation
//! re-checks, and 50 concurrent tasks against a tenant budget that fits only some of them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::http::{Method, StatusCode};
use common::{Harness, Key, Options, lookups};
use planex_core::{Decimal, Price};
use planex_engine::BudgetGuard;
use serde_json::json;
use std::str::FromStr;
use std::time::Duration;

fn executor_price() -> Price {
    Price::GpuHour {
        usd_per_hour: Decimal::from_str("0.96").unwrap(),
        tokens_per_second: Decimal::from(6000),
    }
}

fn guard(h: &Harness) -> &BudgetGuard {
    h.engine.budget().unwrap()
}

/// Tokens per step assumed until observed in the re-plan tests: so many that a step's estimate
/// dwarfs a planner call, as a real step with long outputs on a dear tier would.
const DEAR_STEP_TOKENS: u64 = 100_000;

/// Options whose steps are estimated at `DEAR_STEP_TOKENS` until observed.
fn dear_steps(options: Options) -> Options {
    Options {
        budget: planex_engine::BudgetSettings {
            default_tokens_per_step: DEAR_STEP_TOKENS,
            ..planex_engine::BudgetSettings::default()
        },
        ..options
    }
}

/// The estimate of one executor `lookup` step until one is observed.
fn step_cost(h: &Harness) -> Decimal {
    guard(h).step_estimate("lookup", &executor_price())
}

fn usd(value: &serde_json::Value) -> Decimal {
    Decimal::from_str(value.as_str().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_budget_dispatches_and_settles() {
    let h = Harness::start(Options::default()).await;
    let (s, _, view) = h
        .call(
            Method::POST,
            "/v1/tasks?wait=true",
            Some(json!({"task": "Cheap task", "budget_usd": "1"})),
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{view}");
    assert_eq!(view["status"], "complete");
    assert_eq!(h.planner_requests(), 1, "no re-plan under budget");
    let (_, _, spend) = h.call(Method::GET, "/v1/spend", None, &[]).await;
    assert_eq!(spend["tenant"], "anonymous");
    assert_eq!(spend["total"]["reserved_usd"], "0", "settled: {spend}");
    let spent = usd(&spend["total"]["spent_usd"]);
    let cost = usd(&view["cost"]["total"]["cost_usd"]);
    assert!(
        spent >= cost && spent - cost < Decimal::new(1, 8),
        "{spent} vs {cost}"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_budget_replans_once_with_a_stricter_limit() {
    let h = Harness::start(dear_steps(Options {
        workload: vec![("Four lookups".into(), vec![lookups(4)])],
        ..Options::default()
    }))
    .await;
    // Fits two steps and a half (two planner calls are far less than the half): the four-step
    // plan is over, a two-step plan fits.
    let budget = step_cost(&h) * Decimal::from_str("2.5").unwrap();
    let (s, _, view) = h
        .call(
            Method::POST,
            "/v1/tasks?wait=true",
            Some(json!({"task": "Four lookups", "budget_usd": budget.to_string()})),
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{view}");
    assert_eq!(view["status"], "complete");
    assert!(view["steps"].as_array().unwrap().len() <= 2);
    assert_eq!(
        view["cost"]["by_stage"]["plan"]["calls"], 2,
        "the first plan and one re-plan"
    );
    let requests = h.planner.requests();
    assert_eq!(requests.len(), 2);
    let replan = &requests[1];
    let schema = &replan.response_format.as_ref().unwrap()["json_schema"]["schema"];
    assert_eq!(
        schema["properties"]["steps"]["maxItems"], 2,
        "the stricter limit reached the planner"
    );
    assert!(replan.messages[0].content.contains("at most 2 steps"));
    let user = &replan.messages[1].content;
    assert!(
        user.starts_with("Four lookups")
            && user.contains("Budget note")
            && user.contains("at most 2 steps"),
        "{user}"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn still_over_after_the_replan_is_429_with_retry_after() {
    // `summarize` runs on the dear planner tier; the re-plan's second step must use it.
    let h = Harness::start(dear_steps(Options {
        summarize_tier: "planner",
        workload: vec![("Four lookups".into(), vec![lookups(4)])],
        ..Options::default()
    }))
    .await;
    // At the ledger's precision (a budget is kept to the nano-dollar).
    let budget = (step_cost(&h) * Decimal::from_str("2.5").unwrap()).round_dp(9);
    let (s, headers, body) = h
        .call(
            Method::POST,
            "/v1/tasks?wait=true",
            Some(json!({"task": "Four lookups", "budget_usd": budget.to_string()})),
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(headers["retry-after"], "60");
    let details = &body["error"]["details"];
    assert_eq!(body["error"]["type"], "budget_exceeded");
    assert_eq!(details["budget"], "task");
    assert_eq!(details["replanned"], true);
    assert_eq!(usd(&details["limit_usd"]), budget);
    assert!(usd(&details["over_by_usd"]) > Decimal::ZERO);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("task budget")
    );
    assert_eq!(h.planner_requests(), 2);
    let task = details["task_id"].as_str().unwrap();
    let (_, _, view) = h
        .call(Method::GET, &format!("/v1/tasks/{task}"), None, &[])
        .await;
    assert_eq!(view["status"], "rejected");
    assert_eq!(
        view["cost"]["by_stage"]["plan"]["calls"], 2,
        "the planner calls are still charged"
    );
    assert_eq!(
        h.executor_sim.stats().requests_total,
        0,
        "nothing was dispatched"
    );
    // Both planner calls are charged once each, and nothing stays reserved.
    let (_, _, spend) = h.call(Method::GET, "/v1/spend", None, &[]).await;
    assert_eq!(spend["total"]["reserved_usd"], "0", "{spend}");
    let spent = usd(&spend["total"]["spent_usd"]);
    let cost = usd(&view["cost"]["total"]["cost_usd"]);
    assert!(
        spent >= cost && spent - cost < Decimal::new(1, 8),
        "{spent} vs {cost}"
    );
    // A budget below a single step is refused without a re-plan.
    let tiny = step_cost(&h) / Decimal::from(2);
    let (s, _, body) = h
        .call(
            Method::POST,
            "/v1/tasks?wait=true",
            Some(json!({"task": "Four lookups", "budget_usd": tiny.to_string()})),
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["error"]["details"]["replanned"], false);
    // Without `?wait=true` the task was accepted before planning: the refusal of its plan ends
    // it `rejected`, with the reason in its record.
    let (s, _, body) = h
        .call(
            Method::POST,
            "/v1/tasks",
            Some(json!({"task": "Four lookups", "budget_usd": tiny.to_string()})),
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{body}");
    let task = planex_core::TaskId::from(body["task_id"].as_str().unwrap());
    let record =
        planex_store::wait_for_task(h.engine.store().as_ref(), &task, Duration::from_secs(60))
            .await
            .unwrap()
            .expect("the refused task ends");
    assert_eq!(record.status, planex_store::TaskStatus::Rejected);
    assert!(record.error.unwrap().contains("task budget"));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_tenant_budget_refuses_before_planning() {
    let h = Harness::start(Options {
        keys: vec![Key {
            token: "k",
            tenant: "acme",
            monthly_budget: Some(Decimal::new(1, 6)),
            cost_centers: &[],
        }],
        ..Options::default()
    })
    .await;
    let (s, headers, body) = h
        .call(
            Method::POST,
            "/v1/tasks",
            Some(json!({"task": "Anything"})),
            &[("authorization", "Bearer k")],
        )
        .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"]["details"]["budget"], "tenant");
    assert_eq!(body["error"]["details"]["name"], "acme");
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(
        (1..=31 * 86_400).contains(&retry),
        "until the month ends: {retry}"
    );
    assert_eq!(h.planner_requests(), 0, "refused before any planner call");
    let (s, _, body) = h
        .call(
            Method::POST,
            "/v1/execute",
            Some(json!({"tool_name": "lookup", "args": {"topic": "x"}})),
            &[("authorization", "Bearer k")],
        )
        .await;
    assert_eq!(
        s,
        StatusCode::TOO_MANY_REQUESTS,
        "single steps are budgeted too: {body}"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escalation_to_a_dearer_tier_is_rechecked() {
    let failing = planex_testkit::fixtures::plan_json(
        json!([{"step_id": 1, "tool_name": "lookup", "args": {"topic": "x #sim:fail=500"}, "depends_on": []}]),
    );
    // Steps estimated at one token until observed, so the estimate lets the cached plan in.
    let h = Harness::start(Options {
        escalate: true,
        workload: vec![("Failing step".into(), vec![failing])],
        budget: planex_engine::BudgetSettings {
            default_tokens_per_step: 1,
            ..planex_engine::BudgetSettings::default()
        },
        ..Options::default()
    })
    .await;
    // With room in the budget the step is escalated (and its plan is cached).
    let (_, _, roomy) = h
        .call(
            Method::POST,
            "/v1/tasks?wait=true",
            Some(json!({"task": "Failing step", "budget_usd": "1"})),
            &[],
        )
        .await;
    let error = roomy["steps"][0]["error"].as_str().unwrap();
    assert!(
        error.contains("after escalation to tier planner"),
        "{error}"
    );
    let escalated = h.planner_sim.stats().executor_requests;
    assert!(escalated >= 1);
    // The plan now comes from the cache. A budget of $0.00001 pays for the step's worst case on
    // the executor tier (about 170 tokens at $0.044 per million), not on the planner tier ($0.50
    // per million): the escalated call is not made.
    let budget = Decimal::new(1, 5);
    let (s, _, view) = h
        .call(
            Method::POST,
            "/v1/tasks?wait=true",
            Some(json!({"task": "Failing step", "budget_usd": budget.to_string()})),
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{view}");
    assert_eq!(view["status"], "failed");
    let error = view["steps"][0]["error"].as_str().unwrap();
    assert!(
        error.contains("escalation to tier planner") && error.contains("budget_exhausted"),
        "{error}"
    );
    assert_eq!(
        h.planner_sim.stats().executor_requests,
        escalated,
        "no escalated call was made"
    );
    assert!(usd(&view["cost"]["total"]["cost_usd"]) <= budget);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_tasks_never_overspend_a_tenant_budget() {
    // One task's estimate: its planner call's upper bound plus three executor steps.
    let standalone = BudgetGuard::new(
        std::sync::Arc::new(planex_store::MemoryLedger::new()),
        planex_engine::BudgetSettings::default(),
    );
    let catalog = planex_core::Catalog::new(vec![
        planex_testkit::fixtures::llm_tool("lookup", "topic", "executor"),
        planex_testkit::fixtures::llm_tool("summarize", "text", "executor"),
    ])
    .unwrap();
    let planner_price = Price::GpuHour {
        usd_per_hour: Decimal::from_str("4.54").unwrap(),
        tokens_per_second: Decimal::from(2500),
    };
    let longest = "Concurrent task number 49 about GPU clouds";
    let prompt = planex_engine::system_prompt(&catalog, 3).len() + longest.len();
    let estimate = standalone.planning_estimate("planner", prompt, 2048, &planner_price)
        + standalone.step_estimate("lookup", &executor_price()) * Decimal::from(3);
    // Holds shrink to what a task really costs once it has planned (a fraction of the worst case,
    // the more so as the simulator caches the planner's prompt): a budget of one worst-case
    // estimate fits a dozen or so tasks, not fifty.
    let budget = estimate;
    let h = Harness::start(Options {
        keys: vec![Key {
            token: "k",
            tenant: "acme",
            monthly_budget: Some(budget),
            cost_centers: &[],
        }],
        ..Options::default()
    })
    .await;
    let h = std::sync::Arc::new(h);
    let mut handles = Vec::new();
    for i in 0..50 {
        let h = h.clone();
        handles.push(tokio::spawn(async move {
            h.call(
                Method::POST,
                "/v1/tasks?wait=true",
                Some(json!({"task": format!("Concurrent task number {i} about GPU clouds"), "max_subtasks": 3})),
                &[("authorization", "Bearer k")],
            )
            .await
        }));
    }
    let (mut done, mut refused, mut turned_away, mut charged) = (0, 0, 0, Decimal::ZERO);
    for handle in handles {
        let (status, headers, body) = handle.await.unwrap();
        match status {
            // Accepted, but the planner call's worst case no longer fitted what was free.
            StatusCode::OK
                if body["status"] == "failed"
                    && body["error"]
                        .as_str()
                        .is_some_and(|e| e.contains("budget_exhausted")) =>
            {
                turned_away += 1;
                assert_eq!(usd(&body["cost"]["total"]["cost_usd"]), Decimal::ZERO);
            }
            StatusCode::OK => {
                done += 1;
                charged += usd(&body["cost"]["total"]["cost_usd"]);
            }
            StatusCode::TOO_MANY_REQUESTS => {
                refused += 1;
                assert!(headers.contains_key("retry-after"));
                assert_eq!(body["error"]["details"]["budget"], "tenant", "{body}");
                if let Some(task) = body["error"]["details"]["task_id"].as_str() {
                    let (_, _, view) = h
                        .call(
                            Method::GET,
                            &format!("/v1/tasks/{task}"),
                            None,
                            &[("authorization", "Bearer k")],
                        )
                        .await;
                    assert_eq!(view["status"], "rejected");
                    charged += usd(&view["cost"]["total"]["cost_usd"]);
                }
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(done + refused + turned_away, 50);
    assert!(
        done >= 1 && refused + turned_away >= 1,
        "the budget admitted {done}, refused {refused} and turned {turned_away} away at planning"
    );
    let (_, _, spend) = h
        .call(
            Method::GET,
            "/v1/spend",
            None,
            &[("authorization", "Bearer k")],
        )
        .await;
    let spent = usd(&spend["total"]["spent_usd"]);
    assert_eq!(
        spend["total"]["reserved_usd"], "0",
        "everything settled: {spend}"
    );
    assert!(spent <= budget, "spent {spent} over budget {budget}");
    assert!(charged <= budget, "tasks cost {charged}, budget {budget}");
    // The ledger's spend is the tasks' real cost (rounded up to nano-dollars per booking).
    assert!(
        spent >= charged && spent - charged <= Decimal::new(200, 9),
        "{spent} vs {charged}"
    );
    match std::sync::Arc::try_unwrap(h) {
        Ok(h) => h.stop().await,
        Err(_) => panic!("harness still shared"),
    }
}
