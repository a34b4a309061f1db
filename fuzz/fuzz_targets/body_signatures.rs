//! Fuzzes the three body-MAC verifiers — `body_sign::verify` (the `Body-Sign` response header),
//! `usage::verify_usage_signature` (usage-data pushes) and `webhook::verify` (Standard Webhooks) — with the
//! oracle that acceptance implies the MAC the documented formula gives for exactly these inputs.
//!
//! Input layout: byte 0 is a flag byte; bits 0–1 pick the scheme (0 Body-Sign, 1 usage, 2–3 webhook),
//! bit 2 selects "signed" mode, bits 3–4 the mutation (0 none, 1 replace, 2 insert, 3 delete) and bits
//! 5–7 the field it hits. Signed mode then takes three mutation bytes (position big-endian, byte). The
//! rest is newline-separated fields, the last of which (the body) takes everything left:
//! - Body-Sign: `<header>\n<body>`
//! - usage: `<ts>\n<nonce>\n<signature>\n<body>`
//! - webhook: `<id>\n<timestamp>\n<signature>\n<body>`
//!
//! In signed mode the signature field is replaced by the correct one (for webhook scheme 2 signed by the
//! older secret only, scheme 3 by both, as during a rotation) before the mutation is applied.

#![no_main]

use koogate_fuzz::{b64, b64_decode, hmac_sha256, split_line, ByteMutation, ACCESS_KEY, NOW_MS};
use koogate_protocol::body_sign;
use koogate_protocol::usage::{usage_signature, verify_usage_signature};
use koogate_protocol::webhook::{self, WebhookSecret};
use koogate_protocol::AccessKey;
use libfuzzer_sys::fuzz_target;

/// Two webhook secrets, as during a rotation: the newer signs first, both verify.
const WEBHOOK_KEYS: [&[u8]; 2] = [b"koogate-fuzz-newer-webhook-secret", b"koogate-fuzz-older-webhook-secret"];
const NOW_SECS: i64 = NOW_MS / 1000;
const TOLERANCE_SECS: i64 = 300;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else { return };
    let signed = flags & 4 != 0;
    let (mutation, rest) = if signed {
        let Some((raw, rest)) = rest.split_first_chunk::<3>() else { return };
        (ByteMutation::from_raw(flags >> 3, *raw), rest)
    } else {
        (None, rest)
    };
    let field = usize::from(flags >> 5);
    match flags & 3 {
        0 => body_sign_case(signed, mutation, field, rest),
        1 => usage_case(signed, mutation, field, rest),
        scheme => webhook_case(signed, scheme == 3, mutation, field, rest),
    }
});

/// Splits `data` into `N` fields at newlines; the last field keeps the rest, newlines included.
fn fields<const N: usize>(mut data: &[u8]) -> [Vec<u8>; N] {
    std::array::from_fn(|i| {
        if i + 1 == N {
            data.to_vec()
        } else {
            let (field, rest) = split_line(data);
            data = rest;
            field.to_vec()
        }
    })
}

/// Applies the mutation to field `index % N` (only the non-body fields are text, and they are decoded
/// lossily as a server decoding headers would).
fn mutate<const N: usize>(fields: &mut [Vec<u8>; N], mutation: Option<ByteMutation>, index: usize) {
    if let Some(mutation) = mutation {
        mutation.apply(&mut fields[index % N]);
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn body_sign_case(signed: bool, mutation: Option<ByteMutation>, field: usize, data: &[u8]) {
    let key = AccessKey::from_text(ACCESS_KEY);
    let mut f = fields::<2>(data);
    if signed {
        f[0] = body_sign::header_value(&key, &f[1]).into_bytes();
        mutate(&mut f, mutation, field);
    }
    let [header, body] = &f;
    let header = text(header);
    // Spec §3: base64(HMAC-SHA256(key, exact response bytes)).
    let expected = b64(&hmac_sha256(ACCESS_KEY.as_bytes(), &[body]));
    // Completeness: the value the crate writes always verifies.
    assert_eq!(body_sign::verify(&key, &body_sign::header_value(&key, body), body), Ok(()));
    match body_sign::verify(&key, &header, body) {
        Ok(()) => {
            let carries_expected = header.split(',').any(|part| {
                part.split_once('=').is_some_and(|(name, value)| {
                    name.trim() == "signature" && value.trim() == format!("\"{expected}\"")
                })
            });
            assert!(carries_expected, "Body-Sign accepted without the body's MAC: {header:?}");
        }
        Err(e) => assert!(!(signed && mutation.is_none()), "the crate's own header was refused: {e}"),
    }
}

fn usage_case(signed: bool, mutation: Option<ByteMutation>, field: usize, data: &[u8]) {
    let key = AccessKey::from_text(ACCESS_KEY);
    let mut f = fields::<4>(data);
    if signed {
        f[2] = usage_signature(&key, &text(&f[0]), &text(&f[1]), &f[3]).into_bytes();
        mutate(&mut f, mutation, field);
    }
    let [ts, nonce, signature, body] = &f;
    let (ts, nonce, signature) = (text(ts), text(nonce), text(signature));
    let accepted = verify_usage_signature(&key, &ts, &nonce, body, &signature);
    if accepted {
        // open-apis §5.2: base64(HMAC-SHA256(key, "ts={ts}&nonce={nonce}&body={body}")).
        let message = [b"ts=", ts.as_bytes(), b"&nonce=", nonce.as_bytes(), b"&body=", body];
        let expected = b64(&hmac_sha256(ACCESS_KEY.as_bytes(), &message));
        assert_eq!(signature, expected, "usage signature accepted without the documented MAC");
    } else {
        assert!(!(signed && mutation.is_none()), "the crate's own usage signature was refused");
    }
}

fn webhook_case(signed: bool, both: bool, mutation: Option<ByteMutation>, field: usize, data: &[u8]) {
    let secrets: Vec<WebhookSecret> =
        WEBHOOK_KEYS.iter().map(|k| WebhookSecret::parse(&WebhookSecret::encode(k)).unwrap()).collect();
    let mut f = fields::<4>(data);
    if signed {
        // A timestamp the fuzzer gave is kept (to explore the window); otherwise "now".
        let ts = text(&f[1]).trim().parse::<i64>().unwrap_or(NOW_SECS);
        f[1] = ts.to_string().into_bytes();
        let signers = if both { &secrets[..] } else { &secrets[1..] };
        f[2] = webhook::signature_header(signers, &text(&f[0]), ts, &f[3]).into_bytes();
        mutate(&mut f, mutation, field);
    }
    let [id, timestamp, signature, body] = &f;
    let (id, timestamp, signature) = (text(id), text(timestamp), text(signature));
    let result = webhook::verify(&secrets, &id, &timestamp, &signature, body, NOW_SECS, TOLERANCE_SECS);
    match result {
        Ok(()) => {
            let ts: i64 = timestamp.trim().parse().expect("accepted an unparsable webhook-timestamp");
            assert!(ts.abs_diff(NOW_SECS) <= TOLERANCE_SECS.unsigned_abs(), "accepted an expired delivery");
            // The signed content is "{id}.{timestamp}.{body}" with the timestamp as the integer it parses
            // to (what `signature_header` writes); one `v1,` entry must decode to one secret's MAC of it.
            let content = [id.as_bytes(), b".", ts.to_string().as_bytes(), b".", body].concat();
            let macs: Vec<[u8; 32]> = WEBHOOK_KEYS.iter().map(|k| hmac_sha256(k, &[&content])).collect();
            let matched = signature
                .split_whitespace()
                .filter_map(|entry| entry.strip_prefix("v1,"))
                .filter_map(b64_decode)
                .any(|mac| macs.iter().any(|m| m[..] == mac[..]));
            assert!(matched, "webhook accepted without a v1 entry carrying a secret's MAC");
        }
        Err(e) => {
            if signed && mutation.is_none() {
                let ts: i64 = timestamp.parse().unwrap();
                // Only the time window may refuse an untouched delivery.
                assert!(ts.abs_diff(NOW_SECS) > TOLERANCE_SECS.unsigned_abs(), "own delivery refused: {e}");
            }
        }
    }
}
