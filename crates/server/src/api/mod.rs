//! The merchant-app REST API under `/api/v1/`: instances and their entitlement, provisioning results,
//! deliveries. Every route but the OpenAPI document needs `Authorization: Bearer <token>`.

mod auth;
mod deliveries;
mod error;
mod instances;
pub mod openapi;
pub mod tokens;
mod usage;

use std::sync::Arc;

use axum::middleware;
use axum::routing::{get, post};
use axum::Router;
use koogate_store::Store;

pub use error::ApiError;

use crate::clock::Clock;
use crate::provisioning::ProvisioningResults;

/// What the API handlers share.
#[derive(Clone)]
pub struct ApiState {
    pub store: Store,
    pub metering: crate::usage::Metering,
    pub clock: Arc<dyn Clock>,
    pub results: ProvisioningResults,
    /// How long after its expiry an unfrozen instance still counts as entitled.
    pub expiry_grace_ms: i64,
}

/// The `/api/v1` routes.
pub fn router(state: ApiState) -> Router {
    let protected = Router::new()
        .route("/api/v1/instances", get(instances::list))
        .route("/api/v1/instances/{id}", get(instances::get_one))
        .route("/api/v1/instances/{id}/entitlement", get(instances::entitlement))
        .route("/api/v1/instances/{id}/provisioned", post(instances::provisioned))
        .route("/api/v1/instances/{id}/failed", post(instances::failed))
        .route("/api/v1/usage", post(usage::ingest))
        .route("/api/v1/usage/records", get(usage::records))
        .route("/api/v1/deliveries", get(deliveries::list))
        .route("/api/v1/deliveries/{event_id}/replay", post(deliveries::replay))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth::require_token))
        // Usage batches of thousands of events exceed axum's default 2 MB body limit.
        .layer(axum::extract::DefaultBodyLimit::max(16 * 1024 * 1024));
    Router::new().route("/api/v1/openapi.json", get(openapi::document)).merge(protected).with_state(state)
}
