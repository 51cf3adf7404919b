//! Who a peer is and what it may do: access tokens (JWT) and the grants
//! they carry, checked by the pure core for every front end (our
//! WebSocket, WHIP, WHEP, and adapters to come). No clock is read here:
//! the time is passed in, so every rule is a unit test.
//!
//! A token is a JWT signed with HS256 (a shared secret) or ES256/RS256
//! (the server holds the public key). The server's configuration fixes
//! the algorithm: a token naming another one (`none` included) is refused.
//! Claims:
//! - `sub`: the peer id the token's holder registers under; nobody else
//!   can take it. Without `sub`, the holder gets a random id.
//! - `room`: the room it may enter, or a prefix ending in `*`
//!   (`"interviews-*"`, `"*"` for every room).
//! - `grants`: `publish`, `subscribe`, `data`, `record`, `admin`.
//! - `exp`, `nbf`: validity, checked with [`LEEWAY_SECS`] of slack.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// Clock slack for `exp` and `nbf`, between machines whose clocks differ.
pub const LEEWAY_SECS: u64 = 30;

/// What a peer may do. With no authority configured (an open server),
/// every peer may do everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Grants {
    /// Announce streams: join with streams, update them, WHIP.
    pub publish: bool,
    /// Receive a producer's streams: start-session, WHEP.
    pub subscribe: bool,
    /// Application messages through the server.
    pub data: bool,
    /// Receive ingest (WHIP publishers) for recording; implies receiving
    /// any producer of its rooms.
    pub record: bool,
    /// List every room and its peers, end anyone's session.
    pub admin: bool,
}

impl Grants {
    pub const ALL: Grants = Grants {
        publish: true,
        subscribe: true,
        data: true,
        record: true,
        admin: true,
    };

    pub const NAMES: &'static [&'static str] = &["publish", "subscribe", "data", "record", "admin"];

    /// `publish,data` and the like; the error names a word it does not know.
    pub fn parse(text: &str) -> Result<Grants, String> {
        let mut grants = Grants::default();
        for word in text
            .split([',', ' '])
            .map(str::trim)
            .filter(|w| !w.is_empty())
        {
            grants.set(word)?;
        }
        Ok(grants)
    }

    fn set(&mut self, word: &str) -> Result<(), String> {
        match word {
            "publish" => self.publish = true,
            "subscribe" => self.subscribe = true,
            "data" => self.data = true,
            "record" => self.record = true,
            "admin" => self.admin = true,
            other => {
                return Err(format!(
                    "unknown grant \"{other}\" (known: {})",
                    Grants::NAMES.join(", ")
                ));
            }
        }
        Ok(())
    }

    pub fn names(&self) -> Vec<&'static str> {
        [
            (self.publish, "publish"),
            (self.subscribe, "subscribe"),
            (self.data, "data"),
            (self.record, "record"),
            (self.admin, "admin"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect()
    }
}

/// The claims of a gst-peer token, as signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// A room, or a prefix ending in `*`.
    pub room: String,
    #[serde(default)]
    pub grants: Vec<String>,
    /// Seconds since the Unix epoch.
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
}

/// A verified token: who, where, what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub sub: Option<String>,
    pub room: String,
    pub grants: Grants,
    pub exp: u64,
}

impl Identity {
    /// Whether this identity may be in `room`.
    pub fn allows_room(&self, room: &str) -> bool {
        match self.room.strip_suffix('*') {
            Some(prefix) => room.starts_with(prefix),
            None => self.room == room,
        }
    }
}

/// Why a token was refused, in words for the peer that sent it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("a token is required on this server (hello.token, ?token= or Authorization: Bearer)")]
    Missing,
    #[error("the token expired {0} s ago")]
    Expired(u64),
    #[error("the token is not valid for another {0} s")]
    NotYetValid(u64),
    #[error("the token's signature does not verify")]
    BadSignature,
    #[error("the token is signed with {found}; this server takes only {expected}")]
    WrongAlgorithm { found: String, expected: String },
    #[error("the token is malformed: {0}")]
    Malformed(String),
}

/// How the server checks tokens.
#[derive(Clone)]
pub struct Authority {
    algorithm: Algorithm,
    key: DecodingKey,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Authority({:?})", self.algorithm)
    }
}

impl Authority {
    /// HS256 with a shared secret (at least 32 bytes).
    pub fn hs256(secret: &[u8]) -> Result<Authority, String> {
        if secret.len() < 32 {
            return Err(format!(
                "the secret is {} bytes; at least 32 are needed (peer token new-secret makes one)",
                secret.len()
            ));
        }
        Ok(Authority {
            algorithm: Algorithm::HS256,
            key: DecodingKey::from_secret(secret).map_err(|err| err.to_string())?,
        })
    }

    /// ES256 or RS256 with a PEM public key.
    pub fn public_key(algorithm: &str, pem: &[u8]) -> Result<Authority, String> {
        let (algorithm, key) = match algorithm.to_ascii_uppercase().as_str() {
            "ES256" => (Algorithm::ES256, DecodingKey::from_ec_pem(pem)),
            "RS256" => (Algorithm::RS256, DecodingKey::from_rsa_pem(pem)),
            other => return Err(format!("algorithm {other}: expected ES256 or RS256")),
        };
        let key = key.map_err(|err| format!("not a usable public key: {err}"))?;
        Ok(Authority { algorithm, key })
    }

    /// Checks `token` at `unix_now` (seconds since the epoch).
    pub fn verify(&self, token: &str, unix_now: u64) -> Result<Identity, AuthError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|err| AuthError::Malformed(err.to_string()))?;
        if header.alg != self.algorithm {
            return Err(AuthError::WrongAlgorithm {
                found: format!("{:?}", header.alg),
                expected: format!("{:?}", self.algorithm),
            });
        }
        let mut validation = Validation::new(self.algorithm);
        // Time is ours to check, against the time we are given.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.required_spec_claims.clear();
        let data =
            jsonwebtoken::decode::<Claims>(token, &self.key, &validation).map_err(|err| {
                use jsonwebtoken::errors::ErrorKind;
                match err.kind() {
                    ErrorKind::InvalidSignature => AuthError::BadSignature,
                    ErrorKind::InvalidAlgorithm => AuthError::WrongAlgorithm {
                        found: format!("{:?}", header.alg),
                        expected: format!("{:?}", self.algorithm),
                    },
                    _ => AuthError::Malformed(err.to_string()),
                }
            })?;
        let claims = data.claims;
        if unix_now > claims.exp + LEEWAY_SECS {
            return Err(AuthError::Expired(unix_now - claims.exp));
        }
        if let Some(nbf) = claims.nbf
            && nbf > unix_now + LEEWAY_SECS
        {
            return Err(AuthError::NotYetValid(nbf - unix_now));
        }
        let grants = Grants::parse(&claims.grants.join(",")).map_err(AuthError::Malformed)?;
        Ok(Identity {
            sub: claims.sub,
            room: claims.room,
            grants,
            exp: claims.exp,
        })
    }
}

/// Signs `claims` (for `peer token` and tests).
pub fn mint(claims: &Claims, algorithm: &str, key_pem_or_secret: &[u8]) -> Result<String, String> {
    let (algorithm, key) = match algorithm.to_ascii_uppercase().as_str() {
        "HS256" => (
            Algorithm::HS256,
            EncodingKey::from_secret(key_pem_or_secret).map_err(|e| e.to_string())?,
        ),
        "ES256" => (
            Algorithm::ES256,
            EncodingKey::from_ec_pem(key_pem_or_secret).map_err(|e| e.to_string())?,
        ),
        "RS256" => (
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(key_pem_or_secret).map_err(|e| e.to_string())?,
        ),
        other => return Err(format!("algorithm {other}: expected HS256, ES256 or RS256")),
    };
    jsonwebtoken::encode(&Header::new(algorithm), claims, &key).map_err(|err| err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const NOW: u64 = 1_800_000_000;

    fn claims() -> Claims {
        Claims {
            sub: Some("guest-1".into()),
            room: "interviews".into(),
            grants: vec!["publish".into(), "data".into()],
            exp: NOW + 3600,
            nbf: None,
            iat: Some(NOW),
        }
    }

    #[test]
    fn a_good_token_gives_its_identity() {
        let authority = Authority::hs256(SECRET).unwrap();
        let token = mint(&claims(), "HS256", SECRET).unwrap();
        let identity = authority.verify(&token, NOW).unwrap();
        assert_eq!(identity.sub.as_deref(), Some("guest-1"));
        assert!(identity.grants.publish && identity.grants.data);
        assert!(!identity.grants.subscribe && !identity.grants.admin);
        assert!(identity.allows_room("interviews"));
        assert!(!identity.allows_room("interviews2"));
    }

    #[test]
    fn bad_tokens_are_refused_naming_why() {
        let authority = Authority::hs256(SECRET).unwrap();
        let token = mint(&claims(), "HS256", SECRET).unwrap();
        assert_eq!(
            authority.verify(&token, NOW + 3600 + LEEWAY_SECS + 10),
            Err(AuthError::Expired(3600 + LEEWAY_SECS + 10 - 3600))
        );
        let mut early = claims();
        early.nbf = Some(NOW + 600);
        let early = mint(&early, "HS256", SECRET).unwrap();
        assert_eq!(
            authority.verify(&early, NOW),
            Err(AuthError::NotYetValid(600))
        );
        let forged = mint(&claims(), "HS256", b"another secret of thirty-two bytes!!").unwrap();
        assert_eq!(authority.verify(&forged, NOW), Err(AuthError::BadSignature));
        // alg "none": a header and claims with an empty signature.
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let none = format!(
            "{}.{}.",
            b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
            b64.encode(serde_json::to_vec(&claims()).unwrap())
        );
        assert!(
            matches!(
                authority.verify(&none, NOW),
                Err(AuthError::Malformed(_) | AuthError::WrongAlgorithm { .. })
            ),
            "{:?}",
            authority.verify(&none, NOW)
        );
        assert!(matches!(
            authority.verify("hello", NOW),
            Err(AuthError::Malformed(_))
        ));
        let mut unknown = claims();
        unknown.grants.push("root".into());
        let unknown = mint(&unknown, "HS256", SECRET).unwrap();
        let err = authority.verify(&unknown, NOW).unwrap_err();
        assert!(err.to_string().contains("root"), "{err}");
    }

    #[test]
    fn room_prefixes_and_grants_parse() {
        let identity = Identity {
            sub: None,
            room: "team-*".into(),
            grants: Grants::parse("subscribe,record").unwrap(),
            exp: NOW,
        };
        assert!(identity.allows_room("team-a") && !identity.allows_room("other"));
        assert_eq!(identity.grants.names(), ["subscribe", "record"]);
        assert!(Grants::parse("publish,fly").unwrap_err().contains("fly"));
        assert!(Authority::hs256(b"short").unwrap_err().contains("32"));
    }
}
