//! Background housekeeping: forget expired nonces.
//!
//! A pass is one set-based, idempotent statement, safe on several replicas at once, so it needs no lease
//! (per-instance work such as purging goes through the job queue instead). Tests call
//! [`Maintenance::run_once`] directly instead of waiting for the timer.

use std::sync::Arc;
use std::time::Duration;

use koogate_store::{Store, StoreError};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MaintenanceReport {
    pub expired_nonces: u64,
}

#[derive(Clone)]
pub struct Maintenance {
    store: Store,
    clock: Arc<dyn Clock>,
    interval: Duration,
}

impl Maintenance {
    pub fn new(store: Store, clock: Arc<dyn Clock>, interval: Duration) -> Self {
        Self { store, clock, interval }
    }

    pub async fn run_once(&self) -> Result<MaintenanceReport, StoreError> {
        let expired_nonces = self.store.delete_expired_nonces(self.clock.now_ms()).await?;
        Ok(MaintenanceReport { expired_nonces })
    }

    /// Runs a pass every interval until `shutdown` is cancelled. A failed pass is logged and retried
    /// at the next tick: the database may be briefly away.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = ticker.tick() => {}
            }
            if let Err(error) = self.run_once().await {
                tracing::warn!(error = ?error, "maintenance pass failed; retrying next interval");
            }
        }
    }
}
