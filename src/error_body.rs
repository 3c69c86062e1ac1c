//! Reading the error body a provider answers with instead of a stream (HTTP 4xx/5xx).
//!
//! Every supported provider's shape is read:
//! - OpenAI and compatible APIs: `{"error": {"message", "type", "param", "code"}}`
//! - Anthropic: `{"type": "error", "error": {"type", "message"}}`
//! - Gemini: `{"error": {"code", "message", "status"}}`, also as a one-element array
//! - DashScope: `{"code", "message", "request_id"}`; Dify: `{"status", "code", "message"}`
//! - Ollama and others: `{"error": "message"}`
//!
//! ```
//! let body = br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
//! let e = chunkwise::error_body::read(body).unwrap();
//! assert_eq!((e.kind.as_deref(), e.message.as_str()), (Some("overloaded_error"), "Overloaded"));
//! assert!(chunkwise::error_body::read(b"<html>502 Bad Gateway</html>").is_none());
//! ```

// `Ok(slot = value?)` keeps each field to one line, as in the provider formats.
#![allow(clippy::unit_arg)]

use crate::formats::{error_parts, ErrorParts};
use crate::json::{Reader, Result};
use crate::utf8::decode_lossy;

/// What an error body says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorBody {
    /// The provider's message; when it gave none, its error type or code.
    pub message: String,
    /// The provider's error type: its `type`, else Gemini's `status`, else a string `code`.
    pub kind: Option<String>,
    /// The provider's code as JSON text (`"\"rate_limit_exceeded\""`, `"429"`), as in
    /// [`crate::StreamError::code`].
    pub code: Option<String>,
}

/// Reads an error body; `None` when it is not JSON in one of the shapes above (an HTML
/// page from a proxy, an empty body), so the caller falls back to the status and the text.
pub fn read(body: &[u8]) -> Option<ErrorBody> {
    let text = decode_lossy(body);
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(&text).trim_ascii_start();
    let parts = if text.starts_with('[') {
        let mut first = None;
        Reader::parse(text, |r| r.array(|r, i| if i == 0 { Ok(first = object(r)?) } else { r.skip() })).ok()?;
        first?
    } else {
        Reader::parse(text, object).ok()??
    };
    into_body(parts)
}

/// One error object: its `error` member when it has one, else its own fields.
fn object(r: &mut Reader<'_>) -> Result<Option<ErrorParts>> {
    let mut nested = None;
    let mut top = ErrorParts::default();
    r.object(|r, key| match key {
        "error" => Ok(nested = error_parts(r)?),
        _ => top.field(r, key),
    })?;
    // Anthropic's top-level `"type": "error"` names the envelope, not the error.
    Ok(nested.or_else(|| (top.message.is_some() || top.code.is_some()).then_some(top)))
}

fn into_body(mut parts: ErrorParts) -> Option<ErrorBody> {
    let kind = parts.kind_name();
    let message = parts.message.take().or_else(|| kind.clone()).or_else(|| parts.code.clone())?;
    Some(ErrorBody { message, kind, code: parts.code })
}

#[cfg(test)]
mod tests {
    use super::{read, ErrorBody};

    fn body(message: &str, kind: Option<&str>, code: Option<&str>) -> Option<ErrorBody> {
        Some(ErrorBody { message: message.into(), kind: kind.map(Into::into), code: code.map(Into::into) })
    }

    #[test]
    fn every_provider_shape() {
        // OpenAI's documented 401 and 429 bodies.
        assert_eq!(
            read(br#"{"error":{"message":"Incorrect API key provided: sk-xx.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#),
            body("Incorrect API key provided: sk-xx.", Some("invalid_request_error"), Some("\"invalid_api_key\""))
        );
        assert_eq!(
            read(br#"{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}}"#),
            body("Number of request tokens has exceeded your per-minute rate limit", Some("rate_limit_error"), None)
        );
        assert_eq!(
            read(b"[{\n  \"error\": {\n    \"code\": 429,\n    \"message\": \"Resource has been exhausted\",\n    \"status\": \"RESOURCE_EXHAUSTED\"\n  }\n}\n]\n"),
            body("Resource has been exhausted", Some("RESOURCE_EXHAUSTED"), Some("429"))
        );
        assert_eq!(
            read(br#"{"code":"InvalidApiKey","message":"Invalid API-key provided.","request_id":"fb53c4ec"}"#),
            body("Invalid API-key provided.", Some("InvalidApiKey"), Some("\"InvalidApiKey\""))
        );
        assert_eq!(
            read(br#"{"status":400,"code":"invalid_param","message":"Conversation Not Exists."}"#),
            body("Conversation Not Exists.", Some("invalid_param"), Some("\"invalid_param\""))
        );
        assert_eq!(
            read(br#"{"error":"model \"x\" not found, try pulling it first"}"#),
            body("model \"x\" not found, try pulling it first", None, None)
        );
    }

    #[test]
    fn what_is_not_an_error_body() {
        for not in [
            &b""[..],
            b"<html><body>502 Bad Gateway</body></html>",
            b"{\"ok\":true}",
            b"[]",
            b"{\"error\":null}",
            b"{\"error\":",
            b"null",
        ] {
            assert_eq!(read(not), None, "{}", String::from_utf8_lossy(not));
        }
        // A BOM and whitespace before the JSON, and a message without a type.
        assert_eq!(read("\u{FEFF} \n{\"message\":\"busy\",\"code\":503}".as_bytes()), body("busy", None, Some("503")));
    }
}
