//! Typed SaaS V2.0 basic-interface messages (spec §5–6): the seven requests dispatched on `activity`,
//! and the response envelope.

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::datetime::parse_compact_utc;
use crate::ids::{BusinessId, InstanceId, OrderId, OrderLineId, ProductId};
use crate::lenient::Fields;
use crate::result_code::ResultCode;
use crate::signature::{Verified, VerifiedBody};

/// Most instance ids one `queryInstance` may ask for (spec §6.2).
pub const MAX_QUERY_IDS: usize = 100;

/// Why a verified body is not a valid basic-interface request. Every variant is `000002`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("the body is not a JSON object")]
    NotAnObject,
    #[error("the activity {0:?} is not a basic interface")]
    UnknownActivity(String),
    #[error("the field {0} is missing or empty")]
    MissingField(&'static str),
    #[error("the field {field} {reason}")]
    InvalidField { field: &'static str, reason: String },
}

impl MessageError {
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        MessageError::InvalidField { field, reason: reason.into() }
    }

    pub fn result_code(&self) -> ResultCode {
        ResultCode::InvalidParam
    }
}

/// `newInstance` (§6.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewInstance {
    pub order_id: OrderId,
    pub order_line_id: OrderLineId,
    pub business_id: BusinessId,
    pub test: bool,
}

/// `queryInstance` (§6.2): one to 100 ids, duplicates removed, order kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryInstance {
    pub instance_ids: Vec<InstanceId>,
    pub test: bool,
}

/// Why a `refreshInstance` was sent (§6.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshScene {
    TrialToFormal,
    Renewal,
    UnsubscribeRenewalPeriod,
    RenewalChange,
    /// A scene newer than this code. The expiry is absolute, so it is still applied: refusing would let
    /// the platform release a paying customer's service.
    Other(String),
}

impl RefreshScene {
    fn parse(text: &str) -> Self {
        match text {
            "TRIAL_TO_FORMAL" => RefreshScene::TrialToFormal,
            "RENEWAL" => RefreshScene::Renewal,
            "UNSUBSCRIBE_RENEWAL_PERIOD" => RefreshScene::UnsubscribeRenewalPeriod,
            "RENEWAL_CHANGE" => RefreshScene::RenewalChange,
            other => RefreshScene::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            RefreshScene::TrialToFormal => "TRIAL_TO_FORMAL",
            RefreshScene::Renewal => "RENEWAL",
            RefreshScene::UnsubscribeRenewalPeriod => "UNSUBSCRIBE_RENEWAL_PERIOD",
            RefreshScene::RenewalChange => "RENEWAL_CHANGE",
            RefreshScene::Other(text) => text,
        }
    }
}

/// `refreshInstance` (§6.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshInstance {
    pub instance_id: InstanceId,
    pub order_id: OrderId,
    pub order_line_id: OrderLineId,
    pub scene: RefreshScene,
    pub product_id: Option<ProductId>,
    /// The new absolute expiry, UNIX milliseconds.
    pub expire_time_ms: i64,
    /// The expiry exactly as sent (14 or 17 digits).
    pub expire_time: String,
    pub test: bool,
}

/// The two states `updateInstanceStatus` can ask for (§6.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusChange {
    Freeze,
    Unfreeze,
}

impl StatusChange {
    pub fn as_str(self) -> &'static str {
        match self {
            StatusChange::Freeze => "FREEZE",
            StatusChange::Unfreeze => "UNFREEZE",
        }
    }
}

/// `updateInstanceStatus` (§6.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateInstanceStatus {
    pub instance_id: InstanceId,
    pub status: StatusChange,
    pub test: bool,
}

/// `releaseInstance` (§6.5). An `orderId` means the release comes from an unsubscription (refund).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseInstance {
    pub instance_id: InstanceId,
    pub order_id: Option<OrderId>,
    pub order_line_id: Option<OrderLineId>,
    pub test: bool,
}

/// `upgradeInstance` (§6.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeInstance {
    pub instance_id: InstanceId,
    pub order_id: OrderId,
    pub order_line_id: OrderLineId,
    pub test: bool,
}

/// The target product of a renewal change (§6.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductInfo {
    pub product_id: ProductId,
    pub sku_code: String,
    pub linear_value: Option<i64>,
    /// Documented as mandatory, but only informative; a missing name does not block a renewal.
    pub product_name: Option<String>,
}

/// `changeInstanceCheck` (§6.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeInstanceCheck {
    pub instance_id: InstanceId,
    pub product_info: ProductInfo,
    pub test: bool,
}

/// A basic-interface request, dispatched on its `activity`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    NewInstance(NewInstance),
    QueryInstance(QueryInstance),
    RefreshInstance(RefreshInstance),
    UpdateInstanceStatus(UpdateInstanceStatus),
    ReleaseInstance(ReleaseInstance),
    UpgradeInstance(UpgradeInstance),
    ChangeInstanceCheck(ChangeInstanceCheck),
}

/// Parses a verified body into a verified request.
pub fn parse_request(body: VerifiedBody) -> Result<Verified<Request>, MessageError> {
    body.try_map(|value| Request::from_value(&value))
}

impl Request {
    /// Parses a body. Unknown fields are ignored, because KooGallery adds fields over time.
    pub fn from_value(value: &Value) -> Result<Self, MessageError> {
        let fields = Fields::new(value)?;
        let activity = fields.required("activity", 32)?;
        let test = fields.test_flag()?;
        Ok(match activity.as_str() {
            "newInstance" => Request::NewInstance(NewInstance {
                order_id: fields.id("orderId")?,
                order_line_id: fields.id("orderLineId")?,
                business_id: fields.id("businessId")?,
                test,
            }),
            "queryInstance" => {
                Request::QueryInstance(QueryInstance { instance_ids: parse_id_list(&fields)?, test })
            }
            "refreshInstance" => Request::RefreshInstance(parse_refresh(&fields, test)?),
            "updateInstanceStatus" => Request::UpdateInstanceStatus(UpdateInstanceStatus {
                instance_id: fields.id("instanceId")?,
                status: match fields.required("status", 32)?.as_str() {
                    "FREEZE" => StatusChange::Freeze,
                    "UNFREEZE" => StatusChange::Unfreeze,
                    _ => return Err(MessageError::invalid("status", "must be FREEZE or UNFREEZE")),
                },
                test,
            }),
            "releaseInstance" => Request::ReleaseInstance(ReleaseInstance {
                instance_id: fields.id("instanceId")?,
                order_id: fields.optional_id("orderId")?,
                order_line_id: fields.optional_id("orderLineId")?,
                test,
            }),
            "upgradeInstance" => Request::UpgradeInstance(UpgradeInstance {
                instance_id: fields.id("instanceId")?,
                order_id: fields.id("orderId")?,
                order_line_id: fields.id("orderLineId")?,
                test,
            }),
            "changeInstanceCheck" => Request::ChangeInstanceCheck(parse_change_check(&fields, test)?),
            _ => return Err(MessageError::UnknownActivity(activity)),
        })
    }

    pub fn activity(&self) -> &'static str {
        match self {
            Request::NewInstance(_) => "newInstance",
            Request::QueryInstance(_) => "queryInstance",
            Request::RefreshInstance(_) => "refreshInstance",
            Request::UpdateInstanceStatus(_) => "updateInstanceStatus",
            Request::ReleaseInstance(_) => "releaseInstance",
            Request::UpgradeInstance(_) => "upgradeInstance",
            Request::ChangeInstanceCheck(_) => "changeInstanceCheck",
        }
    }

    pub fn is_test(&self) -> bool {
        match self {
            Request::NewInstance(r) => r.test,
            Request::QueryInstance(r) => r.test,
            Request::RefreshInstance(r) => r.test,
            Request::UpdateInstanceStatus(r) => r.test,
            Request::ReleaseInstance(r) => r.test,
            Request::UpgradeInstance(r) => r.test,
            Request::ChangeInstanceCheck(r) => r.test,
        }
    }

    /// The body KooGallery would send for this request: the inverse of [`Request::from_value`]. Used by
    /// the simulator; sign its [`crate::canonical::canonical_bytes`].
    pub fn to_value(&self) -> Value {
        let mut body = match self {
            Request::NewInstance(r) => {
                json!({"orderId": r.order_id, "orderLineId": r.order_line_id,
                "businessId": r.business_id})
            }
            Request::QueryInstance(r) => {
                let ids: Vec<&str> = r.instance_ids.iter().map(InstanceId::as_str).collect();
                json!({"instanceId": ids.join(",")})
            }
            Request::RefreshInstance(r) => {
                json!({"instanceId": r.instance_id, "orderId": r.order_id,
                "orderLineId": r.order_line_id, "scene": r.scene.as_str(), "productId": r.product_id,
                "expireTime": r.expire_time})
            }
            Request::UpdateInstanceStatus(r) => {
                json!({"instanceId": r.instance_id, "status": r.status.as_str()})
            }
            Request::ReleaseInstance(r) => {
                json!({"instanceId": r.instance_id, "orderId": r.order_id,
                "orderLineId": r.order_line_id})
            }
            Request::UpgradeInstance(r) => {
                json!({"instanceId": r.instance_id, "orderId": r.order_id,
                "orderLineId": r.order_line_id})
            }
            Request::ChangeInstanceCheck(r) => json!({"instanceId": r.instance_id, "productInfo": {
                "productId": r.product_info.product_id, "skuCode": r.product_info.sku_code,
                "linearValue": r.product_info.linear_value, "productName": r.product_info.product_name}}),
        };
        let map: &mut Map<String, Value> = body.as_object_mut().expect("every body above is an object");
        map.insert("activity".into(), self.activity().into());
        if self.is_test() {
            map.insert("testFlag".into(), "1".into());
        }
        body
    }
}

fn parse_id_list(fields: &Fields<'_>) -> Result<Vec<InstanceId>, MessageError> {
    // The documented 100-character limit contradicts 100 ids of 64 characters, so the list as a whole
    // is not length-checked; each id is (spec §6.2).
    let text = fields.required("instanceId", usize::MAX)?;
    let mut ids: Vec<InstanceId> = Vec::new();
    for part in text.split(',').map(str::trim) {
        let id = InstanceId::parse(part).map_err(|e| MessageError::invalid("instanceId", e.to_string()))?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    if ids.len() > MAX_QUERY_IDS {
        return Err(MessageError::invalid("instanceId", "lists more than 100 ids"));
    }
    Ok(ids)
}

fn parse_refresh(fields: &Fields<'_>, test: bool) -> Result<RefreshInstance, MessageError> {
    let expire_time = fields.required("expireTime", 20)?;
    let expire_time_ms =
        parse_compact_utc(&expire_time).map_err(|e| MessageError::invalid("expireTime", e.to_string()))?;
    Ok(RefreshInstance {
        instance_id: fields.id("instanceId")?,
        order_id: fields.id("orderId")?,
        order_line_id: fields.id("orderLineId")?,
        scene: RefreshScene::parse(&fields.required("scene", 64)?),
        product_id: fields.optional_id("productId")?,
        expire_time_ms,
        expire_time,
        test,
    })
}

fn parse_change_check(fields: &Fields<'_>, test: bool) -> Result<ChangeInstanceCheck, MessageError> {
    let product = fields.object("productInfo")?;
    Ok(ChangeInstanceCheck {
        instance_id: fields.id("instanceId")?,
        product_info: ProductInfo {
            product_id: product.id("productId")?,
            sku_code: product.required("skuCode", 64)?,
            linear_value: product.optional_integer("linearValue")?,
            product_name: product.optional("productName", 64)?,
        },
        test,
    })
}

/// What the buyer needs to use the service (§6.2 AppInfo). `Debug` hides the password.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppInfo {
    pub front_end_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memo: Option<String>,
}

impl AppInfo {
    /// Checks the documented maximum lengths, so a merchant's over-long value is caught when it is
    /// configured or reported rather than when KooGallery rejects the answer.
    pub fn validate(&self) -> Result<(), MessageError> {
        let limits: [(&'static str, Option<&str>, usize); 5] = [
            ("frontEndUrl", Some(&self.front_end_url), 512),
            ("adminUrl", self.admin_url.as_deref(), 512),
            ("userName", self.user_name.as_deref(), 128),
            ("password", self.password.as_deref(), 128),
            ("memo", self.memo.as_deref(), 1024),
        ];
        if self.front_end_url.is_empty() {
            return Err(MessageError::MissingField("frontEndUrl"));
        }
        for (field, value, max) in limits {
            if value.is_some_and(|v| v.chars().count() > max) {
                return Err(MessageError::invalid(field, "is longer than the documented maximum"));
            }
        }
        Ok(())
    }
}

impl std::fmt::Debug for AppInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppInfo")
            .field("front_end_url", &self.front_end_url)
            .field("admin_url", &self.admin_url)
            .field("user_name", &self.user_name)
            .field("password", &self.password.as_ref().map(|_| "[REDACTED]"))
            .field("memo", &self.memo)
            .finish()
    }
}

/// One entry of a `queryInstance` answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceInfo {
    pub instance_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_info: Option<AppInfo>,
    /// Pay-per-use and package instances: their usage (§6.2 UsageInfo).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_info: Option<Vec<UsageInfo>>,
}

/// Usage reported with an instance: cumulative for a pay-per-use instance, consumed for a package.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageInfo {
    /// For a package: the pay-per-use instance this usage was recorded against.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub related_instance_id: Option<String>,
    /// A number with at most four decimals (Double(12,4)).
    pub usage_value: serde_json::Value,
    /// UTC `yyyyMMddHHmmssSSS`.
    pub statistical_time: String,
}

/// The answer to any basic-interface call: `resultCode` and `resultMsg` always, the rest by activity.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallbackResponse {
    pub result_code: ResultCode,
    pub result_msg: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_info: Option<AppInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub info: Option<Vec<InstanceInfo>>,
}

impl CallbackResponse {
    /// A bare answer with the code's usual message.
    pub fn code(code: ResultCode) -> Self {
        Self::with_message(code, code.default_message())
    }

    pub fn with_message(code: ResultCode, message: impl Into<String>) -> Self {
        let mut result_msg: String = message.into();
        // resultMsg is limited to 255 characters (§5.3).
        if let Some((cut, _)) = result_msg.char_indices().nth(255) {
            result_msg.truncate(cut);
        }
        Self { result_code: code, result_msg, instance_id: None, app_info: None, info: None }
    }

    /// The exact bytes to send: compact JSON, non-ASCII escaped (§6.2 memo rule).
    pub fn to_bytes(&self) -> Vec<u8> {
        crate::json::to_ascii_json(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Request, MessageError> {
        Request::from_value(&serde_json::from_str(text).unwrap())
    }

    #[test]
    fn new_instance_accepts_numbers_where_strings_are_documented() {
        let r = parse(
            r#"{"activity":"newInstance","orderId":"O","orderLineId":"O-1","businessId":123,"testFlag":1}"#,
        );
        let Request::NewInstance(r) = r.unwrap() else { panic!() };
        assert_eq!((r.business_id.as_str(), r.test), ("123", true));
    }

    #[test]
    fn test_flag_zero_missing_or_empty_is_a_real_call() {
        for flag in [r#","testFlag":"0""#, "", r#","testFlag":"""#, r#","testFlag":null"#] {
            let body = format!(r#"{{"activity":"queryInstance","instanceId":"a"{flag}}}"#);
            assert!(!parse(&body).unwrap().is_test(), "{body}");
        }
    }

    #[test]
    fn query_lists_are_split_trimmed_deduplicated_and_capped() {
        let Request::QueryInstance(q) =
            parse(r#"{"activity":"queryInstance","instanceId":"a, b,a"}"#).unwrap()
        else {
            panic!()
        };
        assert_eq!(q.instance_ids.iter().map(|i| i.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        let many: Vec<String> = (0..101).map(|i| format!("id{i}")).collect();
        let body = json!({"activity":"queryInstance","instanceId": many.join(",")});
        assert!(Request::from_value(&body).is_err());
        assert!(parse(r#"{"activity":"queryInstance","instanceId":"a,,b"}"#).is_err());
        assert!(parse(r#"{"activity":"queryInstance","instanceId":" "}"#).is_err());
    }

    #[test]
    fn refresh_takes_both_expiry_lengths_and_keeps_unknown_scenes() {
        let body = r#"{"activity":"refreshInstance","expireTime":"20221124023618256","instanceId":"i","orderId":"o","orderLineId":"l","scene":"NEW_SCENE"}"#;
        let Request::RefreshInstance(r) = parse(body).unwrap() else { panic!() };
        assert_eq!(r.scene, RefreshScene::Other("NEW_SCENE".into()));
        assert_eq!(r.expire_time_ms, 1_669_257_378_256);
        let bad = body.replace("20221124023618256", "2022");
        assert!(matches!(parse(&bad), Err(MessageError::InvalidField { field: "expireTime", .. })));
    }

    #[test]
    fn unknown_activity_and_bad_status_are_refused() {
        assert_eq!(
            parse(r#"{"activity":"expireInstance"}"#),
            Err(MessageError::UnknownActivity("expireInstance".into()))
        );
        assert!(parse(r#"{"activity":"updateInstanceStatus","instanceId":"i","status":"NORMAL"}"#).is_err());
        assert_eq!(parse(r#"{"orderId":"o"}"#), Err(MessageError::MissingField("activity")));
    }

    #[test]
    fn over_long_ids_are_refused() {
        let body =
            json!({"activity":"newInstance","orderId":"o".repeat(65),"orderLineId":"l","businessId":"b"});
        assert!(matches!(
            Request::from_value(&body),
            Err(MessageError::InvalidField { field: "orderId", .. })
        ));
    }

    #[test]
    fn change_check_reads_the_nested_product_with_a_string_linear_value() {
        let body = r#"{"activity":"changeInstanceCheck","instanceId":"i","productInfo":{"productId":"p","skuCode":"s","linearValue":"5","productName":"n"}}"#;
        let Request::ChangeInstanceCheck(c) = parse(body).unwrap() else { panic!() };
        assert_eq!(c.product_info.linear_value, Some(5));
        assert!(parse(r#"{"activity":"changeInstanceCheck","instanceId":"i"}"#).is_err());
    }

    #[test]
    fn to_value_round_trips_through_from_value() {
        let body = r#"{"activity":"releaseInstance","instanceId":"i","orderId":"o","testFlag":"1"}"#;
        let request = parse(body).unwrap();
        assert_eq!(Request::from_value(&request.to_value()).unwrap(), request);
    }

    #[test]
    fn responses_escape_non_ascii_and_omit_absent_fields() {
        let mut response = CallbackResponse::code(ResultCode::Success);
        response.info = Some(vec![InstanceInfo {
            instance_id: "i".into(),
            app_info: Some(AppInfo {
                front_end_url: "https://a".into(),
                admin_url: None,
                user_name: None,
                password: None,
                memo: Some("中文".into()),
            }),
            usage_info: None,
        }]);
        assert_eq!(
            String::from_utf8(response.to_bytes()).unwrap(),
            r#"{"resultCode":"000000","resultMsg":"success.","info":[{"instanceId":"i","appInfo":{"frontEndUrl":"https://a","memo":"\u4e2d\u6587"}}]}"#
        );
    }

    #[test]
    fn app_info_debug_hides_the_password() {
        let info = AppInfo {
            front_end_url: "u".into(),
            admin_url: None,
            user_name: Some("admin".into()),
            password: Some("hunter2".into()),
            memo: None,
        };
        assert!(!format!("{info:?}").contains("hunter2"));
    }
}
