//! `planex-bench redis throughput` with several variants or runs (`--model bare,noop --runs 5`): run 1 of
//! every variant, then run 2 of every variant, and so on, so the noise of a shared machine falls on
//! all of them alike. The summary gives each variant's median and range of steps per second, its
//! median Redis CPU per step, and its ratio to the first variant, taken run by run (each ratio
//! compares two measurements made back to back) and then summarised by its median.

use super::args::{ModelKind, ThroughputArgs};
use super::plan::STEPS_PER_TASK;
use super::throughput::{measure, number};
use anyhow::Result;
use serde_json::{Value, json};
use std::process::ExitCode;

/// Median, minimum and maximum of VALUES (not empty); the median of an even count is the mean
/// of the middle two.
fn spread(values: &[f64]) -> Value {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let median = if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    };
    json!({"median": median, "min": sorted[0], "max": sorted[n - 1]})
}

/// The summary of REPORTS (per variant, per run, in the order of MODELS).
fn summarise(models: &[ModelKind], reports: &[Vec<Value>]) -> Value {
    let rates: Vec<Vec<f64>> = reports
        .iter()
        .map(|runs| runs.iter().map(|r| number(r, &["steps_per_s"])).collect())
        .collect();
    let variants: Vec<Value> = models
        .iter()
        .zip(reports)
        .zip(&rates)
        .map(|((model, runs), rate)| {
            let redis: Vec<f64> = runs
                .iter()
                .map(|r| number(r, &["cpu_us_per_step", "redis_server"]))
                .collect();
            let ratios: Vec<f64> = rate
                .iter()
                .zip(&rates[0])
                .map(|(this, first)| this / first)
                .collect();
            json!({
                "variant": model.name(),
                "steps_per_s": spread(rate),
                "redis_cpu_us_per_step": spread(&redis),
                "ratio_to_first": spread(&ratios),
            })
        })
        .collect();
    json!({ "compared_with": models[0].name(), "variants": variants })
}

pub(super) async fn run(args: &ThroughputArgs, url: &str) -> Result<ExitCode> {
    let models = &args.model;
    let mut reports: Vec<Vec<Value>> = vec![Vec::new(); models.len()];
    for run in 1..=args.runs {
        for (model, runs) in models.iter().zip(reports.iter_mut()) {
            let report = measure(args, url, *model).await?;
            eprintln!(
                "run {run}/{}: {:<8} {:>9.0} steps/s",
                args.runs,
                model.name(),
                number(&report, &["steps_per_s"])
            );
            runs.push(report);
        }
    }
    let summary = summarise(models, &reports);
    if args.json {
        let out = json!({
            "workers": args.workers,
            "tasks": args.tasks,
            "runs": args.runs,
            "summary": summary,
            "reports": reports,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "Redis throughput: {} worker process(es), {} tasks x {} steps, {} run(s) of each variant, interleaved",
        args.workers, args.tasks, STEPS_PER_TASK, args.runs
    );
    println!(
        "  {:<9} {:>22} {:>20} {:>24}",
        "variant",
        "steps/s median (range)",
        "Redis µs/step median",
        format!("ratio to {} (range)", models[0].name())
    );
    for v in summary["variants"].as_array().into_iter().flatten() {
        let f = |path: &[&str]| number(v, path);
        let rate = format!(
            "{:.0} ({:.0}–{:.0})",
            f(&["steps_per_s", "median"]),
            f(&["steps_per_s", "min"]),
            f(&["steps_per_s", "max"])
        );
        let ratio = format!(
            "{:.2} ({:.2}–{:.2})",
            f(&["ratio_to_first", "median"]),
            f(&["ratio_to_first", "min"]),
            f(&["ratio_to_first", "max"])
        );
        println!(
            "  {:<9} {rate:>22} {:>20.1} {ratio:>24}",
            v["variant"].as_str().unwrap_or(""),
            f(&["redis_cpu_us_per_step", "median"]),
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_run_by_run_ratios() {
        assert_eq!(spread(&[3.0, 1.0, 2.0])["median"], 2.0);
        assert_eq!(spread(&[4.0, 1.0, 2.0, 3.0])["median"], 2.5);
        let report =
            |rate: f64| json!({"steps_per_s": rate, "cpu_us_per_step": {"redis_server": 30.0}});
        let reports = vec![
            vec![report(100.0), report(200.0)],
            vec![report(50.0), report(120.0)],
        ];
        let summary = summarise(&[ModelKind::Bare, ModelKind::Noop], &reports);
        let noop = &summary["variants"][1];
        assert_eq!(noop["variant"], "noop");
        assert_eq!(noop["steps_per_s"]["median"], 85.0);
        // Ratios per run: 0.5 and 0.6 (not 85 / 150).
        assert_eq!(noop["ratio_to_first"]["min"], 0.5);
        assert_eq!(noop["ratio_to_first"]["max"], 0.6);
        assert_eq!(summary["compared_with"], "bare");
    }
}
