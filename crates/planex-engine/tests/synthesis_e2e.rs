//! No paid answer from nothing: when no plan step completed, the synthesis step is skipped (the
//! planner tier serves no synthesis call) and the task ends `failed` with the steps' reasons; when
//! some steps failed, the synthesis prompt names the missing steps and the answer says so. Both
//! tiers are real simulators over loopback HTTP; executor failures are injected 400s (not retried).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use planex_core::{Stage, StepId};
use planex_store::{StepState, TaskStatus};
use planex_testkit::engine_harness::*;
use planex_testkit::fixtures::plan_json;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_every_step_fails_no_synthesis_call_is_made_and_the_task_fails() {
    let task = "every source is down";
    let steps = plan_json(json!([
        {"step_id": 1, "tool_name": "lookup", "args": {"topic": "cloud A #sim:fail=400"}, "depends_on": []},
        {"step_id": 2, "tool_name": "lookup", "args": {"topic": "cloud B #sim:fail=400"}, "depends_on": []},
        {"step_id": 3, "tool_name": "summarize", "args": {"text": "{step_1_result} {step_2_result}"}, "depends_on": [1, 2]}
    ]));
    let h = Harness::start(HarnessOptions {
        workload: vec![(task.into(), vec![steps])],
        synthesis: true,
        ..Default::default()
    })
    .await;
    let record = h.run(task).await;
    assert_eq!(record.status, TaskStatus::Failed, "{:?}", record.error);
    let stats = h.planner_sim.stats();
    assert_eq!(stats.planner_requests, 1, "one planner call");
    assert_eq!(
        stats.executor_requests, 0,
        "the planner tier served no synthesis call"
    );
    assert_eq!(h.planner.requests().len(), 1);
    let synthesis = &record.steps[&StepId(4)];
    assert_eq!(synthesis.spec.stage, Stage::Synthesis);
    assert_eq!(synthesis.state, StepState::Skipped);
    assert!(
        record.calls.iter().all(|c| c.stage != Stage::Synthesis),
        "no synthesis call is billed: {:?}",
        record.calls
    );
    let reason = record.error.clone().unwrap();
    for part in [
        "step 1 failed",
        "step 2 failed",
        "400",
        "step 3 skipped",
        "step 4 skipped",
    ] {
        assert!(reason.contains(part), "{part:?} missing from {reason}");
    }
    assert!(record.answer().is_none());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_some_steps_fail_the_answer_names_the_missing_steps() {
    let task = "one source of three is down";
    let steps = plan_json(json!([
        {"step_id": 1, "tool_name": "lookup", "args": {"topic": "cloud A"}, "depends_on": []},
        {"step_id": 2, "tool_name": "lookup", "args": {"topic": "cloud B #sim:fail=400"}, "depends_on": []},
        {"step_id": 3, "tool_name": "summarize", "args": {"text": "{step_2_result}"}, "depends_on": [2]}
    ]));
    let h = Harness::start(HarnessOptions {
        workload: vec![(task.into(), vec![steps])],
        synthesis: true,
        ..Default::default()
    })
    .await;
    let record = h.run(task).await;
    assert_eq!(record.status, TaskStatus::Partial, "{:?}", record.error);
    assert_eq!(record.steps[&StepId(4)].state, StepState::Complete);
    assert_eq!(
        h.planner_sim.stats().executor_requests,
        1,
        "one synthesis call"
    );
    let prompt = h.planner.requests().last().unwrap().messages[1]
        .content
        .clone();
    assert!(prompt.contains("Missing steps: 2, 3."), "{prompt}");
    assert!(prompt.contains("must say that the results of steps 2, 3 are missing"));
    let answer = record.answer().unwrap();
    assert!(answer.contains("Missing steps: 2, 3."), "{answer}");
    h.stop().await;
}
