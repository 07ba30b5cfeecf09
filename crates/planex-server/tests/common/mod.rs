//! Test harness: real simulators on loopback ports, real tier clients, the memory store, ledger and
//! plan cache, in-process workers, and the API router driven with `oneshot` (no socket needed).
//! `RecordingModel` only records what passes through the real HTTP client.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    dead_code,
    missing_docs
)]

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use planex_core::{Catalog, Decimal};
use planex_engine::{
    BudgetGuard, BudgetSettings, CacheSettings, Engine, EngineSettings, PlanCacheLayer,
};
use planex_llm::Endpoint;
use planex_server::AppState;
use planex_server::{ApiKeyEntry, ServerSettings};
use planex_sim::SimServer;
use planex_store::{MemoryLedger, MemoryPlanCache, MemoryStore, Store};
use planex_testkit::fixtures::{llm_tool, plan_json};
use planex_testkit::llm::RecordingModel;
use planex_testkit::sim_pair::{SimPair, SimPairOptions};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

pub mod served;

/// Retries of the harness's tiers.
const RETRIES: u32 = 2;

/// One API key of a test: the plain token and its tenant; every key's own cost center is
/// `research`, and `cost_centers` lists the others it may charge.
pub struct Key {
    pub token: &'static str,
    pub tenant: &'static str,
    pub monthly_budget: Option<Decimal>,
    pub cost_centers: &'static [&'static str],
}

pub struct Options {
    pub keys: Vec<Key>,
    pub body_limit: usize,
    /// Tier of the `summarize` tool (`executor` or the dearer `planner`).
    pub summarize_tier: &'static str,
    pub workload: Vec<(String, Vec<String>)>,
    pub metrics: bool,
    /// Failed executor steps are retried once on the planner tier.
    pub escalate: bool,
    /// The budget guard's settings (the keys' monthly budgets are added to them).
    pub budget: BudgetSettings,
    /// Run a synthesis step on the planner tier.
    pub synthesis: bool,
    /// The drift guard's settings (over a memory drift store), when drift is guarded.
    pub drift: Option<planex_engine::DriftSettings>,
    /// The tool catalog instead of `lookup` and `summarize`.
    pub tools: Option<Vec<planex_core::ToolSpec>>,
    /// Rate limits of the keys, by token (keys not listed are unlimited).
    pub limits: Vec<(&'static str, planex_server::rate_limit::KeyLimits)>,
    /// Longest a client may take to send a request's head (default: the server's).
    pub header_read_timeout: Option<Duration>,
    /// The planner simulator's output rate (tokens per second; `None`: unpaced, each answer in
    /// one write).
    pub planner_tps: Option<f64>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            keys: Vec::new(),
            body_limit: 64 * 1024,
            summarize_tier: "executor",
            workload: Vec::new(),
            metrics: false,
            escalate: false,
            budget: BudgetSettings::default(),
            synthesis: false,
            planner_tps: None,
            drift: None,
            tools: None,
            limits: Vec::new(),
            header_read_timeout: None,
        }
    }
}

pub struct Harness {
    pub planner_sim: SimServer,
    pub executor_sim: SimServer,
    pub planner: Arc<RecordingModel>,
    pub engine: Arc<Engine>,
    pub state: AppState,
    pub app: axum::Router,
    shutdown: CancellationToken,
    workers: Vec<tokio::task::JoinHandle<planex_engine::WorkerExit>>,
}

pub fn sha256_hex(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Harness {
    pub async fn start(options: Options) -> Harness {
        let pair = SimPair::start(SimPairOptions {
            workload: options.workload,
            retries: RETRIES,
            executor_escalates: options.escalate,
            planner_tps: options.planner_tps,
            ..SimPairOptions::default()
        })
        .await;
        let models = pair.models();
        let SimPair {
            planner_sim,
            executor_sim,
            planner,
            ..
        } = pair;
        let tools = options.tools.unwrap_or_else(|| {
            vec![
                llm_tool("lookup", "topic", "executor"),
                llm_tool("summarize", "text", options.summarize_tier),
            ]
        });
        let catalog = Arc::new(Catalog::new(tools).unwrap());
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let settings = EngineSettings {
            synthesis: options.synthesis,
            ..EngineSettings::default()
        };
        let mut budget = options.budget;
        for key in &options.keys {
            if let Some(amount) = key.monthly_budget {
                budget
                    .tenant_monthly_usd
                    .insert(key.tenant.to_owned(), amount);
            }
        }
        let guard = Arc::new(BudgetGuard::new(Arc::new(MemoryLedger::new()), budget));
        let cache = PlanCacheLayer::new(
            Arc::new(MemoryPlanCache::new(100)),
            CacheSettings::default(),
        );
        let mut builder = Engine::builder(store, catalog, models, settings)
            .budget(guard)
            .plan_cache(cache);
        if let Some(drift) = options.drift {
            builder = builder.drift(Arc::new(planex_engine::DriftGuard::new(
                Arc::new(planex_store::MemoryDriftStore::new()),
                drift,
            )));
        }
        let engine = Arc::new(builder.build().unwrap());
        let shutdown = CancellationToken::new();
        let workers = engine.spawn_workers(8, "test", shutdown.clone()).await;
        let server = ServerSettings {
            auth: !options.keys.is_empty(),
            api_keys: options
                .keys
                .iter()
                .map(|k| ApiKeyEntry {
                    key_sha256: sha256_hex(k.token),
                    tenant: k.tenant.into(),
                    cost_center: Some("research".into()),
                    cost_centers: k.cost_centers.iter().map(|c| (*c).to_owned()).collect(),
                    limits: options
                        .limits
                        .iter()
                        .find(|(token, _)| *token == k.token)
                        .map(|(_, limits)| *limits)
                        .unwrap_or_default(),
                })
                .collect(),
            body_limit_bytes: options.body_limit,
            wait_timeout: Duration::from_secs(30),
            header_read_timeout: options
                .header_read_timeout
                .unwrap_or(ServerSettings::DEFAULT_HEADER_READ_TIMEOUT),
            ..ServerSettings::default()
        };
        let metrics = options
            .metrics
            .then(|| planex_server::metrics::install_recorder().unwrap());
        let state = AppState::new(
            engine.clone(),
            server,
            vec![Endpoint::new(planner_sim.base_url())],
            metrics,
        );
        let app = planex_server::app(state.clone());
        Harness {
            planner_sim,
            executor_sim,
            planner,
            engine,
            state,
            app,
            shutdown,
            workers,
        }
    }

    /// One request through the router; returns status, headers and the body as JSON (or as a
    /// JSON string when it is not JSON).
    pub async fn call(
        &self,
        method: Method,
        uri: &str,
        body: Option<serde_json::Value>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, HeaderMap, serde_json::Value) {
        let mut builder = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let body = match body {
            Some(json) => Body::from(json.to_string()),
            None => Body::empty(),
        };
        let response = self
            .app
            .clone()
            .oneshot(builder.body(body).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 16 << 20)
            .await
            .unwrap();
        let json = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(&bytes).into_owned())
        });
        (status, headers, json)
    }

    pub fn planner_requests(&self) -> u64 {
        self.planner_sim.stats().planner_requests
    }

    /// Stops the simulators first (ending any simulated hang), then drains the workers.
    pub async fn stop(self) {
        self.planner_sim.shutdown().await;
        self.executor_sim.shutdown().await;
        self.shutdown.cancel();
        for worker in self.workers {
            worker.await.unwrap();
        }
    }
}

/// Keys of two tenants, `acme` (`Bearer key-acme`) and `globex` (`Bearer key-globex`), without
/// budgets.
pub fn two_tenants() -> Vec<Key> {
    ["acme", "globex"]
        .into_iter()
        .zip(["key-acme", "key-globex"])
        .map(|(tenant, token)| Key {
            token,
            tenant,
            monthly_budget: None,
            cost_centers: &[],
        })
        .collect()
}

/// `n` independent steps of `tool`.
pub fn independent(tool: &str, arg: &str, n: u32) -> String {
    let steps: Vec<serde_json::Value> = (1..=n)
        .map(|i| serde_json::json!({"step_id": i, "tool_name": tool, "args": {arg: format!("part {i} of the question")}, "depends_on": []}))
        .collect();
    plan_json(serde_json::Value::Array(steps))
}

/// `n` independent `lookup` steps.
pub fn lookups(n: u32) -> String {
    let steps: Vec<serde_json::Value> = (1..=n)
        .map(|i| serde_json::json!({"step_id": i, "tool_name": "lookup", "args": {"topic": format!("topic {i}")}, "depends_on": []}))
        .collect();
    plan_json(serde_json::Value::Array(steps))
}

/// The harness's app served on a real loopback socket (for tests of what crosses the wire: raw
/// heads, hyper's own answers); stops when dropped.
pub struct Served {
    pub addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Harness {
    /// Serves [`Harness::app`] on `127.0.0.1:0` (as `planex serve` does, with `axum::serve`).
    pub async fn serve_http(&self) -> Served {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = self.app.clone();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Served {
            addr,
            stop: Some(stop),
        }
    }
}
