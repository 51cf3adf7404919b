//! The elements' side of signalling, independent of any protocol.
//!
//! The media code (peersink, peersrc, `session.rs`) sees only
//! [`SignallerEvent`]s coming in and [`SignallerCommand`]s going out; which
//! protocol carries them is chosen from the `uri` scheme in [`spawn`]:
//! - `ws://`, `wss://` (or no uri: an embedded server): our own protocol
//!   (`native.rs`);
//! - `whip+http://`, `whip+https://`: publish to a WHIP endpoint, and
//! - `whep+http://`, `whep+https://`: play a WHEP endpoint (`wish.rs`);
//! - `peerjs://`, `peerjs+https://`: be a peer of a PeerServer (`peerjs/`).
//!
//! A new protocol (PeerJS, the gst-plugins-rs protocol, Janus) is one more
//! module here and one more line in [`PROTOCOLS`], with no change to the
//! media code: either side may offer, since a session starts with a
//! [`Negotiation`] saying who does.

mod http;
mod native;
mod peerjs;
mod reconnect;
pub mod settings;
mod wish;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use peer_signalling::protocol::{IceCandidate, SessionDescription, StreamInfo};

use crate::datachannel::{ChannelSpec, Framing};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::runtime::RUNTIME;

/// What the element is to the other peers.
#[derive(Debug, Clone)]
pub enum Role {
    /// Sends its streams to every viewer that asks (peersink).
    Producer { streams: Vec<StreamInfo> },
    /// Receives one producer, or the first one to appear when `None` (peersrc).
    Consumer {
        producer: Option<String>,
        producer_timeout: Duration,
    },
}

/// Protocol settings that are not part of the uri (the `signaller` child
/// object's properties, see `settings.rs`).
#[derive(Debug, Clone, Default)]
pub struct ProtocolSettings {
    /// Bearer token for WHIP/WHEP (overrides `?token=` in the uri).
    pub token: Option<String>,
    /// How long an HTTP request may take (WHIP/WHEP POST, PATCH).
    pub timeout: Duration,
    /// How long to wait for ICE gathering before posting an offer.
    pub gathering_timeout: Duration,
    /// Our protocol: the viewer (peersrc) makes the offer instead of the
    /// producer.
    pub viewer_offer: bool,
    /// Our protocol and PeerJS: how long to keep reconnecting to a server that went
    /// away; zero: the element fails at once.
    pub reconnect_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct SignallerConfig {
    /// `None`: start an embedded server on 127.0.0.1:`embedded_port`.
    pub uri: Option<String>,
    pub peer_id: Option<String>,
    pub meta: Value,
    pub role: Role,
    pub embedded_port: u16,
    /// PEM certificates to trust for wss:// and https:// besides the
    /// public roots.
    pub tls_ca_pem: Option<Vec<u8>>,
    pub protocol: ProtocolSettings,
    /// The element's access token (`token`).
    pub token: Option<String>,
    /// Where the signaller writes what the `signaller` object shows
    /// (the session's resource URL, say).
    pub status: Arc<Mutex<Status>>,
}

/// Read back through the `signaller` child object.
#[derive(Debug, Clone, Default)]
pub struct Status {
    /// `native`, `whip`, `whep`.
    pub protocol: Option<&'static str>,
    /// WHIP/WHEP: the session's resource URL (grants control: shown only
    /// to the application that owns the element).
    pub resource_url: Option<String>,
}

/// Who makes the offer of a new session.
#[derive(Debug, Clone, PartialEq)]
pub enum Negotiation {
    /// We offer: create an offer and send it.
    Offer,
    /// The peer already offered: answer this offer.
    Answer(SessionDescription),
    /// The peer will offer: wait for it.
    AwaitOffer,
}

/// A session's data channels when its protocol decides them rather than
/// the element's `data-channels` property: PeerJS's client takes whatever
/// channel the other side opens as its connection's channel, and frames
/// messages in its own way (binarypack, JSON).
#[derive(Clone)]
pub struct DataChannelPlan {
    /// Channels the element opens itself (empty: only the peer's).
    pub open: Vec<ChannelSpec>,
    /// How messages are framed on the session's channels; None: as they are.
    pub framing: Option<Arc<dyn Framing>>,
}

impl std::fmt::Debug for DataChannelPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataChannelPlan")
            .field("open", &self.open)
            .field("framing", &self.framing.as_ref().map(|f| f.name()))
            .finish()
    }
}

#[derive(Debug)]
pub enum SignallerEvent {
    /// Registered; `watch_url` is a page to open, when one exists.
    Ready {
        peer_id: String,
        room: String,
        watch_url: Option<String>,
        embedded: bool,
    },
    /// A session with `peer` begins: peersink sends to it, peersrc
    /// receives from it. `ice_servers` are STUN/TURN servers the protocol
    /// handed out for it (`stun://...`, `turn://user:pass@...`).
    SessionStarted {
        session: String,
        peer: String,
        negotiation: Negotiation,
        ice_servers: Vec<String>,
        /// None: the element's own `data-channels`.
        data_channels: Option<DataChannelPlan>,
    },
    RemoteDescription {
        session: String,
        description: SessionDescription,
    },
    RemoteCandidate {
        session: String,
        candidate: Option<IceCandidate>,
    },
    SessionEnded {
        session: String,
        reason: String,
    },
    /// An application message from another peer (our protocol's `message`).
    Message {
        from: String,
        data: Value,
    },
    /// The connection to the signalling server was lost; the signaller
    /// reconnects, and sessions already up keep their media meanwhile.
    SignallingLost {
        reason: String,
    },
    /// Back on a server, under the same peer id, after `SignallingLost`.
    SignallingRestored {
        after: Duration,
    },
    /// Something the user should know that does not stop the element.
    Warning(SignallerError),
    /// The element cannot go on (server unreachable, name taken, producer gone).
    Error(SignallerError),
}

#[derive(Debug)]
pub enum SignallerCommand {
    Description {
        session: String,
        description: SessionDescription,
    },
    /// `None`: end of candidates.
    Candidate {
        session: String,
        candidate: Option<IceCandidate>,
    },
    EndSession {
        session: String,
        reason: String,
    },
    /// An application message to one peer, or to everyone in the room.
    Message {
        to: Option<String>,
        data: Value,
    },
}

/// Why signalling failed, in words a user can act on.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SignallerError {
    #[error("uri \"{uri}\": {reason}")]
    BadUri { uri: String, reason: String },
    #[error("{0}")]
    Connect(String),
    #[error("the signalling connection was lost: {0}")]
    ConnectionLost(String),
    /// The server refused something; `hint` says what to do.
    #[error("signalling server: {message} ({code}){hint}")]
    Refused {
        code: String,
        message: String,
        hint: String,
    },
    #[error("producer \"{wanted}\" is not in room \"{room}\" (producers there: {others})")]
    ProducerAbsent {
        wanted: String,
        room: String,
        others: String,
    },
    /// A WHIP/WHEP endpoint answered with an error status.
    #[error("{endpoint} answered {status}: {body}")]
    Http {
        endpoint: String,
        status: u16,
        body: String,
    },
    #[error("{0}")]
    Protocol(String),
    #[error("cannot start the embedded signalling server: {0}")]
    EmbeddedServer(String),
}

/// Sends commands to a running signaller; dropping every clone stops it.
#[derive(Debug, Clone)]
pub struct SignallerHandle {
    commands: mpsc::UnboundedSender<SignallerCommand>,
}

impl SignallerHandle {
    pub fn send(&self, command: SignallerCommand) {
        // A stopped signaller has nobody left to tell.
        let _ = self.commands.send(command);
    }
}

/// Where a signaller's events go.
pub type EventSink = mpsc::UnboundedSender<SignallerEvent>;
type CommandSource = mpsc::UnboundedReceiver<SignallerCommand>;

/// The protocols, by uri scheme. `None` stands for no uri (embedded server).
struct Protocol {
    name: &'static str,
    schemes: &'static [&'static str],
    /// Checks the configuration and starts the protocol on the runtime.
    start: fn(SignallerConfig, CommandSource, EventSink) -> Result<(), SignallerError>,
}

const PROTOCOLS: &[Protocol] = &[
    Protocol {
        name: "native",
        schemes: &["", "ws", "wss", "http", "https"],
        start: native::start,
    },
    Protocol {
        name: "whip",
        schemes: &["whip+http", "whip+https"],
        start: wish::start_whip,
    },
    Protocol {
        name: "whep",
        schemes: &["whep+http", "whep+https"],
        start: wish::start_whep,
    },
    Protocol {
        name: "peerjs",
        schemes: &["peerjs", "peerjs+http", "peerjs+https"],
        start: peerjs::start,
    },
];

fn scheme(uri: Option<&str>) -> String {
    uri.and_then(|uri| uri.split_once("://"))
        .map(|(scheme, _)| scheme.to_ascii_lowercase())
        .unwrap_or_default()
}

fn protocol_for(uri: Option<&str>) -> Result<&'static Protocol, SignallerError> {
    let scheme = scheme(uri);
    PROTOCOLS
        .iter()
        .find(|p| p.schemes.contains(&scheme.as_str()))
        .ok_or_else(|| SignallerError::BadUri {
            uri: uri.unwrap_or_default().to_owned(),
            reason: format!(
                "unsupported scheme \"{scheme}\" (expected ws://, wss://, whip+http(s)://, \
                 whep+http(s)://, peerjs://, or no uri for an embedded server)"
            ),
        })
}

/// The protocol's name for `uri`, or the error naming what is wrong with it.
pub fn protocol_name(uri: Option<&str>) -> Result<&'static str, SignallerError> {
    protocol_for(uri).map(|p| p.name)
}

/// Starts the signaller the configuration asks for on the plugin runtime.
pub fn spawn(
    config: SignallerConfig,
) -> Result<(SignallerHandle, mpsc::UnboundedReceiver<SignallerEvent>), SignallerError> {
    let protocol = protocol_for(config.uri.as_deref())?;
    let (commands, commands_rx) = mpsc::unbounded_channel();
    let (events, events_rx) = mpsc::unbounded_channel();
    config.status.lock().unwrap().protocol = Some(protocol.name);
    // The protocol spawns its task on RUNTIME; entering it lets a start
    // function use tokio::spawn.
    let _entered = RUNTIME.enter();
    (protocol.start)(config, commands_rx, events)?;
    Ok((SignallerHandle { commands }, events_rx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheme_picks_the_protocol() {
        for (uri, name) in [
            (None, "native"),
            (Some("ws://127.0.0.1:8080/room"), "native"),
            (Some("WSS://example.org/room"), "native"),
            (Some("whip+http://127.0.0.1:8080/whip/live"), "whip"),
            (Some("whip+https://sfu.example/whip/live?token=x"), "whip"),
            (Some("whep+http://127.0.0.1:8889/live/whep"), "whep"),
            (Some("peerjs://127.0.0.1:9000/studio"), "peerjs"),
            (
                Some("peerjs+https://peers.example/studio?call=alice"),
                "peerjs",
            ),
        ] {
            assert_eq!(protocol_name(uri).unwrap(), name, "{uri:?}");
        }
        let err = protocol_name(Some("rtsp://camera/stream")).unwrap_err();
        assert!(
            err.to_string().contains("unsupported scheme \"rtsp\""),
            "{err}"
        );
    }
}
