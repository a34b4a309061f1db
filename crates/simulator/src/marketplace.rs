//! A mock of KooGallery's Open API host: Query Order behind an API gateway that checks `SDK-HMAC-SHA256`
//! signatures with the protocol crate's verifier, the documented mock orders plus any a test registers,
//! a record of every request, and injectable faults.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use koogate_protocol::apig::{self, ApigRequest, Credentials};
use koogate_protocol::open_api::{OrderInfo, QueryOrderResponse, MAX_CLOCK_SKEW_MS, QUERY_ORDER_PATH};
use koogate_protocol::usage::{
    parse_quantity, verify_usage_signature, MAX_RECORDS_PER_PUSH, OLD_USAGE_PATH, USAGE_PATH,
};
use koogate_protocol::AccessKey;
use serde_json::json;

use crate::mock_orders::mock_orders;
use crate::sender::TimeSource;

/// A fault the mock serves instead of the next answer (one fault per request, in order).
#[derive(Debug, Clone)]
pub enum Fault {
    /// An HTTP status with no KooGallery body, as a broken proxy would answer.
    Status(u16),
    /// Answer only after this long (longer than the client's timeout: a timeout).
    Delay(Duration),
    /// An API gateway error, e.g. `(504, "APIGW.0105")` or `(429, "APIGW.0308")`.
    Gateway(u16, String),
    /// A KooGallery business error, e.g. `(500, "MKT.0999")` or `(400, "MKT.0100")`.
    Api(u16, String),
    /// Answer `APIGW.0301` as if the signature were wrong, whatever it was.
    RejectSignature,
}

/// One request the mock received, after the gateway check.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub host: Option<String>,
    pub authorization: Option<String>,
    /// The gateway's verdict on the signature (`Ok` or the reason it failed).
    pub signature: Result<(), String>,
}

/// A usage record the mock accepted (the first with its instance, begin and end time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedUsage {
    pub instance_id: String,
    pub begin_time: String,
    pub end_time: String,
    /// Units of 0.0001.
    pub units: i64,
    pub metering_sn: Option<String>,
    pub relate_pkg_instance: Option<String>,
}

#[derive(Default)]
struct UsageLedger {
    accepted: Vec<AcceptedUsage>,
    /// Later records with an accepted record's instance and period: ignored, as KooGallery does.
    duplicates: usize,
    /// Duplicates whose content differed from the accepted record — a metering bug if ever non-zero.
    conflicts: usize,
    nonces: std::collections::HashSet<String>,
}

struct MockState {
    credentials: Credentials,
    usage_key: Mutex<Option<AccessKey>>,
    usage: Mutex<UsageLedger>,
    orders: Mutex<HashMap<String, OrderInfo>>,
    faults: Mutex<VecDeque<Fault>>,
    requests: Mutex<Vec<RecordedRequest>>,
    /// Woken on every recorded request, so a test can wait for traffic without polling.
    arrived: tokio::sync::Notify,
    now_ms: TimeSource,
}

/// The mock. Cheap to clone; clones share state.
#[derive(Clone)]
pub struct MockMarketplace {
    state: Arc<MockState>,
}

impl MockMarketplace {
    /// A mock that accepts requests signed with `credentials`, serving the documented mock orders.
    pub fn new(credentials: Credentials, now_ms: TimeSource) -> Self {
        let orders = mock_orders().into_iter().map(|o| (o.order_id.clone(), o)).collect();
        Self {
            state: Arc::new(MockState {
                credentials,
                usage_key: Mutex::default(),
                usage: Mutex::default(),
                orders: Mutex::new(orders),
                faults: Mutex::default(),
                requests: Mutex::default(),
                arrived: tokio::sync::Notify::new(),
                now_ms,
            }),
        }
    }

    /// The merchant interconnection key (the basic interfaces' access key) that signs usage pushes.
    pub fn with_usage_key(self, key: AccessKey) -> Self {
        *self.state.usage_key.lock().unwrap() = Some(key);
        self
    }

    /// The usage records accepted so far.
    pub fn accepted_usage(&self) -> Vec<AcceptedUsage> {
        self.state.usage.lock().unwrap().accepted.clone()
    }

    /// `(duplicates ignored, duplicates with different content)`.
    pub fn usage_duplicates(&self) -> (usize, usize) {
        let ledger = self.state.usage.lock().unwrap();
        (ledger.duplicates, ledger.conflicts)
    }

    /// Adds (or replaces) an order Query Order will return.
    pub fn register_order(&self, order: OrderInfo) {
        self.state.orders.lock().unwrap().insert(order.order_id.clone(), order);
    }

    /// Queues a fault for the next request that passes routing.
    pub fn inject(&self, fault: Fault) {
        self.state.faults.lock().unwrap().push_back(fault);
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.requests.lock().unwrap().clone()
    }

    /// Waits until at least `count` requests have arrived; `false` if `timeout` passed first.
    pub async fn wait_for_requests(&self, count: usize, timeout: Duration) -> bool {
        let wait = async {
            loop {
                let notified = self.state.arrived.notified();
                if self.state.requests.lock().unwrap().len() >= count {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(timeout, wait).await.is_ok()
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route(QUERY_ORDER_PATH, get(query_order))
            .route(USAGE_PATH, post(usage_data))
            .route(OLD_USAGE_PATH, post(old_usage_data))
            .with_state(self.state.clone())
    }

    /// Serves the mock on an ephemeral loopback port until the task is dropped.
    pub async fn spawn(&self) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let router = self.router();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok((addr, task))
    }
}

fn gateway_error(status: u16, code: &str, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(json!({"error_code": code, "error_msg": message, "request_id": "mock-request"})))
        .into_response()
}

fn api_error(status: u16, code: &str, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        Json(QueryOrderResponse { result_code: code.into(), result_msg: message.into(), order_info: None }),
    )
        .into_response()
}

impl MockState {
    /// Checks an AK/SK signature as the API gateway does, against the one credential pair it knows.
    fn verify_apig(&self, request: &ApigRequest<'_>) -> Result<(), apig::ApigVerifyError> {
        let expected = &self.credentials;
        apig::verify(
            request,
            |ak| (ak == expected.access_key).then(|| expected.clone()),
            (self.now_ms)(),
            MAX_CLOCK_SKEW_MS,
        )
        .map(|_| ())
    }
}

/// The received headers as name/value pairs (values that are not text are left out).
fn header_pairs(headers: &axum::http::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter_map(|(n, v)| v.to_str().ok().map(|v| (n.as_str().to_owned(), v.to_owned())))
        .collect()
}

async fn query_order(State(state): State<Arc<MockState>>, request: Request<Body>) -> Response {
    let (parts, body) = request.into_parts();
    let body = to_bytes(body, 1 << 20).await.unwrap_or_default();
    let query: Vec<(String, String)> = form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
        .map(|(n, v)| (n.into_owned(), v.into_owned()))
        .collect();
    let headers = header_pairs(&parts.headers);
    let signed = ApigRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: &query,
        headers: &headers,
        body: &body,
    };
    let verdict = state.verify_apig(&signed).map_err(|e| e.to_string());
    let header = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    state.requests.lock().unwrap().push(RecordedRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: query.clone(),
        host: header("host"),
        authorization: header("authorization"),
        signature: verdict.clone(),
    });
    state.arrived.notify_waiters();
    if let Err(reason) = verdict {
        return gateway_error(
            401,
            "APIGW.0301",
            &format!("Incorrect IAM authentication information: {reason}"),
        );
    }
    let fault = state.faults.lock().unwrap().pop_front();
    match fault {
        Some(Fault::Status(status)) => {
            return StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY).into_response();
        }
        Some(Fault::Delay(delay)) => tokio::time::sleep(delay).await,
        Some(Fault::Gateway(status, code)) => return gateway_error(status, &code, "injected gateway fault"),
        Some(Fault::Api(status, code)) => return api_error(status, &code, "injected fault"),
        Some(Fault::RejectSignature) => {
            return gateway_error(401, "APIGW.0301", "Incorrect IAM authentication information: injected");
        }
        None => {}
    }
    let param = |name: &str| query.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    let Some(order_id) = param("orderId").filter(|id| !id.is_empty()) else {
        return api_error(400, "MKT.0101", "orderId is required");
    };
    let Some(mut order) = state.orders.lock().unwrap().get(&order_id).cloned() else {
        return api_error(500, "MKT.9001", "the order does not exist");
    };
    if let Some(line_id) = param("orderLineId") {
        order.order_line.retain(|line| line.order_line_id == line_id);
        if order.order_line.is_empty() {
            return api_error(500, "MKT.9001", "the order line does not exist");
        }
    }
    Json(QueryOrderResponse {
        result_code: "MKT.0000".into(),
        result_msg: "Success".into(),
        order_info: Some(order),
    })
    .into_response()
}

fn usage_answer(status: u16, code: &str, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(json!({"error_code": code, "error_msg": message}))).into_response()
}

/// The new usage API: `ts`/`nonce`/`signature` over the body with the merchant's key (open-apis §5).
async fn usage_data(
    State(state): State<Arc<MockState>>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let (ts, nonce, signature) = (header("ts"), header("nonce"), header("signature"));
    let key = state.usage_key.lock().unwrap().clone();
    let signed = key.is_some_and(|key| verify_usage_signature(&key, &ts, &nonce, &body, &signature));
    let fresh = ts.parse::<i64>().is_ok_and(|ts| ts.abs_diff((state.now_ms)()) <= 5 * 60 * 1000);
    state.requests.lock().unwrap().push(RecordedRequest {
        method: "POST".into(),
        path: USAGE_PATH.into(),
        query: Vec::new(),
        host: None,
        authorization: None,
        signature: if signed && fresh { Ok(()) } else { Err("invalid body signature or stale ts".into()) },
    });
    state.arrived.notify_waiters();
    if !(signed && fresh && state.usage.lock().unwrap().nonces.insert(nonce)) {
        return usage_answer(400, "MKT.0102", "Invalid body sign");
    }
    let fault = state.faults.lock().unwrap().pop_front();
    usage_with_fault(&state, fault, &body, false).await
}

/// The old usage API, behind the AK/SK gateway.
async fn old_usage_data(State(state): State<Arc<MockState>>, request: Request<Body>) -> Response {
    let (parts, body) = request.into_parts();
    let body = to_bytes(body, 1 << 24).await.unwrap_or_default();
    let headers = header_pairs(&parts.headers);
    let signed =
        ApigRequest { method: "POST", path: parts.uri.path(), query: &[], headers: &headers, body: &body };
    if state.verify_apig(&signed).is_err() {
        return gateway_error(401, "APIGW.0301", "Incorrect IAM authentication information");
    }
    let fault = state.faults.lock().unwrap().pop_front();
    usage_with_fault(&state, fault, &body, true).await
}

async fn usage_with_fault(state: &MockState, fault: Option<Fault>, body: &[u8], old: bool) -> Response {
    match fault {
        Some(Fault::Status(status)) => {
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY).into_response()
        }
        Some(Fault::Gateway(status, code)) => gateway_error(status, &code, "injected gateway fault"),
        Some(Fault::Api(status, code)) => usage_answer(status, &code, "injected fault"),
        Some(Fault::RejectSignature) => usage_answer(400, "MKT.0102", "Invalid body sign"),
        // Accepted, but the answer comes too late: the caller cannot know it succeeded.
        Some(Fault::Delay(delay)) => {
            let answer = accept_usage(state, body, old);
            tokio::time::sleep(delay).await;
            answer
        }
        None => accept_usage(state, body, old),
    }
}

fn accept_usage(state: &MockState, body: &[u8], old: bool) -> Response {
    let Ok(parsed) = serde_json::from_slice::<serde_json::Value>(body) else {
        return usage_answer(400, "MKT.0101", "the body is not JSON");
    };
    let Some(records) = parsed["usage_records"].as_array() else {
        return usage_answer(400, "MKT.0101", "usage_records is required");
    };
    if records.len() > MAX_RECORDS_PER_PUSH {
        return usage_answer(500, "MKT.9003", "too many usage records");
    }
    let text = |r: &serde_json::Value, name: &str| r[name].as_str().map(str::to_owned);
    let mut parsed_records = Vec::with_capacity(records.len());
    for record in records {
        let value = match &record["usage_value"] {
            serde_json::Value::String(s) if !old => parse_quantity(s).ok(),
            serde_json::Value::Number(n) if old => parse_quantity(&n.to_string()).ok(),
            _ => None,
        };
        let (Some(instance_id), Some(begin), Some(end), Some(units)) =
            (text(record, "instance_id"), text(record, "begin_time"), text(record, "end_time"), value)
        else {
            return usage_answer(500, "MKT.9002", "invalid usage entities");
        };
        if begin > end
            || text(record, "record_time").is_none_or(|t| t < end)
            || (old && text(record, "product_id").is_none())
        {
            return usage_answer(500, "MKT.9002", "invalid usage entities");
        }
        parsed_records.push(AcceptedUsage {
            instance_id,
            begin_time: begin,
            end_time: end,
            units,
            metering_sn: text(record, "metering_sn"),
            relate_pkg_instance: text(record, "relate_pkg_instance"),
        });
    }
    let mut ledger = state.usage.lock().unwrap();
    for record in parsed_records {
        let earlier = ledger.accepted.iter().find(|a| {
            a.instance_id == record.instance_id
                && a.begin_time == record.begin_time
                && a.end_time == record.end_time
        });
        match earlier {
            Some(earlier) => {
                let conflict = earlier != &record;
                ledger.duplicates += 1;
                ledger.conflicts += usize::from(conflict);
            }
            None => ledger.accepted.push(record),
        }
    }
    usage_answer(200, "MKT.0000", "success")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_gateway_refuses_unsigned_requests_and_records_them() {
        let mock = MockMarketplace::new(Credentials::new("AK", "SK"), Arc::new(|| 0));
        let (addr, _task) = mock.spawn().await.unwrap();
        let response =
            reqwest::get(format!("http://{addr}{QUERY_ORDER_PATH}?orderId=MOCKONDEMAND")).await.unwrap();
        assert_eq!(response.status(), 401);
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error_code"], "APIGW.0301");
        assert!(mock.requests()[0].signature.is_err());
    }

    #[test]
    fn every_documented_mock_order_is_served() {
        let ids: Vec<String> = mock_orders().into_iter().map(|o| o.order_id).collect();
        assert_eq!(ids.len(), 9);
        assert!(ids.contains(&"MOCKMONTYCHANGE".to_owned()));
    }
}
