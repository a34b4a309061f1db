//! The metering ledger: usage events counted once (unique event id), summed exactly into one record per
//! instance, window and package, records sealed when their window ends and carried to KooGallery in
//! pushes whose exact body is stored before the first attempt.

use crate::backend::Store;
use crate::error::StoreError;
use crate::tx::Tx;

/// An accepted usage event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageEvent {
    pub event_id: String,
    pub instance_id: String,
    pub package_instance_id: Option<String>,
    /// Units of 0.0001.
    pub units: i64,
    pub occurred_at_ms: i64,
    pub window_start_ms: i64,
    pub received_at_ms: i64,
}

/// One ledger record.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UsageLedgerRecord {
    pub id: i64,
    pub instance_id: String,
    /// Empty when no package is involved.
    pub package_instance_id: String,
    pub window_start_ms: i64,
    pub window_end_ms: i64,
    pub units: i64,
    pub metering_sn: String,
    /// `open`, `sealed`, `batched`, `pushed`, `rejected` or `expired`.
    pub state: String,
    pub push_id: Option<i64>,
    pub reject_code: Option<String>,
    pub reject_message: Option<String>,
    pub updated_at_ms: i64,
}

const RECORD_COLUMNS: &str =
    "id, instance_id, package_instance_id, window_start_ms, window_end_ms, units, metering_sn, \
    state, push_id, reject_code, reject_message, updated_at_ms";

/// A stored push.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UsagePush {
    pub id: i64,
    pub api: String,
    pub body: String,
    pub record_count: i64,
    /// `pending`, `accepted` or `rejected`.
    pub state: String,
    pub result_code: Option<String>,
    pub result_message: Option<String>,
}

/// Where a package stands.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PackageUsage {
    pub package_instance_id: String,
    pub used_units: i64,
    pub quota_units: i64,
    pub exhausted_at_ms: Option<i64>,
}

/// Rows per multi-row insert, well under both backends' parameter limits.
const INSERT_CHUNK: usize = 500;

/// What `queryInstance` reports about usage: see [`Tx::usage_overview`].
#[derive(Debug, Default)]
pub struct UsageOverview {
    /// Total units per instance that has usage records.
    pub totals: std::collections::HashMap<String, i64>,
    /// Package instances whose quota was consumed.
    pub packages: std::collections::HashSet<String>,
}

impl Tx {
    /// Inserts the events whose ids are new and returns those ids; ids seen before are left alone.
    pub async fn insert_usage_events(&mut self, events: &[UsageEvent]) -> Result<Vec<String>, StoreError> {
        let mut inserted = Vec::with_capacity(events.len());
        for chunk in events.chunks(INSERT_CHUNK) {
            let ids: Vec<String> = on_conn!(self, c => {
                let mut query = sqlx::QueryBuilder::new(
                    "INSERT INTO usage_events (event_id, instance_id, package_instance_id, units, occurred_at_ms, \
                     window_start_ms, received_at_ms) ",
                );
                query.push_values(chunk, |mut row, e| {
                    row.push_bind(&e.event_id)
                        .push_bind(&e.instance_id)
                        .push_bind(&e.package_instance_id)
                        .push_bind(e.units)
                        .push_bind(e.occurred_at_ms)
                        .push_bind(e.window_start_ms)
                        .push_bind(e.received_at_ms);
                });
                query.push(" ON CONFLICT DO NOTHING RETURNING event_id");
                query.build_query_scalar().fetch_all(c).await?
            });
            inserted.extend(ids);
        }
        Ok(inserted)
    }

    /// Adds units to the open record of (instance, window), creating it; `false` when that record is
    /// already sealed (its window was pushed or is being pushed) or belongs to another package — either
    /// way the units must go to a later window.
    #[allow(clippy::too_many_arguments)]
    pub async fn add_to_usage_record(
        &mut self,
        instance_id: &str,
        package_instance_id: &str,
        window_start_ms: i64,
        window_end_ms: i64,
        units: i64,
        metering_sn: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        const SQL: &str =
            "INSERT INTO usage_records (instance_id, package_instance_id, window_start_ms, window_end_ms, \
            units, metering_sn, state, updated_at_ms) VALUES ($1, $2, $3, $4, $5, $6, 'open', $7) \
            ON CONFLICT (instance_id, window_start_ms) DO UPDATE \
            SET units = usage_records.units + excluded.units, updated_at_ms = excluded.updated_at_ms \
            WHERE usage_records.state = 'open' AND usage_records.package_instance_id = excluded.package_instance_id \
            RETURNING id";
        let id: Option<i64> = on_conn!(self, c => sqlx::query_scalar(SQL)
            .bind(instance_id)
            .bind(package_instance_id)
            .bind(window_start_ms)
            .bind(window_end_ms)
            .bind(units)
            .bind(metering_sn)
            .bind(now_ms)
            .fetch_optional(c)
            .await?);
        Ok(id.is_some())
    }

    /// Takes back an event inserted in this transaction (refused after all, e.g. over its package quota).
    pub async fn delete_usage_event(&mut self, event_id: &str) -> Result<(), StoreError> {
        const SQL: &str = "DELETE FROM usage_events WHERE event_id = $1";
        on_conn!(self, c => sqlx::query(SQL).bind(event_id).execute(c).await.map(|_| ())?);
        Ok(())
    }

    /// Records that events were counted in a later window than their own.
    pub async fn move_usage_events(
        &mut self,
        event_ids: &[String],
        window_start_ms: i64,
    ) -> Result<(), StoreError> {
        for chunk in event_ids.chunks(INSERT_CHUNK) {
            on_conn!(self, c => {
                let mut query = sqlx::QueryBuilder::new("UPDATE usage_events SET window_start_ms = ");
                query.push_bind(window_start_ms).push(" WHERE event_id IN (");
                let mut list = query.separated(", ");
                for id in chunk {
                    list.push_bind(id);
                }
                query.push(")");
                query.build().execute(c).await.map(|_| ())?
            });
        }
        Ok(())
    }

    /// Consumes `units` of a package's quota if enough is left; returns the units used afterwards, or
    /// `None` when the quota would be exceeded (nothing is consumed then).
    pub async fn consume_package(
        &mut self,
        package_instance_id: &str,
        units: i64,
        quota_units: i64,
    ) -> Result<Option<i64>, StoreError> {
        const CREATE: &str =
            "INSERT INTO package_usage (package_instance_id, used_units, quota_units) VALUES ($1, 0, $2) \
            ON CONFLICT DO NOTHING";
        const CONSUME: &str = "UPDATE package_usage SET used_units = used_units + $2, quota_units = $3 \
            WHERE package_instance_id = $1 AND used_units + $2 <= $3 RETURNING used_units";
        on_conn!(self, c => sqlx::query(CREATE).bind(package_instance_id).bind(quota_units).execute(c).await.map(|_| ())?);
        let used: Option<i64> = on_conn!(self, c => sqlx::query_scalar(CONSUME)
            .bind(package_instance_id)
            .bind(units)
            .bind(quota_units)
            .fetch_optional(c)
            .await?);
        Ok(used)
    }

    /// Marks a package exhausted; `true` only the first time.
    pub async fn mark_package_exhausted(
        &mut self,
        package_instance_id: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE package_usage SET exhausted_at_ms = $2 WHERE package_instance_id = $1 AND exhausted_at_ms IS NULL";
        let rows = on_conn!(self, c => sqlx::query(SQL).bind(package_instance_id).bind(now_ms).execute(c).await?.rows_affected());
        Ok(rows == 1)
    }

    /// Takes up to `limit` sealed records, oldest first, for a push (locked against other replicas).
    pub async fn sealed_usage_records(&mut self, limit: i64) -> Result<Vec<UsageLedgerRecord>, StoreError> {
        let lock = match self.inner {
            crate::tx::TxInner::Sqlite(_) => "",
            crate::tx::TxInner::Postgres(_) => "FOR UPDATE SKIP LOCKED",
        };
        let sql = format!(
            "SELECT {RECORD_COLUMNS} FROM usage_records WHERE state = 'sealed' ORDER BY id LIMIT $1 {lock}"
        );
        let rows = on_conn!(self, c => sqlx::query_as(&sql).bind(limit).fetch_all(c).await?);
        Ok(rows)
    }

    /// Stores a push with its exact body and attaches its records to it.
    pub async fn create_usage_push(
        &mut self,
        api: &str,
        body: &str,
        record_ids: &[i64],
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        const SQL: &str = "INSERT INTO usage_pushes (api, body, record_count, state, created_at_ms) \
            VALUES ($1, $2, $3, 'pending', $4) RETURNING id";
        let push_id: i64 = on_conn!(self, c => sqlx::query_scalar(SQL)
            .bind(api)
            .bind(body)
            .bind(record_ids.len() as i64)
            .bind(now_ms)
            .fetch_one(c)
            .await?);
        for chunk in record_ids.chunks(INSERT_CHUNK) {
            on_conn!(self, c => {
                let mut query = sqlx::QueryBuilder::new("UPDATE usage_records SET state = 'batched', push_id = ");
                query.push_bind(push_id).push(", updated_at_ms = ").push_bind(now_ms).push(" WHERE id IN (");
                let mut list = query.separated(", ");
                for id in chunk {
                    list.push_bind(*id);
                }
                query.push(")");
                query.build().execute(c).await.map(|_| ())?
            });
        }
        Ok(push_id)
    }

    // Reads for queryInstance, made on the callback's own transaction: borrowing a second pooled
    // connection per call could exhaust the pool under load.

    /// For the instances among `ids`: the total units recorded against each (instances with usage
    /// only), and which are packages with recorded consumption. One statement, since `queryInstance`
    /// asks it on every call.
    pub async fn usage_overview(&mut self, ids: &[&str]) -> Result<UsageOverview, StoreError> {
        let mut overview = UsageOverview::default();
        if ids.is_empty() {
            return Ok(overview);
        }
        let rows: Vec<(String, i64, i64)> = on_conn!(self, c => {
            let mut query = sqlx::QueryBuilder::new(
                "SELECT instance_id, CAST(SUM(units) AS BIGINT), CAST(0 AS BIGINT) FROM usage_records \
                 WHERE instance_id IN (",
            );
            let mut list = query.separated(", ");
            for id in ids {
                list.push_bind(*id);
            }
            query.push(
                ") GROUP BY instance_id UNION ALL SELECT DISTINCT package_instance_id, CAST(0 AS BIGINT), \
                 CAST(1 AS BIGINT) FROM package_usage WHERE package_instance_id IN (",
            );
            let mut list = query.separated(", ");
            for id in ids {
                list.push_bind(*id);
            }
            query.push(")");
            query.build_query_as().fetch_all(c).await?
        });
        for (id, units, package) in rows {
            if package == 1 {
                overview.packages.insert(id);
            } else {
                overview.totals.insert(id, units);
            }
        }
        Ok(overview)
    }

    /// The pay-per-use instances a package's usage was recorded against, with the units used on each.
    pub async fn package_consumers(
        &mut self,
        package_instance_id: &str,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        const SQL: &str = "SELECT instance_id, CAST(SUM(units) AS BIGINT) FROM usage_records \
            WHERE package_instance_id = $1 GROUP BY instance_id ORDER BY instance_id";
        let rows = on_conn!(self, c => sqlx::query_as(SQL).bind(package_instance_id).fetch_all(c).await?);
        Ok(rows)
    }
}

impl Store {
    /// Seals the open records whose window has ended; they change no more.
    pub async fn seal_usage_windows(&self, now_ms: i64) -> Result<u64, StoreError> {
        const SQL: &str = "UPDATE usage_records SET state = 'sealed', updated_at_ms = $1 WHERE state = 'open' AND window_end_ms <= $1";
        let rows =
            on_pool!(self, write, p => sqlx::query(SQL).bind(now_ms).execute(p).await?.rows_affected());
        Ok(rows)
    }

    /// Marks sealed records that began before `oldest_ms` as expired: KooGallery refuses them, so they
    /// are never attempted.
    pub async fn expire_usage_records(&self, oldest_ms: i64, now_ms: i64) -> Result<u64, StoreError> {
        const SQL: &str = "UPDATE usage_records SET state = 'expired', updated_at_ms = $2 \
            WHERE state = 'sealed' AND window_start_ms < $1";
        let rows = on_pool!(self, write, p => sqlx::query(SQL).bind(oldest_ms).bind(now_ms).execute(p).await?.rows_affected());
        Ok(rows)
    }

    pub async fn usage_push(&self, id: i64) -> Result<Option<UsagePush>, StoreError> {
        const SQL: &str = "SELECT id, api, body, record_count, state, result_code, result_message FROM usage_pushes WHERE id = $1";
        let push = on_pool!(self, read, p => sqlx::query_as(SQL).bind(id).fetch_optional(p).await?);
        Ok(push)
    }

    /// Settles a push and its records: `accepted` (records `pushed`) or `rejected` (records `rejected`
    /// with the code). Only a pending push is settled.
    pub async fn settle_usage_push(
        &self,
        id: i64,
        accepted: bool,
        code: Option<&str>,
        message: Option<&str>,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        const PUSH: &str =
            "UPDATE usage_pushes SET state = $2, result_code = $3, result_message = $4, settled_at_ms = $5 \
            WHERE id = $1 AND state = 'pending'";
        const RECORDS: &str =
            "UPDATE usage_records SET state = $2, reject_code = $3, reject_message = $4, updated_at_ms = $5 \
            WHERE push_id = $1";
        let (push_state, record_state) =
            if accepted { ("accepted", "pushed") } else { ("rejected", "rejected") };
        let (code, message) = if accepted { (None, None) } else { (code, message) };
        let mut tx = self.begin().await?;
        let rows = on_conn!(tx, c => sqlx::query(PUSH).bind(id).bind(push_state).bind(code).bind(message).bind(now_ms)
            .execute(&mut *c).await?.rows_affected());
        if rows == 1 {
            on_conn!(tx, c => sqlx::query(RECORDS).bind(id).bind(record_state).bind(code).bind(message).bind(now_ms)
                .execute(c).await.map(|_| ())?);
        }
        tx.commit().await?;
        Ok(rows == 1)
    }

    /// Ledger records, by instance when given, newest window first.
    pub async fn usage_records(
        &self,
        instance_id: Option<&str>,
        state: Option<&str>,
    ) -> Result<Vec<UsageLedgerRecord>, StoreError> {
        let sql = format!(
            "SELECT {RECORD_COLUMNS} FROM usage_records WHERE ($1 IS NULL OR instance_id = $1) AND ($2 IS NULL OR state = $2) \
             ORDER BY window_start_ms DESC, id DESC"
        );
        let rows =
            on_pool!(self, read, p => sqlx::query_as(&sql).bind(instance_id).bind(state).fetch_all(p).await?);
        Ok(rows)
    }

    pub async fn package_usage(&self, package_instance_id: &str) -> Result<Option<PackageUsage>, StoreError> {
        const SQL: &str =
            "SELECT package_instance_id, used_units, quota_units, exhausted_at_ms FROM package_usage \
            WHERE package_instance_id = $1";
        let row =
            on_pool!(self, read, p => sqlx::query_as(SQL).bind(package_instance_id).fetch_optional(p).await?);
        Ok(row)
    }
}
