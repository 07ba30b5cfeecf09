//! Settling reservations in the spend ledger: the one place ledger settlements happen, so a
//! failure is always logged (the reservation then stays held until orphan recovery settles it).

use crate::BudgetGuard;
use planex_core::Decimal;

impl BudgetGuard {
    /// Settles reservation `id` with the real `cost`; a ledger failure is logged.
    pub async fn settle_reservation(&self, id: &str, cost: Decimal) {
        let settled = self.ledger().reconcile(id, cost).await;
        self.freed();
        if let Err(error) = settled {
            tracing::error!(reservation = id, %cost, error = %planex_core::cause::ErrorChain(&error),
                "could not settle a reservation; it stays held until orphan recovery settles it");
        }
    }

    /// Releases reservation `id` (nothing was spent); a ledger failure is logged.
    pub async fn release_reservation(&self, id: &str) {
        let released = self.ledger().release(id).await;
        self.freed();
        if let Err(error) = released {
            tracing::error!(reservation = id, error = %planex_core::cause::ErrorChain(&error),
                "could not release a reservation; it stays held until orphan recovery releases it");
        }
    }
}
