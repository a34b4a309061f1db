//! The `Body-Sign` response header (spec §3): `base64(HMAC-SHA256(key, exact response bytes))`.

use base64::Engine as _;
use subtle::ConstantTimeEq;

use crate::key::AccessKey;
use crate::signature::hmac;

pub const HEADER_NAME: &str = "Body-Sign";

/// The header value, in the exact format of the documentation example (quotes, and the space after
/// `signature=`).
pub fn header_value(key: &AccessKey, body: &[u8]) -> String {
    let mac = base64::engine::general_purpose::STANDARD.encode(hmac(key, &[body]));
    format!("sign_type=\"HMAC-SHA256\", signature= \"{mac}\"")
}

/// Why a `Body-Sign` value was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodySignError {
    #[error("the Body-Sign header is not in the form sign_type=\"HMAC-SHA256\", signature= \"…\"")]
    Malformed,
    #[error("the Body-Sign signature does not match the body")]
    Mismatch,
}

/// Checks a received header against the body, tolerating white space around `=` and `,`. Used by the
/// simulator and the conformance runner to judge a merchant's responses.
pub fn verify(key: &AccessKey, header: &str, body: &[u8]) -> Result<(), BodySignError> {
    let mut sign_type = None;
    let mut signature = None;
    for part in header.split(',') {
        let (name, value) = part.split_once('=').ok_or(BodySignError::Malformed)?;
        let value = value.trim();
        let value =
            value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).ok_or(BodySignError::Malformed)?;
        match name.trim() {
            "sign_type" => sign_type = Some(value),
            "signature" => signature = Some(value),
            _ => return Err(BodySignError::Malformed),
        }
    }
    if sign_type != Some("HMAC-SHA256") {
        return Err(BodySignError::Malformed);
    }
    let received = signature.ok_or(BodySignError::Malformed)?;
    let expected = base64::engine::general_purpose::STANDARD.encode(hmac(key, &[body]));
    if bool::from(expected.as_bytes().ct_eq(received.as_bytes())) {
        Ok(())
    } else {
        Err(BodySignError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_accepts_what_header_value_produces_and_nothing_else() {
        let key = AccessKey::from_text("k");
        let header = header_value(&key, b"{}");
        assert_eq!(verify(&key, &header, b"{}"), Ok(()));
        assert_eq!(verify(&key, &header, b"{} "), Err(BodySignError::Mismatch));
        assert_eq!(verify(&key, "signature=abc", b"{}"), Err(BodySignError::Malformed));
    }
}
