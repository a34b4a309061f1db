//! The SaaS V2.0 request signature (spec §2): `signature`, `timestamp` and `nonce` in the query string,
//! HMAC-SHA256 over the access key, nonce, timestamp and an inner HMAC of the JSON body.

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::canonical::canonical_bytes;
use crate::ids::Nonce;
use crate::key::AccessKey;
use crate::result_code::ResultCode;

type HmacSha256 = Hmac<Sha256>;

/// The three authentication parameters KooGallery appends to the production URL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignatureParams {
    pub signature: Option<String>,
    pub timestamp: Option<String>,
    pub nonce: Option<String>,
}

impl SignatureParams {
    /// Reads the parameters from a raw (still percent-encoded) query string. Other parameters are
    /// ignored, as in Huawei's demo; a repeated authentication parameter is refused as ambiguous.
    pub fn from_query(raw_query: &str) -> Result<Self, VerifyError> {
        let mut params = Self::default();
        for (name, value) in form_urlencoded::parse(raw_query.as_bytes()) {
            let slot = match name.as_ref() {
                "signature" => &mut params.signature,
                "timestamp" => &mut params.timestamp,
                "nonce" => &mut params.nonce,
                _ => continue,
            };
            if slot.replace(value.into_owned()).is_some() {
                return Err(VerifyError::RepeatedParameter);
            }
        }
        Ok(params)
    }
}

/// How far a request's timestamp may lie from the receiver's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindow {
    /// Oldest accepted age in milliseconds.
    pub past_ms: i64,
    /// Furthest accepted lead in milliseconds (KooGallery's clock running ahead of ours).
    pub future_ms: i64,
}

impl Default for TimeWindow {
    /// ±60 s, the documented window (spec §2.5).
    fn default() -> Self {
        Self { past_ms: 60_000, future_ms: 60_000 }
    }
}

/// Which byte form of the body the signature matched (spec §2.4 verification strategy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchedForm {
    /// The body exactly as received.
    Raw,
    /// The body re-serialised canonically (sorted, nulls dropped, compact).
    Canonical,
}

impl MatchedForm {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchedForm::Raw => "raw",
            MatchedForm::Canonical => "canonical",
        }
    }
}

/// Why a callback was refused before its content was looked at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the signature query parameter is missing")]
    MissingSignature,
    #[error("the timestamp query parameter is missing")]
    MissingTimestamp,
    #[error("the nonce query parameter is missing")]
    MissingNonce,
    #[error("an authentication query parameter appears more than once")]
    RepeatedParameter,
    #[error("the timestamp is not a decimal UNIX time in milliseconds or seconds")]
    InvalidTimestamp,
    #[error("the timestamp is {skew_ms} ms away from now, outside the accepted window")]
    TimestampOutsideWindow { skew_ms: i64 },
    #[error("the nonce is empty, too long or contains characters other than printable ASCII")]
    InvalidNonce,
    #[error("the signature does not match the body")]
    BadSignature,
    #[error("the body is not a JSON object")]
    MalformedBody,
}

impl VerifyError {
    /// The code KooGallery expects for each refusal (spec §2.6): signature problems are `000001`,
    /// everything else about the request `000002`.
    pub fn result_code(&self) -> ResultCode {
        match self {
            VerifyError::MissingSignature | VerifyError::BadSignature => ResultCode::InvalidToken,
            _ => ResultCode::InvalidParam,
        }
    }
}

/// A value that came out of a callback whose signature, timestamp and nonce checked out. Only this crate
/// can construct one, so a handler holding a `Verified<T>` cannot be looking at an unverified request.
#[derive(Debug, Clone)]
pub struct Verified<T> {
    value: T,
    nonce: Nonce,
    timestamp_ms: i64,
    matched: MatchedForm,
}

/// A verified callback body, parsed as JSON but not yet as a particular message.
pub type VerifiedBody = Verified<Value>;

impl<T> Verified<T> {
    pub fn get(&self) -> &T {
        &self.value
    }

    pub fn into_inner(self) -> T {
        self.value
    }

    /// The nonce the caller used; the server records it to refuse replays.
    pub fn nonce(&self) -> &Nonce {
        &self.nonce
    }

    /// The request time in UNIX milliseconds (a seconds value already scaled).
    pub fn timestamp_ms(&self) -> i64 {
        self.timestamp_ms
    }

    pub fn matched(&self) -> MatchedForm {
        self.matched
    }

    pub(crate) fn try_map<U, E>(self, f: impl FnOnce(T) -> Result<U, E>) -> Result<Verified<U>, E> {
        Ok(Verified {
            value: f(self.value)?,
            nonce: self.nonce,
            timestamp_ms: self.timestamp_ms,
            matched: self.matched,
        })
    }
}

/// `hex(HMAC(key, key ‖ nonce ‖ timestamp ‖ hex(HMAC(key, payload))))` in lower case (spec §2.3).
pub fn sign_payload(key: &AccessKey, nonce: &str, timestamp: &str, payload: &[u8]) -> String {
    let inner = hex::encode(hmac(key, &[payload]));
    hex::encode(hmac(key, &[key.as_bytes(), nonce.as_bytes(), timestamp.as_bytes(), inner.as_bytes()]))
}

/// The query string KooGallery would append for this body: `signature=…&timestamp=…&nonce=…`, with the
/// signature in upper case as the platform sends it. Nonce and timestamp are the caller's choice.
pub fn signed_query(key: &AccessKey, nonce: &str, timestamp: &str, payload: &[u8]) -> String {
    let signature = sign_payload(key, nonce, timestamp, payload).to_ascii_uppercase();
    form_urlencoded::Serializer::new(String::new())
        .append_pair("signature", &signature)
        .append_pair("timestamp", timestamp)
        .append_pair("nonce", nonce)
        .finish()
}

pub(crate) fn hmac(key: &AccessKey, parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key.as_bytes()).expect("HMAC accepts keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Parses a KooGallery timestamp into UNIX milliseconds. Values of up to 10 digits are taken as seconds,
/// because the international editions of the guide say "seconds" (spec §2.5).
pub fn parse_timestamp(text: &str) -> Result<i64, VerifyError> {
    if text.is_empty() || text.len() > 13 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(VerifyError::InvalidTimestamp);
    }
    let value: i64 = text.parse().map_err(|_| VerifyError::InvalidTimestamp)?;
    Ok(if text.len() <= 10 { value * 1000 } else { value })
}

/// Checks the request's authentication against `raw_body`, taking `now_ms` as the current time.
///
/// The signature is tried over the raw bytes first and then over the canonical re-serialisation of the
/// parsed body; the result records which matched. Replay protection (has this nonce been seen?) needs
/// state and is the caller's job.
pub fn verify(
    key: &AccessKey,
    params: &SignatureParams,
    raw_body: &[u8],
    now_ms: i64,
    window: TimeWindow,
) -> Result<VerifiedBody, VerifyError> {
    let signature = params.signature.as_deref().filter(|s| !s.is_empty());
    let signature = signature.ok_or(VerifyError::MissingSignature)?;
    let timestamp = params.timestamp.as_deref().filter(|s| !s.is_empty());
    let timestamp = timestamp.ok_or(VerifyError::MissingTimestamp)?;
    let nonce = params.nonce.as_deref().filter(|s| !s.is_empty());
    let nonce =
        Nonce::parse(nonce.ok_or(VerifyError::MissingNonce)?).map_err(|_| VerifyError::InvalidNonce)?;
    let timestamp_ms = parse_timestamp(timestamp)?;
    let skew_ms = timestamp_ms.saturating_sub(now_ms);
    if skew_ms > window.future_ms || -skew_ms > window.past_ms {
        return Err(VerifyError::TimestampOutsideWindow { skew_ms });
    }

    let matches = |payload: &[u8]| {
        let expected = sign_payload(key, nonce.as_str(), timestamp, payload);
        signature_equals(&expected, signature)
    };
    let (value, matched) = if matches(raw_body) {
        let value = parse_object(raw_body).ok_or(VerifyError::MalformedBody)?;
        (value, MatchedForm::Raw)
    } else {
        // A body that is not JSON cannot have a canonical form; the signature is what failed.
        let value = parse_object(raw_body).ok_or(VerifyError::BadSignature)?;
        if !matches(&canonical_bytes(&value)) {
            return Err(VerifyError::BadSignature);
        }
        (value, MatchedForm::Canonical)
    };
    Ok(Verified { value, nonce, timestamp_ms, matched })
}

fn parse_object(raw_body: &[u8]) -> Option<Value> {
    serde_json::from_slice::<Value>(raw_body).ok().filter(Value::is_object)
}

/// Case-insensitive, constant-time comparison of hex signatures. Only the received value is lower-cased;
/// the expected one is produced lower-case.
fn signature_equals(expected_lower_hex: &str, received: &str) -> bool {
    let received = received.to_ascii_lowercase();
    expected_lower_hex.as_bytes().ct_eq(received.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "TestAccessKey1234567890";
    const NONCE: &str = "50D83FDECAED6CCD8EF597F2A577950527928BA287D04E6036E92B2806FD17DA";
    const TS: &str = "1680508066618";
    const BODY: &str = r#"{"activity":"newInstance","businessId":"87b94795-0603-4e24-8ae5-69420d60e3c8","orderId":"CS2211181819B4LVS","orderLineId":"CS2211181819B4LVS-000001","testFlag":"1"}"#;

    fn params(signature: &str, timestamp: &str, nonce: &str) -> SignatureParams {
        SignatureParams {
            signature: Some(signature.into()),
            timestamp: Some(timestamp.into()),
            nonce: Some(nonce.into()),
        }
    }

    #[test]
    fn query_parameters_are_percent_decoded_and_repeats_refused() {
        let p = SignatureParams::from_query("a=1&signature=AB&timestamp=12&nonce=x%2By").unwrap();
        assert_eq!(p, params("AB", "12", "x+y"));
        assert_eq!(SignatureParams::from_query("nonce=a&nonce=b"), Err(VerifyError::RepeatedParameter));
    }

    #[test]
    fn ten_digit_timestamps_are_seconds() {
        assert_eq!(parse_timestamp("1680508066"), Ok(1_680_508_066_000));
        assert_eq!(parse_timestamp("1680508066618"), Ok(1_680_508_066_618));
        assert_eq!(parse_timestamp("16805080666180"), Err(VerifyError::InvalidTimestamp));
        assert_eq!(parse_timestamp("-1680508066"), Err(VerifyError::InvalidTimestamp));
        assert_eq!(parse_timestamp("1e10"), Err(VerifyError::InvalidTimestamp));
    }

    #[test]
    fn window_is_inclusive_on_both_sides() {
        let key = AccessKey::from_text(KEY);
        let sig = sign_payload(&key, NONCE, TS, BODY.as_bytes());
        let ts: i64 = TS.parse().unwrap();
        let check = |now| verify(&key, &params(&sig, TS, NONCE), BODY.as_bytes(), now, TimeWindow::default());
        assert!(check(ts + 60_000).is_ok());
        assert!(check(ts - 60_000).is_ok());
        assert_eq!(check(ts + 60_001).unwrap_err(), VerifyError::TimestampOutsideWindow { skew_ms: -60_001 });
        assert!(check(ts - 60_001).is_err());
    }

    #[test]
    fn missing_parameters_map_to_the_documented_codes() {
        let key = AccessKey::from_text(KEY);
        let mut p = params("ab", TS, NONCE);
        p.signature = None;
        let err = verify(&key, &p, b"{}", 0, TimeWindow::default()).unwrap_err();
        assert_eq!(err.result_code(), ResultCode::InvalidToken);
        let mut p = params("ab", TS, NONCE);
        p.nonce = Some(String::new());
        let err = verify(&key, &p, b"{}", 0, TimeWindow::default()).unwrap_err();
        assert_eq!((err.clone(), err.result_code()), (VerifyError::MissingNonce, ResultCode::InvalidParam));
    }

    #[test]
    fn a_correctly_signed_non_object_body_is_malformed() {
        let key = AccessKey::from_text(KEY);
        let sig = sign_payload(&key, NONCE, TS, b"[1]");
        let err = verify(&key, &params(&sig, TS, NONCE), b"[1]", 1_680_508_066_618, TimeWindow::default());
        assert_eq!(err.unwrap_err(), VerifyError::MalformedBody);
    }
}
