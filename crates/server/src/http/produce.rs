//! `POST /saasproduce`: reads the raw body (bounded), hands it to the service unparsed, and sends the
//! exact answer bytes with their `Body-Sign` header.

use axum::body::{to_bytes, Body};
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use koogate_protocol::{body_sign, AccessKey, CallbackResponse, ResultCode};

use super::AppState;
use crate::saas::Answer;

pub async fn produce(State(state): State<AppState>, RawQuery(query): RawQuery, body: Body) -> Response {
    let query = query.unwrap_or_default();
    let answer = match to_bytes(body, state.max_body_bytes).await {
        Ok(bytes) => state.saas.handle(&query, &bytes).await,
        // Over the limit, or the connection broke mid-body: either way there is no request to handle.
        Err(_) => state.saas.refuse_oversized(&query, state.max_body_bytes).await,
    };
    respond(&state, answer)
}

/// HTTP 200, `Content-Type: application/json` and `Body-Sign` over the exact bytes (spec §1, §3).
fn respond(state: &AppState, answer: Answer) -> Response {
    signed_response(state.saas.key(), answer.body)
}

fn signed_response(key: &AccessKey, body: Vec<u8>) -> Response {
    let signature = body_sign::header_value(key, &body);
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(value) = HeaderValue::from_str(&signature) {
        headers.insert(body_sign::HEADER_NAME, value);
    }
    response
}

/// The answer given when handling panicked (nothing was committed).
pub fn panic_answer(
    key: AccessKey,
) -> impl Fn(Box<dyn std::any::Any + Send + 'static>) -> Response + Clone + Send + Sync + 'static {
    move |_panic| {
        tracing::error!("a callback handler panicked; answered 000005");
        signed_response(&key, CallbackResponse::code(ResultCode::InternalError).to_bytes())
    }
}
