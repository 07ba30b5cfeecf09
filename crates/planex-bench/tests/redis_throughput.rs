//! `planex-bench redis throughput` end to end on a private `redis-server`: the benchmark's own
//! worker processes, the planex store path and the bare-queue yardsticks (with and without a
//! simulator call per job) each finish every step and report it; several variants and runs give
//! one summary with run-by-run ratios and leave no keys behind (no timing is asserted: the figures go to docs/BENCHMARKS.md).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use assert_cmd::Command;
use planex_testkit::redis::RedisServer;

fn throughput(redis: &RedisServer, model: &str, extra: &[&str]) -> serde_json::Value {
    let output = Command::new(env!("CARGO_BIN_EXE_planex-bench"))
        .args(["redis", "throughput", "--url", &redis.url()])
        .args([
            "--model",
            model,
            "--tasks",
            "20",
            "--workers",
            "2",
            "--json",
        ])
        .args(extra)
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "bench failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

#[test]
fn planex_steps_and_bare_jobs_all_finish_and_are_counted() {
    let redis = RedisServer::start().expect("start a private redis-server");
    let planex = throughput(&redis, "noop", &["--clients", "4"]);
    assert_eq!(planex["steps"], 200.0, "{planex}");
    assert_eq!(planex["clients"], 4, "{planex}");
    assert!(
        planex["script_calls_per_step"].as_f64().unwrap() > 0.0,
        "planex steps go through the store's scripts: {planex}"
    );
    let bare = throughput(&redis, "bare", &[]);
    assert_eq!(bare["steps"], 200.0, "{bare}");
    assert_eq!(
        bare["script_calls_per_step"], 0.0,
        "the yardstick runs no planex scripts: {bare}"
    );
    assert!(
        bare["round_trips_per_step"].as_f64().unwrap() > 0.0,
        "{bare}"
    );
    // Each bare-sim job calls the simulator; a failed call fails the worker and the run.
    let bare_sim = throughput(&redis, "bare-sim", &[]);
    assert_eq!(bare_sim["steps"], 200.0, "{bare_sim}");
    assert_eq!(bare_sim["script_calls_per_step"], 0.0, "{bare_sim}");
    assert_eq!(
        bare_sim["model_calls"], 200,
        "one simulator call per job: {bare_sim}"
    );
    assert!(
        bare_sim["model"].as_str().unwrap().contains("simulator"),
        "{bare_sim}"
    );
}

#[test]
fn variants_run_interleaved_are_summarised_and_leave_no_keys() {
    let redis = RedisServer::start().expect("start a private redis-server");
    let out = throughput(&redis, "bare,noop", &["--runs", "2"]);
    let variants = out["summary"]["variants"].as_array().unwrap();
    let names: Vec<&str> = variants
        .iter()
        .map(|v| v["variant"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["bare", "noop"], "{out}");
    assert_eq!(out["summary"]["compared_with"], "bare");
    assert_eq!(
        variants[0]["ratio_to_first"]["median"], 1.0,
        "the first variant compared with itself: {out}"
    );
    assert!(variants[1]["ratio_to_first"]["median"].as_f64().unwrap() > 0.0);
    let reports = out["reports"].as_array().unwrap();
    assert_eq!(reports.len(), 2);
    assert!(
        reports
            .iter()
            .all(|runs| runs.as_array().unwrap().len() == 2)
    );
    for runs in reports {
        for report in runs.as_array().unwrap() {
            assert_eq!(report["steps"], 200.0, "{report}");
        }
    }
    // Each run deletes its keys, so runs can follow each other on one Redis.
    let mut conn = redis::Client::open(redis.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let keys: u64 = redis::cmd("DBSIZE").query(&mut conn).unwrap();
    assert_eq!(keys, 0);
}

#[test]
fn without_url_the_benchmark_starts_its_own_redis_and_says_so() {
    let output = Command::new(env!("CARGO_BIN_EXE_planex-bench"))
        .args([
            "redis",
            "throughput",
            "--model",
            "noop",
            "--tasks",
            "5",
            "--json",
        ])
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "bench failed: {stderr}");
    assert!(
        stderr.contains("started a private redis-server"),
        "says on stderr which Redis it uses: {stderr}"
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["steps"], 50.0, "{report}");
}
