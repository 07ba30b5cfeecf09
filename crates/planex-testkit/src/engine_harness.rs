//! An engine over real simulators on loopback ports, real tier clients, the memory store and
//! in-process workers, for the engine's and the ReAct baseline's tests. Nothing inside the engine
//! is mocked; [`RecordingModel`] only records what passes through the real HTTP client.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::fixtures::llm_tool;
use crate::llm::{RecordingModel, SIM_TIER_RETRIES, fast_retry};
use crate::sim_pair::{SimPair, SimPairOptions};
use futures::StreamExt;
use planex_core::{Catalog, HttpTool, ToolKind, ToolSpec};
use planex_engine::{Engine, EngineSettings, TaskRequest};
use planex_sim::SimServer;
use planex_store::{MemoryStore, Store, TaskEvent, TaskRecord};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long a test waits for a task.
pub const WAIT: Duration = Duration::from_secs(30);

/// An object schema of required non-empty string properties.
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

/// An `http` tool calling the simulator's `/sim/search` under `search_base`.
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
            allow_internal: true,
        }),
    }
}

/// Planner and executor simulators, their recording tier clients, the store, the engine and its
/// workers.
pub struct Harness {
    /// The planner tier's simulator.
    pub planner_sim: SimServer,
    /// The executor tier's simulator.
    pub executor_sim: SimServer,
    /// What the planner tier was asked.
    pub planner: Arc<RecordingModel>,
    /// What the executor tier was asked.
    pub executor: Arc<RecordingModel>,
    /// The memory store.
    pub store: Arc<dyn Store>,
    /// The engine.
    pub engine: Arc<Engine>,
    /// Cancelled by [`Harness::stop`].
    pub shutdown: CancellationToken,
    workers: Vec<tokio::task::JoinHandle<planex_engine::WorkerExit>>,
}

/// How to start a [`Harness`].
#[derive(Default)]
pub struct HarnessOptions {
    /// Pinned planner answers: task text and the plans to return in order.
    pub workload: Vec<(String, Vec<String>)>,
    /// The executor simulator's time to first token.
    pub executor_ttft_ms: u64,
    /// The planner simulator's time to first token.
    pub planner_ttft_ms: u64,
    /// The planning deadline (default: the engine's).
    pub planning_deadline: Option<std::time::Duration>,
    /// Append a synthesis step.
    pub synthesis: bool,
    /// Tools beyond `lookup`, `summarize` and `search`.
    pub extra_tools: Vec<ToolSpec>,
    /// The planner simulator's output rate (`None`: the simulator's default).
    pub planner_tps: Option<f64>,
    /// Wait for the whole plan before running steps (`[engine] stream_plans = false`).
    pub whole_plans: bool,
    /// Joiner rounds after the plan ran (`[engine] max_replans`).
    pub max_replans: u32,
}

impl Harness {
    /// Starts the simulators, the engine and eight workers per tier.
    pub async fn start(options: HarnessOptions) -> Harness {
        let pair = SimPair::start(SimPairOptions {
            workload: options.workload,
            executor_ttft_ms: options.executor_ttft_ms,
            planner_ttft_ms: options.planner_ttft_ms,
            planner_tps: options.planner_tps,
            ..SimPairOptions::default()
        })
        .await;
        let models = pair.models();
        let SimPair {
            planner_sim,
            executor_sim,
            planner,
            executor,
        } = pair;
        let search_base = executor_sim.base_url().trim_end_matches("/v1").to_owned();
        let mut tools = vec![
            llm_tool("lookup", "topic", "executor"),
            llm_tool("summarize", "text", "executor"),
            search_tool(&search_base, "executor"),
        ];
        tools.extend(options.extra_tools);
        let catalog = Arc::new(Catalog::new(tools).unwrap());
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let mut settings = EngineSettings {
            synthesis: options.synthesis,
            ..EngineSettings::default()
        };
        settings.planner.stream = !options.whole_plans;
        settings.planner.max_replans = options.max_replans;
        if let Some(deadline) = options.planning_deadline {
            settings.planner.deadline = deadline;
        }
        let engine = Arc::new(
            Engine::builder(store.clone(), catalog, models, settings)
                .http_retry(fast_retry(SIM_TIER_RETRIES))
                .build()
                .unwrap(),
        );
        let shutdown = CancellationToken::new();
        let workers = engine.spawn_workers(8, "test", shutdown.clone()).await;
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

    /// Runs `task` to its end.
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

    /// Every event of the task.
    pub async fn events(&self, record: &TaskRecord) -> Vec<TaskEvent> {
        self.store
            .events(&record.task_id)
            .await
            .unwrap()
            .collect()
            .await
    }

    /// Stops the workers and the simulators.
    pub async fn stop(self) {
        self.shutdown.cancel();
        for worker in self.workers {
            worker.await.unwrap();
        }
        self.planner_sim.shutdown().await;
        self.executor_sim.shutdown().await;
    }
}
