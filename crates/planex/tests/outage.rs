//! A lost Redis is loud: a `planex worker` whose Redis stops logs it at once (at its default log
//! level, no `PLANEX_LOG` needed), and says when Redis is back, with how long it was down; and a
//! worker SIGTERM'd while Redis is down still exits (its drain and hand-back are bounded; before,
//! each store call retried for 30 s). Real processes: a private `redis-server`, `planex sim`, `planex serve` and a worker whose stderr the
//! test reads line by line (no sleeps: each wait is for a line, with a timeout).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cluster;

use cluster::{Cluster, Options};
use planex_testkit::process::OutputLines;
use std::process::{Command, Stdio};
use std::time::Duration;

const SAYS: Duration = Duration::from_secs(60);

/// `planex ARGS` at its default log level, with stdout and stderr piped to the test.
fn planex_piped(args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_planex"))
        .args(args)
        .env_remove("PLANEX_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_says_when_redis_is_lost_and_when_it_is_back() {
    let mut cluster = tokio::task::block_in_place(|| {
        Cluster::start(Options {
            appendonly: true,
            ..Options::default()
        })
    });
    let config = cluster.config.to_str().unwrap();
    let mut worker = planex_piped(&[
        "worker",
        "--tier",
        "executor",
        "--id",
        "loud-1",
        "--drain-secs",
        "1",
        "--config",
        config,
    ]);
    let stdout = OutputLines::read(worker.stdout.take().unwrap());
    let stderr = OutputLines::read(worker.stderr.take().unwrap());
    tokio::task::block_in_place(|| stdout.wait_for("serving tier", SAYS)).unwrap();

    cluster.redis.stop();
    let lost = tokio::task::block_in_place(|| stderr.wait_for("Redis is unreachable", SAYS))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(lost.contains("ERROR"), "{lost}");
    assert!(lost.contains("check that Redis runs"), "{lost}");
    assert!(
        lost.contains(&format!("127.0.0.1:{}", cluster.redis.port())),
        "{lost}"
    );

    cluster.redis.restart().unwrap();
    let back = tokio::task::block_in_place(|| stderr.wait_for("Redis is reachable again", SAYS))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(back.contains("down_secs"), "{back}");

    // Down again: a new outage is logged at once; a SIGTERM now still ends the worker.
    cluster.redis.stop();
    tokio::task::block_in_place(|| stderr.wait_for("Redis is unreachable", SAYS))
        .unwrap_or_else(|e| panic!("{e}"));
    let pid = worker.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let stopped = tokio::task::block_in_place(|| stdout.wait_for("stopped (", EXITS))
        .unwrap_or_else(|e| panic!("a worker SIGTERM'd with Redis down must exit: {e}"));
    assert!(stopped.contains("0 unfinished steps released"), "{stopped}");
    assert!(worker.wait().unwrap().success());
}

/// How long a stopping worker may take with Redis down: its 1 s drain, the 1 s hand-back and the
/// 1 s retirement bounds, with room for a slow machine (each store call alone used to retry 30 s).
const EXITS: Duration = Duration::from_secs(20);

/// `planex serve` on a Redis whose `maxmemory-policy` may evict any key says so at start, with
/// what to set instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_warns_at_start_when_redis_may_evict_its_keys() {
    let redis = planex_testkit::redis::RedisServer::start().unwrap();
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-policy")
        .arg("allkeys-lru")
        .query_async(&mut conn)
        .await
        .unwrap();
    let dir = planex_testkit::temp_dir::fresh("planex-eviction").unwrap();
    let config = dir.join("planex.toml");
    let store_url = format!("{}/0", redis.url());
    let text = planex_testkit::cluster_config::ClusterConfig {
        sim_url: "http://127.0.0.1:9/v1",
        store_url: &store_url,
        timeout_secs: 5,
        max_retries: 0,
        max_backoff_ms: 50,
        engine: "",
        tables: "",
    }
    .toml();
    std::fs::write(&config, text).unwrap();
    let mut serve = planex_piped(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--config",
        config.to_str().unwrap(),
    ]);
    let stderr = OutputLines::read(serve.stderr.take().unwrap());
    let warned =
        tokio::task::block_in_place(|| stderr.wait_for("maxmemory-policy is allkeys-lru", SAYS))
            .unwrap_or_else(|e| panic!("{e}"));
    assert!(warned.contains("noeviction"), "{warned}");
    let _ = serve.kill();
    let _ = serve.wait();
}
