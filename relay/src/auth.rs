//! Client tokens: `Authorization: Bearer <token>` (or `?token=` where a client cannot set
//! headers). A token is either one of the configured static tokens, or an HMAC-signed token
//! that the developer's own backend issues after its login:
//!
//! ```text
//! cw1.<expiry, unix seconds>.<subject>.<hex HMAC-SHA256(secret, "cw1.<expiry>.<subject>")>
//! ```
//!
//! The subject (`[A-Za-z0-9_-]`, at most 64 characters) names the user: a generation can be
//! resumed or cancelled only with a token of the same subject. Each token has exactly one
//! spelling: the expiry in decimal without leading zeros, the signature in 64 lowercase hex
//! digits.
//!
//! Owners of the two kinds live apart: a static token owns as `static:<index>`, a signed
//! token as `user:<subject>`, so no subject can name a static token's owner.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Who a request is from: empty when tokens are not required.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Owner(pub String);

impl Owner {
    pub fn static_token(index: usize) -> Owner {
        Owner(format!("static:{index}"))
    }

    pub fn user(subject: &str) -> Owner {
        Owner(format!("user:{subject}"))
    }
}

/// A subject a signed token may carry.
pub fn valid_subject(subject: &str) -> bool {
    !subject.is_empty()
        && subject.len() <= 64
        && subject.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The token of an `Authorization` value whose scheme is `Bearer` (schemes are
/// case-insensitive, RFC 9110 §11.1).
pub fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

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
    if !valid_subject(subject) {
        return Err("bad subject");
    }
    let canonical_expiry = !expiry.is_empty()
        && expiry.len() <= 20
        && expiry.bytes().all(|b| b.is_ascii_digit())
        && (expiry == "0" || !expiry.starts_with('0'));
    if !canonical_expiry {
        return Err("bad expiry");
    }
    let expiry: u64 = expiry.parse().map_err(|_| "bad expiry")?;
    if sig.len() != 64 || !sig.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err("bad signature encoding");
    }
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
    fn one_spelling_per_token() {
        let t = sign("k", "bob", 2000);
        let sig = t.rsplit('.').next().unwrap();
        for other in [
            format!("cw1.+2000.bob.{sig}"),
            format!("cw1.02000.bob.{sig}"),
            format!("cw1.2000.bob.{}", sig.to_uppercase()),
            format!("cw1.2000.bob.+{}", &sig[1..]),
        ] {
            assert!(verify("k", &other, 1000).is_err(), "{other}");
        }
        assert_eq!(bearer("BEARER abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer"), None);
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
