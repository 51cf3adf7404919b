//! What a WHIP/WHEP adapter is configured with and what a request
//! carries into it: the kind, ICE servers announced in `Link`, limits.

use std::time::Duration;

use crate::adapter::RequestId;

/// Which protocol an adapter speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Clients publish into a room.
    Whip,
    /// Clients play a room's producer.
    Whep,
}

impl Kind {
    pub fn path(self) -> &'static str {
        match self {
            Kind::Whip => "whip",
            Kind::Whep => "whep",
        }
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Kind::Whip => "WHIP",
            Kind::Whep => "WHEP",
        }
    }
}

/// A STUN or TURN server announced to clients (`Link: rel="ice-server"`).
#[derive(Debug, Clone, PartialEq)]
pub struct IceServer {
    /// `stun:host:port` or `turn:host:port?transport=udp`.
    pub url: String,
    pub username: Option<String>,
    pub credential: Option<String>,
}

impl IceServer {
    /// The `Link` header value (RFC 9725 §4.6).
    pub fn link(&self) -> String {
        let mut link = format!("<{}>; rel=\"ice-server\"", self.url);
        if let (Some(user), Some(credential)) = (&self.username, &self.credential) {
            link.push_str(&format!(
                "; username=\"{user}\"; credential=\"{credential}\"; credential-type=\"password\""
            ));
        }
        link
    }
}

#[derive(Debug, Clone)]
pub struct WishConfig {
    /// `Authorization: Bearer <token>` required on every request when set.
    pub token: Option<String>,
    /// How long a POST (or an ICE restart) waits for the answer before 504.
    pub answer_timeout: Duration,
    /// After the answer, how long its candidates are collected when the
    /// answerer does not signal the end of gathering.
    pub gather_timeout: Duration,
    /// Largest POST or PATCH body, in bytes (413 beyond).
    pub max_body_bytes: usize,
    /// Announced in `Link` headers of the 201 and of OPTIONS.
    pub ice_servers: Vec<IceServer>,
    /// Seconds a WHEP player is told to wait before retrying when nothing
    /// is published yet.
    pub retry_after_secs: u32,
    /// WHIP: bits per second a publisher may send, audio and video
    /// together, announced in the answer it gets (b=TIAS, b=AS), lowered
    /// to it where the receiver's answer allows more. Enforcing it is the
    /// receiver's job (peersrc `max-bitrate`): the server is not in the
    /// media path.
    pub max_bitrate: Option<u32>,
    /// POSTs (new sessions) one IP address may make, per second and in a
    /// burst; beyond, 429 with `Retry-After`.
    pub session_requests: crate::request_rate::RateLimit,
}

impl Default for WishConfig {
    fn default() -> Self {
        WishConfig {
            token: None,
            // peer record starts a pipeline per publisher before it asks:
            // generous, but bounded.
            answer_timeout: Duration::from_secs(15),
            gather_timeout: Duration::from_millis(1000),
            // Below the core's 64 KiB frame limit once wrapped in JSON.
            max_body_bytes: 60 * 1024,
            ice_servers: Vec::new(),
            retry_after_secs: 5,
            max_bitrate: None,
            session_requests: crate::request_rate::RateLimit::default(),
        }
    }
}

/// A request as the machine needs it: headers already picked out.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub id: RequestId,
    pub content_type: Option<&'a str>,
    pub authorization: Option<&'a str>,
    pub if_match: Option<&'a str>,
    pub body: &'a str,
}

/// What a POST names: the room, and for WHEP the producer to play (the
/// room's first when `None`).
#[derive(Debug, Clone, Copy)]
pub struct Endpoint<'a> {
    pub room: &'a str,
    pub producer: Option<&'a str>,
}
