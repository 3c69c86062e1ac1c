//! Token counts in OpenAI's names, read from any provider's usage object.

/// Token counts in OpenAI's names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt: Option<u64>,
    pub completion: Option<u64>,
    pub total: Option<u64>,
}

impl Usage {
    /// Reads any provider's usage object (OpenAI, Anthropic or Gemini field names) into `self`,
    /// keeping what earlier objects said when a later one omits a field.
    pub fn merge_json(&mut self, json: &str) {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(json) else { return };
        let get = |names: &[&str]| names.iter().find_map(|n| v.get(*n).and_then(|x| x.as_u64()));
        if let Some(p) = get(&["prompt_tokens", "input_tokens", "promptTokenCount"]) {
            self.prompt = Some(p);
        }
        let thoughts = get(&["thoughtsTokenCount"]).unwrap_or(0);
        if let Some(c) = get(&["completion_tokens", "output_tokens", "candidatesTokenCount"]) {
            self.completion = Some(c + thoughts);
        }
        if let Some(t) = get(&["total_tokens", "totalTokenCount"]) {
            self.total = Some(t);
        }
    }

    pub fn to_json(self) -> String {
        let p = self.prompt.unwrap_or(0);
        let c = self.completion.unwrap_or(0);
        let t = self.total.unwrap_or(p + c);
        format!("{{\"prompt_tokens\":{p},\"completion_tokens\":{c},\"total_tokens\":{t}}}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_merges_provider_names() {
        let mut u = Usage::default();
        u.merge_json(r#"{"input_tokens":12,"output_tokens":1}"#);
        u.merge_json(r#"{"output_tokens":40}"#);
        assert_eq!(u.to_json(), r#"{"prompt_tokens":12,"completion_tokens":40,"total_tokens":52}"#);
        let mut g = Usage::default();
        g.merge_json(r#"{"promptTokenCount":3,"candidatesTokenCount":5,"thoughtsTokenCount":2,"totalTokenCount":10}"#);
        assert_eq!(g.to_json(), r#"{"prompt_tokens":3,"completion_tokens":7,"total_tokens":10}"#);
    }
}
