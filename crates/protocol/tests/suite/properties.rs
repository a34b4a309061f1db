//! Properties of the V2 request signature: whatever KooGallery signs verifies, and any single-byte change
//! to the body, signature, timestamp or nonce is refused — checked by proptest and by a million
//! deterministic mutations, none of which may be accepted or panic.

use koogate_protocol::canonical::canonical_bytes;
use koogate_protocol::signature::{sign_payload, verify, SignatureParams, TimeWindow};
use koogate_protocol::AccessKey;
use proptest::prelude::*;
use serde_json::{Map, Value};

const NOW: i64 = 1_796_400_000_000;

fn params(signature: &str, timestamp: &str, nonce: &str) -> SignatureParams {
    SignatureParams {
        signature: Some(signature.into()),
        timestamp: Some(timestamp.into()),
        nonce: Some(nonce.into()),
    }
}

fn body_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::btree_map("[a-zA-Z]{1,12}", "[ -~中文é]{0,24}", 1..8).prop_map(|fields| {
        let map: Map<String, Value> = fields.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
        canonical_bytes(&Value::Object(map))
    })
}

/// A byte change that is a real change: signatures compare case-insensitively, so swapping the case of
/// a hex letter is not one.
fn mutate(text: &[u8], position: usize, byte: u8) -> Option<Vec<u8>> {
    let mut changed = text.to_vec();
    let old = changed[position % changed.len()];
    if old.eq_ignore_ascii_case(&byte) {
        return None;
    }
    changed[position % text.len()] = byte;
    Some(changed)
}

proptest! {
    #[test]
    fn whatever_is_signed_verifies(body in body_strategy(), key in "[ -~]{1,40}", nonce in "[A-Za-z0-9]{16,64}", skew in -60_000i64..60_000) {
        let key = AccessKey::from_text(&key);
        let timestamp = (NOW + skew).to_string();
        let signature = sign_payload(&key, &nonce, &timestamp, &body).to_uppercase();
        prop_assert!(verify(&key, &params(&signature, &timestamp, &nonce), &body, NOW, TimeWindow::default()).is_ok());
    }

    #[test]
    fn any_single_byte_change_is_refused(
        body in body_strategy(),
        nonce in "[A-Za-z0-9]{16,64}",
        field in 0usize..4,
        position in any::<usize>(),
        byte in any::<u8>(),
    ) {
        let key = AccessKey::from_text("PropertyKey");
        let timestamp = NOW.to_string();
        let signature = sign_payload(&key, &nonce, &timestamp, &body);
        let parts = [body.clone(), signature.clone().into_bytes(), timestamp.clone().into_bytes(), nonce.clone().into_bytes()];
        let Some(changed) = mutate(&parts[field], position, byte) else { return Ok(()) };
        let text = |i: usize| if i == field { String::from_utf8_lossy(&changed).into_owned() } else { String::from_utf8_lossy(&parts[i]).into_owned() };
        let body = if field == 0 { changed.clone() } else { body };
        prop_assert!(verify(&key, &params(&text(1), &text(2), &text(3)), &body, NOW, TimeWindow::default()).is_err());
    }
}

#[test]
fn a_million_mutated_requests_are_all_refused() {
    let key = AccessKey::from_text("MillionKey");
    let body = br#"{"activity":"newInstance","businessId":"87b94795-0603-4e24-8ae5-69420d60e3c8","orderId":"CS2211181819B4LVS","orderLineId":"CS2211181819B4LVS-000001","testFlag":"1"}"#.to_vec();
    let nonce = "50D83FDECAED6CCD8EF597F2A577950527928BA287D04E6036E92B2806FD17DA".to_owned();
    let timestamp = NOW.to_string();
    let signature = sign_payload(&key, &nonce, &timestamp, &body);
    assert!(verify(&key, &params(&signature, &timestamp, &nonce), &body, NOW, TimeWindow::default()).is_ok());
    let parts = [body, signature.into_bytes(), timestamp.into_bytes(), nonce.into_bytes()];
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut tried, mut accepted) = (0u64, 0u64);
    while tried < 1_000_000 {
        let field = (next() % 4) as usize;
        let Some(changed) = mutate(&parts[field], next() as usize, next() as u8) else { continue };
        tried += 1;
        let text = |i: usize| {
            let bytes = if i == field { &changed } else { &parts[i] };
            String::from_utf8_lossy(bytes).into_owned()
        };
        let body = if field == 0 { &changed } else { &parts[0] };
        if verify(&key, &params(&text(1), &text(2), &text(3)), body, NOW, TimeWindow::default()).is_ok() {
            accepted += 1;
        }
    }
    assert_eq!(accepted, 0, "{accepted} of {tried} mutated requests were accepted");
}
