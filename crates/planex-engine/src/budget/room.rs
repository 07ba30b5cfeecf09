//! Waiting for room in an account budget: a submission that does not fit *now* only because other
//! tasks' worst cases are still held waits for them to settle, in arrival order, before it is
//! refused.
//!
//! Key decision: settlements made by this process wake the waiters at once; those made by other
//! API replicas are seen by re-trying every [`RECHECK`] (the ledger has no change feed), so the
//! wait is bounded and event driven where it can be.

use planex_core::Decimal;
use planex_store::{Denial, LedgerError};
use std::future::Future;
use std::time::Duration;
use tokio::sync::{Mutex, Notify};
use tokio::time::Instant;

/// How often a waiter re-tries for settlements made by other processes.
const RECHECK: Duration = Duration::from_millis(250);

/// Wakes waiters when money is given back, and keeps them in arrival order.
#[derive(Default)]
pub(super) struct Room {
    freed: Notify,
    queue: Mutex<()>,
}

impl Room {
    /// Money was given back: wake every waiter.
    pub(super) fn freed(&self) {
        self.freed.notify_waiters();
    }
}

impl Room {
    /// Runs `book` until it is granted, fails, or is denied for a reason that waiting cannot cure
    /// (no room for `need()` once others settle) or `wait` is over; waiters go in arrival order.
    pub(super) async fn book_with_wait<F, Fut>(
        &self,
        wait: Duration,
        need: impl Fn() -> Decimal,
        mut book: F,
    ) -> Result<Option<Denial>, LedgerError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Option<Denial>, LedgerError>>,
    {
        let denial = match book().await? {
            None => return Ok(None),
            Some(denial) if !curable(&denial, need()) => return Ok(Some(denial)),
            Some(denial) => denial,
        };
        let deadline = Instant::now() + wait;
        let _turn = match tokio::time::timeout_at(deadline, self.queue.lock()).await {
            Ok(turn) => turn,
            Err(_) => return Ok(Some(denial)),
        };
        metrics::counter!("budget_admission_waits_total").increment(1);
        loop {
            let freed = self.freed.notified();
            match book().await? {
                None => return Ok(None),
                Some(denial) if !curable(&denial, need()) => return Ok(Some(denial)),
                Some(denial) if Instant::now() >= deadline => return Ok(Some(denial)),
                Some(_) => {}
            }
            let wake = (Instant::now() + RECHECK).min(deadline);
            tokio::select! {
                () = freed => {}
                () = tokio::time::sleep_until(wake) => {}
            }
        }
    }
}

/// Whether waiting can cure a denial: an account limit (not a task's own cap) that has room for
/// `need` once what others hold is settled.
fn curable(denial: &Denial, need: Decimal) -> bool {
    denial.account.scope != "reservation" && denial.spent_usd + need <= denial.limit_usd
}
