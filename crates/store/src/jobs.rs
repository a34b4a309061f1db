//! The job queue: durable background work claimed with a lease.
//!
//! A claim marks one due job with the claimer's name and a lease deadline. On PostgreSQL the candidate row
//! is locked with `FOR UPDATE SKIP LOCKED`, so replicas claiming at the same moment take different jobs
//! instead of waiting on each other; SQLite has a single writer, so a plain `UPDATE … RETURNING` of the
//! first due row is already exclusive. A job whose lease has run out (its claimer crashed) is due again.
//! Completing, retrying or burying a job requires still holding its lease.

use crate::backend::{Pools, Store};
use crate::error::StoreError;
use crate::tx::Tx;

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Job {
    pub id: i64,
    pub kind: String,
    pub dedupe_key: Option<String>,
    /// JSON, interpreted by the job's handler.
    pub payload: String,
    /// `pending`, `done` or `dead`.
    pub state: String,
    pub run_at_ms: i64,
    /// Claims so far, this one included.
    pub attempts: i32,
    pub lease_owner: Option<String>,
    pub lease_until_ms: Option<i64>,
    pub last_error: Option<String>,
}

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub kind: String,
    pub dedupe_key: Option<String>,
    pub payload: String,
    pub run_at_ms: i64,
    pub now_ms: i64,
}

const JOB_COLUMNS: &str =
    "id, kind, dedupe_key, payload, state, run_at_ms, attempts, lease_owner, lease_until_ms, last_error";

const ENQUEUE: &str =
    "INSERT INTO jobs (kind, dedupe_key, payload, state, run_at_ms, created_at_ms, updated_at_ms) \
    VALUES ($1, $2, $3, 'pending', $4, $5, $5) ON CONFLICT DO NOTHING";

// The due-and-unleased condition, shared by both claim statements.
const DUE: &str = "kind = $1 AND state = 'pending' AND run_at_ms <= $2 AND (lease_until_ms IS NULL OR lease_until_ms <= $2)";

impl Tx {
    /// Enqueues a job in this transaction, so it exists exactly when the change that needs it does.
    /// Returns `false` if a job with the same kind and dedupe key already exists.
    pub async fn enqueue_job(&mut self, job: &NewJob) -> Result<bool, StoreError> {
        let rows = on_conn!(self, c => sqlx::query(ENQUEUE)
            .bind(&job.kind)
            .bind(&job.dedupe_key)
            .bind(&job.payload)
            .bind(job.run_at_ms)
            .bind(job.now_ms)
            .execute(c)
            .await?
            .rows_affected());
        Ok(rows == 1)
    }
}

impl Store {
    pub async fn enqueue_job(&self, job: &NewJob) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let created = tx.enqueue_job(job).await?;
        tx.commit().await?;
        Ok(created)
    }

    /// Claims the oldest due job of `kind` for `owner` until `now_ms + lease_ms`.
    pub async fn claim_job(
        &self,
        kind: &str,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Option<Job>, StoreError> {
        let lease_until = now_ms.saturating_add(lease_ms);
        let job = match &self.pools {
            Pools::Sqlite { writer, .. } => {
                let sql = format!(
                    "UPDATE jobs SET lease_owner = $3, lease_until_ms = $4, attempts = attempts + 1, updated_at_ms = $2 \
                     WHERE id = (SELECT id FROM jobs WHERE {DUE} ORDER BY run_at_ms, id LIMIT 1) RETURNING {JOB_COLUMNS}"
                );
                sqlx::query_as(&sql)
                    .bind(kind)
                    .bind(now_ms)
                    .bind(owner)
                    .bind(lease_until)
                    .fetch_optional(writer)
                    .await?
            }
            Pools::Postgres(pool) => {
                let sql = format!(
                    "UPDATE jobs SET lease_owner = $3, lease_until_ms = $4, attempts = attempts + 1, updated_at_ms = $2 \
                     WHERE id = (SELECT id FROM jobs WHERE {DUE} ORDER BY run_at_ms, id LIMIT 1 FOR UPDATE SKIP LOCKED) \
                     RETURNING {JOB_COLUMNS}"
                );
                sqlx::query_as(&sql)
                    .bind(kind)
                    .bind(now_ms)
                    .bind(owner)
                    .bind(lease_until)
                    .fetch_optional(pool)
                    .await?
            }
        };
        Ok(job)
    }

    /// Marks a claimed job done. `false` when `owner` no longer holds the lease (it expired and another
    /// replica took the job over).
    pub async fn complete_job(&self, id: i64, owner: &str, now_ms: i64) -> Result<bool, StoreError> {
        self.settle(id, owner, "done", None, None, now_ms).await
    }

    /// Releases a claimed job to run again at `run_at_ms`, keeping the error for the operator.
    pub async fn retry_job(
        &self,
        id: i64,
        owner: &str,
        run_at_ms: i64,
        error: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        self.settle(id, owner, "pending", Some(run_at_ms), Some(error), now_ms).await
    }

    /// Gives up on a claimed job: it stays, `dead`, for an operator to look at or replay.
    pub async fn bury_job(&self, id: i64, owner: &str, error: &str, now_ms: i64) -> Result<bool, StoreError> {
        self.settle(id, owner, "dead", None, Some(error), now_ms).await
    }

    async fn settle(
        &self,
        id: i64,
        owner: &str,
        state: &str,
        run_at_ms: Option<i64>,
        error: Option<&str>,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE jobs SET state = $3, run_at_ms = COALESCE($4, run_at_ms), \
            last_error = COALESCE($5, last_error), lease_owner = NULL, lease_until_ms = NULL, updated_at_ms = $6 \
            WHERE id = $1 AND lease_owner = $2";
        let rows = on_pool!(self, write, p => sqlx::query(SQL)
            .bind(id)
            .bind(owner)
            .bind(state)
            .bind(run_at_ms)
            .bind(error)
            .bind(now_ms)
            .execute(p)
            .await?
            .rows_affected());
        Ok(rows == 1)
    }

    /// The job of `kind` with this dedupe key, if any.
    pub async fn job_by_key(&self, kind: &str, dedupe_key: &str) -> Result<Option<Job>, StoreError> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE kind = $1 AND dedupe_key = $2");
        let job = on_pool!(self, read, p => sqlx::query_as(&sql).bind(kind).bind(dedupe_key).fetch_optional(p).await?);
        Ok(job)
    }

    pub async fn job(&self, id: i64) -> Result<Option<Job>, StoreError> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1");
        let job = on_pool!(self, read, p => sqlx::query_as(&sql).bind(id).fetch_optional(p).await?);
        Ok(job)
    }

    /// Jobs of a kind, oldest first (for operators and tests).
    pub async fn jobs(&self, kind: &str) -> Result<Vec<Job>, StoreError> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE kind = $1 ORDER BY id");
        let jobs = on_pool!(self, read, p => sqlx::query_as(&sql).bind(kind).fetch_all(p).await?);
        Ok(jobs)
    }
}
