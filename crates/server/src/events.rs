//! Lifecycle events for the merchant's app: their types, the facts each carries, and the body sent.
//!
//! An event is written to the outbox in the transaction of the change it describes. Its body is built at
//! the first delivery attempt — so it can carry the order details fetched by then — and then fixed, so
//! every retry and replay sends the same bytes under the same `webhook-id`.

use koogate_protocol::datetime::format_compact_utc_millis;
use koogate_store::{NewEvent, OrderRecord, Tx};
use rand::Rng;
use serde::Serialize;
use serde_json::{json, Map, Value};

/// The events koogate sends. The names are the wire `type` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub enum EventType {
    #[serde(rename = "instance.created")]
    Created,
    #[serde(rename = "instance.renewed")]
    Renewed,
    #[serde(rename = "instance.frozen")]
    Frozen,
    #[serde(rename = "instance.unfrozen")]
    Unfrozen,
    #[serde(rename = "instance.upgraded")]
    Upgraded,
    #[serde(rename = "instance.released")]
    Released,
    #[serde(rename = "instance.purged")]
    Purged,
    /// A use-until-stop package's quota is used up (its id is the event's `instance_id`).
    #[serde(rename = "package.exhausted")]
    PackageExhausted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Created => "instance.created",
            EventType::Renewed => "instance.renewed",
            EventType::Frozen => "instance.frozen",
            EventType::Unfrozen => "instance.unfrozen",
            EventType::Upgraded => "instance.upgraded",
            EventType::Released => "instance.released",
            EventType::Purged => "instance.purged",
            EventType::PackageExhausted => "package.exhausted",
        }
    }
}

/// Writes an event for `instance_id` in `tx`. `facts` must be a JSON object; `instance_id` and `test`
/// are added to it.
pub async fn emit(
    tx: &mut Tx,
    event_type: EventType,
    instance_id: &str,
    test: bool,
    facts: Value,
    now_ms: i64,
) -> Result<String, koogate_store::StoreError> {
    let event_id = new_event_id();
    let mut data = match facts {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    data.insert("instance_id".into(), instance_id.into());
    data.insert("test".into(), test.into());
    tx.enqueue_event(&NewEvent {
        event_id: event_id.clone(),
        event_type: event_type.as_str().into(),
        instance_id: instance_id.into(),
        test,
        data: Value::Object(data).to_string(),
        now_ms,
    })
    .await?;
    Ok(event_id)
}

/// `msg_` and 32 random hex digits (Standard Webhooks recommends a prefixed, unique id).
fn new_event_id() -> String {
    let bytes: [u8; 16] = rand::thread_rng().gen();
    format!("msg_{}", hex::encode(bytes))
}

/// The body of an event: `{"type", "timestamp", "data"}` with the latest order details, when known, as
/// `data.order`.
pub fn body(event_type: &str, created_at_ms: i64, data: &str, order: Option<&OrderRecord>) -> String {
    let mut data: Value = serde_json::from_str(data).unwrap_or_else(|_| json!({}));
    if let (Some(order), Some(map)) = (order, data.as_object_mut()) {
        map.insert("order".into(), order_json(order));
    }
    json!({
        "type": event_type,
        "timestamp": rfc3339(created_at_ms),
        "data": data,
    })
    .to_string()
}

/// The order details as the app sees them (also used by the entitlement API).
pub fn order_json(order: &OrderRecord) -> Value {
    let parse = |text: &Option<String>| text.as_deref().and_then(|t| serde_json::from_str::<Value>(t).ok());
    json!({
        "order_id": order.order_id,
        "order_line_id": order.order_line_id,
        "order_type": order.order_type,
        "charging_mode": order.charging_mode,
        "product_id": order.product_id,
        "sku_code": order.sku_code,
        "product_name": order.product_name,
        "linear_value": order.linear_value,
        "period_type": order.period_type,
        "period_number": order.period_number,
        "expire_time": order.expire_time_ms.map(rfc3339),
        "amount": order.amount,
        "amount_after_discount": order.amount_after_discount,
        "buyer": parse(&order.buyer_json),
        "extend_params": parse(&Some(order.extend_params_json.clone())),
    })
}

/// UNIX milliseconds as RFC 3339 UTC with milliseconds (`2026-12-04T10:11:12.345Z`).
pub fn rfc3339(unix_ms: i64) -> String {
    let compact = format_compact_utc_millis(unix_ms);
    format!(
        "{}-{}-{}T{}:{}:{}.{}Z",
        &compact[0..4],
        &compact[4..6],
        &compact[6..8],
        &compact[8..10],
        &compact[10..12],
        &compact[12..14],
        &compact[14..17]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_carry_type_timestamp_data_and_the_order_when_known() {
        let body: Value =
            serde_json::from_str(&body("instance.frozen", 1_669_257_378_256, r#"{"instance_id":"i"}"#, None))
                .unwrap();
        assert_eq!(
            body,
            json!({"type": "instance.frozen", "timestamp": "2022-11-24T02:36:18.256Z", "data": {"instance_id": "i"}})
        );
    }

    #[test]
    fn event_ids_are_prefixed_and_unique() {
        let (a, b) = (new_event_id(), new_event_id());
        assert!(a.starts_with("msg_") && a.len() == 36 && a != b);
    }
}
