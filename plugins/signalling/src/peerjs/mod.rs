//! The PeerServer protocol of the `peerjs` npm client (npm `peer` 1.0.2 is
//! the reference server) as a pure state machine: no sockets, no clock.
//!
//! Each PeerJS client is an ordinary peer of the [`SignallingCore`]: its
//! socket's `key` is the room it joins, its `id` its peer id, so limits,
//! recorders and the room pages see it like any other peer, and a native
//! peer of that room can be called by PeerJS clients and call them.
//! What PeerJS says maps onto core sessions:
//! - `OFFER {dst, payload: {sdp, type, connectionId, ...}}` starts a core
//!   session with `dst` carrying the offer; the rest of the payload (label,
//!   serialization, metadata) stays here and goes with the `OFFER` to a
//!   PeerJS callee;
//! - `ANSWER` and `CANDIDATE` are the session's `sdp` and `ice`, found by
//!   the pair of peers and the `connectionId`;
//! - a message for an id not (yet) in the room is held for it, and its
//!   sender gets `EXPIRE` when it does not come within `expire_timeout`;
//! - `HEARTBEAT` (or any frame) keeps a socket alive; one silent for
//!   `alive_timeout` is closed and its peer leaves the room.
//!
//! The server sets `src` on everything it relays. The shell (`http.rs`)
//! turns sockets and HTTP requests into calls here; the hub feeds what the
//! core sends to this adapter's peers through [`Adapter::core_sent`].

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::adapter::{Adapter, AdapterAction, RequestId, SocketId};
use crate::core::{ConnId, SignallingCore};
use crate::protocol::{
    self, ClientMessage, ErrorCode, IceCandidate, PeerId, SdpKind, ServerMessage,
    SessionDescription, SessionId,
};

#[cfg(feature = "server")]
pub mod http;

mod from_core;
#[cfg(test)]
mod tests;

/// The reference server's words, which PeerJS apps show to people.
pub const INVALID_KEY: &str = "Invalid key provided";
pub const INVALID_WS_PARAMETERS: &str = "No id, token, or key supplied to websocket server";
pub const CONNECTION_LIMIT_EXCEED: &str = "Server has reached its concurrent user limit";
pub const ID_TAKEN: &str = "ID is taken";

/// WebSocket close code of a socket refused or dropped by the server
/// (the reference server closes without one; any normal close will do).
const CLOSE_NORMAL: u16 = 1000;

#[derive(Debug, Clone)]
pub struct PeerJsConfig {
    /// Prefix of every PeerServer route, starting and ending with `/`:
    /// `{path}{key}/id`, `{path}{key}/peers`, `{path}peerjs`.
    pub path: String,
    /// Keys clients may connect with; each is a room of the core.
    pub keys: Vec<String>,
    /// How long a message for a peer that is not connected is held before
    /// its sender gets `EXPIRE`.
    pub expire_timeout: Duration,
    /// A socket that sends nothing for this long is closed.
    pub alive_timeout: Duration,
    /// Most PeerJS clients connected at once.
    pub concurrent_limit: usize,
    /// `GET {path}{key}/peers` lists the key's peers (401 otherwise).
    pub allow_discovery: bool,
    /// Messages held for one absent peer; more are dropped.
    pub max_held_per_peer: usize,
    /// Absent peers messages are held for; beyond, senders get `EXPIRE` at once.
    pub max_held_peers: usize,
    /// Largest frame accepted from a client, in bytes; larger ones are dropped.
    pub max_message_bytes: usize,
    /// Bytes of frames held for absent peers from one client; beyond, it
    /// gets `ERROR` (`held-budget-exceeded: ...`) and is closed.
    pub max_held_bytes_per_sender: usize,
    /// Bytes of frames held for absent peers from all clients; beyond, a
    /// sender gets `EXPIRE` for the frame (the peer is unavailable to it),
    /// not `ERROR`, which would end a client that did nothing wrong.
    pub max_held_bytes: usize,
}

impl Default for PeerJsConfig {
    fn default() -> Self {
        // The reference server's defaults (npm `peer` 1.0.2), so that a
        // stock client given only host and port works.
        PeerJsConfig {
            path: "/".into(),
            keys: vec!["peerjs".into()],
            expire_timeout: Duration::from_millis(5000),
            alive_timeout: Duration::from_millis(90_000),
            concurrent_limit: 5000,
            allow_discovery: false,
            max_held_per_peer: 256,
            max_held_peers: 10_000,
            max_message_bytes: 64 * 1024,
            // A call is an OFFER (a few KiB of SDP) and some candidates;
            // 1 MiB holds dozens of calls to peers not there yet.
            max_held_bytes_per_sender: 1 << 20,
            max_held_bytes: 64 << 20,
        }
    }
}

impl PeerJsConfig {
    /// `path` with the slashes PeerJS puts around it (`/`, `/app/`).
    pub fn normalized_path(&self) -> String {
        let trimmed = self.path.trim_matches('/');
        if trimmed.is_empty() {
            "/".into()
        } else {
            format!("/{trimmed}/")
        }
    }
}

/// The query of the PeerJS WebSocket: `?key=K&id=ID&token=T&version=V`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Connect<'a> {
    pub key: Option<&'a str>,
    pub id: Option<&'a str>,
    pub token: Option<&'a str>,
}

/// One frame from a client, as far as the server reads it.
#[derive(Debug, Clone, Deserialize)]
pub struct Frame {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    dst: Option<String>,
    #[serde(default)]
    payload: Option<Value>,
}

/// A text frame from a PeerJS socket, decoded by the socket's task before
/// it takes the hub's lock ([`decode`]).
#[derive(Debug)]
pub enum Inbound {
    /// A frame, and its size in bytes (what holding it costs).
    Frame(Frame, usize),
    /// Larger than [`PeerJsConfig::max_message_bytes`].
    TooLarge(usize),
    /// Not a PeerJS frame: the JSON error.
    Unreadable(String),
}

/// Decodes a text frame of a PeerJS socket. Pure and lock-free.
pub fn decode(max_message_bytes: usize, text: &str) -> Inbound {
    if text.len() > max_message_bytes {
        return Inbound::TooLarge(text.len());
    }
    match serde_json::from_str(text) {
        Ok(frame) => Inbound::Frame(frame, text.len()),
        Err(err) => Inbound::Unreadable(err.to_string()),
    }
}

/// The `ERROR` a client gets when it sends faster than the rate limit
/// (the core's [`Limits::message_rate`](crate::core::Limits)): `msg`
/// starts with `rate-limited`, as our protocol's error code.
pub fn rate_limited_error(limits: &crate::core::Limits) -> String {
    let message = format!(
        "rate-limited: {}",
        crate::core::rate_limited_message(limits)
    );
    json!({"type": "ERROR", "payload": {"msg": message}}).to_string()
}

/// An OFFER on its way into a core session, until the core names it.
struct Starting {
    dst: PeerId,
    connection_id: String,
    payload: Value,
    /// ANSWERs and CANDIDATEs for this connection that came before the
    /// core named its session (held messages are released all at once).
    early: Vec<Frame>,
}

/// A core session of one of our clients, by the PeerJS names of it.
#[derive(Debug, Clone)]
struct ClientLink {
    other: PeerId,
    connection_id: String,
    session: SessionId,
}

struct Client {
    id: PeerId,
    room: Arc<str>,
    token: String,
    socket: SocketId,
    last_seen: Instant,
    /// OPEN sent: the core took the peer into its room.
    open: bool,
    starting: VecDeque<Starting>,
    links: Vec<ClientLink>,
}

impl Client {
    fn link(&self, other: &str, connection_id: &str) -> Option<&ClientLink> {
        self.links
            .iter()
            .find(|l| l.other == other && l.connection_id == connection_id)
    }
}

/// What the OFFER said besides its SDP, for a PeerJS callee.
struct Offered {
    connection_id: String,
    /// `media` or `data`.
    kind: String,
    /// label, reliable, serialization, metadata...: passed on as they came.
    extras: Map<String, Value>,
    /// How many of our clients are parties of the session (1 or 2).
    parties: u8,
}

/// Messages held for a peer not (yet) in its room.
struct Held {
    since: Instant,
    /// (sender's connection, sender's id, the frame, its size in bytes)
    frames: Vec<(ConnId, PeerId, Frame, usize)>,
}

pub struct PeerJsAdapter {
    config: PeerJsConfig,
    clients: HashMap<ConnId, Client>,
    by_socket: HashMap<SocketId, ConnId>,
    by_id: HashMap<PeerId, ConnId>,
    offers: HashMap<SessionId, Offered>,
    held: HashMap<(Arc<str>, PeerId), Held>,
    /// Bytes of the frames in `held`, in all and by sender (connections
    /// holding none are not listed).
    held_bytes: usize,
    held_bytes_by_sender: HashMap<ConnId, usize>,
    /// Per key, the one client that joined its room with presence: through
    /// it the adapter learns that a native peer messages are held for has
    /// come. Every other client joins without presence, so a join costs
    /// O(1), not O(clients of the key). Gone with that client; the next
    /// client to connect takes its place.
    watchers: HashMap<Arc<str>, ConnId>,
    /// Keys as rooms, shared by their clients.
    rooms: Vec<Arc<str>>,
    /// A CSPRNG: ids handed out by `GET /id` must not be guessable.
    rng: StdRng,
}

impl PeerJsAdapter {
    /// `rng` must be seeded from the operating system outside tests.
    pub fn new(config: PeerJsConfig, rng: StdRng) -> Self {
        let rooms = config.keys.iter().map(|k| Arc::from(k.as_str())).collect();
        PeerJsAdapter {
            config,
            clients: HashMap::new(),
            by_socket: HashMap::new(),
            by_id: HashMap::new(),
            offers: HashMap::new(),
            held: HashMap::new(),
            held_bytes: 0,
            held_bytes_by_sender: HashMap::new(),
            watchers: HashMap::new(),
            rooms,
            rng,
        }
    }

    pub fn with_os_seed(config: PeerJsConfig) -> Self {
        Self::new(config, StdRng::from_os_rng())
    }

    pub fn config(&self) -> &PeerJsConfig {
        &self.config
    }

    pub fn client_count(&self) -> usize {
        self.clients.len()
    }

    /// `GET {path}{key}/id`: a random id (a UUID, as the reference server
    /// gives) that no peer has. Any key, as the reference server does.
    pub fn new_id(&mut self, core: &SignallingCore) -> String {
        loop {
            let mut bytes = [0u8; 16];
            self.rng.fill_bytes(&mut bytes);
            bytes[6] = (bytes[6] & 0x0f) | 0x40;
            bytes[8] = (bytes[8] & 0x3f) | 0x80;
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            let id = format!(
                "{}-{}-{}-{}-{}",
                &hex[0..8],
                &hex[8..12],
                &hex[12..16],
                &hex[16..20],
                &hex[20..32]
            );
            if !core.has_peer(&id) {
                return id;
            }
        }
    }

    /// `GET {path}{key}/peers`: the ids of the key's peers, or `None`
    /// when discovery is off (401, as the reference server answers).
    pub fn peers(&self, core: &SignallingCore, key: &str) -> Option<Vec<PeerId>> {
        if !self.config.allow_discovery {
            return None;
        }
        Some(match self.room(key) {
            Some(room) => core.peer_ids_in(&room),
            None => Vec::new(),
        })
    }

    fn room(&self, key: &str) -> Option<Arc<str>> {
        self.rooms.iter().find(|r| &***r == key).cloned()
    }

    /// A WebSocket arrived on `{path}peerjs` and was attached as `socket`;
    /// `conn` is a free connection id for its peer.
    pub fn connect(
        &mut self,
        now: Instant,
        core: &SignallingCore,
        socket: SocketId,
        query: Connect<'_>,
        conn: ConnId,
        out: &mut Vec<AdapterAction>,
    ) {
        let (Some(key), Some(id), Some(token)) = (
            query.key.filter(|k| !k.is_empty()),
            query.id.filter(|i| !i.is_empty()),
            query.token.filter(|t| !t.is_empty()),
        ) else {
            return refuse(out, socket, "ERROR", INVALID_WS_PARAMETERS);
        };
        let Some(room) = self.room(key) else {
            return refuse(out, socket, "ERROR", INVALID_KEY);
        };
        if let Some(&existing) = self.by_id.get(id) {
            let client = self.clients.get_mut(&existing).expect("indexed");
            if client.token != token || *client.room != *room {
                return refuse(out, socket, "ID-TAKEN", ID_TAKEN);
            }
            // The same client again (a reconnect before its old socket was
            // noticed gone): the new socket replaces the old, without OPEN,
            // as the reference server does.
            let old = std::mem::replace(&mut client.socket, socket);
            client.last_seen = now;
            self.by_socket.remove(&old);
            self.by_socket.insert(socket, existing);
            out.push(AdapterAction::CloseSocket {
                socket: old,
                code: CLOSE_NORMAL,
                reason: "replaced by a new connection of the same peer".into(),
            });
            return;
        }
        if core.has_peer(id) {
            return refuse(out, socket, "ID-TAKEN", ID_TAKEN);
        }
        if self.clients.len() >= self.config.concurrent_limit {
            return refuse(out, socket, "ERROR", CONNECTION_LIMIT_EXCEED);
        }
        if !protocol::is_valid_name(id) {
            let message = format!(
                "peer id \"{id}\" cannot be used here: ids are 1-64 characters of \
                 A-Z a-z 0-9 . _ -"
            );
            return refuse(out, socket, "ERROR", &message);
        }
        self.clients.insert(
            conn,
            Client {
                id: id.to_owned(),
                room: room.clone(),
                token: token.to_owned(),
                socket,
                last_seen: now,
                open: false,
                starting: VecDeque::new(),
                links: Vec::new(),
            },
        );
        self.by_socket.insert(socket, conn);
        self.by_id.insert(id.to_owned(), conn);
        // OPEN goes out once the core has taken the peer into its room
        // (see `on_core_message`), within this same call.
        out.push(AdapterAction::Connect { conn });
        out.push(AdapterAction::ToCore {
            conn,
            message: ClientMessage::Hello {
                id: Some(id.to_owned()),
                meta: json!({"via": "peerjs"}),
                // PeerJS's own `token` (a client's random secret for
                // re-attaching) carries ours when the server requires one.
                token: core.requires_tokens().then(|| token.to_owned()),
                resume: None,
            },
        });
        // PeerJS has no presence; our own clients release what is held
        // for them on their `joined`, and one watcher per key sees native
        // peers come (`watchers`).
        let watch = !self.watchers.contains_key(&room);
        if watch {
            self.watchers.insert(room.clone(), conn);
        }
        out.push(AdapterAction::ToCore {
            conn,
            message: ClientMessage::Join {
                room: room.to_string(),
                streams: Vec::new(),
                meta: Value::Null,
                presence: watch,
            },
        });
    }

    /// A text frame from `socket`, decoded by its task ([`decode`]).
    pub fn frame(
        &mut self,
        now: Instant,
        core: &SignallingCore,
        socket: SocketId,
        inbound: Inbound,
        out: &mut Vec<AdapterAction>,
    ) {
        let Some(&conn) = self.by_socket.get(&socket) else {
            return;
        };
        let client = self.clients.get_mut(&conn).expect("indexed");
        client.last_seen = now;
        // The reference server ignores what it cannot read; an ERROR would
        // make the client give up its id.
        let (frame, size) = match inbound {
            Inbound::Frame(frame, size) => (frame, size),
            Inbound::TooLarge(len) => {
                tracing::debug!(id = client.id, len, "PeerJS frame too large");
                return;
            }
            Inbound::Unreadable(err) => {
                tracing::debug!(id = client.id, err, "unreadable PeerJS frame");
                return;
            }
        };
        match (frame.kind.as_str(), frame.dst.clone()) {
            ("HEARTBEAT", _) => {}
            // A goodbye to the server.
            ("LEAVE", None) => self.drop_client(conn, "left", out),
            ("OFFER" | "ANSWER" | "CANDIDATE" | "LEAVE", Some(dst)) => {
                let room = client.room.clone();
                if core.has_peer_in(&room, &dst) {
                    let src = client.id.clone();
                    self.relay(conn, &src, &dst, frame, out);
                } else if frame.kind != "LEAVE" {
                    let src = client.id.clone();
                    self.hold(now, conn, src, room, dst, (frame, size), out);
                }
            }
            (other, _) => tracing::debug!(kind = other, "PeerJS frame of no use to the server"),
        }
    }

    /// The socket's task ended (closed by the client, by the network, or
    /// by us).
    pub fn socket_closed(&mut self, socket: SocketId, out: &mut Vec<AdapterAction>) {
        if let Some(&conn) = self.by_socket.get(&socket) {
            self.forget(conn);
            out.push(AdapterAction::Disconnect { conn });
        }
    }

    /// Holds `frame` for `dst`, absent from `room`.
    #[allow(clippy::too_many_arguments)]
    fn hold(
        &mut self,
        now: Instant,
        conn: ConnId,
        src: PeerId,
        room: Arc<str>,
        dst: PeerId,
        (frame, size): (Frame, usize),
        out: &mut Vec<AdapterAction>,
    ) {
        let key = (room, dst);
        let sender_bytes = self.held_bytes_by_sender.get(&conn).copied().unwrap_or(0);
        if sender_bytes + size > self.config.max_held_bytes_per_sender {
            // Only a client calling a great many absent peers at once gets
            // here: it is told why, and closed (as PeerJS clients end
            // themselves on ERROR anyway).
            let message = format!(
                "held-budget-exceeded: {sender_bytes} bytes of your messages already wait for \
                 peers that are not connected (at most {} bytes); this {size}-byte {} to \
                 \"{}\" is dropped",
                self.config.max_held_bytes_per_sender, frame.kind, key.1
            );
            tracing::debug!(src, message, "PeerJS client over its held budget");
            let socket = self.clients[&conn].socket;
            refuse(out, socket, "ERROR", &message);
            self.forget(conn);
            out.push(AdapterAction::Disconnect { conn });
            return;
        }
        let over_all = self.held_bytes + size > self.config.max_held_bytes;
        if over_all
            || (!self.held.contains_key(&key) && self.held.len() >= self.config.max_held_peers)
        {
            if over_all {
                tracing::debug!(
                    src,
                    held = self.held_bytes,
                    "PeerJS held messages at their budget: EXPIRE"
                );
            }
            let socket = self.clients[&conn].socket;
            write(
                out,
                socket,
                json!({"type": "EXPIRE", "src": key.1, "dst": src}),
            );
            return;
        }
        let held = self.held.entry(key).or_insert_with(|| Held {
            since: now,
            frames: Vec::new(),
        });
        if held.frames.len() < self.config.max_held_per_peer {
            held.frames.push((conn, src, frame, size));
            self.held_bytes += size;
            *self.held_bytes_by_sender.entry(conn).or_default() += size;
        }
    }

    /// Takes frames that leave `held` off the byte counts.
    fn unhold(&mut self, frames: &[(ConnId, PeerId, Frame, usize)]) {
        for (conn, _, _, size) in frames {
            self.held_bytes -= size;
            if let Some(bytes) = self.held_bytes_by_sender.get_mut(conn) {
                *bytes -= size;
                if *bytes == 0 {
                    self.held_bytes_by_sender.remove(conn);
                }
            }
        }
    }

    /// Bytes of the frames held for absent peers (all, and from `conn`).
    pub fn held_bytes(&self, conn: Option<ConnId>) -> usize {
        match conn {
            None => self.held_bytes,
            Some(conn) => self.held_bytes_by_sender.get(&conn).copied().unwrap_or(0),
        }
    }

    /// Delivers what was held for `id`, now in `room`.
    fn release(&mut self, room: &Arc<str>, id: &str, out: &mut Vec<AdapterAction>) {
        let Some(held) = self.held.remove(&(room.clone(), id.to_owned())) else {
            return;
        };
        self.unhold(&held.frames);
        for (conn, src, frame, _) in held.frames {
            if self.clients.get(&conn).is_some_and(|c| c.id == src) {
                self.relay(conn, &src, id, frame, out);
            }
        }
    }

    /// `frame` from our client `conn` (`src`) to `dst`, in its room.
    fn relay(
        &mut self,
        conn: ConnId,
        src: &str,
        dst: &str,
        frame: Frame,
        out: &mut Vec<AdapterAction>,
    ) {
        let payload = frame.payload.unwrap_or(Value::Null);
        let connection_id = payload
            .get("connectionId")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        match frame.kind.as_str() {
            "OFFER" => self.start(conn, dst, connection_id, payload, out),
            "ANSWER" | "CANDIDATE" => {
                let client = self.clients.get_mut(&conn).expect("ours");
                let Some(session) = client.link(dst, &connection_id).map(|l| l.session.clone())
                else {
                    if let Some(starting) = client
                        .starting
                        .iter_mut()
                        .find(|s| s.dst == dst && s.connection_id == connection_id)
                    {
                        starting.early.push(Frame {
                            kind: frame.kind,
                            dst: Some(dst.to_owned()),
                            payload: Some(payload),
                        });
                    } else {
                        tracing::debug!(
                            src,
                            dst,
                            connection_id,
                            "PeerJS message for no connection"
                        );
                    }
                    return;
                };
                if let Some(message) = session_message(&frame.kind, &payload, session) {
                    out.push(AdapterAction::ToCore { conn, message });
                }
            }
            "LEAVE" => {
                // `src` closed every connection with `dst`: their sessions
                // end (a PeerJS `dst` is told LEAVE as they do); with none,
                // a PeerJS `dst` still hears it, as the reference relays it.
                let client = self.clients.get_mut(&conn).expect("ours");
                let (ended, kept): (Vec<ClientLink>, Vec<ClientLink>) =
                    client.links.drain(..).partition(|l| l.other == dst);
                client.links = kept;
                if ended.is_empty()
                    && let Some(other) = self.by_id.get(dst).and_then(|c| self.clients.get(c))
                {
                    write(
                        out,
                        other.socket,
                        json!({"type": "LEAVE", "src": src, "dst": dst}),
                    );
                }
                for link in ended {
                    self.unlink(&link.session);
                    out.push(AdapterAction::ToCore {
                        conn,
                        message: ClientMessage::EndSession {
                            session: link.session,
                            reason: Some("closed".into()),
                        },
                    });
                }
            }
            _ => {}
        }
    }

    /// An OFFER: a new core session with `dst` carrying it.
    fn start(
        &mut self,
        conn: ConnId,
        dst: &str,
        connection_id: String,
        payload: Value,
        out: &mut Vec<AdapterAction>,
    ) {
        let Some(offer) = description(&payload, SdpKind::Offer) else {
            tracing::debug!(dst, "PeerJS OFFER without an SDP offer");
            return;
        };
        if connection_id.is_empty() {
            return;
        }
        let client = self.clients.get_mut(&conn).expect("ours");
        // PeerJS replaces a connection whose id is offered again.
        if let Some(index) = client
            .links
            .iter()
            .position(|l| l.other == dst && l.connection_id == connection_id)
        {
            let old = client.links.remove(index);
            self.unlink(&old.session);
            out.push(AdapterAction::ToCore {
                conn,
                message: ClientMessage::EndSession {
                    session: old.session,
                    reason: Some("offered again".into()),
                },
            });
        }
        let client = self.clients.get_mut(&conn).expect("ours");
        // The payload's other fields wait for the core to name the
        // session (see SessionStarted).
        client.starting.push_back(Starting {
            dst: dst.to_owned(),
            connection_id,
            payload,
            early: Vec::new(),
        });
        out.push(AdapterAction::ToCore {
            conn,
            message: ClientMessage::StartSession {
                peer: dst.to_owned(),
                wait: false,
                offer: Some(offer),
            },
        });
    }
}

/// Refuses a socket the way the reference server does: one message, then close.
fn refuse(out: &mut Vec<AdapterAction>, socket: SocketId, kind: &str, message: &str) {
    write(
        out,
        socket,
        json!({"type": kind, "payload": {"msg": message}}),
    );
    out.push(AdapterAction::CloseSocket {
        socket,
        code: CLOSE_NORMAL,
        reason: message.chars().take(120).collect(),
    });
}

fn write(out: &mut Vec<AdapterAction>, socket: SocketId, message: Value) {
    out.push(AdapterAction::Write {
        socket,
        text: message.to_string(),
    });
}

/// An ANSWER's or CANDIDATE's payload as a message of core session `session`.
fn session_message(kind: &str, payload: &Value, session: SessionId) -> Option<ClientMessage> {
    if kind == "ANSWER" {
        let sdp = description(payload, SdpKind::Answer)?;
        Some(ClientMessage::Sdp { session, sdp })
    } else {
        Some(ClientMessage::Ice {
            session,
            candidate: Some(candidate(payload)?),
        })
    }
}

/// `payload.sdp` when it is a description of `kind`.
fn description(payload: &Value, kind: SdpKind) -> Option<SessionDescription> {
    let sdp: SessionDescription = serde_json::from_value(payload.get("sdp")?.clone()).ok()?;
    (sdp.kind == kind).then_some(sdp)
}

/// `payload.candidate`, a browser's RTCIceCandidate as JSON.
fn candidate(payload: &Value) -> Option<IceCandidate> {
    let candidate: IceCandidate = serde_json::from_value(payload.get("candidate")?.clone()).ok()?;
    (!candidate.candidate.is_empty()).then_some(candidate)
}

/// `len` characters of a 32-letter alphabet, for connection ids.
fn random_token(rng: &mut StdRng, len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}
