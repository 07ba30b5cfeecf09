//! `planex cost`, `planex compare` and `planex workload` as processes: the reference cost figures
//! exactly, and comparison totals that equal the sums of per-call usage and the simulators' counts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cli_command;

use assert_cmd::Command;
use cli_command::planex;
use serde_json::Value;
use std::path::PathBuf;

fn workload(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../workloads")
        .join(name)
}

fn stdout(cmd: &mut Command) -> String {
    let out = cmd.assert().success().get_output().clone();
    String::from_utf8(out.stdout).unwrap()
}

fn line<'a>(text: &'a str, start: &str) -> &'a str {
    text.lines()
        .find(|l| l.trim_start().starts_with(start))
        .unwrap_or_else(|| panic!("no line starting with {start:?} in:\n{text}"))
}

#[test]
fn cost_with_the_reference_inputs_prints_the_reference_figures() {
    // Spelled out, although these are the defaults: the reference inputs of the cost table.
    let text = stdout(planex().args([
        "cost",
        "--planner-usd-per-hour",
        "4.54",
        "--planner-tokens-per-second",
        "2500",
        "--executor-usd-per-hour",
        "0.96",
        "--executor-tokens-per-second",
        "6000",
        "--react-calls",
        "10",
        "--react-tokens",
        "1500",
        "--planner-calls",
        "1",
        "--planner-tokens",
        "2000",
        "--executor-calls",
        "9",
        "--executor-tokens",
        "800",
    ]));
    assert!(line(&text, "planner ").ends_with("$0.504"), "{text}");
    assert!(line(&text, "executor ").ends_with("$0.044"), "{text}");
    let react = line(&text, "ReAct");
    assert!(
        react.contains(" $0.00756 ") && react.ends_with(" $7.56"),
        "{react}"
    );
    let plan_execute = line(&text, "plan-and-execute");
    assert!(
        plan_execute.contains(" $0.00133 ") && plan_execute.ends_with(" $1.33"),
        "{plan_execute}"
    );
    assert_eq!(
        line(&text, "Savings:"),
        "Savings: 82% per task with plan-and-execute"
    );
    // No flags at all: the same table.
    assert_eq!(stdout(planex().arg("cost")), text);
}

#[test]
fn cost_json_keeps_exact_decimals() {
    let text = stdout(planex().args(["cost", "--json"]));
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["comparison"]["react"]["per_task"], "0.00756");
    assert_eq!(doc["comparison"]["plan_execute"]["per_task"], "0.0013248");
    assert_eq!(doc["comparison"]["planner_price"]["input"], "0.504");
    let exact = stdout(planex().args(["cost", "--json", "--exact"]));
    let doc: Value = serde_json::from_str(&exact).unwrap();
    assert!(
        doc["comparison"]["react"]["per_task"]
            .as_str()
            .unwrap()
            .starts_with("0.0075666"),
        "{exact}"
    );
}

#[test]
fn cost_rejects_bad_input_with_a_reason() {
    let out = planex()
        .args(["cost", "--react-tokens=-5"])
        .assert()
        .failure()
        .get_output()
        .clone();
    assert!(String::from_utf8_lossy(&out.stderr).contains("--react-tokens must be >= 0"));
    let out = planex()
        .args(["cost", "--planner-tokens-per-second", "0"])
        .assert()
        .failure()
        .get_output()
        .clone();
    assert!(String::from_utf8_lossy(&out.stderr).contains("tokens per second > 0"));
    planex()
        .args([
            "cost",
            "--planner-usd-per-million",
            "1",
            "--planner-usd-per-hour",
            "2",
        ])
        .assert()
        .failure();
}

fn sum(tasks: &[Value], arch: &str, field: &str) -> u64 {
    tasks.iter().map(|t| t[arch][field].as_u64().unwrap()).sum()
}

#[test]
fn compare_totals_are_the_sums_of_per_call_usage() {
    let path = workload("reference-10-step.jsonl");
    let text = stdout(
        planex()
            .args(["compare", "--json", "--latency-ms", "0", "--workload"])
            .arg(&path),
    );
    let report: Value = serde_json::from_str(&text).unwrap();
    let tasks = report["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 1);
    for arch in ["plan_execute", "react"] {
        let total = &report[arch];
        assert_eq!(total["failed"], 0, "{text}");
        assert_eq!(total["calls"].as_u64().unwrap(), sum(tasks, arch, "calls"));
        assert_eq!(
            total["tokens"].as_u64().unwrap(),
            sum(tasks, arch, "tokens")
        );
        // Per-tier usage adds up to the total, and matches what the simulators counted.
        let by_tier: u64 = total["tokens_by_tier"]
            .as_object()
            .unwrap()
            .values()
            .map(|u| {
                u["prompt_tokens"].as_u64().unwrap() + u["completion_tokens"].as_u64().unwrap()
            })
            .sum();
        assert_eq!(by_tier, total["tokens"].as_u64().unwrap());
        let server = &total["server_usage"];
        assert_eq!(
            server["prompt_tokens"].as_u64().unwrap()
                + server["completion_tokens"].as_u64().unwrap(),
            by_tier,
            "the simulators counted other tokens than the call records: {text}"
        );
        assert_eq!(
            total["server_requests"].as_u64().unwrap(),
            total["calls"].as_u64().unwrap()
        );
    }
    let task = &tasks[0];
    // Plan-and-execute: one plan, ten steps, one synthesis. ReAct: eleven turns, ten tool calls.
    assert_eq!(task["plan_execute"]["calls"], 12);
    assert_eq!(task["react"]["calls"], 21);
    assert_eq!(task["react"]["status"], "answered");
    assert_eq!(task["plan_execute"]["status"], "complete");
    // Both architectures send the same executor-tier work.
    assert_eq!(
        task["plan_execute"]["tokens_by_tier"]["executor"],
        task["react"]["tokens_by_tier"]["executor"]
    );
    // Streamed planning runs the same calls (only earlier), for the same cost.
    assert_eq!(task["streamed"]["status"], "complete");
    assert_eq!(task["streamed"]["calls"], task["plan_execute"]["calls"]);
    assert_eq!(
        task["streamed"]["cost_usd"],
        task["plan_execute"]["cost_usd"]
    );
    assert_eq!(
        report["streamed"]["makespan_ms"].as_f64().unwrap(),
        task["streamed"]["makespan_ms"].as_f64().unwrap()
    );
    assert!(report["streamed_speedup"].as_f64().unwrap() > 0.0, "{text}");
    let savings: f64 = report["savings_percent"].as_str().unwrap().parse().unwrap();
    assert!(
        savings >= 82.0,
        "the reference task must save at least 82%: {savings}"
    );
}

#[test]
fn compare_markdown_has_a_row_per_task_and_a_total() {
    let path = workload("fanout-8.jsonl");
    let text = stdout(
        planex()
            .args(["compare", "--markdown", "--latency-ms", "0", "--workload"])
            .arg(&path),
    );
    let rows: Vec<&str> = text.lines().filter(|l| l.starts_with('|')).collect();
    assert_eq!(rows.len(), 4, "header, separator, one task, total:\n{text}");
    assert!(
        rows[2].starts_with("| fanout-8 | 9 | complete / answered | 11 / 19 |"),
        "{text}"
    );
    assert!(rows[3].starts_with("| **total (1 tasks)** |"), "{text}");
    assert!(
        rows[0].ends_with("| makespan ms streamed P&E | speed-up streamed |"),
        "{text}"
    );
    assert!(text.contains("savings **"), "{text}");
    assert!(text.contains("With streamed plans"), "{text}");
}

#[test]
fn compare_explains_a_missing_workload() {
    let out = planex()
        .args(["compare", "--workload", "/nonexistent/planex.jsonl"])
        .assert()
        .failure()
        .get_output()
        .clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot read the workload file /nonexistent/planex.jsonl"),
        "{stderr}"
    );
}

#[test]
fn workload_command_prints_plans_the_simulator_accepts() {
    let text = stdout(planex().args(["workload", "lanes", "--steps", "5", "--width", "2"]));
    let line: Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(line["plan"]["steps"].as_array().unwrap().len(), 5);
    planex()
        .args(["workload", "lanes", "--steps", "5", "--width", "9"])
        .assert()
        .failure();
}
