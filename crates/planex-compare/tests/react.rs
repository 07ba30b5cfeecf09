//! The ReAct baseline against real simulators over HTTP: it follows the plan one action per turn,
//! ends on the final answer or the step limit, carries the whole history, and does the same tool
//! work as plan-and-execute.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use planex_compare::{ReactRunner, ReactSettings, ReactStatus};
use planex_llm::CallContext;
use planex_store::TaskStatus;
use planex_testkit::engine_harness::{Harness, HarnessOptions};
use planex_testkit::fixtures::plan_json;
use serde_json::json;

const TASK: &str = "Research GPU cloud prices and summarize them";

fn research_plan() -> String {
    plan_json(json!([
        {"step_id": 1, "tool_name": "lookup", "args": {"topic": "H200 hourly price"}, "depends_on": []},
        {"step_id": 2, "tool_name": "search", "args": {"query": "L40S hourly price"}, "depends_on": []},
        {"step_id": 3, "tool_name": "lookup", "args": {"topic": "H100 hourly price"}, "depends_on": []},
        {"step_id": 4, "tool_name": "summarize",
         "args": {"text": "Prices:\n{step_1_result}\n{step_2_result}\n{step_3_result}"},
         "depends_on": [1, 2, 3]},
    ]))
}

async fn harness(plan_text: String) -> Harness {
    Harness::start(HarnessOptions {
        workload: vec![(TASK.into(), vec![plan_text])],
        ..HarnessOptions::default()
    })
    .await
}

fn runner(h: &Harness, max_actions: usize) -> ReactRunner {
    ReactRunner::for_engine(
        &h.engine,
        ReactSettings {
            max_actions,
            ..ReactSettings::default()
        },
    )
    .unwrap()
}

#[tokio::test]
async fn react_follows_the_plan_and_ends_on_the_final_answer() {
    let h = harness(research_plan()).await;
    let run = runner(&h, 10).run(TASK, &CallContext::default()).await;
    assert_eq!(run.status, ReactStatus::Answered, "{:?}", run.error);
    assert!(run.answer.as_deref().unwrap().starts_with("[simulated]"));
    let tools: Vec<&str> = run.actions.iter().map(|a| a.tool_name.as_str()).collect();
    assert_eq!(tools, ["lookup", "search", "lookup", "summarize"]);
    assert!(run.actions.iter().all(|a| a.succeeded), "{:?}", run.actions);
    // The model copied every earlier observation into the summarize action's args.
    let text = run.actions[3].args["text"].as_str().unwrap();
    for earlier in &run.actions[..3] {
        assert!(text.contains(&earlier.observation), "{text}");
    }

    // Five turns on the planner tier, each carrying the whole history: prompts strictly grow.
    let usages = h.planner.usages();
    assert_eq!(usages.len(), 5);
    for pair in usages.windows(2) {
        assert!(
            pair[1].prompt_tokens > pair[0].prompt_tokens,
            "history must grow: {usages:?}"
        );
    }
    let requests = h.planner.requests();
    assert_eq!(requests[4].messages.len(), 2 + 2 * 4);
    assert_eq!(
        requests[0].response_format.as_ref().unwrap()["json_schema"]["name"],
        "react_step"
    );

    // Every token the servers counted is in the run's records, and nothing else.
    let cost = run.cost();
    assert_eq!(
        cost.total.calls,
        5 + 3,
        "5 turns + 3 llm tool calls (search is http)"
    );
    assert_eq!(cost.by_tier["planner"].calls, 5);
    let served = h.planner_sim.stats();
    let executed = h.executor_sim.stats();
    assert_eq!(served.planner_requests, 5);
    assert_eq!(executed.executor_requests, 3);
    assert_eq!(
        cost.total.usage.prompt_tokens,
        served.prompt_tokens_total + executed.prompt_tokens_total
    );
    assert_eq!(
        cost.total.usage.completion_tokens,
        served.completion_tokens_total + executed.completion_tokens_total
    );
    assert_eq!(cost.by_stage["synthesis"].calls, 1);
    assert_eq!(cost.by_stage["plan"].calls, 4);
    h.stop().await;
}

#[tokio::test]
async fn react_stops_at_the_step_limit() {
    let h = harness(research_plan()).await;
    let run = runner(&h, 2).run(TASK, &CallContext::default()).await;
    assert_eq!(run.status, ReactStatus::StepLimit);
    assert_eq!(run.actions.len(), 2);
    assert!(run.answer.is_none());
    assert!(run.error.as_deref().unwrap().contains("step limit"));
    // Two actions ran; the third turn asked for another action and the loop stopped.
    assert_eq!(h.planner_sim.stats().planner_requests, 3);
    h.stop().await;
}

#[tokio::test]
async fn bad_actions_become_observations() {
    let h = harness(plan_json(json!([
        {"step_id": 1, "tool_name": "no_such_tool", "args": {"x": "y"}, "depends_on": []},
        {"step_id": 2, "tool_name": "lookup", "args": {"wrong": "field"}, "depends_on": []},
        {"step_id": 3, "tool_name": "lookup", "args": {"topic": "after {step_1_result}"}, "depends_on": [1]},
    ])))
    .await;
    let run = runner(&h, 10).run(TASK, &CallContext::default()).await;
    assert_eq!(run.status, ReactStatus::Answered, "{:?}", run.error);
    assert!(!run.actions[0].succeeded);
    assert!(run.actions[0].observation.contains("no_such_tool"));
    assert!(!run.actions[1].succeeded);
    assert!(run.actions[1].observation.contains("input schema"));
    assert!(run.actions[2].succeeded);
    // The failed tools cost nothing: only the third action reached the executor tier.
    assert_eq!(h.executor_sim.stats().executor_requests, 1);
    h.stop().await;
}

#[tokio::test]
async fn react_and_plan_execute_send_the_same_tool_prompts() {
    let h = harness(research_plan()).await;
    let record = h.run(TASK).await;
    assert_eq!(record.status, TaskStatus::Complete, "{:?}", record.error);
    let prompts = |h: &Harness| {
        let mut texts: Vec<String> = h
            .executor
            .requests()
            .iter()
            .map(|r| r.messages.last().unwrap().content.clone())
            .collect();
        texts.sort();
        texts
    };
    let plan_execute = prompts(&h);
    h.executor.clear_requests();
    let run = runner(&h, 10).run(TASK, &CallContext::default()).await;
    assert_eq!(run.status, ReactStatus::Answered);
    assert_eq!(plan_execute.len(), 3);
    assert_eq!(prompts(&h), plan_execute);
    h.stop().await;
}
