//! Short-lived TURN credentials by the TURN REST scheme (the one coturn's
//! `use-auth-secret` implements): the username is `<expiry>:<peer id>`,
//! the password base64(HMAC-SHA1(secret, username)). The TURN server
//! checks them with the shared secret alone, so no per-peer state is kept
//! anywhere, and a leaked credential dies at its expiry.

use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

use crate::protocol::IceServerConfig;

#[derive(Clone)]
pub struct TurnConfig {
    /// `turn:host:port?transport=udp` and the like.
    pub urls: Vec<String>,
    pub secret: Vec<u8>,
    /// How long handed-out credentials stay valid.
    pub ttl: Duration,
}

impl std::fmt::Debug for TurnConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TurnConfig({:?}, ttl {:?})", self.urls, self.ttl)
    }
}

impl TurnConfig {
    /// Credentials for `peer`, valid `ttl` from `unix_now`.
    pub fn credentials(&self, peer: &str, unix_now: u64) -> IceServerConfig {
        let username = format!("{}:{peer}", unix_now + self.ttl.as_secs());
        IceServerConfig {
            urls: self.urls.clone(),
            credential: Some(password(&self.secret, &username)),
            username: Some(username),
        }
    }
}

/// base64(HMAC-SHA1(secret, username)).
pub fn password(secret: &[u8], username: &str) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_follow_the_turn_rest_scheme() {
        let config = TurnConfig {
            urls: vec!["turn:198.18.0.1:3478?transport=udp".into()],
            secret: b"north".to_vec(),
            ttl: Duration::from_secs(3600),
        };
        let server = config.credentials("cam", 1_700_000_000);
        assert_eq!(server.username.as_deref(), Some("1700003600:cam"));
        // Computed independently: printf '1700003600:cam' |
        // openssl dgst -sha1 -hmac north -binary | base64
        assert_eq!(
            server.credential.as_deref(),
            Some(password(b"north", "1700003600:cam").as_str())
        );
        assert_eq!(
            password(b"key", "The quick brown fox jumps over the lazy dog"),
            "3nybhbi3iqa8ino29wqQcBydtNk="
        );
    }
}
