//! The providers' streaming request bodies, written straight into bytes.
//!
//! The bytes are those `serde_json` writes for the same body built as a `Value` (the tests
//! compare the two on varied prompts): compact, and every object's keys in byte order, as a
//! `Value`'s map (a `BTreeMap`) keeps them. Each writer below lists its keys in that order.
//! Strings and the forwarded sampling values go through `serde_json`'s own writer, so the
//! escaping is the same too. Building the `Value` cost an allocation for every key, string
//! and array on each stream's way to its first byte.

use serde_json::{Map, Value};

use crate::chat::Prompt;

/// One JSON object being written: `{`, then `"key":` before each value, then `}`.
struct Object<'a> {
    out: &'a mut Vec<u8>,
    empty: bool,
}

impl<'a> Object<'a> {
    fn open(out: &'a mut Vec<u8>) -> Object<'a> {
        out.push(b'{');
        Object { out, empty: true }
    }

    /// Writes `"key":` (keys here are plain ASCII names, nothing to escape) and returns the
    /// buffer for the value.
    fn key(&mut self, key: &str) -> &mut Vec<u8> {
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
        self.out
    }

    fn string(&mut self, key: &str, s: &str) {
        string(self.key(key), s);
    }

    fn number(&mut self, key: &str, n: u32) {
        let _ = serde_json::to_writer(self.key(key), &n);
    }

    fn raw(&mut self, key: &str, json: &[u8]) {
        self.key(key).extend_from_slice(json);
    }

    /// A forwarded sampling value, if the prompt has it.
    fn sampling(&mut self, key: &str, from: &Map<String, Value>, name: &str) {
        if let Some(v) = from.get(name) {
            value(self.key(key), v);
        }
    }

    fn close(self) {
        self.out.push(b'}');
    }
}

fn string(out: &mut Vec<u8>, s: &str) {
    // Writing into a `Vec` cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

fn value(out: &mut Vec<u8>, v: &Value) {
    let _ = serde_json::to_writer(&mut *out, v);
}

/// `stop` as a list: a single string becomes a list of one.
fn stop_list(out: &mut Vec<u8>, stop: &Value) {
    match stop {
        Value::String(s) => {
            out.push(b'[');
            string(out, s);
            out.push(b']');
        }
        other => value(out, other),
    }
}

/// `[{"content":…,"role":…},…]` for the messages whose role passes `keep`.
fn messages(out: &mut Vec<u8>, p: &Prompt, keep: impl Fn(&str) -> bool) {
    out.push(b'[');
    let mut first = true;
    for (role, text) in p.messages.iter().filter(|(r, _)| keep(r)) {
        if !first {
            out.push(b',');
        }
        first = false;
        let mut m = Object::open(out);
        m.string("content", text);
        m.string("role", role);
        m.close();
    }
    out.push(b']');
}

/// The system messages joined by a blank line, as one JSON string; `None` without any.
fn system(p: &Prompt) -> Option<String> {
    let mut system = p.messages.iter().filter(|(r, _)| r == "system").map(|(_, t)| t.as_str());
    let first = system.next()?;
    let mut joined = first.to_string();
    for t in system {
        joined.push_str("\n\n");
        joined.push_str(t);
    }
    Some(joined)
}

/// OpenAI's `POST /chat/completions` body.
pub fn openai(model: &str, p: &Prompt, include_usage: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(160 + p.chars + 48 * p.messages.len());
    let s = &p.sampling;
    let mut o = Object::open(&mut out);
    o.sampling("frequency_penalty", s, "frequency_penalty");
    o.number("max_tokens", p.max_tokens);
    messages(o.key("messages"), p, |_| true);
    o.string("model", model);
    o.sampling("presence_penalty", s, "presence_penalty");
    o.sampling("seed", s, "seed");
    o.sampling("stop", s, "stop");
    o.raw("stream", b"true");
    if include_usage {
        o.raw("stream_options", br#"{"include_usage":true}"#);
    }
    o.sampling("temperature", s, "temperature");
    o.sampling("top_p", s, "top_p");
    o.close();
    out
}

/// Anthropic's `POST /v1/messages` body: system messages joined into `system`.
pub fn anthropic(model: &str, p: &Prompt, thinking_budget: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(160 + p.chars + 48 * p.messages.len());
    let s = &p.sampling;
    let mut o = Object::open(&mut out);
    o.number("max_tokens", p.max_tokens);
    messages(o.key("messages"), p, |r| r != "system");
    o.string("model", model);
    if let Some(stop) = s.get("stop") {
        stop_list(o.key("stop_sequences"), stop);
    }
    o.raw("stream", b"true");
    if let Some(system) = system(p) {
        o.string("system", &system);
    }
    o.sampling("temperature", s, "temperature");
    if thinking_budget > 0 {
        let mut t = Object::open(o.key("thinking"));
        t.number("budget_tokens", thinking_budget);
        t.string("type", "enabled");
        t.close();
    }
    o.sampling("top_p", s, "top_p");
    o.close();
    out
}

/// Gemini's `streamGenerateContent` body: `assistant` is `model`, every other role `user`;
/// system messages joined into `systemInstruction`.
pub fn gemini(p: &Prompt, thinking_budget: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(240 + p.chars + 64 * p.messages.len());
    let s = &p.sampling;
    let mut o = Object::open(&mut out);
    {
        let out = o.key("contents");
        out.push(b'[');
        let mut first = true;
        for (role, text) in p.messages.iter().filter(|(r, _)| r != "system") {
            if !first {
                out.push(b',');
            }
            first = false;
            let mut c = Object::open(out);
            {
                let parts = c.key("parts");
                parts.push(b'[');
                let mut part = Object::open(parts);
                part.string("text", text);
                part.close();
                parts.push(b']');
            }
            c.string("role", if role == "assistant" { "model" } else { "user" });
            c.close();
        }
        out.push(b']');
    }
    {
        let mut g = Object::open(o.key("generationConfig"));
        g.sampling("frequencyPenalty", s, "frequency_penalty");
        g.number("maxOutputTokens", p.max_tokens);
        g.sampling("presencePenalty", s, "presence_penalty");
        g.sampling("seed", s, "seed");
        if let Some(stop) = s.get("stop") {
            stop_list(g.key("stopSequences"), stop);
        }
        g.sampling("temperature", s, "temperature");
        if thinking_budget > 0 {
            let mut t = Object::open(g.key("thinkingConfig"));
            t.raw("includeThoughts", b"true");
            t.number("thinkingBudget", thinking_budget);
            t.close();
        }
        g.sampling("topP", s, "top_p");
        g.close();
    }
    if let Some(system) = system(p) {
        let out = o.key("systemInstruction");
        out.extend_from_slice(br#"{"parts":[{"text":"#);
        string(out, &system);
        out.extend_from_slice(b"}]}");
    }
    o.close();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The builders these writers replace, kept as the oracle: the same body as a `Value`.
    mod oracle {
        use crate::chat::Prompt;
        use serde_json::{json, Map, Value};

        pub fn openai_body(model: &str, p: &Prompt, include_usage: bool) -> Value {
            let messages: Vec<Value> =
                p.messages.iter().map(|(role, text)| json!({ "role": role, "content": text })).collect();
            let mut body = json!({ "model": model, "messages": messages, "stream": true, "max_tokens": p.max_tokens });
            if include_usage {
                body["stream_options"] = json!({ "include_usage": true });
            }
            extend(
                &mut body,
                &p.sampling,
                &["temperature", "top_p", "stop", "presence_penalty", "frequency_penalty", "seed"],
                |k| k,
            );
            body
        }

        pub fn anthropic_body(model: &str, p: &Prompt, thinking_budget: u32) -> Value {
            let system: Vec<&str> = p.messages.iter().filter(|(r, _)| r == "system").map(|(_, t)| t.as_str()).collect();
            let messages: Vec<Value> = p
                .messages
                .iter()
                .filter(|(r, _)| r != "system")
                .map(|(role, text)| json!({ "role": role, "content": text }))
                .collect();
            let mut body = json!({ "model": model, "max_tokens": p.max_tokens, "stream": true, "messages": messages });
            if !system.is_empty() {
                body["system"] = system.join("\n\n").into();
            }
            if thinking_budget > 0 {
                body["thinking"] = json!({ "type": "enabled", "budget_tokens": thinking_budget });
            }
            extend(&mut body, &p.sampling, &["temperature", "top_p"], |k| k);
            if let Some(stop) = p.sampling.get("stop") {
                body["stop_sequences"] = stop_list(stop);
            }
            body
        }

        pub fn gemini_body(p: &Prompt, thinking_budget: u32) -> Value {
            let system: Vec<&str> = p.messages.iter().filter(|(r, _)| r == "system").map(|(_, t)| t.as_str()).collect();
            let contents: Vec<Value> = p
            .messages
            .iter()
            .filter(|(r, _)| r != "system")
            .map(|(role, text)| json!({ "role": if role == "assistant" { "model" } else { "user" }, "parts": [{ "text": text }] }))
            .collect();
            let mut config = json!({ "maxOutputTokens": p.max_tokens });
            extend(
                &mut config,
                &p.sampling,
                &["temperature", "top_p", "presence_penalty", "frequency_penalty", "seed"],
                |k| match k {
                    "top_p" => "topP",
                    "presence_penalty" => "presencePenalty",
                    "frequency_penalty" => "frequencyPenalty",
                    other => other,
                },
            );
            if let Some(stop) = p.sampling.get("stop") {
                config["stopSequences"] = stop_list(stop);
            }
            if thinking_budget > 0 {
                config["thinkingConfig"] = json!({ "includeThoughts": true, "thinkingBudget": thinking_budget });
            }
            let mut body = json!({ "contents": contents, "generationConfig": config });
            if !system.is_empty() {
                body["systemInstruction"] = json!({ "parts": [{ "text": system.join("\n\n") }] });
            }
            body
        }

        fn extend(body: &mut Value, from: &Map<String, Value>, keys: &[&str], rename: impl Fn(&str) -> &str) {
            for k in keys {
                if let Some(v) = from.get(*k) {
                    body[rename(k)] = v.clone();
                }
            }
        }

        fn stop_list(stop: &Value) -> Value {
            match stop {
                Value::String(s) => json!([s]),
                other => other.clone(),
            }
        }
    }

    fn prompt(messages: &[(&str, &str)], max_tokens: u32, sampling: &[(&str, Value)]) -> Prompt {
        Prompt {
            messages: messages.iter().map(|(r, t)| (r.to_string(), t.to_string())).collect(),
            max_tokens,
            sampling: sampling.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
            chars: messages.iter().map(|(_, t)| t.chars().count()).sum(),
        }
    }

    /// Every provider's body, byte for byte as serde_json writes the `Value` built before.
    fn same_bytes(p: &Prompt) {
        for (model, flag, budget) in [("gpt-4o", true, 0), ("m", false, 512), ("a\"b/\u{7f}c", true, 1)] {
            let want = serde_json::to_vec(&oracle::openai_body(model, p, flag)).unwrap();
            assert_eq!(String::from_utf8(openai(model, p, flag)).unwrap(), String::from_utf8(want).unwrap());
            let want = serde_json::to_vec(&oracle::anthropic_body(model, p, budget)).unwrap();
            assert_eq!(String::from_utf8(anthropic(model, p, budget)).unwrap(), String::from_utf8(want).unwrap());
            let want = serde_json::to_vec(&oracle::gemini_body(p, budget)).unwrap();
            assert_eq!(String::from_utf8(gemini(p, budget)).unwrap(), String::from_utf8(want).unwrap());
        }
    }

    #[test]
    fn the_bytes_are_those_of_the_value_builders() {
        let texts = [
            "hi",
            "",
            "quote \" backslash \\ slash / tab \t newline \n cr \r",
            "control \u{1} \u{1f} del \u{7f} \u{2028} \u{2029}",
            "中文，emoji 😀 and combining e\u{301}",
            "</script><!-- & ' \u{feff}",
        ];
        let samplings: Vec<Vec<(&str, Value)>> = vec![
            vec![],
            vec![("temperature", json!(0.2)), ("stop", json!("END"))],
            vec![("top_p", json!(1)), ("stop", json!(["a", "b\n"])), ("seed", json!(-7))],
            vec![
                ("frequency_penalty", json!(-2.0)),
                ("presence_penalty", json!(1.5e-7)),
                ("seed", json!(u64::MAX)),
                ("stop", json!(null)),
                ("temperature", json!(2)),
                ("top_p", json!(0.9999999999999999)),
            ],
            vec![("stop", json!([])), ("temperature", json!(0))],
        ];
        let conversations: Vec<Vec<(&str, &str)>> = vec![
            vec![("user", texts[0])],
            vec![("system", texts[2]), ("user", texts[3]), ("assistant", texts[4]), ("user", texts[5])],
            vec![("system", "one"), ("system", texts[4]), ("user", texts[1])],
            vec![("assistant", texts[1]), ("tool", texts[3]), ("developer", texts[2])],
            vec![("user", "a"), ("system", "late"), ("assistant", "b"), ("user", "c")],
        ];
        for (i, messages) in conversations.iter().enumerate() {
            for (j, sampling) in samplings.iter().enumerate() {
                let max_tokens = [1, 100, 4096, u32::MAX][(i + j) % 4];
                same_bytes(&prompt(messages, max_tokens, sampling));
            }
        }
    }

    #[test]
    fn provider_bodies() {
        let p = prompt(
            &[("system", "be brief"), ("user", "hi"), ("assistant", "yo")],
            100,
            &[("temperature", json!(0.2)), ("stop", json!("END"))],
        );
        let parse = |b: Vec<u8>| serde_json::from_slice::<Value>(&b).unwrap();
        let o = parse(openai("gpt", &p, true));
        assert_eq!(o["messages"][0]["role"], "system");
        assert_eq!(o["stream_options"]["include_usage"], true);
        assert_eq!(o["temperature"], 0.2);
        let a = parse(anthropic("claude", &p, 0));
        assert_eq!(a["system"], "be brief");
        assert_eq!(a["messages"].as_array().unwrap().len(), 2);
        assert_eq!(a["stop_sequences"], json!(["END"]));
        let g = parse(gemini(&p, 512));
        assert_eq!(g["contents"][1]["role"], "model");
        assert_eq!(g["systemInstruction"]["parts"][0]["text"], "be brief");
        assert_eq!(g["generationConfig"]["maxOutputTokens"], 100);
        assert_eq!(g["generationConfig"]["thinkingConfig"]["includeThoughts"], true);
    }
}
