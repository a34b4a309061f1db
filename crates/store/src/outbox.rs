//! The outbox: events for the merchant's app, written in the transaction of the change they describe,
//! claimed with a lease and delivered in order per instance (an event is due only when no earlier event
//! of its instance is still pending). Failed deliveries are retried, then end `dead`, and can be replayed.

use crate::backend::{Pools, Store};
use crate::error::StoreError;
use crate::tx::Tx;

/// One event and its delivery state.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Delivery {
    pub id: i64,
    pub event_id: String,
    pub event_type: String,
    pub instance_id: String,
    pub test: bool,
    pub data: String,
    pub body: Option<String>,
    /// `pending`, `delivered` or `dead`.
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at_ms: i64,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub created_at_ms: i64,
    pub delivered_at_ms: Option<i64>,
}

const DELIVERY_COLUMNS: &str = "id, event_id, event_type, instance_id, test, data, body, state, attempts, \
    next_attempt_at_ms, last_status, last_error, created_at_ms, delivered_at_ms";

/// An event to write.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub event_id: String,
    pub event_type: String,
    pub instance_id: String,
    pub test: bool,
    pub data: String,
    pub now_ms: i64,
}

/// Which deliveries to list: newest first, `before_id` for the next page.
#[derive(Debug, Clone, Default)]
pub struct DeliveryQuery {
    pub state: Option<String>,
    pub instance_id: Option<String>,
    pub before_id: Option<i64>,
    pub limit: i64,
}

// Due, unleased, and the oldest pending event of its instance.
const DUE: &str = "o.state = 'pending' AND o.next_attempt_at_ms <= $2 \
    AND (o.lease_until_ms IS NULL OR o.lease_until_ms <= $2) \
    AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.instance_id = o.instance_id AND p.state = 'pending' AND p.id < o.id)";

impl Tx {
    pub async fn enqueue_event(&mut self, event: &NewEvent) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO outbox (event_id, event_type, instance_id, test, data, state, \
            next_attempt_at_ms, created_at_ms, updated_at_ms) VALUES ($1, $2, $3, $4, $5, 'pending', $6, $6, $6)";
        on_conn!(self, c => sqlx::query(SQL)
            .bind(&event.event_id)
            .bind(&event.event_type)
            .bind(&event.instance_id)
            .bind(event.test)
            .bind(&event.data)
            .bind(event.now_ms)
            .execute(c)
            .await
            .map(|_| ())?);
        Ok(())
    }
}

impl Store {
    /// Writes an event outside a callback (for example from a background job).
    pub async fn enqueue_event(&self, event: &NewEvent) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        tx.enqueue_event(event).await?;
        tx.commit().await
    }

    /// Leases the next deliverable event to `owner` until `now_ms + lease_ms`.
    pub async fn claim_delivery(
        &self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Option<Delivery>, StoreError> {
        let lease_until = now_ms.saturating_add(lease_ms);
        let lock = match self.pools {
            Pools::Sqlite { .. } => "",
            Pools::Postgres(_) => "FOR UPDATE SKIP LOCKED",
        };
        let sql = format!(
            "UPDATE outbox SET lease_owner = $1, lease_until_ms = $3, updated_at_ms = $2 WHERE id = \
             (SELECT o.id FROM outbox o WHERE {DUE} ORDER BY o.next_attempt_at_ms, o.id LIMIT 1 {lock}) \
             RETURNING {DELIVERY_COLUMNS}"
        );
        let delivery = on_pool!(self, write, p => sqlx::query_as(&sql)
            .bind(owner)
            .bind(now_ms)
            .bind(lease_until)
            .fetch_optional(p)
            .await?);
        Ok(delivery)
    }

    /// Fixes the body of a claimed event at its first attempt; later attempts send the same bytes.
    pub async fn freeze_delivery_body(&self, id: i64, owner: &str, body: &str) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE outbox SET body = $3 WHERE id = $1 AND lease_owner = $2 AND body IS NULL";
        let rows = on_pool!(self, write, p => sqlx::query(SQL).bind(id).bind(owner).bind(body).execute(p).await?.rows_affected());
        Ok(rows == 1)
    }

    /// Records an attempt's result: `state` is `delivered`, `pending` (retry at `next_attempt_at_ms`)
    /// or `dead`. Only the lease holder may settle.
    #[allow(clippy::too_many_arguments)]
    pub async fn settle_delivery(
        &self,
        id: i64,
        owner: &str,
        state: &str,
        next_attempt_at_ms: Option<i64>,
        status: Option<i32>,
        error: Option<&str>,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE outbox SET state = $3, attempts = attempts + 1, \
            next_attempt_at_ms = COALESCE($4, next_attempt_at_ms), last_status = $5, last_error = $6, \
            delivered_at_ms = CASE WHEN $3 = 'delivered' THEN $7 ELSE delivered_at_ms END, \
            lease_owner = NULL, lease_until_ms = NULL, updated_at_ms = $7 WHERE id = $1 AND lease_owner = $2";
        let rows = on_pool!(self, write, p => sqlx::query(SQL)
            .bind(id)
            .bind(owner)
            .bind(state)
            .bind(next_attempt_at_ms)
            .bind(status)
            .bind(error)
            .bind(now_ms)
            .execute(p)
            .await?
            .rows_affected());
        Ok(rows == 1)
    }

    /// Gives a claimed event back without counting an attempt, to be tried again at `next_attempt_at_ms`
    /// (used while `instance.created` waits for the order details).
    pub async fn postpone_delivery(
        &self,
        id: i64,
        owner: &str,
        next_attempt_at_ms: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        const SQL: &str =
            "UPDATE outbox SET next_attempt_at_ms = $3, lease_owner = NULL, lease_until_ms = NULL, \
            updated_at_ms = $4 WHERE id = $1 AND lease_owner = $2";
        let rows = on_pool!(self, write, p => sqlx::query(SQL).bind(id).bind(owner).bind(next_attempt_at_ms).bind(now_ms).execute(p).await?.rows_affected());
        Ok(rows == 1)
    }

    /// Puts a dead (or delivered) event back in the queue, due now, with a fresh attempt budget. The
    /// event keeps its id and body. `false` if there is no such event or it is still pending.
    pub async fn replay_delivery(&self, event_id: &str, now_ms: i64) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at_ms = $2, \
            lease_owner = NULL, lease_until_ms = NULL, updated_at_ms = $2 WHERE event_id = $1 AND state <> 'pending'";
        let rows = on_pool!(self, write, p => sqlx::query(SQL).bind(event_id).bind(now_ms).execute(p).await?.rows_affected());
        Ok(rows == 1)
    }

    pub async fn delivery(&self, event_id: &str) -> Result<Option<Delivery>, StoreError> {
        let sql = format!("SELECT {DELIVERY_COLUMNS} FROM outbox WHERE event_id = $1");
        let delivery =
            on_pool!(self, read, p => sqlx::query_as(&sql).bind(event_id).fetch_optional(p).await?);
        Ok(delivery)
    }

    /// Deliveries, newest first.
    pub async fn deliveries(&self, query: &DeliveryQuery) -> Result<Vec<Delivery>, StoreError> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM outbox WHERE ($1 IS NULL OR state = $1) AND ($2 IS NULL OR instance_id = $2) \
             AND ($3 IS NULL OR id < $3) ORDER BY id DESC LIMIT $4"
        );
        let limit = if query.limit > 0 { query.limit } else { 100 };
        let rows = on_pool!(self, read, p => sqlx::query_as(&sql)
            .bind(&query.state)
            .bind(&query.instance_id)
            .bind(query.before_id)
            .bind(limit)
            .fetch_all(p)
            .await?);
        Ok(rows)
    }
}
