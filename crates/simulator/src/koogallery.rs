//! The whole simulated KooGallery behind `koogate sim serve`: the mock Open APIs, plus an HTTP API to
//! fire signed callbacks at a production URL, inject faults and read the recorded traffic.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use koogate_protocol::apig::Credentials;
use koogate_protocol::AccessKey;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::marketplace::{Fault, MockMarketplace};
use crate::sender::{CallbackSender, Tamper, TimeSource};

/// A callback the simulator sent and what came back.
#[derive(Debug, Clone)]
struct SentCallback {
    target: String,
    body: Value,
    status: u16,
    answer: Value,
    body_sign_valid: bool,
}

#[derive(Clone)]
pub struct SimulatedKooGallery {
    marketplace: MockMarketplace,
    key: AccessKey,
    now_ms: TimeSource,
    sent: Arc<Mutex<Vec<SentCallback>>>,
}

/// `POST /sim/send`: where, what, and optionally how to break it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SendRequest {
    target: String,
    body: Value,
    #[serde(default)]
    timestamp: Option<String>,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    signature: Option<String>,
}

/// `POST /sim/faults`: one of the fields.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultRequest {
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    delay_ms: Option<u64>,
    /// `[HTTP status, "APIGW.xxxx"]`
    #[serde(default)]
    gateway: Option<(u16, String)>,
    /// `[HTTP status, "MKT.xxxx"]`
    #[serde(default)]
    api: Option<(u16, String)>,
    #[serde(default)]
    reject_signature: bool,
}

impl SimulatedKooGallery {
    /// `credentials` are the AK/SK the Open APIs accept; `key` signs callbacks and checks usage pushes.
    pub fn new(credentials: Credentials, key: AccessKey, now_ms: TimeSource) -> Self {
        let marketplace = MockMarketplace::new(credentials, now_ms.clone()).with_usage_key(key.clone());
        Self { marketplace, key, now_ms, sent: Arc::default() }
    }

    pub fn marketplace(&self) -> &MockMarketplace {
        &self.marketplace
    }

    pub fn router(&self) -> Router {
        let api = Router::new()
            .route("/sim/send", post(send))
            .route("/sim/faults", post(inject))
            .route("/sim/traffic", get(traffic))
            .with_state(self.clone());
        self.marketplace.router().merge(api)
    }
}

async fn send(State(sim): State<SimulatedKooGallery>, Json(request): Json<SendRequest>) -> Response {
    let sender =
        CallbackSender::new(request.target.clone(), sim.key.clone()).with_time_source(sim.now_ms.clone());
    let tamper = Tamper {
        timestamp: request.timestamp,
        nonce: request.nonce,
        signature: request.signature,
        ..Tamper::default()
    };
    match sender.send_value(&request.body, &tamper).await {
        Ok(reply) => {
            let answer = reply
                .json()
                .unwrap_or_else(|| Value::String(String::from_utf8_lossy(&reply.body).into_owned()));
            let valid = reply.body_sign_valid(&sim.key);
            sim.sent.lock().unwrap().push(SentCallback {
                target: request.target,
                body: request.body,
                status: reply.status,
                answer: answer.clone(),
                body_sign_valid: valid,
            });
            Json(json!({"status": reply.status, "answer": answer, "body_sign_valid": valid, "nonce": reply.nonce})).into_response()
        }
        Err(error) => (StatusCode::BAD_GATEWAY, Json(json!({"error": error.to_string()}))).into_response(),
    }
}

async fn inject(State(sim): State<SimulatedKooGallery>, Json(request): Json<FaultRequest>) -> Response {
    let fault = match request {
        FaultRequest { status: Some(status), .. } => Fault::Status(status),
        FaultRequest { delay_ms: Some(ms), .. } => Fault::Delay(Duration::from_millis(ms)),
        FaultRequest { gateway: Some((status, code)), .. } => Fault::Gateway(status, code),
        FaultRequest { api: Some((status, code)), .. } => Fault::Api(status, code),
        FaultRequest { reject_signature: true, .. } => Fault::RejectSignature,
        _ => return (StatusCode::BAD_REQUEST, Json(json!({"error": "name one fault"}))).into_response(),
    };
    sim.marketplace.inject(fault);
    StatusCode::NO_CONTENT.into_response()
}

async fn traffic(State(sim): State<SimulatedKooGallery>) -> Json<Value> {
    let open_api: Vec<Value> = sim
        .marketplace
        .requests()
        .iter()
        .map(|r| json!({"method": r.method, "path": r.path, "query": r.query, "signature_ok": r.signature.is_ok()}))
        .collect();
    let callbacks: Vec<Value> = sim
        .sent
        .lock()
        .unwrap()
        .iter()
        .map(|c| json!({"target": c.target, "body": c.body, "status": c.status, "answer": c.answer, "body_sign_valid": c.body_sign_valid}))
        .collect();
    let usage: Vec<Value> = sim
        .marketplace
        .accepted_usage()
        .iter()
        .map(|u| json!({"instance_id": u.instance_id, "begin_time": u.begin_time, "end_time": u.end_time,
                        "usage_value": koogate_protocol::usage::format_quantity(u.units), "relate_pkg_instance": u.relate_pkg_instance}))
        .collect();
    Json(json!({"open_api": open_api, "callbacks": callbacks, "usage": usage}))
}
