//! `GET /v1/spend/export?month=YYYY-MM&format=csv|json`: the caller's tenant's spend of a month,
//! by cost center, task type, stage and tier, for billing and chargeback.
//!
//! Key decision: the rows are summed from the call records of the tenant's tasks created in the
//! month (the same records each task's cost breakdown shows), walked through the tenant's task
//! index newest first, at most [`MAX_TASKS`] of them. Tasks the store no longer keeps (past its
//! retention) are not in the rows, so the answer also gives the ledger's total for the month
//! (what budgets were checked against), and says how many tasks it counted and whether the walk
//! stopped early: a gap between the two totals is spend of tasks already evicted.

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiQuery;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use planex_core::Decimal;
use planex_engine::budget::{current_month, month_bounds_ms};
use planex_store::{TaskCursor, TaskQuery};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

/// Most tasks of the month one export reads.
pub const MAX_TASKS: usize = 50_000;

/// Most index entries one export walks (newer tasks it passes over included).
const MAX_WALKED: usize = 10 * MAX_TASKS;

/// `GET /v1/spend/export` query.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// `YYYY-MM` (UTC; default: this month).
    #[serde(default)]
    pub month: Option<String>,
    /// `json` (default) or `csv`.
    #[serde(default)]
    pub format: Option<String>,
}

/// One row: the spend of one (cost center, task type, stage, tier).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ExportRow {
    /// The tenant.
    pub tenant: String,
    /// The cost center charged.
    pub cost_center: String,
    /// The task type (`default` when none was named).
    pub task_type: String,
    /// `plan`, `step` or `synthesis`.
    pub stage: String,
    /// The tier the calls ran on.
    pub tier: String,
    /// Tasks with calls in this row.
    pub tasks: u64,
    /// Model calls.
    pub calls: u64,
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
    /// Cached prompt tokens (when the server reported them).
    pub cached_tokens: u64,
    /// What they cost, in USD.
    #[schema(value_type = String)]
    pub cost_usd: Decimal,
}

/// The JSON export.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SpendExport {
    /// The tenant.
    pub tenant: String,
    /// The month (`YYYY-MM`, UTC).
    pub month: String,
    /// The rows, by cost center, task type, stage and tier.
    pub rows: Vec<ExportRow>,
    /// Tasks created in the month whose calls the rows sum.
    pub tasks_counted: u64,
    /// False when the walk stopped at [`MAX_TASKS`] tasks: older tasks of the month are missing.
    pub complete: bool,
    /// The rows' total, in USD.
    #[schema(value_type = String)]
    pub rows_total_usd: Decimal,
    /// The budget ledger's settled spend of the tenant for the month, when budgets are on: it
    /// also counts tasks the store no longer keeps.
    #[schema(value_type = Option<String>)]
    pub ledger_spent_usd: Option<Decimal>,
    /// What a ReAct loop would at least have cost for the same tasks: every call's tokens priced
    /// at the planner tier's price (a loop runs every call there and also re-sends its growing
    /// history, so its real cost is higher).
    #[schema(value_type = String)]
    pub react_floor_usd: Decimal,
    /// `1 - rows_total_usd / react_floor_usd`: the savings against that lower bound, so never
    /// overstated (`null` when there was nothing to price).
    #[schema(value_type = Option<String>)]
    pub savings_vs_react_floor: Option<Decimal>,
}

type RowKey = (String, String, String, String);

/// Export your tenant's spend of a month by cost center, task type, stage and tier.
#[utoipa::path(get, path = "/v1/spend/export", tag = "spend", params(ExportQuery),
    responses(
        (status = 200, description = "JSON (`SpendExport`) or, with `format=csv`, the rows as CSV with a header line", body = SpendExport),
        (status = 400, description = "A bad month or format", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn export(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ExportQuery>,
) -> Result<Response, ApiError> {
    let month = query.month.unwrap_or_else(current_month);
    let (start, end) = month_bounds_ms(&month).ok_or_else(|| {
        ApiError::bad_request(format!("month {month:?} must be YYYY-MM, e.g. 2026-05"))
            .with_param("month")
    })?;
    let csv = match query.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(
                ApiError::bad_request(format!("format {other:?}: use csv or json"))
                    .with_param("format"),
            );
        }
    };
    let tenant = caller.tenant_name().to_owned();
    let store = state.engine().store();
    let mut rows: BTreeMap<RowKey, ExportRow> = BTreeMap::new();
    let planner_price = state
        .engine()
        .executor()
        .models
        .get(&state.engine().settings().planner_tier)
        .map(|m| m.price().clone())
        .map_err(|e| ApiError::unavailable(planex_core::cause::chain_text(&e)))?;
    let mut react_floor = Decimal::ZERO;
    let (mut counted, mut walked, mut complete) = (0u64, 0usize, true);
    let mut after: Option<TaskCursor> = None;
    'pages: loop {
        let page = store
            .list_tasks(&TaskQuery {
                tenant: caller.tenant.clone(),
                status: None,
                after: after.clone(),
                limit: 100,
            })
            .await?;
        for listing in &page.tasks {
            if listing.created_at_ms < start {
                break 'pages;
            }
            // Newer tasks are passed over (bounded too: a month far back is not worth any walk).
            walked += 1;
            if walked > MAX_WALKED {
                complete = false;
                break 'pages;
            }
            if listing.created_at_ms >= end {
                continue;
            }
            if counted as usize >= MAX_TASKS {
                complete = false;
                break 'pages;
            }
            let Some(task) = store.get_task(&listing.task_id).await? else {
                continue;
            };
            counted += 1;
            let center = task.cost_center.clone().unwrap_or_else(|| "default".into());
            let task_type = task
                .task_type
                .clone()
                .unwrap_or_else(|| planex_engine::DEFAULT_TASK_TYPE.into());
            let mut seen = std::collections::BTreeSet::new();
            for call in &task.calls {
                let key = (
                    center.clone(),
                    task_type.clone(),
                    call.stage.to_string(),
                    call.tier.clone(),
                );
                let row = rows.entry(key.clone()).or_insert_with(|| ExportRow {
                    tenant: tenant.clone(),
                    cost_center: key.0.clone(),
                    task_type: key.1.clone(),
                    stage: key.2.clone(),
                    tier: key.3.clone(),
                    tasks: 0,
                    calls: 0,
                    prompt_tokens: 0,
                    completion_tokens: 0,
                    cached_tokens: 0,
                    cost_usd: Decimal::ZERO,
                });
                if seen.insert(key) {
                    row.tasks += 1;
                }
                row.calls += 1;
                row.prompt_tokens += call.usage.prompt_tokens;
                row.completion_tokens += call.usage.completion_tokens;
                row.cached_tokens += call.usage.cached_tokens;
                row.cost_usd += call.cost_usd;
                row.cost_usd = row.cost_usd.normalize();
                react_floor += planner_price.cost(&call.usage);
            }
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let rows: Vec<ExportRow> = rows.into_values().collect();
    if csv {
        return Ok(csv_response(&rows, &tenant, &month, complete));
    }
    let ledger_spent_usd = match state.engine().budget() {
        Some(guard) => Some(
            guard
                .ledger()
                .balances(&planex_engine::BudgetGuard::scope(&tenant, &month))
                .await
                .map_err(|e| ApiError::unavailable(planex_core::cause::chain_text(&e)))?
                .into_iter()
                .find(|(name, _)| name == "tenant")
                .map_or(Decimal::ZERO, |(_, balance)| balance.spent_usd.normalize()),
        ),
        None => None,
    };
    let rows_total_usd: Decimal = rows.iter().map(|r| r.cost_usd).sum();
    // Rounded first, so the savings are computed from the figure the answer shows.
    let react_floor = react_floor.round_dp(9).normalize();
    let savings_vs_react_floor = (!react_floor.is_zero()).then(|| {
        (Decimal::ONE - rows_total_usd / react_floor)
            .round_dp(4)
            .normalize()
    });
    Ok(axum::Json(SpendExport {
        tenant,
        month,
        rows_total_usd,
        react_floor_usd: react_floor,
        savings_vs_react_floor,
        rows,
        tasks_counted: counted,
        complete,
        ledger_spent_usd,
    })
    .into_response())
}

/// The rows as CSV (RFC 4180 quoting), with a header line.
fn csv_response(rows: &[ExportRow], tenant: &str, month: &str, complete: bool) -> Response {
    let mut out = String::from(
        "tenant,month,cost_center,task_type,stage,tier,tasks,calls,prompt_tokens,completion_tokens,cached_tokens,cost_usd\n",
    );
    for r in rows {
        let fields = [
            field(tenant),
            field(month),
            field(&r.cost_center),
            field(&r.task_type),
            field(&r.stage),
            field(&r.tier),
            r.tasks.to_string(),
            r.calls.to_string(),
            r.prompt_tokens.to_string(),
            r.completion_tokens.to_string(),
            r.cached_tokens.to_string(),
            r.cost_usd.to_string(),
        ];
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    let name = format!("attachment; filename=\"planex-spend-{month}.csv\"");
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, name),
            // The CSV has no room for it: `false` when the walk stopped before the month's start.
            (
                header::HeaderName::from_static("x-planex-complete"),
                complete.to_string(),
            ),
        ],
        out,
    )
        .into_response()
}

/// A CSV field, quoted when it holds a comma, a quote or a line break, and kept from being read
/// as a spreadsheet formula (a leading `=`, `+`, `-` or `@` gets a `'` before it).
fn field(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}
