//! The HTTP surface: the production interface, health probes and metrics.

mod health;
mod produce;

use axum::routing::{get, post};
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use tower_http::trace::TraceLayer;

use crate::saas::Saas;
use koogate_store::Store;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub saas: Saas,
    pub store: Store,
    pub max_body_bytes: usize,
    pub metrics: Option<PrometheusHandle>,
}

/// All routes. The production interface answers every failure itself (HTTP 200 with a result code),
/// including oversized bodies, so it reads the body with its own limit.
pub fn router(state: AppState, produce_path: &str) -> Router {
    Router::new()
        .route(produce_path, post(produce::produce))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
