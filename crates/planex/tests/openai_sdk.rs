//! The agent endpoint through the official `openai` Python SDK (pinned in a venv under `target/`,
//! `planex_testkit::python`), against real processes: `planex serve`, `planex worker`s, a
//! `planex sim` and a private `redis-server` (see `cluster/`). The checks themselves are in
//! `crates/planex-testkit/python/check_openai_sdk.py`, run with `-W error` so any SDK warning
//! fails too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cluster;

use cluster::{Cluster, Options};
use planex_testkit::python;
use serde_json::json;

const TASK_OK: &str = "Describe the coastal city of Oslo";
const TASK_PARTIAL: &str = "Two lookups, one of them broken";
const TASK_FAILING: &str = "Two lookups, both broken";

/// One `web_search` step per query, none depending on another.
fn lookups(queries: &[&str]) -> serde_json::Value {
    let steps: Vec<_> = queries
        .iter()
        .enumerate()
        .map(|(i, query)| {
            json!({"step_id": i + 1, "tool_name": "web_search", "args": {"query": query}, "depends_on": []})
        })
        .collect();
    json!(steps)
}

/// The simulator answers a step whose prompt carries `#sim:fail=500` with HTTP 500, every time.
fn workload() -> String {
    [
        (
            TASK_PARTIAL,
            lookups(&["GPU prices", "#sim:fail=500 broken source"]),
        ),
        (
            TASK_FAILING,
            lookups(&["#sim:fail=500 first source", "#sim:fail=500 second source"]),
        ),
    ]
    .iter()
    .map(|(task, steps)| json!({"task": task, "plan": {"task": task, "steps": steps}}).to_string())
    .collect::<Vec<_>>()
    .join("\n")
}

#[test]
fn the_official_openai_sdk_sees_answers_errors_streams_and_models_as_openai_defines_them() {
    let python = python::test_tools().expect("the pinned Python test tools");
    let cluster = Cluster::start(Options {
        workload: workload(),
        // Paced, so a streamed answer comes as it is generated (unpaced it is one write).
        tps: Some(5_000.0),
        ..Options::default()
    });
    let _workers = [
        cluster.worker("executor", "exec-1", 30.0, 5.0),
        cluster.worker("planner", "plan-1", 30.0, 5.0),
    ];
    let output = std::process::Command::new(&python)
        .args(["-W", "error"])
        .arg(python::script("check_openai_sdk.py"))
        .args([
            &format!("{}/v1", cluster.api),
            TASK_OK,
            TASK_PARTIAL,
            TASK_FAILING,
        ])
        .output()
        .expect("run the SDK checks");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{stdout}");
    assert!(
        output.status.success(),
        "the SDK checks failed:\n{stdout}\n{stderr}"
    );
    for check in [
        "models.list()",
        "usage once",
        "parse with a json_schema",
        "APIStatusError 502",
        "RateLimitError",
    ] {
        assert!(
            stdout.contains(check),
            "check {check:?} did not run:\n{stdout}"
        );
    }
}
