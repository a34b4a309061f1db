//! The job runner: claims due jobs with a lease, runs their handlers and settles them (done, retry with
//! backoff, or dead). Several replicas may run it at once; the store's lease makes each job run once.
//!
//! Tests call [`JobRunner::execute_one`] to drain the queue step by step without sleeping.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use koogate_protocol::ids::InstanceId;
use koogate_store::{Job, NewJob, Store, StoreError};
use rand::Rng;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::events::{self, EventType};

/// Erase a released instance's data once its retention has passed.
pub const PURGE_INSTANCE: &str = "purge_instance";

/// A handler could not finish a job.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct JobFailure {
    pub message: String,
    /// Retrying cannot help (for example an unreadable payload): bury the job at once.
    pub permanent: bool,
}

impl JobFailure {
    pub fn transient(message: impl Into<String>) -> Self {
        Self { message: message.into(), permanent: false }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        Self { message: message.into(), permanent: true }
    }
}

impl From<StoreError> for JobFailure {
    fn from(error: StoreError) -> Self {
        JobFailure::transient(format!("{error}: {}", error_chain(&error)))
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = String::new();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&cause.to_string());
        source = cause.source();
        if source.is_some() {
            text.push_str(": ");
        }
    }
    text
}

#[async_trait]
pub trait JobHandler: Send + Sync + 'static {
    fn kind(&self) -> &'static str;
    async fn run(&self, job: &Job, now_ms: i64) -> Result<(), JobFailure>;

    /// The retry policy of this kind; the runner's default unless overridden.
    fn retry_policy(&self) -> Option<RetryPolicy> {
        None
    }

    /// Called once when the job is given up (dead), so the handler can leave its data in a visible state.
    async fn gave_up(&self, _job: &Job, _failure: &JobFailure, _now_ms: i64) -> Result<(), StoreError> {
        Ok(())
    }
}

/// When a failed job runs again: exponential backoff from `base`, capped at `max`, with full jitter
/// in its upper half so replicas retrying together spread out; `None` once `max_attempts` are used.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub base: Duration,
    pub max: Duration,
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { base: Duration::from_secs(10), max: Duration::from_secs(3600), max_attempts: 20 }
    }
}

impl RetryPolicy {
    /// The delay after attempt number `attempt` (1-based) failed; `jitter` is in `[0, 1)`.
    pub fn delay(&self, attempt: u32, jitter: f64) -> Option<Duration> {
        if attempt >= self.max_attempts {
            return None;
        }
        let exponent = attempt.saturating_sub(1).min(30);
        let full = self.base.saturating_mul(1u32 << exponent).min(self.max);
        Some(full.mul_f64(0.5 + jitter.clamp(0.0, 1.0) / 2.0))
    }
}

/// What one step of the runner did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// Nothing was due.
    Idle,
    Completed {
        id: i64,
        kind: &'static str,
    },
    Retried {
        id: i64,
        kind: &'static str,
        run_at_ms: i64,
    },
    Buried {
        id: i64,
        kind: &'static str,
    },
    /// The lease ran out while the handler worked and another replica has the job now.
    LeaseLost {
        id: i64,
        kind: &'static str,
    },
}

#[derive(Clone)]
pub struct JobRunner {
    store: Store,
    clock: Arc<dyn Clock>,
    owner: String,
    lease: Duration,
    poll_interval: Duration,
    policy: RetryPolicy,
    handlers: Vec<Arc<dyn JobHandler>>,
}

impl JobRunner {
    pub fn new(store: Store, clock: Arc<dyn Clock>, lease: Duration, poll_interval: Duration) -> Self {
        let suffix: u32 = rand::thread_rng().gen();
        Self {
            store,
            clock,
            owner: format!("koogate-{}-{suffix:08x}", std::process::id()),
            lease,
            poll_interval,
            policy: RetryPolicy::default(),
            handlers: Vec::new(),
        }
    }

    pub fn with_handler(mut self, handler: Arc<dyn JobHandler>) -> Self {
        self.handlers.push(handler);
        self
    }

    /// The name this runner claims jobs under.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Claims and runs at most one due job.
    pub async fn execute_one(&self) -> Result<JobOutcome, StoreError> {
        let lease_ms = i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX);
        for handler in &self.handlers {
            let now = self.clock.now_ms();
            if let Some(job) = self.store.claim_job(handler.kind(), &self.owner, now, lease_ms).await? {
                return self.execute(handler.as_ref(), job).await;
            }
        }
        Ok(JobOutcome::Idle)
    }

    async fn execute(&self, handler: &dyn JobHandler, job: Job) -> Result<JobOutcome, StoreError> {
        let kind = handler.kind();
        let span = tracing::info_span!("job", id = job.id, kind, attempt = job.attempts);
        let _entered = span.enter();
        let result = handler.run(&job, self.clock.now_ms()).await;
        let now = self.clock.now_ms();
        let attempt = u32::try_from(job.attempts).unwrap_or(u32::MAX);
        let jitter: f64 = rand::thread_rng().gen();
        let (settled, outcome) = match result {
            Ok(()) => (
                self.store.complete_job(job.id, &self.owner, now).await?,
                JobOutcome::Completed { id: job.id, kind },
            ),
            Err(failure) => match handler
                .retry_policy()
                .unwrap_or(self.policy)
                .delay(attempt, jitter)
                .filter(|_| !failure.permanent)
            {
                Some(delay) => {
                    let run_at_ms = now.saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX));
                    tracing::warn!(error = %failure, retry_in_ms = delay.as_millis() as u64, "job failed; will retry");
                    let settled =
                        self.store.retry_job(job.id, &self.owner, run_at_ms, &failure.message, now).await?;
                    (settled, JobOutcome::Retried { id: job.id, kind, run_at_ms })
                }
                None => {
                    tracing::error!(error = %failure, "job failed for good; left dead for an operator");
                    handler.gave_up(&job, &failure, now).await?;
                    (
                        self.store.bury_job(job.id, &self.owner, &failure.message, now).await?,
                        JobOutcome::Buried { id: job.id, kind },
                    )
                }
            },
        };
        if settled {
            Ok(outcome)
        } else {
            tracing::warn!("lease expired while the job ran; another replica owns it now");
            Ok(JobOutcome::LeaseLost { id: job.id, kind })
        }
    }

    /// Runs jobs until `shutdown`: back to back while there are due jobs, every poll interval otherwise.
    pub async fn run(self, shutdown: CancellationToken) {
        let idle = self.poll_interval;
        crate::workers::poll_until_shutdown(shutdown, idle, || async {
            match self.execute_one().await {
                Ok(JobOutcome::Idle) => false,
                Ok(_) => true,
                Err(error) => {
                    tracing::warn!(error = ?error, "claiming a job failed; retrying after the poll interval");
                    false
                }
            }
        })
        .await;
    }
}

/// The purge job for a released instance, due when its retention ends. One per instance.
pub fn purge_job(instance_id: &InstanceId, run_at_ms: i64, now_ms: i64) -> NewJob {
    NewJob {
        kind: PURGE_INSTANCE.into(),
        dedupe_key: Some(instance_id.to_string()),
        payload: serde_json::json!({ "instance_id": instance_id }).to_string(),
        run_at_ms,
        now_ms,
    }
}

/// Erases a released instance's app data (the order → instance mapping stays) and, when the app hears
/// events, tells it with `instance.purged` in the same transaction.
pub struct PurgeHandler {
    pub store: Store,
    pub events: bool,
}

#[async_trait]
impl JobHandler for PurgeHandler {
    fn kind(&self) -> &'static str {
        PURGE_INSTANCE
    }

    async fn run(&self, job: &Job, now_ms: i64) -> Result<(), JobFailure> {
        let payload: serde_json::Value = serde_json::from_str(&job.payload)
            .map_err(|e| JobFailure::permanent(format!("bad payload: {e}")))?;
        let id = payload["instance_id"]
            .as_str()
            .and_then(|id| InstanceId::parse(id).ok())
            .ok_or_else(|| JobFailure::permanent("the payload has no valid instance_id"))?;
        let mut tx = self.store.begin().await?;
        if tx.purge_instance(&id, now_ms).await? {
            if self.events {
                let test = tx.instance(&id).await?.is_some_and(|i| i.test);
                events::emit(&mut tx, EventType::Purged, id.as_str(), test, serde_json::json!({}), now_ms)
                    .await?;
            }
            tracing::info!(instance_id = %id, "released instance purged after retention");
        }
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_stops_after_the_last_attempt() {
        let policy =
            RetryPolicy { base: Duration::from_secs(10), max: Duration::from_secs(60), max_attempts: 5 };
        let upper = |attempt| policy.delay(attempt, 0.999_999).unwrap().as_secs();
        assert_eq!([upper(1), upper(2), upper(3), upper(4)], [9, 19, 39, 59]);
        assert_eq!(policy.delay(1, 0.0), Some(Duration::from_secs(5)), "jitter keeps at least half");
        assert_eq!(policy.delay(5, 0.5), None);
    }
}
