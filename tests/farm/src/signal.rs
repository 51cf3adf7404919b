//! The viewer's side of signalling, for the two protocols a broadcast is
//! watched through: ours (docs/protocol.md, through `peer-signalling`'s
//! client) and gst-plugins-rs's (its `gst-webrtc-signalling-server`, which
//! webrtcsink registers with). In both the producer offers and the viewer
//! answers; each viewer has its own WebSocket, as a browser would.

use async_tungstenite::WebSocketStream;
use async_tungstenite::tokio::{ConnectStream, connect_async};
use async_tungstenite::tungstenite::Message;
use futures::StreamExt;
use peer_signalling::client::{self, ClientEvent, ClientSender, RoomAddress};
use peer_signalling::protocol::{
    ClientMessage, IceCandidate, SdpKind, ServerMessage, SessionDescription,
};
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::FarmError;

/// Who to watch, and through which protocol.
#[derive(Debug, Clone)]
pub enum Target {
    /// Our server: `uri` is `ws://host:port/room`; `producer` the peer id.
    Peer { uri: String, producer: String },
    /// gst-webrtc-signalling-server at `url` (`ws://host:port`);
    /// `producer` the id the server gave the producer.
    GstWebRtc { url: String, producer: String },
}

/// What the producer's side says to the viewer.
#[derive(Debug)]
pub enum SignalEvent {
    Offer(String),
    /// An ICE candidate line (`candidate:...`).
    Candidate(String),
    /// End of the producer's candidates.
    EndOfCandidates,
    Ended(String),
}

// One per viewer, never moved around: its size does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Signal {
    Peer {
        sender: ClientSender,
        events: UnboundedReceiver<ClientEvent>,
        session: Option<String>,
    },
    GstWebRtc {
        socket: WebSocketStream<ConnectStream>,
        session: Option<String>,
    },
}

fn signalling(reason: impl std::fmt::Display) -> FarmError {
    FarmError::Signalling(reason.to_string())
}

impl Signal {
    /// Connects, enters the room if there is one, and asks the producer
    /// for a session.
    pub async fn start(target: &Target) -> Result<Signal, FarmError> {
        match target {
            Target::Peer { uri, producer } => {
                let address = RoomAddress::parse(uri).map_err(signalling)?;
                let (sender, events) =
                    client::connect(&address.ws_url).await.map_err(signalling)?;
                sender
                    .send(ClientMessage::Join {
                        room: address.room,
                        streams: Vec::new(),
                        meta: Value::Null,
                        // As peersrc joins (it reads the roster).
                        presence: true,
                    })
                    .map_err(signalling)?;
                // `wait`: a viewer may come before its producer.
                sender
                    .send(ClientMessage::StartSession {
                        peer: producer.clone(),
                        wait: true,
                        offer: None,
                    })
                    .map_err(signalling)?;
                Ok(Signal::Peer {
                    sender,
                    events,
                    session: None,
                })
            }
            Target::GstWebRtc { url, producer } => {
                let (mut socket, _) = connect_async(url.as_str()).await.map_err(signalling)?;
                // The server registers every connection as a peer with no
                // role; a session request needs nothing more.
                let start = json!({"type": "startSession", "peerId": producer});
                socket
                    .send(Message::Text(start.to_string().into()))
                    .await
                    .map_err(signalling)?;
                Ok(Signal::GstWebRtc {
                    socket,
                    session: None,
                })
            }
        }
    }

    /// The next thing the producer's side says.
    pub async fn next(&mut self) -> Result<SignalEvent, FarmError> {
        match self {
            Signal::Peer {
                events, session, ..
            } => loop {
                let event = events
                    .recv()
                    .await
                    .ok_or_else(|| signalling("the signalling connection ended"))?;
                if let Some(event) = peer_event(event, session)? {
                    return Ok(event);
                }
            },
            Signal::GstWebRtc { socket, session } => loop {
                let message = match socket.next().await {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_))) | None => {
                        return Err(signalling("the signalling server closed the connection"));
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(err)) => return Err(signalling(err)),
                };
                let message: Value = serde_json::from_str(&message).map_err(signalling)?;
                if let Some(event) = gst_webrtc_event(&message, session)? {
                    return Ok(event);
                }
            },
        }
    }

    /// Closes the signalling connection as a closing browser tab does (a
    /// WebSocket close, so the server ends the viewer's session at once
    /// instead of keeping it for a resume) and waits, at most `timeout`,
    /// for the server's side of the close.
    pub async fn close(self, timeout: std::time::Duration) {
        let closing = async move {
            match self {
                Signal::Peer {
                    sender, mut events, ..
                } => {
                    // The last sender gone, the client's writer sends the close.
                    drop(sender);
                    while let Some(event) = events.recv().await {
                        if matches!(event, ClientEvent::Closed(_)) {
                            break;
                        }
                    }
                }
                Signal::GstWebRtc { mut socket, .. } => {
                    let _ = socket.close(None).await;
                }
            }
        };
        let _ = tokio::time::timeout(timeout, closing).await;
    }

    pub async fn answer(&mut self, sdp: String) -> Result<(), FarmError> {
        match self {
            Signal::Peer {
                sender, session, ..
            } => {
                let session = session.clone().ok_or_else(|| signalling("no session"))?;
                sender
                    .send(ClientMessage::Sdp {
                        session,
                        sdp: SessionDescription {
                            kind: SdpKind::Answer,
                            sdp,
                        },
                    })
                    .map_err(signalling)
            }
            Signal::GstWebRtc { socket, session } => {
                let session = session.clone().ok_or_else(|| signalling("no session"))?;
                let message = json!({
                    "type": "peer",
                    "sessionId": session,
                    "sdp": {"type": "answer", "sdp": sdp},
                });
                socket
                    .send(Message::Text(message.to_string().into()))
                    .await
                    .map_err(signalling)
            }
        }
    }

    /// Sends one of our candidates (`candidate:...`), for the first m-line
    /// (everything is bundled).
    pub async fn candidate(&mut self, candidate: String) -> Result<(), FarmError> {
        match self {
            Signal::Peer {
                sender, session, ..
            } => {
                let session = session.clone().ok_or_else(|| signalling("no session"))?;
                sender
                    .send(ClientMessage::Ice {
                        session,
                        candidate: Some(IceCandidate {
                            candidate,
                            sdp_m_line_index: Some(0),
                            sdp_mid: None,
                        }),
                    })
                    .map_err(signalling)
            }
            Signal::GstWebRtc { socket, session } => {
                let session = session.clone().ok_or_else(|| signalling("no session"))?;
                let message = json!({
                    "type": "peer",
                    "sessionId": session,
                    "ice": {"candidate": candidate, "sdpMLineIndex": 0},
                });
                socket
                    .send(Message::Text(message.to_string().into()))
                    .await
                    .map_err(signalling)
            }
        }
    }
}

fn peer_event(
    event: ClientEvent,
    session: &mut Option<String>,
) -> Result<Option<SignalEvent>, FarmError> {
    let message = match event {
        ClientEvent::Message(message) => message,
        ClientEvent::Undecodable(text) => return Err(signalling(text)),
        ClientEvent::Closed(reason) => return Err(signalling(reason)),
    };
    let ours = |id: &str| session.as_deref() == Some(id);
    Ok(match message {
        ServerMessage::SessionStarted { session: id, .. } => {
            *session = Some(id);
            None
        }
        ServerMessage::Sdp {
            session: id, sdp, ..
        } if ours(&id) => match sdp.kind {
            SdpKind::Offer => Some(SignalEvent::Offer(sdp.sdp)),
            SdpKind::Answer => return Err(signalling("the producer sent an answer")),
        },
        ServerMessage::Ice {
            session: id,
            candidate,
            ..
        } if ours(&id) => Some(match candidate {
            Some(candidate) => SignalEvent::Candidate(candidate.candidate),
            None => SignalEvent::EndOfCandidates,
        }),
        ServerMessage::SessionEnded {
            session: id,
            reason,
        } if ours(&id) => Some(SignalEvent::Ended(reason)),
        ServerMessage::Error { code, message, .. } => {
            return Err(signalling(format!("{code:?}: {message}")));
        }
        _ => None,
    })
}

fn gst_webrtc_event(
    message: &Value,
    session: &mut Option<String>,
) -> Result<Option<SignalEvent>, FarmError> {
    let field = |name: &str| message.get(name).and_then(Value::as_str);
    let ours = session.is_some() && field("sessionId") == session.as_deref();
    Ok(match field("type") {
        Some("sessionStarted") => {
            *session = field("sessionId").map(str::to_owned);
            None
        }
        Some("peer") if ours => {
            if let Some(sdp) = message.get("sdp") {
                match (
                    sdp.get("type").and_then(Value::as_str),
                    sdp.get("sdp").and_then(Value::as_str),
                ) {
                    (Some("offer"), Some(text)) => Some(SignalEvent::Offer(text.to_owned())),
                    _ => return Err(signalling(format!("unexpected SDP message: {message}"))),
                }
            } else if let Some(ice) = message.get("ice") {
                match ice.get("candidate").and_then(Value::as_str) {
                    Some("") | None => Some(SignalEvent::EndOfCandidates),
                    Some(candidate) => Some(SignalEvent::Candidate(candidate.to_owned())),
                }
            } else {
                None
            }
        }
        Some("endSession") if ours => Some(SignalEvent::Ended("endSession".into())),
        Some("error") => {
            return Err(signalling(
                field("details").unwrap_or("error without details"),
            ));
        }
        _ => None,
    })
}
