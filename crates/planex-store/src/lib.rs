//! planex-store: where all task state lives, behind one `Store` trait.
//!
//! API replicas and workers are stateless; a store holds tasks, steps, per-tier ready queues with
//! leases, the dead-letter queue and per-task event histories. The key design decision is that
//! `complete` is one atomic operation (store the result, release the lease, decrement dependents,
//! enqueue the newly ready ones, emit events, finish the task): scheduling is event driven, with no
//! polling, and a duplicate or late completion changes nothing.
//!
//! `memory` is the embedded default; `redis` serves many processes on many machines. Every
//! backend runs the same conformance suite unchanged (`planex_testkit::conformance_tests!`, from
//! the dev-only planex-testkit crate), so a second backend is held to the same semantics.

mod changes;
mod check;
mod dead_letters;
mod drift;
mod error;
mod idempotency;
mod ledger;
mod listing;
mod memory;
mod plan_cache;
mod redis;
mod types;
mod workers;

pub use changes::{TaskChange, TaskChangeStream};
pub use dead_letters::{
    BadLetterId, DeadLetter, DeadLetterPage, DeadLetterQuery, LetterId, errors_mention,
};
pub use drift::{
    DriftRecord, DriftSample, DriftSizes, DriftStore, DriftStoreError, LearnedBaseline,
    MemoryDriftStore, learn_baseline, mean_cost, p95_steps,
};
pub use error::StoreError;
pub use idempotency::Submission;
pub use ledger::{
    Account, AccountLimit, Balance, Booking, Denial, Draw, LedgerError, MemoryLedger, Reservation,
    SpendLedger, ledger_usd,
};
pub use listing::{
    BadCursor, PREVIEW_CHARS, SCAN_LIMIT, TaskCursor, TaskListing, TaskPage, TaskQuery, preview,
};
pub use memory::{DEFAULT_FINISHED_TASK_TTL, MemoryStore, MemoryStoreOptions};
pub use plan_cache::{MemoryPlanCache, PlanCache, PlanCacheError};
pub use redis::{RedisStore, RedisStoreOptions, eviction_risk};
pub use types::{
    Completion, EventKind, NewTask, QueueDepth, StepLease, StepOutcome, StepRecord, StepSpec,
    StepState, TaskEvent, TaskRecord, TaskStatus, TaskSummary, now_ms,
};
pub use workers::WorkerTtft;

use async_trait::async_trait;
use futures::stream::BoxStream;
use planex_core::{CallRecord, Plan, StepId, TaskId};
use std::collections::BTreeMap;
use std::time::Duration;

/// The reason (`StepRecord::error`, `StepSkipped`) of a step skipped because its task was cancelled.
pub const CANCELLED: &str = "cancelled";

/// The error of a cancelled task (both backends).
pub const CANCEL_REASON: &str = "cancelled by request; steps not started were skipped, steps running then finish and are billed";

/// A stream of one task's events: its whole history first, then live events; it ends after
/// `TaskCompleted`.
pub type EventStream = BoxStream<'static, TaskEvent>;

/// The storage seam. Every backend gives the same semantics (docs/ARCHITECTURE.md §4 and §6); the
/// conformance suites in `planex-testkit` check them.
///
/// A task's life through the trait: create it, start it with its steps (the ready ones are
/// queued), then workers claim, run and complete steps until the task finishes.
///
/// ```
/// use planex_core::{Plan, Stage, Step, StepId, TaskId};
/// use planex_store::{MemoryStore, NewTask, StepOutcome, StepSpec, Store, TaskStatus};
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), planex_store::StoreError> {
/// let store = MemoryStore::new();
/// let task_id = TaskId::from("demo");
/// store
///     .create_task(NewTask {
///         task_id: task_id.clone(),
///         task: "Summarize GPU prices".into(),
///         tenant: None,
///         cost_center: None,
///         task_type: None,
///         end_user: None,
///         retry_of: None,
///         trace_parent: None,
///     })
///     .await?;
/// let step = Step {
///     step_id: StepId(1),
///     tool_name: "summarize".into(),
///     args: serde_json::Map::new(),
///     depends_on: vec![],
/// };
/// let spec = StepSpec {
///     step: step.clone(),
///     tier: "executor".into(),
///     stage: Stage::Step,
///     tolerate_failed_deps: false,
/// };
/// let plan = Plan { task: "Summarize GPU prices".into(), steps: vec![step], source: Default::default() };
/// store.start_task(&task_id, &plan, vec![spec], vec![]).await?;
///
/// // A worker of the `executor` tier claims the step, runs it and records the outcome.
/// let wait = Duration::from_secs(1);
/// let leases = store.claim("executor", "worker-1", 8, Duration::from_secs(30), wait).await?;
/// let outcome = StepOutcome::Succeeded {
///     result: serde_json::json!("prices are falling"),
///     attempts: 1,
///     calls: vec![],
/// };
/// store.complete(&leases[0], outcome).await?;
///
/// let record = store.get_task(&task_id).await?.expect("the task exists");
/// assert_eq!(record.status, TaskStatus::Complete);
/// assert_eq!(record.answer().as_deref(), Some("prices are falling"));
/// # Ok(())
/// # }
/// ```
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Records a new task in `planning`.
    async fn create_task(&self, task: NewTask) -> Result<(), StoreError>;

    /// Accepts the plan: stores the plan (as `TaskRecord::plan`) and its steps, enqueues the steps
    /// with no dependencies on their tiers' ready queues, records the planner's calls, moves the
    /// task to `running` and emits `Planned`. `steps` are the plan's steps as the store schedules
    /// them (tier, stage), plus any steps the engine adds (synthesis); they must form a DAG
    /// (`StoreError::InvalidSteps` otherwise).
    async fn start_task(
        &self,
        task_id: &TaskId,
        plan: &Plan,
        steps: Vec<StepSpec>,
        planner_calls: Vec<CallRecord>,
    ) -> Result<(), StoreError> {
        self.start_task_reusing(task_id, plan, steps, BTreeMap::new(), planner_calls)
            .await
    }

    /// Like [`Store::start_task`], with some plan steps complete from the start: `reused` maps
    /// their ids to results carried over from an earlier task (a dead letter's replay). Those
    /// steps are stored `complete` with that result, count as done for their dependents, and are
    /// never queued; the rest run as usual. Every dependency of a reused step must be reused too
    /// and at least one step must be left to run (`StoreError::InvalidSteps` otherwise).
    async fn start_task_reusing(
        &self,
        task_id: &TaskId,
        plan: &Plan,
        steps: Vec<StepSpec>,
        reused: BTreeMap<StepId, serde_json::Value>,
        planner_calls: Vec<CallRecord>,
    ) -> Result<(), StoreError>;

    /// Starts a task whose plan streams in (docs/ARCHITECTURE.md §4): `planning` → `running` with
    /// no steps yet and its plan *open*, so it does not finish, whatever its steps do, until
    /// [`Store::close_plan`]. Steps come one batch at a time with [`Store::add_steps`]. The task
    /// stays in the index of planning tasks until it is closed, so orphan recovery can close the
    /// plan of a replica that stopped while writing it.
    async fn open_plan(&self, task_id: &TaskId) -> Result<(), StoreError>;

    /// Adds steps to a task whose plan is open, in order: each may depend on steps added before
    /// (in an earlier call or earlier in `steps`), completed or not. Emits `StepPlanned` for each.
    /// A step whose dependencies have all completed is enqueued at once; one with a dependency that
    /// failed or was skipped is skipped at once (unless it tolerates failed dependencies: then it
    /// waits for the others). `StoreError::InvalidSteps` for a step id already used or a
    /// dependency that is not a step of the task (nothing is added then); `WrongStatus` when the
    /// task is not running with its plan open (e.g. cancelled meanwhile).
    async fn add_steps(&self, task_id: &TaskId, steps: Vec<StepSpec>) -> Result<(), StoreError>;

    /// Begins re-plan round `round` of a task whose plan is open: `steps` are marked superseded
    /// (they no longer count toward the task's status or answer; their state, results and calls
    /// stay), those still pending or ready are skipped with `reason` and never handed out, running
    /// ones finish (their completions record results and calls as usual). Emits `Replanned`.
    async fn supersede_steps(
        &self,
        task_id: &TaskId,
        round: u32,
        steps: &[StepId],
        reason: &str,
    ) -> Result<(), StoreError>;

    /// Closes a task's open plan: stores `plan` (when given) as `TaskRecord::plan`, records
    /// `calls` (the planner's and the joiner's), emits `Planned`, and finishes the task if every
    /// step is terminal already (else its last step does). With `cut_short` the plan did not run
    /// as written (planning failed after steps ran, steps were dropped for budget, its replica
    /// stopped): the task then ends `partial` (or `failed` if no counted step completed) with
    /// that reason first in its error. A task that ended meanwhile (cancelled) only gets the
    /// calls recorded.
    async fn close_plan(
        &self,
        task_id: &TaskId,
        plan: Option<&Plan>,
        calls: Vec<CallRecord>,
        cut_short: Option<String>,
    ) -> Result<(), StoreError>;

    /// Ends a task that never ran (planning failed, or it was rejected), keeping its calls.
    async fn finish_unplanned(
        &self,
        task_id: &TaskId,
        status: TaskStatus,
        reason: String,
        calls: Vec<CallRecord>,
    ) -> Result<(), StoreError>;

    /// Cancels a task still `planning` or `running`: its pending and ready steps become `skipped`
    /// (reason [`CANCELLED`]), it ends `cancelled` (`TaskCompleted` is emitted) and no step of it
    /// is handed out again (not even a redelivery or a released step). Steps running now finish:
    /// their completions still record results and calls, but start no dependents. A finished task
    /// is `StoreError::WrongStatus`.
    async fn cancel_task(&self, task_id: &TaskId) -> Result<(), StoreError>;

    /// Takes up to `max` ready steps of `tier` for `worker`, leasing each for `lease`. Waits up to
    /// `wait` for work when none is ready (woken by enqueues, not by polling). Steps whose lease
    /// expired are redelivered first; a step delivered more than the backend's bound goes to the
    /// dead-letter queue instead.
    async fn claim(
        &self,
        tier: &str,
        worker: &str,
        max: usize,
        lease: Duration,
        wait: Duration,
    ) -> Result<Vec<StepLease>, StoreError>;

    /// Extends a lease still held; false when it was lost (expired and redelivered, or completed).
    async fn extend_lease(&self, lease: &StepLease, by: Duration) -> Result<bool, StoreError>;

    /// Gives a leased step back to the ready queue without counting against it (graceful shutdown).
    async fn release(&self, lease: &StepLease) -> Result<(), StoreError>;

    /// Records a step's outcome atomically. Idempotent: the first outcome for a step wins and any
    /// later one returns `Completion::Duplicate`.
    async fn complete(
        &self,
        lease: &StepLease,
        outcome: StepOutcome,
    ) -> Result<Completion, StoreError>;

    /// Tasks still `planning` (or `running` with their plan open: a streamed plan not closed yet)
    /// that were created at or before `created_by_ms` (store clock, ms
    /// since the epoch), oldest first, at most `limit`: what orphan recovery checks for a replica
    /// that stopped while planning them (docs/ARCHITECTURE.md §6).
    async fn planning_tasks(
        &self,
        created_by_ms: u64,
        limit: usize,
    ) -> Result<Vec<TaskId>, StoreError>;

    /// A page of one tenant's tasks, newest first, optionally of one status (`GET /v1/tasks`): at
    /// most `query.limit` of them, walking at most [`SCAN_LIMIT`] index entries, so a page may be
    /// short and still have a `next` cursor. Tasks whose keys expired are not listed.
    async fn list_tasks(&self, query: &TaskQuery) -> Result<TaskPage, StoreError>;

    /// Reads a task.
    async fn get_task(&self, task_id: &TaskId) -> Result<Option<TaskRecord>, StoreError>;

    /// A task's status, step count and cost, for metrics when it ends; `None` for an unknown
    /// task. Backends override it when they can skip reading the step results, which
    /// [`Store::get_task`] returns too.
    async fn task_summary(&self, task_id: &TaskId) -> Result<Option<TaskSummary>, StoreError> {
        Ok(self.get_task(task_id).await?.map(|task| TaskSummary {
            status: task.status,
            steps: task.steps.len(),
            cost: task.cost(),
        }))
    }

    /// Remembers for `ttl` that the idempotency key `key_digest` of `tenant` names `submission`,
    /// unless the key names one already: then returns that one and changes nothing (atomic, so
    /// concurrent retries agree). `key_digest` is the hex sha256 of the client's key.
    async fn remember_submission(
        &self,
        tenant: &str,
        key_digest: &str,
        submission: &Submission,
        ttl: Duration,
    ) -> Result<Option<Submission>, StoreError>;

    /// Keeps an idempotency key for `ttl` from now: its task is recorded, so retries must find it
    /// for as long as the key is promised to last (the first claim is kept only briefly, so a
    /// claim whose replica died before recording the task lapses by itself).
    async fn confirm_submission(
        &self,
        tenant: &str,
        key_digest: &str,
        ttl: Duration,
    ) -> Result<(), StoreError>;

    /// Forgets an idempotency key (its submission was refused before a task was recorded, so a
    /// retry may try again).
    async fn forget_submission(&self, tenant: &str, key_digest: &str) -> Result<(), StoreError>;

    /// Subscribes to a task's events (history, then live, ending after `TaskCompleted`).
    async fn events(&self, task_id: &TaskId) -> Result<EventStream, StoreError>;

    /// Sends `kind` to whoever follows the task's events now (as a `TaskEvent` with `seq` 0),
    /// without keeping it in the history: progress that is worth showing live but not storing
    /// (`EventKind::AnswerDelta`). Nobody following, or an unknown task, is not an error.
    async fn publish_transient(&self, task_id: &TaskId, kind: EventKind) -> Result<(), StoreError>;

    /// Subscribes to the status changes of every tenant's tasks from now on: creation
    /// (`planning`), start (`running`) and the end (see [`TaskChange`]; the stream may begin
    /// with a `Resync`).
    async fn task_changes(&self) -> Result<TaskChangeStream, StoreError>;

    /// The most recent dead letters of every tenant, newest last (checks and soaks; the API
    /// pages one tenant's with [`Store::dead_letter_page`]).
    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, StoreError>;

    /// A page of one tenant's dead letters, newest first, filtered by `query` (see
    /// `dead_letters.rs`): at most `query.limit`, walking at most [`SCAN_LIMIT`] letters.
    async fn dead_letter_page(&self, query: &DeadLetterQuery)
    -> Result<DeadLetterPage, StoreError>;

    /// One dead letter by id, whatever its tenant (callers check it); `None` when there is no
    /// such letter (never parked, purged, or trimmed past the queue's cap).
    async fn dead_letter(&self, id: LetterId) -> Result<Option<DeadLetter>, StoreError>;

    /// Purges one dead letter; false when there was none with that id. Its task is unchanged.
    async fn purge_dead_letter(&self, id: LetterId) -> Result<bool, StoreError>;

    /// Ready and in-flight step counts of a tier.
    async fn queue_depth(&self, tier: &str) -> Result<QueueDepth, StoreError>;

    /// Says that worker `worker` of `tier` is alive for the next `ttl` (one key per worker on
    /// Redis, not one per step). Workers beat well within `ttl`; once a worker has beaten, a lapse
    /// of its heartbeat lets [`Store::reap_dead_workers`] hand its steps to others at once.
    async fn heartbeat(&self, tier: &str, worker: &str, ttl: Duration) -> Result<(), StoreError>;

    /// How many workers of `tier` have a heartbeat that has not lapsed: what `/readyz` and
    /// `workers_live{tier}` report (a worker counts from its first beat until it retires or its
    /// heartbeat lapses).
    async fn live_workers(&self, tier: &str) -> Result<usize, StoreError>;

    /// Records worker `report.worker`'s rolling TTFT on `tier` (a tier it called, not only its
    /// own) for the next `ttl` (sent with its heartbeat; a report replaces the worker's last one
    /// on that tier).
    async fn report_ttft(
        &self,
        tier: &str,
        report: &WorkerTtft,
        ttl: Duration,
    ) -> Result<(), StoreError>;

    /// The TTFT reports on `tier` that have not lapsed, in no particular order: what
    /// `/v1/scaling` of an API replica that makes no calls to the tier reports.
    async fn tier_ttft(&self, tier: &str) -> Result<Vec<WorkerTtft>, StoreError>;

    /// Expires at once the leases of `tier`'s workers whose heartbeat lapsed (killed with -9, a
    /// lost machine), so the next claim redelivers their steps instead of waiting out the lease
    /// (the redelivery counts, as after a lease expiry), and wakes claims waiting for work.
    /// Workers that never beat are left to their lease expiry. Returns how many leases expired.
    async fn reap_dead_workers(&self, tier: &str) -> Result<usize, StoreError>;

    /// Forgets a worker of `tier` that stopped cleanly (after releasing its steps), so a backend
    /// that keeps per-worker state (Redis consumer groups) does not accumulate the names of every
    /// worker that ever ran, and forgets its heartbeat. A worker still holding steps is kept.
    /// Default: nothing to forget.
    async fn retire_worker(&self, _tier: &str, _worker: &str) -> Result<(), StoreError> {
        Ok(())
    }

    /// Forgets the workers of `tier` that hold no step and have not claimed for at least `idle`:
    /// those that died without retiring (`kill -9`, a lost machine), once their steps were
    /// redelivered. A live worker forgotten while idle is registered again by its next claim.
    /// Returns how many were forgotten. Default: nothing to forget.
    async fn retire_idle_workers(&self, _tier: &str, _idle: Duration) -> Result<usize, StoreError> {
        Ok(0)
    }
}

/// Waits for a task to reach a terminal status, by its events (never by polling), up to `timeout`.
/// Returns the final record, or `None` when the timeout passed first.
pub async fn wait_for_task(
    store: &dyn Store,
    task_id: &TaskId,
    timeout: Duration,
) -> Result<Option<TaskRecord>, StoreError> {
    match wait_for_status(store, task_id, timeout).await? {
        Some(_) => store.get_task(task_id).await,
        None => Ok(None),
    }
}

/// Waits for a task's `TaskCompleted` event, up to `timeout`, and returns the final status it
/// carries without reading the task (cheaper than [`wait_for_task`] when the status is all a
/// caller needs); `None` when the timeout passed first or the task no longer exists.
pub async fn wait_for_status(
    store: &dyn Store,
    task_id: &TaskId,
    timeout: Duration,
) -> Result<Option<TaskStatus>, StoreError> {
    use futures::StreamExt;
    let mut events = store.events(task_id).await?;
    let finished = tokio::time::timeout(timeout, async {
        while let Some(event) = events.next().await {
            if let EventKind::TaskCompleted { status } = event.kind {
                return Some(status);
            }
        }
        None
    })
    .await;
    match finished {
        Ok(Some(status)) => Ok(Some(status)),
        // The stream ended without a completion: the task is gone (expired); read what is left.
        Ok(None) => Ok(store.get_task(task_id).await?.map(|t| t.status)),
        Err(_) => Ok(None),
    }
}
