//! Client tokens: `Authorization: Bearer <token>` (or `?token=` where a client cannot set
//! headers). A token is either one of the configured static tokens, or an HMAC-signed token
//! that the developer's own backend issues after its login:
//!
//! ```text
//! cw1.<expiry, unix seconds>.<subject>.<hex HMAC-SHA256(secret, "cw1.<expiry>.<subject>")>
//! ```
//!
//! The subject (`[A-Za-z0-9_-]`, at most 64 characters) names the user: a generation can be
//! resumed or cancelled only with a token of the same subject.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Who a request is from: empty when tokens are not required.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Owner(pub String);

/// Signs a token for `subject` valid until `expiry` (unix seconds).
pub fn sign(secret: &str, subject: &str, expiry: u64) -> String {
    let payload = format!("cw1.{expiry}.{subject}");
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(payload.as_bytes());
    let sig: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("{payload}.{sig}")
}

/// The subject of a valid, unexpired signed token.
pub fn verify(secret: &str, token: &str, now: u64) -> Result<String, &'static str> {
    let mut parts = token.split('.');
    let (Some("cw1"), Some(expiry), Some(subject), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("not a cw1 token");
    };
    if subject.is_empty()
        || subject.len() > 64
        || !subject.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err("bad subject");
    }
    let expiry: u64 = expiry.parse().map_err(|_| "bad expiry")?;
    let sig = decode_hex(sig).ok_or("bad signature encoding")?;
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(format!("cw1.{expiry}.{subject}").as_bytes());
    mac.verify_slice(&sig).map_err(|_| "bad signature")?;
    if expiry <= now {
        return Err("expired");
    }
    Ok(subject.to_string())
}

/// Compares without an early exit, so the time taken does not tell how much matched.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_tokens_verify_until_they_expire() {
        let t = sign("s3cret", "alice", 2000);
        assert!(t.starts_with("cw1.2000.alice."));
        assert_eq!(verify("s3cret", &t, 1999).unwrap(), "alice");
        assert_eq!(verify("s3cret", &t, 2000), Err("expired"));
        assert_eq!(verify("other", &t, 1000), Err("bad signature"));
        let forged = t.replace("alice", "mallory");
        assert_eq!(verify("s3cret", &forged, 1000), Err("bad signature"));
        assert!(verify("s3cret", "sk-whatever", 0).is_err());
    }

    #[test]
    fn matches_openssl() {
        // printf 'cw1.1700000000.bob' | openssl dgst -sha256 -hmac key -hex
        assert_eq!(
            sign("key", "bob", 1_700_000_000),
            "cw1.1700000000.bob.8fa1ca3293d57694d967afb39b6d158504f315dbd246908b370d0730a0004731"
        );
    }
}
