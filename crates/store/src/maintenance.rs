//! Reads outside a callback transaction and the housekeeping the background workers run.
//!
//! Every write here is idempotent, so a repeated or concurrent run on several replicas does nothing twice.

use koogate_protocol::ids::InstanceId;

use crate::backend::Store;
use crate::error::StoreError;
use crate::model::{
    CallbackQuery, CallbackRecord, Instance, InstanceQuery, InstanceRow, InstanceStatus, INSTANCE_COLUMNS,
};

impl Store {
    pub async fn instance(&self, id: &InstanceId) -> Result<Option<Instance>, StoreError> {
        let sql = format!("SELECT {INSTANCE_COLUMNS} FROM instances WHERE instance_id = $1");
        let row: Option<InstanceRow> =
            on_pool!(self, read, p => sqlx::query_as(&sql).bind(id.as_str()).fetch_optional(p).await?);
        row.map(Instance::try_from).transpose()
    }

    /// Instances matching `query`, ordered by id; `query.after` continues after the given id.
    pub async fn list_instances(&self, query: &InstanceQuery) -> Result<Vec<Instance>, StoreError> {
        let sql = format!(
            "SELECT {INSTANCE_COLUMNS} FROM instances WHERE ($1 IS NULL OR status = $1) \
             AND ($2 IS NULL OR product_id = $2 OR sku_code = $2) AND ($3 IS NULL OR test = $3) \
             AND ($4 IS NULL OR instance_id > $4) ORDER BY instance_id LIMIT $5"
        );
        let limit = if query.limit > 0 { query.limit } else { 100 };
        let rows: Vec<InstanceRow> = on_pool!(self, read, p => sqlx::query_as(&sql)
            .bind(query.status.map(InstanceStatus::as_str))
            .bind(&query.product)
            .bind(query.test)
            .bind(&query.after)
            .bind(limit)
            .fetch_all(p)
            .await?);
        rows.into_iter().map(Instance::try_from).collect()
    }

    /// How many instances (real and debug) exist for an order line; more than one would be a bug.
    pub async fn count_instances_for_order(
        &self,
        order_id: &str,
        order_line_id: &str,
    ) -> Result<i64, StoreError> {
        const SQL: &str = "SELECT COUNT(*) FROM instances WHERE order_id = $1 AND order_line_id = $2";
        let count: i64 = on_pool!(self, read, p => sqlx::query_scalar(SQL).bind(order_id).bind(order_line_id).fetch_one(p).await?);
        Ok(count)
    }

    /// Audit-log entries, newest first.
    pub async fn callbacks(&self, query: &CallbackQuery) -> Result<Vec<CallbackRecord>, StoreError> {
        const SQL: &str = "SELECT id, received_at_ms, interface, activity, instance_id, order_id, test, \
            raw_query, raw_body, verification, nonce, result_code, result_msg, response_body, latency_us \
            FROM callbacks WHERE ($1 IS NULL OR instance_id = $1) ORDER BY id DESC LIMIT $2";
        let limit = if query.limit > 0 { query.limit } else { 100 };
        let rows = on_pool!(self, read, p => sqlx::query_as(SQL)
            .bind(&query.instance_id)
            .bind(limit)
            .fetch_all(p)
            .await?);
        Ok(rows)
    }

    /// Writes an audit-log entry on its own, for calls refused before any state was touched.
    pub async fn record_callback(&self, record: &CallbackRecord) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        tx.log_callback(record.clone());
        tx.commit().await
    }

    /// Forgets nonces whose lifetime has passed.
    pub async fn delete_expired_nonces(&self, now_ms: i64) -> Result<u64, StoreError> {
        const SQL: &str = "DELETE FROM nonces WHERE expires_at_ms < $1";
        let rows =
            on_pool!(self, write, p => sqlx::query(SQL).bind(now_ms).execute(p).await?.rows_affected());
        Ok(rows)
    }
}
