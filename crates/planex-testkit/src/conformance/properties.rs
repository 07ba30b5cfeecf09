//! Properties of the scheduler on random DAGs (proptest), run by `conformance_tests!` on every
//! store: 1 to 64 steps of random widths and depths, random failures, worker crashes (a claim
//! whose lease runs out, redelivered), duplicate completions. For every case:
//! every step ends in exactly one terminal state, the one the DAG implies (a failed step's
//! transitive dependents are skipped, no other step is); no step is handed out before all its
//! dependencies completed; each completion is applied once (a second is a duplicate); the task's
//! cost is the sum of its applied call records; the task ends exactly once (one
//! `task_completed`), with the status its steps imply. Some cases cancel the task part-way: no
//! step is handed out after the cancel, and every step that had not ended is skipped.
//!
//! Cases per run: `PLANEX_PROPTEST_CASES` (default 32, what fits CI's budget; a documented longer
//! run uses 1000). A failing case is shrunk and printed with its DAG.

use super::WAIT;
use crate::store::{call_record, running_task, step_spec};
use futures::StreamExt;
use planex_core::{Decimal, Stage, StepId};
use planex_store::{Completion, EventKind, StepOutcome, StepState, Store, TaskStatus};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Most steps in a case.
const MAX_STEPS: usize = 64;

/// One random DAG and what happens to its steps.
#[derive(Debug, Clone)]
struct Case {
    /// `deps[i]`: the (0-based) earlier steps step `i` depends on.
    deps: Vec<BTreeSet<usize>>,
    /// Steps that fail.
    fails: BTreeSet<usize>,
    /// Steps whose first claim crashes (its lease runs out and it is redelivered).
    crashes: BTreeSet<usize>,
    /// Steps whose completion is sent twice.
    duplicates: BTreeSet<usize>,
    /// Steps claimed at once.
    batch: usize,
    /// Cancel the task after this many claims that handed out steps.
    cancel_after: Option<usize>,
}

fn case() -> impl Strategy<Value = Case> {
    (1..=MAX_STEPS)
        .prop_flat_map(|n| {
            (
                proptest::collection::vec((any::<[u16; 3]>(), 0u8..100), n),
                1usize..=8,
                proptest::option::weighted(0.25, 0usize..8),
            )
        })
        .prop_map(|(steps, batch, cancel_after)| {
            let mut case = Case {
                deps: Vec::new(),
                fails: BTreeSet::new(),
                crashes: BTreeSet::new(),
                duplicates: BTreeSet::new(),
                batch,
                cancel_after,
            };
            for (i, (picks, fate)) in steps.into_iter().enumerate() {
                // Up to 3 dependencies among the earlier steps: any depth and width.
                let deps: BTreeSet<usize> = if i == 0 {
                    BTreeSet::new()
                } else {
                    picks
                        .iter()
                        .filter(|p| **p % 3 != 0)
                        .map(|p| usize::from(*p) % i)
                        .collect()
                };
                case.deps.push(deps);
                match fate {
                    0..=7 => case.fails.insert(i),
                    8..=15 => case.crashes.insert(i),
                    16..=27 => case.duplicates.insert(i),
                    _ => false,
                };
            }
            case
        })
}

/// The state each step must end in: skipped when a dependency did not complete, else failed or
/// complete as the case says.
fn expected_states(case: &Case) -> Vec<StepState> {
    let mut states: Vec<StepState> = Vec::with_capacity(case.deps.len());
    for (i, deps) in case.deps.iter().enumerate() {
        let state = if deps.iter().any(|d| states[*d] != StepState::Complete) {
            StepState::Skipped
        } else if case.fails.contains(&i) {
            StepState::Failed
        } else {
            StepState::Complete
        };
        states.push(state);
    }
    states
}

/// Runs `case` on `store` with its steps on tier `tier`; what went wrong, if anything.
async fn run_case(store: &dyn Store, tier: &str, case: &Case) -> Result<(), String> {
    let specs = case
        .deps
        .iter()
        .enumerate()
        .map(|(i, deps)| {
            let deps: Vec<u32> = deps.iter().map(|d| *d as u32 + 1).collect();
            step_spec(i as u32 + 1, &deps, tier)
        })
        .collect();
    let task = running_task(store, specs).await;
    // `running_task` records a $10 planner call; each successful step adds one call of $1.
    let mut cost = Decimal::from(10);
    let mut completed: BTreeSet<usize> = BTreeSet::new();
    let mut crashed: BTreeSet<usize> = BTreeSet::new();
    let mut applied: BTreeMap<usize, u32> = BTreeMap::new();
    let mut failed: BTreeSet<usize> = BTreeSet::new();
    let mut finishes = 0;
    let mut rounds = 0;
    let mut cancelled = false;
    let deadline = Instant::now() + Duration::from_secs(60);
    // A crashed claim's lease runs out at once; the others are completed long before theirs.
    let lease = Duration::from_millis(1);
    loop {
        if Instant::now() > deadline {
            return Err(format!(
                "the task did not end within 60 s; completed {completed:?}"
            ));
        }
        if !cancelled && case.cancel_after == Some(rounds) {
            match store.cancel_task(&task).await {
                Ok(()) => cancelled = true,
                // It ended before the cancel: nothing to cancel.
                Err(planex_store::StoreError::WrongStatus { .. }) => {}
                Err(e) => return Err(format!("cancel: {e}")),
            }
        }
        let leases = store
            .claim(tier, "prop", case.batch, lease, Duration::from_millis(50))
            .await
            .map_err(|e| format!("claim: {e}"))?;
        if cancelled && let Some(lease) = leases.first() {
            return Err(format!(
                "step {} was handed out after the task was cancelled",
                lease.spec.step.step_id
            ));
        }
        if leases.is_empty() {
            let record = store.get_task(&task).await.map_err(|e| e.to_string())?;
            // A cancelled task's crashed step ends (skipped) once a claim sees its lease out.
            if record.is_some_and(|r| {
                r.status.is_terminal() && r.steps.values().all(|s| s.state.is_terminal())
            }) {
                break;
            }
            continue;
        }
        rounds += 1;
        for lease in leases {
            let i = lease.spec.step.step_id.0 as usize - 1;
            if let Some(dep) = case.deps[i].iter().find(|d| !completed.contains(d)) {
                return Err(format!(
                    "step {} was handed out before its dependency {} completed",
                    i + 1,
                    dep + 1
                ));
            }
            if case.crashes.contains(&i) && crashed.insert(i) {
                continue;
            }
            let outcome = if case.fails.contains(&i) {
                StepOutcome::Failed {
                    error: "chosen to fail".into(),
                    attempts: 1,
                    calls: vec![],
                    attempt_errors: Vec::new(),
                }
            } else {
                StepOutcome::Succeeded {
                    result: serde_json::json!(format!("result {}", i + 1)),
                    attempts: 1,
                    calls: vec![call_record(Stage::Step, 1)],
                }
            };
            let succeeded = matches!(outcome, StepOutcome::Succeeded { .. });
            match store
                .complete(&lease, outcome.clone())
                .await
                .map_err(|e| e.to_string())?
            {
                Completion::Applied { task_finished, .. } => {
                    *applied.entry(i).or_default() += 1;
                    if succeeded {
                        completed.insert(i);
                        cost += Decimal::from(1);
                    } else {
                        failed.insert(i);
                    }
                    if task_finished.is_some() {
                        finishes += 1;
                    }
                }
                Completion::Duplicate => {
                    return Err(format!("step {}'s first completion was a duplicate", i + 1));
                }
            }
            if case.duplicates.contains(&i)
                && store
                    .complete(&lease, outcome)
                    .await
                    .map_err(|e| e.to_string())?
                    != Completion::Duplicate
            {
                return Err(format!("step {}'s second completion was applied", i + 1));
            }
        }
    }
    let record = store
        .get_task(&task)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the task vanished")?;
    let expected = if cancelled {
        // What ended before the cancel stays; everything else is skipped.
        (0..case.deps.len())
            .map(|i| {
                if completed.contains(&i) {
                    StepState::Complete
                } else if failed.contains(&i) {
                    StepState::Failed
                } else {
                    StepState::Skipped
                }
            })
            .collect()
    } else {
        expected_states(case)
    };
    for (i, want) in expected.iter().enumerate() {
        let got = record.steps[&StepId(i as u32 + 1)].state;
        if got != *want {
            return Err(format!("step {} ended {got:?}, not {want:?}", i + 1));
        }
    }
    if let Some((i, n)) = applied.iter().find(|(_, n)| **n != 1) {
        return Err(format!("step {}'s completion was applied {n} times", i + 1));
    }
    let done = expected
        .iter()
        .filter(|s| **s == StepState::Complete)
        .count();
    let status = if cancelled {
        TaskStatus::Cancelled
    } else if done == expected.len() {
        TaskStatus::Complete
    } else if done == 0 {
        TaskStatus::Failed
    } else {
        TaskStatus::Partial
    };
    if record.status != status {
        return Err(format!(
            "the task ended {:?}, not {status:?}",
            record.status
        ));
    }
    if record.cost().total.cost_usd != cost {
        return Err(format!(
            "the task cost {} but its applied calls {cost}",
            record.cost().total.cost_usd
        ));
    }
    let want_finishes = usize::from(!cancelled);
    if finishes != want_finishes {
        return Err(format!(
            "{finishes} completions reported the task finished, not {want_finishes}"
        ));
    }
    let events: Vec<_> = tokio::time::timeout(
        WAIT,
        store
            .events(&task)
            .await
            .map_err(|e| e.to_string())?
            .collect::<Vec<_>>(),
    )
    .await
    .map_err(|_| "the event stream of a finished task did not end".to_owned())?;
    let ends = events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::TaskCompleted { .. }))
        .count();
    if ends != 1 {
        return Err(format!("{ends} task_completed events"));
    }
    Ok(())
}

/// The scheduler's properties over `PLANEX_PROPTEST_CASES` random DAGs (see the module doc).
pub async fn random_dags_keep_the_scheduler_invariants(store: Arc<dyn Store>) {
    let cases = std::env::var("PLANEX_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let handle = tokio::runtime::Handle::current();
    let next = AtomicU32::new(0);
    let failure = tokio::task::block_in_place(|| {
        runner
            .run(&case(), |case| {
                let tier = format!("prop{}", next.fetch_add(1, Ordering::Relaxed));
                handle
                    .block_on(run_case(store.as_ref(), &tier, &case))
                    .map_err(TestCaseError::fail)
            })
            .err()
            .map(|failure| failure.to_string())
    });
    if let Some(failure) = failure {
        panic!("{failure}");
    }
}
