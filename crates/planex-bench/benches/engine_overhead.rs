//! Engine overhead per step, excluding the model call (docs/BENCHMARKS.md, benchmark 1).
//!
//! Both tiers are an in-process null `ChatModel` that answers at once with a fixed text and fixed
//! usage: the planner answers a fixed 10-step plan in three dependency levels (4 + 4 + 2 steps), the
//! executor a fixed ~120-token answer. Everything else is the real engine: planner-answer parsing and
//! validation, step specs, the memory store (enqueue, claim, lease, complete, dependents, events),
//! the per-tier workers, placeholder substitution, prompt rendering and cost accounting.
//!
//! - `engine/task_10_steps_3_levels`: one whole task (submit → final record), one at a time;
//!   criterion's throughput line divides by the 10 steps.
//! - `engine/plan_parse_validate`, `engine/substitute_render`: the pure-CPU parts, for scale.
//!
//! Percentiles per step (criterion reports means) come from `planex-bench overhead`.
//!
//!     cargo bench -p planex-bench --bench engine_overhead
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use planex_core::{Catalog, Decimal, Plan, PlanLimits, Price, StepId, ToolSpec, Usage};
use planex_engine::{Engine, EngineSettings, Models, TaskRequest};
use planex_llm::InstantModel;
use planex_store::{MemoryStore, Store, TaskStatus};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const STEPS: u64 = 10;

fn gpu_price(cents_per_hour: i64, tokens_per_second: i64) -> Price {
    Price::GpuHour {
        usd_per_hour: Decimal::new(cents_per_hour, 2),
        tokens_per_second: Decimal::from(tokens_per_second),
    }
}

fn catalog() -> Arc<Catalog> {
    Arc::new(
        Catalog::new(vec![
            ToolSpec::one_arg_llm("lookup", "topic", "executor", 128),
            ToolSpec::one_arg_llm("summarize", "text", "executor", 128),
        ])
        .unwrap(),
    )
}

/// 10 steps, three dependency levels: 1–4 independent, 5–8 each need two of them, 9–10 two of those.
fn plan_json() -> String {
    let mut steps = Vec::new();
    for id in 1..=4 {
        steps.push(serde_json::json!({"step_id": id, "tool_name": "lookup", "args": {"topic": format!("topic {id}")}, "depends_on": []}));
    }
    for (id, a, b) in [
        (5, 1, 2),
        (6, 2, 3),
        (7, 3, 4),
        (8, 4, 1),
        (9, 5, 6),
        (10, 7, 8),
    ] {
        steps.push(serde_json::json!({
            "step_id": id, "tool_name": "summarize",
            "args": {"text": format!("Combine:\n{{step_{a}_result}}\n---\n{{step_{b}_result}}")},
            "depends_on": [a, b],
        }));
    }
    serde_json::json!({ "steps": steps }).to_string()
}

fn executor_reply() -> String {
    "[simulated] A fixed executor answer of about one hundred and twenty tokens. ".repeat(8)
}

fn engine() -> Engine {
    let mut models = Models::new();
    models.insert(Arc::new(
        InstantModel::new("planner", gpu_price(454, 2500)).with_reply(
            &plan_json(),
            Usage {
                prompt_tokens: 600,
                completion_tokens: 400,
                cached_tokens: 0,
            },
        ),
    ));
    models.insert(Arc::new(
        InstantModel::new("executor", gpu_price(96, 6000)).with_reply(
            &executor_reply(),
            Usage {
                prompt_tokens: 150,
                completion_tokens: 120,
                cached_tokens: 0,
            },
        ),
    ));
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    // The plan has 10 steps, more than the default `max_subtasks` (8).
    let settings = EngineSettings {
        synthesis: false,
        max_subtasks: 10,
        ..EngineSettings::default()
    };
    Engine::new(store, catalog(), models, settings).unwrap()
}

fn request() -> TaskRequest {
    TaskRequest {
        task: "benchmark task".into(),
        ..TaskRequest::default()
    }
}

fn bench_task(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(STEPS));
    group
        .sample_size(50)
        .measurement_time(Duration::from_secs(8));
    group.bench_function("task_10_steps_3_levels", |b| {
        // A fresh engine and store per sample keeps the store small (it keeps every task).
        b.to_async(&rt).iter_custom(|iters| async move {
            let engine = Arc::new(engine());
            let shutdown = CancellationToken::new();
            let workers = engine.spawn_workers(32, "bench", shutdown.clone()).await;
            let started = Instant::now();
            for _ in 0..iters {
                let record = engine
                    .run(request(), Duration::from_secs(10))
                    .await
                    .unwrap();
                assert_eq!(record.status, TaskStatus::Complete);
                black_box(record);
            }
            let elapsed = started.elapsed();
            shutdown.cancel();
            for worker in workers {
                worker.await.unwrap();
            }
            elapsed
        });
    });

    let catalog = catalog();
    let text = plan_json();
    group.throughput(Throughput::Elements(1));
    group.bench_function("plan_parse_validate", |b| {
        b.iter(|| Plan::parse(black_box(&text), &catalog, PlanLimits { max_steps: 10 }).unwrap());
    });

    let plan = Plan::parse(&text, &catalog, PlanLimits { max_steps: 10 }).unwrap();
    let step = plan
        .steps
        .iter()
        .find(|s| s.step_id == StepId(5))
        .unwrap()
        .clone();
    let results: BTreeMap<StepId, serde_json::Value> = [1, 2]
        .into_iter()
        .map(|id| (StepId(id), serde_json::Value::String(executor_reply())))
        .collect();
    group.bench_function("substitute_render", |b| {
        b.iter(|| {
            let args = planex_core::substitute_args(black_box(&step.args), &results).unwrap();
            planex_core::render("summarize: {text}", &args, str::to_owned).unwrap()
        });
    });
    group.finish();
}

criterion_group!(benches, bench_task);
criterion_main!(benches);
