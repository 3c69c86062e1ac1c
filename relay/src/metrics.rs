//! Counters for `GET /metrics`, in the Prometheus text exposition format (version 0.0.4).
//! Hand-written: a dozen atomics do not need a metrics framework.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the time-to-first-token histogram.
const TTFT_BUCKETS: [f64; 10] = [0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

#[derive(Default)]
pub struct Metrics {
    pub generations_total: AtomicU64,
    /// Generations whose upstream task is running.
    pub active_generations: AtomicU64,
    /// Responses currently streaming to a client.
    pub open_streams: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub upstream_bytes: AtomicU64,
    pub resumes_total: AtomicU64,
    ttft_buckets: [AtomicU64; TTFT_BUCKETS.len()],
    ttft_count: AtomicU64,
    ttft_sum_us: AtomicU64,
    errors: Mutex<BTreeMap<&'static str, u64>>,
}

/// The error codes the relay itself gives, the only values of the `code` label.
const ERROR_CODES: &[&str] = &[
    "abandoned",
    "answer_too_long",
    "bad_request",
    "body_timeout",
    "body_too_large",
    "cancelled",
    "client_gone",
    "client_too_slow",
    "empty_messages",
    "events_expired",
    "generation_not_found",
    "header_too_large",
    "internal_error",
    "invalid_body",
    "invalid_client_token",
    "invalid_content",
    "invalid_content_type",
    "invalid_format",
    "invalid_json",
    "invalid_max_tokens",
    "invalid_parameter",
    "invalid_role",
    "max_tokens_too_large",
    "message_too_long",
    "messages_too_long",
    "method_not_allowed",
    "misdirected_request",
    "model_not_allowed",
    "not_found",
    "rate_limited",
    "generation_lost",
    "store_unavailable",
    "relay_busy",
    "too_many_messages",
    "too_many_streams",
    "upstream_auth",
    "upstream_connect_timeout",
    "upstream_disconnected",
    "upstream_error",
    "upstream_event_too_large",
    "upstream_first_byte_timeout",
    "upstream_idle_timeout",
    "upstream_malformed",
    "upstream_overloaded",
    "upstream_rate_limited",
    "upstream_rejected",
    "upstream_unreachable",
];

/// A label value escaped as the text format requires: backslash, double quote and newline.
fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

impl Metrics {
    pub fn observe_ttft(&self, d: Duration) {
        let secs = d.as_secs_f64();
        for (bound, slot) in TTFT_BUCKETS.iter().zip(&self.ttft_buckets) {
            if secs <= *bound {
                slot.fetch_add(1, Relaxed);
            }
        }
        self.ttft_count.fetch_add(1, Relaxed);
        self.ttft_sum_us.fetch_add(d.as_micros() as u64, Relaxed);
    }

    /// Counts an error by its code. Codes outside the relay's own set (an upstream's codes
    /// reach here too) count as `other`, so the label set stays fixed whatever an upstream says.
    pub fn count_error(&self, code: &str) {
        let label = ERROR_CODES.iter().find(|c| **c == code).copied().unwrap_or("other");
        *self.errors.lock().unwrap_or_else(|p| p.into_inner()).entry(label).or_default() += 1;
    }

    pub fn render(&self) -> String {
        let mut s = String::with_capacity(2048);
        let mut gauge = |name: &str, help: &str, kind: &str, v: u64| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
        };
        gauge(
            "chunkwise_relay_active_generations",
            "Generations whose upstream is running.",
            "gauge",
            self.active_generations.load(Relaxed),
        );
        gauge(
            "chunkwise_relay_open_streams",
            "Responses streaming to clients now.",
            "gauge",
            self.open_streams.load(Relaxed),
        );
        gauge(
            "chunkwise_relay_generations_total",
            "Generations started.",
            "counter",
            self.generations_total.load(Relaxed),
        );
        gauge(
            "chunkwise_relay_resumes_total",
            "Streams resumed with after= or Last-Event-ID.",
            "counter",
            self.resumes_total.load(Relaxed),
        );
        gauge(
            "chunkwise_relay_sent_bytes_total",
            "Body bytes streamed to clients.",
            "counter",
            self.bytes_sent.load(Relaxed),
        );
        gauge(
            "chunkwise_relay_upstream_bytes_total",
            "Body bytes read from upstreams.",
            "counter",
            self.upstream_bytes.load(Relaxed),
        );
        let name = "chunkwise_relay_time_to_first_token_seconds";
        let _ =
            writeln!(s, "# HELP {name} From request to the first answer or reasoning text.\n# TYPE {name} histogram");
        for (bound, slot) in TTFT_BUCKETS.iter().zip(&self.ttft_buckets) {
            let _ = writeln!(s, "{name}_bucket{{le=\"{bound}\"}} {}", slot.load(Relaxed));
        }
        let count = self.ttft_count.load(Relaxed);
        let _ = writeln!(s, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(s, "{name}_sum {}", self.ttft_sum_us.load(Relaxed) as f64 / 1e6);
        let _ = writeln!(s, "{name}_count {count}");
        let name = "chunkwise_relay_errors_total";
        let _ = writeln!(
            s,
            "# HELP {name} Errors by code (upstream failures, timeouts, rejected requests).\n# TYPE {name} counter"
        );
        for (code, n) in self.errors.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(s, "{name}{{code=\"{}\"}} {n}", escape_label(code));
        }
        s
    }
}
