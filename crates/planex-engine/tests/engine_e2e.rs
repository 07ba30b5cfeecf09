//! The engine end to end: planner and executor tiers are real simulators over loopback HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use planex_core::{Decimal, StepId};
use planex_engine::TaskRequest;
use planex_llm::Role;
use planex_store::{EventKind, StepState, TaskStatus};
use planex_testkit::engine_harness::*;
use planex_testkit::fixtures::plan_json;
use serde_json::json;

fn position(events: &[planex_store::TaskEvent], wanted: impl Fn(&EventKind) -> bool) -> usize {
    events
        .iter()
        .position(|e| wanted(&e.kind))
        .expect("event not found")
}

fn started(step: u32) -> impl Fn(&EventKind) -> bool {
    move |k| matches!(k, EventKind::StepStarted { step_id, .. } if *step_id == StepId(step))
}

fn completed(step: u32) -> impl Fn(&EventKind) -> bool {
    move |k| matches!(k, EventKind::StepCompleted { step_id } if *step_id == StepId(step))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn independent_steps_overlap_and_the_join_waits_for_both() {
    let task = "compare two GPU clouds";
    let fan_out = plan_json(json!([
        {"step_id": 1, "tool_name": "lookup", "args": {"topic": "cloud A"}, "depends_on": []},
        {"step_id": 2, "tool_name": "lookup", "args": {"topic": "cloud B"}, "depends_on": []},
        {"step_id": 3, "tool_name": "summarize", "args": {"text": "{step_1_result} vs {step_2_result}"}, "depends_on": [1, 2]}
    ]));
    let h = Harness::start(HarnessOptions {
        workload: vec![(task.into(), vec![fan_out])],
        executor_ttft_ms: 150,
        ..HarnessOptions::default()
    })
    .await;
    let record = h.run(task).await;
    assert_eq!(record.status, TaskStatus::Complete, "{:?}", record.error);
    let events = h.events(&record).await;
    let first_done = position(&events, completed(1)).min(position(&events, completed(2)));
    assert!(
        position(&events, started(1)) < first_done,
        "step 1 must start before either finishes"
    );
    assert!(
        position(&events, started(2)) < first_done,
        "step 2 must start before either finishes"
    );
    let last_done = position(&events, completed(1)).max(position(&events, completed(2)));
    assert!(
        position(&events, started(3)) > last_done,
        "step 3 must wait for steps 1 and 2"
    );
    assert!(
        h.executor_sim.stats().max_in_flight >= 2,
        "the simulator must have served steps 1 and 2 at once"
    );
    // Step 3's prompt carried both results, substituted for the placeholders.
    let requests = h.executor.requests();
    let step3_prompt = &requests.last().unwrap().messages[1].content;
    for step in [1, 2] {
        let result = record.steps[&StepId(step)]
            .result
            .as_ref()
            .unwrap()
            .as_str()
            .unwrap();
        assert!(
            step3_prompt.contains(result),
            "step 3 prompt lacks step {step}'s result"
        );
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_500s_are_retried_and_400_is_not() {
    let task = "retry semantics";
    let steps = plan_json(json!([
        {"step_id": 1, "tool_name": "lookup", "args": {"topic": "flaky #sim:fail=500x2"}, "depends_on": []},
        {"step_id": 2, "tool_name": "lookup", "args": {"topic": "bad request #sim:fail=400"}, "depends_on": []}
    ]));
    let h = Harness::start(HarnessOptions {
        workload: vec![(task.into(), vec![steps])],
        ..Default::default()
    })
    .await;
    let record = h.run(task).await;
    let flaky = &record.steps[&StepId(1)];
    assert_eq!(flaky.state, StepState::Complete);
    assert_eq!(flaky.attempts, 3, "500, 500, then 200");
    let bad = &record.steps[&StepId(2)];
    assert_eq!(bad.state, StepState::Failed);
    assert_eq!(bad.attempts, 1, "a 400 must not be retried");
    assert!(
        bad.error.as_deref().unwrap().contains("400"),
        "{:?}",
        bad.error
    );
    assert_eq!(record.status, TaskStatus::Partial);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_that_always_fails_is_dead_lettered_and_skips_its_dependents() {
    let task = "one broken source";
    let steps = plan_json(json!([
        {"step_id": 1, "tool_name": "lookup", "args": {"topic": "down #sim:fail=503"}, "depends_on": []},
        {"step_id": 2, "tool_name": "lookup", "args": {"topic": "up"}, "depends_on": []},
        {"step_id": 3, "tool_name": "summarize", "args": {"text": "{step_1_result}"}, "depends_on": [1]},
        {"step_id": 4, "tool_name": "summarize", "args": {"text": "{step_3_result}"}, "depends_on": [3]}
    ]));
    let h = Harness::start(HarnessOptions {
        workload: vec![(task.into(), vec![steps])],
        synthesis: true,
        ..Default::default()
    })
    .await;
    let record = h.run(task).await;
    assert_eq!(record.status, TaskStatus::Partial);
    assert_eq!(record.steps[&StepId(1)].state, StepState::Failed);
    assert_eq!(
        record.steps[&StepId(1)].attempts,
        4,
        "first try plus three retries"
    );
    assert_eq!(record.steps[&StepId(3)].state, StepState::Skipped);
    assert_eq!(record.steps[&StepId(4)].state, StepState::Skipped);
    assert_eq!(record.steps[&StepId(2)].state, StepState::Complete);
    let reason = record.error.clone().unwrap();
    assert!(
        reason.contains("step 1 failed") && reason.contains("503"),
        "{reason}"
    );
    assert!(
        reason.contains("step 3 skipped") && reason.contains("step 4 skipped"),
        "{reason}"
    );
    let dlq = h.store.dead_letters(10).await.unwrap();
    assert_eq!(dlq.len(), 1);
    assert_eq!(
        (dlq[0].step_id, dlq[0].tool_name.as_str()),
        (StepId(1), "lookup")
    );
    // The letter lists the three attempts before the last, each with its own error.
    let earlier = &dlq[0].attempt_errors;
    assert_eq!(earlier.len(), 3, "{earlier:?}");
    for (i, text) in earlier.iter().enumerate() {
        assert!(
            text.starts_with(&format!("tier executor, attempt {}: ", i + 1))
                && text.contains("503"),
            "{earlier:?}"
        );
    }
    // Synthesis still ran on what was produced and says which steps are missing.
    let synthesis = &record.steps[&StepId(5)];
    assert_eq!(synthesis.state, StepState::Complete);
    let prompt = h.planner.requests().last().unwrap().messages[1]
        .content
        .clone();
    assert!(prompt.contains("[step 1] (no result"), "{prompt}");
    assert!(record.answer().is_some());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_plan_gets_exactly_one_replan_carrying_the_error() {
    let task = "replan once";
    let invalid =
        plan_json(json!([{"step_id": 1, "tool_name": "teleport", "args": {}, "depends_on": []}]));
    let valid = plan_json(
        json!([{"step_id": 1, "tool_name": "lookup", "args": {"topic": "x"}, "depends_on": []}]),
    );
    let h = Harness::start(HarnessOptions {
        workload: vec![(task.into(), vec![invalid, valid])],
        ..Default::default()
    })
    .await;
    let record = h.run(task).await;
    assert_eq!(record.status, TaskStatus::Complete, "{:?}", record.error);
    let requests = h.planner.requests();
    assert_eq!(requests.len(), 2);
    let correction = requests[1].messages.last().unwrap();
    assert_eq!(correction.role, Role::User);
    assert!(
        correction.content.contains("unknown tool \"teleport\""),
        "{}",
        correction.content
    );
    assert!(
        correction.content.contains("lookup"),
        "the error lists the known tools"
    );
    assert_eq!(
        record.cost().by_stage["plan"].calls,
        2,
        "both planner calls are charged"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_invalid_plans_fail_the_task() {
    let task = "never valid";
    let h = Harness::start(HarnessOptions {
        workload: vec![(task.into(), vec!["{\"steps\": [".into()])],
        ..Default::default()
    })
    .await;
    let record = h.run(task).await;
    assert_eq!(record.status, TaskStatus::Failed);
    let reason = record.error.unwrap();
    assert!(reason.contains("invalid plan twice"), "{reason}");
    assert_eq!(
        h.planner_sim.stats().planner_requests,
        2,
        "no third planner call"
    );
    assert_eq!(
        h.executor_sim.stats().requests_total,
        0,
        "no executor time is spent on an invalid plan"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_and_cost_totals_equal_the_reported_usage() {
    let h = Harness::start(HarnessOptions {
        synthesis: true,
        ..Default::default()
    })
    .await;
    // No pinned plan: the simulator generates a fan-out plan over the catalog.
    let record = h.run("market research on inference hardware").await;
    assert_eq!(record.status, TaskStatus::Complete, "{:?}", record.error);
    let cost = record.cost();
    let planner_usage = h.planner.usages();
    let executor_usage = h.executor.usages();
    let sum = |u: &[planex_core::Usage]| {
        u.iter()
            .map(|u| u.prompt_tokens + u.completion_tokens)
            .sum::<u64>()
    };
    assert_eq!(cost.by_tier["planner"].usage.total(), sum(&planner_usage));
    assert_eq!(cost.by_tier["executor"].usage.total(), sum(&executor_usage));
    assert_eq!(
        cost.total.usage.total(),
        sum(&planner_usage) + sum(&executor_usage)
    );
    let sim_tokens = h.planner_sim.stats().prompt_tokens_total
        + h.planner_sim.stats().completion_tokens_total
        + h.executor_sim.stats().prompt_tokens_total
        + h.executor_sim.stats().completion_tokens_total;
    assert_eq!(
        cost.total.usage.total(),
        sim_tokens,
        "equal to what the simulators counted"
    );
    let price =
        |usd: &str, tps: u32| Decimal::from_str_exact(usd).unwrap() / Decimal::from(tps * 3600);
    let expected = price("4.54", 2500) * Decimal::from(sum(&planner_usage))
        + price("0.96", 6000) * Decimal::from(sum(&executor_usage));
    assert_eq!(cost.total.cost_usd.round_dp(18), expected.round_dp(18));
    assert!(cost.by_stage.contains_key("plan") && cost.by_stage.contains_key("step"));
    assert!(cost.by_stage.contains_key("synthesis"));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_tools_feed_json_fields_to_later_steps() {
    let task = "search then summarize";
    let steps = plan_json(json!([
        {"step_id": 1, "tool_name": "search", "args": {"query": "h200 price"}, "depends_on": []},
        {"step_id": 2, "tool_name": "summarize", "args": {"text": "about {step_1_result.query}"}, "depends_on": [1]}
    ]));
    let h = Harness::start(HarnessOptions {
        workload: vec![(task.into(), vec![steps])],
        ..Default::default()
    })
    .await;
    let record = h.run(task).await;
    assert_eq!(record.status, TaskStatus::Complete, "{:?}", record.error);
    let search = record.steps[&StepId(1)].result.clone().unwrap();
    assert_eq!(search["query"], "h200 price");
    assert!(search["results"].as_array().is_some_and(|r| !r.is_empty()));
    let prompt = h.executor.requests().last().unwrap().messages[1]
        .content
        .clone();
    assert!(prompt.ends_with("about h200 price"), "{prompt}");
    assert_eq!(
        record.cost().total.calls,
        2,
        "the http step makes no model call"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_with_reasons() {
    let h = Harness::start(HarnessOptions::default()).await;
    let empty = h
        .engine
        .submit(TaskRequest {
            task: "  ".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(empty.to_string().contains("empty"), "{empty}");
    let too_many = TaskRequest {
        task: "x".into(),
        max_subtasks: Some(1000),
        ..Default::default()
    };
    let err = h.engine.submit(too_many).await.unwrap_err();
    assert!(err.to_string().contains("max_subtasks"), "{err}");
    let unknown = TaskRequest {
        task: "x".into(),
        tools: Some(vec!["nope".into()]),
        ..Default::default()
    };
    let err = h.engine.submit(unknown).await.unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
    h.stop().await;
}
