//! Test harness: real simulators on loopback ports, real tier clients, the memory store, in-process
//! workers. Nothing inside the engine is mocked; `RecordingModel` only records what passes through
//! the real HTTP client.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    dead_code,
    missing_docs
)]

use futures::StreamExt;
use planex_core::{Catalog, HttpTool, ToolKind, ToolSpec};
use planex_engine::{Engine, EngineSettings, TaskRequest};
use planex_sim::SimServer;
use planex_store::{MemoryStore, Store, TaskEvent, TaskRecord};
use planex_testkit::fixtures::llm_tool;
use planex_testkit::llm::{RecordingModel, SIM_TIER_RETRIES, fast_retry};
use planex_testkit::sim_pair::{SimPair, SimPairOptions};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const WAIT: Duration = Duration::from_secs(30);

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

pub struct Harness {
    pub planner_sim: SimServer,
    pub executor_sim: SimServer,
    pub planner: Arc<RecordingModel>,
    pub executor: Arc<RecordingModel>,
    pub store: Arc<dyn Store>,
    pub engine: Arc<Engine>,
    pub shutdown: CancellationToken,
    workers: Vec<tokio::task::JoinHandle<()>>,
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
        let pair = SimPair::start(SimPairOptions {
            workload: options.workload,
            executor_ttft_ms: options.executor_ttft_ms,
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
        let settings = EngineSettings {
            synthesis: options.synthesis,
            ..EngineSettings::default()
        };
        let engine = Arc::new(
            Engine::new(store.clone(), catalog, models, settings)
                .unwrap()
                .with_http_retry(fast_retry(SIM_TIER_RETRIES)),
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

    pub async fn events(&self, record: &TaskRecord) -> Vec<TaskEvent> {
        self.store
            .events(&record.task_id)
            .await
            .unwrap()
            .collect()
            .await
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
