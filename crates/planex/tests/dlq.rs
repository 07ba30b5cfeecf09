//! `planex dlq` against real processes: a private `redis-server`, `planex sim`, `planex serve` and
//! one worker per tier. A step that fails for good is listed and grouped by the CLI, replayed as a
//! new task that reuses the completed steps and reruns the dead one (and the synthesis), and
//! purged; bad ids and a purge without ids are clear failures; `planex spend export` gives the
//! month's spend of these tasks as CSV and JSON.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cluster;

use cluster::{Cluster, Options};
use planex_core::{StepId, TaskId};
use planex_store::{Store, TaskStatus};
use std::process::Output;
use std::time::Duration;

const DONE: Duration = Duration::from_secs(120);

/// Runs `planex dlq ARGS --url API` and returns its output.
fn dlq(cluster: &Cluster, args: &[&str]) -> Output {
    tokio::task::block_in_place(|| {
        std::process::Command::new(env!("CARGO_BIN_EXE_planex"))
            .arg("dlq")
            .args(args)
            .args(["--url", &cluster.api])
            .env_remove("PLANEX_LOG")
            .env_remove("PLANEX_API_KEY")
            .output()
            .unwrap()
    })
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Submits a client plan whose step 2 carries `marker` (a simulator fault) and waits for it.
/// (The task text, which the synthesis step's prompt quotes, names the run, not the marker.)
async fn run_plan(cluster: &Cluster, store: &dyn Store, run: u32, marker: &str) -> TaskId {
    let plan = serde_json::json!({"steps": [
        {"step_id": 1, "tool_name": "web_search", "args": {"query": "GPU prices"}, "depends_on": []},
        {"step_id": 2, "tool_name": "summarize", "args": {"text": format!("{{step_1_result}} {marker}")}, "depends_on": [1]},
    ]});
    let response = cluster
        .http
        .post(format!("{}/v1/tasks", cluster.api))
        .json(
            &serde_json::json!({"task": format!("Summarize GPU prices, run {run}"), "plan": plan}),
        )
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = response.json().await.unwrap();
    let task = TaskId(body["task_id"].as_str().expect("accepted").to_owned());
    let record = planex_store::wait_for_task(store, &task, DONE)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("task did not finish: {}", cluster.logs()));
    assert_eq!(record.status, TaskStatus::Partial, "{:?}", record.error);
    task
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_lists_replays_and_purges_dead_letters_on_redis() {
    let cluster = tokio::task::block_in_place(|| Cluster::start(Options::default()));
    let _executor = tokio::task::block_in_place(|| cluster.worker("executor", "exec-1", 30.0, 5.0));
    let _planner = tokio::task::block_in_place(|| cluster.worker("planner", "plan-1", 30.0, 5.0));
    let store = cluster.store().await;
    // HTTP 400 is not retried: step 2 is dead at once; `x1` lets its replay succeed.
    let original = run_plan(&cluster, &store, 1, "#sim:fail=400x1").await;

    let listed = dlq(&cluster, &["list", "--json"]);
    assert!(listed.status.success(), "{listed:?}");
    let letters: Vec<serde_json::Value> = stdout(&listed)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0]["task_id"], original.0.as_str());
    assert_eq!(letters[0]["step_id"], 2);
    let id = letters[0]["id"].as_str().unwrap().to_owned();
    let grouped = stdout(&dlq(&cluster, &["list", "--group"]));
    assert!(
        grouped
            .lines()
            .any(|l| l.contains("summarize") && l.trim_start().starts_with('1')),
        "{grouped}"
    );

    let replayed = dlq(&cluster, &["replay", &id, "--purge"]);
    assert!(replayed.status.success(), "{replayed:?}");
    let said = stdout(&replayed);
    assert!(
        said.contains("1 step reused, 2 steps run again, letter purged"),
        "{said}"
    );
    let new_task = said
        .split("replayed as task ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .map(|id| TaskId(id.to_owned()))
        .unwrap_or_else(|| panic!("no task id in {said:?}"));
    let record = planex_store::wait_for_task(&store, &new_task, DONE)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("the replay did not finish: {}", cluster.logs()));
    assert_eq!(record.status, TaskStatus::Complete, "{:?}", record.error);
    assert_eq!(record.retry_of.as_ref(), Some(&original));
    assert_eq!(record.steps[&StepId(1)].attempts, 0, "step 1 was reused");
    let before = store.get_task(&original).await.unwrap().unwrap();
    assert_eq!(
        before.status,
        TaskStatus::Partial,
        "the original is unchanged"
    );
    assert_eq!(
        before.steps[&StepId(1)].result,
        record.steps[&StepId(1)].result
    );
    assert!(stdout(&dlq(&cluster, &["list"])).contains("No dead letters."));

    // A second letter, purged by filter; bad ids and a bare purge fail clearly.
    run_plan(&cluster, &store, 2, "#sim:fail=400").await;
    let purged = dlq(&cluster, &["purge", "--all", "--tool", "summarize"]);
    assert!(purged.status.success(), "{purged:?}");
    assert!(
        stdout(&purged).contains("1 dead letter purged"),
        "{purged:?}"
    );
    assert!(stdout(&dlq(&cluster, &["list"])).contains("No dead letters."));
    let missing = dlq(&cluster, &["show", &id]);
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("HTTP 404"),
        "{missing:?}"
    );
    let bare = dlq(&cluster, &["purge"]);
    assert!(!bare.status.success());
    assert!(
        String::from_utf8_lossy(&bare.stderr).contains("--all"),
        "{bare:?}"
    );
}
