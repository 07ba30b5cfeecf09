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
//! Accounts are grouped in *scopes* (e.g. one tenant's month, `acme/2026-05`) so that one scope's
//! accounts (`tenant`, `cost_center:research`) can be read together for `GET /v1/spend`.

use async_trait::async_trait;
use planex_core::Decimal;
use planex_core::cause::SharedSource;
use rust_decimal::RoundingStrategy;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

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

/// The answer to `reserve` or `extend`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Booking {
    /// Booked on every account.
    Granted,
    /// Nothing was booked: the first limit that did not fit.
    Denied(Denial),
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
    /// `actual` to their spend. Returns false (and changes nothing) when it is not held, so a
    /// second settlement of the same reservation is harmless.
    async fn reconcile(&self, id: &str, actual_usd: Decimal) -> Result<bool, LedgerError>;

    /// Drops a reservation without spend. False when it is not held.
    async fn release(&self, id: &str) -> Result<bool, LedgerError>;

    /// Adds spend that was not reserved (never refused).
    async fn charge(&self, accounts: &[Account], amount_usd: Decimal) -> Result<(), LedgerError>;

    /// Every account of a scope with its balance.
    async fn balances(&self, scope: &str) -> Result<BTreeMap<String, Balance>, LedgerError>;

    /// The ids of the reservations still held, sorted, so a process can settle the ones whose
    /// holder stopped (an API replica that crashed mid-task never reconciles its reservations).
    async fn held(&self) -> Result<Vec<String>, LedgerError>;
}

/// The in-process ledger: one lock makes each operation atomic.
#[derive(Default)]
pub struct MemoryLedger {
    inner: Mutex<LedgerInner>,
}

#[derive(Default)]
struct LedgerInner {
    balances: HashMap<Account, Balance>,
    held: HashMap<String, Reservation>,
}

impl MemoryLedger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, LedgerInner> {
        // A poisoned lock only means a panic elsewhere mid-update of plain numbers; keep serving.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn non_negative(amount: Decimal) -> Result<Decimal, LedgerError> {
    if amount.is_sign_negative() && !amount.is_zero() {
        Err(LedgerError::NegativeAmount(amount))
    } else {
        Ok(ledger_usd(amount))
    }
}

impl LedgerInner {
    /// The first limit `amount` does not fit, if any.
    fn check(&self, reservation: &Reservation, held: Decimal, amount: Decimal) -> Option<Denial> {
        if let Some(cap) = reservation.cap_usd
            && held + amount > cap
        {
            return Some(Denial {
                account: Account::new("reservation", reservation.id.clone()),
                limit_usd: cap,
                spent_usd: Decimal::ZERO,
                reserved_usd: held,
                requested_usd: amount,
                over_by_usd: held + amount - cap,
            });
        }
        reservation.accounts.iter().find_map(|limited| {
            let limit = limited.limit_usd?;
            let balance = self
                .balances
                .get(&limited.account)
                .copied()
                .unwrap_or_default();
            let total = balance.spent_usd + balance.reserved_usd + amount;
            (total > limit).then(|| Denial {
                account: limited.account.clone(),
                limit_usd: limit,
                spent_usd: balance.spent_usd,
                reserved_usd: balance.reserved_usd,
                requested_usd: amount,
                over_by_usd: total - limit,
            })
        })
    }

    fn book(&mut self, accounts: &[AccountLimit], reserved: Decimal, spent: Decimal) {
        for limited in accounts {
            let balance = self.balances.entry(limited.account.clone()).or_default();
            balance.reserved_usd += reserved;
            balance.spent_usd += spent;
            if balance.reserved_usd.is_sign_negative() {
                balance.reserved_usd = Decimal::ZERO;
            }
        }
    }
}

#[async_trait]
impl SpendLedger for MemoryLedger {
    async fn reserve(&self, mut reservation: Reservation) -> Result<Booking, LedgerError> {
        reservation.amount_usd = non_negative(reservation.amount_usd)?;
        let mut inner = self.lock();
        if inner.held.contains_key(&reservation.id) {
            return Err(LedgerError::DuplicateReservation(reservation.id));
        }
        if let Some(denial) = inner.check(&reservation, Decimal::ZERO, reservation.amount_usd) {
            return Ok(Booking::Denied(denial));
        }
        inner.book(&reservation.accounts, reservation.amount_usd, Decimal::ZERO);
        inner.held.insert(reservation.id.clone(), reservation);
        Ok(Booking::Granted)
    }

    async fn extend(&self, id: &str, amount_usd: Decimal) -> Result<Booking, LedgerError> {
        let amount = non_negative(amount_usd)?;
        let mut inner = self.lock();
        let reservation = inner
            .held
            .get(id)
            .cloned()
            .ok_or_else(|| LedgerError::UnknownReservation(id.to_owned()))?;
        if let Some(denial) = inner.check(&reservation, reservation.amount_usd, amount) {
            return Ok(Booking::Denied(denial));
        }
        inner.book(&reservation.accounts, amount, Decimal::ZERO);
        if let Some(held) = inner.held.get_mut(id) {
            held.amount_usd += amount;
        }
        Ok(Booking::Granted)
    }

    async fn reconcile(&self, id: &str, actual_usd: Decimal) -> Result<bool, LedgerError> {
        let actual = non_negative(actual_usd)?;
        let mut inner = self.lock();
        let Some(reservation) = inner.held.remove(id) else {
            return Ok(false);
        };
        inner.book(&reservation.accounts, -reservation.amount_usd, actual);
        Ok(true)
    }

    async fn release(&self, id: &str) -> Result<bool, LedgerError> {
        let mut inner = self.lock();
        let Some(reservation) = inner.held.remove(id) else {
            return Ok(false);
        };
        inner.book(
            &reservation.accounts,
            -reservation.amount_usd,
            Decimal::ZERO,
        );
        Ok(true)
    }

    async fn charge(&self, accounts: &[Account], amount_usd: Decimal) -> Result<(), LedgerError> {
        let amount = non_negative(amount_usd)?;
        let mut inner = self.lock();
        for account in accounts {
            inner.balances.entry(account.clone()).or_default().spent_usd += amount;
        }
        Ok(())
    }

    async fn balances(&self, scope: &str) -> Result<BTreeMap<String, Balance>, LedgerError> {
        let inner = self.lock();
        Ok(inner
            .balances
            .iter()
            .filter(|(account, _)| account.scope == scope)
            .map(|(account, balance)| (account.name.clone(), *balance))
            .collect())
    }

    async fn held(&self) -> Result<Vec<String>, LedgerError> {
        let mut ids: Vec<String> = self.lock().held.keys().cloned().collect();
        ids.sort();
        Ok(ids)
    }
}
