//! Who may talk to the server: loopback by default, any other address only with an API key,
//! and the key checked in constant time (both sides hashed first, so neither the content nor the
//! length of the key leaks through timing). The key is never printed.

use std::net::IpAddr;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The API key, kept as its hash; `Debug` shows nothing of it.
#[derive(Clone)]
pub struct ApiKey([u8; 32]);

impl ApiKey {
    pub fn new(key: &str) -> Self {
        Self(Sha256::digest(key.as_bytes()).into())
    }

    /// Whether an `Authorization` header value is `Bearer <this key>`.
    pub fn accepts(&self, header: Option<&str>) -> bool {
        let Some(token) = header.and_then(|h| h.strip_prefix("Bearer ")) else {
            return false;
        };
        let got: [u8; 32] = Sha256::digest(token.trim().as_bytes()).into();
        bool::from(got.ct_eq(&self.0))
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// Whether `host` is this machine only (`localhost`, 127.0.0.0/8, ::1).
pub fn is_loopback(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// Refuses to serve beyond this machine without a key.
pub fn check_host(host: &str, has_key: bool) -> Result<(), String> {
    if is_loopback(host) || has_key {
        Ok(())
    } else {
        Err(format!(
            "refusing to serve on `{host}` (reachable from other machines) without an API key: \
             pass --api-key (or S1_API_KEY), or serve on 127.0.0.1"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_right_bearer_key_is_accepted() {
        let k = ApiKey::new("sekrit");
        assert!(k.accepts(Some("Bearer sekrit")));
        for h in [
            None,
            Some("Bearer sekrit2"),
            Some("Bearer "),
            Some("sekrit"),
            Some("Basic sekrit"),
        ] {
            assert!(!k.accepts(h), "{h:?}");
        }
        assert!(!format!("{k:?}").contains("sekrit"));
    }

    #[test]
    fn a_public_host_needs_a_key() {
        for h in ["127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"] {
            assert!(check_host(h, false).is_ok(), "{h}");
        }
        for h in ["0.0.0.0", "192.168.1.5", "::", "example.org"] {
            assert!(check_host(h, false).is_err(), "{h}");
            assert!(check_host(h, true).is_ok(), "{h}");
        }
    }
}
