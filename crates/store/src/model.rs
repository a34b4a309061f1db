//! The records the store keeps, as the rest of koogate sees them.

use koogate_protocol::ids::{InstanceId, OrderId, OrderLineId};

use crate::error::StoreError;

/// Where an instance is in its life (spec §9.2 state machine).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InstanceStatus {
    /// Accepted; the merchant's app has not finished setting it up (`000004` answers).
    Provisioning,
    Active,
    Frozen,
    Released,
    /// Provisioning failed; a resent `newInstance` tries again.
    Failed,
    /// Released and past its retention: app data erased, the order → instance mapping kept so a late
    /// `newInstance` cannot create a second instance.
    Purged,
}

impl InstanceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceStatus::Provisioning => "provisioning",
            InstanceStatus::Active => "active",
            InstanceStatus::Frozen => "frozen",
            InstanceStatus::Released => "released",
            InstanceStatus::Failed => "failed",
            InstanceStatus::Purged => "purged",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            InstanceStatus::Provisioning,
            InstanceStatus::Active,
            InstanceStatus::Frozen,
            InstanceStatus::Released,
            InstanceStatus::Failed,
            InstanceStatus::Purged,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    /// Released or purged: gone from KooGallery's point of view.
    pub fn is_gone(self) -> bool {
        matches!(self, InstanceStatus::Released | InstanceStatus::Purged)
    }
}

/// The buyer-facing application details, with the password still encrypted.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredAppInfo {
    pub front_end_url: String,
    pub admin_url: Option<String>,
    pub user_name: Option<String>,
    /// Ciphertext produced by the server's credential cipher; the store never sees the plain text.
    pub password_enc: Option<Vec<u8>>,
    pub memo: Option<String>,
}

impl std::fmt::Debug for StoredAppInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredAppInfo")
            .field("front_end_url", &self.front_end_url)
            .field("admin_url", &self.admin_url)
            .field("user_name", &self.user_name)
            .field("password_enc", &self.password_enc.as_ref().map(|_| "[ENCRYPTED]"))
            .field("memo", &self.memo)
            .finish()
    }
}

/// One instance (one order line, or one debug order line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub instance_id: InstanceId,
    pub order_id: OrderId,
    pub order_line_id: OrderLineId,
    pub test: bool,
    pub status: InstanceStatus,
    pub expire_time_ms: Option<i64>,
    pub last_scene: Option<String>,
    pub product_id: Option<String>,
    /// From the latest fetched order (Query Order).
    pub sku_code: Option<String>,
    pub charging_mode: Option<String>,
    pub linear_value: Option<i64>,
    pub app_info: Option<StoredAppInfo>,
    pub provision_error: Option<String>,
    pub release_order_id: Option<String>,
    pub purge_after_ms: Option<i64>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// The row as stored; converted to [`Instance`] with its ids and status checked.
#[derive(sqlx::FromRow)]
pub(crate) struct InstanceRow {
    instance_id: String,
    order_id: String,
    order_line_id: String,
    test: bool,
    status: String,
    expire_time_ms: Option<i64>,
    last_scene: Option<String>,
    product_id: Option<String>,
    sku_code: Option<String>,
    charging_mode: Option<String>,
    linear_value: Option<i64>,
    front_end_url: Option<String>,
    admin_url: Option<String>,
    user_name: Option<String>,
    password_enc: Option<Vec<u8>>,
    memo: Option<String>,
    provision_error: Option<String>,
    release_order_id: Option<String>,
    purge_after_ms: Option<i64>,
    created_at_ms: i64,
    updated_at_ms: i64,
}

pub(crate) const INSTANCE_COLUMNS: &str = "instance_id, order_id, order_line_id, test, status, \
    expire_time_ms, last_scene, product_id, sku_code, charging_mode, linear_value, front_end_url, admin_url, user_name, password_enc, memo, \
    provision_error, release_order_id, purge_after_ms, created_at_ms, updated_at_ms";

impl TryFrom<InstanceRow> for Instance {
    type Error = StoreError;

    fn try_from(row: InstanceRow) -> Result<Self, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("instance {}: {what}", row.instance_id));
        let app_info = row.front_end_url.map(|front_end_url| StoredAppInfo {
            front_end_url,
            admin_url: row.admin_url,
            user_name: row.user_name,
            password_enc: row.password_enc,
            memo: row.memo,
        });
        Ok(Instance {
            instance_id: InstanceId::parse(&row.instance_id).map_err(|_| corrupt("bad instance id"))?,
            order_id: OrderId::parse(&row.order_id).map_err(|_| corrupt("bad order id"))?,
            order_line_id: OrderLineId::parse(&row.order_line_id)
                .map_err(|_| corrupt("bad order line id"))?,
            test: row.test,
            status: InstanceStatus::parse(&row.status).ok_or_else(|| corrupt("unknown status"))?,
            expire_time_ms: row.expire_time_ms,
            last_scene: row.last_scene,
            product_id: row.product_id,
            sku_code: row.sku_code,
            charging_mode: row.charging_mode,
            linear_value: row.linear_value,
            app_info,
            provision_error: row.provision_error,
            release_order_id: row.release_order_id,
            purge_after_ms: row.purge_after_ms,
            created_at_ms: row.created_at_ms,
            updated_at_ms: row.updated_at_ms,
        })
    }
}

/// A new instance to insert unless its order line already has one.
#[derive(Debug, Clone)]
pub struct NewInstanceRecord {
    pub instance_id: InstanceId,
    pub order_id: OrderId,
    pub order_line_id: OrderLineId,
    pub test: bool,
    pub now_ms: i64,
}

/// A change that arrived with an order and is applied at most once per key.
#[derive(Debug, Clone)]
pub struct Change {
    pub instance_id: InstanceId,
    /// `refresh`, `upgrade` or `release`.
    pub kind: &'static str,
    pub order_id: String,
    pub order_line_id: String,
    pub scene: String,
    pub expire_time_ms: Option<i64>,
    pub product_id: Option<String>,
    pub now_ms: i64,
}

/// One inbound call, as the audit log keeps it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CallbackRecord {
    /// Assigned by the database; ignored on insert.
    pub id: i64,
    pub received_at_ms: i64,
    /// Which surface was called (`saas_v2` for the basic interfaces).
    pub interface: String,
    pub activity: Option<String>,
    pub instance_id: Option<String>,
    pub order_id: Option<String>,
    pub test: bool,
    pub raw_query: String,
    pub raw_body: Vec<u8>,
    /// `raw`, `canonical`, or `refused: <reason>`.
    pub verification: String,
    pub nonce: Option<String>,
    pub result_code: String,
    pub result_msg: String,
    /// The exact bytes sent back.
    pub response_body: Vec<u8>,
    pub latency_us: i64,
}

/// Which audit-log entries to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct CallbackQuery {
    pub instance_id: Option<String>,
    pub limit: i64,
}

/// Which instances to list.
#[derive(Debug, Clone, Default)]
pub struct InstanceQuery {
    pub status: Option<InstanceStatus>,
    /// Matches the product id or the SKU code.
    pub product: Option<String>,
    pub test: Option<bool>,
    /// Continue after this instance id (cursor pagination).
    pub after: Option<String>,
    pub limit: i64,
}
