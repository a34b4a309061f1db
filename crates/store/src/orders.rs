//! Order details fetched from KooGallery's Query Order, kept per order line and copied onto the
//! instance they describe.

use crate::backend::Store;
use crate::error::StoreError;

/// One fetched order line, flattened for querying, with the full answer kept as JSON.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OrderRecord {
    pub order_id: String,
    pub order_line_id: String,
    pub instance_id: String,
    /// `new`, `upgrade` or `renewal_change`.
    pub reason: String,
    pub order_type: Option<String>,
    /// When the order was placed (Query Order's `createTime`).
    pub create_time_ms: Option<i64>,
    pub charging_mode: Option<String>,
    pub product_id: Option<String>,
    pub sku_code: Option<String>,
    pub product_name: Option<String>,
    pub linear_value: Option<i64>,
    pub period_type: Option<String>,
    pub period_number: Option<i64>,
    pub expire_time_ms: Option<i64>,
    pub amount: Option<String>,
    pub amount_after_discount: Option<String>,
    pub customer_id: Option<String>,
    pub buyer_json: Option<String>,
    pub extend_params_json: String,
    pub raw_json: String,
    pub fetched_at_ms: i64,
}

const ORDER_COLUMNS: &str = "order_id, order_line_id, instance_id, reason, order_type, create_time_ms, charging_mode, product_id, \
    sku_code, product_name, linear_value, period_type, period_number, expire_time_ms, amount, amount_after_discount, \
    customer_id, buyer_json, extend_params_json, raw_json, fetched_at_ms";

impl Store {
    /// Stores (or refreshes) an order line and makes its specification the instance's current one. A
    /// fetched expiry fills the instance's expiry only while no refresh callback has set one.
    pub async fn save_order(&self, order: &OrderRecord) -> Result<(), StoreError> {
        let upsert = format!(
            "INSERT INTO orders ({ORDER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
             $14, $15, $16, $17, $18, $19, $20, $21) ON CONFLICT (order_id, order_line_id) DO UPDATE SET \
             order_type = excluded.order_type, create_time_ms = excluded.create_time_ms, charging_mode = excluded.charging_mode, product_id = excluded.product_id, \
             sku_code = excluded.sku_code, product_name = excluded.product_name, linear_value = excluded.linear_value, \
             period_type = excluded.period_type, period_number = excluded.period_number, \
             expire_time_ms = excluded.expire_time_ms, amount = excluded.amount, \
             amount_after_discount = excluded.amount_after_discount, customer_id = excluded.customer_id, \
             buyer_json = excluded.buyer_json, extend_params_json = excluded.extend_params_json, \
             raw_json = excluded.raw_json, fetched_at_ms = excluded.fetched_at_ms"
        );
        // Only an order at least as new as every order already stored for the instance sets its
        // specification: a retried fetch of the original purchase must not undo an upgrade.
        const INSTANCE: &str = "UPDATE instances SET product_id = COALESCE($2, product_id), \
            sku_code = COALESCE($3, sku_code), charging_mode = COALESCE($4, charging_mode), \
            linear_value = COALESCE($5, linear_value), expire_time_ms = COALESCE(expire_time_ms, $6), \
            updated_at_ms = $7 WHERE instance_id = $1 AND NOT EXISTS (SELECT 1 FROM orders o \
            WHERE o.instance_id = $1 AND o.create_time_ms > COALESCE($8, 0))";
        let mut tx = self.begin().await?;
        on_conn!(tx, c => {
            sqlx::query(&upsert)
                .bind(&order.order_id)
                .bind(&order.order_line_id)
                .bind(&order.instance_id)
                .bind(&order.reason)
                .bind(&order.order_type)
                .bind(order.create_time_ms)
                .bind(&order.charging_mode)
                .bind(&order.product_id)
                .bind(&order.sku_code)
                .bind(&order.product_name)
                .bind(order.linear_value)
                .bind(&order.period_type)
                .bind(order.period_number)
                .bind(order.expire_time_ms)
                .bind(&order.amount)
                .bind(&order.amount_after_discount)
                .bind(&order.customer_id)
                .bind(&order.buyer_json)
                .bind(&order.extend_params_json)
                .bind(&order.raw_json)
                .bind(order.fetched_at_ms)
                .execute(&mut *c)
                .await?;
            sqlx::query(INSTANCE)
                .bind(&order.instance_id)
                .bind(&order.product_id)
                .bind(&order.sku_code)
                .bind(&order.charging_mode)
                .bind(order.linear_value)
                .bind(order.expire_time_ms)
                .bind(order.fetched_at_ms)
                .bind(order.create_time_ms)
                .execute(c)
                .await?;
        });
        tx.commit().await
    }

    /// The fetched orders of an instance, oldest first (by when they were placed).
    pub async fn orders_for_instance(&self, instance_id: &str) -> Result<Vec<OrderRecord>, StoreError> {
        let sql = format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE instance_id = $1 \
             ORDER BY COALESCE(create_time_ms, 0), fetched_at_ms, order_id"
        );
        let rows = on_pool!(self, read, p => sqlx::query_as(&sql).bind(instance_id).fetch_all(p).await?);
        Ok(rows)
    }
}
