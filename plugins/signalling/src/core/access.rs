//! Access control in the core (docs/security.md): who a peer is (its
//! token's `sub`, or a random id), which rooms it may enter and what it may
//! do there. With no authority configured (an open server) every peer may
//! do everything, as before tokens existed. Part of the pure
//! [`SignallingCore`]: the time comes in with each input.

use super::*;
use crate::auth::{AuthError, Authority, Grants, Identity};
use crate::protocol::IceServerConfig;
use crate::turn::TurnConfig;

/// How the core decides who may do what.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// Tokens required and checked by it; `None`: an open server.
    pub authority: Option<Authority>,
    /// TURN servers whose short-lived credentials peers get in `welcome`.
    pub turn: Option<TurnConfig>,
}

/// What a registered peer may do, and where.
#[derive(Debug, Clone)]
pub struct Allowed {
    pub grants: Grants,
    /// A room or a `*`-suffixed prefix; `None`: any room.
    pub rooms: Option<String>,
}

impl Allowed {
    pub fn everything() -> Allowed {
        Allowed {
            grants: Grants::ALL,
            rooms: None,
        }
    }

    fn from_identity(identity: &Identity) -> Allowed {
        Allowed {
            grants: identity.grants,
            rooms: Some(identity.room.clone()),
        }
    }

    pub fn room(&self, room: &str) -> bool {
        match &self.rooms {
            None => true,
            Some(pattern) => match pattern.strip_suffix('*') {
                Some(prefix) => room.starts_with(prefix),
                None => pattern == room,
            },
        }
    }
}

/// A grant, by name, for messages.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Grant {
    Publish,
    Subscribe,
    Data,
}

impl SignallingCore {
    pub fn set_access(&mut self, access: Access) {
        self.access = access;
    }

    pub fn requires_tokens(&self) -> bool {
        self.access.authority.is_some()
    }

    /// Seconds since the Unix epoch at `now`.
    pub(super) fn unix_time(&self, now: Instant) -> u64 {
        let (base_instant, base_unix) = self.clock_base;
        match now.checked_duration_since(base_instant) {
            Some(ahead) => base_unix + ahead.as_secs(),
            None => base_unix.saturating_sub((base_instant - now).as_secs()),
        }
    }

    /// Checks a token as the core would for a hello, for the HTTP shells
    /// (`/api/rooms`): the identity, or the error to answer with.
    pub fn check_token(
        &self,
        now: Instant,
        token: Option<&str>,
    ) -> Result<Allowed, (ErrorCode, String)> {
        let Some(authority) = &self.access.authority else {
            return Ok(Allowed::everything());
        };
        let token = token.ok_or_else(|| unauthorized(AuthError::Missing))?;
        authority
            .verify(token, self.unix_time(now))
            .map(|identity| Allowed::from_identity(&identity))
            .map_err(unauthorized)
    }

    /// The id a registering peer gets and what it may do: its token's
    /// `sub` (only it may take that id), or `requested`, or a random one.
    pub(super) fn identify(
        &mut self,
        now: Instant,
        conn: ConnId,
        requested: Option<PeerId>,
        token: Option<String>,
    ) -> Result<(Option<PeerId>, Allowed), (ErrorCode, String)> {
        let connection = self.connections.get(&conn);
        if let Some(vouched) = connection.and_then(|c| c.vouched.clone()) {
            // An adapter checked this peer's credentials its own way.
            return Ok((requested, vouched));
        }
        let Some(authority) = &self.access.authority else {
            return Ok((requested, Allowed::everything()));
        };
        let token = token
            .or_else(|| connection.and_then(|c| c.url_token.clone()))
            .ok_or_else(|| unauthorized(AuthError::Missing))?;
        let identity = authority
            .verify(&token, self.unix_time(now))
            .map_err(unauthorized)?;
        let id = match (&identity.sub, requested) {
            (Some(sub), Some(requested)) if *sub != requested => {
                return Err((
                    ErrorCode::Forbidden,
                    format!("this token is for peer \"{sub}\", not \"{requested}\""),
                ));
            }
            (Some(sub), _) => Some(sub.clone()),
            (None, Some(requested)) => {
                return Err((
                    ErrorCode::Forbidden,
                    format!(
                        "this token names no peer id: \"{requested}\" cannot be taken (leave the id out for a random one)"
                    ),
                ));
            }
            (None, None) => None,
        };
        Ok((id, Allowed::from_identity(&identity)))
    }

    /// TURN credentials for `peer` (an adapter's), none without TURN.
    pub fn turn_credentials(&self, now: Instant, peer: &str) -> Option<IceServerConfig> {
        self.access
            .turn
            .as_ref()
            .map(|turn| turn.credentials(peer, self.unix_time(now)))
    }

    /// TURN servers with credentials for `peer`, for its welcome.
    pub(super) fn ice_servers_for(&self, now: Instant, peer: &str) -> Vec<IceServerConfig> {
        match &self.access.turn {
            Some(turn) => vec![turn.credentials(peer, self.unix_time(now))],
            None => Vec::new(),
        }
    }

    pub(super) fn allowed(&self, conn: ConnId) -> Allowed {
        self.peer(conn)
            .map(|peer| peer.allowed.clone())
            .unwrap_or_else(Allowed::everything)
    }

    /// Refuses entering `room` unless the token allows it.
    pub(super) fn check_room(&self, conn: ConnId, room: &str) -> Outcome {
        let allowed = self.allowed(conn);
        if allowed.room(room) {
            Ok(())
        } else {
            Err((
                ErrorCode::Unauthorized,
                format!(
                    "this token is for room \"{}\", not \"{room}\"",
                    allowed.rooms.unwrap_or_default()
                ),
            ))
        }
    }

    /// Refuses what needs `grant` unless the peer's token grants it.
    pub(super) fn require(&self, conn: ConnId, grant: Grant, room: &str) -> Outcome {
        let grants = self.allowed(conn).grants;
        let (has, name) = match grant {
            Grant::Publish => (grants.publish, "publish"),
            // Receiving a producer: a recorder may too.
            Grant::Subscribe => (grants.subscribe || grants.record, "subscribe"),
            Grant::Data => (grants.data, "data"),
        };
        if has {
            Ok(())
        } else {
            Err((
                ErrorCode::Forbidden,
                format!("this token does not allow {name} in room {room}"),
            ))
        }
    }

    pub(super) fn is_admin(&self, conn: ConnId) -> bool {
        self.allowed(conn).grants.admin
    }
}

pub(crate) fn unauthorized(error: AuthError) -> (ErrorCode, String) {
    (ErrorCode::Unauthorized, error.to_string())
}
