//! `planex-bench makespan --planner-tps N`: streamed against whole-plan planning on the 10-step,
//! three-level plan with a planner that writes N output tokens per second, at two step lengths,
//! interleaved run by run in one process (docs/BENCHMARKS.md, benchmark 3b).
//!
//! Streaming cannot save more than the work that overlaps the plan's generation: the last level
//! cannot start before the plan's last token, and no step before the first one is parsed. So the
//! streamed makespan's lower bound is max(plan time + one step, first step parsed + critical
//! path), and `saved_of_max` = (whole − streamed) / (whole − that bound), from the p50s.

use crate::args::{MAX_RUNS, MakespanArgs, check_count};
use crate::bed::{Bed, TaskTiming};
use crate::report::{header, ratio_row, row, verdict};
use crate::stats::{Summary, ms};
use crate::workload::{LEVELS, MakespanSims, dag_plan};
use anyhow::{Result, bail};
use planex_sim::Workload;
use std::process::ExitCode;
use std::time::Duration;

const TASK: &str = "makespan benchmark: 10 steps in three levels, streamed planner";

/// The step lengths compared when `--step-ms` is not given.
const STEP_LENGTHS_MS: [u64; 2] = [200, 2000];

/// Targets of the issue that asked for this benchmark.
const FIRST_DISPATCH_AT_MOST: f64 = 0.25;
const SAVED_OF_MAX_AT_LEAST: f64 = 0.8;

/// One step length's samples of both variants.
#[derive(Default)]
struct Samples {
    whole: Vec<f64>,
    streamed: Vec<f64>,
    whole_first: Vec<f64>,
    streamed_first: Vec<f64>,
    /// Streamed runs: first dispatch as a fraction of the planner call.
    fraction: Vec<f64>,
    plan_ms: Vec<f64>,
    bound: Vec<f64>,
}

/// The report of one step length.
struct Comparison {
    step_ms: u64,
    whole: Summary,
    streamed: Summary,
    whole_first: Summary,
    streamed_first: Summary,
    fraction: Summary,
    plan_ms: Summary,
    bound: Summary,
    saved_of_max: f64,
}

impl Comparison {
    fn of(step_ms: u64, s: &Samples) -> Comparison {
        let (whole, streamed, bound) = (
            Summary::of(&s.whole),
            Summary::of(&s.streamed),
            Summary::of(&s.bound),
        );
        let most = whole.p50 - bound.p50;
        Comparison {
            step_ms,
            saved_of_max: if most > 0.0 {
                (whole.p50 - streamed.p50) / most
            } else {
                0.0
            },
            whole,
            streamed,
            whole_first: Summary::of(&s.whole_first),
            streamed_first: Summary::of(&s.streamed_first),
            fraction: Summary::of(&s.fraction),
            plan_ms: Summary::of(&s.plan_ms),
            bound,
        }
    }

    fn pass(&self) -> bool {
        self.fraction.p50 <= FIRST_DISPATCH_AT_MOST && self.saved_of_max >= SAVED_OF_MAX_AT_LEAST
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "step_ms": self.step_ms,
            "whole": {
                "makespan_ms": self.whole.json(),
                "first_dispatch_ms": self.whole_first.json(),
            },
            "streamed": {
                "makespan_ms": self.streamed.json(),
                "first_dispatch_ms": self.streamed_first.json(),
                "first_dispatch_fraction": self.fraction.p50,
                "first_dispatch_fraction_summary": self.fraction.json(),
                "lower_bound_ms": self.bound.json(),
                "saved_of_max": self.saved_of_max,
            },
            "plan_generation_ms": self.plan_ms.json(),
            "ratio_streamed_to_whole_p50": self.streamed.p50 / self.whole.p50,
            "target": {
                "first_dispatch_fraction_at_most": FIRST_DISPATCH_AT_MOST,
                "saved_of_max_at_least": SAVED_OF_MAX_AT_LEAST,
                "pass": self.pass(),
            },
        })
    }
}

/// Runs the comparison and prints its report.
pub(crate) async fn run(args: MakespanArgs, tps: f64) -> Result<ExitCode> {
    check_count("runs", args.runs, MAX_RUNS)?;
    if !(1.0..=100_000.0).contains(&tps) {
        bail!("--planner-tps must be between 1 and 100000 tokens per second, got {tps}");
    }
    let lengths: Vec<u64> = match args.step_ms {
        Some(step_ms) => vec![step_ms],
        None => STEP_LENGTHS_MS.to_vec(),
    };
    if lengths.iter().any(|l| *l == 0 || *l > 10_000) {
        bail!("--step-ms must be between 1 and 10000, got {lengths:?}");
    }
    let mut comparisons = Vec::new();
    for step_ms in lengths {
        comparisons.push(compare(&args, tps, step_ms).await?);
    }
    let pass = comparisons.iter().all(Comparison::pass);
    if args.json {
        let report = serde_json::json!({
            "benchmark": "makespan_streamed", "runs": args.runs, "steps": crate::workload::STEPS,
            "levels": LEVELS, "planner_tps": tps, "planner_ttft_ms": args.planner_ttft_ms,
            "synthesis": false,
            "streamed": {
                "first_dispatch_fraction": comparisons.iter().map(|c| c.fraction.p50).fold(0.0, f64::max),
                "saved_of_max": comparisons.iter().map(|c| c.saved_of_max).fold(f64::INFINITY, f64::min),
            },
            "step_lengths": comparisons.iter().map(Comparison::json).collect::<Vec<_>>(),
            "pass": pass,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "planex-bench makespan --planner-tps {tps}: {} interleaved runs per variant of a 10-step plan in {LEVELS} levels (4+4+2), planner at {tps} output tokens/s (simulated), synthesis off",
            args.runs
        );
        for c in &comparisons {
            println!("\nsteps of {} ms", c.step_ms);
            println!("{}", header("ms / ratio"));
            println!("{}", row("whole plan: makespan, ms", &c.whole));
            println!("{}", row("streamed:   makespan, ms", &c.streamed));
            println!(
                "{}",
                row("whole plan: first step dispatched, ms", &c.whole_first)
            );
            println!(
                "{}",
                row("streamed:   first step dispatched, ms", &c.streamed_first)
            );
            println!(
                "{}",
                ratio_row("streamed: first dispatch / plan time", &c.fraction)
            );
            println!("{}", row("plan generation (planner call), ms", &c.plan_ms));
            println!("{}", row("streamed lower bound, ms", &c.bound));
            println!(
                "saved_of_max = (whole - streamed) / (whole - bound) at p50: {:.3}; streamed / whole at p50: {:.3}",
                c.saved_of_max,
                c.streamed.p50 / c.whole.p50
            );
        }
        println!(
            "\ntarget: first dispatch before {:.0}% of the plan and saved_of_max >= {SAVED_OF_MAX_AT_LEAST} at every step length -> {}",
            FIRST_DISPATCH_AT_MOST * 100.0,
            verdict(pass)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Both variants over the same simulators, alternating run by run.
async fn compare(args: &MakespanArgs, tps: f64, step_ms: u64) -> Result<Comparison> {
    let mut workload = Workload::default();
    workload.insert(TASK, vec![dag_plan()]);
    let sims =
        MakespanSims::start(workload, args.planner_ttft_ms, Some(tps), step_ms, true).await?;
    let (planner, executor) = (sims.planner, sims.executor);
    let whole = Bed::start_with(planner.clone(), executor.clone(), Vec::new(), false).await?;
    let streamed = Bed::start_with(planner, executor, sims.sims, true).await?;
    let step = Duration::from_millis(step_ms);
    // One untimed run of each warms connections and allocators.
    whole.timed_task(TASK).await?;
    streamed.timed_task(TASK).await?;
    let mut s = Samples::default();
    for _ in 0..args.runs {
        let w = whole.timed_task(TASK).await?;
        s.whole.push(ms(w.makespan));
        s.whole_first.push(ms(w.first_dispatch));
        let t = streamed.timed_task(TASK).await?;
        record_streamed(&mut s, &t, step);
    }
    whole.stop().await;
    streamed.stop().await;
    Ok(Comparison::of(step_ms, &s))
}

fn record_streamed(s: &mut Samples, t: &TaskTiming, step: Duration) {
    s.streamed.push(ms(t.makespan));
    s.streamed_first.push(ms(t.first_dispatch));
    s.plan_ms.push(ms(t.planning));
    s.fraction
        .push(t.first_dispatch.as_secs_f64() / t.planning.as_secs_f64().max(1e-9));
    let bound = (t.planning + step).max(t.first_dispatch + step * LEVELS);
    s.bound.push(ms(bound));
}
