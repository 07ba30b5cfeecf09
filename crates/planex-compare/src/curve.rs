//! `planex curve`: the savings curves. Compares ReAct and plan-and-execute on generated tasks as the
//! number of steps grows (2 to 32, over up to 4 parallel lanes) and as the DAG gets wider (16 steps
//! plus a summary, over 1 to 16 lanes), prints the Markdown tables and draws two SVG charts.
//!
//! Key decision: charts are drawn with `plotters` restricted to its SVG backend (no bitmap, font or
//! image features; the crate is already in the lock file through criterion), so the output is a
//! small text file that diffs and renders on any Markdown viewer.

use crate::CompareError;
use crate::compare::compare_generated;
use crate::cost::group;
use crate::generate::{cycle_tools, lanes, lanes_task};
use crate::harness::{self, HarnessOptions};
use crate::report::Report;
use planex_app::Config as Settings;
use planex_core::{Catalog, format_usd};
use plotters::prelude::*;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Arguments of `planex curve` (flatten into a clap subcommand).
#[derive(clap::Args, Clone, Debug)]
pub struct CurveArgs {
    /// Where to write `savings-vs-steps.svg` and `savings-vs-width.svg`.
    #[arg(long, default_value = "docs")]
    pub out_dir: PathBuf,
    /// Time to first token of every simulated call, in milliseconds.
    #[arg(long, default_value_t = 50)]
    pub latency_ms: u64,
    /// Step counts of the first curve (the final summary included).
    #[arg(long, value_delimiter = ',', default_value = "2,4,8,12,16,24,32")]
    pub steps: Vec<usize>,
    /// Lane counts of the second curve (16 steps plus a summary).
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8,16")]
    pub widths: Vec<usize>,
    /// Runs per point; the run with the median speed-up is kept (tokens and cost never vary).
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
}

/// One point of a curve: a generated task of `steps` steps over `width` lanes, run both ways.
#[derive(Debug, Clone)]
pub struct CurvePoint {
    /// Steps of the task, the final summary included.
    pub steps: usize,
    /// Parallel lanes.
    pub width: usize,
    /// The comparison of the kept run (the one with the median speed-up).
    pub report: Report,
}

/// Both savings curves: as the number of steps grows, and as the DAG gets wider.
#[derive(Debug, Clone)]
pub struct Curves {
    /// 2 to 32 steps over up to 4 lanes (`--steps`).
    pub by_steps: Vec<CurvePoint>,
    /// 16 steps plus a summary over 1 to 16 lanes (`--widths`).
    pub by_width: Vec<CurvePoint>,
}

/// `(steps, lanes)` of each curve point.
type Shapes = Vec<(usize, usize)>;

fn shapes(args: &CurveArgs) -> Result<(Shapes, Shapes), CompareError> {
    let by_steps: Shapes = args
        .steps
        .iter()
        .map(|&n| (n, 4.min(n.saturating_sub(1))))
        .collect();
    let by_width: Shapes = args.widths.iter().map(|&w| (17, w)).collect();
    for &(steps, width) in by_steps.iter().chain(&by_width) {
        if !(2..=64).contains(&steps) || width == 0 || width > steps - 1 {
            return Err(CompareError::InvalidArgument(format!(
                "cannot build {steps} steps over {width} lanes: steps must be 2-64 and lanes 1..steps-1"
            )));
        }
    }
    Ok((by_steps, by_width))
}

async fn point(
    settings: &Settings,
    catalog: &Arc<Catalog>,
    steps: usize,
    width: usize,
    options: &HarnessOptions,
    repeat: usize,
) -> Result<CurvePoint, CompareError> {
    let plan = lanes("GPU serving costs", steps - 1, width, &mut cycle_tools());
    let line =
        json!({"id": format!("{steps}x{width}"), "task": lanes_task(steps, width), "plan": plan});
    let mut runs = Vec::with_capacity(repeat);
    for _ in 0..repeat.max(1) {
        let report = compare_generated(settings, catalog, &format!("{line}\n"), options).await?;
        if report.failed_runs() > 0 {
            return Err(CompareError::CurvePointFailed {
                steps,
                lanes: width,
                first_error: report.first_error().unwrap_or("none recorded").to_owned(),
            });
        }
        runs.push(report);
    }
    runs.sort_by(|a, b| {
        a.speedup
            .unwrap_or(0.0)
            .total_cmp(&b.speedup.unwrap_or(0.0))
    });
    let report = runs.swap_remove(runs.len() / 2);
    Ok(CurvePoint {
        steps,
        width,
        report,
    })
}

/// Runs every point of both curves on simulated tiers (the embedded config), one after another.
/// A note on stderr says the tiers are simulated.
///
/// # Errors
/// A shape that cannot be built, simulators that cannot start, or a point whose task did not finish
/// both ways.
pub async fn measure_curves(args: &CurveArgs) -> Result<Curves, CompareError> {
    let (by_steps, by_width) = shapes(args)?;
    let (settings, catalog) = harness::load_config(None)?;
    let options = HarnessOptions {
        latency_ms: args.latency_ms,
        tokens_per_second: 0.0,
        react_max_actions: 64,
        task_timeout: Duration::from_secs(300),
    };
    eprintln!(
        "planex curve: simulated tiers, {} ms per call (synthetic output, real token counts)",
        args.latency_ms
    );
    let mut step_points = Vec::new();
    for (steps, width) in by_steps {
        step_points.push(point(&settings, &catalog, steps, width, &options, args.repeat).await?);
    }
    let mut width_points = Vec::new();
    for (steps, width) in by_width {
        width_points.push(point(&settings, &catalog, steps, width, &options, args.repeat).await?);
    }
    Ok(Curves {
        by_steps: step_points,
        by_width: width_points,
    })
}

/// `planex curve`: measures both curves ([`measure_curves`]), prints their Markdown tables and
/// writes the two SVG charts into `args.out_dir`; returns the curves.
///
/// # Errors
/// As [`measure_curves`] and [`Curves::write_charts`].
pub async fn curve(args: &CurveArgs) -> Result<Curves, CompareError> {
    let curves = measure_curves(args).await?;
    print!("{}", curves.markdown());
    let [steps_svg, width_svg] = curves.write_charts(&args.out_dir)?;
    eprintln!(
        "planex curve: wrote {} and {}",
        steps_svg.display(),
        width_svg.display()
    );
    Ok(curves)
}

impl Curves {
    /// Both curves as Markdown: a heading and a table each.
    pub fn markdown(&self) -> String {
        format!(
            "### Savings as the number of steps grows (up to 4 parallel lanes)\n\n{}\n### Savings as the DAG gets wider (16 steps + a summary)\n\n{}",
            table(&self.by_steps),
            table(&self.by_width)
        )
    }

    /// Draws `savings-vs-steps.svg` and `savings-vs-width.svg` into `out_dir` (created if needed)
    /// and returns their paths.
    ///
    /// # Errors
    /// The directory cannot be created, or a chart cannot be drawn or written.
    pub fn write_charts(&self, out_dir: &Path) -> Result<[PathBuf; 2], CompareError> {
        std::fs::create_dir_all(out_dir).map_err(|source| CompareError::ChartDir {
            path: out_dir.to_owned(),
            source,
        })?;
        let steps_svg = out_dir.join("savings-vs-steps.svg");
        let width_svg = out_dir.join("savings-vs-width.svg");
        chart(
            &steps_svg,
            "ReAct vs plan-and-execute: steps per task",
            "steps per task (up to 4 parallel lanes)",
            &self
                .by_steps
                .iter()
                .map(|p| (p.steps, &p.report))
                .collect::<Vec<_>>(),
        )?;
        chart(
            &width_svg,
            "ReAct vs plan-and-execute: DAG width (17 steps)",
            "parallel lanes (1 = a chain of 16 steps, 16 = pure fan-out)",
            &self
                .by_width
                .iter()
                .map(|p| (p.width, &p.report))
                .collect::<Vec<_>>(),
        )?;
        Ok([steps_svg, width_svg])
    }
}

fn table(points: &[CurvePoint]) -> String {
    let mut out = String::from(
        "| steps | lanes | calls P&E / ReAct | tokens P&E / ReAct | cost P&E / ReAct | savings | makespan ms P&E / ReAct | speed-up |\n|---|---|---|---|---|---|---|---|\n",
    );
    for p in points {
        let (e, r) = (&p.report.plan_execute, &p.report.react);
        out.push_str(&format!(
            "| {} | {} | {} / {} | {} / {} | {} / {} | {} | {:.0} / {:.0} | {} |\n",
            p.steps,
            p.width,
            e.calls,
            r.calls,
            group(e.tokens.into()),
            group(r.tokens.into()),
            format_usd(e.cost_usd),
            format_usd(r.cost_usd),
            p.report
                .savings_percent
                .map_or("-".into(), |s| format!("{s}%")),
            e.makespan_ms,
            r.makespan_ms,
            p.report.speedup.map_or("-".into(), |s| format!("{s:.2}×")),
        ));
    }
    out
}

/// Turns a drawing error into [`CompareError::ChartDraw`] for the chart at `path`.
fn draw_error<E>(path: &Path) -> impl Fn(E) -> CompareError + '_
where
    E: std::error::Error + Send + Sync + 'static,
{
    move |error| CompareError::ChartDraw {
        path: path.to_owned(),
        source: Box::new(error),
    }
}

/// Draws cost savings (left axis, %) and makespan speed-up (right axis, ×) against `x`.
fn chart(
    path: &Path,
    title: &str,
    x_desc: &str,
    points: &[(usize, &Report)],
) -> Result<(), CompareError> {
    let savings: Vec<(f64, f64)> = points
        .iter()
        .filter_map(|(x, r)| Some((*x as f64, r.savings_percent?.try_into().ok()?)))
        .collect();
    let speedups: Vec<(f64, f64)> = points
        .iter()
        .filter_map(|(x, r)| Some((*x as f64, r.speedup?)))
        .collect();
    let x_max = points.iter().map(|(x, _)| *x).max().unwrap_or(1) as f64 * 1.05 + 0.5;
    let y_min = savings.iter().map(|p| p.1).fold(100.0, f64::min);
    let y_min = ((y_min - 10.0) / 10.0).floor().max(0.0) * 10.0;
    let y2_max = (speedups.iter().map(|p| p.1).fold(1.0, f64::max) * 1.2).ceil();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, 440)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error(path))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(14)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .right_y_label_area_size(56)
            .build_cartesian_2d(0f64..x_max, y_min..100f64)
            .map_err(draw_error(path))?
            .set_secondary_coord(0f64..x_max, 0f64..y2_max);
        chart
            .configure_mesh()
            .max_light_lines(1)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.0}%"))
            .x_desc(x_desc)
            .y_desc("cost savings (%)")
            .draw()
            .map_err(draw_error(path))?;
        chart
            .configure_secondary_axes()
            .y_label_formatter(&|y| format!("{}x", (y * 10.0).round() / 10.0))
            .y_desc("makespan speed-up (x)")
            .draw()
            .map_err(draw_error(path))?;
        let blue = RGBColor(31, 119, 180);
        let red = RGBColor(214, 39, 40);
        chart
            .draw_series(LineSeries::new(savings.clone(), blue.stroke_width(2)))
            .map_err(draw_error(path))?
            .label("cost savings, % (left)")
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], blue.stroke_width(2))
            });
        chart
            .draw_series(savings.iter().map(|p| Circle::new(*p, 4, blue.filled())))
            .map_err(draw_error(path))?;
        chart
            .draw_secondary_series(LineSeries::new(speedups.clone(), red.stroke_width(2)))
            .map_err(draw_error(path))?
            .label("makespan speed-up, x (right)")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], red.stroke_width(2)));
        chart
            .draw_secondary_series(speedups.iter().map(|p| Circle::new(*p, 4, red.filled())))
            .map_err(draw_error(path))?;
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()
            .map_err(draw_error(path))?;
        root.present().map_err(draw_error(path))?;
    }
    std::fs::write(path, svg).map_err(|source| CompareError::ChartWrite {
        path: path.to_owned(),
        source,
    })?;
    Ok(())
}
