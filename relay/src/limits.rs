//! Per-client limits: request rate (token bucket) and concurrent generations, keyed by IP.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

use crate::error::ApiError;
use crate::App;

/// The client's IP: the peer address or, when the operator said proxies of theirs stand in
/// front (`trust_forwarded_for`), the `X-Forwarded-For` entry their outermost proxy added:
/// `trusted_proxy_hops` from the right, as nginx's realip module reads it. Entries left of it
/// are whatever the client wrote, and `X-Real-IP` is not read (a proxy that does not set it
/// passes the client's own).
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<Arc<App>> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, Self::Rejection> {
        let server = &app.config.server;
        if server.trust_forwarded_for && server.trusted_proxy_hops > 0 {
            if let Some(ip) = forwarded_for(&parts.headers, server.trusted_proxy_hops) {
                return Ok(ClientIp(ip));
            }
        }
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        Ok(ClientIp(peer.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))))
    }
}

/// The address `hops` entries from the right of all `X-Forwarded-For` headers together.
fn forwarded_for(headers: &axum::http::HeaderMap, hops: usize) -> Option<IpAddr> {
    let mut entries: Vec<&str> = Vec::new();
    for v in headers.get_all("x-forwarded-for") {
        entries.extend(v.to_str().ok()?.split(',').map(str::trim));
    }
    // Fewer entries than trusted hops: no trusted proxy wrote the one we would pick.
    let i = entries.len().checked_sub(hops)?;
    entries.get(i)?.parse().ok()
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// A token bucket per IP: `burst` deep, refilled at `per_minute`.
pub struct RateLimiter {
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
    per_sec: f64,
    burst: f64,
}

impl RateLimiter {
    pub fn new(per_minute: u32, burst: u32) -> RateLimiter {
        RateLimiter { buckets: Mutex::new(HashMap::new()), per_sec: per_minute as f64 / 60.0, burst: burst as f64 }
    }

    /// Takes one token, or says in how many seconds one will be there.
    pub fn check(&self, ip: IpAddr) -> Result<(), ApiError> {
        if self.per_sec <= 0.0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let b = map.entry(ip).or_insert(Bucket { tokens: self.burst, at: now });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * self.per_sec).min(self.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            return Ok(());
        }
        let wait = ((1.0 - b.tokens) / self.per_sec).ceil() as u64;
        Err(self.refusal(ip, wait))
    }

    /// The 429 for `ip`, to retry in `wait` seconds.
    pub fn refusal(&self, ip: IpAddr, wait: u64) -> ApiError {
        ApiError::too_many(
            "rate_limited",
            wait,
            format!(
                "too many requests from {ip}: this relay allows {} per minute (bursts of {}); retry in {wait} s",
                (self.per_sec * 60.0).round(),
                self.burst
            ),
        )
    }

    /// Forgets buckets that have been full for a while.
    pub fn sweep(&self) {
        let now = Instant::now();
        let full_after = Duration::from_secs_f64((self.burst / self.per_sec.max(1e-9)).min(3600.0));
        self.buckets.lock().unwrap_or_else(|p| p.into_inner()).retain(|_, b| now.duration_since(b.at) < full_after);
    }
}

/// Counts running generations per client: per IP, or per token subject.
pub struct StreamLimiter {
    counts: Mutex<HashMap<String, usize>>,
    limit: usize,
}

/// One running generation of one client; dropping it frees the slot.
pub struct StreamPermit {
    limiter: Arc<StreamLimiter>,
    key: String,
}

impl StreamLimiter {
    pub fn new(limit: usize) -> Arc<StreamLimiter> {
        Arc::new(StreamLimiter { counts: Mutex::new(HashMap::new()), limit })
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    pub fn acquire(self: &Arc<Self>, ip: IpAddr) -> Result<StreamPermit, ApiError> {
        self.acquire_key(ip.to_string()).map_err(|limit| too_many_streams(ip, limit))
    }

    /// A slot for a token subject: `Err(limit)` when it has `limit` answers running.
    pub fn acquire_token(self: &Arc<Self>, owner: &str) -> Result<StreamPermit, ApiError> {
        self.acquire_key(format!("token:{owner}")).map_err(too_many_token_streams)
    }

    fn acquire_key(self: &Arc<Self>, key: String) -> Result<StreamPermit, usize> {
        let mut map = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let n = map.entry(key.clone()).or_insert(0);
        if *n >= self.limit {
            return Err(self.limit);
        }
        *n += 1;
        Ok(StreamPermit { limiter: self.clone(), key })
    }
}

/// The 429 for a client token at its limit of running answers (on all instances).
pub fn too_many_token_streams(limit: usize) -> ApiError {
    ApiError::too_many(
        "too_many_streams",
        5,
        format!("this client token already has {limit} answers streaming, this relay's limit per token; wait for one to finish or cancel it"),
    )
}

/// The 429 for an IP at its limit of running answers.
pub fn too_many_streams(ip: IpAddr, limit: usize) -> ApiError {
    ApiError::too_many(
        "too_many_streams",
        5,
        format!("{ip} already has {limit} answers streaming, this relay's limit per client; wait for one to finish or cancel it"),
    )
}

impl std::fmt::Debug for StreamPermit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StreamPermit({})", self.key)
    }
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut map = self.limiter.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_a_burst_then_says_when() {
        let r = RateLimiter::new(60, 3);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..3 {
            r.check(ip).unwrap();
        }
        let e = r.check(ip).unwrap_err();
        assert_eq!(e.status.as_u16(), 429);
        assert_eq!(e.retry_after, Some(1));
        r.check("10.0.0.2".parse().unwrap()).unwrap();
    }

    #[test]
    fn forwarded_for_reads_from_the_right() {
        let mut h = axum::http::HeaderMap::new();
        h.append("x-forwarded-for", "1.1.1.1, 2.2.2.2".parse().unwrap());
        h.append("x-forwarded-for", "3.3.3.3".parse().unwrap());
        assert_eq!(forwarded_for(&h, 1), Some("3.3.3.3".parse().unwrap()));
        assert_eq!(forwarded_for(&h, 2), Some("2.2.2.2".parse().unwrap()));
        assert_eq!(forwarded_for(&h, 3), Some("1.1.1.1".parse().unwrap()));
    }

    #[test]
    fn forwarded_for_with_fewer_entries_than_trusted_hops_is_not_trusted() {
        // The request did not pass through every trusted proxy: the leftmost entry may be the
        // client's own, so the peer address decides.
        let mut h = axum::http::HeaderMap::new();
        h.append("x-forwarded-for", "6.6.6.6, 2.2.2.2".parse().unwrap());
        assert_eq!(forwarded_for(&h, 3), None);
        assert_eq!(forwarded_for(&h, 9), None);
    }

    #[test]
    fn stream_permits_are_returned_on_drop() {
        let l = StreamLimiter::new(1);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let p = l.acquire(ip).unwrap();
        assert_eq!(l.acquire(ip).unwrap_err().code, "too_many_streams");
        drop(p);
        l.acquire(ip).unwrap();
    }

    #[test]
    fn token_permits_count_apart_from_ips() {
        let l = StreamLimiter::new(1);
        let p = l.acquire_token("user:a").unwrap();
        assert_eq!(l.acquire_token("user:a").unwrap_err().code, "too_many_streams");
        l.acquire_token("user:b").unwrap();
        l.acquire("10.0.0.1".parse().unwrap()).unwrap();
        drop(p);
        l.acquire_token("user:a").unwrap();
    }
}
