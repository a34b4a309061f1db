//! Signing and sending basic-interface callbacks as KooGallery does (spec §2): the JSON body in the
//! POST, `signature`, `timestamp` (ms) and `nonce` in the query string.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use koogate_protocol::canonical::canonical_bytes;
use koogate_protocol::signature::signed_query;
use koogate_protocol::{body_sign, AccessKey, Request};
use rand::Rng;
use serde_json::Value;

/// A clock for the timestamps the sender puts on calls.
pub type TimeSource = Arc<dyn Fn() -> i64 + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("the request to the production interface failed")]
    Http(#[from] reqwest::Error),
}

/// Ways to break a call on purpose, for negative tests and the conformance runner.
#[derive(Debug, Clone, Default)]
pub struct Tamper {
    /// Send this timestamp instead of the current time.
    pub timestamp: Option<String>,
    /// Send this nonce instead of a fresh random one.
    pub nonce: Option<String>,
    /// Replace the signature with this value (empty string = send no signature parameter at all).
    pub signature: Option<String>,
    /// Leave out the timestamp parameter.
    pub omit_timestamp: bool,
    /// Leave out the nonce parameter.
    pub omit_nonce: bool,
}

/// What the production interface answered.
#[derive(Debug, Clone)]
pub struct CallbackReply {
    pub status: u16,
    pub content_type: Option<String>,
    pub body_sign: Option<String>,
    pub body: Vec<u8>,
    /// The nonce the call carried, so a test can replay it.
    pub nonce: String,
}

impl CallbackReply {
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    pub fn result_code(&self) -> Option<String> {
        self.json()?.get("resultCode")?.as_str().map(str::to_owned)
    }

    pub fn result_msg(&self) -> Option<String> {
        self.json()?.get("resultMsg")?.as_str().map(str::to_owned)
    }

    pub fn instance_id(&self) -> Option<String> {
        self.json()?.get("instanceId")?.as_str().map(str::to_owned)
    }

    /// Whether the `Body-Sign` header is present and matches the body under `key`.
    pub fn body_sign_valid(&self, key: &AccessKey) -> bool {
        self.body_sign.as_deref().is_some_and(|header| body_sign::verify(key, header, &self.body).is_ok())
    }
}

/// Sends signed callbacks to one production URL.
#[derive(Clone)]
pub struct CallbackSender {
    client: reqwest::Client,
    target: String,
    key: AccessKey,
    now_ms: TimeSource,
}

impl CallbackSender {
    /// A sender with the system clock and KooGallery's 20 s call timeout.
    pub fn new(target: impl Into<String>, key: AccessKey) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .expect("building an HTTP client with default TLS settings cannot fail");
        Self { client, target: target.into(), key, now_ms: Arc::new(system_now_ms) }
    }

    /// Uses `now_ms` for timestamps, e.g. a test's manual clock.
    pub fn with_time_source(mut self, now_ms: TimeSource) -> Self {
        self.now_ms = now_ms;
        self
    }

    pub fn key(&self) -> &AccessKey {
        &self.key
    }

    /// Sends a typed request with its body in canonical form, as the platform does.
    pub async fn send(&self, request: &Request) -> Result<CallbackReply, SendError> {
        self.send_body(&canonical_bytes(&request.to_value()), &Tamper::default()).await
    }

    /// Sends a JSON value in canonical form.
    pub async fn send_value(&self, body: &Value, tamper: &Tamper) -> Result<CallbackReply, SendError> {
        self.send_body(&canonical_bytes(body), tamper).await
    }

    /// Sends exactly these body bytes, signed over themselves (unless tampered with).
    pub async fn send_body(&self, body: &[u8], tamper: &Tamper) -> Result<CallbackReply, SendError> {
        let url = self.signed_url(body, tamper);
        let response = self
            .client
            .post(&url.url)
            .header("Accept", "application/json")
            .header("Content-Type", "application/json;charset=utf-8")
            .body(body.to_vec())
            .send()
            .await?;
        let header =
            |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let status = response.status().as_u16();
        let content_type = header("content-type");
        let body_sign = header(body_sign::HEADER_NAME);
        let body = response.bytes().await?.to_vec();
        Ok(CallbackReply { status, content_type, body_sign, body, nonce: url.nonce })
    }

    /// The full URL a call with this body would go to; for `koogate sign` and hand testing.
    pub fn signed_url(&self, body: &[u8], tamper: &Tamper) -> SignedUrl {
        let timestamp = tamper.timestamp.clone().unwrap_or_else(|| (self.now_ms)().to_string());
        let nonce = tamper.nonce.clone().unwrap_or_else(random_nonce);
        let query = signed_query(&self.key, &nonce, &timestamp, body);
        let query = apply_tamper(query, tamper);
        let separator = if self.target.contains('?') { '&' } else { '?' };
        SignedUrl { url: format!("{}{separator}{query}", self.target), nonce }
    }
}

/// A signed URL and the nonce in it.
#[derive(Debug, Clone)]
pub struct SignedUrl {
    pub url: String,
    pub nonce: String,
}

fn apply_tamper(query: String, tamper: &Tamper) -> String {
    query
        .split('&')
        .filter_map(|pair| {
            let (name, _) = pair.split_once('=')?;
            match name {
                "timestamp" if tamper.omit_timestamp => None,
                "nonce" if tamper.omit_nonce => None,
                "signature" => match tamper.signature.as_deref() {
                    Some("") => None,
                    Some(replacement) => Some(format!("signature={replacement}")),
                    None => Some(pair.to_owned()),
                },
                _ => Some(pair.to_owned()),
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// 64 upper-case hex digits, like the platform's nonces.
pub fn random_nonce() -> String {
    let bytes: [u8; 32] = rand::thread_rng().gen();
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

fn system_now_ms() -> i64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tampering_drops_or_replaces_parameters() {
        let sender = CallbackSender::new("http://h/p", AccessKey::from_text("k"));
        let tamper = Tamper { signature: Some("00".into()), omit_nonce: true, ..Tamper::default() };
        let url = sender.signed_url(b"{}", &tamper).url;
        assert!(url.starts_with("http://h/p?signature=00&timestamp="), "{url}");
        assert!(!url.contains("nonce="));
    }

    #[test]
    fn nonces_look_like_the_platforms() {
        let nonce = random_nonce();
        assert_eq!(nonce.len(), 64);
        assert!(nonce.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_lowercase()));
    }
}
