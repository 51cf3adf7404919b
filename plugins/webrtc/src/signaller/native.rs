//! Our own WebSocket protocol (docs/protocol.md), against a remote
//! `peer serve` or a server embedded in the element.
//!
//! Who offers: a producer offers unless the viewer put its offer in
//! `start-session` (browsers, WHEP players); a viewer waits for the
//! producer's offer, or with `viewer-offer` makes one itself and sends it
//! in `start-session`. In that case the element's session has an id of our
//! own until the server names the session; ids are translated both ways.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use super::reconnect::{Reconnected, reconnect};
use peer_signalling::client::{self, ClientEvent, ClientSender, RoomAddress};
use peer_signalling::protocol::{
    ClientMessage, ErrorCode, IceCandidate, IceServerConfig, PeerInfo, SdpKind, ServerMessage,
};
use peer_signalling::server::{self, RunningServer, ServerConfig};
use serde_json::Value;
use tokio::time::Instant;

use super::{
    CommandSource, EventSink, Negotiation, Role, SignallerCommand, SignallerConfig, SignallerError,
    SignallerEvent,
};

enum Address {
    Embedded { port: u16 },
    Remote(RoomAddress),
}

pub fn start(
    config: SignallerConfig,
    commands: CommandSource,
    events: EventSink,
) -> Result<(), SignallerError> {
    let address =
        match &config.uri {
            None => Address::Embedded {
                port: config.embedded_port,
            },
            Some(uri) => Address::Remote(RoomAddress::parse(uri).map_err(|reason| {
                SignallerError::BadUri {
                    uri: uri.clone(),
                    reason,
                }
            })?),
        };
    tokio::spawn(run(config, address, commands, events));
    Ok(())
}

/// Starts the embedded server; the default port falls back to the next few
/// when taken, so two gst-launch lines on one machine both work.
async fn start_embedded(port: u16) -> Result<RunningServer, SignallerError> {
    let candidates: Vec<u16> = if port == server::DEFAULT_PORT {
        (port..port + 10).collect()
    } else {
        vec![port]
    };
    let mut last_error = String::new();
    for candidate in candidates {
        let config = ServerConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], candidate)),
            ..ServerConfig::default()
        };
        match server::start(config).await {
            Ok(running) => return Ok(running),
            Err(err) => last_error = err.to_string(),
        }
    }
    Err(SignallerError::EmbeddedServer(last_error))
}

/// A session we offer in before the server has named it (viewer-offer).
const PROVISIONAL: &str = "pending-";

struct Connection {
    client: ClientSender,
    role: Role,
    viewer_offer: bool,
    room: String,
    http_url: String,
    embedded: bool,
    peer_id: String,
    registered: bool,
    /// When the server was lost, while reconnecting and re-registering.
    lost_at: Option<Instant>,
    /// The next wait between reconnection attempts.
    backoff: client::Backoff,
    /// The server's secret for taking our peer back after a lost connection.
    resume: Option<String>,
    /// Consumer: the producer chosen and the session with it.
    producer: Option<String>,
    session: Option<String>,
    producer_deadline: Option<Instant>,
    known_producers: Vec<String>,
    /// Viewer-offer: our id for the session → the server's, once known.
    named: HashMap<String, String>,
    /// Viewer-offer: candidates gathered before the server named the session.
    held_candidates: Vec<Option<IceCandidate>>,
    /// STUN/TURN servers from `welcome`, in webrtcbin's form, for every
    /// session.
    ice_servers: Vec<String>,
    /// Until when a first `hello` refused with `name-taken` is sent again
    /// (see [`NAME_HELD_GRACE`]).
    name_grace_until: Instant,
    /// When to send the refused `hello` again.
    hello_again_at: Option<Instant>,
}

/// A peer id may still be held by our own previous connection: a pipeline
/// restarted at once with the same `peer-id` says hello before the server
/// has seen the old connection close (seen in a test restarting one). A
/// first `hello` refused with `name-taken` is sent again, with backoff,
/// for this long before the refusal is final: less than the server's
/// hello deadline (10 s), which closes a connection still unregistered.
/// An id held for a dead process's resume (10 s) is not waited out.
const NAME_HELD_GRACE: Duration = Duration::from_secs(8);

async fn run(
    config: SignallerConfig,
    address: Address,
    mut commands: CommandSource,
    events: EventSink,
) {
    let (embedded_server, room_address) = match address {
        Address::Embedded { port } => match start_embedded(port).await {
            Ok(running) => {
                let address = RoomAddress::parse(&format!("ws://{}/default", running.local_addr()))
                    .expect("the embedded server's address parses");
                (Some(running), address)
            }
            Err(err) => {
                let _ = events.send(SignallerEvent::Error(err));
                return;
            }
        },
        Address::Remote(address) => (None, address),
    };

    let (client, mut incoming) =
        match client::connect_trusting(&room_address.ws_url, config.tls_ca_pem.as_deref()).await {
            Ok(connected) => connected,
            Err(err) => {
                let _ = events.send(SignallerEvent::Error(SignallerError::Connect(
                    err.to_string(),
                )));
                return;
            }
        };
    let token = config
        .token
        .clone()
        .or_else(|| query_value(&config, "token"));
    let _ = client.send(ClientMessage::Hello {
        id: config.peer_id.clone(),
        meta: config.meta.clone(),
        token: token.clone(),
        resume: None,
    });

    let producer_deadline = match &config.role {
        Role::Consumer {
            producer: Some(_),
            producer_timeout,
        } if !producer_timeout.is_zero() => Some(Instant::now() + *producer_timeout),
        _ => None,
    };
    let mut connection = Connection {
        client,
        role: config.role.clone(),
        viewer_offer: config.protocol.viewer_offer || query_flag(&config, "viewer-offer"),
        room: room_address.room.clone(),
        http_url: room_address.http_url.clone(),
        embedded: embedded_server.is_some(),
        peer_id: String::new(),
        registered: false,
        lost_at: None,
        backoff: client::Backoff::default(),
        resume: None,
        producer: None,
        session: None,
        producer_deadline,
        known_producers: Vec::new(),
        named: HashMap::new(),
        held_candidates: Vec::new(),
        ice_servers: Vec::new(),
        name_grace_until: Instant::now() + NAME_HELD_GRACE,
        hello_again_at: None,
    };

    loop {
        let deadline = connection.producer_deadline;
        let hello_again_at = connection.hello_again_at;
        let lost = tokio::select! {
            _ = sleep_until_optional(hello_again_at) => {
                connection.hello_again_at = None;
                let _ = connection.client.send(ClientMessage::Hello {
                    id: config.peer_id.clone(),
                    meta: config.meta.clone(),
                    token: token.clone(),
                    resume: None,
                });
                None
            }
            command = commands.recv() => match command {
                Some(command) => {
                    connection.on_command(command);
                    None
                }
                // The element dropped its handle: it is stopping.
                None => break,
            },
            event = incoming.recv() => match event {
                Some(ClientEvent::Message(message)) => {
                    if let Some(reason) = connection.refused_while_resuming(&message) {
                        Some(reason)
                    } else if connection.name_held_at_first_hello(&message) {
                        let wait = connection.backoff.next_wait();
                        tracing::debug!(?wait, "peer id taken at the first hello; saying hello again");
                        connection.hello_again_at = Some(Instant::now() + wait);
                        None
                    } else {
                        let mut out = Vec::new();
                        connection.on_server_message(message, &config, &mut out);
                        let fatal = out.iter().any(|event| matches!(event, SignallerEvent::Error(_)));
                        for event in out {
                            let _ = events.send(event);
                        }
                        if fatal {
                            break;
                        }
                        None
                    }
                }
                Some(ClientEvent::Undecodable(text)) => {
                    let _ = events.send(SignallerEvent::Warning(SignallerError::Protocol(format!(
                        "undecodable message from the server: {text}"
                    ))));
                    None
                }
                Some(ClientEvent::Closed(reason)) => Some(reason),
                None => Some("the connection ended".to_owned()),
            },
            _ = sleep_until_optional(deadline) => {
                connection.producer_deadline = None;
                let others = if connection.known_producers.is_empty() {
                    "none".to_owned()
                } else {
                    connection.known_producers.join(", ")
                };
                let _ = events.send(SignallerEvent::Error(SignallerError::ProducerAbsent {
                    wanted: connection.wanted_producer().unwrap_or_default(),
                    room: connection.room.clone(),
                    others,
                }));
                break;
            }
        };
        let Some(reason) = lost else {
            continue;
        };
        // An embedded server cannot go away without us; a server that
        // never took us is a configuration error, not an outage.
        let timeout = config.protocol.reconnect_timeout;
        let ever_registered = connection.registered || connection.lost_at.is_some();
        if connection.embedded || !ever_registered || timeout.is_zero() {
            let _ = events.send(SignallerEvent::Error(SignallerError::ConnectionLost(
                reason,
            )));
            break;
        }
        // Lost again before registering: wait before the next attempt.
        let again = connection.lost_at.is_some();
        let lost_at = *connection.lost_at.get_or_insert_with(|| {
            let _ = events.send(SignallerEvent::SignallingLost {
                reason: reason.clone(),
            });
            Instant::now()
        });
        connection.registered = false;
        let deadline = lost_at + timeout;
        let url = &room_address.ws_url;
        let ca = config.tls_ca_pem.as_deref();
        match reconnect(
            || client::connect_trusting(url, ca),
            &mut commands,
            deadline,
            &mut connection.backoff,
            again,
        )
        .await
        {
            Reconnected::Connected((client, receiver)) => {
                incoming = receiver;
                connection.client = client;
                // Our id back: the token's subject, or the id we had.
                // The same server resumes us (room and sessions intact);
                // a restarted one knows nothing and we join again.
                let _ = connection.client.send(ClientMessage::Hello {
                    id: Some(connection.peer_id.clone()),
                    meta: config.meta.clone(),
                    token: token.clone(),
                    resume: connection.resume.clone(),
                });
            }
            Reconnected::GaveUp => {
                let _ = events.send(SignallerEvent::Error(SignallerError::ConnectionLost(
                    format!("{reason}; no server to reconnect to for {timeout:?}"),
                )));
                break;
            }
            Reconnected::Stopping => break,
        }
    }
    if let Some(server) = embedded_server {
        server.stop().await;
    }
}

/// The value of `name` in the uri's query string.
fn query_value(config: &SignallerConfig, name: &str) -> Option<String> {
    let url = url::Url::parse(config.uri.as_deref()?).ok()?;
    url.query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// `name=true` (or `name=1`, or a bare `name`) in the uri's query string.
fn query_flag(config: &SignallerConfig, name: &str) -> bool {
    let Some(uri) = config.uri.as_deref() else {
        return false;
    };
    url::Url::parse(uri).is_ok_and(|url| {
        url.query_pairs()
            .any(|(key, value)| key == name && matches!(&*value, "" | "1" | "true" | "yes"))
    })
}

async fn sleep_until_optional(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

impl Connection {
    fn send(&self, message: ClientMessage) {
        let _ = self.client.send(message);
    }

    /// While re-registering after a reconnect, a refused hello is retried
    /// rather than fatal: the old connection may still hold our id until
    /// the server notices it is gone. The reason, for the retry.
    fn refused_while_resuming(&self, message: &ServerMessage) -> Option<String> {
        match message {
            ServerMessage::Error {
                code: ErrorCode::NameTaken,
                message,
                ..
            } if self.lost_at.is_some() && !self.registered => Some(message.clone()),
            _ => None,
        }
    }

    /// A first `hello` refused because its id is taken, within
    /// [`NAME_HELD_GRACE`] of the start: said again rather than fatal.
    fn name_held_at_first_hello(&self, message: &ServerMessage) -> bool {
        matches!(
            message,
            ServerMessage::Error {
                code: ErrorCode::NameTaken,
                request,
                ..
            } if request.as_deref() == Some("hello")
        ) && !self.registered
            && self.lost_at.is_none()
            && Instant::now() < self.name_grace_until
    }

    fn wanted_producer(&self) -> Option<String> {
        match &self.role {
            Role::Consumer { producer, .. } => producer.clone(),
            Role::Producer { .. } => None,
        }
    }

    /// The server's id for one of the element's sessions.
    fn server_id(&self, session: &str) -> Option<String> {
        if session.starts_with(PROVISIONAL) {
            self.named.get(session).cloned()
        } else {
            Some(session.to_owned())
        }
    }

    /// The element's id for one of the server's sessions.
    fn element_id(&self, session: String) -> String {
        self.named
            .iter()
            .find(|(_, named)| **named == session)
            .map(|(ours, _)| ours.clone())
            .unwrap_or(session)
    }

    fn on_command(&mut self, command: SignallerCommand) {
        let message = match command {
            SignallerCommand::Description {
                session,
                description,
            } => match self.server_id(&session) {
                Some(session) => ClientMessage::Sdp {
                    session,
                    sdp: description,
                },
                // Viewer-offer: the offer goes in start-session.
                None if description.kind == SdpKind::Offer => {
                    let Some(producer) = self.producer.clone() else {
                        return;
                    };
                    ClientMessage::StartSession {
                        peer: producer,
                        wait: false,
                        offer: Some(description),
                    }
                }
                None => return,
            },
            SignallerCommand::Candidate { session, candidate } => match self.server_id(&session) {
                Some(session) => ClientMessage::Ice { session, candidate },
                None => {
                    self.held_candidates.push(candidate);
                    return;
                }
            },
            SignallerCommand::EndSession { session, reason } => {
                let Some(server_id) = self.server_id(&session) else {
                    // Never named: the server has nothing to end.
                    self.session = None;
                    return;
                };
                if self.session.as_deref() == Some(session.as_str()) {
                    self.session = None;
                }
                ClientMessage::EndSession {
                    session: server_id,
                    reason: Some(reason),
                }
            }
            SignallerCommand::Message { to, data } => ClientMessage::Message { to, data },
        };
        self.send(message);
    }

    fn watch_url(&self) -> String {
        match self.role {
            Role::Producer { .. } => format!(
                "{}watch?room={}&producer={}",
                self.http_url, self.room, self.peer_id
            ),
            Role::Consumer { .. } => format!("{}publish?room={}", self.http_url, self.room),
        }
    }

    /// Consumer: start a session with `peer` if it is the one wanted and
    /// none is running yet.
    fn consider_producer(&mut self, peer: &PeerInfo, out: &mut Vec<SignallerEvent>) {
        if !peer.is_producer() {
            return;
        }
        if !self.known_producers.contains(&peer.id) {
            self.known_producers.push(peer.id.clone());
        }
        let Role::Consumer { producer, .. } = &self.role else {
            return;
        };
        if self.producer.is_some() {
            return;
        }
        if producer.as_ref().is_some_and(|wanted| *wanted != peer.id) {
            return;
        }
        self.producer = Some(peer.id.clone());
        self.producer_deadline = None;
        if self.viewer_offer {
            // The element makes the offer; it reaches the server in
            // start-session (see on_command).
            let session = format!("{PROVISIONAL}{}", peer.id);
            self.session = Some(session.clone());
            out.push(SignallerEvent::SessionStarted {
                session,
                peer: peer.id.clone(),
                negotiation: Negotiation::Offer,
                ice_servers: self.ice_servers.clone(),
                data_channels: None,
            });
        } else {
            self.send(ClientMessage::StartSession {
                peer: peer.id.clone(),
                wait: false,
                offer: None,
            });
        }
    }

    fn on_server_message(
        &mut self,
        message: ServerMessage,
        config: &SignallerConfig,
        out: &mut Vec<SignallerEvent>,
    ) {
        let event = match message {
            ServerMessage::Welcome {
                id,
                ice_servers,
                resume,
                resumed,
                ..
            } => {
                self.peer_id = id;
                self.resume = resume;
                self.ice_servers = ice_servers.iter().flat_map(webrtcbin_ice_servers).collect();
                if resumed.is_some() {
                    // Still in the room with our sessions: nothing to redo.
                    self.registered = true;
                    self.backoff.reset();
                    if let Some(lost_at) = self.lost_at.take() {
                        out.push(SignallerEvent::SignallingRestored {
                            after: lost_at.elapsed(),
                        });
                    }
                    return;
                }
                let streams = match &self.role {
                    Role::Producer { streams } => streams.clone(),
                    Role::Consumer { .. } => Vec::new(),
                };
                self.send(ClientMessage::Join {
                    room: self.room.clone(),
                    streams,
                    meta: Value::Null,
                    presence: true,
                });
                None
            }
            ServerMessage::Joined { room, id, peers } => {
                self.registered = true;
                self.backoff.reset();
                if let Some(lost_at) = self.lost_at.take() {
                    out.push(SignallerEvent::SignallingRestored {
                        after: lost_at.elapsed(),
                    });
                }
                out.push(SignallerEvent::Ready {
                    peer_id: id,
                    room,
                    watch_url: Some(self.watch_url()),
                    embedded: self.embedded,
                });
                for peer in &peers {
                    self.consider_producer(peer, out);
                }
                None
            }
            ServerMessage::PeerJoined { peer, .. } | ServerMessage::PeerUpdated { peer, .. } => {
                self.consider_producer(&peer, out);
                None
            }
            ServerMessage::PeerLeft { id, .. } => {
                self.known_producers.retain(|p| *p != id);
                None
            }
            ServerMessage::SessionRequested {
                session,
                peer,
                offer,
            } => match self.role {
                Role::Producer { .. } => Some(SignallerEvent::SessionStarted {
                    session,
                    peer,
                    negotiation: match offer {
                        Some(offer) => Negotiation::Answer(offer),
                        None => Negotiation::Offer,
                    },
                    ice_servers: self.ice_servers.clone(),
                    data_channels: None,
                }),
                Role::Consumer { .. } => {
                    self.send(ClientMessage::EndSession {
                        session,
                        reason: Some(format!(
                            "\"{}\" receives only; it has nothing to send",
                            self.peer_id
                        )),
                    });
                    None
                }
            },
            ServerMessage::SessionStarted { session, peer } => {
                match self.session.clone().filter(|s| s.starts_with(PROVISIONAL)) {
                    // Our offer is on its way under this name now.
                    Some(ours) => {
                        self.named.insert(ours, session.clone());
                        for candidate in std::mem::take(&mut self.held_candidates) {
                            self.send(ClientMessage::Ice {
                                session: session.clone(),
                                candidate,
                            });
                        }
                        None
                    }
                    None => {
                        self.session = Some(session.clone());
                        Some(SignallerEvent::SessionStarted {
                            session,
                            peer,
                            negotiation: Negotiation::AwaitOffer,
                            ice_servers: self.ice_servers.clone(),
                            data_channels: None,
                        })
                    }
                }
            }
            ServerMessage::Sdp { session, sdp, .. } => Some(SignallerEvent::RemoteDescription {
                session: self.element_id(session),
                description: sdp,
            }),
            ServerMessage::Ice {
                session, candidate, ..
            } => Some(SignallerEvent::RemoteCandidate {
                session: self.element_id(session),
                candidate,
            }),
            ServerMessage::SessionEnded { session, reason } => {
                let session = self.element_id(session);
                if self.session.as_deref() == Some(session.as_str()) {
                    self.session = None;
                }
                Some(SignallerEvent::SessionEnded { session, reason })
            }
            ServerMessage::Message { from, data, .. } => {
                Some(SignallerEvent::Message { from, data })
            }
            ServerMessage::Error {
                code,
                message,
                request,
                session,
            } => {
                let hint = match (code, &config.peer_id) {
                    (ErrorCode::NameTaken, Some(_)) => {
                        "; choose another peer-id or leave it unset for a random one"
                    }
                    _ => "",
                };
                let error = SignallerError::Refused {
                    code: code.to_string(),
                    message,
                    hint: hint.to_owned(),
                };
                let during_registration =
                    !self.registered && matches!(request.as_deref(), Some("hello") | Some("join"));
                match (during_registration, session, request.as_deref()) {
                    (true, _, _) => Some(SignallerEvent::Error(error)),
                    // A refused viewer-offer: the session never began.
                    (_, None, Some("start-session")) if self.viewer_offer => self
                        .session
                        .take()
                        .map(|session| SignallerEvent::SessionEnded {
                            session,
                            reason: error.to_string(),
                        }),
                    _ => Some(SignallerEvent::Warning(error)),
                }
            }
            ServerMessage::Left { .. }
            | ServerMessage::Peers { .. }
            | ServerMessage::Rooms { .. }
            | ServerMessage::Pong {} => None,
        };
        out.extend(event);
    }
}

/// An RTCIceServer as webrtcbin takes it: `stun://host:port`,
/// `turn://user:password@host:port?transport=udp` (one per URL).
fn webrtcbin_ice_servers(server: &IceServerConfig) -> Vec<String> {
    let encode =
        |text: &str| url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>();
    server
        .urls
        .iter()
        .filter_map(|url| {
            let (scheme, rest) = url.split_once(':')?;
            let rest = rest.trim_start_matches("//");
            match (scheme, &server.username, &server.credential) {
                ("stun" | "stuns", _, _) => Some(format!("stun://{rest}")),
                ("turn" | "turns", Some(user), Some(password)) => Some(format!(
                    "{scheme}://{}:{}@{rest}",
                    encode(user),
                    encode(password)
                )),
                _ => None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn welcome_ice_servers_become_webrtcbin_urls() {
        let server = IceServerConfig {
            urls: vec![
                "turn:198.18.0.1:3478?transport=udp".into(),
                "stun:198.18.0.1:3478".into(),
            ],
            username: Some("1700003600:cam".into()),
            credential: Some("a+b/c=".into()),
        };
        assert_eq!(
            webrtcbin_ice_servers(&server),
            [
                "turn://1700003600%3Acam:a%2Bb%2Fc%3D@198.18.0.1:3478?transport=udp",
                "stun://198.18.0.1:3478"
            ]
        );
    }
}
