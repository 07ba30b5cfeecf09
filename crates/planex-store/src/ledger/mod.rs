//! The spend ledger: budgets that hold under concurrency, by reserving before spending.
//!
//! Key decision: a caller never checks a budget and then records spend in two steps (the pattern
//! behind the overspent-budget reports of popular LLM gateways). `reserve` checks every limit of a
//! reservation *and* books its amount in one atomic operation (one lock in memory, one Lua script
//! in Redis); the real cost replaces the reservation later (`reconcile`), or the reservation is
//! dropped (`release`). Any number of concurrent requests can therefore never book more than each
//! account's limit; the real spend can exceed it only by the error of the estimates.
//!
//! Amounts are USD `Decimal`s exact to 1e-9 (nano-dollars): [`ledger_usd`] rounds up to that
//! precision, so a backend may store integer nano-dollars (`INCRBY` in Redis) and agree exactly with
//! the memory backend.
//!
//! A reservation is also a *meter* (docs/ARCHITECTURE.md §5): each model call `draw`s its worst case
//! from it before it is made, refused when the reservation's used amount would pass its cap, and
//! `settle_draw` replaces the worst case by the real cost once the call's usage is known. A draw never
//! settled (its worker crashed mid-call) stays charged at its worst case. Draws are kept until the
//! reservation is settled, so a step's redelivery can read (`draws`) what the execution before it
//! spent. The hold booked on the
//! accounts always covers what the meter used, so account limits see every call in flight.
//!
//! Accounts are grouped in *scopes* (e.g. one tenant's month, `acme/2026-05`) so that one scope's
//! accounts (`tenant`, `cost_center:research`) can be read together for `GET /v1/spend`.

use async_trait::async_trait;
use planex_core::cause::SharedSource;
use planex_core::{Decimal, Usage};
use rust_decimal::RoundingStrategy;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

mod memory;

pub use memory::MemoryLedger;

/// Rounds an amount up to the ledger's precision (1e-9 USD). Every amount handed to a ledger goes
/// through this, so backends storing integer nano-dollars agree with the memory backend.
pub fn ledger_usd(amount: Decimal) -> Decimal {
    amount.round_dp_with_strategy(9, RoundingStrategy::AwayFromZero)
}

/// One account: a name inside a scope.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Account {
    /// The group it is listed with (e.g. `acme/2026-05`).
    pub scope: String,
    /// Its name in the scope (e.g. `tenant`, `cost_center:research`).
    pub name: String,
}

impl Account {
    /// An account.
    pub fn new(scope: impl Into<String>, name: impl Into<String>) -> Self {
        Account {
            scope: scope.into(),
            name: name.into(),
        }
    }
}

/// An account a reservation books against, with its limit (none: booked, never refused).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountLimit {
    /// The account.
    pub account: Account,
    /// Most that spent plus reserved may reach, in USD.
    pub limit_usd: Option<Decimal>,
}

/// A request to book an estimated amount before spending it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// Unique id (e.g. the task id); `extend`, `reconcile` and `release` name it.
    pub id: String,
    /// The estimate to book, in USD.
    pub amount_usd: Decimal,
    /// Most this reservation itself may grow to (its own budget, e.g. a task's `budget_usd`).
    pub cap_usd: Option<Decimal>,
    /// Accounts it books against; all must fit or none is booked.
    pub accounts: Vec<AccountLimit>,
}

/// A refused booking: which limit was hit and by how much.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Denial {
    /// The account whose limit was hit (scope `reservation` and the reservation id for a cap).
    pub account: Account,
    /// Its limit.
    pub limit_usd: Decimal,
    /// Spent on it so far.
    pub spent_usd: Decimal,
    /// Reserved on it by bookings in flight.
    pub reserved_usd: Decimal,
    /// What was asked for.
    pub requested_usd: Decimal,
    /// `spent + reserved + requested - limit`.
    pub over_by_usd: Decimal,
}

/// The answer to `reserve`, `extend`, `hold` or `draw`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Booking {
    /// Booked on every account.
    Granted,
    /// Nothing was booked: the first limit that did not fit.
    Denied(Denial),
    /// Nothing was booked: the reservation was closed (its task was cancelled).
    Closed,
}

/// One draw of a reservation, as a later execution of the same step reads it: a model call of an
/// execution whose worker died before recording the step's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draw {
    /// The call's id within the reservation (`STEP/CLAIM/N/TIER/K` for plan steps).
    pub call: String,
    /// Open: its worst case, charged as it is. Settled: its real cost.
    pub amount_usd: Decimal,
    /// `None` while the draw is open (the call's usage is not known: it was cut off); the usage
    /// the call reported once it is settled.
    pub usage: Option<Usage>,
    /// Settled: the completion id the model server gave the call's answer, when it gave one.
    pub response_id: Option<String>,
}

/// Spent and reserved amounts of one account.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    /// Settled spend, in USD.
    pub spent_usd: Decimal,
    /// Booked by reservations not yet settled, in USD.
    pub reserved_usd: Decimal,
}

/// A ledger failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// `reserve` with an id that is already held.
    #[error("reservation {0} already exists; use a fresh id per booking")]
    DuplicateReservation(String),
    /// `extend` of a reservation that is not held (never made, or already settled).
    #[error("reservation {0} is not held (never made, or already settled)")]
    UnknownReservation(String),
    /// A negative amount.
    #[error("ledger amounts must not be negative, got {0}")]
    NegativeAmount(Decimal),
    /// The backend could not be reached or answered unexpectedly; retrying later may help.
    #[error("spend ledger unavailable: {what}; check that the store backend is running")]
    Unavailable {
        /// What failed.
        what: String,
        /// The Redis (or other) error behind it, when there is one.
        #[source]
        source: Option<SharedSource>,
    },
}

/// Where spend is booked. Every backend gives the same semantics; the conformance suite
/// (`planex_testkit::ledger_conformance_tests!`) checks them.
#[async_trait]
pub trait SpendLedger: Send + Sync + 'static {
    /// Atomically: if every limited account has `spent + reserved + amount <= limit` (and the
    /// amount fits the cap), books `amount` as reserved on every account and holds the
    /// reservation; otherwise books nothing and names the first limit hit (in the order given).
    async fn reserve(&self, reservation: Reservation) -> Result<Booking, LedgerError>;

    /// Atomically grows a held reservation by `amount`, under the same limits (and its cap) as
    /// `reserve` (e.g. before escalating a step to a dearer tier).
    async fn extend(&self, id: &str, amount_usd: Decimal) -> Result<Booking, LedgerError>;

    /// Atomically settles a reservation: removes its reserved amount from every account and adds
    /// `max(actual, used)` to their spend (what its draws used is never under-billed). Returns false (and changes nothing) when it is not held, so a
    /// second settlement of the same reservation is harmless.
    async fn reconcile(&self, id: &str, actual_usd: Decimal) -> Result<bool, LedgerError>;

    /// Drops a reservation without spend. False when it is not held.
    async fn release(&self, id: &str) -> Result<bool, LedgerError>;

    /// Atomically sets a held reservation's hold to `max(used, amount)`: shrinking gives money
    /// back to its accounts, growing is checked like `extend` (cap and account limits).
    async fn hold(&self, id: &str, amount_usd: Decimal) -> Result<Booking, LedgerError>;

    /// Atomically books one model call's worst case as draw `call` of reservation `id`: refused
    /// when `used + amount` would pass the reservation's cap (the denial's `spent_usd` is what is
    /// used), or when growing the hold to cover it would break an account limit; `Closed` after
    /// [`SpendLedger::close`]. The hold grows to cover `used` whenever it must. Idempotent per
    /// `call`: drawing an open draw again grants it without booking more (so a retry after a
    /// lost reply is safe).
    async fn draw(&self, id: &str, call: &str, amount_usd: Decimal)
    -> Result<Booking, LedgerError>;

    /// Replaces draw `call`'s worst case with the call's real cost and keeps it, settled, with
    /// the `usage` it reported and its answer's `response_id` (until the reservation is
    /// settled), so that a later execution of the step can record it if this one's outcome is
    /// lost. A settled draw of cost 0 (a failed call) is not kept. False (nothing changes) when
    /// the draw is not open, so a settlement cannot count twice.
    async fn settle_draw(
        &self,
        id: &str,
        call: &str,
        actual_usd: Decimal,
        usage: &Usage,
        response_id: Option<&str>,
    ) -> Result<bool, LedgerError>;

    /// The draws, open and settled, whose call id starts with `prefix` (all with `""`), sorted by
    /// call id. Nothing changes: an execution that reads them and dies before recording its
    /// outcome leaves them for the next one.
    async fn draws(&self, id: &str, prefix: &str) -> Result<Vec<Draw>, LedgerError>;

    /// Refuses every later draw of reservation `id` (a cancelled task). False when not held.
    async fn close(&self, id: &str) -> Result<bool, LedgerError>;

    /// Adds spend that was not reserved (never refused).
    async fn charge(&self, accounts: &[Account], amount_usd: Decimal) -> Result<(), LedgerError>;

    /// Every account of a scope with its balance.
    async fn balances(&self, scope: &str) -> Result<BTreeMap<String, Balance>, LedgerError>;

    /// The ids of the reservations still held, sorted, so a process can settle the ones whose
    /// holder stopped (an API replica that crashed mid-task never reconciles its reservations).
    async fn held(&self) -> Result<Vec<String>, LedgerError>;
}
