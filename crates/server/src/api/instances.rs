//! Instances as the merchant's app sees them: listing, one instance with its latest order, the
//! entitlement view, and provisioning results.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use koogate_protocol::ids::InstanceId;
use koogate_store::{Instance, InstanceQuery, InstanceStatus};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::{ApiError, ApiState};
use crate::events::{order_json, rfc3339};
use crate::provisioning::ReportedAppInfo;
use koogate_protocol::usage::format_quantity;

/// What a customer may use, derived from the instance's state and expiry.
#[derive(Debug, Serialize, ToSchema)]
pub struct Entitlement {
    pub instance_id: String,
    /// `provisioning`, `active`, `frozen`, `released` (also once purged) or `failed`.
    pub state: &'static str,
    /// True while the instance is active and not past `grace_until`.
    pub entitled: bool,
    pub sku_code: Option<String>,
    pub product_id: Option<String>,
    pub charging_mode: Option<String>,
    pub linear_value: Option<i64>,
    /// The absolute expiry (RFC 3339), from `refreshInstance` or else the order.
    pub expire_time: Option<String>,
    /// The expiry plus `KOOGATE_EXPIRY_GRACE`: KooGallery's FREEZE may arrive a little late.
    pub grace_until: Option<String>,
    /// A debug instance created by the Seller Console or a dial test.
    pub test: bool,
    /// For a use-until-stop package: its quota and what is left.
    pub package: Option<PackageView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PackageView {
    pub quota: String,
    pub used: String,
    pub remaining: String,
    /// The quota is used up: usage against this package is refused (`package.exhausted` was sent).
    pub exhausted: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InstanceView {
    pub instance_id: String,
    pub order_id: String,
    pub order_line_id: String,
    pub test: bool,
    /// `provisioning`, `active`, `frozen`, `released`, `failed` or `purged`.
    pub status: &'static str,
    pub expire_time: Option<String>,
    /// The scene of the last applied `refreshInstance`.
    pub last_scene: Option<String>,
    pub provision_error: Option<String>,
    pub front_end_url: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub entitlement: Entitlement,
    /// The latest order details fetched with Query Order, once known.
    #[schema(value_type = Option<Object>)]
    pub order: Option<Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InstancePage {
    pub items: Vec<InstanceView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// `provisioning`, `active`, `frozen`, `released`, `failed` or `purged`.
    pub status: Option<String>,
    /// A product id or SKU code.
    pub product: Option<String>,
    /// `true` for debug instances only, `false` for real ones only.
    pub test: Option<bool>,
    pub cursor: Option<String>,
    /// 1 to 500, default 100.
    pub limit: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FailedReport {
    /// Why provisioning failed (1 to 255 characters); shown by `queryInstance`.
    pub reason: String,
}

pub fn entitlement_of(instance: &Instance, now_ms: i64, grace_ms: i64) -> Entitlement {
    let state = match instance.status {
        InstanceStatus::Provisioning => "provisioning",
        InstanceStatus::Active => "active",
        InstanceStatus::Frozen => "frozen",
        InstanceStatus::Released | InstanceStatus::Purged => "released",
        InstanceStatus::Failed => "failed",
    };
    let grace_until = instance.expire_time_ms.map(|e| e.saturating_add(grace_ms));
    Entitlement {
        instance_id: instance.instance_id.to_string(),
        state,
        entitled: state == "active" && grace_until.is_none_or(|g| now_ms <= g),
        sku_code: instance.sku_code.clone(),
        product_id: instance.product_id.clone(),
        charging_mode: instance.charging_mode.clone(),
        linear_value: instance.linear_value,
        expire_time: instance.expire_time_ms.map(rfc3339),
        grace_until: grace_until.map(rfc3339),
        test: instance.test,
        package: None,
    }
}

/// The entitlement with the package quota filled in, when the instance is a package.
async fn entitlement_with_package(state: &ApiState, instance: &Instance) -> Result<Entitlement, ApiError> {
    let mut entitlement = entitlement_of(instance, state.clock.now_ms(), state.expiry_grace_ms);
    if let Some(package) = state.store.package_usage(instance.instance_id.as_str()).await? {
        let remaining = (package.quota_units - package.used_units).max(0);
        entitlement.package = Some(PackageView {
            quota: format_quantity(package.quota_units),
            used: format_quantity(package.used_units),
            remaining: format_quantity(remaining),
            exhausted: package.exhausted_at_ms.is_some() || remaining == 0,
        });
        if remaining == 0 {
            entitlement.entitled = false;
        }
    }
    Ok(entitlement)
}

async fn view(state: &ApiState, instance: Instance) -> Result<InstanceView, ApiError> {
    let orders = state.store.orders_for_instance(instance.instance_id.as_str()).await?;
    Ok(InstanceView {
        entitlement: entitlement_with_package(state, &instance).await?,
        instance_id: instance.instance_id.to_string(),
        order_id: instance.order_id.to_string(),
        order_line_id: instance.order_line_id.to_string(),
        test: instance.test,
        status: instance.status.as_str(),
        expire_time: instance.expire_time_ms.map(rfc3339),
        last_scene: instance.last_scene.clone(),
        provision_error: instance.provision_error.clone(),
        front_end_url: instance.app_info.as_ref().map(|a| a.front_end_url.clone()),
        created_at: rfc3339(instance.created_at_ms),
        updated_at: rfc3339(instance.updated_at_ms),
        order: orders.last().map(order_json),
    })
}

fn parse_id(id: &str) -> Result<InstanceId, ApiError> {
    InstanceId::parse(id).map_err(|_| ApiError::NotFound("no such instance".into()))
}

async fn find(state: &ApiState, id: &str) -> Result<Instance, ApiError> {
    state.store.instance(&parse_id(id)?).await?.ok_or_else(|| ApiError::NotFound("no such instance".into()))
}

/// List instances, filtered, in id order.
#[utoipa::path(get, path = "/api/v1/instances", tag = "instances", params(ListParams),
    responses((status = 200, body = InstancePage), (status = 400, body = super::error::ErrorBody),
               (status = 401, body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<ApiState>,
    Query(params): Query<ListParams>,
) -> Result<Json<InstancePage>, ApiError> {
    let status = match params.status.as_deref() {
        None => None,
        Some(text) => Some(
            InstanceStatus::parse(text)
                .ok_or_else(|| ApiError::BadRequest(format!("unknown status {text:?}")))?,
        ),
    };
    let limit = params.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::BadRequest("limit must be 1 to 500".into()));
    }
    let query = InstanceQuery {
        status,
        product: params.product,
        test: params.test,
        after: params.cursor,
        limit: limit + 1,
    };
    let mut instances = state.store.list_instances(&query).await?;
    let more = instances.len() as i64 > limit;
    instances.truncate(limit as usize);
    let next_cursor = more.then(|| instances.last().map(|i| i.instance_id.to_string())).flatten();
    let mut items = Vec::with_capacity(instances.len());
    for instance in instances {
        items.push(view(&state, instance).await?);
    }
    Ok(Json(InstancePage { items, next_cursor }))
}

/// One instance with its entitlement and latest order.
#[utoipa::path(get, path = "/api/v1/instances/{id}", tag = "instances", params(("id" = String, Path)),
    responses((status = 200, body = InstanceView), (status = 404, body = super::error::ErrorBody),
               (status = 401, body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_one(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<InstanceView>, ApiError> {
    let instance = find(&state, &id).await?;
    Ok(Json(view(&state, instance).await?))
}

/// What the customer of an instance is entitled to now.
#[utoipa::path(get, path = "/api/v1/instances/{id}/entitlement", tag = "instances", params(("id" = String, Path)),
    responses((status = 200, body = Entitlement), (status = 404, body = super::error::ErrorBody),
               (status = 401, body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn entitlement(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<Entitlement>, ApiError> {
    let instance = find(&state, &id).await?;
    Ok(Json(entitlement_with_package(&state, &instance).await?))
}

/// Report that the app finished provisioning; `queryInstance` then answers with these details.
#[utoipa::path(post, path = "/api/v1/instances/{id}/provisioned", tag = "provisioning", params(("id" = String, Path)),
    request_body = ReportedAppInfo,
    responses((status = 204), (status = 400, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody),
               (status = 409, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn provisioned(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    Json(app): Json<ReportedAppInfo>,
) -> Result<StatusCode, ApiError> {
    state.results.provisioned(&parse_id(&id)?, app.into()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Report that provisioning failed; KooGallery's next `newInstance` for the order tries again.
#[utoipa::path(post, path = "/api/v1/instances/{id}/failed", tag = "provisioning", params(("id" = String, Path)),
    request_body = FailedReport,
    responses((status = 204), (status = 400, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody),
               (status = 409, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn failed(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    Json(report): Json<FailedReport>,
) -> Result<StatusCode, ApiError> {
    state.results.failed(&parse_id(&id)?, &report.reason).await?;
    Ok(StatusCode::NO_CONTENT)
}
