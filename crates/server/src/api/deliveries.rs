//! Deliveries of events to the app: listing (for example the dead ones) and replaying.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use koogate_store::{Delivery, DeliveryQuery};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ApiError, ApiState};
use crate::events::rfc3339;

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    /// The `webhook-id`, the same on every attempt and replay.
    pub event_id: String,
    pub event_type: String,
    pub instance_id: String,
    pub test: bool,
    /// `pending`, `delivered` or `dead`.
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: Option<String>,
    /// The last HTTP status (or command exit status).
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: String,
    pub delivered_at: Option<String>,
}

impl DeliveryView {
    pub fn from_delivery(d: &Delivery) -> Self {
        DeliveryView {
            event_id: d.event_id.clone(),
            event_type: d.event_type.clone(),
            instance_id: d.instance_id.clone(),
            test: d.test,
            state: d.state.clone(),
            attempts: d.attempts,
            next_attempt_at: (d.state == "pending").then(|| rfc3339(d.next_attempt_at_ms)),
            last_status: d.last_status,
            last_error: d.last_error.clone(),
            created_at: rfc3339(d.created_at_ms),
            delivered_at: d.delivered_at_ms.map(rfc3339),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryPage {
    pub items: Vec<DeliveryView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryParams {
    /// `pending`, `delivered` or `dead`.
    pub state: Option<String>,
    pub instance_id: Option<String>,
    pub cursor: Option<String>,
    /// 1 to 500, default 100.
    pub limit: Option<i64>,
}

/// Deliveries, newest first.
#[utoipa::path(get, path = "/api/v1/deliveries", tag = "deliveries", params(DeliveryParams),
    responses((status = 200, body = DeliveryPage), (status = 400, body = super::error::ErrorBody),
               (status = 401, body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<ApiState>,
    Query(params): Query<DeliveryParams>,
) -> Result<Json<DeliveryPage>, ApiError> {
    if let Some(s) = params.state.as_deref() {
        if !matches!(s, "pending" | "delivered" | "dead") {
            return Err(ApiError::BadRequest(format!("unknown state {s:?}")));
        }
    }
    let limit = params.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::BadRequest("limit must be 1 to 500".into()));
    }
    let before_id = match params.cursor.as_deref() {
        None => None,
        Some(c) => Some(c.parse::<i64>().map_err(|_| ApiError::BadRequest("invalid cursor".into()))?),
    };
    let query =
        DeliveryQuery { state: params.state, instance_id: params.instance_id, before_id, limit: limit + 1 };
    let mut rows = state.store.deliveries(&query).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = more.then(|| rows.last().map(|d| d.id.to_string())).flatten();
    Ok(Json(DeliveryPage { items: rows.iter().map(DeliveryView::from_delivery).collect(), next_cursor }))
}

/// Send a dead (or delivered) event again, with the same id and body.
#[utoipa::path(post, path = "/api/v1/deliveries/{event_id}/replay", tag = "deliveries", params(("event_id" = String, Path)),
    responses((status = 202), (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody),
               (status = 401, body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn replay(
    State(state): State<ApiState>,
    Path(event_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if state.store.replay_delivery(&event_id, state.clock.now_ms()).await? {
        return Ok(StatusCode::ACCEPTED);
    }
    match state.store.delivery(&event_id).await? {
        None => Err(ApiError::NotFound("no such event".into())),
        Some(_) => Err(ApiError::Conflict("the event is still pending".into())),
    }
}
