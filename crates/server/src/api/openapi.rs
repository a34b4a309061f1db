//! The OpenAPI document of `/api/v1`, generated from the handlers and types, including the webhook
//! event payloads. It is committed as `docs/openapi.json`; a test fails when the two drift apart.

use axum::Json;
use serde::Serialize;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use super::deliveries::{DeliveryPage, DeliveryView};
use super::error::{ErrorBody, ErrorDetail};
use super::instances::{Entitlement, FailedReport, InstancePage, InstanceView, PackageView};
use super::usage::{UsageBatch, UsageRecordView};
use crate::events::EventType;
use crate::provisioning::ReportedAppInfo;
use crate::usage::{IngestReport, RejectedEvent, UsageEventInput};

/// A lifecycle event as POSTed to `KOOGATE_APP_WEBHOOK_URL` (or given to the command on standard input),
/// with headers `webhook-id` (the event id), `webhook-timestamp` and `webhook-signature`
/// (`v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` per secret, Standard Webhooks).
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookEvent {
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// When the change happened (RFC 3339).
    pub timestamp: String,
    pub data: EventData,
}

/// The facts of an event. Which optional fields appear depends on the type.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventData {
    pub instance_id: String,
    /// A debug call (`testFlag=1`) caused it.
    pub test: bool,
    /// `instance.created`, `instance.renewed`, `instance.upgraded`, `instance.released` (refunds).
    pub order_id: Option<String>,
    pub order_line_id: Option<String>,
    /// `instance.created`: `provisioning` (the app provisions and reports) or `active`.
    pub status: Option<String>,
    /// `instance.renewed`: `TRIAL_TO_FORMAL`, `RENEWAL`, `UNSUBSCRIBE_RENEWAL_PERIOD`, `RENEWAL_CHANGE`.
    pub scene: Option<String>,
    /// `instance.renewed`: the new absolute expiry (RFC 3339).
    pub expire_time: Option<String>,
    pub product_id: Option<String>,
    /// `instance.released`: true when caused by an unsubscription (refund).
    pub refund: Option<bool>,
    /// `instance.released`: when the data will be purged.
    pub purge_after: Option<String>,
    /// `package.exhausted`: the package's quota (the event's `instance_id` is the package).
    pub quota: Option<i64>,
    /// The latest Query Order details of the instance, once fetched.
    #[schema(value_type = Option<Object>)]
    pub order: Option<serde_json::Value>,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "koogate merchant-app API", description = "Instances, entitlements, provisioning results and webhook deliveries of koogate."),
    paths(
        super::instances::list,
        super::instances::get_one,
        super::instances::entitlement,
        super::instances::provisioned,
        super::instances::failed,
        super::deliveries::list,
        super::deliveries::replay,
        super::usage::ingest,
        super::usage::records,
    ),
    components(schemas(
        InstancePage, InstanceView, Entitlement, PackageView, ReportedAppInfo, FailedReport, DeliveryPage, DeliveryView,
        ErrorBody, ErrorDetail, WebhookEvent, EventData, EventType, UsageBatch, UsageEventInput, IngestReport,
        RejectedEvent, UsageRecordView
    )),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

/// The document as served and committed (pretty JSON with a trailing newline).
pub fn document_text() -> String {
    let mut text = ApiDoc::openapi().to_pretty_json().expect("the OpenAPI document serialises");
    text.push('\n');
    text
}

pub async fn document() -> Json<serde_json::Value> {
    Json(serde_json::from_str(&document_text()).expect("the document is JSON"))
}
