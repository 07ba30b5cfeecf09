//! Test harness for the ReAct baseline (a trimmed copy of planex-engine's `tests/common`): real
//! simulators on loopback ports, real tier clients, the memory store, in-process workers. Nothing
//! inside the engine is mocked; `RecordingModel` only records what passes through the real HTTP
//! client.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    dead_code,
    missing_docs
)]

use async_trait::async_trait;
use planex_core::{Catalog, HttpTool, Price, ToolKind, ToolSpec, Usage};
use planex_engine::{Engine, EngineSettings, Models, TaskRequest};
use planex_llm::{
    CallContext, ChatFailure, ChatModel, ChatOutcome, ChatRequest, Endpoint, RetryPolicy, Tier,
    TierConfig,
};
use planex_sim::{SimConfig, SimServer, Workload};
use planex_store::{MemoryStore, Store, TaskRecord};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const WAIT: Duration = Duration::from_secs(30);

pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_retries: 3,
        initial_backoff: Duration::from_millis(5),
        multiplier: 2.0,
        max_backoff: Duration::from_millis(50),
        jitter: 0.0,
    }
}

pub fn sim_config(model: &str) -> SimConfig {
    SimConfig {
        port: 0,
        model: model.into(),
        ..SimConfig::default()
    }
}

pub fn tier(name: &str, sim: &SimServer, model: &str, usd_per_hour: &str, tps: &str) -> TierConfig {
    let price = Price::GpuHour {
        usd_per_hour: planex_core::Decimal::from_str(usd_per_hour).unwrap(),
        tokens_per_second: planex_core::Decimal::from_str(tps).unwrap(),
    };
    let mut config = TierConfig::new(name, model, vec![Endpoint::new(sim.base_url())], price);
    config.retry = fast_retry();
    config.timeout = Duration::from_secs(10);
    config
}

fn schema(props: &[&str]) -> serde_json::Value {
    let properties: serde_json::Map<String, serde_json::Value> = props
        .iter()
        .map(|p| {
            (
                p.to_string(),
                serde_json::json!({"type": "string", "minLength": 1}),
            )
        })
        .collect();
    serde_json::json!({"type": "object", "properties": properties, "required": props, "additionalProperties": false})
}

pub fn llm_tool(name: &str, arg: &str, tier: &str) -> ToolSpec {
    ToolSpec::one_arg_llm(name, arg, tier, 64)
}

pub fn search_tool(search_base: &str, tier: &str) -> ToolSpec {
    ToolSpec {
        name: "search".into(),
        description: "web search".into(),
        input_schema: schema(&["query"]),
        output_schema: None,
        tier: tier.into(),
        kind: ToolKind::Http(HttpTool {
            method: "GET".into(),
            base_url: search_base.into(),
            path: "/sim/search?q={query}&limit=2".into(),
            headers: Default::default(),
            body: None,
            timeout_ms: 5_000,
            max_response_bytes: 1 << 16,
        }),
    }
}

/// A recording decorator over a real tier client: what was sent and what came back.
pub struct RecordingModel {
    pub inner: Arc<Tier>,
    pub requests: Mutex<Vec<ChatRequest>>,
    pub usages: Mutex<Vec<Usage>>,
}

impl RecordingModel {
    pub fn new(inner: Arc<Tier>) -> Arc<Self> {
        Arc::new(RecordingModel {
            inner,
            requests: Mutex::default(),
            usages: Mutex::default(),
        })
    }
}

#[async_trait]
impl ChatModel for RecordingModel {
    async fn chat(
        &self,
        request: &ChatRequest,
        ctx: &CallContext,
    ) -> Result<ChatOutcome, ChatFailure> {
        self.requests.lock().unwrap().push(request.clone());
        let outcome = self.inner.chat(request, ctx).await?;
        self.usages.lock().unwrap().push(outcome.usage);
        Ok(outcome)
    }
    fn tier_name(&self) -> &str {
        self.inner.name()
    }
    fn model_name(&self) -> &str {
        self.inner.model()
    }
    fn price(&self) -> &Price {
        self.inner.price()
    }
    fn escalate_to(&self) -> Option<&str> {
        self.inner.config().escalate_to.as_deref()
    }
}

pub struct Harness {
    pub planner_sim: SimServer,
    pub executor_sim: SimServer,
    pub planner: Arc<RecordingModel>,
    pub executor: Arc<RecordingModel>,
    pub store: Arc<dyn Store>,
    pub engine: Arc<Engine>,
    pub shutdown: CancellationToken,
    workers: Vec<tokio::task::JoinHandle<planex_engine::WorkerExit>>,
}

#[derive(Default)]
pub struct HarnessOptions {
    pub workload: Vec<(String, Vec<String>)>,
    pub executor_ttft_ms: u64,
    pub synthesis: bool,
    pub extra_tools: Vec<ToolSpec>,
}

impl Harness {
    pub async fn start(options: HarnessOptions) -> Harness {
        let mut workload = Workload::default();
        for (task, plans) in &options.workload {
            workload.insert(task, plans.clone());
        }
        let planner_sim = SimServer::start(SimConfig {
            workload,
            ..sim_config("sim-planner")
        })
        .await
        .unwrap();
        let executor_sim = SimServer::start(SimConfig {
            ttft_ms: options.executor_ttft_ms,
            ..sim_config("sim-executor")
        })
        .await
        .unwrap();
        let client = reqwest::Client::new();
        let planner_tier = Arc::new(
            Tier::new(
                tier("planner", &planner_sim, "sim-planner", "4.54", "2500"),
                client.clone(),
            )
            .unwrap(),
        );
        let executor_tier = Arc::new(
            Tier::new(
                tier("executor", &executor_sim, "sim-executor", "0.96", "6000"),
                client,
            )
            .unwrap(),
        );
        let planner = RecordingModel::new(planner_tier);
        let executor = RecordingModel::new(executor_tier);
        let mut models = Models::new();
        models.insert(planner.clone());
        models.insert(executor.clone());
        let search_base = executor_sim.base_url().trim_end_matches("/v1").to_owned();
        let mut tools = vec![
            llm_tool("lookup", "topic", "executor"),
            llm_tool("summarize", "text", "executor"),
            search_tool(&search_base, "executor"),
        ];
        tools.extend(options.extra_tools);
        let catalog = Arc::new(Catalog::new(tools).unwrap());
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let settings = EngineSettings {
            synthesis: options.synthesis,
            ..EngineSettings::default()
        };
        let engine = Arc::new(
            Engine::builder(store.clone(), catalog, models, settings)
                .http_retry(fast_retry())
                .build()
                .unwrap(),
        );
        let shutdown = CancellationToken::new();
        let workers = engine.spawn_workers(8, "test", shutdown.clone());
        Harness {
            planner_sim,
            executor_sim,
            planner,
            executor,
            store,
            engine,
            shutdown,
            workers,
        }
    }

    pub async fn run(&self, task: &str) -> TaskRecord {
        self.engine
            .run(
                TaskRequest {
                    task: task.into(),
                    ..TaskRequest::default()
                },
                WAIT,
            )
            .await
            .unwrap()
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        for worker in self.workers {
            worker.await.unwrap();
        }
        self.planner_sim.shutdown().await;
        self.executor_sim.shutdown().await;
    }
}

/// A plan as JSON text.
pub fn plan(steps: serde_json::Value) -> String {
    serde_json::json!({ "steps": steps }).to_string()
}
