//! `planex-bench overhead`: engine time per step with an in-process null model (answers at once),
//! so every microsecond measured is the engine's: planner-answer parsing and validation, the memory
//! store, worker wake-up and claim, templating, prompt rendering, accounting (docs/BENCHMARKS.md,
//! benchmark 1).

use crate::args::{MAX_TASKS, StepArgs, check_count};
use crate::bed::null_bed;
use crate::report::{header, row, verdict};
use crate::stats::{StepSamples, Summary, process_cpu, us};
use crate::workload::STEPS;
use anyhow::Result;
use std::process::ExitCode;
use std::time::Instant;

/// Runs the benchmark and prints its report.
pub(crate) async fn run(args: StepArgs) -> Result<ExitCode> {
    check_count("tasks", args.tasks, MAX_TASKS)?;
    let bed = null_bed().await?;
    for _ in 0..args.warmup.min(MAX_TASKS) {
        bed.timed_task("benchmark task").await?;
    }
    let mut samples = StepSamples::default();
    let (started, cpu_before) = (Instant::now(), process_cpu());
    for _ in 0..args.tasks {
        samples.add(&bed.timed_task("benchmark task").await?);
    }
    let (elapsed, cpu_after) = (started.elapsed(), process_cpu());
    bed.stop().await;
    // Mean CPU per step over the timed loop: insensitive to descheduling by other processes.
    let cpu_per_step = match (cpu_before, cpu_after) {
        (Some(before), Some(after)) => {
            Some(us(after.saturating_sub(before)) / (args.tasks * STEPS) as f64)
        }
        _ => None,
    };

    let overhead = Summary::of(&samples.overhead);
    let pass = overhead.p99 < 50.0;
    if args.json {
        let report = serde_json::json!({
            "benchmark": "overhead", "tasks": args.tasks, "steps_per_task": STEPS, "unit": "us",
            "step_overhead": overhead.json(),
            "root_step_overhead": Summary::of(&samples.root_overhead).json(),
            "first_root_step_overhead": Summary::of(&samples.first_root_overhead).json(),
            "dependent_step_overhead": Summary::of(&samples.dependent_overhead).json(),
            "null_model_call": Summary::of(&samples.call).json(),
            "task_finish": Summary::of(&samples.finish).json(),
            "task_wall_per_step": Summary::of(&samples.per_step_wall).json(),
            "cpu_per_step_mean": cpu_per_step,
            "retries": samples.retries,
            "elapsed_s": elapsed.as_secs_f64(),
            "target": {"step_overhead_p99_us_below": 50.0, "pass": pass},
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "planex-bench overhead: {} tasks x {STEPS} steps (3 levels), in-process null model, one task at a time, {:.1} s",
            args.tasks,
            elapsed.as_secs_f64()
        );
        println!("{}", header("µs"));
        println!("{}", row("step overhead (all steps)", &overhead));
        println!(
            "{}",
            row(
                "  steps without dependencies",
                &Summary::of(&samples.root_overhead)
            )
        );
        println!(
            "{}",
            row(
                "    first of them dispatched (per task)",
                &Summary::of(&samples.first_root_overhead)
            )
        );
        println!(
            "{}",
            row(
                "  steps with dependencies",
                &Summary::of(&samples.dependent_overhead)
            )
        );
        println!(
            "{}",
            row("null model call (excluded)", &Summary::of(&samples.call))
        );
        println!(
            "{}",
            row(
                "task finish (last call -> final record)",
                &Summary::of(&samples.finish)
            )
        );
        println!(
            "{}",
            row(
                "task wall time / steps",
                &Summary::of(&samples.per_step_wall)
            )
        );
        if let Some(cpu) = cpu_per_step {
            println!("process CPU time per step (mean, all threads): {cpu:.1} µs");
        }
        println!(
            "target: step overhead p99 < 50 µs -> {} (p99 {:.1} µs)",
            verdict(pass),
            overhead.p99
        );
    }
    Ok(ExitCode::SUCCESS)
}
