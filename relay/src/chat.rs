//! The OpenAI chat request the relay accepts, and the limits it enforces on it.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
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

/// `Json<ChatRequest>` whose rejections are [`ApiError`]s with clear messages (413 for a
/// body over the limit, 400 for bad JSON).
pub struct ChatBody(pub ChatRequest);

impl<S: Send + Sync> FromRequest<S> for ChatBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let limit = req.extensions().get::<BodyLimit>().map(|l| l.0);
        match axum::Json::<ChatRequest>::from_request(req, state).await {
            Ok(axum::Json(body)) => Ok(ChatBody(body)),
            Err(rejection) => Err(reject(rejection, limit)),
        }
    }
}

/// The configured body limit, put in the request extensions so the rejection can name it.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

fn reject(rejection: JsonRejection, limit: Option<usize>) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        let limit = limit.map(|l| format!(" of {l} bytes")).unwrap_or_default();
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            "body_too_large",
            format!("the request body is larger than this relay's limit{limit}"),
        );
    }
    let code = match rejection {
        JsonRejection::MissingJsonContentType(_) => "invalid_content_type",
        _ => "invalid_json",
    };
    ApiError::bad_request(code, rejection.body_text())
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
