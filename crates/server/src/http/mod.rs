//! The HTTP surface: the production interface, health probes and metrics.

mod health;
mod produce;

use axum::routing::{get, post};
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

use crate::saas::Saas;
use koogate_store::Store;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub saas: Saas,
    pub api: crate::api::ApiState,
    pub store: Store,
    pub max_body_bytes: usize,
    pub metrics: Option<PrometheusHandle>,
}

/// All routes. The production interface answers every failure itself (HTTP 200 with a result code),
/// including oversized bodies, so it reads the body with its own limit.
pub fn router(state: AppState, produce_path: &str) -> Router {
    // A panic while handling a callback still gets a signed 200 with 000005: KooGallery retries, and the
    // transaction that was open has rolled back.
    let panic_answer = produce::panic_answer(state.saas.key().clone());
    Router::new()
        .route(produce_path, post(produce::produce).layer(CatchPanicLayer::custom(panic_answer)))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .with_state(state.clone())
        .merge(crate::api::router(state.api))
        .layer(TraceLayer::new_for_http())
}
