//! The one error type of the relay, in OpenAI's shape:
//! `{"error": {"message": ..., "type": ..., "code": ...}}`.
//!
//! Before a stream starts it is an HTTP response with a status; after, the same object is
//! sent as an SSE event in the stream (see [`crate::generation`]).

use std::sync::RwLock;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// Every secret configured in this process (upstream keys, client tokens, HMAC secrets): no
/// error message leaves the relay with one of them in it.
static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Adds a secret that [`redact`] removes from every message. Empty and very short strings
/// are ignored (they would redact ordinary words).
pub fn register_secret(secret: &str) {
    if secret.len() < 4 {
        return;
    }
    let mut all = SECRETS.write().unwrap_or_else(|p| p.into_inner());
    if !all.iter().any(|s| s == secret) {
        all.push(secret.to_string());
    }
}

/// `message` without any configured secret and without anything shaped like an API key or a
/// bearer credential (`sk-…`, `AIza…`, `Bearer …`, `cw1.…`), each replaced by `[redacted]`.
pub fn redact(message: &str) -> String {
    let mut out = message.to_string();
    for secret in SECRETS.read().unwrap_or_else(|p| p.into_inner()).iter() {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), "[redacted]");
        }
    }
    let mut words: Vec<String> = Vec::new();
    let mut redact_next = false;
    for word in out.split(' ') {
        let bare = word.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_');
        if redact_next && !bare.is_empty() {
            words.push("[redacted]".into());
            redact_next = false;
            continue;
        }
        redact_next = bare.eq_ignore_ascii_case("bearer") || bare.eq_ignore_ascii_case("basic");
        words.push(if looks_like_a_credential(bare) { "[redacted]".into() } else { word.to_string() });
    }
    words.join(" ")
}

fn looks_like_a_credential(word: &str) -> bool {
    let long = word.len() >= 12;
    long && (["sk-", "sk_", "AIza", "cw1.", "key-", "xai-", "gsk_", "hf_"].iter().any(|p| word.starts_with(p)))
}

/// A code or type from an upstream, kept only when it is a plain identifier (`invalid_api_key`,
/// `429`, `RESOURCE_EXHAUSTED`) that carries no credential.
pub fn safe_identifier(raw: &str) -> Option<String> {
    let ok = !raw.is_empty()
        && raw.len() <= 64
        && raw.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && !looks_like_a_credential(raw)
        && redact(raw) == raw;
    ok.then(|| raw.to_string())
}

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

    /// The JSON object clients see, with every secret redacted.
    pub fn body(&self) -> String {
        serde_json::json!({
            "error": { "message": redact(&self.message), "type": redact(&self.kind), "code": redact(&self.code) }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_key_shapes_are_redacted() {
        register_secret("my-own-upstream-secret");
        let m = redact("bad key my-own-upstream-secret; Incorrect API key provided: sk-proj-abcdefghijkl, Bearer xyz");
        assert_eq!(m, "bad key [redacted]; Incorrect API key provided: [redacted] Bearer [redacted]");
        assert_eq!(redact("Bearer"), "Bearer");
        assert_eq!(safe_identifier("invalid_api_key").as_deref(), Some("invalid_api_key"));
        assert_eq!(safe_identifier("a\"b"), None);
        assert_eq!(safe_identifier("sk-proj-abcdefghijkl"), None);
    }
}
