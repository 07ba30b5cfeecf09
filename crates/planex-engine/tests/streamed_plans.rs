//! Streamed plans end to end: the planner simulator streams its plan over loopback HTTP, the
//! engine runs each step as soon as it is written, and a plan that turns invalid part-way is
//! discarded and re-planned.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use planex_core::{Stage, StepId};
use planex_store::{EventKind, StepState, TaskEvent, TaskStatus};
use planex_testkit::engine_harness::*;
use planex_testkit::fixtures::plan_json;
use serde_json::json;

/// Four steps in three levels: 1 and 2, then 3 after both, then 4.
fn three_levels() -> String {
    plan_json(json!([
        {"step_id": 1, "tool_name": "lookup", "args": {"topic": "cloud A"}, "depends_on": []},
        {"step_id": 2, "tool_name": "lookup", "args": {"topic": "cloud B"}, "depends_on": []},
        {"step_id": 3, "tool_name": "summarize", "args": {"text": "{step_1_result} vs {step_2_result}"}, "depends_on": [1, 2]},
        {"step_id": 4, "tool_name": "summarize", "args": {"text": "{step_3_result}"}, "depends_on": [3]}
    ]))
}

fn position(events: &[TaskEvent], wanted: impl Fn(&EventKind) -> bool) -> Option<usize> {
    events.iter().position(|e| wanted(&e.kind))
}

/// The step ids of a record's plan (the plan that counts), in order.
fn plan_ids(record: &planex_store::TaskRecord) -> Vec<u64> {
    record.plan.as_ref().unwrap()["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step_id"].as_u64().unwrap())
        .collect()
}

fn planned(events: &[TaskEvent]) -> Vec<StepId> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::StepPlanned { step_id, .. } => Some(*step_id),
            _ => None,
        })
        .collect()
}

/// With a planner writing 100 tokens a second (the plan takes seconds), the first steps run
/// and finish while the plan is still being written: their events come before `planned`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_run_while_the_planner_is_still_writing() {
    let task = "compare two GPU clouds, streamed";
    let h = Harness::start(HarnessOptions {
        workload: vec![(task.into(), vec![three_levels()])],
        planner_tps: Some(100.0),
        ..HarnessOptions::default()
    })
    .await;
    let record = h.run(task).await;
    assert_eq!(record.status, TaskStatus::Complete, "{:?}", record.error);
    let events = h.events(&record).await;
    assert_eq!(planned(&events), [1, 2, 3, 4].map(StepId).to_vec());
    let closed = position(&events, |k| matches!(k, EventKind::Planned { .. })).unwrap();
    let first_done = position(
        &events,
        |k| matches!(k, EventKind::StepCompleted { step_id } if *step_id == StepId(1)),
    )
    .unwrap();
    assert!(
        first_done < closed,
        "step 1 must finish before the plan does: {events:#?}"
    );
    let plan = record.plan.as_ref().unwrap();
    assert_eq!(plan["steps"].as_array().unwrap().len(), 4);
    assert_eq!(
        record
            .calls
            .iter()
            .filter(|c| c.stage == Stage::Plan)
            .count(),
        1
    );
    assert!(record.answer().is_some());
    h.stop().await;
}

/// A plan whose third step names an unknown tool: the steps already running are superseded
/// (their results unused, their calls still in the cost), the one re-plan runs under new ids and
/// the task completes from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_that_turns_invalid_part_way_is_discarded_and_replanned() {
    let task = "compare two GPU clouds #sim:invalid_at=3";
    let h = Harness::start(HarnessOptions {
        workload: vec![(task.into(), vec![three_levels(), three_levels()])],
        planner_tps: Some(400.0),
        ..HarnessOptions::default()
    })
    .await;
    let record = h.run(task).await;
    assert_eq!(record.status, TaskStatus::Complete, "{:?}", record.error);
    let events = h.events(&record).await;
    assert_eq!(
        planned(&events),
        [1, 2, 3, 4, 5, 6].map(StepId).to_vec(),
        "steps 1 and 2 streamed before step 3 broke the plan; the re-plan's four follow"
    );
    let replanned = events.iter().find_map(|e| match &e.kind {
        EventKind::Replanned {
            round,
            superseded,
            reason,
        } => Some((*round, superseded.clone(), reason.clone())),
        _ => None,
    });
    let (round, superseded, reason) = replanned.expect("a replanned event");
    assert_eq!((round, superseded), (1, vec![StepId(1), StepId(2)]));
    assert!(reason.contains("sim_no_such_tool"), "{reason}");
    for id in [1, 2] {
        let step = &record.steps[&StepId(id)];
        assert!(step.superseded, "step {id} is superseded");
        let billed = record.calls.iter().any(|c| c.step_id == Some(StepId(id)));
        assert_eq!(
            billed,
            step.state == StepState::Complete,
            "a discarded step that ran is in the cost, one that did not is not"
        );
    }
    assert_eq!(
        plan_ids(&record),
        vec![3, 4, 5, 6],
        "the re-plan runs under new ids"
    );
    let step_4 = &record.steps[&StepId(5)].spec.step;
    assert_eq!(step_4.depends_on, vec![StepId(3), StepId(4)]);
    assert_eq!(
        step_4.args["text"],
        json!("{step_3_result} vs {step_4_result}"),
        "placeholders follow the new ids"
    );
    assert_eq!(
        record
            .calls
            .iter()
            .filter(|c| c.stage == Stage::Plan)
            .count(),
        2,
        "the plan and the re-plan"
    );
    h.stop().await;
}

/// With `stream_plans = false` the whole plan is validated first: no step is planned one by one
/// and none starts before the plan is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_plan_planning_waits_for_the_plan() {
    let task = "compare two GPU clouds, whole";
    let h = Harness::start(HarnessOptions {
        workload: vec![(task.into(), vec![three_levels()])],
        whole_plans: true,
        ..HarnessOptions::default()
    })
    .await;
    let record = h.run(task).await;
    assert_eq!(record.status, TaskStatus::Complete, "{:?}", record.error);
    let events = h.events(&record).await;
    assert!(planned(&events).is_empty());
    assert!(matches!(events[0].kind, EventKind::Planned { steps: 4 }));
    h.stop().await;
}

/// An http tool whose server is gone (a port nothing listens on): every call fails.
fn dead_tool() -> planex_core::ToolSpec {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut tool = search_tool(&format!("http://127.0.0.1:{port}"), "executor");
    tool.name = "prices".into();
    tool.description = "GPU price feed".into();
    tool
}

/// A plan whose price-feed step fails: with `max_replans = 1` the joiner (one decision call, stage
/// `replan`) replaces it with a step on another tool, the failed step is superseded and the task
/// completes, streamed or not; with 0 it ends `partial` as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_joiner_routes_around_a_failed_tool() {
    let task = "find current GPU prices #sim:replan";
    let plan = plan_json(json!([
        {"step_id": 1, "tool_name": "lookup", "args": {"topic": "GPU prices"}, "depends_on": []},
        {"step_id": 2, "tool_name": "prices", "args": {"query": "GPU prices"}, "depends_on": []}
    ]));
    for (whole_plans, max_replans, expected) in [
        (false, 1, TaskStatus::Complete),
        (true, 1, TaskStatus::Complete),
        (false, 0, TaskStatus::Partial),
    ] {
        let h = Harness::start(HarnessOptions {
            workload: vec![(task.into(), vec![plan.clone()])],
            whole_plans,
            max_replans,
            extra_tools: vec![dead_tool()],
            ..HarnessOptions::default()
        })
        .await;
        let record = h.run(task).await;
        let case = format!("whole_plans {whole_plans}, max_replans {max_replans}");
        assert_eq!(record.status, expected, "{case}: {:?}", record.error);
        assert_eq!(record.steps[&StepId(2)].state, StepState::Failed, "{case}");
        let decisions = record
            .calls
            .iter()
            .filter(|c| c.stage == Stage::Replan)
            .count();
        assert_eq!(decisions, max_replans as usize, "{case}");
        if max_replans == 0 {
            assert!(!record.steps[&StepId(2)].superseded);
            h.stop().await;
            continue;
        }
        assert!(record.steps[&StepId(2)].superseded, "{case}");
        let added = &record.steps[&StepId(3)];
        assert_ne!(
            added.spec.step.tool_name, "prices",
            "{case}: the replan avoids the failed tool"
        );
        assert_eq!(added.state, StepState::Complete, "{case}");
        assert_eq!(
            record.steps[&StepId(1)].deliveries,
            1,
            "{case}: the completed step is reused, not run again"
        );
        let events = h.events(&record).await;
        assert!(
            events.iter().any(|e| matches!(&e.kind,
                EventKind::Replanned { round: 1, superseded, .. } if superseded == &vec![StepId(2)])),
            "{case}: {events:#?}"
        );
        assert_eq!(
            plan_ids(&record),
            vec![1, 3],
            "{case}: the plan that counts"
        );
        h.stop().await;
    }
}
