//! Fuzzes the two JSON writers of the protocol crate: `canonical::canonical_bytes` (the form KooGallery
//! signs) and `json::to_ascii_json` (the response encoding), against plain serde_json.
//!
//! The input is any byte string; when it parses as JSON the writers must produce valid JSON describing
//! the same data, the canonical form must be a fixed point, and the ASCII form must be ASCII.

#![no_main]

use koogate_fuzz::{assert_sorted_maps, contains_float, json_close, strip_null_members};
use koogate_protocol::canonical::canonical_bytes;
use koogate_protocol::json::to_ascii_json;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    assert_sorted_maps();
    if let Ok(text) = std::str::from_utf8(data) {
        // Strings on their own: the ASCII escaping must give back exactly the same text.
        let ascii = to_ascii_json(text);
        assert!(ascii.is_ascii());
        assert_eq!(serde_json::from_slice::<String>(&ascii).unwrap(), text);
    }
    let Ok(value) = serde_json::from_slice::<Value>(data) else { return };
    let expected = strip_null_members(&value);

    let canonical = canonical_bytes(&value);
    // An independent spelling of the documented form: serde_json's `Map` is a BTreeMap ordered by the
    // keys' bytes (checked above), so plain compact serde_json of the null-stripped value is "keys sorted
    // by byte, nulls dropped, compact" — byte for byte, floats included (both print with the same ryu).
    assert_eq!(
        canonical,
        serde_json::to_vec(&expected).unwrap(),
        "canonical_bytes differs from sorted compact JSON without null members"
    );
    let reparsed: Value = serde_json::from_slice(&canonical).expect("canonical_bytes is not valid JSON");
    // Null members are documented to be dropped, so the round trip gives the null-stripped value.
    assert!(json_close(&reparsed, &expected), "canonical form parses back to different data");
    let again = canonical_bytes(&reparsed);
    if contains_float(&value) {
        // serde_json's best-effort float parsing may move a float by an ULP (see FLOAT_ULPS), which changes
        // its printed digits, so only the data is compared for bodies with floats.
        let reparsed_again: Value = serde_json::from_slice(&again).unwrap();
        assert!(json_close(&reparsed_again, &expected));
    } else {
        assert_eq!(again, canonical, "canonical_bytes is not idempotent");
    }

    let ascii = to_ascii_json(&value);
    assert!(ascii.is_ascii(), "to_ascii_json wrote a non-ASCII byte");
    let from_ascii: Value = serde_json::from_slice(&ascii).expect("to_ascii_json is not valid JSON");
    assert!(json_close(&from_ascii, &value), "to_ascii_json parses back to different data");
    // Escaping is the only difference from compact serde_json: for ASCII-only data they are identical.
    let compact = serde_json::to_vec(&value).unwrap();
    if compact.is_ascii() {
        assert_eq!(ascii, compact);
    }
});
