//! Money you can trust, through the API against real simulators: per-task budgets are never
//! overspent (at admission a re-plan fits the plan, while running every model call draws its worst
//! case first), the default per-task budget applies to requests that name none, and 50 concurrent
//! tasks against a tenant budget that fits N admit at least N − 1 without overspending it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::http::{Method, StatusCode};
use common::{Harness, Key, Options, independent, lookups};
use planex_core::Decimal;
use planex_engine::BudgetSettings;
use serde_json::json;
use std::str::FromStr;
use std::sync::Arc;

fn usd(value: &serde_json::Value) -> Decimal {
    Decimal::from_str(value.as_str().unwrap()).unwrap()
}

fn cost(view: &serde_json::Value) -> Decimal {
    usd(&view["cost"]["total"]["cost_usd"])
}

/// Runs `task` once with no budget (and up to 16 steps) and returns its record.
async fn unconstrained(h: &Harness, task: &str) -> serde_json::Value {
    let (s, _, view) = h
        .call(
            Method::POST,
            "/v1/tasks?wait=true",
            Some(json!({"task": task, "budget_usd": "0", "cache": false, "max_subtasks": 16})),
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{view}");
    assert_eq!(view["status"], "complete", "{view}");
    view
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_tasks_never_overspend_their_own_budgets() {
    // Four summaries on the dear planner tier, estimated at 2,000 tokens each until observed: a
    // budget of three such estimates is over for four steps and fits two after a re-plan.
    let h = Arc::new(
        Harness::start(Options {
            summarize_tier: "planner",
            workload: vec![(
                "Four summaries".into(),
                vec![independent("summarize", "text", 4)],
            )],
            budget: BudgetSettings {
                default_tokens_per_step: 2000,
                ..BudgetSettings::default()
            },
            ..Options::default()
        })
        .await,
    );
    let step = h.engine.budget().unwrap().step_estimate(
        "summarize",
        h.engine.executor().models.get("planner").unwrap().price(),
    );
    let budget = step * Decimal::from(3);
    let handles: Vec<_> = (0..50)
        .map(|_| {
            let h = h.clone();
            tokio::spawn(async move {
                h.call(
                    Method::POST,
                    "/v1/tasks?wait=true",
                    Some(json!({"task": "Four summaries", "budget_usd": budget.to_string(), "cache": false})),
                    &[],
                )
                .await
            })
        })
        .collect();
    let (mut admitted, mut refused, mut replanned) = (0, 0, 0);
    for handle in handles {
        let (status, headers, body) = handle.await.unwrap();
        match status {
            StatusCode::OK => {
                admitted += 1;
                assert!(cost(&body) <= budget, "over its budget {budget}: {body}");
                if body["cost"]["by_stage"]["plan"]["calls"] == 2 {
                    replanned += 1;
                    assert!(body["steps"].as_array().unwrap().len() <= 2, "{body}");
                }
            }
            StatusCode::TOO_MANY_REQUESTS => {
                refused += 1;
                assert!(headers.contains_key("retry-after"));
                assert_eq!(body["error"]["details"]["budget"], "task", "{body}");
                let task = body["error"]["details"]["task_id"].as_str().unwrap();
                let (_, _, view) = h
                    .call(Method::GET, &format!("/v1/tasks/{task}"), None, &[])
                    .await;
                assert_eq!(view["status"], "rejected");
                assert!(cost(&view) <= budget, "a refused task over budget: {view}");
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(admitted + refused, 50);
    assert!(
        replanned >= 1,
        "the budget re-plan never fired ({admitted} admitted)"
    );
    let (_, _, spend) = h.call(Method::GET, "/v1/spend", None, &[]).await;
    assert_eq!(
        spend["total"]["reserved_usd"], "0",
        "everything settled: {spend}"
    );
    Arc::try_unwrap(h).ok().unwrap().stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_task_stops_spending_at_its_budget() {
    let task = "Sixteen summaries";
    let workload = || vec![(task.to_owned(), vec![independent("summarize", "text", 16)])];
    // What the task costs without a budget, on a harness of its own.
    let probe = Harness::start(Options {
        summarize_tier: "planner",
        workload: workload(),
        ..Options::default()
    })
    .await;
    let full = unconstrained(&probe, task).await;
    let plan_cost = usd(&full["cost"]["by_stage"]["plan"]["cost_usd"]);
    let step_cost = usd(&full["cost"]["by_stage"]["step"]["cost_usd"]) / Decimal::from(16);
    probe.stop().await;
    // Estimates of one token per step let the plan in; the meter must stop it while it runs.
    let h = Harness::start(Options {
        summarize_tier: "planner",
        workload: workload(),
        budget: BudgetSettings {
            default_tokens_per_step: 1,
            ..BudgetSettings::default()
        },
        ..Options::default()
    })
    .await;
    let budget = plan_cost + step_cost * Decimal::new(65, 1);
    let (s, _, view) = h
        .call(
            Method::POST,
            "/v1/tasks?wait=true",
            Some(json!({"task": task, "budget_usd": budget.to_string(), "max_subtasks": 16})),
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{view}");
    assert_eq!(view["status"], "partial", "{view}");
    assert!(cost(&view) <= budget, "spent {} of {budget}", cost(&view));
    let steps = view["steps"].as_array().unwrap();
    let exhausted = steps
        .iter()
        .filter(|s| {
            s["error"]
                .as_str()
                .is_some_and(|e| e.contains("budget_exhausted"))
        })
        .count();
    let completed = steps.iter().filter(|s| s["state"] == "complete").count();
    assert!(exhausted >= 1 && completed >= 1, "{view}");
    assert!(completed < 16, "{view}");
    // A call that was not made reached no simulator.
    assert_eq!(
        h.planner_sim.stats().executor_requests,
        completed as u64,
        "only the calls that fit were made"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_without_a_budget_gets_the_default() {
    let h = Harness::start(Options {
        workload: vec![("Two lookups".into(), vec![lookups(2)])],
        budget: BudgetSettings {
            // Far below a planner call: the default must refuse what an explicit 0 lets through.
            default_task_usd: Some(Decimal::new(1, 9)),
            ..BudgetSettings::default()
        },
        ..Options::default()
    })
    .await;
    let (s, _, body) = h
        .call(
            Method::POST,
            "/v1/tasks?wait=true",
            Some(json!({"task": "Two lookups"})),
            &[],
        )
        .await;
    assert_ne!(
        s,
        StatusCode::OK,
        "the default budget was not applied: {body}"
    );
    assert_eq!(h.planner_sim.stats().executor_requests, 0);
    unconstrained(&h, "Two lookups").await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_budget_that_fits_n_admits_at_least_n_minus_one() {
    let task = "Two lookups";
    let workload = || vec![(task.to_owned(), vec![lookups(2)])];
    let probe = Harness::start(Options {
        workload: workload(),
        ..Options::default()
    })
    .await;
    let one = cost(&unconstrained(&probe, task).await);
    probe.stop().await;
    let n = 7;
    let budget = one * Decimal::from(n);
    let h = Arc::new(
        Harness::start(Options {
            keys: vec![Key {
                token: "k",
                tenant: "acme",
                monthly_budget: Some(budget),
                cost_centers: &[],
            }],
            workload: workload(),
            ..Options::default()
        })
        .await,
    );
    let handles: Vec<_> = (0..50)
        .map(|_| {
            let h = h.clone();
            tokio::spawn(async move {
                h.call(
                    Method::POST,
                    "/v1/tasks?wait=true",
                    Some(json!({"task": task, "cache": false})),
                    &[("authorization", "Bearer k")],
                )
                .await
            })
        })
        .collect();
    let (mut admitted, mut refused, mut planned) = (0, 0, 0);
    for handle in handles {
        let (status, _, body) = handle.await.unwrap();
        match status {
            StatusCode::OK => {
                admitted += 1;
                if body["plan"].is_object() {
                    planned += 1;
                }
            }
            StatusCode::TOO_MANY_REQUESTS => {
                refused += 1;
                assert_eq!(body["error"]["details"]["budget"], "tenant", "{body}");
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(admitted + refused, 50);
    assert!(
        admitted >= n - 1,
        "a budget that fits {n} admitted only {admitted}"
    );
    // Admission asks of the free room what the planner call will draw (its prompt bound, learned
    // from the simulator's counts, at list price, and the mean plan), so a task admitted is a
    // task planned: none is turned away at its planner call.
    assert_eq!(planned, admitted, "admitted tasks that did not plan");
    let (_, _, spend) = h
        .call(
            Method::GET,
            "/v1/spend",
            None,
            &[("authorization", "Bearer k")],
        )
        .await;
    assert_eq!(spend["total"]["reserved_usd"], "0", "{spend}");
    let spent = usd(&spend["total"]["spent_usd"]);
    assert!(spent <= budget, "spent {spent} of {budget}");
    Arc::try_unwrap(h).ok().unwrap().stop().await;
}
