//! `planex run --plan FILE` and `--plans FILE` as a process, against `planex sim` processes standing
//! in for the model servers (so the test can read how many planner requests they served). The plans
//! are the repository's fixtures, `examples/plans.jsonl` and `examples/hostile-plans.jsonl`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cli_command;
mod sim_process;

use cli_command::planex;
use serde_json::Value;
use sim_process::SimProcess;
use std::path::PathBuf;

fn example(name: &str) -> String {
    format!("{}/../../examples/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// The entries of a fixture file (comments and blank lines skipped), with their line numbers.
fn entries(name: &str) -> Vec<(usize, Value)> {
    std::fs::read_to_string(example(name))
        .unwrap()
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|(i, l)| (i + 1, serde_json::from_str(l).unwrap()))
        .collect()
}

/// The embedded default config with both tiers pointed at simulator processes.
struct Sims {
    planner: SimProcess,
    executor: SimProcess,
    config: PathBuf,
}

impl Sims {
    fn start() -> Sims {
        let planner = SimProcess::start("llama-70b", &[]);
        let executor = SimProcess::start("qwen-7b", &[]);
        let config = sim_process::default_config_against(&planner, &executor);
        let dir = planex_testkit::temp_dir::fresh("planex-plans").unwrap();
        let path = dir.join("planex.toml");
        std::fs::write(&path, config).unwrap();
        Sims {
            planner,
            executor,
            config: path,
        }
    }

    fn config(&self) -> &str {
        self.config.to_str().unwrap()
    }
}

/// A simulator's `/sim/stats`.
fn stats(sim: &SimProcess) -> Value {
    let url = format!("{}/sim/stats", sim.base_url.trim_end_matches("/v1"));
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async { reqwest::get(url).await.unwrap().json().await.unwrap() })
}

fn requests(sim: &SimProcess) -> u64 {
    stats(sim)["requests_total"].as_u64().unwrap()
}

#[test]
fn plans_file_runs_every_good_plan_without_a_planner_call() {
    let sims = Sims::start();
    let out = planex()
        .args(["run", "--json", "--config", sims.config(), "--plans"])
        .arg(example("plans.jsonl"))
        .assert()
        .success()
        .get_output()
        .clone();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let results: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let good = entries("plans.jsonl");
    assert_eq!(
        results.len(),
        good.len(),
        "one JSON result per line: {stdout}"
    );
    assert_eq!(good.len(), 8);
    for ((_, entry), result) in good.iter().zip(&results) {
        let id = &entry["id"];
        assert_eq!(result["status"], "complete", "{id}: {result}");
        assert_eq!(result["plan_source"], "client", "{id}");
        assert_eq!(result["task"], entry["task"], "{id}");
        let plan = entry.get("plan").map_or(&entry["steps"], |p| &p["steps"]);
        // The client's steps plus the synthesis step of the embedded default.
        let steps = result["steps"].as_array().unwrap();
        assert_eq!(steps.len(), plan.as_array().unwrap().len() + 1, "{id}");
        assert!(
            result["cost"]["by_stage"].get("plan").is_none(),
            "{id}: {result}"
        );
    }
    assert_eq!(
        stats(&sims.planner)["planner_requests"],
        0,
        "no plan was asked of the planner"
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("8 of 8 tasks complete"), "{stderr}");
}

#[test]
fn a_hostile_plans_file_exits_2_naming_each_line_and_its_rule_and_runs_nothing() {
    let sims = Sims::start();
    let out = planex()
        .args(["run", "--config", sims.config(), "--plans"])
        .arg(example("hostile-plans.jsonl"))
        .assert()
        .code(2)
        .get_output()
        .clone();
    let stderr = String::from_utf8(out.stderr).unwrap();
    let hostile = entries("hostile-plans.jsonl");
    for (line, entry) in &hostile {
        let id = entry["id"].as_str().unwrap();
        let rule = id.split('/').next().unwrap();
        let needle = format!("line {line} of ");
        let reported = stderr
            .lines()
            .find(|l| l.contains(&needle) && l.contains(&format!("({id})")))
            .unwrap_or_else(|| panic!("line {line} ({id}) not reported: {stderr}"));
        assert!(
            reported.contains(&format!("invalid plan (rule {rule}")),
            "{reported}"
        );
    }
    assert!(
        stderr.contains(&format!(
            "{n} of {n} plans refused; nothing was run",
            n = hostile.len()
        )),
        "{stderr}"
    );
    assert!(!String::from_utf8(out.stdout).unwrap().contains("running"));
    assert_eq!(
        requests(&sims.planner) + requests(&sims.executor),
        0,
        "nothing ran"
    );
}

#[test]
fn one_bad_line_stops_the_whole_file_before_anything_runs() {
    let sims = Sims::start();
    let good = std::fs::read_to_string(example("plans.jsonl")).unwrap();
    let bad = r#"{"task": "loop", "steps": [{"step_id": 1, "tool_name": "summarize", "args": {"text": "x"}, "depends_on": [1]}]}"#;
    let dir = planex_testkit::temp_dir::fresh("planex-plans").unwrap();
    let path = dir.join("mixed.jsonl");
    let lines: Vec<&str> = good.lines().collect();
    let text = format!(
        "{}\nnot json\n{bad}\n{{\"task\": \"t\", \"plan\": {{\"steps\": []}}, \"colour\": 1}}\n",
        lines.join("\n")
    );
    std::fs::write(&path, &text).unwrap();
    let first = lines.len() + 1;
    let out = planex()
        .args([
            "run",
            "--config",
            sims.config(),
            "--plans",
            path.to_str().unwrap(),
        ])
        .assert()
        .code(2)
        .get_output()
        .clone();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains(&format!("line {first} of ")) && stderr.contains("not JSON"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("line {} of ", first + 1))
            && stderr.contains("invalid plan (rule cycle, step 1)"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("line {} of ", first + 2))
            && stderr.contains("unknown key \"colour\""),
        "{stderr}"
    );
    assert!(
        stderr.contains("3 of 11 plans refused; nothing was run"),
        "{stderr}"
    );
    assert_eq!(
        requests(&sims.planner) + requests(&sims.executor),
        0,
        "nothing ran"
    );
}

#[test]
fn plan_file_runs_one_plan_and_an_invalid_one_exits_2() {
    let sims = Sims::start();
    let dir = planex_testkit::temp_dir::fresh("planex-plans").unwrap();
    let path = dir.join("plan.json");
    std::fs::write(
        &path,
        r#"{"task": "the file's task", "steps": [
          {"step_id": 1, "tool_name": "web_search", "args": {"query": "H200 price"}, "depends_on": []},
          {"step_id": 2, "tool_name": "summarize", "args": {"text": "{step_1_result}"}, "depends_on": [1]}]}"#,
    )
    .unwrap();
    let out = planex()
        .args([
            "run",
            "--config",
            sims.config(),
            "--plan",
            path.to_str().unwrap(),
        ])
        .arg("Summarize the H200 price")
        .assert()
        .success()
        .get_output()
        .clone();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("Plan: 3 steps") && stdout.contains("complete in"),
        "{stdout}"
    );
    assert_eq!(stats(&sims.planner)["planner_requests"], 0);
    // The positional task replaces the file's.
    let out = planex()
        .args([
            "run",
            "--json",
            "--config",
            sims.config(),
            "--plan",
            path.to_str().unwrap(),
        ])
        .assert()
        .success()
        .get_output()
        .clone();
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["task"], "the file's task");

    std::fs::write(
        &path,
        r#"{"steps": [{"step_id": 1, "tool_name": "summarize", "args": {"text": "{step_2_result}"}, "depends_on": []}]}"#,
    )
    .unwrap();
    let before = requests(&sims.executor);
    let out = planex()
        .args([
            "run",
            "--config",
            sims.config(),
            "--plan",
            path.to_str().unwrap(),
        ])
        .assert()
        .code(2)
        .get_output()
        .clone();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("invalid plan (rule placeholder_not_in_depends_on, step 1)"),
        "{stderr}"
    );
    assert_eq!(requests(&sims.executor), before, "nothing ran");
    assert_eq!(stats(&sims.planner)["planner_requests"], 0);
}
