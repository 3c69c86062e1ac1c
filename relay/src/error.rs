//! The one error type of the relay, in OpenAI's shape:
//! `{"error": {"message": ..., "type": ..., "code": ...}}`.
//!
//! Before a stream starts it is an HTTP response with a status; after, the same object is
//! sent as an SSE event in the stream (see [`crate::generation`]).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// OpenAI's `type`: `invalid_request_error`, `rate_limit_error`, `upstream_error`, ...
    pub kind: String,
    /// A stable machine-readable code: `body_too_large`, `upstream_idle_timeout`, ...
    pub code: String,
    /// Seconds, for 429 and 503.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &str, code: &str, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into(), kind: kind.into(), code: code.into(), retry_after: None }
    }

    pub fn bad_request(code: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request_error", code, message)
    }

    pub fn too_many(code: &str, retry_after: u64, message: impl Into<String>) -> ApiError {
        ApiError {
            retry_after: Some(retry_after.max(1)),
            ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limit_error", code, message)
        }
    }

    pub fn upstream(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(status, "upstream_error", code, message)
    }

    pub fn not_found(code: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "invalid_request_error", code, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "authentication_error", "invalid_client_token", message)
    }

    /// The JSON object clients see.
    pub fn body(&self) -> String {
        serde_json::json!({
            "error": { "message": self.message, "type": self.kind, "code": self.code }
        })
        .to_string()
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.status.as_u16(), self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (self.status, [(header::CONTENT_TYPE, "application/json")], self.body()).into_response();
        if let Some(secs) = self.retry_after {
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}
