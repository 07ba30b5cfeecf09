//! The backend-neutral conformance suites: the semantics every `Store`, `SpendLedger` and
//! `PlanCache` must have.
//!
//! A backend's integration test calls `planex_testkit::conformance_tests!(factory)`, where
//! `factory` is an async fn returning a fresh, empty `Arc<dyn Store>` configured with
//! `max_deliveries =` [`MAX_DELIVERIES`]; likewise [`crate::ledger_conformance_tests!`] and
//! [`crate::plan_cache_conformance_tests!`] with factories of `Arc<dyn SpendLedger>` and
//! `Arc<dyn PlanCache>`, and [`crate::drift_conformance_tests!`] with `Arc<dyn DriftStore>`. Each case becomes its own `#[tokio::test]` (the calling crate needs
//! `tokio` with its macros). Waits are on events with timeouts (claim's own wait), never sleeps.
//!
//! The store cases are in [`scheduling`] (claims, completions, leases, dead letters) and
//! [`records`] (events, queue depths, errors, task records and costs) and [`lifecycle`]
//! (idempotency keys, cancelling) and [`listing`] (listing a tenant's tasks), [`changes`] (task status changes, live), [`streamed`] (plans that stream in), [`heartbeats`] (dead workers' steps), [`dead_letters`] (paging, purging, replaying them),
//! and the scheduler's
//! properties on random DAGs in [`properties`].
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test cases: failing = panicking.

pub mod changes;
pub mod dead_letters;
pub mod drift;
pub mod heartbeats;
pub mod ledger;
pub mod lifecycle;
pub mod listing;
pub mod meter;
pub mod plan_cache;
pub mod properties;
pub mod records;
pub mod scheduling;
pub mod streamed;

pub use changes::*;
pub use dead_letters::*;
pub use heartbeats::*;
pub use lifecycle::*;
pub use listing::*;
pub use properties::*;
pub use records::*;
pub use scheduling::*;
pub use streamed::*;

use crate::store::call_record;
use planex_core::{Stage, StepId, TaskId};
use planex_store::{StepLease, StepOutcome, StepState, Store};
use std::collections::BTreeSet;
use std::time::Duration;

/// The delivery bound the factory's store must be configured with.
pub const MAX_DELIVERIES: u32 = 3;
/// A lease no case outlives.
const LONG: Duration = Duration::from_secs(30);
/// How long a case waits for work or events that must come.
const WAIT: Duration = Duration::from_secs(10);

/// A success whose one model call (5 prompt tokens, $5) is charged to the task.
fn ok(value: &str) -> StepOutcome {
    StepOutcome::Succeeded {
        result: serde_json::json!(value),
        attempts: 1,
        calls: vec![call_record(Stage::Step, 5)],
    }
}

fn failed(why: &str) -> StepOutcome {
    StepOutcome::Failed {
        error: why.into(),
        attempts: 4,
        calls: vec![],
        attempt_errors: Vec::new(),
    }
}

async fn claim_ids(store: &dyn Store, tier: &str, max: usize, wait: Duration) -> Vec<StepLease> {
    store.claim(tier, "w1", max, LONG, wait).await.unwrap()
}

fn ids(leases: &[StepLease]) -> BTreeSet<u32> {
    leases.iter().map(|l| l.spec.step.step_id.0).collect()
}

async fn state(store: &dyn Store, task: &TaskId, step: u32) -> StepState {
    store.get_task(task).await.unwrap().unwrap().steps[&StepId(step)].state
}

/// Generates one `#[tokio::test]` per `Store` conformance case for a backend, from an async
/// factory of fresh, empty `Arc<dyn Store>`s configured with [`crate::conformance::MAX_DELIVERIES`].
#[macro_export]
macro_rules! conformance_tests {
    ($factory:path) => {
        $crate::conformance_tests!(@cases $factory;
            roots_ready_dependents_wait, completion_is_idempotent, failure_dead_letters_and_skips_dependents,
            tolerant_step_runs_after_failed_dependency, tolerant_step_runs_when_its_last_dependency_fails,
            tolerant_step_is_skipped_when_no_dependency_completed, expired_lease_is_redelivered,
            poison_step_goes_to_dead_letters, release_returns_step_uncounted, extended_lease_is_kept,
            events_replay_then_follow_and_end, batched_steps_keep_events_in_order, claim_wakes_on_enqueue, queue_depth_counts_ready_and_in_flight,
            tiers_are_separate, concurrent_claimers_never_share_a_step, errors_for_unknown_and_invalid,
            unplanned_tasks_finish_with_reason, costs_accumulate_over_stages,
            summary_matches_the_full_record, idempotency_keys_are_first_wins_per_tenant,
            idempotency_keys_expire, concurrent_idempotency_claims_agree,
            cancel_skips_waiting_steps_and_keeps_running_ones,
            a_cancelled_tasks_steps_are_never_redelivered, a_task_cancelled_while_planning_cannot_start,
            planning_tasks_are_listed_until_they_move_on,
            tasks_are_listed_per_tenant_newest_first_a_page_at_a_time,
            task_changes_follow_each_task_from_creation_to_its_end,
            a_reader_that_falls_behind_is_told_to_resync,
            transient_events_reach_followers_and_stay_out_of_the_history,
            random_dags_keep_the_scheduler_invariants,
            a_streamed_plan_runs_steps_as_they_are_added, a_closed_plan_finishes_with_its_last_step,
            added_steps_are_checked_and_follow_failed_dependencies, superseded_steps_no_longer_count,
            a_plan_cut_short_or_cancelled_says_why,
            a_dead_workers_steps_are_redelivered_without_waiting_for_the_lease,
            a_dead_letter_lists_each_lost_delivery_and_failed_attempt,
            workers_report_their_tiers_ttft,
            leases_carry_their_tasks_trace_parent,
            dead_letters_are_paged_per_tenant_read_and_purged,
            a_task_started_with_reused_results_runs_only_the_rest, reused_results_are_checked);
    };
    (@cases $factory:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                $crate::conformance::$case($factory().await).await;
            }
        )*
    };
}
