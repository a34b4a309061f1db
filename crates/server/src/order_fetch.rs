//! Fetching what a customer bought: after a real `newInstance`, `upgradeInstance` or a
//! `RENEWAL_CHANGE` refresh, a job calls Query Order and stores the order line with the instance.
//! The callback never waits for it; failures are retried by the job queue with backoff.

use koogate_protocol::datetime::parse_compact_utc;
use koogate_protocol::ids::{InstanceId, OrderId, OrderLineId};
use koogate_protocol::open_api::{OrderInfo, OrderLine, Outcome};
use koogate_store::{Job, NewJob, OrderRecord, Store};
use serde::{Deserialize, Serialize};

use crate::jobs::{JobFailure, JobHandler};
use crate::marketplace::MarketplaceClient;

pub const FETCH_ORDER: &str = "fetch_order";

/// Why an order is fetched, stored with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FetchReason {
    New,
    Upgrade,
    RenewalChange,
}

impl FetchReason {
    fn as_str(self) -> &'static str {
        match self {
            FetchReason::New => "new",
            FetchReason::Upgrade => "upgrade",
            FetchReason::RenewalChange => "renewal_change",
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct FetchPayload {
    instance_id: String,
    order_id: String,
    order_line_id: String,
    reason: FetchReason,
}

/// The job for one order line; enqueueing the same line twice keeps one job.
pub fn fetch_order_job(
    instance_id: &InstanceId,
    order_id: &OrderId,
    order_line_id: &OrderLineId,
    reason: FetchReason,
    now_ms: i64,
) -> NewJob {
    let payload = FetchPayload {
        instance_id: instance_id.to_string(),
        order_id: order_id.to_string(),
        order_line_id: order_line_id.to_string(),
        reason,
    };
    NewJob {
        kind: FETCH_ORDER.into(),
        dedupe_key: Some(format!("{order_id}/{order_line_id}")),
        payload: serde_json::to_string(&payload).expect("the payload is plain data"),
        run_at_ms: now_ms,
        now_ms,
    }
}

pub struct OrderFetchHandler {
    pub store: Store,
    pub client: MarketplaceClient,
}

#[async_trait::async_trait]
impl JobHandler for OrderFetchHandler {
    fn kind(&self) -> &'static str {
        FETCH_ORDER
    }

    async fn run(&self, job: &Job, now_ms: i64) -> Result<(), JobFailure> {
        let payload: FetchPayload = serde_json::from_str(&job.payload)
            .map_err(|e| JobFailure::permanent(format!("bad payload: {e}")))?;
        let order = self.client.query_order(&payload.order_id, Some(&payload.order_line_id)).await.map_err(
            |error| {
                let message = error.to_string();
                match error.outcome() {
                    Outcome::Retry | Outcome::Success => JobFailure::transient(message),
                    // Five authentication failures lock the AK for five minutes: one retry, no more.
                    Outcome::AuthFailure if job.attempts < 2 => JobFailure::transient(message),
                    Outcome::AuthFailure | Outcome::Fail => JobFailure::permanent(message),
                }
            },
        )?;
        let line = order.line(&payload.order_line_id).ok_or_else(|| {
            JobFailure::permanent(format!("the order has no line {}", payload.order_line_id))
        })?;
        let record = order_record(&payload, &order, line, now_ms);
        self.store.save_order(&record).await?;
        tracing::info!(instance_id = %payload.instance_id, order_id = %payload.order_id,
            sku_code = record.sku_code.as_deref().unwrap_or(""), "order details stored");
        Ok(())
    }
}

fn order_record(payload: &FetchPayload, order: &OrderInfo, line: &OrderLine, now_ms: i64) -> OrderRecord {
    let product = line.product_info.first();
    OrderRecord {
        order_id: payload.order_id.clone(),
        order_line_id: payload.order_line_id.clone(),
        instance_id: payload.instance_id.clone(),
        reason: payload.reason.as_str().into(),
        order_type: order.order_type.clone(),
        create_time_ms: order.create_time.as_deref().and_then(|t| parse_compact_utc(t).ok()),
        charging_mode: line.charging_mode.clone(),
        product_id: product.and_then(|p| p.product_id.clone()),
        sku_code: product.and_then(|p| p.sku_code.clone()),
        product_name: product.and_then(|p| p.product_name.clone()),
        linear_value: product.and_then(|p| p.linear_value),
        period_type: line.period_type.clone(),
        period_number: line.period_number,
        expire_time_ms: line.expire_time.as_deref().and_then(|t| parse_compact_utc(t).ok()),
        amount: line.currency.clone(),
        amount_after_discount: line.currency_after_discount.clone(),
        customer_id: order.buyer_info.as_ref().and_then(|b| b.customer_id.clone()),
        buyer_json: order.buyer_info.as_ref().map(to_json),
        extend_params_json: to_json(
            &[order.extend_params.as_slice(), line.extend_params.as_slice()].concat(),
        ),
        raw_json: to_json(order),
        fetched_at_ms: now_ms,
    }
}

fn to_json<T: Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).expect("order data serialises")
}
