//! `planex-bench makespan`: a 10-step, three-level plan with 200 ms per step against its critical
//! path plus planning time, and against a 10-step chain (the sequential equivalent)
//! (docs/BENCHMARKS.md, benchmark 3).

use crate::args::{MAX_RUNS, MakespanArgs, check_count};
use crate::bed::Bed;
use crate::report::{header, ratio_row, row, verdict};
use crate::stats::{Summary, ms};
use crate::workload::{LEVELS, MakespanSims, STEPS, chain_plan, dag_plan};
use anyhow::{Result, bail};
use planex_sim::Workload;
use std::process::ExitCode;
use std::time::Duration;

/// Time per step when `--step-ms` is not given.
const DEFAULT_STEP_MS: u64 = 200;

/// Runs the benchmark and prints its report.
pub(crate) async fn run(args: MakespanArgs) -> Result<ExitCode> {
    if let Some(tps) = args.planner_tps {
        return crate::makespan_streamed::run(args, tps).await;
    }
    let step_ms = args.step_ms.unwrap_or(DEFAULT_STEP_MS);
    check_count("runs", args.runs, MAX_RUNS)?;
    if args.sequential_runs > MAX_RUNS {
        bail!("--sequential-runs must be at most {MAX_RUNS}");
    }
    if step_ms == 0 || step_ms > 10_000 {
        bail!("--step-ms must be between 1 and 10000, got {step_ms}");
    }
    const DAG_TASK: &str = "makespan benchmark: 10 steps in three levels";
    const CHAIN_TASK: &str = "makespan benchmark: 10 steps in a chain";
    let mut workload = Workload::default();
    workload.insert(DAG_TASK, vec![dag_plan()]);
    workload.insert(CHAIN_TASK, vec![chain_plan()]);
    let sims = MakespanSims::start(
        workload,
        args.planner_ttft_ms,
        None,
        step_ms,
        !args.no_stream,
    )
    .await?;
    // Whole-plan planning: the figures this benchmark has always measured (`--planner-tps`
    // compares streamed planning).
    let bed = Bed::start_with(sims.planner, sims.executor, sims.sims, false).await?;
    let step = Duration::from_millis(step_ms);
    let critical_path = step * LEVELS;

    // One untimed run warms connections and allocators.
    bed.timed_task(DAG_TASK).await?;
    let (mut makespans, mut plannings, mut ratios, mut ideal_ratios) =
        (vec![], vec![], vec![], vec![]);
    let (mut retries, mut calls) = (0, vec![]);
    for _ in 0..args.runs {
        let t = bed.timed_task(DAG_TASK).await?;
        calls.extend(t.call.values().map(|c| ms(*c)));
        makespans.push(ms(t.makespan));
        plannings.push(ms(t.planning));
        ratios.push(t.makespan.as_secs_f64() / (critical_path + t.planning).as_secs_f64());
        ideal_ratios.push(t.makespan.as_secs_f64() / t.ideal.as_secs_f64());
        retries += t.retries;
    }
    let mut chain = vec![];
    for _ in 0..args.sequential_runs {
        let t = bed.timed_task(CHAIN_TASK).await?;
        chain.push(ms(t.makespan));
        retries += t.retries;
    }
    bed.stop().await;

    let (makespan, planning) = (Summary::of(&makespans), Summary::of(&plannings));
    let (ratio, ideal_ratio) = (Summary::of(&ratios), Summary::of(&ideal_ratios));
    let calls = Summary::of(&calls);
    let sequential_computed = ms(step * STEPS as u32) + planning.p50;
    let chain = (!chain.is_empty()).then(|| Summary::of(&chain));
    let pass = ratio.p50 <= 1.02;
    if args.json {
        let report = serde_json::json!({
            "benchmark": "makespan", "runs": args.runs, "steps": STEPS, "levels": LEVELS,
            "step_ms": step_ms, "planner_ttft_ms": args.planner_ttft_ms, "synthesis": false, "stream": !args.no_stream,
            "makespan_ms": makespan.json(),
            "planning_ms": planning.json(),
            "step_model_call_ms": calls.json(),
            "critical_path_ms": ms(critical_path),
            "ratio_makespan_to_critical_path_plus_planning": ratio.json(),
            "ratio_makespan_to_measured_calls_critical_path": ideal_ratio.json(),
            "sequential_computed_ms": sequential_computed,
            "sequential_chain_ms": chain.map(|c| c.json()),
            "retries": retries,
            "target": {"ratio_p50_at_most": 1.02, "pass": pass, "ratio_p90_within": ratio.p90 <= 1.02},
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "planex-bench makespan: {} runs of a {STEPS}-step plan in {LEVELS} levels (4+4+2), {} ms per step (simulator ttft), planner ttft {} ms, synthesis off, {}",
            args.runs,
            step_ms,
            args.planner_ttft_ms,
            if args.no_stream {
                "not streamed"
            } else {
                "streamed"
            }
        );
        println!("{}", header("ms / ratio"));
        println!(
            "{}",
            row("makespan (submit -> final record), ms", &makespan)
        );
        println!("{}", row("planning (planner call), ms", &planning));
        println!(
            "{}",
            row("one step's model call (HTTP + simulator), ms", &calls)
        );
        println!(
            "{}",
            ratio_row("makespan / (critical path + planning)", &ratio)
        );
        println!(
            "{}",
            ratio_row("makespan / (measured calls' longest path)", &ideal_ratio)
        );
        if let Some(chain) = &chain {
            println!("{}", row("sequential: 10-step chain makespan, ms", chain));
        }
        println!(
            "critical path {:.0} ms ({LEVELS} x {} ms); sequential equivalent {:.0} ms ({STEPS} x {} ms + planning p50); speed-up vs sequential at p50: {:.2}x; retries: {retries}",
            ms(critical_path),
            step_ms,
            sequential_computed,
            step_ms,
            sequential_computed / makespan.p50
        );
        println!(
            "target: makespan <= 1.02 x (critical path + planning) -> {} (p50 {:.4}, p90 {:.4})",
            verdict(pass),
            ratio.p50,
            ratio.p90
        );
    }
    Ok(ExitCode::SUCCESS)
}
