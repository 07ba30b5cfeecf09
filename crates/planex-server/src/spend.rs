//! `GET /v1/spend`: the caller's tenant's spend this month (or another month), by cost center.
//!
//! Key decision: spend is read from the same ledger that enforces budgets, so the numbers shown are
//! the numbers budgets are checked against: settled spend plus what requests in flight reserved.

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiQuery;
use crate::views::{SpendLine, SpendQuery, SpendView};
use axum::extract::State;
use planex_core::Decimal;
use planex_engine::BudgetGuard;
use planex_engine::budget::current_month;
use std::collections::BTreeMap;

fn valid_month(month: &str) -> bool {
    let bytes = month.as_bytes();
    bytes.len() == 7
        && bytes[4] == b'-'
        && bytes[..4].iter().all(u8::is_ascii_digit)
        && bytes[5..].iter().all(u8::is_ascii_digit)
        && matches!(month[5..].parse::<u8>(), Ok(1..=12))
}

/// The caller's tenant's spend and budgets for a month, by cost center.
#[utoipa::path(get, path = "/v1/spend", tag = "spend", params(SpendQuery),
    responses(
        (status = 200, body = SpendView),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 503, description = "The ledger is unavailable or budgets are off", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn spend(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<SpendQuery>,
) -> Result<axum::Json<SpendView>, ApiError> {
    let month = query.month.unwrap_or_else(current_month);
    if !valid_month(&month) {
        return Err(ApiError::bad_request(format!(
            "month {month:?} must be YYYY-MM, e.g. 2026-05"
        )));
    }
    let guard = state.engine().budget().ok_or_else(|| {
        ApiError::unavailable("spend is not tracked: the budget guard is not configured")
    })?;
    let tenant = caller.tenant_name().to_owned();
    let balances = guard
        .ledger()
        .balances(&BudgetGuard::scope(&tenant, &month))
        .await
        .map_err(|e| ApiError::unavailable(planex_core::cause::chain_text(&e)))?;
    let settings = guard.settings();
    let mut total = SpendLine {
        spent_usd: Decimal::ZERO,
        reserved_usd: Decimal::ZERO,
        budget_usd: settings.tenant_monthly_usd.get(&tenant).copied(),
    };
    let mut cost_centers = BTreeMap::new();
    for (name, balance) in balances {
        if name == "tenant" {
            total.spent_usd = balance.spent_usd.normalize();
            total.reserved_usd = balance.reserved_usd.normalize();
        } else if let Some(cc) = name.strip_prefix("cost_center:") {
            cost_centers.insert(
                cc.to_owned(),
                SpendLine {
                    spent_usd: balance.spent_usd.normalize(),
                    reserved_usd: balance.reserved_usd.normalize(),
                    budget_usd: settings
                        .cost_center_monthly_usd
                        .get(&(tenant.clone(), cc.to_owned()))
                        .copied(),
                },
            );
        }
    }
    Ok(axum::Json(SpendView {
        tenant,
        month,
        total,
        cost_centers,
    }))
}

#[cfg(test)]
mod tests {
    use super::valid_month;

    #[test]
    fn months_are_checked() {
        assert!(valid_month("2026-05"));
        assert!(!valid_month("2026-13"));
        assert!(!valid_month("2026-5"));
        assert!(!valid_month("26-05-01"));
    }
}
