//! Standard Webhooks signatures (standardwebhooks.com), used for koogate's deliveries to the merchant's
//! app: `webhook-signature: v1,<base64 HMAC-SHA256(secret, "{id}.{timestamp}.{body}")>`, one entry per
//! secret so the app can rotate secrets without missing a delivery.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

pub const ID_HEADER: &str = "webhook-id";
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
pub const SIGNATURE_HEADER: &str = "webhook-signature";
const PREFIX: &str = "whsec_";

/// A signing secret, `whsec_` followed by base64 of the key bytes. `Debug` hides it.
#[derive(Clone)]
pub struct WebhookSecret(Zeroizing<Vec<u8>>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookSecretError {
    #[error("a webhook secret must be whsec_ followed by base64 (at least 16 bytes)")]
    Invalid,
}

impl WebhookSecret {
    pub fn parse(text: &str) -> Result<Self, WebhookSecretError> {
        let encoded = text.trim().strip_prefix(PREFIX).ok_or(WebhookSecretError::Invalid)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| WebhookSecretError::Invalid)?;
        if bytes.len() < 16 {
            return Err(WebhookSecretError::Invalid);
        }
        Ok(Self(Zeroizing::new(bytes)))
    }

    /// Several secrets separated by white space or commas (the first signs; all are accepted).
    pub fn parse_list(text: &str) -> Result<Vec<Self>, WebhookSecretError> {
        let secrets: Vec<Self> = text
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|s| !s.is_empty())
            .map(Self::parse)
            .collect::<Result<_, _>>()?;
        if secrets.is_empty() {
            return Err(WebhookSecretError::Invalid);
        }
        Ok(secrets)
    }

    /// A new random secret from 32 bytes of caller-supplied randomness.
    pub fn encode(bytes: &[u8]) -> String {
        format!("{PREFIX}{}", base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC accepts keys of any length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().into()
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret([REDACTED])")
    }
}

/// The `webhook-signature` value: `v1,<sig>` for every secret, space-separated.
pub fn signature_header(secrets: &[WebhookSecret], id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .map(|secret| {
            format!(
                "v1,{}",
                base64::engine::general_purpose::STANDARD.encode(secret.mac(id, timestamp, body))
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookVerifyError {
    #[error("the webhook-timestamp header is not a UNIX time in seconds")]
    BadTimestamp,
    #[error("the webhook-timestamp is outside the tolerance")]
    Expired,
    #[error("no webhook-signature entry matches")]
    NoMatch,
}

/// Verifies a delivery as the app should: the timestamp within `tolerance_secs` of `now_secs`, and any
/// `v1` signature in the header matching any of `secrets`.
pub fn verify(
    secrets: &[WebhookSecret],
    id: &str,
    timestamp: &str,
    signature: &str,
    body: &[u8],
    now_secs: i64,
    tolerance_secs: i64,
) -> Result<(), WebhookVerifyError> {
    let ts: i64 = timestamp.trim().parse().map_err(|_| WebhookVerifyError::BadTimestamp)?;
    // abs_diff: a timestamp near i64::MIN must be refused, not overflow.
    // A negative tolerance accepts nothing, as before.
    if u64::try_from(tolerance_secs).map_or(true, |tolerance| ts.abs_diff(now_secs) > tolerance) {
        return Err(WebhookVerifyError::Expired);
    }
    let received: Vec<Vec<u8>> = signature
        .split_whitespace()
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .collect();
    let matched = secrets.iter().any(|secret| {
        let expected = secret.mac(id, ts, body);
        received.iter().any(|r| bool::from(expected.as_slice().ct_eq(r)))
    });
    if matched {
        Ok(())
    } else {
        Err(WebhookVerifyError::NoMatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    #[test]
    fn the_standard_webhooks_reference_vector() {
        let secret = WebhookSecret::parse(SECRET).unwrap();
        let header = signature_header(
            &[secret],
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(header, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn rotation_signs_with_every_secret_and_verifies_with_any() {
        let old = WebhookSecret::parse(SECRET).unwrap();
        let new = WebhookSecret::parse(&WebhookSecret::encode(&[7u8; 32])).unwrap();
        let header = signature_header(&[new.clone(), old.clone()], "msg_1", 100, b"{}");
        assert_eq!(header.split(' ').count(), 2);
        assert_eq!(verify(std::slice::from_ref(&old), "msg_1", "100", &header, b"{}", 100, 300), Ok(()));
        assert_eq!(verify(&[new], "msg_1", "100", &header, b"{}", 100, 300), Ok(()));
        assert_eq!(
            verify(std::slice::from_ref(&old), "msg_1", "100", &header, b"{ }", 100, 300),
            Err(WebhookVerifyError::NoMatch)
        );
        assert_eq!(
            verify(&[old], "msg_1", "100", &header, b"{}", 1000, 300),
            Err(WebhookVerifyError::Expired)
        );
    }

    #[test]
    fn extreme_timestamps_are_expired_not_an_overflow() {
        // Spotted while writing the body_signatures fuzz target (which reproduces it): `ts - now`
        // overflowed for i64::MIN.
        let secret = WebhookSecret::parse(SECRET).unwrap();
        for ts in [i64::MIN.to_string(), i64::MAX.to_string()] {
            assert_eq!(
                verify(std::slice::from_ref(&secret), "id", &ts, "v1,AAAA", b"{}", 1_700_000_000, 300),
                Err(WebhookVerifyError::Expired)
            );
        }
    }

    #[test]
    fn secrets_need_the_prefix_and_enough_bytes() {
        assert!(WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        assert!(WebhookSecret::parse("whsec_c2hvcnQ=").is_err());
        assert_eq!(WebhookSecret::parse_list(&format!("{SECRET}, {SECRET}")).unwrap().len(), 2);
        assert!(!format!("{:?}", WebhookSecret::parse(SECRET).unwrap()).contains("MfKQ"));
    }
}
