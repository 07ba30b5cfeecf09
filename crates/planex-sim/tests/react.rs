//! ReAct role: a `react_step` turn gets the plan's next action (with earlier observations copied
//! into its args), then the final answer; the generated plan is the planner role's plan.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{catalog, chat, planner_body};
use planex_sim::{SimConfig, Workload};
use planex_testkit::sim::start;
use serde_json::{Value, json};

const TASK: &str = "Find two prices and summarize them";

fn turn_schema() -> Value {
    let mut actions: Vec<Value> = catalog()
        .into_iter()
        .map(|(name, args)| {
            json!({"type":"object","required":["tool_name","args"],
                "properties":{"tool_name":{"type":"string","enum":[name]},"args":args}})
        })
        .collect();
    actions.push(json!({"type":"object","required":["tool_name","args"],
        "properties":{"tool_name":{"type":"string","enum":["final_answer"]},
            "args":{"type":"object","properties":{"answer":{"type":"string"}}}}}));
    json!({"type":"object","required":["thought","action"],
        "properties":{"thought":{"type":"string"},"action":{"anyOf": actions}}})
}

/// A ReAct turn after `history` (assistant, observation) pairs.
fn turn_body(task: &str, history: &[(String, String)]) -> Value {
    let mut messages = vec![
        json!({"role": "system", "content": "You are an agent. Tools: ..."}),
        json!({"role": "user", "content": task}),
    ];
    for (action, observation) in history {
        messages.push(json!({"role": "assistant", "content": action}));
        messages.push(json!({"role": "user", "content": format!("Observation: {observation}")}));
    }
    json!({"model": "sim-model", "messages": messages, "max_tokens": 50,
        "response_format": {"type": "json_schema",
            "json_schema": {"name": "react_step", "strict": true, "schema": turn_schema()}}})
}

async fn turn(
    server: &planex_sim::SimServer,
    task: &str,
    history: &[(String, String)],
) -> (String, Value) {
    let (status, answer) = chat(server, &turn_body(task, history)).await;
    assert_eq!(status, 200, "{answer}");
    let content = answer["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    let value = serde_json::from_str(&content).unwrap();
    (content, value)
}

#[tokio::test]
async fn react_turns_follow_the_pinned_plan_then_answer() {
    let plan = json!({"steps": [
        {"step_id": 1, "tool_name": "web_search", "args": {"query": "H200 price"}, "depends_on": []},
        {"step_id": 2, "tool_name": "web_search", "args": {"query": "L40S price"}, "depends_on": []},
        {"step_id": 3, "tool_name": "summarize", "args": {"text": "A: {step_1_result} B: {step_2_result}"}, "depends_on": [1, 2]},
    ]});
    let mut workload = Workload::default();
    workload.insert(TASK, vec!["not a plan".into(), plan.to_string()]);
    let server = start(SimConfig {
        workload,
        ..SimConfig::default()
    })
    .await;

    let mut history = Vec::new();
    let (content, first) = turn(&server, TASK, &history).await;
    assert_eq!(
        first["action"],
        json!({"tool_name": "web_search", "args": {"query": "H200 price"}})
    );
    assert!(
        first["thought"]
            .as_str()
            .unwrap()
            .starts_with("[simulated]")
    );
    history.push((content, "$4.54 per hour".to_owned()));
    let (content, second) = turn(&server, TASK, &history).await;
    assert_eq!(second["action"]["args"]["query"], "L40S price");
    history.push((content, "$0.96 per hour".to_owned()));
    let (content, third) = turn(&server, TASK, &history).await;
    assert_eq!(third["action"]["tool_name"], "summarize");
    assert_eq!(
        third["action"]["args"]["text"],
        "A: $4.54 per hour B: $0.96 per hour"
    );
    history.push((content, "short summary".to_owned()));
    let (_, last) = turn(&server, TASK, &history).await;
    assert_eq!(last["action"]["tool_name"], "final_answer");
    let answer = last["action"]["args"]["answer"].as_str().unwrap();
    assert!(answer.starts_with("[simulated]"));

    let stats = server.stats();
    assert_eq!((stats.planner_requests, stats.executor_requests), (4, 0));
    server.shutdown().await;
}

#[tokio::test]
async fn react_turns_without_a_pinned_plan_follow_the_planner_plan() {
    let server = start(SimConfig::default()).await;
    let task = "Compare GPU cloud pricing across three providers for 2026";
    let (status, planned) = chat(&server, &planner_body(task, 10)).await;
    assert_eq!(status, 200);
    let plan: Value = serde_json::from_str(
        planned["choices"][0]["message"]["content"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let steps = plan["steps"].as_array().unwrap();
    let mut history = Vec::new();
    for step in steps {
        let (content, value) = turn(&server, task, &history).await;
        assert_eq!(value["action"]["tool_name"], step["tool_name"], "{value}");
        if step["depends_on"].as_array().unwrap().is_empty() {
            assert_eq!(value["action"]["args"], step["args"]);
        }
        history.push((content, format!("result of step {}", step["step_id"])));
    }
    let (_, last) = turn(&server, task, &history).await;
    assert_eq!(last["action"]["tool_name"], "final_answer");
    server.shutdown().await;
}
