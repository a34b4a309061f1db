//! koogate's client for KooGallery's Open APIs: every attempt signed afresh with `SDK-HMAC-SHA256`, the
//! fallback host tried when the primary cannot be reached, the three answer envelopes read, and each
//! failure classified so the caller retries only what the spec says may succeed later.
//!
//! The client makes one attempt per host and never sleeps; retrying later with backoff is the job
//! queue's work, so a retry survives a restart and runs on whichever replica is free.

use std::sync::Arc;
use std::time::Duration;

use koogate_protocol::apig::{self, ApigRequest, Credentials};
use koogate_protocol::open_api::{
    classify, Envelope, OrderInfo, Outcome, QueryOrderResponse, QUERY_ORDER_PATH,
};
use koogate_protocol::usage::{usage_signature, OLD_USAGE_PATH, USAGE_PATH};
use koogate_protocol::AccessKey;

use crate::clock::Clock;

#[derive(Debug, thiserror::Error)]
pub enum MarketplaceError {
    /// No host answered (connection refused, DNS, TLS, timeout): retry later.
    #[error("no KooGallery host could be reached (last tried {host})")]
    Unreachable {
        host: String,
        #[source]
        source: reqwest::Error,
    },
    /// KooGallery (or its gateway) answered with a failure.
    #[error("KooGallery answered HTTP {status} {code}: {message}")]
    Api { status: u16, code: String, message: String, outcome: Outcome },
    /// A success answer that does not hold what the API promises.
    #[error("KooGallery's answer could not be read: {0}")]
    Malformed(String),
}

impl MarketplaceError {
    /// What the caller should do: retry later, retry at most once (auth), or give up.
    pub fn outcome(&self) -> Outcome {
        match self {
            MarketplaceError::Unreachable { .. } => Outcome::Retry,
            MarketplaceError::Api { outcome, .. } => *outcome,
            MarketplaceError::Malformed(_) => Outcome::Retry,
        }
    }

    /// The KooGallery code, if it answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            MarketplaceError::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// Where and how to reach the Open APIs.
#[derive(Debug, Clone)]
pub struct MarketplaceSettings {
    /// Base URLs (`https://mkt.myhuaweicloud.com`, then the fallback), tried in order.
    pub hosts: Vec<String>,
    /// The AK/SK pair (Query Order, old usage API); absent when not configured.
    pub credentials: Option<Credentials>,
    /// The merchant interconnection key that signs the new usage API (the basic interfaces' access key).
    pub usage_key: AccessKey,
    pub timeout: Duration,
    pub connect_timeout: Duration,
}

#[derive(Clone)]
pub struct MarketplaceClient {
    http: reqwest::Client,
    settings: Arc<MarketplaceSettings>,
    clock: Arc<dyn Clock>,
}

/// A raw answer: status and body.
struct Reply {
    status: u16,
    body: Vec<u8>,
}

impl MarketplaceClient {
    pub fn new(settings: MarketplaceSettings, clock: Arc<dyn Clock>) -> Result<Self, reqwest::Error> {
        // rustls with the bundled web PKI roots: certificates of the mkt hosts are always verified.
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.connect_timeout)
            .user_agent(concat!("koogate/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { http, settings: Arc::new(settings), clock })
    }

    /// Query Order (open-apis §4): the order, restricted to one line when `order_line_id` is given.
    pub async fn query_order(
        &self,
        order_id: &str,
        order_line_id: Option<&str>,
    ) -> Result<OrderInfo, MarketplaceError> {
        let mut query = vec![("orderId".to_owned(), order_id.to_owned())];
        if let Some(line) = order_line_id {
            query.push(("orderLineId".to_owned(), line.to_owned()));
        }
        let reply = self.get(QUERY_ORDER_PATH, &query).await?;
        let envelope = Envelope::parse(&reply.body);
        match classify(reply.status, envelope.as_ref().map(|e| e.code.as_str())) {
            Outcome::Success => {
                let parsed: QueryOrderResponse = serde_json::from_slice(&reply.body)
                    .map_err(|e| MarketplaceError::Malformed(e.to_string()))?;
                parsed
                    .order_info
                    .ok_or_else(|| MarketplaceError::Malformed("success without orderInfo".into()))
            }
            outcome => Err(api_error(reply.status, envelope, outcome, &reply.body)),
        }
    }

    /// Pushes usage records (open-apis §5/§6): `body` is sent byte for byte; the new API is signed with
    /// a fresh `ts`, `nonce` and `signature` on every attempt, the old one with AK/SK.
    pub async fn push_usage(&self, old_api: bool, body: &[u8]) -> Result<(), MarketplaceError> {
        let reply = self
            .send(Method::Post, if old_api { OLD_USAGE_PATH } else { USAGE_PATH }, &[], body, old_api)
            .await?;
        let envelope = Envelope::parse(&reply.body);
        match classify(reply.status, envelope.as_ref().map(|e| e.code.as_str())) {
            Outcome::Success => Ok(()),
            outcome => Err(api_error(reply.status, envelope, outcome, &reply.body)),
        }
    }

    async fn get(&self, path: &str, query: &[(String, String)]) -> Result<Reply, MarketplaceError> {
        self.send(Method::Get, path, query, b"", true).await
    }

    /// A signed request, trying the fallback host when a host cannot be reached or its proxy fails.
    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(String, String)],
        body: &[u8],
        ak_sk: bool,
    ) -> Result<Reply, MarketplaceError> {
        let mut last_unreachable = None;
        for (index, base) in self.settings.hosts.iter().enumerate() {
            let is_last = index + 1 == self.settings.hosts.len();
            match self.send_to(base, method, path, query, body, ak_sk).await {
                Ok(reply) if !is_last && proxy_failure(&reply) => {
                    tracing::warn!(host = %base, status = reply.status, "KooGallery host failed; trying the fallback host");
                }
                Ok(reply) => return Ok(reply),
                Err(source) => {
                    tracing::warn!(host = %base, error = %source, "KooGallery host unreachable");
                    last_unreachable = Some(MarketplaceError::Unreachable { host: base.clone(), source });
                }
            }
        }
        Err(last_unreachable.unwrap_or_else(|| MarketplaceError::Malformed("every host failed".into())))
    }

    /// One attempt against one host, signed for that host at this moment.
    async fn send_to(
        &self,
        base: &str,
        method: Method,
        path: &str,
        query: &[(String, String)],
        body: &[u8],
        ak_sk: bool,
    ) -> Result<Reply, reqwest::Error> {
        let canonical_query = apig::canonical_query(query);
        let url = if canonical_query.is_empty() {
            format!("{base}{path}")
        } else {
            format!("{base}{path}?{canonical_query}")
        };
        let parsed = reqwest::Url::parse(&url).expect("configured base URLs are validated");
        let now = self.clock.now_ms();
        let mut request = match method {
            Method::Get => self.http.get(parsed.clone()),
            Method::Post => self.http.post(parsed.clone()),
        }
        .header("Content-Type", "application/json");
        if ak_sk {
            let host = match parsed.port() {
                Some(port) => format!("{}:{port}", parsed.host_str().unwrap_or_default()),
                None => parsed.host_str().unwrap_or_default().to_owned(),
            };
            let date = apig::format_sdk_date(now);
            let headers = vec![
                ("Content-Type".to_owned(), "application/json".to_owned()),
                ("Host".to_owned(), host),
                ("X-Sdk-Date".to_owned(), date.clone()),
            ];
            let signed = ApigRequest { method: method.as_str(), path, query, headers: &headers, body };
            // Without an AK/SK pair the request goes unsigned and the gateway refuses it (APIGW.0301),
            // which ends the job with that code for the operator to see.
            if let Some(credentials) = &self.settings.credentials {
                let authorization =
                    apig::authorization(&signed, credentials).expect("host and date are set above");
                request = request.header("Authorization", authorization);
            }
            // The Host header is left to the HTTP client, which derives the same value from the URL.
            request = request.header("X-Sdk-Date", date);
        } else {
            let ts = now.to_string();
            let nonce = random_nonce();
            let signature = usage_signature(&self.settings.usage_key, &ts, &nonce, body);
            request = request.header("ts", ts).header("nonce", nonce).header("signature", signature);
        }
        let response = request.body(body.to_vec()).send().await?;
        let status = response.status().as_u16();
        let body = response.bytes().await?.to_vec();
        Ok(Reply { status, body })
    }
}

#[derive(Debug, Clone, Copy)]
enum Method {
    Get,
    Post,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// A UUID-v4-shaped random nonce, as the usage API's examples use.
fn random_nonce() -> String {
    let b: [u8; 16] = rand::random();
    let hex = hex::encode(b);
    format!("{}-{}-4{}-{}-{}", &hex[0..8], &hex[8..12], &hex[13..16], &hex[16..20], &hex[20..32])
}

/// A 5xx without a KooGallery envelope is a proxy or load balancer failing in front of the host; the
/// fallback host may be healthy.
fn proxy_failure(reply: &Reply) -> bool {
    reply.status >= 500 && Envelope::parse(&reply.body).is_none()
}

fn api_error(status: u16, envelope: Option<Envelope>, outcome: Outcome, body: &[u8]) -> MarketplaceError {
    let (code, message) = match envelope {
        Some(e) => (e.code, e.message),
        None => {
            (format!("HTTP {status}"), String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned())
        }
    };
    MarketplaceError::Api { status, code, message, outcome }
}
