//! `planex run` stopped by SIGTERM mid-task: its in-process workers release every step they hold,
//! so a shared (Redis) store is left with no lease, the steps back in their ready queue and no
//! delivery counted. Nothing is killed: the process stops by itself.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cluster;

use cluster::{Proc, START};
use futures::StreamExt;
use planex_core::TaskId;
use planex_store::{EventKind, RedisStore, StepState, Store};
use planex_testkit::redis::RedisServer;
use planex_testkit::temp_dir;
use std::time::Duration;

/// The embedded default with an executor that takes ten minutes to answer (its steps are still
/// running when the signal comes) and no drain time (running steps are released at once).
fn hanging_config() -> String {
    let config = planex_app::DEFAULT_CONFIG
        .replace(
            "simulated = { ttft_ms = 40, tokens_per_second = 6000 }",
            "simulated = { ttft_ms = 600000, tokens_per_second = 6000 }",
        )
        .replace("max_subtasks = 8\n", "max_subtasks = 8\ndrain_secs = 0\n");
    assert!(config.contains("600000") && config.contains("drain_secs"));
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_an_in_process_run_leaves_no_lease() {
    let redis = RedisServer::start().expect("start a private redis-server");
    let dir = temp_dir::fresh("planex-interrupt").unwrap();
    let config = dir.join("planex.toml");
    std::fs::write(&config, hanging_config()).unwrap();
    let url = redis.url();
    let args = [
        "run",
        "--config",
        config.to_str().unwrap(),
        "--store",
        &url,
        "Compare H200 and L40S GPU clouds for serving a 70B model",
    ];
    let mut run = Proc::spawn("run", &args, &dir);
    let line = tokio::task::block_in_place(|| run.wait_line(" running", START));
    let task = TaskId::from(line.split_whitespace().nth(1).expect("Task ID running"));
    let store = RedisStore::connect(&url).await.unwrap();
    let mut events = store.events(&task).await.unwrap();
    let started = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(event) = events.next().await {
            if let EventKind::StepStarted { tier, .. } = &event.kind
                && tier == "executor"
            {
                return;
            }
        }
        panic!("the event stream ended before a step started");
    })
    .await;
    assert!(started.is_ok(), "no executor step started within 30 s");

    run.sigterm();
    let code = tokio::task::block_in_place(|| run.exit_code());
    let log = run.log();
    assert_eq!(
        code,
        Some(130),
        "an interrupted run exits 130; its log:\n{log}"
    );
    assert!(log.contains("unfinished steps released"), "{log}");

    let depth = store.queue_depth("executor").await.unwrap();
    assert_eq!(depth.in_flight, 0, "no lease is left behind; log:\n{log}");
    assert!(depth.ready >= 1, "the released steps are ready again");
    let record = store.get_task(&task).await.unwrap().unwrap();
    let released: Vec<_> = record
        .steps
        .values()
        .filter(|step| step.state == StepState::Ready)
        .collect();
    assert!(!released.is_empty(), "{:?}", record.steps);
    assert!(
        record
            .steps
            .values()
            .all(|step| step.state != StepState::Running),
        "no step is left running: {:?}",
        record.steps
    );
    assert!(
        released.iter().all(|step| step.deliveries == 0),
        "a release counts no delivery"
    );
}
