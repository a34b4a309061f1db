//! Usage ingest (`POST /api/v1/usage`) and the ledger (`GET /api/v1/usage/records`).

use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ApiError, ApiState};
use crate::events::rfc3339;
use crate::usage::{IngestReport, UsageEventInput};

/// Most events in one request.
const MAX_EVENTS: usize = 10_000;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UsageBatch {
    pub events: Vec<UsageEventInput>,
}

/// A metering record: the usage of one instance (and package) in one window.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsageRecordView {
    pub instance_id: String,
    pub package_instance_id: Option<String>,
    pub begin_time: String,
    pub end_time: String,
    /// The exact sum, as a decimal string.
    pub usage_value: String,
    pub metering_sn: String,
    /// `open`, `sealed`, `batched`, `pushed`, `rejected` or `expired`.
    pub state: String,
    /// KooGallery's code when the push was rejected.
    pub reject_code: Option<String>,
    pub reject_message: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RecordParams {
    pub instance_id: Option<String>,
    pub state: Option<String>,
}

/// Count a batch of usage events. Good events are durable when this answers 200; each bad one is listed
/// in `rejected` without affecting the others. Repeated `event_id`s are counted once.
#[utoipa::path(post, path = "/api/v1/usage", tag = "usage", request_body = UsageBatch,
    responses((status = 200, body = IngestReport), (status = 400, body = super::error::ErrorBody),
               (status = 401, body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn ingest(
    State(state): State<ApiState>,
    Json(batch): Json<UsageBatch>,
) -> Result<Json<IngestReport>, ApiError> {
    if batch.events.len() > MAX_EVENTS {
        return Err(ApiError::BadRequest(format!("at most {MAX_EVENTS} events per request")));
    }
    Ok(Json(state.metering.ingest(batch.events).await?))
}

/// The metering ledger, newest window first (for example the rejected records).
#[utoipa::path(get, path = "/api/v1/usage/records", tag = "usage", params(RecordParams),
    responses((status = 200, body = Vec<UsageRecordView>), (status = 401, body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn records(
    State(state): State<ApiState>,
    Query(params): Query<RecordParams>,
) -> Result<Json<Vec<UsageRecordView>>, ApiError> {
    let rows = state.store.usage_records(params.instance_id.as_deref(), params.state.as_deref()).await?;
    Ok(Json(
        rows.into_iter()
            .map(|r| UsageRecordView {
                instance_id: r.instance_id,
                package_instance_id: (!r.package_instance_id.is_empty()).then_some(r.package_instance_id),
                begin_time: rfc3339(r.window_start_ms),
                end_time: rfc3339(r.window_end_ms),
                usage_value: koogate_protocol::usage::format_quantity(r.units),
                metering_sn: r.metering_sn,
                state: r.state,
                reject_code: r.reject_code,
                reject_message: r.reject_message,
            })
            .collect(),
    ))
}
