//! The distributed deployment as real processes: `planex serve`, `planex worker` processes per
//! tier, a `planex sim` and a private `redis-server` (see `cluster/`). Every assertion reads the
//! shared store (task records, event histories, dead letters), never process logs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cluster;

use cluster::{Cluster, DONE, Options, until};
use futures::StreamExt;
use planex_core::{Stage, StepId, TaskId};
use planex_store::{EventKind, RedisStore, StepState, Store, TaskRecord, TaskStatus};
use std::collections::BTreeSet;

async fn finished(store: &RedisStore, task: &TaskId) -> TaskRecord {
    planex_store::wait_for_task(store, task, DONE)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("task {task} did not finish within {DONE:?}"))
}

/// Each step's outcome was applied exactly once: one `step_completed` event per step, and the
/// priced calls of one completion only (a duplicate completion is never charged).
async fn assert_applied_once(store: &RedisStore, record: &TaskRecord) {
    let history: Vec<_> = store.events(&record.task_id).await.unwrap().collect().await;
    for (id, step) in &record.steps {
        assert_eq!(
            step.state,
            StepState::Complete,
            "step {id}: {:?}",
            step.error
        );
        assert!(step.result.is_some(), "step {id} has no result");
        let completions = history
            .iter()
            .filter(|e| matches!(e.kind, EventKind::StepCompleted { step_id } if step_id == *id))
            .count();
        assert_eq!(
            completions, 1,
            "step {id} of {} completed {completions} times",
            record.task_id
        );
        // The killed execution's calls are billed on top (docs/ARCHITECTURE.md §5): `interrupted`
        // when the kill cut the call off, `abandoned` when the call had finished but its outcome
        // was not recorded yet (the kill can land either side of the call's end).
        let calls = record
            .calls
            .iter()
            .filter(|c| c.step_id == Some(*id) && c.stage != Stage::Plan)
            .filter(|c| {
                !matches!(
                    c.mark,
                    Some(planex_core::CallMark::Interrupted | planex_core::CallMark::Abandoned)
                )
            })
            .count();
        assert_eq!(
            calls as u32, step.attempts,
            "step {id}: calls of one completion only"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_tasks_complete_on_two_executor_processes_and_one_planner_process() {
    let cluster = tokio::task::block_in_place(|| Cluster::start(Options::default()));
    let (exec_a, ready_line) = tokio::task::block_in_place(|| {
        cluster.worker_with(
            "executor",
            "exec-a",
            30.0,
            5.0,
            &["--metrics-addr", "127.0.0.1:0"],
        )
    });
    let _workers = tokio::task::block_in_place(|| {
        [
            exec_a,
            cluster.worker("executor", "exec-b", 30.0, 5.0),
            cluster.worker("planner", "plan-1", 30.0, 5.0),
        ]
    });
    let submissions =
        (0..50).map(|i| cluster.submit_owned(format!("Research question number {i}")));
    let tasks: Vec<TaskId> = futures::future::join_all(submissions).await;
    let store = cluster.store().await;
    let mut executors = BTreeSet::new();
    for task in &tasks {
        let record = finished(&store, task).await;
        assert_eq!(record.status, TaskStatus::Complete, "{:?}", record.error);
        assert!(record.answer().unwrap().starts_with("[simulated]"));
        assert!(record.steps.len() >= 4, "a plan of 3+ steps plus synthesis");
        for step in record.steps.values() {
            assert_eq!(step.deliveries, 1, "no step was redelivered");
            let worker = step.worker.clone().unwrap();
            if step.spec.stage == Stage::Synthesis {
                assert_eq!(
                    worker, "plan-1",
                    "synthesis runs on the planner tier's worker"
                );
            } else {
                assert!(worker == "exec-a" || worker == "exec-b", "{worker}");
                executors.insert(worker);
            }
        }
        assert_applied_once(&store, &record).await;
    }
    assert_eq!(executors.len(), 2, "both executor processes ran steps");
    let billing = billing_covers_what_was_served(&cluster, &store, &tasks).await;
    assert_eq!(billing.interrupted, 0, "{billing:?}");
    assert_eq!(
        billing.completed, billing.served,
        "nothing was cut off: exactly what was served is billed"
    );
    // A worker's own metrics endpoint shows the steps it ran and its tier's queue.
    let metrics_url = ready_line
        .split("metrics on ")
        .nth(1)
        .unwrap_or_else(|| panic!("no metrics address in {ready_line:?}"))
        .trim_end_matches(')')
        .to_owned();
    let body = cluster
        .http
        .get(&metrics_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        body.lines()
            .any(|l| l.starts_with("step_duration_seconds_count{")
                && l.contains("tier=\"executor\"")
                && !l.ends_with(" 0")),
        "{body}"
    );
    assert!(body.contains("queue_depth{tier=\"executor\"} 0"), "{body}");
    for tier in ["executor", "planner"] {
        let depth = store.queue_depth(tier).await.unwrap();
        assert_eq!(
            (depth.ready, depth.in_flight),
            (0, 0),
            "tier {tier} drained"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_while_holding_steps_loses_nothing_and_applies_each_step_once() {
    // Every model call takes 400 ms, so the first executor certainly holds steps when it dies.
    let cluster = tokio::task::block_in_place(|| {
        Cluster::start(Options {
            ttft_ms: 400,
            ..Options::default()
        })
    });
    let mut victim = tokio::task::block_in_place(|| cluster.worker("executor", "victim", 2.0, 5.0));
    let _planner = tokio::task::block_in_place(|| cluster.worker("planner", "plan-1", 2.0, 5.0));
    let mut tasks = Vec::new();
    for i in 0..6 {
        tasks.push(cluster.submit(&format!("Crash-test question {i}")).await);
    }
    let store = cluster.store().await;
    let mut events = store.events(&tasks[5]).await.unwrap();
    until(
        &mut events,
        "a step started by the victim",
        |kind| matches!(kind, EventKind::StepStarted { worker, .. } if worker == "victim"),
    )
    .await;
    // Killed while that step's model call is in flight (not between its claim and its call).
    cluster
        .until_a_step_call_is_in_flight(&store, &tasks[5], DONE)
        .await;
    tokio::task::block_in_place(|| victim.kill9());
    let _survivor =
        tokio::task::block_in_place(|| cluster.worker("executor", "survivor", 2.0, 5.0));
    let mut redelivered = 0;
    for task in &tasks {
        let record = finished(&store, task).await;
        assert_eq!(record.status, TaskStatus::Complete, "{:?}", record.error);
        assert_applied_once(&store, &record).await;
        for step in record.steps.values() {
            if step.deliveries >= 2 {
                redelivered += 1;
                assert_eq!(step.worker.as_deref(), Some("survivor"));
            }
        }
    }
    assert!(
        redelivered >= 1,
        "the steps the victim held were redelivered"
    );
    let dead: Vec<_> = store.dead_letters(100).await.unwrap();
    assert!(dead.iter().all(|d| !tasks.contains(&d.task_id)), "{dead:?}");
    let billing = billing_covers_what_was_served(&cluster, &store, &tasks).await;
    // Every model call takes 400 ms and the victim was killed holding steps: some of its calls
    // were cut off (served or not by the simulator, the worst case each had drawn is billed).
    assert!(
        billing.interrupted >= 1,
        "no call was billed as interrupted: {billing:?}"
    );
}

/// A worker killed with -9 stops beating: the steps it held go to another worker once its
/// heartbeat lapses, long before its 10-minute lease would have expired (the task finishes within
/// `DONE`, two minutes, which only the heartbeat reaper allows).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_workers_steps_are_redelivered_long_before_its_lease_expires() {
    let cluster = tokio::task::block_in_place(|| {
        Cluster::start(Options {
            ttft_ms: 400,
            ..Options::default()
        })
    });
    let mut victim =
        tokio::task::block_in_place(|| cluster.worker("executor", "victim", 600.0, 5.0));
    let _planner = tokio::task::block_in_place(|| cluster.worker("planner", "plan-1", 2.0, 5.0));
    let task = cluster.submit("Heartbeat question").await;
    let store = cluster.store().await;
    let mut events = store.events(&task).await.unwrap();
    until(
        &mut events,
        "a step started by the victim",
        |kind| matches!(kind, EventKind::StepStarted { worker, .. } if worker == "victim"),
    )
    .await;
    tokio::task::block_in_place(|| victim.kill9());
    let _survivor =
        tokio::task::block_in_place(|| cluster.worker("executor", "survivor", 600.0, 5.0));
    let record = finished(&store, &task).await;
    assert_eq!(record.status, TaskStatus::Complete, "{:?}", record.error);
    let redelivered: Vec<_> = record
        .steps
        .values()
        .filter(|s| s.deliveries >= 2)
        .collect();
    assert!(
        !redelivered.is_empty(),
        "the victim's steps were redelivered"
    );
    assert!(
        redelivered
            .iter()
            .all(|s| s.worker.as_deref() == Some("survivor")),
        "{redelivered:?}"
    );
    assert_applied_once(&store, &record).await;
}

/// What [`billing_covers_what_was_served`] counted.
#[derive(Debug)]
struct Billing {
    /// Tokens of the calls recorded as completed.
    completed: u64,
    /// Tokens the simulator served.
    served: u64,
    /// Calls billed as `interrupted`.
    interrupted: usize,
}

/// Tokens the simulator served against the call records of `tasks` (its only clients) and the
/// ledger (docs/ARCHITECTURE.md §5): every completed call's tokens were served, and what was
/// served beyond them (calls cut off by a kill) is covered by the `interrupted` calls' worst
/// cases, so billed >= served; the ledger's spend is the call records' sum (each call rounded up
/// to the nano-dollar, the ledger's unit).
async fn billing_covers_what_was_served(
    cluster: &Cluster,
    store: &RedisStore,
    tasks: &[TaskId],
) -> Billing {
    let (mut completed, mut billed, mut cost) = (0u64, 0u64, planex_core::Decimal::ZERO);
    let mut interrupted = 0;
    for task in tasks {
        let record = finished(store, task).await;
        for call in &record.calls {
            let tokens = call.usage.prompt_tokens + call.usage.completion_tokens;
            billed += tokens;
            if call.mark == Some(planex_core::CallMark::Interrupted) {
                interrupted += 1;
            } else {
                completed += tokens;
            }
        }
        assert_eq!(
            record.cost().total.cost_usd,
            record.calls.iter().map(|c| c.cost_usd).sum(),
            "task {task}'s cost is its calls'"
        );
        // The ledger books each call rounded up to the nano-dollar.
        cost += record
            .calls
            .iter()
            .map(|c| planex_store::ledger_usd(c.cost_usd))
            .sum::<planex_core::Decimal>();
    }
    let stats = cluster::sim_stats(&cluster.http, &cluster.sim_url).await;
    let served = stats["prompt_tokens_total"].as_u64().unwrap()
        + stats["completion_tokens_total"].as_u64().unwrap();
    assert!(
        completed <= served,
        "calls recorded as completed hold {completed} tokens, the simulator served {served}"
    );
    assert!(
        billed >= served,
        "billed {billed} tokens ({interrupted} interrupted calls at their worst case), served {served}"
    );
    let spend = cluster.get_json("/v1/spend").await;
    // The ledger charged exactly what the tasks' records add up to: calls cut off by the kill are
    // recorded as `interrupted`, calls that completed on the victim before it could record the
    // step's outcome as `abandoned` (docs/ARCHITECTURE.md §5).
    let spent: planex_core::Decimal = spend["total"]["spent_usd"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(spent, cost, "ledger {spent} != records {cost}: {spend}");
    assert_eq!(spend["total"]["reserved_usd"], "0", "{spend}");
    Billing {
        completed,
        served,
        interrupted,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_mid_run_is_survived_by_every_process() {
    let mut cluster = tokio::task::block_in_place(|| {
        Cluster::start(Options {
            appendonly: true,
            ttft_ms: 150,
            ..Options::default()
        })
    });
    let _workers = tokio::task::block_in_place(|| {
        [
            cluster.worker("executor", "exec-a", 3.0, 5.0),
            cluster.worker("executor", "exec-b", 3.0, 5.0),
            cluster.worker("planner", "plan-1", 3.0, 5.0),
        ]
    });
    let mut tasks = Vec::new();
    for i in 0..12 {
        tasks.push(cluster.submit(&format!("Restart-test question {i}")).await);
    }
    let store = cluster.store().await;
    let mut events = store.events(&tasks[0]).await.unwrap();
    until(&mut events, "a first completed step", |kind| {
        matches!(kind, EventKind::StepCompleted { .. })
    })
    .await;
    tokio::task::block_in_place(|| cluster.redis.restart()).expect("restart the redis-server");
    // The API replica reconnects by itself too: a task submitted after the restart runs.
    tasks.push(cluster.submit("Question asked after the restart").await);
    for task in &tasks {
        let Some(record) = planex_store::wait_for_task(&store, task, DONE)
            .await
            .unwrap()
        else {
            panic!(
                "task {task} did not finish within {DONE:?}: {:#?}\n{}",
                store.get_task(task).await,
                cluster.logs()
            );
        };
        assert_eq!(
            record.status,
            TaskStatus::Complete,
            "task {task}: {:?}",
            record.error
        );
        assert!(record.steps.values().all(|s| s.result.is_some()));
    }
}

fn pinned(task: &str, steps: serde_json::Value) -> String {
    serde_json::json!({ "task": task, "plan": { "task": task, "steps": steps } }).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_that_kills_its_worker_every_time_is_dead_lettered_and_the_task_ends() {
    // Step 1 never finishes (the simulator hangs on it); each worker that takes it dies.
    let task_text = "Summarize the poison";
    let workload = pinned(
        task_text,
        serde_json::json!([
            {"step_id": 1, "tool_name": "summarize", "args": {"text": "#sim:hang poison"}, "depends_on": []},
            {"step_id": 2, "tool_name": "summarize", "args": {"text": "{step_1_result}"}, "depends_on": [1]}
        ]),
    );
    let cluster = tokio::task::block_in_place(|| {
        Cluster::start(Options {
            workload,
            max_deliveries: 2,
            ..Options::default()
        })
    });
    let _planner = tokio::task::block_in_place(|| cluster.worker("planner", "plan-1", 1.0, 5.0));
    let task = cluster.submit(task_text).await;
    let store = cluster.store().await;
    let mut events = store.events(&task).await.unwrap();
    let mut kills = 0;
    for round in 0..6 {
        let id = format!("exec-{round}");
        let mut worker = tokio::task::block_in_place(|| cluster.worker("executor", &id, 1.0, 5.0));
        let kind = until(&mut events, "step 1 started or failed", |kind| {
            matches!(
                kind,
                EventKind::StepStarted {
                    step_id: StepId(1),
                    ..
                } | EventKind::StepFailed { .. }
            )
        })
        .await;
        match kind {
            EventKind::StepStarted { worker: holder, .. } => {
                assert_eq!(holder, id);
                tokio::task::block_in_place(|| worker.kill9());
                kills += 1;
            }
            _ => break,
        }
    }
    assert_eq!(kills, 2, "killed once per allowed delivery");
    let record = finished(&store, &task).await;
    // Not stuck: the task ends. No plan step completed, so it ends `failed` with no synthesis
    // (docs/ARCHITECTURE.md §4, no paid answer from nothing).
    assert_eq!(record.status, TaskStatus::Failed, "not stuck");
    let step = |n| &record.steps[&StepId(n)];
    assert_eq!(step(1).state, StepState::Failed);
    assert!(step(1).error.as_deref().unwrap().contains("poison"));
    assert_eq!(step(2).state, StepState::Skipped);
    let synthesis = record
        .steps
        .values()
        .find(|s| s.spec.stage == Stage::Synthesis)
        .unwrap();
    assert_eq!(
        synthesis.state,
        StepState::Skipped,
        "nothing was produced, so nothing is synthesised"
    );
    let letter = store
        .dead_letters(100)
        .await
        .unwrap()
        .into_iter()
        .find(|d| d.task_id == task)
        .expect("the poison step is in the dead-letter stream");
    assert_eq!((letter.step_id, letter.deliveries), (StepId(1), 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_releases_held_steps_without_counting_a_delivery() {
    let task_text = "Summarize slowly";
    let workload = pinned(
        task_text,
        serde_json::json!([
            {"step_id": 1, "tool_name": "summarize", "args": {"text": "#sim:hang slow"}, "depends_on": []}
        ]),
    );
    let cluster = tokio::task::block_in_place(|| {
        Cluster::start(Options {
            workload,
            ..Options::default()
        })
    });
    let mut worker =
        tokio::task::block_in_place(|| cluster.worker("executor", "graceful", 30.0, 0.3));
    let task = cluster.submit(task_text).await;
    let store = cluster.store().await;
    let mut events = store.events(&task).await.unwrap();
    until(&mut events, "step 1 started", |kind| {
        matches!(
            kind,
            EventKind::StepStarted {
                step_id: StepId(1),
                ..
            }
        )
    })
    .await;
    worker.sigterm();
    let line = tokio::task::block_in_place(|| worker.wait_line("stopped", cluster::START));
    assert!(line.contains("1 unfinished steps released"), "{line}");
    assert!(worker.exit_success(), "a graceful stop exits 0");
    let record = store.get_task(&task).await.unwrap().unwrap();
    let step = &record.steps[&StepId(1)];
    assert_eq!((step.state, step.deliveries), (StepState::Ready, 0));
    let depth = store.queue_depth("executor").await.unwrap();
    assert_eq!(
        (depth.ready, depth.in_flight),
        (1, 0),
        "back in the ready queue at once"
    );
    // It left the tier's consumer group: past workers do not pile up there.
    let consumers = cluster
        .redis
        .consumers("px:ready:{executor}")
        .await
        .unwrap();
    assert!(consumers.is_empty(), "{consumers:?}");
}

#[test]
fn worker_refuses_a_private_store_and_unknown_tiers_with_clear_errors() {
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_planex"))
            .args(args)
            .env_remove("PLANEX_LOG")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} must fail");
        String::from_utf8(out.stderr).unwrap()
    };
    let memory = run(&["worker", "--tier", "executor"]);
    assert!(memory.contains("needs a store shared"), "{memory}");
    let unknown = run(&["worker", "--tier", "gpu9", "--store", "redis://127.0.0.1:1"]);
    assert!(
        unknown.contains("is not a tier") && unknown.contains("executor"),
        "{unknown}"
    );
    let bad_url = run(&["run", "--store", "mysql://x", "task"]);
    assert!(bad_url.contains("--store"), "{bad_url}");
}

#[test]
fn worker_with_an_unusable_metrics_address_fails_before_claiming() {
    let redis = planex_testkit::redis::RedisServer::start().expect("start a private redis-server");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_planex"))
        .args(["worker", "--tier", "executor", "--store", &redis.url()])
        .args(["--metrics-addr", "not-an-address"])
        .env_remove("PLANEX_LOG")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("cannot listen on --metrics-addr not-an-address"),
        "{stderr}"
    );
    assert!(
        !String::from_utf8(out.stdout)
            .unwrap()
            .contains("serving tier"),
        "it never reported ready"
    );
}
