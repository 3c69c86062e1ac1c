//! # chunkwise
//!
//! Decodes the raw byte chunks of a streamed HTTP body, as WeChat mini programs receive
//! them from `wx.request({enableChunked: true})` + `onChunkReceived`, into text: correct to
//! the byte however the chunks are cut.
//!
//! It implements:
//! - the WHATWG Encoding Standard's UTF-8 decoder, streaming ([`utf8`]), which mini
//!   programs lack (no `TextDecoder` on devices);
//! - the WHATWG event-stream (SSE) parser ([`sse`]), NDJSON lines ([`lines`]), the
//!   `hex-records` framing ([`hex_records`]) and streams of JSON values ([`json_values`]);
//! - the stream formats of the common LLM APIs ([`formats`]): OpenAI Chat Completions and
//!   every compatible API (DeepSeek, Qwen, Azure, Ollama, vLLM, ...), the OpenAI Responses
//!   API, Anthropic, Gemini, native Ollama, DashScope and Dify;
//! - a grapheme-aware typewriter ([`pacer`]);
//! - what a relay or a client needs besides the stream: token usage in OpenAI's words
//!   ([`usage`]), finish reasons in OpenAI's words ([`formats::openai_finish_reason`]),
//!   providers' error bodies ([`error_body`]) and one JSON string writer ([`json::write_str`]).
//!
//! It does not: make requests (the platform does), retry, or render (see the `markdown`
//! module for that). Everything here is plain Rust with no wasm or JS types; the
//! `wasm-bindgen` surface is the crate `chunkwise-wasm` (`wasm/`).
//!
//! ```
//! use chunkwise::{Format, Options, StreamDecoder};
//! let mut d = StreamDecoder::new(Options { format: Format::Text, ..Options::default() });
//! let bytes = "你好".as_bytes();
//! let mut text = d.push(&bytes[..2]).text; // "你" is cut after two of its three bytes
//! text += &d.push(&bytes[2..]).text;
//! text += &d.finish().text;
//! assert_eq!(text, "你好");
//! ```

mod bounded;
pub mod decoder;
pub mod error_body;
pub mod formats;
pub mod hex_records;
pub mod json;
pub mod json_values;
pub mod lines;
pub mod pacer;
mod scan;
pub mod sse;
pub mod update;
pub mod usage;
pub mod utf8;

pub use decoder::{Options, StreamDecoder, DEFAULT_MAX_BUFFER_BYTES};
pub use formats::Format;
pub use pacer::{PaceOptions, Pacer};
pub use update::{ErrorKind, Event, StreamError, Update};
