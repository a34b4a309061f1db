//! The API's one error type and the one place that turns it into a status and a JSON body
//! `{"error": {"code", "message"}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use koogate_store::StoreError;
use serde::Serialize;

use crate::provisioning::ReportError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("a valid bearer token is required")]
    Unauthorized,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("the database is unavailable")]
    Store(#[from] StoreError),
}

/// The error body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// `unauthorized`, `not_found`, `conflict`, `bad_request` or `unavailable`.
    pub code: &'static str,
    pub message: String,
}

impl From<ReportError> for ApiError {
    fn from(error: ReportError) -> Self {
        match error {
            ReportError::NotFound => ApiError::NotFound("no such instance".into()),
            ReportError::NotProvisioning(_) => ApiError::Conflict(error.to_string()),
            ReportError::Invalid(_) | ReportError::NoMasterKey => ApiError::BadRequest(error.to_string()),
            ReportError::Store(e) => ApiError::Store(e),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Store(error) => {
                tracing::error!(error = ?error, "API request failed on storage");
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
            }
        };
        let mut response =
            (status, Json(ErrorBody { error: ErrorDetail { code, message: self.to_string() } }))
                .into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert("www-authenticate", axum::http::HeaderValue::from_static("Bearer"));
        }
        response
    }
}
