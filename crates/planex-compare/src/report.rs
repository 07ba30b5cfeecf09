//! The comparison report: per task and in total, model calls, tokens per tier, cost, makespan and the
//! savings of plan-and-execute over ReAct, as a terminal table, Markdown or JSON.
//!
//! Key decision: every figure is derived from the priced call records of the runs (totals are sums
//! of per-call usage, never estimates), and the simulators' own token counters are reported beside
//! them so the two can be checked against each other.

use crate::cost::group;
use crate::harness::{ArchOutcome, ServerCounts};
use planex_core::{CostBreakdown, Decimal, Usage, format_usd};
use serde::Serialize;
use std::collections::BTreeMap;

/// One architecture's figures for one task.
#[derive(Debug, Clone, Serialize)]
pub struct ArchSummary {
    /// How the task ended.
    pub status: String,
    /// Whether it produced its answer.
    pub ok: bool,
    /// Why not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Model calls.
    pub calls: u64,
    /// Usage per tier.
    pub tokens_by_tier: BTreeMap<String, Usage>,
    /// Prompt plus completion tokens over all tiers.
    pub tokens: u64,
    /// Exact cost in USD.
    pub cost_usd: Decimal,
    /// Wall time from submission to the answer, in milliseconds.
    pub makespan_ms: f64,
}

impl ArchSummary {
    /// Sums an outcome's call records.
    pub(crate) fn of(outcome: &ArchOutcome) -> Self {
        let cost = CostBreakdown::from_records(&outcome.calls);
        ArchSummary {
            status: outcome.status.clone(),
            ok: outcome.ok,
            error: outcome.error.clone(),
            calls: cost.total.calls,
            tokens_by_tier: cost
                .by_tier
                .iter()
                .map(|(tier, totals)| (tier.clone(), totals.usage))
                .collect(),
            tokens: cost.total.usage.total(),
            cost_usd: cost.total.cost_usd,
            makespan_ms: (outcome.makespan.as_secs_f64() * 10_000.0).round() / 10.0,
        }
    }
}

/// Both architectures on one task.
#[derive(Debug, Clone, Serialize)]
pub struct TaskRow {
    /// The workload's label.
    pub label: String,
    /// The task text.
    pub task: String,
    /// Steps of the pinned plan, if known.
    pub steps: Option<usize>,
    /// Plan-and-execute (the whole plan validated before any step runs).
    pub plan_execute: ArchSummary,
    /// ReAct.
    pub react: ArchSummary,
    /// Plan-and-execute with streamed plans (each step runs once the planner has written it).
    pub streamed: ArchSummary,
    /// `100 × (1 − cost(P&E) / cost(ReAct))`, to 0.1.
    pub savings_percent: Option<Decimal>,
    /// `makespan(ReAct) / makespan(P&E)`.
    pub speedup: Option<f64>,
    /// `makespan(ReAct) / makespan(streamed P&E)`.
    pub streamed_speedup: Option<f64>,
}

fn savings_percent(react: Decimal, plan_execute: Decimal) -> Option<Decimal> {
    crate::profile::savings(react, plan_execute).map(|s| (s * Decimal::from(100u32)).round_dp(1))
}

fn ratio(react_ms: f64, plan_execute_ms: f64) -> Option<f64> {
    (plan_execute_ms > 0.0).then(|| (react_ms / plan_execute_ms * 100.0).round() / 100.0)
}

impl TaskRow {
    /// A row from the two outcomes.
    pub(crate) fn new(
        label: &str,
        task: &str,
        steps: Option<usize>,
        plan_execute: &ArchOutcome,
        react: &ArchOutcome,
        streamed: &ArchOutcome,
    ) -> Self {
        let plan_execute = ArchSummary::of(plan_execute);
        let react = ArchSummary::of(react);
        let streamed = ArchSummary::of(streamed);
        TaskRow {
            label: label.to_owned(),
            task: task.to_owned(),
            steps,
            savings_percent: savings_percent(react.cost_usd, plan_execute.cost_usd),
            speedup: ratio(react.makespan_ms, plan_execute.makespan_ms),
            streamed_speedup: ratio(react.makespan_ms, streamed.makespan_ms),
            plan_execute,
            react,
            streamed,
        }
    }
}

/// One architecture summed over the workload.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ArchTotals {
    /// Model calls.
    pub calls: u64,
    /// Usage per tier.
    pub tokens_by_tier: BTreeMap<String, Usage>,
    /// Prompt plus completion tokens.
    pub tokens: u64,
    /// Cost in USD.
    pub cost_usd: Decimal,
    /// Sum of the per-task makespans (the time to run the tasks one after another), ms.
    pub makespan_ms: f64,
    /// Median per-task makespan, ms.
    pub makespan_p50_ms: f64,
    /// 95th-percentile per-task makespan, ms.
    pub makespan_p95_ms: f64,
    /// Tasks that did not produce an answer.
    pub failed: usize,
    /// Requests the simulators answered with content (0 for real endpoints).
    pub server_requests: u64,
    /// Tokens the simulators counted (0 for real endpoints).
    pub server_usage: Usage,
}

/// The whole comparison.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Whether the tiers were simulated (output synthetic, tokens real).
    pub simulated: bool,
    /// Per-call latency of the simulators, ms.
    pub latency_ms: u64,
    /// Tasks run at once.
    pub concurrency: usize,
    /// Per task.
    pub tasks: Vec<TaskRow>,
    /// Plan-and-execute summed.
    pub plan_execute: ArchTotals,
    /// ReAct summed.
    pub react: ArchTotals,
    /// Streamed plan-and-execute summed (its simulators' counters are not kept: 0).
    pub streamed: ArchTotals,
    /// Σ makespan(ReAct) / Σ makespan(streamed P&E).
    pub streamed_speedup: Option<f64>,
    /// Savings over the whole workload, percent to 0.1.
    pub savings_percent: Option<Decimal>,
    /// Σ makespan(ReAct) / Σ makespan(P&E).
    pub speedup: Option<f64>,
    /// Median of the per-task speed-ups.
    pub speedup_p50: Option<f64>,
    /// The planner tier's name (its token column comes first in the tables).
    #[serde(skip)]
    pub planner_tier: String,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn totals(
    rows: &[TaskRow],
    pick: impl Fn(&TaskRow) -> &ArchSummary,
    server: ServerCounts,
) -> ArchTotals {
    let mut out = ArchTotals {
        server_requests: server.requests,
        server_usage: server.usage,
        ..ArchTotals::default()
    };
    let mut makespans = Vec::with_capacity(rows.len());
    for arch in rows.iter().map(&pick) {
        out.calls += arch.calls;
        out.tokens += arch.tokens;
        out.cost_usd += arch.cost_usd;
        out.makespan_ms += arch.makespan_ms;
        out.failed += usize::from(!arch.ok);
        makespans.push(arch.makespan_ms);
        for (tier, usage) in &arch.tokens_by_tier {
            out.tokens_by_tier
                .entry(tier.clone())
                .or_default()
                .add(usage);
        }
    }
    out.makespan_ms = (out.makespan_ms * 10.0).round() / 10.0;
    makespans.sort_by(f64::total_cmp);
    out.makespan_p50_ms = percentile(&makespans, 0.5);
    out.makespan_p95_ms = percentile(&makespans, 0.95);
    out
}

impl Report {
    /// Sums the rows.
    pub(crate) fn new(
        rows: Vec<TaskRow>,
        servers: (ServerCounts, ServerCounts),
        simulated: bool,
        latency_ms: u64,
        concurrency: usize,
        planner_tier: &str,
    ) -> Self {
        let plan_execute = totals(&rows, |r| &r.plan_execute, servers.0);
        let react = totals(&rows, |r| &r.react, servers.1);
        let streamed = totals(&rows, |r| &r.streamed, ServerCounts::default());
        let mut speedups: Vec<f64> = rows.iter().filter_map(|r| r.speedup).collect();
        speedups.sort_by(f64::total_cmp);
        Report {
            simulated,
            latency_ms,
            concurrency,
            savings_percent: savings_percent(react.cost_usd, plan_execute.cost_usd),
            speedup: ratio(react.makespan_ms, plan_execute.makespan_ms),
            speedup_p50: (!speedups.is_empty()).then(|| percentile(&speedups, 0.5)),
            streamed_speedup: ratio(react.makespan_ms, streamed.makespan_ms),
            tasks: rows,
            plan_execute,
            react,
            streamed,
            planner_tier: planner_tier.to_owned(),
        }
    }

    /// Runs of either architecture that did not produce an answer.
    pub fn failed_runs(&self) -> usize {
        self.plan_execute.failed + self.react.failed + self.streamed.failed
    }

    /// The error of the first run that did not answer, in task order (plan-and-execute first).
    pub fn first_error(&self) -> Option<&str> {
        self.tasks
            .iter()
            .flat_map(|t| [&t.plan_execute, &t.react, &t.streamed])
            .find_map(|a| a.error.as_deref())
    }

    /// Tiers in column order: the planner tier first, then by name.
    fn tiers(&self) -> Vec<String> {
        let planner_tier = self.planner_tier.as_str();
        let mut tiers: Vec<String> = self
            .plan_execute
            .tokens_by_tier
            .keys()
            .chain(self.react.tokens_by_tier.keys())
            .cloned()
            .collect();
        tiers.sort_by_key(|t| (t != planner_tier, t.clone()));
        tiers.dedup();
        tiers
    }

    /// The table as rows of cells (header first); `per_task` adds a row per task.
    fn cells(&self, per_task: bool) -> Vec<Vec<String>> {
        let tiers = self.tiers();
        let mut header: Vec<String> = ["task", "steps", "status P&E / ReAct", "calls P&E / ReAct"]
            .map(String::from)
            .to_vec();
        header.extend(tiers.iter().map(|t| format!("{t} tokens P&E / ReAct")));
        header.extend(
            [
                "cost P&E / ReAct",
                "makespan ms P&E / ReAct",
                "savings",
                "speed-up",
                "makespan ms streamed P&E",
                "speed-up streamed",
            ]
            .map(String::from),
        );
        let tokens =
            |map: &BTreeMap<String, Usage>, tier: &str| map.get(tier).map_or(0, Usage::total);
        let pair = |a: String, b: String| format!("{a} / {b}");
        let mut rows = vec![header];
        if per_task {
            for row in &self.tasks {
                let (p, r) = (&row.plan_execute, &row.react);
                let mut cells = vec![
                    row.label.clone(),
                    row.steps.map_or("-".into(), |s| s.to_string()),
                    pair(p.status.clone(), r.status.clone()),
                    pair(p.calls.to_string(), r.calls.to_string()),
                ];
                for tier in &tiers {
                    cells.push(pair(
                        group(tokens(&p.tokens_by_tier, tier).into()),
                        group(tokens(&r.tokens_by_tier, tier).into()),
                    ));
                }
                cells.push(pair(format_usd(p.cost_usd), format_usd(r.cost_usd)));
                cells.push(pair(
                    format!("{:.0}", p.makespan_ms),
                    format!("{:.0}", r.makespan_ms),
                ));
                cells.push(row.savings_percent.map_or("-".into(), |s| format!("{s}%")));
                cells.push(row.speedup.map_or("-".into(), |s| format!("{s:.2}×")));
                cells.push(format!("{:.0}", row.streamed.makespan_ms));
                cells.push(
                    row.streamed_speedup
                        .map_or("-".into(), |s| format!("{s:.2}×")),
                );
                rows.push(cells);
            }
        }
        let (p, r) = (&self.plan_execute, &self.react);
        let mut total = vec![
            format!("**total ({} tasks)**", self.tasks.len()),
            self.tasks
                .iter()
                .map(|t| t.steps.unwrap_or(0))
                .sum::<usize>()
                .to_string(),
            pair(
                format!("{} failed", p.failed),
                format!("{} failed", r.failed),
            ),
            pair(group(p.calls.into()), group(r.calls.into())),
        ];
        for tier in &tiers {
            total.push(pair(
                group(tokens(&p.tokens_by_tier, tier).into()),
                group(tokens(&r.tokens_by_tier, tier).into()),
            ));
        }
        total.push(pair(format_usd(p.cost_usd), format_usd(r.cost_usd)));
        total.push(pair(
            format!("{:.0}", p.makespan_ms),
            format!("{:.0}", r.makespan_ms),
        ));
        total.push(
            self.savings_percent
                .map_or("-".into(), |s| format!("**{s}%**")),
        );
        total.push(self.speedup.map_or("-".into(), |s| format!("**{s:.2}×**")));
        total.push(format!("{:.0}", self.streamed.makespan_ms));
        total.push(
            self.streamed_speedup
                .map_or("-".into(), |s| format!("**{s:.2}×**")),
        );
        rows.push(total);
        rows
    }

    /// A Markdown table (per task unless `totals_only`) and a summary line.
    pub fn markdown(&self, totals_only: bool) -> String {
        let rows = self.cells(!totals_only);
        let mut out = String::new();
        for (i, row) in rows.iter().enumerate() {
            out.push_str(&format!("| {} |\n", row.join(" | ")));
            if i == 0 {
                out.push_str(&format!("|{}\n", "---|".repeat(row.len())));
            }
        }
        out.push('\n');
        out.push_str(&self.summary());
        out
    }

    /// An aligned terminal table and a summary line.
    pub fn human(&self, totals_only: bool) -> String {
        let rows: Vec<Vec<String>> = self
            .cells(!totals_only)
            .into_iter()
            .map(|row| row.into_iter().map(|c| c.replace("**", "")).collect())
            .collect();
        let columns = rows.first().map_or(0, Vec::len);
        let widths: Vec<usize> = (0..columns)
            .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
            .collect();
        let mut out = String::new();
        for row in &rows {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            out.push_str(cells.join("  ").trim_end());
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&self.summary().replace("**", ""));
        out
    }

    /// A Markdown table with one row per plan size: tasks, calls, cost, savings and speed-up summed
    /// over the tasks of that size (where the savings come from on a mixed workload).
    pub fn by_steps_markdown(&self) -> String {
        let mut groups: BTreeMap<usize, Vec<&TaskRow>> = BTreeMap::new();
        for row in &self.tasks {
            groups.entry(row.steps.unwrap_or(0)).or_default().push(row);
        }
        let mut out = String::from(
            "| steps | tasks | calls P&E / ReAct | cost P&E / ReAct | savings | makespan p50 ms P&E / ReAct | speed-up |\n|---|---|---|---|---|---|---|\n",
        );
        for (steps, rows) in groups {
            let sum = |pick: &dyn Fn(&TaskRow) -> &ArchSummary| {
                let mut calls = 0;
                let mut cost = Decimal::ZERO;
                let mut ms = 0.0;
                let mut makespans = Vec::new();
                for row in &rows {
                    let arch = pick(row);
                    calls += arch.calls;
                    cost += arch.cost_usd;
                    ms += arch.makespan_ms;
                    makespans.push(arch.makespan_ms);
                }
                makespans.sort_by(f64::total_cmp);
                (calls, cost, ms, percentile(&makespans, 0.5))
            };
            let (pc, pcost, pms, p50) = sum(&|r| &r.plan_execute);
            let (rc, rcost, rms, r50) = sum(&|r| &r.react);
            out.push_str(&format!(
                "| {} | {} | {pc} / {rc} | {} / {} | {} | {p50:.0} / {r50:.0} | {} |\n",
                if steps == 0 {
                    "-".to_owned()
                } else {
                    steps.to_string()
                },
                rows.len(),
                format_usd(pcost),
                format_usd(rcost),
                savings_percent(rcost, pcost).map_or("-".into(), |s| format!("{s}%")),
                ratio(rms, pms).map_or("-".into(), |s| format!("{s:.2}×")),
            ));
        }
        out
    }

    fn summary(&self) -> String {
        let mut out = format!(
            "Plan-and-execute costs **{}** vs ReAct **{}** over {} tasks: savings **{}**, makespan speed-up **{}** (median per task {}).\n",
            format_usd(self.plan_execute.cost_usd),
            format_usd(self.react.cost_usd),
            self.tasks.len(),
            self.savings_percent
                .map_or("n/a".into(), |s| format!("{s}%")),
            self.speedup.map_or("n/a".into(), |s| format!("{s:.2}×")),
            self.speedup_p50
                .map_or("n/a".into(), |s| format!("{s:.2}×")),
        );
        out.push_str(&format!(
            "With streamed plans (each step runs once the planner has written it) plan-and-execute's makespan is {:.0} ms ({} failed), a speed-up of **{}** over ReAct, at {}.\n",
            self.streamed.makespan_ms,
            self.streamed.failed,
            self.streamed_speedup
                .map_or("n/a".into(), |s| format!("{s:.2}×")),
            format_usd(self.streamed.cost_usd),
        ));
        if self.simulated {
            out.push_str(&format!(
                "Simulated tiers (synthetic output, real token counts, {} ms per call); the simulators counted {} / {} tokens (P&E / ReAct), the call records {} / {}.\n",
                self.latency_ms,
                group(self.plan_execute.server_usage.total().into()),
                group(self.react.server_usage.total().into()),
                group(self.plan_execute.tokens.into()),
                group(self.react.tokens.into()),
            ));
        }
        out
    }
}
