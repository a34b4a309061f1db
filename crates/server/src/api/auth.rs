//! Bearer-token authentication for the API routes.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::{tokens, ApiError, ApiState};

/// Lets the request through only with an unrevoked token. The token is looked up by its hash, so the
/// database never compares secrets.
pub async fn require_token(
    State(state): State<ApiState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let token = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(ApiError::Unauthorized)?;
    let found = state.store.use_token(&tokens::hash(token), state.clock.now_ms()).await?;
    let token = found.ok_or(ApiError::Unauthorized)?;
    tracing::debug!(token_id = %token.id, "API request authorised");
    Ok(next.run(request).await)
}
