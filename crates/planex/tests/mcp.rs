//! MCP tools end to end, as processes: `planex tools list`, `planex tools call` and
//! `planex run --plan` with the
//! reference filesystem MCP server (npm `@modelcontextprotocol/server-filesystem`, over stdio,
//! on a temp dir) and `planex sim` processes for the model tiers. A plan lists a directory, reads
//! two files in parallel and summarises them: the files' real content reaches the summary's
//! prompt (a `#sim:tokens=3` marker in one file sets the summary's length), MCP steps make no
//! model call, and a tool error (a missing file) fails its step with the tool's message and
//! skips its dependents. An `llm` tool that `uses` the server's tools reads the files through
//! function calling: two rounds of tool calls the simulator makes, then an answer, each round and
//! each tool call in the task's cost records.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cli_command;
mod sim_process;

use cli_command::planex;
use serde_json::{Value, json};
use sim_process::SimProcess;
use std::path::{Path, PathBuf};

/// A temp dir with two files, and a config whose tiers are simulator processes and whose
/// `files` MCP server serves that dir.
struct Setup {
    _planner: SimProcess,
    _executor: SimProcess,
    root: PathBuf,
    config: PathBuf,
}

fn setup() -> Setup {
    let root = planex_testkit::temp_dir::fresh("planex-mcp").unwrap();
    std::fs::write(
        root.join("a.txt"),
        "alpha: the H200 has 141 GB #sim:tokens=3",
    )
    .unwrap();
    std::fs::write(root.join("b.txt"), "beta: the L40S has 48 GB").unwrap();
    let (command, args) = planex_testkit::node::filesystem_server(&root).unwrap();
    let planner = SimProcess::start("llama-70b", &[]);
    let executor = SimProcess::start("qwen-7b", &[]);
    let mut config = sim_process::default_config_against(&planner, &executor);
    config.push_str(&format!(
        "\n[[mcp_servers]]\nname = \"files\"\ncommand = {}\nargs = {}\ntimeout_secs = 20\n",
        json!(command),
        json!(args)
    ));
    config.push_str(
        r#"
[[tools]]
name = "research"
description = "Answer a question about the files, reading them as needed"
tier = "executor"
input_schema = { type = "object", properties = { question = { type = "string", minLength = 1 } }, required = ["question"] }
kind = { type = "llm", prompt = "{question}", max_tokens = 128, uses = ["files__list_directory", "files__read_text_file"] }
"#,
    );
    let path = root.join("planex.toml");
    std::fs::write(&path, config).unwrap();
    Setup {
        _planner: planner,
        _executor: executor,
        root,
        config: path,
    }
}

fn run_plan(setup: &Setup, plan: &Value) -> (bool, Value) {
    let path = setup.root.join("plan.json");
    std::fs::write(&path, plan.to_string()).unwrap();
    let out = planex()
        .args(["run", "--json", "--config"])
        .arg(&setup.config)
        .arg("--plan")
        .arg(&path)
        .output()
        .unwrap();
    let result = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), result)
}

fn file(root: &Path, name: &str) -> String {
    root.join(name).display().to_string()
}

#[test]
fn a_plan_over_a_real_mcp_server_reads_files_and_summarises_them() {
    let setup = setup();
    let out = planex()
        .args(["tools", "list", "--json", "--config"])
        .arg(&setup.config)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let tools: Vec<Value> = serde_json::from_slice(&out).unwrap();
    let read = tools
        .iter()
        .find(|t| t["name"] == "files__read_text_file")
        .unwrap_or_else(|| panic!("the server's tools are listed: {tools:?}"));
    assert_eq!(read["kind"], "mcp");
    assert_eq!(read["server"], "files");
    assert_eq!(read["tier"], "tools");
    assert!(tools.iter().any(|t| t["name"] == "files__list_directory"));
    assert!(
        tools.iter().any(|t| t["name"] == "summarize"),
        "config tools stay"
    );

    // One tool, once, for debugging it.
    let out = planex()
        .args(["tools", "call", "files__read_text_file", "--config"])
        .arg(&setup.config)
        .arg("--args")
        .arg(json!({"path": file(&setup.root, "b.txt")}).to_string())
        .assert()
        .success()
        .get_output()
        .clone();
    let printed = String::from_utf8(out.stdout).unwrap();
    assert!(printed.contains("beta: the L40S has 48 GB"), "{printed}");
    let out = planex()
        .args(["tools", "call", "files__read_text_file", "--config"])
        .arg(&setup.config)
        .args(["--args", "{\"path\": 7}"])
        .assert()
        .failure()
        .get_output()
        .clone();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("do not match its input schema"), "{stderr}");

    let root = setup.root.display().to_string();
    let plan = json!({"task": "Summarize the two files", "steps": [
        {"step_id": 1, "tool_name": "files__list_directory", "args": {"path": root}, "depends_on": []},
        {"step_id": 2, "tool_name": "files__read_text_file", "args": {"path": file(&setup.root, "a.txt")}, "depends_on": [1]},
        {"step_id": 3, "tool_name": "files__read_text_file", "args": {"path": file(&setup.root, "b.txt")}, "depends_on": [1]},
        {"step_id": 4, "tool_name": "summarize", "args": {"text": "{step_2_result}\n{step_3_result}"}, "depends_on": [2, 3]},
    ]});
    let (ok, result) = run_plan(&setup, &plan);
    assert!(ok, "{result}");
    assert_eq!(result["status"], "complete", "{result}");
    let steps = result["steps"].as_array().unwrap();
    let text = |id: u64| steps.iter().find(|s| s["step_id"] == id).unwrap()["result"].to_string();
    assert!(
        text(1).contains("a.txt") && text(1).contains("b.txt"),
        "{}",
        text(1)
    );
    assert!(
        text(2).contains("alpha: the H200 has 141 GB"),
        "{}",
        text(2)
    );
    assert!(text(3).contains("beta: the L40S has 48 GB"), "{}", text(3));
    let by_tool = &result["cost"]["by_tool"];
    // Without the marker the simulator writes 120 tokens; with it, 3 (plus its label).
    let written = by_tool["summarize"]["usage"]["completion_tokens"]
        .as_u64()
        .unwrap();
    assert!(
        written < 10,
        "the marker in a.txt reached the summary's prompt: {by_tool}"
    );
    assert!(
        by_tool
            .as_object()
            .unwrap()
            .keys()
            .all(|k| !k.starts_with("files__")),
        "MCP steps make no model call: {by_tool}"
    );

    let plan = json!({"task": "Read a missing file", "steps": [
        {"step_id": 1, "tool_name": "files__read_text_file", "args": {"path": file(&setup.root, "missing.txt")}, "depends_on": []},
        {"step_id": 2, "tool_name": "summarize", "args": {"text": "{step_1_result}"}, "depends_on": [1]},
        {"step_id": 3, "tool_name": "files__read_text_file", "args": {"path": file(&setup.root, "b.txt")}, "depends_on": []},
    ]});
    let (_, result) = run_plan(&setup, &plan);
    assert_eq!(result["status"], "partial", "{result}");
    let steps = result["steps"].as_array().unwrap();
    let step = |id: u64| steps.iter().find(|s| s["step_id"] == id).unwrap();
    assert_eq!(step(1)["state"], "failed");
    let error = step(1)["error"].as_str().unwrap();
    assert!(
        error.contains("files/read_text_file reported an error") && error.contains("missing.txt"),
        "{error}"
    );
    assert_eq!(step(2)["state"], "skipped");
    assert_eq!(step(3)["state"], "complete");
    std::fs::remove_dir_all(&setup.root).unwrap();
}

#[test]
fn an_llm_tool_reads_files_through_function_calling() {
    let setup = setup();
    let root = setup.root.display().to_string();
    // The simulator's script: round 1 lists the dir, round 2 reads both files at once, then it
    // answers; a.txt's `#sim:tokens=3` marker shortens that answer once a.txt's text is in the
    // conversation.
    let question = format!(
        "What do the files say? #sim:call=files__list_directory{} #sim:call=files__read_text_file{}|files__read_text_file{}",
        json!({"path": root}),
        json!({"path": file(&setup.root, "a.txt")}),
        json!({"path": file(&setup.root, "b.txt")}),
    );
    let plan = json!({"task": "Research the files", "steps": [
        {"step_id": 1, "tool_name": "research", "args": {"question": question}, "depends_on": []},
    ]});
    let (ok, result) = run_plan(&setup, &plan);
    assert!(ok, "{result}");
    assert_eq!(result["status"], "complete", "{result}");
    let calls = result["calls"].as_array().unwrap();
    let rounds: Vec<(&str, &str, u64)> = calls
        .iter()
        .filter(|c| c["stage"] == "step" || c["stage"] == "tool_call")
        .map(|c| {
            (
                c["stage"].as_str().unwrap(),
                c["tool"].as_str().unwrap(),
                c["round"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rounds,
        [
            ("step", "research", 1),
            ("tool_call", "files__list_directory", 1),
            ("step", "research", 2),
            ("tool_call", "files__read_text_file", 2),
            ("tool_call", "files__read_text_file", 2),
            ("step", "research", 3),
        ],
        "{calls:?}"
    );
    assert!(
        calls.iter().all(|c| c["latency_ms"].is_u64()),
        "every call has its latency: {calls:?}"
    );
    let first_round = calls.iter().find(|c| c["stage"] == "step").unwrap();
    let last = calls.iter().rfind(|c| c["stage"] == "step").unwrap();
    assert!(
        last["usage"]["completion_tokens"].as_u64().unwrap() < 10,
        "a.txt's content reached the model's last round: {last}"
    );
    assert!(
        last["usage"]["prompt_tokens"].as_u64().unwrap()
            > first_round["usage"]["prompt_tokens"].as_u64().unwrap(),
        "the last round's prompt carries the tool results"
    );
    let by_stage = &result["cost"]["by_stage"];
    assert_eq!(by_stage["tool_call"]["calls"], 3, "{by_stage}");
    assert_eq!(by_stage["tool_call"]["cost_usd"], "0", "{by_stage}");
    std::fs::remove_dir_all(&setup.root).unwrap();
}
