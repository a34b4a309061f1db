//! A write transaction: everything one callback changes, committed together with its audit-log entry.

use koogate_protocol::ids::{InstanceId, OrderId, OrderLineId};
use sqlx::{Postgres, QueryBuilder, Sqlite, Transaction};

use crate::backend::Pools;
use crate::error::StoreError;
use crate::model::{
    CallbackRecord, Change, Instance, InstanceRow, InstanceStatus, NewInstanceRecord, StoredAppInfo,
    INSTANCE_COLUMNS,
};

pub(crate) enum TxInner {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

/// An open transaction. Dropping it without [`Tx::commit`] rolls everything back.
pub struct Tx {
    pub(crate) inner: TxInner,
    /// Audit-log entries to insert at commit, all in one statement (see [`Tx::log_callback`]).
    pending_callbacks: Vec<CallbackRecord>,
}

/// Audit-log rows per insert statement: 14 parameters each stays far below both backends' limits.
const CALLBACK_CHUNK: usize = 256;

impl Tx {
    pub(crate) async fn begin(pools: &Pools) -> Result<Self, StoreError> {
        let inner = match pools {
            Pools::Sqlite { writer, .. } => TxInner::Sqlite(writer.begin().await?),
            Pools::Postgres(pool) => TxInner::Postgres(pool.begin().await?),
        };
        Ok(Self { inner, pending_callbacks: Vec::new() })
    }

    /// Instance lookups in a write transaction lock the row on PostgreSQL, so two replicas changing the
    /// same instance (a freeze racing a release) take turns instead of overwriting each other. SQLite's
    /// single writer already serialises them.
    fn row_lock(&self) -> &'static str {
        match self.inner {
            TxInner::Sqlite(_) => "",
            TxInner::Postgres(_) => "FOR UPDATE",
        }
    }

    pub async fn commit(mut self) -> Result<(), StoreError> {
        self.flush_callbacks().await?;
        match self.inner {
            TxInner::Sqlite(t) => t.commit().await?,
            TxInner::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }

    /// Records a nonce; `false` means it was already used within its lifetime (a replay).
    pub async fn claim_nonce(
        &mut self,
        scope: &str,
        nonce: &str,
        expires_at_ms: i64,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "INSERT INTO nonces (scope, nonce, expires_at_ms) VALUES ($1, $2, $3) \
                           ON CONFLICT DO NOTHING";
        let result = on_conn!(self, c => sqlx::query(SQL).bind(scope).bind(nonce).bind(expires_at_ms).execute(c).await?.rows_affected());
        Ok(result == 1)
    }

    /// Inserts the instance unless one exists for its order line (or its id is taken), and returns it
    /// when this call created it. Concurrent duplicates are resolved by the unique keys, not by a prior
    /// read; the new row comes back from the insert itself, saving a statement on the hot path.
    pub async fn insert_instance(&mut self, new: &NewInstanceRecord) -> Result<Option<Instance>, StoreError> {
        let sql = format!(
            "INSERT INTO instances (instance_id, order_id, order_line_id, test, status, created_at_ms, \
             updated_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT DO NOTHING RETURNING {INSTANCE_COLUMNS}"
        );
        let row: Option<InstanceRow> = on_conn!(self, c => sqlx::query_as(&sql)
            .bind(new.instance_id.as_str())
            .bind(new.order_id.as_str())
            .bind(new.order_line_id.as_str())
            .bind(new.test)
            .bind(InstanceStatus::Provisioning.as_str())
            .bind(new.now_ms)
            .fetch_optional(c)
            .await?);
        row.map(Instance::try_from).transpose()
    }

    pub async fn instance_by_order(
        &mut self,
        order_id: &OrderId,
        order_line_id: &OrderLineId,
        test: bool,
    ) -> Result<Option<Instance>, StoreError> {
        let lock = self.row_lock();
        let sql = format!(
            "SELECT {INSTANCE_COLUMNS} FROM instances WHERE order_id = $1 AND order_line_id = $2 AND test = $3 {lock}"
        );
        let row: Option<InstanceRow> = on_conn!(self, c => sqlx::query_as(&sql)
            .bind(order_id.as_str())
            .bind(order_line_id.as_str())
            .bind(test)
            .fetch_optional(c)
            .await?);
        row.map(Instance::try_from).transpose()
    }

    pub async fn instance(&mut self, id: &InstanceId) -> Result<Option<Instance>, StoreError> {
        let sql =
            format!("SELECT {INSTANCE_COLUMNS} FROM instances WHERE instance_id = $1 {}", self.row_lock());
        let row: Option<InstanceRow> =
            on_conn!(self, c => sqlx::query_as(&sql).bind(id.as_str()).fetch_optional(c).await?);
        row.map(Instance::try_from).transpose()
    }

    /// The instances among `ids` that exist, in no particular order.
    pub async fn instances(&mut self, ids: &[InstanceId]) -> Result<Vec<Instance>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<InstanceRow> = on_conn!(self, c => {
            let mut query = QueryBuilder::new(format!("SELECT {INSTANCE_COLUMNS} FROM instances WHERE instance_id IN ("));
            let mut list = query.separated(", ");
            for id in ids {
                list.push_bind(id.as_str());
            }
            query.push(")");
            query.build_query_as().fetch_all(c).await?
        });
        rows.into_iter().map(Instance::try_from).collect()
    }

    /// Stores the app details and makes the instance usable. Only a provisioning (or failed)
    /// instance moves to active; a later state such as frozen is kept.
    pub async fn complete_provisioning(
        &mut self,
        id: &InstanceId,
        app: &StoredAppInfo,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        const SQL: &str = "UPDATE instances SET front_end_url = $2, admin_url = $3, user_name = $4, \
            password_enc = $5, memo = $6, provision_error = NULL, updated_at_ms = $7, \
            status = CASE WHEN status IN ('provisioning', 'failed') THEN 'active' ELSE status END \
            WHERE instance_id = $1";
        on_conn!(self, c => sqlx::query(SQL)
            .bind(id.as_str())
            .bind(&app.front_end_url)
            .bind(&app.admin_url)
            .bind(&app.user_name)
            .bind(&app.password_enc)
            .bind(&app.memo)
            .bind(now_ms)
            .execute(c)
            .await
            .map(|_| ())?);
        Ok(())
    }

    /// Records why provisioning failed; only a provisioning instance becomes failed.
    pub async fn fail_provisioning(
        &mut self,
        id: &InstanceId,
        reason: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        const SQL: &str = "UPDATE instances SET provision_error = $2, updated_at_ms = $3, \
            status = CASE WHEN status = 'provisioning' THEN 'failed' ELSE status END WHERE instance_id = $1";
        on_conn!(self, c => sqlx::query(SQL).bind(id.as_str()).bind(reason).bind(now_ms).execute(c).await.map(|_| ())?);
        Ok(())
    }

    /// Moves a failed instance back to provisioning, for a resent `newInstance` to try again.
    pub async fn retry_provisioning(&mut self, id: &InstanceId, now_ms: i64) -> Result<(), StoreError> {
        const SQL: &str = "UPDATE instances SET status = 'provisioning', updated_at_ms = $2 \
            WHERE instance_id = $1 AND status = 'failed'";
        on_conn!(self, c => sqlx::query(SQL).bind(id.as_str()).bind(now_ms).execute(c).await.map(|_| ())?);
        Ok(())
    }

    /// Remembers a change by its idempotency key; `false` when the same change was applied before.
    pub async fn record_change(&mut self, change: &Change) -> Result<bool, StoreError> {
        const SQL: &str = "INSERT INTO instance_changes (instance_id, kind, order_id, order_line_id, scene, \
            expire_time_ms, product_id, applied_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
            ON CONFLICT DO NOTHING";
        let rows = on_conn!(self, c => sqlx::query(SQL)
            .bind(change.instance_id.as_str())
            .bind(change.kind)
            .bind(&change.order_id)
            .bind(&change.order_line_id)
            .bind(&change.scene)
            .bind(change.expire_time_ms)
            .bind(&change.product_id)
            .bind(change.now_ms)
            .execute(c)
            .await?
            .rows_affected());
        Ok(rows == 1)
    }

    /// Sets the absolute expiry and the scene that set it; a new product id replaces the old one.
    pub async fn set_expiry(
        &mut self,
        id: &InstanceId,
        expire_time_ms: i64,
        scene: &str,
        product_id: Option<&str>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        const SQL: &str = "UPDATE instances SET expire_time_ms = $2, last_scene = $3, \
            product_id = COALESCE($4, product_id), updated_at_ms = $5 WHERE instance_id = $1";
        on_conn!(self, c => sqlx::query(SQL)
            .bind(id.as_str())
            .bind(expire_time_ms)
            .bind(scene)
            .bind(product_id)
            .bind(now_ms)
            .execute(c)
            .await
            .map(|_| ())?);
        Ok(())
    }

    /// Sets the status unconditionally; the caller has checked the transition.
    pub async fn set_status(
        &mut self,
        id: &InstanceId,
        status: InstanceStatus,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        const SQL: &str = "UPDATE instances SET status = $2, updated_at_ms = $3 WHERE instance_id = $1";
        on_conn!(self, c => sqlx::query(SQL).bind(id.as_str()).bind(status.as_str()).bind(now_ms).execute(c).await.map(|_| ())?);
        Ok(())
    }

    /// Marks the instance released and schedules the erasure of its app data.
    pub async fn release(
        &mut self,
        id: &InstanceId,
        release_order_id: Option<&str>,
        purge_after_ms: i64,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        const SQL: &str = "UPDATE instances SET status = 'released', release_order_id = $2, \
            purge_after_ms = $3, updated_at_ms = $4 WHERE instance_id = $1";
        on_conn!(self, c => sqlx::query(SQL)
            .bind(id.as_str())
            .bind(release_order_id)
            .bind(purge_after_ms)
            .bind(now_ms)
            .execute(c)
            .await
            .map(|_| ())?);
        Ok(())
    }

    /// Erases the app data of a released instance. The row itself stays (status `purged`) so the order
    /// line keeps its one instance id for ever. `false` if the instance is not (or no longer) released.
    pub async fn purge_instance(&mut self, id: &InstanceId, now_ms: i64) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE instances SET status = 'purged', front_end_url = NULL, admin_url = NULL, \
            user_name = NULL, password_enc = NULL, memo = NULL, purge_after_ms = NULL, updated_at_ms = $2 \
            WHERE instance_id = $1 AND status = 'released'";
        let rows = on_conn!(self, c => sqlx::query(SQL).bind(id.as_str()).bind(now_ms).execute(c).await?.rows_affected());
        Ok(rows == 1)
    }

    /// Adds an audit-log entry to the transaction; it is inserted at commit, together with every other
    /// entry logged in the transaction (a group commit of many callbacks writes them in one statement).
    /// Nothing reads the audit log inside a write transaction, so deferring the insert changes nothing
    /// but the number of statements.
    pub fn log_callback(&mut self, record: CallbackRecord) {
        self.pending_callbacks.push(record);
    }

    async fn flush_callbacks(&mut self) -> Result<(), StoreError> {
        let pending = std::mem::take(&mut self.pending_callbacks);
        for chunk in pending.chunks(CALLBACK_CHUNK) {
            on_conn!(self, c => {
                let mut query = QueryBuilder::new(
                    "INSERT INTO callbacks (received_at_ms, interface, activity, instance_id, order_id, test, \
                     raw_query, raw_body, verification, nonce, result_code, result_msg, response_body, latency_us) ",
                );
                query.push_values(chunk, |mut row, r| {
                    row.push_bind(r.received_at_ms)
                        .push_bind(&r.interface)
                        .push_bind(&r.activity)
                        .push_bind(&r.instance_id)
                        .push_bind(&r.order_id)
                        .push_bind(r.test)
                        .push_bind(&r.raw_query)
                        .push_bind(&r.raw_body)
                        .push_bind(&r.verification)
                        .push_bind(&r.nonce)
                        .push_bind(&r.result_code)
                        .push_bind(&r.result_msg)
                        .push_bind(&r.response_body)
                        .push_bind(r.latency_us);
                });
                query.build().execute(c).await.map(|_| ())?
            });
        }
        Ok(())
    }
}
