//! The budget guard (docs/ARCHITECTURE.md §5): estimates, atomic reservations and their settlement.
//!
//! Key decisions: every estimate is *booked* in the [`SpendLedger`] before money is spent (never
//! check-then-record), and replaced by the real cost afterwards. A task holds one reservation, its
//! id, capped by the task's own budget (default $0.01; `0` is unlimited): at admission it holds the
//! planner call's worst case, then (once the plan is in) what planning cost plus the estimate of
//! the rest (Σ over steps of the tool's observed mean tokens, 800 until observed, × its tier's
//! price, plus a synthesis whose prompt grows with the steps' expected output). While the task runs,
//! every model call draws its worst case from that reservation first (`meter.rs`), so the cap is
//! never passed. Accounts are the tenant's month and its cost center's month, so `GET /v1/spend`
//! reads one scope. A submission that does not fit an account only because other tasks' worst
//! cases are still held waits for them to settle (bounded, in arrival order) before it is refused.

mod calendar;
mod density;
mod guard;
mod left_behind;
mod meter;
mod price;
mod refusal;
mod room;
mod settings;
mod stats;

pub use calendar::{current_month, month_bounds_ms, until_next_month};
pub use density::{PromptDensity, prompt_bytes};
pub use guard::{Accounts, BudgetGuard};
pub use left_behind::claim_tag;
pub use meter::{MIN_CALL_TOKENS, MeteredModel};
pub use price::{PROMPT_BYTES_PER_TOKEN, floor_usd, tokens_cost};
pub use refusal::{BudgetExceeded, BudgetKind};
pub use settings::BudgetSettings;
