//! The in-process spend ledger: one lock makes each operation atomic.
//!
//! Key decision: the same arithmetic as `lua/ledger.lua`, step for step, so both backends pass one
//! conformance suite; amounts go through [`ledger_usd`] first, as the Redis backend's integer
//! nano-dollars do.

use super::{
    Account, AccountLimit, Balance, Booking, Denial, Draw, LedgerError, Reservation, SpendLedger,
    ledger_usd,
};
use async_trait::async_trait;
use planex_core::{Decimal, Usage};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

/// The in-process ledger (the memory store's, and `planex run`'s).
#[derive(Default)]
pub struct MemoryLedger {
    inner: Mutex<LedgerInner>,
}

#[derive(Default)]
struct LedgerInner {
    balances: HashMap<Account, Balance>,
    held: HashMap<String, Held>,
}

/// A held reservation: what it booked on its accounts (`reservation.amount_usd`, the hold) and
/// what its draws used.
struct Held {
    reservation: Reservation,
    /// Settled draws' real costs plus open draws' worst cases.
    used: Decimal,
    /// Open draws by call id: their worst cases.
    draws: BTreeMap<String, Decimal>,
    /// Settled draws by call id: their real costs and usage.
    settled: BTreeMap<String, (Decimal, Usage, Option<String>)>,
    closed: bool,
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

fn unknown(id: &str) -> LedgerError {
    LedgerError::UnknownReservation(id.to_owned())
}

impl LedgerInner {
    /// The first limit `amount` does not fit (on top of the `held` amount), if any.
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
        self.check_accounts(&reservation.accounts, amount)
    }

    /// The first account limit `amount` does not fit, if any.
    fn check_accounts(&self, accounts: &[AccountLimit], amount: Decimal) -> Option<Denial> {
        accounts.iter().find_map(|limited| {
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

    /// Removes a held reservation, taking its hold off its accounts and adding `spent`.
    fn settle(&mut self, id: &str, spent: impl FnOnce(&Held) -> Decimal) -> bool {
        let Some(held) = self.held.remove(id) else {
            return false;
        };
        let spent = spent(&held);
        self.book(
            &held.reservation.accounts,
            -held.reservation.amount_usd,
            spent,
        );
        true
    }

    /// Grows reservation `id`'s hold by `extra` without a check (money already spent).
    fn grow_unchecked(&mut self, id: &str, extra: Decimal) {
        let Some(held) = self.held.get_mut(id) else {
            return;
        };
        held.reservation.amount_usd += extra;
        let accounts = held.reservation.accounts.clone();
        self.book(&accounts, extra, Decimal::ZERO);
    }
}

#[async_trait]
impl SpendLedger for MemoryLedger {
    async fn reserve(&self, mut reservation: Reservation) -> Result<Booking, LedgerError> {
        reservation.amount_usd = non_negative(reservation.amount_usd)?;
        // Limits at the ledger's precision, rounded up as the Redis backend's nano-dollars are.
        reservation.cap_usd = reservation.cap_usd.map(ledger_usd);
        for limited in &mut reservation.accounts {
            limited.limit_usd = limited.limit_usd.map(ledger_usd);
        }
        let mut inner = self.lock();
        if inner.held.contains_key(&reservation.id) {
            return Err(LedgerError::DuplicateReservation(reservation.id));
        }
        if let Some(denial) = inner.check(&reservation, Decimal::ZERO, reservation.amount_usd) {
            return Ok(Booking::Denied(denial));
        }
        inner.book(&reservation.accounts, reservation.amount_usd, Decimal::ZERO);
        let id = reservation.id.clone();
        inner.held.insert(
            id,
            Held {
                reservation,
                used: Decimal::ZERO,
                draws: BTreeMap::new(),
                settled: BTreeMap::new(),
                closed: false,
            },
        );
        Ok(Booking::Granted)
    }

    async fn extend(&self, id: &str, amount_usd: Decimal) -> Result<Booking, LedgerError> {
        let amount = non_negative(amount_usd)?;
        let mut inner = self.lock();
        let reservation = inner
            .held
            .get(id)
            .map(|h| h.reservation.clone())
            .ok_or_else(|| unknown(id))?;
        if let Some(denial) = inner.check(&reservation, reservation.amount_usd, amount) {
            return Ok(Booking::Denied(denial));
        }
        inner.grow_unchecked(id, amount);
        Ok(Booking::Granted)
    }

    async fn reconcile(&self, id: &str, actual_usd: Decimal) -> Result<bool, LedgerError> {
        let actual = non_negative(actual_usd)?;
        Ok(self.lock().settle(id, |held| actual.max(held.used)))
    }

    async fn release(&self, id: &str) -> Result<bool, LedgerError> {
        Ok(self.lock().settle(id, |_| Decimal::ZERO))
    }

    async fn hold(&self, id: &str, amount_usd: Decimal) -> Result<Booking, LedgerError> {
        let amount = non_negative(amount_usd)?;
        let mut inner = self.lock();
        let (reservation, used) = inner
            .held
            .get(id)
            .map(|h| (h.reservation.clone(), h.used))
            .ok_or_else(|| unknown(id))?;
        let target = amount.max(used);
        let current = reservation.amount_usd;
        if target > current {
            if let Some(denial) = inner.check(&reservation, current, target - current) {
                return Ok(Booking::Denied(denial));
            }
            inner.grow_unchecked(id, target - current);
        } else if target < current {
            inner.book(&reservation.accounts, target - current, Decimal::ZERO);
            if let Some(held) = inner.held.get_mut(id) {
                held.reservation.amount_usd = target;
            }
        }
        Ok(Booking::Granted)
    }

    async fn draw(
        &self,
        id: &str,
        call: &str,
        amount_usd: Decimal,
    ) -> Result<Booking, LedgerError> {
        let amount = non_negative(amount_usd)?;
        let mut inner = self.lock();
        let held = inner.held.get(id).ok_or_else(|| unknown(id))?;
        if held.closed {
            return Ok(Booking::Closed);
        }
        // Idempotent: a call already drawn (a retry after a lost reply) is granted again, unchanged.
        if held.draws.contains_key(call) {
            return Ok(Booking::Granted);
        }
        let (used, hold) = (held.used, held.reservation.amount_usd);
        if let Some(cap) = held.reservation.cap_usd
            && used + amount > cap
        {
            return Ok(Booking::Denied(Denial {
                account: Account::new("reservation", id),
                limit_usd: cap,
                spent_usd: used,
                reserved_usd: Decimal::ZERO,
                requested_usd: amount,
                over_by_usd: used + amount - cap,
            }));
        }
        let need = used + amount - hold;
        if need > Decimal::ZERO {
            let accounts = held.reservation.accounts.clone();
            if let Some(denial) = inner.check_accounts(&accounts, need) {
                return Ok(Booking::Denied(denial));
            }
            inner.grow_unchecked(id, need);
        }
        if let Some(held) = inner.held.get_mut(id) {
            held.used += amount;
            held.draws.insert(call.to_owned(), amount);
        }
        Ok(Booking::Granted)
    }

    async fn settle_draw(
        &self,
        id: &str,
        call: &str,
        actual_usd: Decimal,
        usage: &Usage,
        response_id: Option<&str>,
    ) -> Result<bool, LedgerError> {
        let actual = non_negative(actual_usd)?;
        let mut inner = self.lock();
        let Some(held) = inner.held.get_mut(id) else {
            return Ok(false);
        };
        let Some(worst) = held.draws.remove(call) else {
            return Ok(false);
        };
        held.used = held.used - worst + actual;
        if actual > Decimal::ZERO {
            let response_id = response_id.map(str::to_owned);
            held.settled
                .insert(call.to_owned(), (actual, *usage, response_id));
        }
        let over = held.used - held.reservation.amount_usd;
        if over > Decimal::ZERO {
            inner.grow_unchecked(id, over);
        }
        Ok(true)
    }

    async fn draws(&self, id: &str, prefix: &str) -> Result<Vec<Draw>, LedgerError> {
        let inner = self.lock();
        let Some(held) = inner.held.get(id) else {
            return Ok(Vec::new());
        };
        let open = held.draws.iter().map(|(call, amount)| Draw {
            call: call.clone(),
            amount_usd: *amount,
            usage: None,
            response_id: None,
        });
        let settled = held
            .settled
            .iter()
            .map(|(call, (amount, usage, response_id))| Draw {
                call: call.clone(),
                amount_usd: *amount,
                usage: Some(*usage),
                response_id: response_id.clone(),
            });
        let mut draws: Vec<Draw> = open
            .chain(settled)
            .filter(|draw| draw.call.starts_with(prefix))
            .collect();
        draws.sort_by(|a, b| a.call.cmp(&b.call));
        Ok(draws)
    }

    async fn close(&self, id: &str) -> Result<bool, LedgerError> {
        let mut inner = self.lock();
        Ok(match inner.held.get_mut(id) {
            Some(held) => {
                held.closed = true;
                true
            }
            None => false,
        })
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
