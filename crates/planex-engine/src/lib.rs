//! planex-engine: plan once on a big model, execute every step on small ones.
//!
//! `Engine::submit` runs the planner call (with one re-plan on an invalid plan), turns the plan into
//! step specs (a tier per step from its tool, the routing rules or an allowed planner hint, plus an
//! optional synthesis step on the planner tier; see `routing`) and hands them to
//! the `Store`, which enqueues the ready ones. Per-tier workers (`run_worker`) claim, execute and
//! complete steps; each completion atomically enqueues newly ready dependents, so scheduling is event
//! driven and independent steps run in parallel. The engine holds no task state of its own: any
//! process with the same store, catalog and tiers can serve any task.

mod admission;
mod answer_stream;
pub mod budget;
mod builder;
mod cancel;
mod client_plan;
mod direct;
mod drift;
mod drift_watch;
mod engine;
mod error;
mod escalation;
mod executor;
mod held;
pub mod http_guard;
mod http_tool;
mod joiner;
pub mod mcp;
mod models;
mod plan_cache;
mod planner;
mod recovery;
mod replan;
mod replay;
mod request;
mod routing;
pub mod scaling;
mod scaling_report;
mod settings;
mod settlement;
mod step_specs;
mod stream_state;
mod streamed;
mod submit;
mod synthesis;
mod tool_availability;
mod tool_loop;
mod worker;

pub use budget::{BudgetExceeded, BudgetGuard, BudgetKind, BudgetSettings, MeteredModel};
pub use builder::EngineBuilder;
pub use direct::{PlanPreview, PreviewError, StepRejected, StepRun};
pub use drift::{
    ConfiguredBaseline, DEFAULT_TASK_TYPE, DriftGuard, DriftSettings, DriftStatus,
    STEP_DRIFT_FACTOR, check_task_type,
};
pub use engine::Engine;
pub use error::EngineError;
pub use escalation::{Escalation, escalations};
pub use executor::{Executor, ToolCallOutcome};
pub use joiner::JOIN_SCHEMA_NAME;
pub use models::Models;
pub use plan_cache::{CacheSettings, PlanCacheLayer, plan_cache_key};
pub use planner::{Planned, PlannerSettings, PlanningFailed, plan_task, system_prompt};
pub use recovery::{OrphanRecovery, Recovery};
pub use replay::Replayed;
pub use request::{Reuse, TaskRequest};
pub use routing::{
    RouteDecision, RouteRule, RouteSource, Router, RoutingSettings, TierHints, explain_plan,
    split_tier_hints,
};
pub use settings::EngineSettings;
pub use submit::Accepted;
pub use synthesis::SYNTHESIS_TOOL;
pub use worker::{
    HANDBACK_MIN, HEARTBEAT_LAPSES_AFTER, WorkerExit, WorkerPool, WorkerSettings, run_worker,
};
