//! The API Gateway `SDK-HMAC-SHA256` AK/SK signature (open-apis §2) that KooGallery's Open APIs (Query
//! Order, the old usage push) require: signing for koogate's client, verifying for the mock KooGallery.
//!
//! Where the prose is ambiguous this follows Huawei's official Python signer (`huaweicloudsdkcore`), and a
//! cross-check test compares the two: query parameters are sorted by their *unescaped* name, then value;
//! every header given is signed; a `X-Sdk-Content-Sha256` header replaces the body hash.

use hmac::{Hmac, Mac};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};
use zeroize::Zeroizing;

pub const ALGORITHM: &str = "SDK-HMAC-SHA256";
pub const DATE_HEADER: &str = "x-sdk-date";
const CONTENT_SHA256_HEADER: &str = "x-sdk-content-sha256";

/// Everything but `A–Z a–z 0–9 - _ . ~` is percent-encoded, with upper-case hex (space is `%20`).
const URI_ESCAPE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// An access key id and its secret. `Debug` shows the id only.
#[derive(Clone)]
pub struct Credentials {
    pub access_key: String,
    secret_key: Zeroizing<Vec<u8>>,
}

impl Credentials {
    pub fn new(access_key: impl Into<String>, secret_key: &str) -> Self {
        Self { access_key: access_key.into(), secret_key: Zeroizing::new(secret_key.as_bytes().to_vec()) }
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, [REDACTED])", self.access_key)
    }
}

/// A request as the signature sees it.
#[derive(Debug, Clone, Copy)]
pub struct ApigRequest<'a> {
    pub method: &'a str,
    /// The URL path as sent (it may be percent-encoded; it is decoded before canonical encoding).
    pub path: &'a str,
    /// Decoded query parameters.
    pub query: &'a [(String, String)],
    /// The headers to sign (for verification: all headers received). Must include `Host` and
    /// `X-Sdk-Date`; names are matched case-insensitively.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

/// `escape(name)=escape(value)` pairs sorted by name then value, joined with `&` — also the query string
/// to send, so the URL and the signature agree.
pub fn canonical_query(query: &[(String, String)]) -> String {
    let mut pairs: Vec<&(String, String)> = query.iter().collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(name, value)| format!("{}={}", escape(name), escape(value)))
        .collect::<Vec<_>>()
        .join("&")
}

fn escape(text: &str) -> String {
    utf8_percent_encode(text, URI_ESCAPE).to_string()
}

/// The path decoded, each `/`-separated segment escaped, and a trailing `/` added.
fn canonical_uri(path: &str) -> String {
    let decoded = percent_decode_str(path).decode_utf8_lossy();
    let mut uri = decoded.split('/').map(escape).collect::<Vec<_>>().join("/");
    if !uri.ends_with('/') {
        uri.push('/');
    }
    uri
}

/// Lower-cased, trimmed headers sorted by name (a header given twice keeps its last value). Names with
/// `_` are left out, as the official signers do (proxies commonly drop such headers).
fn normalized_headers(headers: &[(String, String)]) -> Vec<(String, String)> {
    let mut map = std::collections::BTreeMap::new();
    for (name, value) in headers.iter().filter(|(name, _)| !name.contains('_')) {
        map.insert(name.to_ascii_lowercase(), value.trim().to_owned());
    }
    map.into_iter().collect()
}

fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

/// The six-line canonical request over `signed` (normalized) headers.
fn canonical_request_with(request: &ApigRequest<'_>, signed: &[(String, String)]) -> String {
    let header_block: String = signed.iter().map(|(name, value)| format!("{name}:{value}\n")).collect();
    let names: Vec<&str> = signed.iter().map(|(name, _)| name.as_str()).collect();
    let payload_hash = match header(signed, CONTENT_SHA256_HEADER) {
        Some(given) => given.to_owned(),
        None => hex::encode(Sha256::digest(request.body)),
    };
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        request.method.to_ascii_uppercase(),
        canonical_uri(request.path),
        canonical_query(request.query),
        header_block,
        names.join(";"),
        payload_hash
    )
}

/// The canonical request signing all of `request.headers` (for tests and debugging).
pub fn canonical_request(request: &ApigRequest<'_>) -> String {
    canonical_request_with(request, &normalized_headers(request.headers))
}

fn signature_over(canonical: &str, sdk_date: &str, secret_key: &[u8]) -> String {
    let string_to_sign =
        format!("{ALGORITHM}\n{sdk_date}\n{}", hex::encode(Sha256::digest(canonical.as_bytes())));
    let mut mac = Hmac::<Sha256>::new_from_slice(secret_key).expect("HMAC accepts keys of any length");
    mac.update(string_to_sign.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// A request's headers lack `Host` or `X-Sdk-Date`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an AK/SK signed request needs Host and X-Sdk-Date headers")]
pub struct MissingSignedHeader;

/// The `Authorization` header value for `request`, signing every header it carries.
pub fn authorization(
    request: &ApigRequest<'_>,
    credentials: &Credentials,
) -> Result<String, MissingSignedHeader> {
    let signed = normalized_headers(request.headers);
    let date = header(&signed, DATE_HEADER).ok_or(MissingSignedHeader)?;
    header(&signed, "host").ok_or(MissingSignedHeader)?;
    let signature = signature_over(&canonical_request_with(request, &signed), date, &credentials.secret_key);
    let names: Vec<&str> = signed.iter().map(|(name, _)| name.as_str()).collect();
    Ok(format!(
        "{ALGORITHM} Access={}, SignedHeaders={}, Signature={signature}",
        credentials.access_key,
        names.join(";")
    ))
}

/// `X-Sdk-Date` for a UNIX time in milliseconds: `yyyyMMdd'T'HHmmss'Z'` UTC.
pub fn format_sdk_date(unix_ms: i64) -> String {
    let format = format_description!("[year][month][day]T[hour][minute][second]Z");
    OffsetDateTime::from_unix_timestamp(unix_ms.div_euclid(1000))
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| "19700101T000000Z".to_owned())
}

pub fn parse_sdk_date(text: &str) -> Option<i64> {
    let format = format_description!("[year][month][day]T[hour][minute][second]Z");
    PrimitiveDateTime::parse(text, &format).ok().map(|t| t.assume_utc().unix_timestamp() * 1000)
}

/// Why the gateway would refuse a request (all of these are `APIGW.0301` on the real gateway).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApigVerifyError {
    #[error("the Authorization header is missing or not SDK-HMAC-SHA256")]
    MalformedAuthorization,
    #[error("a signed header is missing from the request")]
    MissingSignedHeader,
    #[error("X-Sdk-Date is missing, malformed or more than the allowed skew away from now")]
    Expired,
    #[error("the access key is unknown")]
    UnknownAccessKey,
    #[error("the signature does not match")]
    BadSignature,
}

/// Verifies a received request: `request.headers` are all headers received, including `Authorization`.
/// `secret_for` looks up the secret of an access key id; `max_skew_ms` is the gateway's 15 minutes.
pub fn verify(
    request: &ApigRequest<'_>,
    secret_for: impl Fn(&str) -> Option<Credentials>,
    now_ms: i64,
    max_skew_ms: i64,
) -> Result<Credentials, ApigVerifyError> {
    let received = normalized_headers(request.headers);
    let authorization = header(&received, "authorization").ok_or(ApigVerifyError::MalformedAuthorization)?;
    let (access_key, names, signature) = parse_authorization(authorization)?;
    let signed: Vec<(String, String)> = names
        .split(';')
        .map(|name| header(&received, name).map(|v| (name.to_owned(), v.to_owned())))
        .collect::<Option<_>>()
        .ok_or(ApigVerifyError::MissingSignedHeader)?;
    if header(&signed, "host").is_none() {
        return Err(ApigVerifyError::MissingSignedHeader);
    }
    let date = header(&signed, DATE_HEADER).ok_or(ApigVerifyError::MissingSignedHeader)?;
    let date_ms = parse_sdk_date(date).ok_or(ApigVerifyError::Expired)?;
    if u64::try_from(max_skew_ms).map_or(true, |skew| date_ms.abs_diff(now_ms) > skew) {
        return Err(ApigVerifyError::Expired);
    }
    let credentials = secret_for(access_key).ok_or(ApigVerifyError::UnknownAccessKey)?;
    let expected = signature_over(&canonical_request_with(request, &signed), date, &credentials.secret_key);
    if bool::from(expected.as_bytes().ct_eq(signature.to_ascii_lowercase().as_bytes())) {
        Ok(credentials)
    } else {
        Err(ApigVerifyError::BadSignature)
    }
}

/// Splits `SDK-HMAC-SHA256 Access=…, SignedHeaders=…, Signature=…`.
fn parse_authorization(value: &str) -> Result<(&str, &str, &str), ApigVerifyError> {
    let rest = value
        .strip_prefix(ALGORITHM)
        .and_then(|r| r.strip_prefix(' '))
        .ok_or(ApigVerifyError::MalformedAuthorization)?;
    let (mut access, mut names, mut signature) = (None, None, None);
    for part in rest.split(',') {
        match part.trim().split_once('=') {
            Some(("Access", v)) => access = Some(v),
            Some(("SignedHeaders", v)) => names = Some(v),
            Some(("Signature", v)) => signature = Some(v),
            _ => return Err(ApigVerifyError::MalformedAuthorization),
        }
    }
    match (access, names, signature) {
        (Some(a), Some(n), Some(s)) if !a.is_empty() && !n.is_empty() => Ok((a, n, s)),
        _ => Err(ApigVerifyError::MalformedAuthorization),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    }

    #[test]
    fn escaping_keeps_only_unreserved_characters() {
        assert_eq!(escape("a b+c/d~e_f.g-h中"), "a%20b%2Bc%2Fd~e_f.g-h%E4%B8%AD");
    }

    #[test]
    fn the_canonical_uri_gets_a_trailing_slash_and_encoded_segments() {
        assert_eq!(canonical_uri("/v1/a b/c"), "/v1/a%20b/c/");
        assert_eq!(canonical_uri("/v1/a%20b/"), "/v1/a%20b/");
        assert_eq!(canonical_uri(""), "/");
    }

    #[test]
    fn query_pairs_sort_by_name_then_value_and_keep_empty_values() {
        let query = headers(&[("b", "2"), ("a", ""), ("b", "1"), ("A", "x")]);
        assert_eq!(canonical_query(&query), "A=x&a=&b=1&b=2");
    }

    #[test]
    fn sdk_dates_round_trip() {
        assert_eq!(format_sdk_date(1_710_686_557_000), "20240317T144237Z");
        assert_eq!(parse_sdk_date("20240317T144237Z"), Some(1_710_686_557_000));
        assert_eq!(parse_sdk_date("2024-03-17"), None);
    }

    #[test]
    fn verification_accepts_a_signed_request_and_refuses_tampering() {
        let credentials = Credentials::new("AK", "SK");
        let query = headers(&[("orderId", "O1")]);
        let mut all = headers(&[
            ("Host", "h"),
            ("X-Sdk-Date", "20240317T144237Z"),
            ("Content-Type", "application/json"),
        ]);
        let auth = authorization(
            &ApigRequest { method: "GET", path: "/p", query: &query, headers: &all, body: b"" },
            &credentials,
        )
        .unwrap();
        all.push(("Authorization".into(), auth));
        let request = ApigRequest { method: "GET", path: "/p", query: &query, headers: &all, body: b"" };
        let now = 1_710_686_557_000;
        let lookup = |ak: &str| (ak == "AK").then(|| credentials.clone());
        let check = |r: &ApigRequest<'_>, now| verify(r, lookup, now, 900_000);
        assert!(check(&request, now).is_ok());
        assert_eq!(check(&request, now + 900_001).unwrap_err(), ApigVerifyError::Expired);
        let other_query = headers(&[("orderId", "O2")]);
        assert_eq!(
            check(&ApigRequest { query: &other_query, ..request }, now).unwrap_err(),
            ApigVerifyError::BadSignature
        );
        assert_eq!(
            check(&ApigRequest { body: b"x", ..request }, now).unwrap_err(),
            ApigVerifyError::BadSignature
        );
    }

    #[test]
    fn debug_hides_the_secret() {
        assert!(!format!("{:?}", Credentials::new("AK", "TOPSECRET")).contains("TOPSECRET"));
    }
}
