//! Configuration: defaults, then a TOML or JSON file (`RELAY_CONFIG`), then environment
//! variables. Every option has a default that is safe on a developer's machine: loopback
//! only, the demo model, small limits.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Which wire protocol the upstream speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// The built-in demo model: no network, no key.
    #[default]
    Demo,
    /// `POST {base_url}/chat/completions` (OpenAI, DeepSeek, Qwen, Kimi, GLM, Doubao, Ollama,
    /// vLLM, llama.cpp, ...).
    #[serde(alias = "openai-compatible", alias = "openai_compatible")]
    OpenAi,
    /// `POST {base_url}/v1/messages`.
    Anthropic,
    /// `POST {base_url}/v1beta/models/{model}:streamGenerateContent?alt=sse`.
    Gemini,
}

impl Provider {
    pub fn parse(s: &str) -> Result<Provider, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "demo" | "none" => Ok(Provider::Demo),
            "openai" | "openai-compatible" | "openai_compatible" | "compatible" => Ok(Provider::OpenAi),
            "anthropic" | "claude" => Ok(Provider::Anthropic),
            "gemini" | "google" => Ok(Provider::Gemini),
            other => Err(format!("unknown upstream kind {other:?} (expected openai, anthropic, gemini or demo)")),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Provider::Demo => "demo",
            Provider::OpenAi => "openai",
            Provider::Anthropic => "anthropic",
            Provider::Gemini => "gemini",
        }
    }

    fn default_base_url(self) -> &'static str {
        match self {
            Provider::Demo => "",
            Provider::OpenAi => "https://api.openai.com/v1",
            Provider::Anthropic => "https://api.anthropic.com",
            Provider::Gemini => "https://generativelanguage.googleapis.com",
        }
    }
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub upstream: UpstreamConfig,
    pub limits: Limits,
    pub generations: Generations,
    pub auth: AuthConfig,
    pub demo: DemoConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub host: IpAddr,
    pub port: u16,
    /// A directory of static files served at `/` (the demo's H5 page); none by default.
    pub static_dir: Option<PathBuf>,
    /// A chunkwise `pkg` directory whose `web` package is served at `/pkg/web/`; none by default.
    pub pkg_dir: Option<PathBuf>,
    /// Allowed CORS origins; `["*"]` allows any. Empty (the default): any, unless a real key
    /// is served without client tokens (then no other origin may call the relay).
    pub cors_origins: Vec<String>,
    /// Seconds between `: heartbeat` comments on an open stream.
    pub heartbeat_secs: u64,
    /// Take the client IP from `X-Forwarded-For` (only behind your own proxy): the entry
    /// `trusted_proxy_hops` from the right, the address your outermost proxy saw.
    pub trust_forwarded_for: bool,
    /// How many proxies of yours append to `X-Forwarded-For` in front of the relay.
    pub trusted_proxy_hops: usize,
    /// A response that cannot write for this long (the client stopped reading) is closed.
    pub write_timeout_secs: u64,
    /// Honour `?chaos=1` for answers from real upstreams too (the demo model always does).
    pub allow_chaos: bool,
    /// Runtime worker threads; 0 means one per core.
    pub worker_threads: usize,
    /// `redis://host:port/db`: share generations with other instances through Redis (empty:
    /// generations live in this process only).
    pub redis_url: String,
    /// On SIGTERM, how long the answers already running may take to finish before they are
    /// ended with an error (see [`crate::drain`]).
    pub drain_timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpstreamConfig {
    pub kind: Provider,
    /// Empty means the provider's public endpoint.
    pub base_url: String,
    pub api_key: String,
    /// The model used when the client names none (or names `default`).
    pub model: String,
    /// Other model names clients may ask for. The default model is always allowed, and
    /// `demo` always answers with the built-in demo model.
    pub models: Vec<String>,
    pub connect_timeout_ms: u64,
    /// From sending the request to the upstream's response headers.
    pub first_byte_timeout_ms: u64,
    /// Longest silence between two pieces of the upstream's body.
    pub idle_timeout_ms: u64,
    /// Ask OpenAI-compatible upstreams for a usage chunk (`stream_options.include_usage`).
    pub include_usage: bool,
    /// Anthropic: `thinking.budget_tokens` (0 = off). Gemini: ask for thought summaries when > 0.
    pub thinking_budget: u32,
    /// Speak HTTP/2 to the upstream (h2c prior knowledge on `http://`): streams share a few
    /// connections instead of one each. Off: HTTP/1.1, one connection per stream.
    pub http2: bool,
    /// With `http2`: how many connections the streams are spread over. A provider caps the
    /// streams of one connection (often 100–250); streams beyond the cap wait for a slot.
    pub http2_connections: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    pub max_body_bytes: usize,
    /// The whole request body must arrive within this time (milliseconds)...
    pub body_timeout_ms: u64,
    /// ...and, after its first second, at no less than this average rate (bytes per second).
    pub min_body_rate: u64,
    pub max_messages: usize,
    /// Characters in one message.
    pub max_message_chars: usize,
    /// Characters in all messages together.
    pub max_total_chars: usize,
    /// The largest `max_tokens` a client may ask for; also the value sent when it asks none.
    pub max_tokens: u32,
    /// Generations one client IP may have running at once.
    pub per_ip_streams: usize,
    /// Generations one client token (subject) may have running at once, on all instances
    /// together with a shared store; 0 = no limit. Only when tokens are required.
    pub per_token_streams: usize,
    /// Requests one client IP may make per minute (token bucket, `per_ip_burst` deep).
    pub per_ip_per_minute: u32,
    pub per_ip_burst: u32,
    /// Generations running at once, all clients together.
    pub max_generations: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Generations {
    /// How long a finished generation stays resumable.
    pub ttl_secs: u64,
    /// How long a generation with no client attached runs on before it is cancelled
    /// (fractions allowed).
    pub grace_secs: f64,
    /// Bound on the bytes of text one generation's event log keeps; older events are dropped.
    pub max_log_bytes: usize,
    /// Finished answers kept for resuming; beyond it the oldest are forgotten before the TTL.
    pub max_finished: usize,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Static client tokens (`Authorization: Bearer <token>`).
    pub tokens: Vec<String>,
    /// Secret for HMAC-signed tokens `cw1.<expiry>.<subject>.<hex hmac-sha256>`.
    pub hmac_secret: String,
    /// Serve without client tokens even with a real key on a public address.
    pub allow_anonymous: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DemoConfig {
    /// Milliseconds between the demo model's tokens.
    pub token_ms: u64,
    /// Milliseconds the demo model "thinks" before its first token.
    pub first_token_ms: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 8787,
            static_dir: None,
            pkg_dir: None,
            cors_origins: Vec::new(),
            heartbeat_secs: 15,
            trust_forwarded_for: false,
            trusted_proxy_hops: 1,
            write_timeout_secs: 30,
            allow_chaos: false,
            worker_threads: 0,
            redis_url: String::new(),
            drain_timeout_secs: 30,
        }
    }
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        UpstreamConfig {
            kind: Provider::Demo,
            base_url: String::new(),
            api_key: String::new(),
            model: String::new(),
            models: Vec::new(),
            connect_timeout_ms: 10_000,
            first_byte_timeout_ms: 60_000,
            idle_timeout_ms: 60_000,
            include_usage: true,
            thinking_budget: 0,
            http2: false,
            http2_connections: 4,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 256 * 1024,
            body_timeout_ms: 15_000,
            min_body_rate: 1024,
            max_messages: 64,
            max_message_chars: 32_000,
            max_total_chars: 100_000,
            max_tokens: 8192,
            per_ip_streams: 8,
            per_token_streams: 0,
            per_ip_per_minute: 60,
            per_ip_burst: 20,
            max_generations: 20_000,
        }
    }
}

impl Default for Generations {
    fn default() -> Self {
        Generations { ttl_secs: 600, grace_secs: 30.0, max_log_bytes: 1 << 20, max_finished: 50_000 }
    }
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig { token_ms: 35, first_token_ms: 400 }
    }
}

/// `url` without a `user:password@` part, for printing.
pub fn without_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

impl Config {
    /// Defaults, then the file named by `RELAY_CONFIG` (if any), then the environment.
    pub fn load() -> Result<Config, String> {
        Config::load_from(|k| std::env::var(k).ok())
    }

    /// As [`Config::load`], with the environment given as a function (for tests).
    pub fn load_from(env: impl Fn(&str) -> Option<String>) -> Result<Config, String> {
        let mut config = match env("RELAY_CONFIG").filter(|p| !p.is_empty()) {
            Some(path) => Config::from_file(Path::new(&path))?,
            None => Config::default(),
        };
        config.apply_env(&env)?;
        config.finish()?;
        Ok(config)
    }

    /// Parses a `.toml` or `.json` file.
    pub fn from_file(path: &Path) -> Result<Config, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        let parsed = if path.extension().is_some_and(|e| e == "json") {
            serde_json::from_str(&text).map_err(|e| e.to_string())
        } else {
            toml::from_str(&text).map_err(|e| e.to_string())
        };
        parsed.map_err(|e| format!("{}: {e}", path.display()))
    }

    fn apply_env(&mut self, env: &impl Fn(&str) -> Option<String>) -> Result<(), String> {
        fn num<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, String> {
            v.trim().parse().map_err(|_| format!("{name}={v:?} is not a valid number"))
        }
        fn flag(v: &str) -> bool {
            matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on")
        }
        fn list(v: &str) -> Vec<String> {
            v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
        }
        let get = |k: &str| env(k).filter(|v| !v.is_empty());
        if let Some(v) = get("PORT") {
            self.server.port = num("PORT", &v)?;
        }
        if let Some(v) = get("RELAY_HOST") {
            self.server.host = v.trim().parse().map_err(|_| format!("RELAY_HOST={v:?} is not an IP address"))?;
        } else if let Some(ip) = get("HOST").and_then(|v| v.trim().parse().ok()) {
            // Some shells export HOST as the machine's name: only an IP address counts.
            self.server.host = ip;
        }
        if let Some(v) = get("RELAY_STATIC_DIR") {
            self.server.static_dir = Some(v.into());
        }
        if let Some(v) = get("RELAY_PKG_DIR") {
            self.server.pkg_dir = Some(v.into());
        }
        if let Some(v) = get("RELAY_CORS_ORIGINS") {
            self.server.cors_origins = list(&v);
        }
        if let Some(v) = get("RELAY_HEARTBEAT_SECS") {
            self.server.heartbeat_secs = num("RELAY_HEARTBEAT_SECS", &v)?;
        }
        if let Some(v) = get("RELAY_TRUST_FORWARDED_FOR") {
            self.server.trust_forwarded_for = flag(&v);
        }
        if let Some(v) = get("REDIS_URL") {
            self.server.redis_url = v;
        }
        if let Some(v) = get("RELAY_ALLOW_CHAOS") {
            self.server.allow_chaos = flag(&v);
        }
        if let Some(v) = get("UPSTREAM_KIND") {
            self.upstream.kind = Provider::parse(&v)?;
        }
        if let Some(v) = get("UPSTREAM_BASE_URL") {
            self.upstream.base_url = v;
            if self.upstream.kind == Provider::Demo && get("UPSTREAM_KIND").is_none() {
                self.upstream.kind = Provider::OpenAi;
            }
        }
        if let Some(v) = get("UPSTREAM_API_KEY") {
            self.upstream.api_key = v;
        }
        if let Some(v) = get("UPSTREAM_MODEL") {
            self.upstream.model = v;
        }
        if let Some(v) = get("UPSTREAM_MODELS") {
            self.upstream.models = list(&v);
        }
        for (name, slot) in [
            ("UPSTREAM_CONNECT_TIMEOUT_MS", &mut self.upstream.connect_timeout_ms),
            ("UPSTREAM_FIRST_BYTE_TIMEOUT_MS", &mut self.upstream.first_byte_timeout_ms),
            ("UPSTREAM_IDLE_TIMEOUT_MS", &mut self.upstream.idle_timeout_ms),
            ("RELAY_TTL_SECS", &mut self.generations.ttl_secs),
            ("RELAY_WRITE_TIMEOUT_SECS", &mut self.server.write_timeout_secs),
            ("RELAY_DRAIN_TIMEOUT_SECS", &mut self.server.drain_timeout_secs),
            ("RELAY_BODY_TIMEOUT_MS", &mut self.limits.body_timeout_ms),
            ("RELAY_MIN_BODY_RATE", &mut self.limits.min_body_rate),
            ("RELAY_DEMO_TOKEN_MS", &mut self.demo.token_ms),
            ("RELAY_DEMO_FIRST_TOKEN_MS", &mut self.demo.first_token_ms),
        ] {
            if let Some(v) = get(name) {
                *slot = num(name, &v)?;
            }
        }
        if let Some(v) = get("RELAY_GRACE_SECS") {
            self.generations.grace_secs = num("RELAY_GRACE_SECS", &v)?;
        }
        if let Some(v) = get("UPSTREAM_INCLUDE_USAGE") {
            self.upstream.include_usage = flag(&v);
        }
        if let Some(v) = get("UPSTREAM_HTTP2") {
            self.upstream.http2 = flag(&v);
        }
        if let Some(v) = get("UPSTREAM_HTTP2_CONNECTIONS") {
            self.upstream.http2_connections = num("UPSTREAM_HTTP2_CONNECTIONS", &v)?;
        }
        if let Some(v) = get("UPSTREAM_THINKING_BUDGET") {
            self.upstream.thinking_budget = num("UPSTREAM_THINKING_BUDGET", &v)?;
        }
        for (name, slot) in [
            ("RELAY_MAX_BODY_BYTES", &mut self.limits.max_body_bytes),
            ("RELAY_MAX_MESSAGES", &mut self.limits.max_messages),
            ("RELAY_MAX_MESSAGE_CHARS", &mut self.limits.max_message_chars),
            ("RELAY_MAX_TOTAL_CHARS", &mut self.limits.max_total_chars),
            ("RELAY_PER_IP_STREAMS", &mut self.limits.per_ip_streams),
            ("RELAY_PER_TOKEN_STREAMS", &mut self.limits.per_token_streams),
            ("RELAY_MAX_GENERATIONS", &mut self.limits.max_generations),
            ("RELAY_MAX_LOG_BYTES", &mut self.generations.max_log_bytes),
            ("RELAY_MAX_FINISHED", &mut self.generations.max_finished),
            ("RELAY_WORKER_THREADS", &mut self.server.worker_threads),
            ("RELAY_TRUSTED_PROXY_HOPS", &mut self.server.trusted_proxy_hops),
        ] {
            if let Some(v) = get(name) {
                *slot = num(name, &v)?;
            }
        }
        if let Some(v) = get("RELAY_MAX_TOKENS") {
            self.limits.max_tokens = num("RELAY_MAX_TOKENS", &v)?;
        }
        if let Some(v) = get("RELAY_PER_IP_PER_MINUTE") {
            self.limits.per_ip_per_minute = num("RELAY_PER_IP_PER_MINUTE", &v)?;
        }
        if let Some(v) = get("RELAY_PER_IP_BURST") {
            self.limits.per_ip_burst = num("RELAY_PER_IP_BURST", &v)?;
        }
        if let Some(v) = get("RELAY_TOKENS") {
            self.auth.tokens = list(&v);
        }
        if let Some(v) = get("RELAY_HMAC_SECRET") {
            self.auth.hmac_secret = v;
        }
        if let Some(v) = get("RELAY_ALLOW_ANONYMOUS") {
            self.auth.allow_anonymous = flag(&v);
        }
        Ok(())
    }

    /// Fills provider defaults and rejects contradictory settings.
    fn finish(&mut self) -> Result<(), String> {
        let up = &mut self.upstream;
        if up.kind != Provider::Demo {
            if up.base_url.is_empty() {
                up.base_url = up.kind.default_base_url().to_string();
            }
            while up.base_url.ends_with('/') {
                up.base_url.pop();
            }
            if up.model.is_empty() {
                return Err(format!("upstream {} needs a model: set UPSTREAM_MODEL or upstream.model", up.kind.name()));
            }
            if !(up.base_url.starts_with("http://") || up.base_url.starts_with("https://")) {
                return Err(format!("upstream base URL {:?} must start with http:// or https://", up.base_url));
            }
        }
        if self.limits.per_ip_burst == 0 {
            self.limits.per_ip_burst = 1;
        }
        Ok(())
    }

    /// Whether clients must present a token: always when tokens are configured; otherwise
    /// when a real key would be spent by anyone who can reach a non-loopback address,
    /// unless the operator opted out.
    ///
    /// Behind a proxy (`trust_forwarded_for`) a loopback address is not the edge: the proxy
    /// brings the whole network to it, so a key needs tokens there too.
    pub fn auth_required(&self) -> bool {
        if !self.auth.tokens.is_empty() || !self.auth.hmac_secret.is_empty() {
            return true;
        }
        let exposed = !self.server.host.is_loopback() || self.server.trust_forwarded_for;
        self.spends_a_key() && exposed && !self.auth.allow_anonymous
    }

    /// A real upstream with a key configured.
    pub fn spends_a_key(&self) -> bool {
        self.upstream.kind != Provider::Demo && !self.upstream.api_key.is_empty()
    }

    /// The CORS origins in force: as configured, or by default any origin unless a key is
    /// served to anyone who can reach the relay (then a web page in the operator's browser
    /// could spend it).
    pub fn cors_origins(&self) -> Vec<String> {
        if !self.server.cors_origins.is_empty() {
            return self.server.cors_origins.clone();
        }
        if self.spends_a_key() && !self.auth_required() {
            return Vec::new();
        }
        vec!["*".into()]
    }

    /// A configuration that cannot be served safely: a key on a public address and no way
    /// to tell clients apart.
    pub fn check_auth(&self) -> Result<(), String> {
        if self.auth.tokens.iter().any(|t| t.trim().is_empty()) {
            return Err("auth.tokens holds an empty token: remove it (an empty token is not a secret)".into());
        }
        if self.auth_required() && self.auth.tokens.is_empty() && self.auth.hmac_secret.is_empty() {
            let place = if self.server.trust_forwarded_for {
                "behind a proxy (RELAY_TRUST_FORWARDED_FOR)".to_string()
            } else {
                format!("on {} (not loopback)", self.server.host)
            };
            return Err(format!(
                "a real upstream key is configured and the relay listens {place}: \
                 configure client tokens (RELAY_TOKENS or RELAY_HMAC_SECRET) or opt out \
                 explicitly with RELAY_ALLOW_ANONYMOUS=1"
            ));
        }
        Ok(())
    }

    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.upstream.connect_timeout_ms)
    }
    pub fn first_byte_timeout(&self) -> Duration {
        Duration::from_millis(self.upstream.first_byte_timeout_ms)
    }
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.upstream.idle_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    }

    #[test]
    fn defaults_are_demo_on_loopback() {
        let c = Config::load_from(env(&[])).unwrap();
        assert_eq!(c.upstream.kind, Provider::Demo);
        assert!(c.server.host.is_loopback());
        assert_eq!(c.server.port, 8787);
        assert!(!c.auth_required());
    }

    #[test]
    fn host_accepts_an_ip_and_ignores_a_shell_hostname() {
        let c = Config::load_from(env(&[("HOST", "devbox.local")])).unwrap();
        assert!(c.server.host.is_loopback());
        let c = Config::load_from(env(&[("HOST", "0.0.0.0")])).unwrap();
        assert!(!c.server.host.is_loopback());
        assert!(Config::load_from(env(&[("RELAY_HOST", "devbox")])).is_err());
    }

    #[test]
    fn base_url_implies_openai_and_needs_a_model() {
        let e = Config::load_from(env(&[("UPSTREAM_BASE_URL", "http://127.0.0.1:1/v1")])).unwrap_err();
        assert!(e.contains("needs a model"), "{e}");
        let c = Config::load_from(env(&[("UPSTREAM_BASE_URL", "http://x/v1/"), ("UPSTREAM_MODEL", "m")])).unwrap();
        assert_eq!(c.upstream.kind, Provider::OpenAi);
        assert_eq!(c.upstream.base_url, "http://x/v1");
    }

    #[test]
    fn a_key_on_a_public_address_needs_tokens_or_an_explicit_opt_out() {
        let public = [
            ("UPSTREAM_KIND", "openai"),
            ("UPSTREAM_MODEL", "gpt-4o-mini"),
            ("UPSTREAM_API_KEY", "sk-real"),
            ("RELAY_HOST", "0.0.0.0"),
        ];
        let c = Config::load_from(env(Box::leak(Box::new(public)))).unwrap();
        assert!(c.auth_required());
        assert!(c.check_auth().is_err());
        let mut opted = c.clone();
        opted.auth.allow_anonymous = true;
        assert!(!opted.auth_required());
        let mut loopback = c.clone();
        loopback.server.host = IpAddr::V4(Ipv4Addr::LOCALHOST);
        assert!(!loopback.auth_required());
        let mut tokens = c;
        tokens.auth.tokens = vec!["t".into()];
        assert!(tokens.check_auth().is_ok());
    }

    #[test]
    fn toml_file_is_read() {
        let dir = std::env::temp_dir().join(format!("relay-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("relay.toml");
        std::fs::write(
            &path,
            "[upstream]\nkind = \"anthropic\"\nmodel = \"claude-sonnet-4-5\"\napi_key = \"k\"\n[limits]\nmax_tokens = 100\n",
        )
        .unwrap();
        let c = Config::from_file(&path).unwrap();
        assert_eq!(c.upstream.kind, Provider::Anthropic);
        assert_eq!(c.limits.max_tokens, 100);
        let json = dir.join("relay.json");
        std::fs::write(&json, r#"{"upstream":{"kind":"gemini","model":"gemini-2.5-flash"}}"#).unwrap();
        assert_eq!(Config::from_file(&json).unwrap().upstream.kind, Provider::Gemini);
        std::fs::remove_dir_all(dir).ok();
    }
}
