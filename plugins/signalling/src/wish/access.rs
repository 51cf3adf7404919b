//! Who may use a WHIP/WHEP endpoint or resource: bearer tokens compared
//! in constant time, resource ids from the adapter's CSPRNG, TURN links.

use rand::Rng;
use rand::rngs::StdRng;

use super::{IceServer, Request, WishConfig};

/// `Link` values for a TURN server with credentials.
pub(super) fn turn_links(turn: &crate::protocol::IceServerConfig) -> Vec<String> {
    turn.urls
        .iter()
        .map(|url| {
            IceServer {
                url: url.clone(),
                username: turn.username.clone(),
                credential: turn.credential.clone(),
            }
            .link()
        })
        .collect()
}

/// How a request is authorized (see [`WishAdapter::authorize`]).
#[derive(Debug, Clone)]
pub(super) enum Credential {
    Open,
    Static,
    Token(String),
}

pub(super) fn bearer<'a>(request: &Request<'a>) -> Option<&'a str> {
    request
        .authorization
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|token| !token.is_empty())
}

pub(super) fn credential_is_static(config: &WishConfig, request: &Request<'_>) -> bool {
    match (&config.token, bearer(request)) {
        (Some(token), Some(given)) => constant_time_eq(given.as_bytes(), token.as_bytes()),
        _ => false,
    }
}

/// `len` characters of a 32-letter alphabet: 5 bits each.
pub(super) fn random_id(rng: &mut StdRng, len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Compares tokens without an early exit, so timing does not reveal how
/// much of a guess was right.
pub(super) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
