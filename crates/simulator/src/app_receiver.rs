//! A stand-in for the merchant's app: receives koogate's webhooks, checks their Standard Webhooks
//! signatures, records them, and answers as scripted (errors, slowness, `Retry-After`, app details).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use koogate_protocol::webhook::{self, WebhookSecret};
use serde_json::Value;

use crate::sender::TimeSource;

/// How the app answers one delivery.
#[derive(Debug, Clone)]
pub enum AppReply {
    /// This status with an empty body.
    Status(u16),
    /// This status with `Retry-After: <seconds>`.
    RetryAfter(u16, u64),
    /// Answer 200 only after this long (a timeout for a shorter client timeout).
    Delay(Duration),
    /// 200 with this JSON body (for example app details answering `instance.created`).
    Json(Value),
}

/// One delivery as the app saw it.
#[derive(Debug, Clone)]
pub struct ReceivedWebhook {
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    /// Whether the signature verified under the app's secrets and the timestamp was fresh.
    pub verified: bool,
    pub body: Value,
}

impl ReceivedWebhook {
    pub fn event_type(&self) -> &str {
        self.body["type"].as_str().unwrap_or_default()
    }
}

struct AppState {
    secrets: Vec<WebhookSecret>,
    script: Mutex<VecDeque<AppReply>>,
    received: Mutex<Vec<ReceivedWebhook>>,
    now_ms: TimeSource,
}

#[derive(Clone)]
pub struct MockApp {
    state: Arc<AppState>,
}

impl MockApp {
    pub fn new(secrets: Vec<WebhookSecret>, now_ms: TimeSource) -> Self {
        Self {
            state: Arc::new(AppState {
                secrets,
                script: Mutex::default(),
                received: Mutex::default(),
                now_ms,
            }),
        }
    }

    /// Queues the answer to the next delivery; once the script is empty the app answers 204.
    pub fn reply_with(&self, reply: AppReply) {
        self.state.script.lock().unwrap().push_back(reply);
    }

    pub fn received(&self) -> Vec<ReceivedWebhook> {
        self.state.received.lock().unwrap().clone()
    }

    /// Serves on an ephemeral loopback port; deliveries go to `http://{addr}/webhooks`.
    pub async fn spawn(&self) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let router = Router::new().route("/webhooks", post(receive)).with_state(self.state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok((addr, task))
    }
}

async fn receive(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let (id, timestamp, signature) =
        (header(webhook::ID_HEADER), header(webhook::TIMESTAMP_HEADER), header(webhook::SIGNATURE_HEADER));
    let now_secs = (state.now_ms)().div_euclid(1000);
    let verified = webhook::verify(&state.secrets, &id, &timestamp, &signature, &body, now_secs, 300).is_ok();
    let parsed = serde_json::from_slice(&body).unwrap_or(Value::Null);
    state.received.lock().unwrap().push(ReceivedWebhook { id, timestamp, signature, verified, body: parsed });
    let reply = state.script.lock().unwrap().pop_front();
    match reply {
        None => StatusCode::NO_CONTENT.into_response(),
        Some(AppReply::Status(code)) => {
            StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR).into_response()
        }
        Some(AppReply::RetryAfter(code, seconds)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            (status, [("retry-after", seconds.to_string())]).into_response()
        }
        Some(AppReply::Delay(delay)) => {
            tokio::time::sleep(delay).await;
            StatusCode::OK.into_response()
        }
        Some(AppReply::Json(value)) => axum::Json(value).into_response(),
    }
}
