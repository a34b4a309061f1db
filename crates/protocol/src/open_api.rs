//! KooGallery Open API messages (open-apis §1.6, §4): Query Order's order model, the three response
//! envelopes, and which result codes are worth retrying.
//!
//! KooGallery adds fields and codes without notice (§1.7), so every field beyond the identifiers is
//! optional, unknown fields are ignored, numbers may arrive as strings, and unknown codes are failures
//! to keep, not to panic on.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

pub const QUERY_ORDER_PATH: &str = "/api/mkp-openapi-public/global/v1/order/query";
/// Most time the gateway allows between `X-Sdk-Date` and its clock (§2.7).
pub const MAX_CLOCK_SKEW_MS: i64 = 15 * 60 * 1000;

/// The Query Order answer (camelCase envelope).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryOrderResponse {
    pub result_code: String,
    #[serde(default)]
    pub result_msg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_info: Option<OrderInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderInfo {
    pub order_id: String,
    /// `NEW`, `TRIAL`, `TRIAL_TO_FORMAL`, `UNSUBSCRIBE`, `RENEW`, `CHANGE`; others kept as they come.
    #[serde(default)]
    pub order_type: Option<String>,
    /// Placement time, UTC `yyyyMMddHHmmss`.
    #[serde(default)]
    pub create_time: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub order_line: Vec<OrderLine>,
    #[serde(default)]
    pub buyer_info: Option<BuyerInfo>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub extend_params: Vec<ExtendParam>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderLine {
    pub order_line_id: String,
    /// `PERIOD`, `ONE_TIME`, `ON_DEMAND`, `ON_DEMAND_PKG`.
    #[serde(default)]
    pub charging_mode: Option<String>,
    /// UTC `yyyyMMddHHmmss`; absent for pay-per-use and one-time lines.
    #[serde(default)]
    pub expire_time: Option<String>,
    #[serde(default)]
    pub period_type: Option<String>,
    #[serde(default, deserialize_with = "lenient_i64")]
    pub period_number: Option<i64>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub product_info: Vec<ProductInfo>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub extend_params: Vec<ExtendParam>,
    /// Amount before discount, as sent (unit UNCONFIRMED, so kept as text).
    #[serde(default, deserialize_with = "lenient_string")]
    pub currency: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub currency_after_discount: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductInfo {
    #[serde(default)]
    pub product_id: Option<String>,
    #[serde(default)]
    pub sku_code: Option<String>,
    #[serde(default, deserialize_with = "lenient_i64")]
    pub linear_value: Option<i64>,
    #[serde(default)]
    pub product_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuyerInfo {
    #[serde(default)]
    pub mobile_phone: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub customer_id: Option<String>,
    #[serde(default)]
    pub customer_name: Option<String>,
    #[serde(default)]
    pub customer_real_name: Option<String>,
    #[serde(default, deserialize_with = "lenient_i64")]
    pub customer_type: Option<i64>,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub user_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtendParam {
    pub name: String,
    #[serde(default, deserialize_with = "lenient_string")]
    pub value: Option<String>,
}

impl OrderInfo {
    /// The line with this id, or the only line when the order has one.
    pub fn line(&self, order_line_id: &str) -> Option<&OrderLine> {
        self.order_line
            .iter()
            .find(|line| line.order_line_id == order_line_id)
            .or_else(|| (self.order_line.len() == 1).then(|| &self.order_line[0]))
    }
}

fn null_as_empty<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

fn lenient_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::Number(n)) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    })
}

fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::String(s)) => Some(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(Value::Bool(b)) => Some(b.to_string()),
        _ => None,
    })
}

/// The code and message of any of the three envelopes: `resultCode`/`resultMsg` (Query Order),
/// `error_code`/`error_msg` (usage push and the API gateway).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub code: String,
    pub message: String,
}

impl Envelope {
    pub fn parse(body: &[u8]) -> Option<Self> {
        let value: Value = serde_json::from_slice(body).ok()?;
        let text = |name: &str| value.get(name).and_then(Value::as_str).map(str::to_owned);
        let code = text("resultCode").or_else(|| text("error_code"))?;
        let message = text("resultMsg").or_else(|| text("error_msg")).unwrap_or_default();
        Some(Self { code, message })
    }
}

/// What a caller should do with an Open API answer (§3, §4.6, §13 rule 9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// Transient: retry later with backoff (server errors, throttling, gateway back-end trouble).
    Retry,
    /// `APIGW.0301`: signature, clock or AK problem. Retry at most once — five failures lock the AK.
    AuthFailure,
    /// Validation, permission or not-found: retrying cannot help.
    Fail,
}

/// Classifies an answer by its code (both `MKT.` and `CBC.` prefixes, `APIGW.` and `APIG.`), falling
/// back on the HTTP status for codes this table does not know.
pub fn classify(http_status: u16, code: Option<&str>) -> Outcome {
    let Some(code) = code else {
        return if http_status >= 500 || http_status == 429 { Outcome::Retry } else { Outcome::Fail };
    };
    let (prefix, number) = code.rsplit_once('.').unwrap_or(("", code));
    match (prefix, number) {
        (_, "0000") if prefix == "MKT" || prefix == "CBC" => Outcome::Success,
        ("MKT" | "CBC", "0999" | "0250") => Outcome::Retry,
        ("APIGW" | "APIG", "0103" | "0104" | "0105" | "0308") => Outcome::Retry,
        ("APIGW" | "APIG", "0301") => Outcome::AuthFailure,
        ("MKT" | "CBC" | "APIGW" | "APIG", _) => Outcome::Fail,
        _ if http_status >= 500 => Outcome::Retry,
        _ => Outcome::Fail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_example_parses_with_numbers_and_nulls_where_they_come() {
        let body = r#"{"resultCode":"MKT.0000","resultMsg":"Success","orderInfo":{"orderId":"MOCKPERIODYEARNEW",
            "orderType":"NEW","createTime":"20241121090846","orderLine":[{"orderLineId":"MOCKPERIODYEARNEW-000001",
            "chargingMode":"PERIOD","periodType":"year","periodNumber":"1","expireTime":"20251121235959",
            "productInfo":[{"productId":"OFFI846204237451911168","skuCode":"0a4d","linearValue":50,"productName":"p"}],
            "extendParams":[{"name":"ip","value":"127.0.0.1"}],"currency":100,"currencyAfterDiscount":"100","newField":1}],
            "buyerInfo":{"customerId":"c","customerType":0,"userId":null,"userName":null},"extendParams":null}}"#;
        let response: QueryOrderResponse = serde_json::from_str(body).unwrap();
        let order = response.order_info.unwrap();
        let line = order.line("MOCKPERIODYEARNEW-000001").unwrap();
        assert_eq!((line.period_number, line.currency.as_deref()), (Some(1), Some("100")));
        assert_eq!(line.product_info[0].linear_value, Some(50));
        assert_eq!(order.buyer_info.unwrap().customer_type, Some(0));
        assert!(order.extend_params.is_empty());
    }

    #[test]
    fn all_three_envelopes_yield_code_and_message() {
        let cases: [&[u8]; 3] = [
            br#"{"resultCode":"MKT.9001","resultMsg":"not found"}"#,
            br#"{"error_code":"MKT.0000","error_msg":"ok"}"#,
            br#"{"error_code":"APIGW.0301","error_msg":"bad sig","request_id":"r"}"#,
        ];
        let codes: Vec<String> = cases.iter().map(|c| Envelope::parse(c).unwrap().code).collect();
        assert_eq!(codes, ["MKT.9001", "MKT.0000", "APIGW.0301"]);
        assert_eq!(Envelope::parse(b"<html>502</html>"), None);
    }

    #[test]
    fn only_transient_codes_are_retried() {
        assert_eq!(classify(200, Some("MKT.0000")), Outcome::Success);
        assert_eq!(classify(200, Some("CBC.0000")), Outcome::Success);
        assert_eq!(classify(500, Some("MKT.0999")), Outcome::Retry);
        assert_eq!(classify(406, Some("MKT.0250")), Outcome::Retry);
        assert_eq!(classify(429, Some("APIGW.0308")), Outcome::Retry);
        assert_eq!(classify(504, Some("APIG.0105")), Outcome::Retry);
        assert_eq!(classify(401, Some("APIGW.0301")), Outcome::AuthFailure);
        for code in ["MKT.0100", "MKT.0101", "MKT.0150", "MKT.9001", "APIGW.0101", "APIGW.0201"] {
            assert_eq!(classify(400, Some(code)), Outcome::Fail, "{code}");
        }
        assert_eq!(classify(502, None), Outcome::Retry);
        assert_eq!(classify(503, Some("SOMETHING.NEW")), Outcome::Retry);
        assert_eq!(classify(400, Some("SOMETHING.NEW")), Outcome::Fail);
    }
}
