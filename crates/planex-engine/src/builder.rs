//! [`EngineBuilder`]: wires an [`Engine`] from its parts in one place, so optional parts (budget
//! guard, plan cache, `http` tool retries) are set before anything is shared and can never be set
//! too late to take effect.

use crate::executor::Executor;
use crate::{
    BudgetGuard, DriftGuard, Engine, EngineError, EngineSettings, Models, PlanCacheLayer, scaling,
};
use planex_core::Catalog;
use planex_llm::RetryPolicy;
use planex_store::Store;
use std::sync::Arc;

/// Longest dependency result passed to the synthesis prompt, in characters.
const SYNTHESIS_INPUT_CHARS: usize = 4000;

impl Engine {
    /// Starts wiring an engine over `store`, with the tool catalog, the model tiers and the
    /// settings; optional parts (budget, plan cache, `http` retries) are set on the builder.
    pub fn builder(
        store: Arc<dyn Store>,
        catalog: Arc<Catalog>,
        models: Models,
        settings: EngineSettings,
    ) -> EngineBuilder {
        EngineBuilder::new(store, catalog, models, settings)
    }

    /// Wires an engine with no budget guard and no plan cache (`Engine::builder(..).build()`);
    /// fails when a tool or the planner names a tier that does not exist.
    pub fn new(
        store: Arc<dyn Store>,
        catalog: Arc<Catalog>,
        models: Models,
        settings: EngineSettings,
    ) -> Result<Self, EngineError> {
        Self::builder(store, catalog, models, settings).build()
    }
}

/// Builds an [`Engine`]; start with [`Engine::builder`], end with [`EngineBuilder::build`].
pub struct EngineBuilder {
    store: Arc<dyn Store>,
    catalog: Arc<Catalog>,
    models: Models,
    settings: EngineSettings,
    budget: Option<Arc<BudgetGuard>>,
    plan_cache: Option<PlanCacheLayer>,
    http_retry: RetryPolicy,
    mcp: Arc<crate::mcp::McpServers>,
    drift: Option<Arc<DriftGuard>>,
}

impl EngineBuilder {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        catalog: Arc<Catalog>,
        models: Models,
        settings: EngineSettings,
    ) -> Self {
        EngineBuilder {
            store,
            catalog,
            models,
            settings,
            budget: None,
            plan_cache: None,
            http_retry: RetryPolicy::default(),
            mcp: Arc::new(crate::mcp::McpServers::none()),
            drift: None,
        }
    }

    /// Enforces budgets with `guard`: tasks are estimated, reserved and settled against it, and the
    /// executor consults it before an escalation to a dearer tier.
    pub fn budget(mut self, guard: Arc<BudgetGuard>) -> Self {
        self.budget = Some(guard);
        self
    }

    /// Reuses plans of identical requests through `cache`.
    pub fn plan_cache(mut self, cache: PlanCacheLayer) -> Self {
        self.plan_cache = Some(cache);
        self
    }

    /// Guards task types against step-count drift and records their statistics with `guard`.
    pub fn drift(mut self, guard: Arc<DriftGuard>) -> Self {
        self.drift = Some(guard);
        self
    }

    /// The MCP servers `mcp` tools of the catalog are called on (default: none).
    pub fn mcp(mut self, servers: Arc<crate::mcp::McpServers>) -> Self {
        self.mcp = servers;
        self
    }

    /// The retry policy of `http` tools and of MCP calls' transport failures.
    pub fn http_retry(mut self, retry: RetryPolicy) -> Self {
        self.http_retry = retry;
        self
    }

    /// Wires the engine; fails when a tool, the planner or a routing rule names a tier that does
    /// not exist.
    pub fn build(self) -> Result<Engine, EngineError> {
        let EngineBuilder {
            store,
            catalog,
            models,
            settings,
            budget,
            plan_cache,
            http_retry,
            drift,
            mcp,
        } = self;
        models.get(&settings.planner_tier)?;
        for tool in catalog.specs() {
            match &tool.kind {
                // MCP tools make no model call: their tier needs workers, not a model.
                planex_core::ToolKind::Mcp(call) if !mcp.has(&call.server) => {
                    return Err(EngineError::InvalidRequest(format!(
                        "tool {:?} needs the MCP server {:?}, which is not in [[mcp_servers]]",
                        tool.name, call.server
                    )));
                }
                planex_core::ToolKind::Mcp(_) => {}
                _ => {
                    models.get(&tool.tier)?;
                }
            }
        }
        for tier in settings.routing.target_tiers() {
            models.get(&tier)?;
        }
        let executor = Executor {
            catalog: catalog.into(),
            models,
            http: crate::http_guard::HttpClients::new().map_err(|e| {
                EngineError::InvalidRequest(format!(
                    "the HTTP client of http tools could not be built: {e}"
                ))
            })?,
            http_retry,
            synthesis_input_chars: SYNTHESIS_INPUT_CHARS,
            budget: budget.clone(),
            mcp,
        };
        Ok(Engine {
            store,
            executor: Arc::new(executor),
            scaler: std::sync::Mutex::new(scaling::Scaler::new(settings.scaling.clone())),
            settings,
            budget,
            plan_cache,
            drift,
            planning: tokio_util::task::TaskTracker::new(),
        })
    }
}
