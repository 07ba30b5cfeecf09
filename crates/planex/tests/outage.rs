//! A lost Redis is loud: a `planex worker` whose Redis stops logs it at once (at its default log
//! level, no `PLANEX_LOG` needed), and says when Redis is back, with how long it was down. Real
//! processes: a private `redis-server`, `planex sim`, `planex serve` and a worker whose stderr the
//! test reads line by line (no sleeps: each wait is for a line, with a timeout).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cluster;

use cluster::{Cluster, Options};
use planex_testkit::process::OutputLines;
use std::process::{Command, Stdio};
use std::time::Duration;

const SAYS: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_says_when_redis_is_lost_and_when_it_is_back() {
    let mut cluster = tokio::task::block_in_place(|| {
        Cluster::start(Options {
            appendonly: true,
            ..Options::default()
        })
    });
    let mut worker = Command::new(env!("CARGO_BIN_EXE_planex"))
        .args(["worker", "--tier", "executor", "--id", "loud-1", "--config"])
        .arg(&cluster.config)
        .env_remove("PLANEX_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
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
    let _ = worker.kill();
    let _ = worker.wait();
}
