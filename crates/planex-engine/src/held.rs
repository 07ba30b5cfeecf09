//! The leases a worker holds: claimed and not yet completed or released. A stopping worker releases
//! whatever is left here, so its steps go to other workers at once instead of after a lease expiry.

use planex_store::{StepLease, Store};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Leases held by one worker, by lease token.
#[derive(Default)]
pub(crate) struct HeldLeases {
    leases: Mutex<HashMap<String, StepLease>>,
}

impl HeldLeases {
    fn leases(&self) -> MutexGuard<'_, HashMap<String, StepLease>> {
        // A panic while holding this lock leaves the map itself intact: keep using it.
        self.leases.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Remembers a claimed lease.
    pub(crate) fn hold(&self, lease: &StepLease) {
        self.leases().insert(lease.token.clone(), lease.clone());
    }

    /// Forgets a lease whose outcome was recorded or that was released.
    pub(crate) fn forget(&self, lease: &StepLease) {
        self.leases().remove(&lease.token);
    }

    /// Releases one lease back to its tier's ready queue (no delivery is counted); a failure is
    /// logged, and the lease then expires instead.
    pub(crate) async fn release(&self, store: &dyn Store, lease: &StepLease) {
        self.forget(lease);
        if let Err(error) = store.release(lease).await {
            tracing::warn!(error = %planex_core::cause::ErrorChain(&error), task = %lease.task_id, step = %lease.spec.step.step_id,
                "could not release a step; its lease will expire and it will be redelivered");
        }
    }

    /// How many leases are held now.
    pub(crate) fn len(&self) -> usize {
        self.leases().len()
    }

    /// Releases every lease still held; returns how many there were.
    pub(crate) async fn release_all(&self, store: &dyn Store) -> usize {
        let leases: Vec<StepLease> = self.leases().drain().map(|(_, lease)| lease).collect();
        for lease in &leases {
            self.release(store, lease).await;
        }
        leases.len()
    }
}
