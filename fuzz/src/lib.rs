//! Helpers shared by the koogate-protocol fuzz targets: the fixed keys and clock, single-byte mutations,
//! JSON comparison and independent re-computations of the documented MAC formulas.
//!
//! The oracles recompute MACs with `hmac`/`sha2`/`base64` directly from the formulas in the spec rather
//! than through the protocol crate, so a target fails if the crate and the documented formula disagree,
//! not only if the crate disagrees with itself.

use arbitrary::Arbitrary;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

/// The access key of the spec's golden vectors (saas-v2.md §2.7), so seeds can carry real signatures.
pub const ACCESS_KEY: &str = "TestAccessKey1234567890";
/// "Now" for every target: the timestamp of the first golden vector, so its signature is in the window.
pub const NOW_MS: i64 = 1_680_508_066_618;
/// The nonce of the first golden vector.
pub const NONCE: &str = "50D83FDECAED6CCD8EF597F2A577950527928BA287D04E6036E92B2806FD17DA";

/// `HMAC-SHA256(key, part₀ ‖ part₁ ‖ …)`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn b64_decode(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

/// The V2 callback signature straight from spec §2.3, lower-case hex:
/// `hex(HMAC(key, key ‖ nonce ‖ timestamp ‖ hex(HMAC(key, payload))))`.
pub fn v2_signature(key: &[u8], nonce: &str, timestamp: &str, payload: &[u8]) -> String {
    let inner = hex_lower(&hmac_sha256(key, &[payload]));
    hex_lower(&hmac_sha256(key, &[key, nonce.as_bytes(), timestamp.as_bytes(), inner.as_bytes()]))
}

pub fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a single-byte mutation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Arbitrary)]
pub enum Op {
    Replace,
    Insert,
    Delete,
}

/// One byte replaced, inserted or deleted at a fuzzer-chosen position (taken modulo the length, so every
/// value is usable and the fuzzer does not waste inputs on out-of-range positions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Arbitrary)]
pub struct ByteMutation {
    pub op: Op,
    pub position: u16,
    pub byte: u8,
}

impl ByteMutation {
    /// Decodes a mutation from two selector bits and three raw bytes (position big-endian, byte); selector
    /// 0 means "no mutation", which the targets use to check that an honest request is accepted.
    pub fn from_raw(selector: u8, raw: [u8; 3]) -> Option<Self> {
        let op = match selector & 3 {
            0 => return None,
            1 => Op::Replace,
            2 => Op::Insert,
            _ => Op::Delete,
        };
        Some(Self { op, position: u16::from_be_bytes([raw[0], raw[1]]), byte: raw[2] })
    }

    /// Applies the mutation; returns false when it could not apply (nothing to replace or delete).
    pub fn apply(&self, bytes: &mut Vec<u8>) -> bool {
        let position = usize::from(self.position);
        match self.op {
            Op::Insert => bytes.insert(position % (bytes.len() + 1), self.byte),
            _ if bytes.is_empty() => return false,
            Op::Replace => {
                let index = position % bytes.len();
                bytes[index] = self.byte;
            }
            Op::Delete => {
                bytes.remove(position % bytes.len());
            }
        }
        true
    }

    /// The mutation applied to text; an invalid UTF-8 result is repaired lossily, because the protocol
    /// functions take `&str` and the server would have decoded the same way.
    pub fn apply_str(&self, text: &str) -> String {
        let mut bytes = text.as_bytes().to_vec();
        self.apply(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// Splits at the first `\n`: the part before it and everything after it (all of `data` and an empty
/// rest when there is no newline).
pub fn split_line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

/// `value` with every `null` object member removed, recursively (array elements are kept): exactly what
/// the canonical form is documented to drop.
pub fn strip_null_members(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), strip_null_members(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(strip_null_members).collect()),
        other => other.clone(),
    }
}

/// Whether any number in `value` is held as a float (serde_json's `Number::is_f64`).
pub fn contains_float(value: &Value) -> bool {
    match value {
        Value::Number(n) => n.is_f64(),
        Value::Array(items) => items.iter().any(contains_float),
        Value::Object(map) => map.values().any(contains_float),
        _ => false,
    }
}

/// Most units in the last place two floats may differ by and still count as the same JSON number.
///
/// koogate builds serde_json without `float_roundtrip` (checked with `cargo tree -e features`), and that
/// parser is documented as best-effort: it computes `significand × 10^exponent` with up to three roundings,
/// so text printed from an f64 can parse back a couple of ULPs away. That is serde_json's trade-off, not
/// the protocol crate's, so floats are compared with this tolerance; everything else exactly.
pub const FLOAT_ULPS: u64 = 4;

/// Equality of JSON values in which floats may differ by [`FLOAT_ULPS`]; integers, strings, keys and
/// structure must match exactly.
pub fn json_close(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.is_f64(), y.is_f64()) {
            (false, false) => x == y,
            (true, true) => floats_close(x.as_f64().unwrap(), y.as_f64().unwrap()),
            _ => false,
        },
        (Value::Array(xs), Value::Array(ys)) => {
            xs.len() == ys.len() && xs.iter().zip(ys).all(|(x, y)| json_close(x, y))
        }
        (Value::Object(xs), Value::Object(ys)) => {
            xs.len() == ys.len() && xs.iter().all(|(k, x)| ys.get(k).is_some_and(|y| json_close(x, y)))
        }
        _ => a == b,
    }
}

fn floats_close(x: f64, y: f64) -> bool {
    if x == y {
        return true;
    }
    if x.is_sign_negative() != y.is_sign_negative() {
        return false;
    }
    // For finite floats of one sign the bit patterns are ordered like the values, one step per ULP.
    x.to_bits().abs_diff(y.to_bits()) <= FLOAT_ULPS
}

/// Checks once per process that serde_json's `Map` iterates in byte order of the keys (no
/// `preserve_order` feature in this build). Several oracles rely on it to compare canonical bytes with
/// plain `serde_json::to_vec`.
pub fn assert_sorted_maps() {
    static CHECKED: std::sync::Once = std::sync::Once::new();
    CHECKED.call_once(|| {
        let value: Value = serde_json::from_str(r#"{"b":1,"a":2,"B":3}"#).unwrap();
        let keys: Vec<&str> = value.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["B", "a", "b"], "serde_json's preserve_order feature is on in the fuzz build");
    });
}
