//! `GET /v1/spend/export` through the router, model calls over real HTTP to simulators: a tenant's
//! month by cost center, task type, stage and tier sums exactly its tasks' call records, as JSON
//! or CSV; another tenant's export is empty; bad months and formats are 400s naming the parameter.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::http::{Method, StatusCode};
use common::{Harness, Key, Options};
use planex_core::Decimal;
use serde_json::{Value, json};
use std::str::FromStr;

const ACME: [(&str, &str); 1] = [("authorization", "Bearer key-acme")];
const GLOBEX: [(&str, &str); 1] = [("authorization", "Bearer key-globex")];

fn keys() -> Vec<Key> {
    vec![
        Key {
            token: "key-acme",
            tenant: "acme",
            monthly_budget: None,
            cost_centers: &["ads"],
        },
        Key {
            token: "key-globex",
            tenant: "globex",
            monthly_budget: None,
            cost_centers: &[],
        },
    ]
}

fn usd(value: &Value) -> Decimal {
    Decimal::from_str(value.as_str().unwrap_or_else(|| panic!("{value}"))).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_export_sums_a_tenants_calls_by_cost_center_task_type_stage_and_tier() {
    let h = Harness::start(Options {
        keys: keys(),
        ..Options::default()
    })
    .await;
    let mut total = Decimal::ZERO;
    for (center, task_type) in [("research", "research"), ("ads", "ads_copy")] {
        let headers = [ACME[0], ("x-cost-center", center)];
        let (status, _, view) = h
            .call(
                Method::POST,
                "/v1/tasks?wait=true",
                Some(json!({"task": format!("Compare two GPU clouds for {center}"), "max_subtasks": 2, "task_type": task_type})),
                &headers,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{view}");
        total += usd(&view["cost"]["total"]["cost_usd"]);
    }
    let (status, _, export) = h.call(Method::GET, "/v1/spend/export", None, &ACME).await;
    assert_eq!(status, StatusCode::OK, "{export}");
    assert_eq!(export["tenant"], "acme");
    assert_eq!(export["tasks_counted"], 2);
    assert_eq!(export["complete"], true);
    let rows = export["rows"].as_array().unwrap();
    let sum: Decimal = rows.iter().map(|r| usd(&r["cost_usd"])).sum();
    assert_eq!(sum, total, "the rows sum the tasks' costs exactly");
    assert_eq!(usd(&export["rows_total_usd"]), total);
    let keys: Vec<(String, String, String, String)> = rows
        .iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap().to_owned();
            (s("cost_center"), s("task_type"), s("stage"), s("tier"))
        })
        .collect();
    for center in ["ads", "research"] {
        for stage in ["plan", "step"] {
            assert!(
                keys.iter().any(|k| k.0 == center && k.2 == stage),
                "{center}/{stage} in {keys:?}"
            );
        }
    }
    assert!(
        keys.iter().any(|k| k.1 == "ads_copy" && k.0 == "ads"),
        "{keys:?}"
    );
    assert!(
        rows.iter()
            .all(|r| r["calls"].as_u64().unwrap() >= 1 && r["tasks"] == 1)
    );
    // The ReAct floor: every call's tokens at the planner tier's price per token (the plan rows'
    // own rate; the harness prices tiers per GPU hour, one rate for prompt and completion).
    let tokens = |r: &Value| {
        Decimal::from(
            r["prompt_tokens"].as_u64().unwrap() + r["completion_tokens"].as_u64().unwrap(),
        )
    };
    let plan_rows: Vec<&Value> = rows.iter().filter(|r| r["stage"] == "plan").collect();
    let planner_rate = plan_rows
        .iter()
        .map(|r| usd(&r["cost_usd"]))
        .sum::<Decimal>()
        / plan_rows.iter().map(|r| tokens(r)).sum::<Decimal>();
    let floor = usd(&export["react_floor_usd"]);
    let expected = rows.iter().map(tokens).sum::<Decimal>() * planner_rate;
    assert!(
        (floor - expected).abs() < Decimal::new(1, 8),
        "{floor} vs {expected}"
    );
    assert!(
        floor > total,
        "the executor tier is cheaper than the planner tier"
    );
    let savings = usd(&export["savings_vs_react_floor"]);
    assert_eq!(
        savings,
        (Decimal::ONE - total / floor).round_dp(4).normalize()
    );
    assert!(
        savings > Decimal::ZERO && savings < Decimal::ONE,
        "{savings}"
    );

    let (status, headers, csv) = h
        .call(Method::GET, "/v1/spend/export?format=csv", None, &ACME)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = csv
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| csv.to_string());
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("tenant,month,cost_center,task_type,stage,tier,"),
        "{text}"
    );
    assert_eq!(lines.len(), rows.len() + 1, "{text}");

    let (_, _, theirs) = h.call(Method::GET, "/v1/spend/export", None, &GLOBEX).await;
    assert_eq!(theirs["rows"], json!([]), "{theirs}");
    assert_eq!(theirs["tasks_counted"], 0);
    let (_, _, other_month) = h
        .call(Method::GET, "/v1/spend/export?month=2020-01", None, &ACME)
        .await;
    assert_eq!(other_month["rows"], json!([]), "{other_month}");

    for (query, param) in [("?month=2026-13", "month"), ("?format=xml", "format")] {
        let (status, _, body) = h
            .call(
                Method::GET,
                &format!("/v1/spend/export{query}"),
                None,
                &ACME,
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["error"]["param"], param, "{body}");
    }
}
