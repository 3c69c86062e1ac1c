//! The Redis version check at start: the store needs `XADD … MINID` and `ZADD … GT` (6.2).

use redis::aio::MultiplexedConnection;

/// Refuses a server that says it is older than [`MIN_VERSION`]. A least-privilege ACL
/// (`-@dangerous`) may deny `INFO`: then the server does not say its version, as when `INFO`
/// leaves it out, and the start goes on (with a line in the log).
pub(super) async fn check(con: &mut MultiplexedConnection) -> Result<(), String> {
    match redis::cmd("INFO").arg("server").query_async::<String>(con).await {
        Ok(info) => check_version(&info),
        Err(e) if super::broken(&e) => Err(format!("Redis: {e}")),
        Err(e) => {
            eprintln!("chunkwise-relay: Redis did not say its version (INFO: {e}); it must be 6.2 or later");
            Ok(())
        }
    }
}

/// The oldest Redis that does what the store needs (`XADD … MINID`, `ZADD … GT`).
const MIN_VERSION: (u32, u32) = (6, 2);

/// Refuses a server older than [`MIN_VERSION`], from its `INFO server` text (`redis_version:`).
/// A server that does not say (a compatible engine) is taken at its word.
fn check_version(info: &str) -> Result<(), String> {
    let Some(version) = info.lines().find_map(|l| l.strip_prefix("redis_version:")) else { return Ok(()) };
    let version = version.trim();
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let found = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if found < MIN_VERSION {
        return Err(format!(
            "Redis at REDIS_URL is version {version}; the relay needs {}.{} or later (XADD … MINID)",
            MIN_VERSION.0, MIN_VERSION.1
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn versions_before_6_2_are_refused() {
        for ok in ["redis_version:6.2.0", "# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone", "no version"] {
            assert_eq!(super::check_version(ok), Ok(()), "{ok}");
        }
        for old in ["redis_version:6.0.16", "redis_version:5.0.7\r\n", "redis_version:4"] {
            let e = super::check_version(old).unwrap_err();
            assert!(e.contains("6.2 or later"), "{e}");
        }
    }
}
