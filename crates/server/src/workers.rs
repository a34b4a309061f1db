//! Background housekeeping: forget expired nonces, and seal ended usage windows into pushes.
//!
//! Every step is idempotent and safe on several replicas at once (pushes are built from records locked
//! with `FOR UPDATE SKIP LOCKED`; sending them goes through the job queue). Tests call
//! [`Maintenance::run_once`] directly instead of waiting for the timer.

use std::sync::Arc;
use std::time::Duration;

use koogate_store::{Store, StoreError};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::usage::{Metering, PushPreparation};

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MaintenanceReport {
    pub expired_nonces: u64,
    pub usage: PushPreparation,
}

#[derive(Clone)]
pub struct Maintenance {
    store: Store,
    clock: Arc<dyn Clock>,
    interval: Duration,
    metering: Option<Metering>,
}

impl Maintenance {
    pub fn new(store: Store, clock: Arc<dyn Clock>, interval: Duration, metering: Option<Metering>) -> Self {
        Self { store, clock, interval, metering }
    }

    pub async fn run_once(&self) -> Result<MaintenanceReport, StoreError> {
        let expired_nonces = self.store.delete_expired_nonces(self.clock.now_ms()).await?;
        let usage = match &self.metering {
            Some(metering) => metering.prepare_pushes().await?,
            None => PushPreparation::default(),
        };
        Ok(MaintenanceReport { expired_nonces, usage })
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

/// Runs `step` until `shutdown` is cancelled: again at once while it finds work (`true`), and after
/// `idle` when it found none or failed (`false`). The job runner and the deliverer share it.
pub async fn poll_until_shutdown<F, Fut>(shutdown: CancellationToken, idle: Duration, mut step: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    loop {
        let worked = step().await;
        if shutdown.is_cancelled() {
            return;
        }
        if !worked {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(idle) => {}
            }
        }
    }
}
