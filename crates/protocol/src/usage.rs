//! Pay-per-use usage (open-apis §5–7): exact decimal quantities, the usage-data request signature,
//! the record format of the new and the old push API, and the UTC time formats they use.

use base64::Engine as _;
use serde::Serialize;
use serde_json::{json, Value};
use time::macros::format_description;
use time::OffsetDateTime;

use crate::canonical::canonical_bytes;
use crate::key::AccessKey;
use crate::signature::hmac;

pub const USAGE_PATH: &str = "/api/mkp-openapi-public/global/v1/isv/usage-data";
pub const OLD_USAGE_PATH: &str = "/rest/marketplace/v1/isv/usage-data";
/// At most this many records per request (§5.2).
pub const MAX_RECORDS_PER_PUSH: usize = 1000;
/// Records whose period began longer ago than this are refused (`MKT.9004`).
pub const MAX_RECORD_AGE_MS: i64 = 21 * 24 * 3600 * 1000;

/// Units per 1: quantities carry at most four decimal places (§5.2), so they are kept as integers
/// of 0.0001 and summed exactly.
pub const UNITS_PER_ONE: i64 = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    #[error("the quantity is not a decimal number")]
    NotANumber,
    #[error("the quantity has more than four decimal places")]
    TooPrecise,
    #[error("the quantity must be greater than zero")]
    NotPositive,
    #[error("the quantity is too large")]
    TooLarge,
}

/// Parses a decimal such as `12`, `0.5` or `99.1234` into units of 0.0001. Exponents, signs other than a
/// leading `-` (refused as not positive) and more than four decimals are errors.
pub fn parse_quantity(text: &str) -> Result<i64, QuantityError> {
    let text = text.trim();
    if text.starts_with('-') {
        return Err(QuantityError::NotPositive);
    }
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() && fraction.is_empty() || !digits(whole) || !digits(fraction) {
        return Err(QuantityError::NotANumber);
    }
    if fraction.len() > 4 {
        return Err(QuantityError::TooPrecise);
    }
    if whole.trim_start_matches('0').len() > 12 {
        return Err(QuantityError::TooLarge);
    }
    let whole: i64 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| QuantityError::TooLarge)? };
    let fraction: i64 = format!("{fraction:0<4}").parse().map_err(|_| QuantityError::NotANumber)?;
    let units = whole
        .checked_mul(UNITS_PER_ONE)
        .and_then(|w| w.checked_add(fraction))
        .ok_or(QuantityError::TooLarge)?;
    if units == 0 {
        return Err(QuantityError::NotPositive);
    }
    Ok(units)
}

/// Formats units of 0.0001 as the shortest decimal: `990000` → `99`, `5000` → `0.5`.
pub fn format_quantity(units: i64) -> String {
    let (whole, fraction) = (units / UNITS_PER_ONE, (units % UNITS_PER_ONE).abs());
    if fraction == 0 {
        return whole.to_string();
    }
    let fraction = format!("{fraction:04}");
    format!("{whole}.{}", fraction.trim_end_matches('0'))
}

/// A JSON number with the exact decimal value: an integer when whole, otherwise the shortest decimal
/// (at most 15 significant digits round-trip exactly through f64).
pub fn quantity_json(units: i64) -> Value {
    if units % UNITS_PER_ONE == 0 {
        return Value::from(units / UNITS_PER_ONE);
    }
    format_quantity(units).parse::<f64>().map(Value::from).unwrap_or(Value::Null)
}

/// `yyyyMMdd'T'HHmmss'Z'` UTC, the usage-record time format.
pub fn format_record_time(unix_ms: i64) -> String {
    let format = format_description!("[year][month][day]T[hour][minute][second]Z");
    OffsetDateTime::from_unix_timestamp(unix_ms.div_euclid(1000))
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_default()
}

/// `base64(HMAC-SHA256(key, "ts={ts}&nonce={nonce}&body={body}"))` (§5.2). The key is the merchant's
/// interconnection key — the access key of the basic interfaces, not the AK/SK.
pub fn usage_signature(key: &AccessKey, ts: &str, nonce: &str, body: &[u8]) -> String {
    let mac = hmac(key, &[b"ts=", ts.as_bytes(), b"&nonce=", nonce.as_bytes(), b"&body=", body]);
    base64::engine::general_purpose::STANDARD.encode(mac)
}

/// Constant-time check of a received usage-data signature (for the mock KooGallery).
pub fn verify_usage_signature(key: &AccessKey, ts: &str, nonce: &str, body: &[u8], signature: &str) -> bool {
    use subtle::ConstantTimeEq;
    usage_signature(key, ts, nonce, body).as_bytes().ct_eq(signature.as_bytes()).into()
}

/// One usage record as pushed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsageRecord {
    /// The pay-per-use instance (never the package).
    pub instance_id: String,
    pub begin_time_ms: i64,
    pub end_time_ms: i64,
    pub record_time_ms: i64,
    pub units: i64,
    pub metering_sn: String,
    /// The use-until-stop package consumed, if any.
    pub relate_pkg_instance: Option<String>,
    /// The product id, needed by the old API only.
    pub product_id: Option<String>,
}

/// The new API's body: keys sorted, every value a string, compact — the exact bytes to sign and send.
pub fn usage_push_body(records: &[UsageRecord]) -> Vec<u8> {
    let records: Vec<Value> = records
        .iter()
        .map(|r| {
            let mut record = json!({
                "begin_time": format_record_time(r.begin_time_ms),
                "end_time": format_record_time(r.end_time_ms),
                "instance_id": r.instance_id,
                "metering_sn": r.metering_sn,
                "record_time": format_record_time(r.record_time_ms),
                "usage_value": format_quantity(r.units),
            });
            if let Some(package) = &r.relate_pkg_instance {
                record["relate_pkg_instance"] = package.clone().into();
            }
            record
        })
        .collect();
    canonical_bytes(&json!({ "usage_records": records }))
}

/// The old (AK/SK) API's body: with `product_id`, without `metering_sn`, `usage_value` a number.
pub fn old_usage_push_body(records: &[UsageRecord]) -> Vec<u8> {
    let records: Vec<Value> = records
        .iter()
        .map(|r| {
            json!({
                "instance_id": r.instance_id,
                "product_id": r.product_id,
                "record_time": format_record_time(r.record_time_ms),
                "begin_time": format_record_time(r.begin_time_ms),
                "end_time": format_record_time(r.end_time_ms),
                "usage_value": quantity_json(r.units),
                "relate_pkg_instance": r.relate_pkg_instance,
            })
        })
        .collect();
    canonical_bytes(&json!({ "usage_records": records }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_are_exact_to_four_places() {
        assert_eq!(parse_quantity("99"), Ok(990_000));
        assert_eq!(parse_quantity("0.5"), Ok(5_000));
        assert_eq!(parse_quantity(".0001"), Ok(1));
        assert_eq!(parse_quantity("12.3400"), Ok(123_400));
        assert_eq!(parse_quantity("0.00001"), Err(QuantityError::TooPrecise));
        assert_eq!(parse_quantity("-1"), Err(QuantityError::NotPositive));
        assert_eq!(parse_quantity("0"), Err(QuantityError::NotPositive));
        assert_eq!(parse_quantity("1e3"), Err(QuantityError::NotANumber));
        assert_eq!(parse_quantity("."), Err(QuantityError::NotANumber));
        assert_eq!(parse_quantity("1234567890123"), Err(QuantityError::TooLarge));
        assert_eq!(format_quantity(990_000), "99");
        assert_eq!(format_quantity(123_400), "12.34");
        assert_eq!(format_quantity(1), "0.0001");
        assert_eq!(quantity_json(3_000), json!(0.3));
        assert_eq!(serde_json::to_string(&quantity_json(500_000)).unwrap(), "50");
        assert_eq!(serde_json::to_string(&quantity_json(37_500)).unwrap(), "3.75");
    }

    #[test]
    fn the_spec_signature_vector() {
        let body = br#"{"usage_records":[{"begin_time":"20220809T080000Z","end_time":"20220809T090000Z","instance_id":"7f141bf1-aec8-4859-8323-fb3a8ad50721","metering_sn":"3f0f3c1e-5a6b-4c1d-9e2f-0123456789ab","record_time":"20220809T091000Z","usage_value":"99"}]}"#;
        let key = AccessKey::from_text("EXAMPLE_ISV_KEY");
        let nonce = "6c63c221-1f6b-4141-8ff4-22f5dfe82b65";
        assert_eq!(
            usage_signature(&key, "1709690865879", nonce, body),
            "5aMp05k7NUNPKoeB6XErK0mys0JhTKzttP9W+DMI4yY="
        );
        assert!(verify_usage_signature(
            &key,
            "1709690865879",
            nonce,
            body,
            "5aMp05k7NUNPKoeB6XErK0mys0JhTKzttP9W+DMI4yY="
        ));
    }

    #[test]
    fn the_body_is_the_spec_example_byte_for_byte() {
        let record = UsageRecord {
            instance_id: "7f141bf1-aec8-4859-8323-fb3a8ad50721".into(),
            begin_time_ms: 1_660_032_000_000,
            end_time_ms: 1_660_035_600_000,
            record_time_ms: 1_660_036_200_000,
            units: 990_000,
            metering_sn: "3f0f3c1e-5a6b-4c1d-9e2f-0123456789ab".into(),
            relate_pkg_instance: None,
            product_id: None,
        };
        assert_eq!(
            String::from_utf8(usage_push_body(&[record])).unwrap(),
            r#"{"usage_records":[{"begin_time":"20220809T080000Z","end_time":"20220809T090000Z","instance_id":"7f141bf1-aec8-4859-8323-fb3a8ad50721","metering_sn":"3f0f3c1e-5a6b-4c1d-9e2f-0123456789ab","record_time":"20220809T091000Z","usage_value":"99"}]}"#
        );
    }
}
