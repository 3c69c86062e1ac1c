//! The OpenAI chat request the relay accepts, and the limits it enforces on it.

use std::time::Duration;

use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::config::Limits;
use crate::error::ApiError;

/// The fields the relay reads; everything else a client sends is ignored (not forwarded).
#[derive(Debug, Clone, Deserialize)]
pub struct ChatRequest {
    #[serde(default)]
    pub model: String,
    pub messages: Vec<Message>,
    #[serde(default)]
    pub stream: bool,
    pub max_tokens: Option<u32>,
    pub max_completion_tokens: Option<u32>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub stop: Option<Value>,
    pub presence_penalty: Option<f64>,
    pub frequency_penalty: Option<f64>,
    pub seed: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Message {
    pub role: String,
    #[serde(default)]
    pub content: Value,
}

impl Message {
    /// The text of the message: a string, or the `text` parts of an array of parts.
    pub fn text(&self) -> String {
        match &self.content {
            Value::String(s) => s.clone(),
            Value::Array(parts) => {
                parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join("")
            }
            _ => String::new(),
        }
    }
}

/// A validated request, ready for any upstream.
#[derive(Debug, Clone)]
pub struct Prompt {
    pub messages: Vec<(String, String)>,
    pub max_tokens: u32,
    /// Sampling fields forwarded as given (OpenAI names).
    pub sampling: Map<String, Value>,
    pub chars: usize,
}

impl ChatRequest {
    /// Checks the request against the limits; the error names the limit and the value.
    pub fn validate(&self, limits: &Limits) -> Result<Prompt, ApiError> {
        if self.messages.is_empty() {
            return Err(ApiError::bad_request("empty_messages", "messages must contain at least one message"));
        }
        if self.messages.len() > limits.max_messages {
            return Err(ApiError::bad_request(
                "too_many_messages",
                format!("{} messages is more than this relay's limit of {}", self.messages.len(), limits.max_messages),
            ));
        }
        let mut messages = Vec::with_capacity(self.messages.len());
        let mut total = 0;
        for (i, m) in self.messages.iter().enumerate() {
            let role = match m.role.as_str() {
                "system" | "developer" => "system",
                "user" => "user",
                "assistant" => "assistant",
                other => {
                    return Err(ApiError::bad_request(
                        "invalid_role",
                        format!("messages[{i}].role {other:?} is not one of system, developer, user, assistant"),
                    ))
                }
            };
            if !matches!(m.content, Value::String(_) | Value::Array(_)) {
                return Err(ApiError::bad_request(
                    "invalid_content",
                    format!("messages[{i}].content must be a string or an array of text parts"),
                ));
            }
            let text = m.text();
            let chars = text.chars().count();
            if chars > limits.max_message_chars {
                return Err(ApiError::bad_request(
                    "message_too_long",
                    format!(
                        "messages[{i}] has {chars} characters, more than this relay's limit of {}",
                        limits.max_message_chars
                    ),
                ));
            }
            total += chars;
            messages.push((role.to_string(), text));
        }
        if total > limits.max_total_chars {
            return Err(ApiError::bad_request(
                "messages_too_long",
                format!(
                    "the messages have {total} characters in all, more than this relay's limit of {}",
                    limits.max_total_chars
                ),
            ));
        }
        let asked = self.max_completion_tokens.or(self.max_tokens);
        if let Some(n) = asked {
            if n > limits.max_tokens {
                return Err(ApiError::bad_request(
                    "max_tokens_too_large",
                    format!("max_tokens {n} is more than this relay's limit of {}", limits.max_tokens),
                ));
            }
            if n == 0 {
                return Err(ApiError::bad_request("invalid_max_tokens", "max_tokens must be at least 1"));
            }
        }
        let mut sampling = Map::new();
        let mut put = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                sampling.insert(k.to_string(), v);
            }
        };
        put("temperature", self.temperature.map(Value::from));
        put("top_p", self.top_p.map(Value::from));
        put("stop", self.stop.clone());
        put("presence_penalty", self.presence_penalty.map(Value::from));
        put("frequency_penalty", self.frequency_penalty.map(Value::from));
        put("seed", self.seed.map(Value::from));
        Ok(Prompt { messages, max_tokens: asked.unwrap_or(limits.max_tokens), sampling, chars: total })
    }
}

/// The request body as a [`ChatRequest`], read under [`BodyRules`]: errors are [`ApiError`]s
/// with clear messages (413 over the limit, 408 too slow, 400 for bad JSON).
pub struct ChatBody(pub ChatRequest);

impl<S: Send + Sync> FromRequest<S> for ChatBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let rules = req.extensions().get::<BodyRules>().copied().unwrap_or_default();
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|mime| {
                let mime = mime.trim().to_ascii_lowercase();
                mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
            })
            .unwrap_or(false);
        if !is_json {
            return Err(ApiError::bad_request(
                "invalid_content_type",
                "expected a request with Content-Type: application/json",
            ));
        }
        let bytes = read_body(req, rules).await?;
        serde_json::from_slice(&bytes).map(ChatBody).map_err(|e| {
            ApiError::bad_request("invalid_json", format!("the request body is not a valid chat request: {e}"))
        })
    }
}

/// How a request body is read: at most `limit` bytes, all within `timeout`, and after the
/// first second at no less than `min_rate` bytes per second on average. Put in the request
/// extensions by the router.
#[derive(Debug, Clone, Copy)]
pub struct BodyRules {
    pub limit: usize,
    pub timeout: Duration,
    pub min_rate: u64,
}

impl Default for BodyRules {
    fn default() -> Self {
        let limits = Limits::default();
        BodyRules {
            limit: limits.max_body_bytes,
            timeout: Duration::from_millis(limits.body_timeout_ms),
            min_rate: limits.min_body_rate,
        }
    }
}

/// Reads the body into one buffer sized by its declared length. Each piece is copied and
/// released at once: a body sent a byte per TCP segment does not keep a read buffer alive
/// per byte.
async fn read_body(req: Request, rules: BodyRules) -> Result<Vec<u8>, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            "body_too_large",
            format!("the request body is larger than this relay's limit of {} bytes", rules.limit),
        )
    };
    let too_slow = |why: &str| {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "invalid_request_error",
            "body_timeout",
            format!("the request body {why}; send it at once"),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > rules.limit as u64) {
        return Err(too_large());
    }
    let mut out = Vec::with_capacity(declared.map_or(1024, |n| n as usize).min(rules.limit));
    let mut body = req.into_body().into_data_stream();
    let started = tokio::time::Instant::now();
    let deadline = started + rules.timeout;
    loop {
        let next = match tokio::time::timeout_at(deadline, body.next()).await {
            Ok(next) => next,
            Err(_) => {
                return Err(too_slow(&format!("did not arrive within {} ms", rules.timeout.as_millis())));
            }
        };
        match next {
            None => return Ok(out),
            Some(Err(_)) => return Err(ApiError::bad_request("invalid_body", "the request body could not be read")),
            Some(Ok(piece)) => {
                if out.len() + piece.len() > rules.limit {
                    return Err(too_large());
                }
                out.extend_from_slice(&piece);
            }
        }
        let elapsed = started.elapsed().as_secs_f64();
        if elapsed > 1.0 && (out.len() as f64) < rules.min_rate as f64 * (elapsed - 1.0) {
            return Err(too_slow(&format!("arrived slower than {} bytes per second", rules.min_rate)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(json: &str) -> ChatRequest {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn limits_name_the_value_and_the_limit() {
        let limits =
            Limits { max_messages: 2, max_message_chars: 5, max_total_chars: 8, max_tokens: 10, ..Limits::default() };
        let e = req(r#"{"messages":[{"role":"user","content":"a"},{"role":"user","content":"b"},{"role":"user","content":"c"}]}"#)
            .validate(&limits)
            .unwrap_err();
        assert_eq!(e.code, "too_many_messages");
        assert!(e.message.contains("3 messages") && e.message.contains("limit of 2"), "{}", e.message);
        let e = req(r#"{"messages":[{"role":"user","content":"你好你好你好"}]}"#).validate(&limits).unwrap_err();
        assert_eq!(e.code, "message_too_long");
        let e = req(r#"{"messages":[{"role":"user","content":"aaaaa"},{"role":"user","content":"bbbbb"}]}"#)
            .validate(&limits)
            .unwrap_err();
        assert_eq!(e.code, "messages_too_long");
        let e = req(r#"{"messages":[{"role":"user","content":"a"}],"max_tokens":11}"#).validate(&limits).unwrap_err();
        assert_eq!(e.code, "max_tokens_too_large");
        let e = req(r#"{"messages":[{"role":"tool","content":"a"}]}"#).validate(&limits).unwrap_err();
        assert_eq!(e.code, "invalid_role");
        let p = req(r#"{"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}],"temperature":0.5}"#)
            .validate(&limits)
            .unwrap();
        assert_eq!(p.messages, vec![("user".to_string(), "hi".to_string())]);
        assert_eq!(p.max_tokens, 10);
        assert_eq!(p.sampling["temperature"], 0.5);
    }
}
