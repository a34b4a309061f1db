//! Fuzzes the API Gateway AK/SK check (`apig::verify`, used by the mock KooGallery) with the oracle that
//! an accepted request carries exactly the signature `apig::authorization` computes for it.
//!
//! The input is structured (`arbitrary`): method, path, query pairs, headers and body, plus a mode. "Raw"
//! verifies the request as given; "signed" first signs it properly with the fixed credentials (as
//! koogate's Open API client does) and then applies at most one mutation to one part of it, including
//! the `Authorization` header itself.

#![no_main]

use arbitrary::Arbitrary;
use koogate_fuzz::{ByteMutation, NOW_MS};
use koogate_protocol::apig::{self, format_sdk_date, ApigRequest, ApigVerifyError, Credentials};
use koogate_protocol::open_api::MAX_CLOCK_SKEW_MS;
use libfuzzer_sys::fuzz_target;

const ACCESS_KEY_ID: &str = "FUZZACCESSKEYID";
const SECRET_KEY: &str = "fuzz-secret-access-key";

#[derive(Debug, Arbitrary)]
struct Input {
    mode: Mode,
    request: Owned,
}

/// An `ApigRequest` that owns its parts, so a mutation can change them.
#[derive(Debug, Arbitrary)]
struct Owned {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Owned {
    fn borrow(&self) -> ApigRequest<'_> {
        ApigRequest {
            method: &self.method,
            path: &self.path,
            query: &self.query,
            headers: &self.headers,
            body: &self.body,
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Mode {
    Raw,
    Signed {
        /// Seconds between `X-Sdk-Date` and now; beyond ±900 s the gateway refuses.
        date_offset_secs: i16,
        /// Sends `X-Sdk-Content-Sha256: UNSIGNED-PAYLOAD`, which replaces the body hash (and so leaves
        /// the body unsigned, as on the real gateway).
        unsigned_payload: bool,
        mutation: Option<(Part, ByteMutation)>,
    },
}

/// Which part of the signed request one mutation changes.
#[derive(Debug, Clone, Copy, Arbitrary)]
enum Part {
    Method,
    Path,
    QueryName(u8),
    QueryValue(u8),
    HeaderName(u8),
    HeaderValue(u8),
    Body,
    DropQuery(u8),
    DropHeader(u8),
    /// A copy of a header appended (the last value of a repeated header counts).
    DuplicateHeader(u8),
}

fuzz_target!(|input: Input| {
    let Input { mode, mut request } = input;
    let Mode::Signed { date_offset_secs, unsigned_payload, mutation } = mode else {
        let _ = check(&request.borrow());
        return;
    };
    sign(&mut request, date_offset_secs, unsigned_payload);
    let Some((part, m)) = mutation else {
        let result = check(&request.borrow());
        // Completeness: whatever `authorization` signs verifies, unless the clock is off. The date is whole
        // seconds, so the skew is the offset plus the milliseconds cut off "now".
        let date_ms = NOW_MS + i64::from(date_offset_secs) * 1000;
        let skew_ms = (date_ms.div_euclid(1000) * 1000 - NOW_MS).abs();
        if skew_ms <= MAX_CLOCK_SKEW_MS {
            assert!(result.is_ok(), "a properly signed request was refused: {result:?}");
        } else {
            assert_eq!(result.unwrap_err(), ApigVerifyError::Expired);
        }
        return;
    };
    mutate(&mut request, part, m);
    let _ = check(&request.borrow());
});

/// Signs the request as koogate's Open API client does: every header it carries, plus `Host` (if
/// missing), `X-Sdk-Date` and optionally `X-Sdk-Content-Sha256`, then adds `Authorization`.
fn sign(request: &mut Owned, date_offset_secs: i16, unsigned_payload: bool) {
    // Header names as HTTP allows them (RFC 9110 tokens); the signer's own headers are set below, so the
    // fuzzer's copies of those are dropped.
    request.headers.retain(|(name, _)| {
        !name.is_empty()
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
            && !["authorization", apig::DATE_HEADER, "x-sdk-content-sha256"]
                .iter()
                .any(|n| name.eq_ignore_ascii_case(n))
    });
    if !request.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        request.headers.push(("Host".into(), "mkt.example.com".into()));
    }
    let date_ms = NOW_MS + i64::from(date_offset_secs) * 1000;
    request.headers.push(("X-Sdk-Date".into(), format_sdk_date(date_ms)));
    if unsigned_payload {
        request.headers.push(("X-Sdk-Content-Sha256".into(), "UNSIGNED-PAYLOAD".into()));
    }
    let credentials = Credentials::new(ACCESS_KEY_ID, SECRET_KEY);
    let authorization = apig::authorization(&request.borrow(), &credentials).expect("Host and date are set");
    request.headers.push(("Authorization".into(), authorization));
}

fn mutate(request: &mut Owned, part: Part, m: ByteMutation) {
    let Owned { method, path, query, headers, body } = request;
    // Index modulo the length, so every value hits something when there is something to hit.
    let pick = |i: u8, len: usize| (len > 0).then(|| usize::from(i) % len);
    match part {
        Part::Method => *method = m.apply_str(method),
        Part::Path => *path = m.apply_str(path),
        Part::QueryName(i) => {
            if let Some(i) = pick(i, query.len()) {
                query[i].0 = m.apply_str(&query[i].0);
            }
        }
        Part::QueryValue(i) => {
            if let Some(i) = pick(i, query.len()) {
                query[i].1 = m.apply_str(&query[i].1);
            }
        }
        Part::HeaderName(i) => {
            if let Some(i) = pick(i, headers.len()) {
                headers[i].0 = m.apply_str(&headers[i].0);
            }
        }
        Part::HeaderValue(i) => {
            if let Some(i) = pick(i, headers.len()) {
                headers[i].1 = m.apply_str(&headers[i].1);
            }
        }
        Part::Body => {
            m.apply(body);
        }
        Part::DropQuery(i) => {
            if let Some(i) = pick(i, query.len()) {
                query.remove(i);
            }
        }
        Part::DropHeader(i) => {
            if let Some(i) = pick(i, headers.len()) {
                headers.remove(i);
            }
        }
        Part::DuplicateHeader(i) => {
            if let Some(i) = pick(i, headers.len()) {
                let (name, value) = headers[i].clone();
                headers.push((name, m.apply_str(&value)));
            }
        }
    }
}

/// Verifies the request with a lookup that knows only the fixed access key, and on acceptance checks
/// that the `Authorization` header is the one `apig::authorization` produces for the signed headers.
fn check(request: &ApigRequest<'_>) -> Result<Credentials, ApigVerifyError> {
    let lookup = |ak: &str| (ak == ACCESS_KEY_ID).then(|| Credentials::new(ACCESS_KEY_ID, SECRET_KEY));
    let result = apig::verify(request, lookup, NOW_MS, MAX_CLOCK_SKEW_MS);
    if let Ok(credentials) = &result {
        assert_eq!(credentials.access_key, ACCESS_KEY_ID);
        let received = AuthorizationParts::of(request).expect("accepted without a readable Authorization");
        assert_eq!(received.access, ACCESS_KEY_ID);
        // The headers the client said it signed, each with the value the gateway reads (the last one of
        // that name, trimmed; names with `_` are invisible to the gateway).
        let signed: Vec<(String, String)> = received
            .signed_headers
            .split(';')
            .map(|name| {
                let value = request
                    .headers
                    .iter()
                    .rev()
                    .find(|(n, _)| !n.contains('_') && n.to_ascii_lowercase() == name)
                    .map(|(_, v)| v.trim().to_owned())
                    .expect("accepted with a signed header that is not in the request");
                (name.to_owned(), value)
            })
            .collect();
        let expected = apig::authorization(&ApigRequest { headers: &signed, ..*request }, credentials)
            .expect("accepted without Host or X-Sdk-Date");
        let expected = AuthorizationParts::parse(&expected).unwrap();
        assert_eq!(expected.signed_headers, received.signed_headers, "SignedHeaders not in canonical form");
        assert_eq!(
            expected.signature,
            received.signature.to_ascii_lowercase(),
            "accepted a signature that apig::authorization does not produce for this request"
        );
    }
    result
}

/// `SDK-HMAC-SHA256 Access=…, SignedHeaders=…, Signature=…`, split independently of the crate's parser.
struct AuthorizationParts {
    access: String,
    signed_headers: String,
    signature: String,
}

impl AuthorizationParts {
    /// The `Authorization` header the gateway reads: the last one, name compared case-insensitively.
    fn of(request: &ApigRequest<'_>) -> Option<Self> {
        let (_, value) =
            request.headers.iter().rev().find(|(n, _)| n.eq_ignore_ascii_case("authorization"))?;
        Self::parse(value.trim())
    }

    fn parse(value: &str) -> Option<Self> {
        let rest = value.strip_prefix("SDK-HMAC-SHA256 ")?;
        let (mut access, mut signed_headers, mut signature) = (None, None, None);
        for part in rest.split(',') {
            match part.trim().split_once('=')? {
                ("Access", v) => access = Some(v.to_owned()),
                ("SignedHeaders", v) => signed_headers = Some(v.to_owned()),
                ("Signature", v) => signature = Some(v.to_owned()),
                _ => return None,
            }
        }
        Some(Self { access: access?, signed_headers: signed_headers?, signature: signature? })
    }
}
