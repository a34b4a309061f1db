//! Fuzzes the V2 callback signature check (`SignatureParams::from_query` + `signature::verify`) and the
//! message parsing that follows it, with the oracle that nothing is accepted without the key's signature.
//!
//! Input layout (byte 0 is a flag byte, chosen so that text seeds stay readable):
//! - bit 0 clear, "raw" mode: the rest is `<raw query>\n<raw body>`, verified as received.
//! - bit 0 set, "signed" mode: bytes 1–3 are a mutation (position big-endian, byte) and the rest is
//!   `<extra query>\n<body>`. The body is signed properly with the fixed key (`signed_query`), the extra
//!   query parameters are put in front, and then one byte of the query (bit 6) or the body is replaced,
//!   inserted or deleted (bits 4–5; 0 = leave the request alone). Bit 1 signs the canonical form of the
//!   body instead of its raw bytes, bits 2–3 pick the timestamp (milliseconds, seconds, either window edge).
//!
//! Signed mode is how the fuzzer reaches the accept path at all: it cannot guess an HMAC.

#![no_main]

use koogate_fuzz::{split_line, v2_signature, ByteMutation, ACCESS_KEY, NONCE, NOW_MS};
use koogate_protocol::canonical::canonical_bytes;
use koogate_protocol::messages::{parse_request, Request};
use koogate_protocol::signature::{
    parse_timestamp, sign_payload, signed_query, verify, MatchedForm, SignatureParams, TimeWindow,
};
use koogate_protocol::AccessKey;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else { return };
    let key = AccessKey::from_text(ACCESS_KEY);
    if flags & 1 == 0 {
        let (query, body) = split_line(rest);
        check(&key, &String::from_utf8_lossy(query), body);
    } else {
        signed(&key, flags, rest);
    }
});

fn signed(key: &AccessKey, flags: u8, rest: &[u8]) {
    let Some((raw_mutation, rest)) = rest.split_first_chunk::<3>() else { return };
    let (extra_query, body) = split_line(rest);
    let timestamp = match (flags >> 2) & 3 {
        0 => NOW_MS.to_string(),
        // Ten digits are read as seconds (spec §2.5).
        1 => (NOW_MS / 1000).to_string(),
        // The window is inclusive on both sides.
        2 => (NOW_MS - 60_000).to_string(),
        _ => (NOW_MS + 60_000).to_string(),
    };
    let parsed_body = serde_json::from_slice::<Value>(body).ok();
    // The platform signs either the bytes it sends or their canonical form; both must verify.
    let payload = match (&parsed_body, flags & 2 != 0) {
        (Some(value), true) => canonical_bytes(value),
        _ => body.to_vec(),
    };
    let signed = signed_query(key, NONCE, &timestamp, &payload);
    let mut query = match std::str::from_utf8(extra_query) {
        Ok(extra) if !extra.is_empty() => format!("{extra}&{signed}"),
        _ => signed,
    };
    let mut body = body.to_vec();
    let mutation = ByteMutation::from_raw(flags >> 4, *raw_mutation);
    if let Some(mutation) = mutation {
        if flags & 0x40 != 0 {
            query = mutation.apply_str(&query);
        } else {
            mutation.apply(&mut body);
        }
    }

    let accepted = check(key, &query, &body);
    let signature = sign_payload(key, NONCE, &timestamp, &payload);
    let params = SignatureParams::from_query(&query);
    // The parameters still say what was signed when the extra query did not interfere and the mutation
    // (if any) missed them; case is irrelevant because signatures compare case-insensitively.
    let intact = params.as_ref().is_ok_and(|p| {
        p.signature.as_deref().is_some_and(|s| s.eq_ignore_ascii_case(&signature))
            && p.timestamp.as_deref() == Some(timestamp.as_str())
            && p.nonce.as_deref() == Some(NONCE)
    });

    if let Some(matched) = accepted {
        if intact {
            // Accepted under the original signature: the bytes signed must be what the verifier compared,
            // either the body as received or its canonical form. Anything else would mean a changed body
            // slipped through under an old signature.
            let canonical = serde_json::from_slice::<Value>(&body).ok().map(|v| canonical_bytes(&v));
            assert!(
                payload == body || canonical.as_deref() == Some(payload.as_slice()),
                "a changed body was accepted under the original signature ({matched:?})"
            );
        }
    } else if mutation.is_none() && intact {
        // Completeness: an untouched, properly signed request is refused only when its body is not a JSON
        // object (nonce and timestamps above are all valid and inside the window).
        let is_object = parsed_body.as_ref().is_some_and(Value::is_object);
        assert!(!is_object, "a properly signed request was refused");
    }
}

/// Verifies a request as the server would. When it is accepted, checks the oracle and the message
/// parsing, and returns which form of the body matched.
fn check(key: &AccessKey, query: &str, body: &[u8]) -> Option<MatchedForm> {
    let params = SignatureParams::from_query(query).ok()?;
    let verified = verify(key, &params, body, NOW_MS, TimeWindow::default()).ok()?;

    let signature = params.signature.as_deref().expect("accepted without a signature").to_ascii_lowercase();
    let timestamp = params.timestamp.as_deref().expect("accepted without a timestamp");
    let nonce = params.nonce.as_deref().expect("accepted without a nonce");
    let value: Value = serde_json::from_slice(body).expect("accepted a body that is not JSON");
    assert!(value.is_object(), "accepted a body that is not a JSON object");
    assert_eq!(verified.get(), &value);

    // The oracle: the signature given is the key's signature over the raw body or over its canonical
    // form, recomputed from the spec's formula (and the crate's own signer must agree with the formula).
    let key_bytes = ACCESS_KEY.as_bytes();
    let over_raw = v2_signature(key_bytes, nonce, timestamp, body);
    let canonical = canonical_bytes(&value);
    let over_canonical = v2_signature(key_bytes, nonce, timestamp, &canonical);
    assert_eq!(sign_payload(key, nonce, timestamp, body), over_raw);
    assert!(
        signature == over_raw || signature == over_canonical,
        "accepted a signature that is neither the raw nor the canonical one"
    );
    // The raw form is tried first, so "canonical" is reported only when the raw one did not match.
    let expected_form = if signature == over_raw { MatchedForm::Raw } else { MatchedForm::Canonical };
    assert_eq!(verified.matched(), expected_form);

    assert_eq!(verified.nonce().as_str(), nonce);
    let timestamp_ms = parse_timestamp(timestamp).expect("accepted an unparsable timestamp");
    assert_eq!(verified.timestamp_ms(), timestamp_ms);
    let window = TimeWindow::default();
    assert!((-window.past_ms..=window.future_ms).contains(&(timestamp_ms - NOW_MS)));

    // What the handler sees next: the same parse as on the bare value, with nonce and time carried over.
    let matched = verified.matched();
    let direct = Request::from_value(&value);
    match (parse_request(verified), direct) {
        (Ok(request), Ok(direct)) => {
            assert_eq!(request.get(), &direct);
            assert_eq!((request.nonce().as_str(), request.timestamp_ms()), (nonce, timestamp_ms));
            assert_eq!(request.matched(), matched);
        }
        (Err(a), Err(b)) => assert_eq!(a, b),
        (a, b) => panic!("parse_request and Request::from_value disagree: {a:?} vs {b:?}"),
    }
    Some(matched)
}
