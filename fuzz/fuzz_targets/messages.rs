//! Fuzzes the message parsers of the protocol crate with round-trip properties: the seven callback
//! requests (`Request::from_value` / `to_value`), the Open API envelopes and Query Order model, usage
//! quantities, the compact UTC and `X-Sdk-Date` time formats, and the callback response encoding.
//!
//! The input is any byte string. It is tried as a JSON body, and the text parsers are run on the whole
//! input and on every string in the JSON, so JSON seeds reach them with realistic values.

#![no_main]

use koogate_protocol::apig::{format_sdk_date, parse_sdk_date};
use koogate_protocol::datetime::{format_compact_utc_millis, parse_compact_utc};
use koogate_protocol::messages::{CallbackResponse, Request};
use koogate_protocol::open_api::{classify, Envelope, Outcome, QueryOrderResponse};
use koogate_protocol::usage::{format_quantity, parse_quantity, quantity_json};
use koogate_protocol::ResultCode;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let text = std::str::from_utf8(data).ok();
    if let Some(text) = text {
        check_text(text);
        check_response_message(text);
    }
    check_envelope(data);
    check_query_order(data);
    let Ok(value) = serde_json::from_slice::<Value>(data) else { return };
    check_request(&value);
    // Bounded, so a huge array of strings cannot make one input slow.
    let mut strings = Vec::new();
    collect_strings(&value, &mut strings);
    for s in strings.into_iter().take(64) {
        check_text(s);
    }
});

/// `to_value` is documented as the inverse of `from_value`: what parses must survive the round trip
/// unchanged — same activity, same test flag, same fields.
fn check_request(value: &Value) {
    let Ok(request) = Request::from_value(value) else { return };
    let body = request.to_value();
    let again =
        Request::from_value(&body).unwrap_or_else(|e| panic!("to_value gave {body} which fails: {e}"));
    assert_eq!(again.activity(), request.activity());
    assert_eq!(again.is_test(), request.is_test());
    assert_eq!(again, request);
    // The activity the request reports is the one in the body it came from.
    assert_eq!(value.get("activity").and_then(Value::as_str), Some(request.activity()));
}

/// `Envelope::parse` takes the code from `resultCode`, else from `error_code`, and only as a string.
fn check_envelope(data: &[u8]) {
    let parsed: Option<Value> = serde_json::from_slice(data).ok();
    let field = |name: &str| parsed.as_ref()?.get(name)?.as_str().map(str::to_owned);
    let expected_code = field("resultCode").or_else(|| field("error_code"));
    let envelope = Envelope::parse(data);
    assert_eq!(envelope.as_ref().map(|e| e.code.clone()), expected_code);
    if let Some(envelope) = envelope {
        let expected_message = field("resultMsg").or_else(|| field("error_msg")).unwrap_or_default();
        assert_eq!(envelope.message, expected_message);
        // Success is only ever an MKT/CBC .0000 code, whatever the HTTP status.
        for status in [200, 429, 500] {
            if classify(status, Some(&envelope.code)) == Outcome::Success {
                assert!(matches!(envelope.code.as_str(), "MKT.0000" | "CBC.0000"), "{}", envelope.code);
            }
        }
    }
}

/// The Query Order model is lenient when reading (numbers as strings, nulls as empty lists); what it
/// writes back must read back to the same model.
fn check_query_order(data: &[u8]) {
    let Ok(response) = serde_json::from_slice::<QueryOrderResponse>(data) else { return };
    let written = serde_json::to_vec(&response).unwrap();
    let again: QueryOrderResponse = serde_json::from_slice(&written)
        .unwrap_or_else(|e| panic!("{} does not read back: {e}", String::from_utf8_lossy(&written)));
    assert_eq!(again, response);
    if let Some(order) = &response.order_info {
        for line in &order.order_line {
            let found = order.line(&line.order_line_id).expect("a line of the order is not found by its id");
            assert_eq!(found.order_line_id, line.order_line_id);
        }
        // An unknown id finds the only line of a one-line order and nothing otherwise.
        let unknown = "\u{0}no such line";
        if order.order_line.iter().all(|l| l.order_line_id != unknown) {
            assert_eq!(order.line(unknown).is_some(), order.order_line.len() == 1);
        }
    }
}

fn check_text(text: &str) {
    // Usage quantities: positive units of 0.0001 that format back to the same units.
    if let Ok(units) = parse_quantity(text) {
        assert!(units > 0);
        let formatted = format_quantity(units);
        assert_eq!(parse_quantity(&formatted), Ok(units), "{formatted}");
        // The JSON number is exact for up to 15 significant digits, as its documentation says.
        if units < 1_000_000_000_000_000 {
            let number = quantity_json(units).to_string();
            assert_eq!(parse_quantity(&number), Ok(units), "quantity_json({units}) = {number}");
        }
    }

    // expireTime: 14 or 17 digits that name a real UTC time; formatting with milliseconds gives the
    // 17-digit spelling back (the 14-digit one with `000` appended).
    if let Ok(ms) = parse_compact_utc(text) {
        let expected = if text.len() == 14 { format!("{text}000") } else { text.to_owned() };
        assert_eq!(format_compact_utc_millis(ms), expected);
    }

    // X-Sdk-Date: whole seconds. The year may carry a sign (the `time` crate accepts `+2024…`), so the
    // text itself comes back only when it starts with a digit; the value always does.
    if let Some(ms) = parse_sdk_date(text) {
        assert_eq!(ms.rem_euclid(1000), 0);
        let formatted = format_sdk_date(ms);
        assert_eq!(parse_sdk_date(&formatted), Some(ms), "{formatted}");
        if text.starts_with(|c: char| c.is_ascii_digit()) {
            assert_eq!(formatted, text);
        }
    }
}

/// Any message fits in a response: ASCII on the wire, `resultMsg` cut to 255 characters and otherwise
/// unchanged.
fn check_response_message(text: &str) {
    let response = CallbackResponse::with_message(ResultCode::Success, text);
    let bytes = response.to_bytes();
    assert!(bytes.is_ascii());
    let value: Value = serde_json::from_slice(&bytes).unwrap();
    let expected: String = text.chars().take(255).collect();
    assert_eq!(value["resultMsg"].as_str(), Some(expected.as_str()));
    assert_eq!(value["resultCode"].as_str(), Some("000000"));
}

fn collect_strings<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::String(s) => out.push(s),
        Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| collect_strings(v, out)),
        _ => {}
    }
}
