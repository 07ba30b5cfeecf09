//! The file format of `planex.toml`: one private struct per section, read by serde from TOML and
//! `PLANEX_*` environment variables. Nothing outside the config module sees these types: they are
//! validated into each crate's own settings (`config/mod.rs` and the modules beside it).
//!
//! Key decisions: unknown fields are errors (`deny_unknown_fields`), because a misspelt price or
//! timeout silently falling back to a default costs money; every enum-like field is a Rust enum, so
//! a value such as `backend = "reddis"` is refused with the list of accepted values.

use planex_core::{Decimal, ToolSpec};
use planex_engine::scaling::{ScalingRule, ScalingSettings};
use planex_engine::{BudgetSettings, EngineSettings, RoutingSettings};
use planex_llm::{HealthCheckKind, HealthPolicy};
use serde::Deserialize;
use std::collections::BTreeMap;

/// `[store] backend`: where task state lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum BackendKind {
    /// In this process (the embedded default).
    Memory,
    /// A Redis server shared by every process.
    Redis,
}

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    /// Engine settings.
    #[serde(default)]
    pub(crate) engine: RawEngine,
    /// Where task state lives.
    #[serde(default)]
    pub(crate) store: RawStore,
    /// Model tiers by name.
    pub(crate) tiers: BTreeMap<String, RawTier>,
    /// The tool catalog.
    #[serde(default)]
    pub(crate) tools: Vec<ToolSpec>,
    /// `[[mcp_servers]]`: MCP servers whose tools join the catalog (validated in `mcp.rs`).
    #[serde(default)]
    pub(crate) mcp_servers: Vec<super::mcp::RawMcpServer>,
    /// `[server]` (validated in `service.rs`).
    #[serde(default)]
    pub(crate) server: RawServer,
    /// `[[api_keys]]`: hashed bearer keys with tenant, cost center and monthly budget.
    #[serde(default)]
    pub(crate) api_keys: Vec<RawApiKey>,
    /// `[budget]`.
    #[serde(default)]
    pub(crate) budget: RawBudget,
    /// `[cache]`.
    #[serde(default)]
    pub(crate) cache: RawCache,
    /// `[routing]`: routing rules and planner tier hints (validated in `routing.rs`).
    #[serde(default)]
    pub(crate) routing: RawRouting,
    /// `[health]`: endpoint cooldown, active checks, model pinning.
    #[serde(default)]
    pub(crate) health: RawHealth,
    /// `[scaling]`: autoscaling thresholds.
    #[serde(default)]
    pub(crate) scaling: RawScaling,
    /// `[drift]`: drift guard sizes and configured baselines (validated in `drift.rs`).
    #[serde(default)]
    pub(crate) drift: super::drift::RawDrift,
}

/// `[engine]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawEngine {
    /// The tier that plans and synthesises.
    pub(crate) planner_tier: String,
    /// Default most steps per plan.
    pub(crate) max_subtasks: usize,
    /// Append a synthesis step by default.
    pub(crate) synthesis: bool,
    /// Cap on the planner's answer in tokens.
    pub(crate) planner_max_tokens: u32,
    /// Most characters of tool listing in the planner's prompt.
    pub(crate) planner_catalog_chars: usize,
    /// Run each step as soon as the streaming planner has written it.
    pub(crate) stream_plans: bool,
    /// Joiner rounds after the DAG ran (0 = none).
    pub(crate) max_replans: u32,
    /// Concurrent steps per tier for in-process workers.
    pub(crate) worker_concurrency: usize,
    /// On shutdown, seconds in-process workers let running steps finish before releasing them.
    pub(crate) drain_secs: f64,
    /// Longest a task may spend planning before it fails, in seconds.
    pub(crate) planning_deadline_secs: u64,
    /// Most steps a client-supplied plan may have (separate from `max_subtasks`).
    pub(crate) max_client_plan_steps: usize,
    /// Longest task text a request may carry, in characters.
    pub(crate) max_task_chars: usize,
}

impl Default for RawEngine {
    fn default() -> Self {
        let d = EngineSettings::default();
        RawEngine {
            planner_tier: d.planner_tier,
            max_subtasks: d.max_subtasks,
            synthesis: d.synthesis,
            planner_max_tokens: d.planner.max_tokens,
            planner_catalog_chars: d.planner.max_catalog_chars,
            stream_plans: d.planner.stream,
            max_replans: d.planner.max_replans,
            worker_concurrency: 32,
            drain_secs: 30.0,
            planning_deadline_secs: d.planner.deadline.as_secs(),
            max_client_plan_steps: d.max_client_plan_steps,
            max_task_chars: d.max_task_chars,
        }
    }
}

/// `[store]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawStore {
    /// `memory` (embedded default) or `redis` (shared by every process).
    pub(crate) backend: BackendKind,
    /// Backend URL (e.g. `redis://127.0.0.1:6379`).
    pub(crate) url: Option<String>,
    /// How long finished tasks are kept, in seconds (0: until a cap pushes them out; on Redis,
    /// forever). Default a day.
    pub(crate) keep_finished_secs: Option<u64>,
    /// Memory store: most finished tasks kept (the oldest finished go first).
    pub(crate) max_finished_tasks: Option<usize>,
    /// Memory store: most MiB the finished tasks kept may take, by the store's own accounting.
    pub(crate) max_finished_mib: Option<usize>,
}

impl Default for RawStore {
    fn default() -> Self {
        RawStore {
            backend: BackendKind::Memory,
            url: None,
            keep_finished_secs: None,
            max_finished_tasks: None,
            max_finished_mib: None,
        }
    }
}

/// `[tiers.NAME]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTier {
    /// Model name sent to the servers (must match what they serve).
    pub(crate) model: String,
    /// OpenAI-compatible base URLs, e.g. `http://10.0.0.5:8000/v1`.
    #[serde(default)]
    pub(crate) endpoints: Vec<String>,
    /// Name of an environment variable holding the API key, if the servers need one.
    pub(crate) api_key_env: Option<String>,
    /// GPU pool price per node-hour (with `tokens_per_second`).
    pub(crate) usd_per_hour: Option<Decimal>,
    /// GPU pool throughput in tokens per second (with `usd_per_hour`).
    pub(crate) tokens_per_second: Option<Decimal>,
    /// API price per million prompt tokens (with `usd_per_million_output`).
    pub(crate) usd_per_million_input: Option<Decimal>,
    /// API price per million completion tokens.
    pub(crate) usd_per_million_output: Option<Decimal>,
    /// Most calls in flight from one process.
    pub(crate) max_concurrency: Option<usize>,
    /// Per-attempt timeout in seconds (default by role: 120 for the planner tier, 30 otherwise).
    pub(crate) timeout_secs: Option<f64>,
    /// Stream responses (measures time to first token).
    pub(crate) stream: Option<bool>,
    /// Tier to retry a failed step on once.
    pub(crate) escalate_to: Option<String>,
    /// Retry policy.
    #[serde(default)]
    pub(crate) retry: RawRetry,
    /// Serve this tier from the built-in simulator instead of `endpoints`.
    pub(crate) simulated: Option<SimulatedTier>,
}

/// `[tiers.NAME.retry]`. An absent field takes the default of the tier's role: the planner tier
/// (`[engine] planner_tier`) is not retried, executor tiers retry 3 times (docs/ARCHITECTURE.md §5).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawRetry {
    /// Retries after the first attempt.
    pub(crate) max_retries: Option<u32>,
    /// First backoff in milliseconds (then doubled, with ±20 % jitter).
    pub(crate) initial_backoff_ms: Option<u64>,
    /// Longest backoff in milliseconds.
    pub(crate) max_backoff_ms: Option<u64>,
}

/// `simulated = { … }`: the simulator's speed for this tier.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SimulatedTier {
    /// Time to first token in milliseconds.
    #[serde(default)]
    pub ttft_ms: u64,
    /// Generation speed per request (0 = instant).
    #[serde(default)]
    pub tokens_per_second: f64,
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawServer {
    /// Address to listen on.
    pub(crate) listen: String,
    /// Require API keys; absent: on exactly when `[[api_keys]]` are configured.
    pub(crate) auth: Option<bool>,
    /// Largest request body in bytes (larger: 413).
    pub(crate) body_limit_bytes: usize,
    /// Longest `?wait=true` (and chat completion) wait, in seconds.
    pub(crate) wait_timeout_secs: u64,
    /// The model name of the OpenAI-compatible agent endpoint (`model: "planex"`).
    pub(crate) agent_name: String,
    /// What the agent endpoint answers for a partial task: `"answer"` (200 with the answer and
    /// `planex.failed_steps`) or `"error"` (502).
    pub(crate) agent_partial: String,
    /// How long an `Idempotency-Key` keeps naming its task, in seconds.
    pub(crate) idempotency_ttl_secs: u64,
}

impl Default for RawServer {
    fn default() -> Self {
        RawServer {
            listen: "127.0.0.1:8080".into(),
            auth: None,
            body_limit_bytes: 1 << 20,
            wait_timeout_secs: 300,
            agent_name: "planex".into(),
            agent_partial: "answer".into(),
            idempotency_ttl_secs: 24 * 3600,
        }
    }
}

/// One `[[api_keys]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawApiKey {
    /// Hex sha256 of the bearer token (`printf %s "$KEY" | sha256sum`).
    pub(crate) key_sha256: String,
    /// The tenant the key acts for.
    pub(crate) tenant: String,
    /// Cost center charged when a request names none (`X-Cost-Center` overrides).
    #[serde(default)]
    pub(crate) cost_center: Option<String>,
    /// Further cost centers the key may charge with `X-Cost-Center` or a body's `cost_center`
    /// (its own `cost_center`, or `default`, is always allowed).
    #[serde(default)]
    pub(crate) cost_centers: Vec<String>,
    /// The tenant's monthly budget in USD.
    #[serde(default)]
    pub(crate) monthly_budget_usd: Option<Decimal>,
    /// Most `POST` requests per second with this key, per API replica (absent: unlimited).
    #[serde(default)]
    pub(crate) requests_per_second: Option<u32>,
    /// Most tasks of this key accepted and not finished at once, per API replica (absent:
    /// unlimited).
    #[serde(default)]
    pub(crate) max_concurrent_tasks: Option<u32>,
}

/// One `[[budget.cost_centers]]` entry: a monthly budget of one cost center of one tenant.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCostCenterBudget {
    /// The tenant.
    pub(crate) tenant: String,
    /// The cost center.
    pub(crate) name: String,
    /// Its monthly budget in USD.
    pub(crate) monthly_budget_usd: Decimal,
}

/// `[budget]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawBudget {
    /// Estimate, reserve and enforce budgets.
    pub(crate) enabled: bool,
    /// Tokens assumed per step of a tool until its mean is observed.
    pub(crate) default_tokens_per_step: u64,
    /// `Retry-After` of a refusal that waiting can cure, in seconds.
    pub(crate) retry_after_secs: u64,
    /// Monthly budgets of cost centers.
    pub(crate) cost_centers: Vec<RawCostCenterBudget>,
    /// Per-task budget of a request that names none, in USD (0: unlimited).
    pub(crate) task_budget_usd: Decimal,
    /// Per-task budgets of tenants or of one cost center of a tenant, over `task_budget_usd`.
    pub(crate) task_budgets: Vec<RawTaskBudget>,
    /// Longest a submission waits for room in an account budget held by other tasks, in seconds.
    pub(crate) admission_wait_secs: u64,
}

impl Default for RawBudget {
    fn default() -> Self {
        RawBudget {
            enabled: true,
            default_tokens_per_step: 800,
            retry_after_secs: 60,
            cost_centers: Vec::new(),
            task_budget_usd: BudgetSettings::DEFAULT_TASK_USD,
            task_budgets: Vec::new(),
            admission_wait_secs: 120,
        }
    }
}

/// One `[[budget.task_budgets]]` entry: the per-task budget of a tenant, or of one of its cost
/// centers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTaskBudget {
    /// The tenant.
    pub(crate) tenant: String,
    /// The cost center (all of the tenant's when absent).
    #[serde(default)]
    pub(crate) cost_center: Option<String>,
    /// Its per-task budget in USD (0: unlimited).
    pub(crate) usd: Decimal,
}

/// `[cache]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawCache {
    /// Reuse plans of identical requests.
    pub(crate) enabled: bool,
    /// How long a plan is reused, in seconds.
    pub(crate) ttl_secs: u64,
    /// Most plans kept by the in-memory cache.
    pub(crate) max_entries: usize,
    /// Pinned planner version, part of the key: change it when the planner model changes.
    pub(crate) planner_version: String,
}

impl Default for RawCache {
    fn default() -> Self {
        RawCache {
            enabled: true,
            ttl_secs: 3600,
            max_entries: 10_000,
            planner_version: String::new(),
        }
    }
}

/// `[routing]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawRouting {
    /// Tiers a planner `tier` hint may choose (empty: hints are ignored).
    pub(crate) hint_tiers: Vec<String>,
    /// Characters per token for input-size estimates.
    pub(crate) chars_per_token: u64,
    /// Assumed result size of an `http` step, in tokens.
    pub(crate) http_result_tokens: u64,
    /// Tool categories: name → tool names.
    pub(crate) categories: BTreeMap<String, Vec<String>>,
    /// `[[routing.rules]]`, first match wins.
    pub(crate) rules: Vec<RawRule>,
}

impl Default for RawRouting {
    fn default() -> Self {
        let d = RoutingSettings::default();
        RawRouting {
            hint_tiers: d.hint_tiers,
            chars_per_token: d.chars_per_token,
            http_result_tokens: d.http_result_tokens,
            categories: d.categories,
            rules: Vec::new(),
        }
    }
}

/// `[[routing.rules]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRule {
    /// Matches steps of these tools (a string or a list).
    #[serde(default)]
    pub(crate) tool: Option<OneOrMany>,
    /// Matches steps whose tool is in this category.
    pub(crate) category: Option<String>,
    /// Matches steps with at least this many estimated input tokens.
    pub(crate) min_input_tokens: Option<u64>,
    /// Matches steps with at most this many estimated input tokens.
    pub(crate) max_input_tokens: Option<u64>,
    /// Where matching steps run.
    pub(crate) tier: String,
}

/// `tool = "x"` or `tool = ["x", "y"]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum OneOrMany {
    /// One tool.
    One(String),
    /// Several tools.
    Many(Vec<String>),
}

/// `[health]`: passive cooldown, active checks and model pinning, for every tier.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawHealth {
    /// Consecutive endpoint failures that start a cooldown (0 = never).
    pub(crate) allowed_fails: u32,
    /// Cooldown length in seconds (0 = never).
    pub(crate) cooldown_secs: f64,
    /// `models` (GET /v1/models) or `health` (GET /health, plus /v1/models for the pin).
    pub(crate) check: HealthCheckKind,
    /// Seconds between active checks (0 = start-up check only).
    pub(crate) interval_secs: f64,
    /// Refuse endpoints that do not serve the tier's model.
    pub(crate) pin_model: bool,
}

impl Default for RawHealth {
    fn default() -> Self {
        let d = HealthPolicy::default();
        RawHealth {
            allowed_fails: d.allowed_fails,
            cooldown_secs: d.cooldown.as_secs_f64(),
            check: d.check,
            interval_secs: d.interval.as_secs_f64(),
            pin_model: d.pin_model,
        }
    }
}

/// `[scaling]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawScaling {
    /// p95 TTFT in seconds above which TTFT-scaled tiers add a node.
    pub(crate) planner_ttft_p95_secs: f64,
    /// Ready steps above which queue-scaled tiers add a node.
    pub(crate) executor_queue_depth: u64,
    /// Seconds a tier must be empty before it scales in.
    pub(crate) scale_in_after_secs: u64,
    /// Default floor (at least 1).
    pub(crate) min_replicas: u32,
    /// Default ceiling.
    pub(crate) max_replicas: u32,
    /// Per-tier overrides.
    pub(crate) tiers: BTreeMap<String, RawTierScaling>,
}

impl Default for RawScaling {
    fn default() -> Self {
        let d = ScalingSettings::default();
        RawScaling {
            planner_ttft_p95_secs: d.planner_ttft_p95.as_secs_f64(),
            executor_queue_depth: d.executor_queue_depth,
            scale_in_after_secs: d.scale_in_after.as_secs(),
            min_replicas: d.min_replicas,
            max_replicas: d.max_replicas,
            tiers: BTreeMap::new(),
        }
    }
}

/// `[scaling.tiers.NAME]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTierScaling {
    /// `ttft` or `queue_depth` (default: ttft for the planner tier, queue_depth otherwise).
    pub(crate) rule: Option<ScalingRule>,
    /// Floor.
    pub(crate) min_replicas: Option<u32>,
    /// Ceiling.
    pub(crate) max_replicas: Option<u32>,
}
