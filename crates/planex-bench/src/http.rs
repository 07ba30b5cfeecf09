//! `planex-bench http`: as `overhead`, with the executor tier a real tier client calling a
//! zero-latency simulator on 127.0.0.1; null-model tasks are interleaved in the same run, so the
//! ratio compares like with like (docs/BENCHMARKS.md, benchmark 2).

use crate::args::{HttpArgs, MAX_TASKS, check_count};
use crate::bed::{http_bed, null_bed};
use crate::report::{header, row, verdict};
use crate::stats::{StepSamples, Summary};
use crate::workload::STEPS;
use anyhow::Result;
use std::process::ExitCode;
use std::time::Instant;

/// Runs the benchmark and prints its report.
pub(crate) async fn run(args: HttpArgs) -> Result<ExitCode> {
    let (stream, args) = (!args.no_stream, args.steps);
    check_count("tasks", args.tasks, MAX_TASKS)?;
    let null = null_bed().await?;
    let http = http_bed(stream).await?;
    for _ in 0..args.warmup.min(MAX_TASKS) {
        null.timed_task("benchmark task").await?;
        http.timed_task("benchmark task").await?;
    }
    let (mut n, mut h) = (StepSamples::default(), StepSamples::default());
    let started = Instant::now();
    // Interleaved, so both variants see the same machine noise.
    for _ in 0..args.tasks {
        n.add(&null.timed_task("benchmark task").await?);
        h.add(&http.timed_task("benchmark task").await?);
    }
    let elapsed = started.elapsed();
    null.stop().await;
    http.stop().await;

    let null_overhead = Summary::of(&n.overhead);
    let total = Summary::of(&h.total);
    let pass = total.p99 < 500.0;
    let ratio = |a: f64, b: f64| a / b;
    let ratios = [
        ratio(total.p50, null_overhead.p50),
        ratio(total.p90, null_overhead.p90),
        ratio(total.p99, null_overhead.p99),
    ];
    if args.json {
        let report = serde_json::json!({
            "benchmark": "http", "tasks": args.tasks, "stream": stream, "steps_per_task": STEPS, "unit": "us",
            "http_step_total": total.json(),
            "http_step_overhead": Summary::of(&h.overhead).json(),
            "http_model_call": Summary::of(&h.call).json(),
            "http_task_wall_per_step": Summary::of(&h.per_step_wall).json(),
            "null_step_overhead": null_overhead.json(),
            "null_task_wall_per_step": Summary::of(&n.per_step_wall).json(),
            "ratio_http_total_to_null_overhead": {"p50": ratios[0], "p90": ratios[1], "p99": ratios[2]},
            "retries": h.retries,
            "elapsed_s": elapsed.as_secs_f64(),
            "target": {"http_step_total_p99_us_below": 500.0, "pass": pass},
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "planex-bench http: {} tasks x {STEPS} steps per variant, interleaved; executor = tier client -> simulator on 127.0.0.1 (ttft 0, instant tokens, {}), {:.1} s",
            args.tasks,
            if stream { "streamed" } else { "not streamed" },
            elapsed.as_secs_f64()
        );
        println!("{}", header("µs"));
        println!(
            "{}",
            row("http: step total (overhead + model call)", &total)
        );
        println!(
            "{}",
            row("http:   engine overhead", &Summary::of(&h.overhead))
        );
        println!(
            "{}",
            row(
                "http:   model call (HTTP + simulator)",
                &Summary::of(&h.call)
            )
        );
        println!(
            "{}",
            row(
                "http: task wall time / steps",
                &Summary::of(&h.per_step_wall)
            )
        );
        println!(
            "{}",
            row("null: step overhead (benchmark 1)", &null_overhead)
        );
        println!(
            "{}",
            row(
                "null: task wall time / steps",
                &Summary::of(&n.per_step_wall)
            )
        );
        println!(
            "ratio http step total / null step overhead: p50 {:.1}x, p90 {:.1}x, p99 {:.1}x; model-call retries: {}",
            ratios[0], ratios[1], ratios[2], h.retries
        );
        println!(
            "target: step total p99 < 500 µs -> {} (p99 {:.1} µs)",
            verdict(pass),
            total.p99
        );
    }
    Ok(ExitCode::SUCCESS)
}
