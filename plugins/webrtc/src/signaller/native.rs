//! Our own WebSocket protocol (docs/protocol.md), against a remote
//! `peer serve` or a server embedded in the element.

use std::net::SocketAddr;

use peer_signalling::client::{self, ClientEvent, ClientSender, RoomAddress};
use peer_signalling::protocol::{ClientMessage, PeerInfo, ServerMessage};
use peer_signalling::server::{self, RunningServer, ServerConfig};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Role, SignallerCommand, SignallerConfig, SignallerEvent};

pub enum Address {
    Embedded { port: u16 },
    Remote(RoomAddress),
}

impl Address {
    pub fn from_config(config: &SignallerConfig) -> Result<Self, String> {
        match &config.uri {
            None => Ok(Address::Embedded {
                port: config.embedded_port,
            }),
            Some(uri) => RoomAddress::parse(uri).map(Address::Remote),
        }
    }
}

/// Starts the embedded server; the default port falls back to the next few
/// when taken, so two gst-launch lines on one machine both work.
async fn start_embedded(port: u16) -> Result<RunningServer, String> {
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
    Err(format!(
        "cannot start the embedded signalling server: {last_error}"
    ))
}

struct Connection {
    client: ClientSender,
    role: Role,
    room: String,
    http_url: String,
    embedded: bool,
    peer_id: String,
    registered: bool,
    /// Consumer: the producer chosen and the session with it.
    producer: Option<String>,
    session: Option<String>,
    producer_deadline: Option<Instant>,
    known_producers: Vec<String>,
}

pub async fn run(
    config: SignallerConfig,
    address: Address,
    mut commands: mpsc::UnboundedReceiver<SignallerCommand>,
    events: mpsc::UnboundedSender<SignallerEvent>,
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
                let _ = events.send(SignallerEvent::Error(err.to_string()));
                return;
            }
        };
    let _ = client.send(ClientMessage::Hello {
        id: config.peer_id.clone(),
        meta: config.meta.clone(),
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
        room: room_address.room.clone(),
        http_url: room_address.http_url.clone(),
        embedded: embedded_server.is_some(),
        peer_id: String::new(),
        registered: false,
        producer: None,
        session: None,
        producer_deadline,
        known_producers: Vec::new(),
    };

    loop {
        let deadline = connection.producer_deadline;
        tokio::select! {
            command = commands.recv() => match command {
                Some(command) => connection.on_command(command),
                // The element dropped its handle: it is stopping.
                None => break,
            },
            event = incoming.recv() => match event {
                Some(ClientEvent::Message(message)) => {
                    let mut out = Vec::new();
                    connection.on_server_message(message, &config, &mut out);
                    let fatal = out.iter().any(|event| matches!(event, SignallerEvent::Error(_)));
                    for event in out {
                        let _ = events.send(event);
                    }
                    if fatal {
                        break;
                    }
                }
                Some(ClientEvent::Undecodable(text)) => {
                    let _ = events.send(SignallerEvent::Warning(format!("undecodable message from the server: {text}")));
                }
                Some(ClientEvent::Closed(reason)) => {
                    let _ = events.send(SignallerEvent::Error(format!("signalling connection lost: {reason}")));
                    break;
                }
                None => {
                    let _ = events.send(SignallerEvent::Error("signalling connection lost".into()));
                    break;
                }
            },
            _ = sleep_until_optional(deadline) => {
                connection.producer_deadline = None;
                let wanted = connection.wanted_producer().unwrap_or_default();
                let others = if connection.known_producers.is_empty() {
                    "none".to_owned()
                } else {
                    connection.known_producers.join(", ")
                };
                let _ = events.send(SignallerEvent::Error(format!(
                    "producer \"{wanted}\" is not in room \"{}\" (producers there: {others})",
                    connection.room
                )));
                break;
            }
        }
    }
    if let Some(server) = embedded_server {
        server.stop().await;
    }
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

    fn wanted_producer(&self) -> Option<String> {
        match &self.role {
            Role::Consumer { producer, .. } => producer.clone(),
            Role::Producer { .. } => None,
        }
    }

    fn on_command(&mut self, command: SignallerCommand) {
        let message = match command {
            SignallerCommand::Description {
                session,
                description,
            } => ClientMessage::Sdp {
                session,
                sdp: description,
            },
            SignallerCommand::Candidate { session, candidate } => {
                ClientMessage::Ice { session, candidate }
            }
            SignallerCommand::EndSession { session, reason } => {
                if self.session.as_deref() == Some(session.as_str()) {
                    self.session = None;
                }
                ClientMessage::EndSession {
                    session,
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
    fn consider_producer(&mut self, peer: &PeerInfo) {
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
        self.send(ClientMessage::StartSession {
            peer: peer.id.clone(),
            wait: false,
        });
    }

    fn on_server_message(
        &mut self,
        message: ServerMessage,
        config: &SignallerConfig,
        out: &mut Vec<SignallerEvent>,
    ) {
        let event = match message {
            ServerMessage::Welcome { id, .. } => {
                self.peer_id = id;
                let streams = match &self.role {
                    Role::Producer { streams } => streams.clone(),
                    Role::Consumer { .. } => Vec::new(),
                };
                self.send(ClientMessage::Join {
                    room: self.room.clone(),
                    streams,
                    meta: Value::Null,
                });
                None
            }
            ServerMessage::Joined { room, id, peers } => {
                self.registered = true;
                out.push(SignallerEvent::Ready {
                    peer_id: id,
                    room,
                    watch_url: Some(self.watch_url()),
                    embedded: self.embedded,
                });
                for peer in &peers {
                    self.consider_producer(peer);
                }
                None
            }
            ServerMessage::PeerJoined { peer, .. } | ServerMessage::PeerUpdated { peer, .. } => {
                self.consider_producer(&peer);
                None
            }
            ServerMessage::PeerLeft { id, .. } => {
                self.known_producers.retain(|p| *p != id);
                None
            }
            ServerMessage::SessionRequested { session, peer } => match self.role {
                Role::Producer { .. } => Some(SignallerEvent::SessionRequested { session, peer }),
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
                self.session = Some(session.clone());
                Some(SignallerEvent::SessionStarted { session, peer })
            }
            ServerMessage::Sdp { session, sdp, .. } => Some(SignallerEvent::RemoteDescription {
                session,
                description: sdp,
            }),
            ServerMessage::Ice {
                session, candidate, ..
            } => Some(SignallerEvent::RemoteCandidate { session, candidate }),
            ServerMessage::SessionEnded { session, reason } => {
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
                ..
            } => {
                let text = format!("signalling server: {message} ({code})");
                let during_registration =
                    !self.registered && matches!(request.as_deref(), Some("hello") | Some("join"));
                if during_registration {
                    let hint = match (code, &config.peer_id) {
                        (peer_signalling::protocol::ErrorCode::NameTaken, Some(_)) => {
                            "; choose another peer-id or leave it unset for a random one"
                        }
                        _ => "",
                    };
                    Some(SignallerEvent::Error(format!("{text}{hint}")))
                } else {
                    Some(SignallerEvent::Warning(text))
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
