//! The signalling state machine: peers, rooms and sessions, with no I/O.
//!
//! The transport feeds it [`Input`]s (a connection opened, a text frame
//! arrived, a tick of the clock) and carries out the [`Action`]s it returns
//! (send this message to those connections, ping, close). Time is passed in,
//! so every behaviour, heartbeats and timeouts included, is unit-testable.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::{SmallRng, StdRng};
use rand::{Rng, SeedableRng};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::auth::Grants;
use crate::protocol::{
    self, ClientMessage, ErrorCode, IceCandidate, Inbound, PeerId, PeerInfo, RelayRequest, RoomId,
    RoomSummary, SdpKind, ServerMessage, SessionDescription, SessionId, StreamInfo,
};

/// A transport-level connection handle, chosen by the transport.
pub type ConnId = u64;

#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest text frame accepted, in bytes; larger ones get `message-too-large`.
    pub max_message_bytes: usize,
    pub max_peers: usize,
    pub max_rooms: usize,
    pub max_peers_per_room: usize,
    pub max_sessions_per_peer: usize,
    /// A connection silent this long is pinged.
    pub heartbeat_interval: Duration,
    /// A connection silent this long is considered dead and dropped.
    pub heartbeat_timeout: Duration,
    /// How long `start-session` with `wait` holds for the peer to appear.
    pub session_wait_timeout: Duration,
    /// A connection that has not registered (said `hello`, or anything
    /// that registers it) this long after opening is closed. Pings do
    /// not count: a connection must become a peer to stay.
    pub hello_timeout: Duration,
    /// Largest `meta` of a peer, in bytes of JSON; it is sent to every
    /// member of the room and in every `list`, so it is kept small.
    pub max_meta_bytes: usize,
    /// Messages per second a connection may send, sustained (a token
    /// bucket refilled at this rate)...
    pub message_rate: f64,
    /// ...and in a burst. Beyond, messages are dropped with `rate-limited`.
    pub message_burst: f64,
    /// A peer whose socket was lost without a close stays (id, room,
    /// sessions) this long for a `hello` with its `resume` secret; zero:
    /// forgotten at once.
    pub resume_window: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 64 * 1024,
            max_peers: 100_000,
            max_rooms: 10_000,
            max_peers_per_room: 1_000,
            max_sessions_per_peer: 1_000,
            heartbeat_interval: Duration::from_secs(10),
            heartbeat_timeout: Duration::from_secs(30),
            session_wait_timeout: Duration::from_secs(60),
            hello_timeout: Duration::from_secs(10),
            max_meta_bytes: 4 * 1024,
            message_rate: 200.0,
            message_burst: 400.0,
            resume_window: Duration::from_secs(10),
        }
    }
}

#[derive(Debug)]
pub enum Input<'a> {
    Connected {
        conn: ConnId,
    },
    /// A text frame, `len` bytes long; the transport may pass an empty
    /// `text` for a frame it already knows is too large.
    Text {
        conn: ConnId,
        text: &'a str,
        len: usize,
    },
    /// A text frame the transport decoded with [`decode_frame`], outside
    /// the lock the core lives under.
    Frame {
        conn: ConnId,
        frame: Frame<'a>,
    },
    Binary {
        conn: ConnId,
    },
    /// A pong or any other sign of life that carries no message.
    Alive {
        conn: ConnId,
    },
    /// The connection closed cleanly (a close frame, or its protocol
    /// ended it): the peer is forgotten at once.
    Disconnected {
        conn: ConnId,
    },
    /// The connection was lost without a close (the process died, the
    /// network went): its peer is held for `resume_window`.
    SocketLost {
        conn: ConnId,
    },
    /// A message already decoded: what a protocol adapter says on behalf
    /// of a peer it speaks for (WHIP, WHEP, PeerJS).
    Message {
        conn: ConnId,
        message: ClientMessage,
    },
    /// A token that came with the connection (`/ws?token=`).
    Credential {
        conn: ConnId,
        token: String,
    },
    /// An adapter checked this connection's credentials its own way (a
    /// static WHIP token): what its peer may do.
    Vouch {
        conn: ConnId,
        grants: Grants,
        room: String,
    },
    Tick,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Send {
        to: Vec<ConnId>,
        message: Arc<ServerMessage>,
    },
    /// A message already encoded: a relayed `message`, whose payload is
    /// passed on as the text it arrived as.
    SendText {
        to: Vec<ConnId>,
        text: String,
    },
    Ping {
        conn: ConnId,
    },
    /// Drop the connection; the core has already forgotten it.
    Close {
        conn: ConnId,
        code: ErrorCode,
        reason: String,
    },
}

/// A text frame after decoding, or why it cannot be used.
#[derive(Debug)]
pub enum Frame<'a> {
    Decoded(Inbound<'a>),
    Invalid(protocol::DecodeError),
    TooLarge { len: usize },
}

/// Decodes a text frame of `len` bytes (the transport may pass an empty
/// `text` for one it already knows is too large). Pure and lock-free, so
/// the transport runs it before taking the core's lock.
pub fn decode_frame<'a>(limits: &Limits, text: &'a str, len: usize) -> Frame<'a> {
    if len > limits.max_message_bytes {
        return Frame::TooLarge { len };
    }
    match protocol::decode_inbound(text) {
        Ok(inbound) => Frame::Decoded(inbound),
        Err(err) => Frame::Invalid(err),
    }
}

struct Connection {
    peer: Option<Peer>,
    /// When the connection opened, for the hello deadline.
    opened: Instant,
    last_seen: Instant,
    /// The message rate limit's token bucket.
    rate: RateBucket,
    /// Its socket was lost: the peer waits for a resume until then.
    detached_until: Option<Instant>,
    pinged: bool,
    /// A token given with the connection (`/ws?token=`), for a hello
    /// without one.
    url_token: Option<String>,
    /// What an adapter vouches this peer may do (it checked the
    /// credentials its protocol carries, a static WHIP token say).
    vouched: Option<Allowed>,
}

struct Peer {
    id: PeerId,
    meta: Value,
    streams: Vec<StreamInfo>,
    room: Option<RoomId>,
    sessions: Vec<SessionId>,
    allowed: Allowed,
    /// The secret a `hello` must carry to resume this peer.
    resume: String,
}

impl Peer {
    fn info(&self) -> PeerInfo {
        PeerInfo {
            id: self.id.clone(),
            streams: self.streams.clone(),
            meta: self.meta.clone(),
        }
    }
}

#[derive(Default)]
struct Room {
    /// In order of joining, so listings are stable.
    members: Vec<ConnId>,
    /// The members that joined with presence: told of joins, updates
    /// and departures. A subset of `members`, in the same order.
    watchers: Vec<ConnId>,
}

struct Session {
    room: RoomId,
    requester: ConnId,
    target: SessionTarget,
    /// The requester's offer, held while the target is awaited.
    offer: Option<SessionDescription>,
}

enum SessionTarget {
    Present(ConnId),
    /// Held until a peer with this id joins the room.
    Awaited {
        peer: PeerId,
        deadline: Instant,
    },
}

impl Session {
    fn other_party(&self, conn: ConnId) -> Option<ConnId> {
        match self.target {
            SessionTarget::Present(target) if conn == self.requester => Some(target),
            SessionTarget::Present(target) if conn == target => Some(self.requester),
            _ => None,
        }
    }

    fn involves(&self, conn: ConnId) -> bool {
        self.requester == conn || matches!(self.target, SessionTarget::Present(t) if t == conn)
    }
}

/// What [`SignallingCore::producer_in`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProducerLookup {
    Found(PeerId),
    /// The peer is there but publishes nothing.
    NotAProducer,
    /// No such peer in the room (or no producer at all).
    Absent,
}

/// Outcome of a request, before it is turned into actions.
type Outcome = Result<(), (ErrorCode, String)>;

pub struct SignallingCore {
    limits: Limits,
    connections: HashMap<ConnId, Connection>,
    peer_ids: HashMap<PeerId, ConnId>,
    rooms: HashMap<RoomId, Room>,
    sessions: HashMap<SessionId, Session>,
    /// Sessions held for absent peers, by room and awaited peer id, to
    /// find them at once when that peer joins.
    awaited: HashMap<(RoomId, PeerId), Vec<SessionId>>,
    /// The same sessions by deadline. The wait timeout is one constant, so
    /// sessions arrive in deadline order and a queue is enough.
    awaited_deadlines: VecDeque<(Instant, SessionId)>,
    rng: SmallRng,
    /// For secrets that grant control (resume): a CSPRNG, seeded by the
    /// shell from the OS.
    secrets: StdRng,
    access: Access,
    /// An instant and the Unix time it was, to read token times against
    /// (set by the shell; the core reads no clock).
    clock_base: (Instant, u64),
}

impl SignallingCore {
    pub fn new(limits: Limits, seed: u64) -> Self {
        SignallingCore {
            limits,
            connections: HashMap::new(),
            peer_ids: HashMap::new(),
            rooms: HashMap::new(),
            sessions: HashMap::new(),
            awaited: HashMap::new(),
            awaited_deadlines: VecDeque::new(),
            rng: SmallRng::seed_from_u64(seed),
            secrets: StdRng::seed_from_u64(seed),
            access: Access::default(),
            clock_base: (Instant::now(), 0),
        }
    }

    /// Tells the core that `instant` was `unix_secs` seconds after the
    /// epoch, so it can check token times against the instants it is given.
    pub fn set_clock_base(&mut self, instant: Instant, unix_secs: u64) {
        self.clock_base = (instant, unix_secs);
    }

    /// Seeds the generator of secrets (resume); the shell gives OS
    /// randomness.
    pub fn seed_secrets(&mut self, seed: [u8; 32]) {
        self.secrets = StdRng::from_seed(seed);
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn connection_count(&self) -> usize {
        self.connections.len()
    }

    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Peers of `room` that publish nothing: the ones that could answer
    /// a publisher (a recorder, a peersrc, a watching browser).
    pub fn receivers_in(&self, room: &str) -> usize {
        self.rooms.get(room).map_or(0, |r| {
            r.members
                .iter()
                .filter_map(|conn| self.peer(*conn))
                .filter(|peer| peer.streams.is_empty())
                .count()
        })
    }

    /// The producer a viewer of `room` would play: `wanted` if it is
    /// there and publishes, else the room's first producer.
    pub fn producer_in(&self, room: &str, wanted: Option<&str>) -> ProducerLookup {
        let members = self
            .rooms
            .get(room)
            .map(|r| r.members.as_slice())
            .unwrap_or_default();
        let mut producers = members.iter().filter_map(|conn| self.peer(*conn));
        match wanted {
            Some(wanted) => match producers.find(|peer| peer.id == wanted) {
                Some(peer) if !peer.streams.is_empty() => ProducerLookup::Found(peer.id.clone()),
                Some(_) => ProducerLookup::NotAProducer,
                None => ProducerLookup::Absent,
            },
            None => producers
                .find(|peer| !peer.streams.is_empty())
                .map_or(ProducerLookup::Absent, |peer| {
                    ProducerLookup::Found(peer.id.clone())
                }),
        }
    }

    /// Whether a peer with this id is connected (in any room or none).
    pub fn has_peer(&self, id: &str) -> bool {
        self.peer_ids.contains_key(id)
    }

    /// Whether peer `id` is in `room`.
    pub fn has_peer_in(&self, room: &str, id: &str) -> bool {
        self.peer_ids
            .get(id)
            .and_then(|conn| self.peer(*conn))
            .is_some_and(|peer| peer.room.as_deref() == Some(room))
    }

    /// Ids of every peer in `room`, in order of joining.
    pub fn peer_ids_in(&self, room: &str) -> Vec<PeerId> {
        self.rooms.get(room).map_or_else(Vec::new, |r| {
            r.members
                .iter()
                .filter_map(|conn| self.peer(*conn))
                .map(|peer| peer.id.clone())
                .collect()
        })
    }

    pub fn room_summaries(&self) -> Vec<RoomSummary> {
        let mut rooms: Vec<RoomSummary> = self
            .rooms
            .iter()
            .map(|(name, room)| RoomSummary {
                room: name.clone(),
                peers: room.members.len(),
                producers: room
                    .members
                    .iter()
                    .filter_map(|conn| self.peer(*conn))
                    .filter(|peer| !peer.streams.is_empty())
                    .map(Peer::info)
                    .collect(),
            })
            .collect();
        rooms.sort_by(|a, b| a.room.cmp(&b.room));
        rooms
    }

    pub fn handle(&mut self, now: Instant, input: Input<'_>, out: &mut Vec<Action>) {
        match input {
            Input::Connected { conn } => {
                self.connections.insert(
                    conn,
                    Connection {
                        peer: None,
                        opened: now,
                        last_seen: now,
                        rate: RateBucket::new(&self.limits, now),
                        detached_until: None,
                        pinged: false,
                        url_token: None,
                        vouched: None,
                    },
                );
            }
            Input::Text { conn, text, len } => {
                let frame = decode_frame(&self.limits, text, len);
                self.handle(now, Input::Frame { conn, frame }, out);
            }
            Input::Frame { conn, frame } => {
                if !self.touch(conn, now) || !self.within_rate(conn, now, out) {
                    return;
                }
                match frame {
                    Frame::Decoded(message) => self.on_message(now, conn, message, out),
                    Frame::Invalid(err) => send(out, conn, err.into_message()),
                    Frame::TooLarge { len } => {
                        let message = format!(
                            "message of {len} bytes exceeds the limit of {} bytes",
                            self.limits.max_message_bytes
                        );
                        send_error(out, conn, ErrorCode::MessageTooLarge, message, None, None);
                    }
                }
            }
            Input::Credential { conn, token } => {
                if let Some(connection) = self.connections.get_mut(&conn) {
                    connection.url_token = Some(token);
                }
            }
            Input::Vouch { conn, grants, room } => {
                if let Some(connection) = self.connections.get_mut(&conn) {
                    connection.vouched = Some(Allowed {
                        grants,
                        rooms: Some(room),
                    });
                }
            }
            Input::Message { conn, message } => {
                if self.touch(conn, now) && self.within_rate(conn, now, out) {
                    self.on_message(now, conn, Inbound::Client(message), out);
                }
            }
            Input::Binary { conn } => {
                if self.touch(conn, now) && self.within_rate(conn, now, out) {
                    let message = "binary frames are not part of the protocol; send JSON text";
                    send_error(
                        out,
                        conn,
                        ErrorCode::BinaryNotSupported,
                        message,
                        None,
                        None,
                    );
                }
            }
            Input::Alive { conn } => {
                self.touch(conn, now);
            }
            Input::Disconnected { conn } => self.forget_connection(conn, "peer-disconnected", out),
            Input::SocketLost { conn } => self.detach(now, conn, out),
            Input::Tick => self.on_tick(now, out),
        }
    }

    fn peer(&self, conn: ConnId) -> Option<&Peer> {
        self.connections.get(&conn)?.peer.as_ref()
    }

    fn peer_mut(&mut self, conn: ConnId) -> Option<&mut Peer> {
        self.connections.get_mut(&conn)?.peer.as_mut()
    }

    fn on_message(
        &mut self,
        now: Instant,
        conn: ConnId,
        message: Inbound<'_>,
        out: &mut Vec<Action>,
    ) {
        let request = message.type_name();
        let session = match &message {
            Inbound::Client(
                ClientMessage::Sdp { session, .. }
                | ClientMessage::Ice { session, .. }
                | ClientMessage::EndSession { session, .. },
            ) => Some(session.clone()),
            _ => None,
        };
        let registered = self.peer(conn).is_some();
        let outcome = match message {
            Inbound::Client(ClientMessage::Hello {
                id,
                meta,
                token,
                resume,
            }) => self.register(now, conn, id, meta, token, resume, out),
            Inbound::Client(ClientMessage::Ping {}) => {
                send(out, conn, ServerMessage::Pong {});
                Ok(())
            }
            other => {
                let registration = if registered {
                    Ok(())
                } else {
                    self.register(now, conn, None, Value::Null, None, None, out)
                };
                registration.and_then(|()| match other {
                    Inbound::Relay(RelayRequest { to, data }) => {
                        self.relay_message(conn, to.as_deref(), data, out)
                    }
                    Inbound::Client(message) => self.on_peer_message(now, conn, message, out),
                })
            }
        };
        if let Err((code, text)) = outcome {
            send_error(out, conn, code, text, Some(request.to_owned()), session);
        }
    }

    fn on_peer_message(
        &mut self,
        now: Instant,
        conn: ConnId,
        message: ClientMessage,
        out: &mut Vec<Action>,
    ) -> Outcome {
        match message {
            ClientMessage::Hello { .. } | ClientMessage::Ping {} => {
                unreachable!("handled before registration")
            }
            ClientMessage::Join {
                room,
                streams,
                meta,
                presence,
            } => self.join(conn, room, streams, meta, presence, out),
            ClientMessage::Update { streams, meta } => self.update(conn, streams, meta, out),
            ClientMessage::Leave {} => self.leave(conn, out),
            ClientMessage::List { room } => self.list(conn, room, out),
            ClientMessage::ListRooms {} => {
                if !self.is_admin(conn) {
                    return Err((
                        ErrorCode::Forbidden,
                        "listing every room needs the admin grant".into(),
                    ));
                }
                send(
                    out,
                    conn,
                    ServerMessage::Rooms {
                        rooms: self.room_summaries(),
                    },
                );
                Ok(())
            }
            ClientMessage::StartSession { peer, wait, offer } => {
                self.start_session(now, conn, peer, wait, offer, out)
            }
            ClientMessage::Sdp { session, sdp } => self.relay_sdp(conn, session, sdp, out),
            ClientMessage::Ice { session, candidate } => {
                self.relay_ice(conn, session, candidate, out)
            }
            ClientMessage::EndSession { session, reason } => {
                self.end_session_by(conn, session, reason, out)
            }
            ClientMessage::Message { to, data } => {
                // Only frames the fast path left aside (a `null` payload...).
                let data = serde_json::value::to_raw_value(&data).map_err(|err| {
                    (
                        ErrorCode::InvalidMessage,
                        format!("invalid \"data\": {err}"),
                    )
                })?;
                self.relay_message(conn, to.as_deref(), &data, out)
            }
        }
    }

    fn register(
        &mut self,
        now: Instant,
        conn: ConnId,
        requested: Option<PeerId>,
        meta: Value,
        token: Option<String>,
        resume: Option<String>,
        out: &mut Vec<Action>,
    ) -> Outcome {
        if let Some(peer) = self.peer(conn) {
            return Err((
                ErrorCode::AlreadyRegistered,
                format!("this connection is already registered as \"{}\"", peer.id),
            ));
        }
        self.check_meta(&meta)?;
        if self.peer_ids.len() >= self.limits.max_peers {
            return Err((
                ErrorCode::ServerFull,
                format!(
                    "the server holds its maximum of {} peers",
                    self.limits.max_peers
                ),
            ));
        }
        let (requested, allowed) = self.identify(now, conn, requested, token)?;
        let id = match requested {
            Some(id) if !protocol::is_valid_name(&id) => {
                return Err((
                    ErrorCode::InvalidName,
                    format!("peer id \"{id}\" is not 1-64 characters of A-Z a-z 0-9 . _ -"),
                ));
            }
            Some(id) if self.peer_ids.contains_key(&id) => {
                if let Some(secret) = resume
                    && self.may_resume(&id, &secret)
                {
                    self.resume(now, conn, &id, allowed, out);
                    return Ok(());
                }
                return Err((
                    ErrorCode::NameTaken,
                    format!("peer id \"{id}\" is already taken"),
                ));
            }
            Some(id) => id,
            None => self.random_peer_id(),
        };
        self.peer_ids.insert(id.clone(), conn);
        let secret = self.secret();
        if let Some(connection) = self.connections.get_mut(&conn) {
            connection.peer = Some(Peer {
                id: id.clone(),
                meta,
                streams: Vec::new(),
                room: None,
                sessions: Vec::new(),
                allowed,
                resume: secret,
            });
        }
        self.welcome(now, conn, id, None, out);
        Ok(())
    }

    fn welcome(
        &self,
        now: Instant,
        conn: ConnId,
        id: PeerId,
        resumed: Option<protocol::Resumed>,
        out: &mut Vec<Action>,
    ) {
        let ice_servers = self.ice_servers_for(now, &id);
        let resume = self.peer(conn).map(|peer| peer.resume.clone());
        let welcome = ServerMessage::Welcome {
            id,
            protocol: protocol::PROTOCOL_VERSION,
            heartbeat_ms: self.limits.heartbeat_interval.as_millis() as u64,
            max_message_bytes: self.limits.max_message_bytes,
            ice_servers,
            resume,
            resumed,
        };
        send(out, conn, welcome);
    }

    fn random_id(&mut self, prefix: &str, len: usize) -> String {
        const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
        let mut id = String::with_capacity(prefix.len() + len);
        id.push_str(prefix);
        for _ in 0..len {
            id.push(ALPHABET[self.rng.random_range(0..ALPHABET.len())] as char);
        }
        id
    }

    fn random_peer_id(&mut self) -> PeerId {
        loop {
            let id = self.random_id("peer-", 8);
            if !self.peer_ids.contains_key(&id) {
                return id;
            }
        }
    }
}

fn send(out: &mut Vec<Action>, conn: ConnId, message: ServerMessage) {
    out.push(Action::Send {
        to: vec![conn],
        message: Arc::new(message),
    });
}

fn send_error(
    out: &mut Vec<Action>,
    conn: ConnId,
    code: ErrorCode,
    message: impl Into<String>,
    request: Option<String>,
    session: Option<SessionId>,
) {
    send(
        out,
        conn,
        ServerMessage::Error {
            code,
            message: message.into(),
            request,
            session,
        },
    );
}

mod access;
mod liveness;
mod resume;
mod rooms;
mod sessions;

pub use access::Access;
pub use access::Allowed;
pub(crate) use access::Grant;
pub use liveness::{RateBucket, RateVerdict, rate_limited_message};

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "core_access_tests.rs"]
mod access_tests;

#[cfg(test)]
#[path = "core_limits_tests.rs"]
mod limits_tests;

#[cfg(test)]
#[path = "core_resume_tests.rs"]
mod resume_tests;
