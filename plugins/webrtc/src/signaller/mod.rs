//! The elements' side of signalling, independent of any protocol.
//!
//! The media code (peersink, peersrc) sees only [`SignallerEvent`]s coming
//! in and [`SignallerCommand`]s going out; which protocol carries them is
//! chosen from the `uri` scheme in [`spawn`]. A new protocol (WHIP, WHEP,
//! PeerJS) is one more module here, with no change to the media code.

mod native;

use peer_signalling::protocol::{IceCandidate, SessionDescription, StreamInfo};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::runtime::RUNTIME;

/// What the element is to the other peers.
#[derive(Debug, Clone)]
pub enum Role {
    /// Offers its streams to every viewer that asks (peersink).
    Producer { streams: Vec<StreamInfo> },
    /// Receives one producer, or the first one to appear when `None` (peersrc).
    Consumer {
        producer: Option<String>,
        producer_timeout: std::time::Duration,
    },
}

#[derive(Debug, Clone)]
pub struct SignallerConfig {
    /// `None`: start an embedded server on 127.0.0.1:`embedded_port`.
    pub uri: Option<String>,
    pub peer_id: Option<String>,
    pub meta: Value,
    pub role: Role,
    pub embedded_port: u16,
    /// PEM certificates to trust for wss:// besides the public roots.
    pub tls_ca_pem: Option<Vec<u8>>,
}

#[derive(Debug)]
pub enum SignallerEvent {
    /// Registered with the server; `watch_url` is a page to open, when one exists.
    Ready {
        peer_id: String,
        room: String,
        watch_url: Option<String>,
        embedded: bool,
    },
    /// A viewer asks for a session: create one and send an offer.
    SessionRequested {
        session: String,
        peer: String,
    },
    /// The session with the producer exists: wait for its offer.
    SessionStarted {
        session: String,
        peer: String,
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
    Message {
        from: String,
        data: Value,
    },
    /// Something the user should know that does not stop the element.
    Warning(String),
    /// The element cannot go on (server unreachable, name taken, producer gone).
    Error(String),
}

#[derive(Debug)]
pub enum SignallerCommand {
    Description {
        session: String,
        description: SessionDescription,
    },
    Candidate {
        session: String,
        candidate: Option<IceCandidate>,
    },
    EndSession {
        session: String,
        reason: String,
    },
    #[allow(dead_code)] // sent by the data-channel surface, not yet wired
    Message {
        to: Option<String>,
        data: Value,
    },
}

/// Sends commands to a running signaller; dropping it stops the signaller.
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

/// Starts the signaller the configuration asks for on the plugin runtime.
pub fn spawn(
    config: SignallerConfig,
) -> Result<(SignallerHandle, mpsc::UnboundedReceiver<SignallerEvent>), String> {
    let (commands, commands_rx) = mpsc::unbounded_channel();
    let (events, events_rx) = mpsc::unbounded_channel();
    let scheme = match &config.uri {
        None => "embedded".to_owned(),
        Some(uri) => uri
            .split_once("://")
            .map(|(scheme, _)| scheme.to_ascii_lowercase())
            .unwrap_or_default(),
    };
    match scheme.as_str() {
        "embedded" | "ws" | "wss" | "http" | "https" => {
            let address = native::Address::from_config(&config)?;
            RUNTIME.spawn(native::run(config, address, commands_rx, events));
        }
        other => {
            return Err(format!(
                "uri \"{}\": unsupported scheme \"{other}\" (expected ws:// or wss://, or no uri for an embedded server)",
                config.uri.unwrap_or_default()
            ));
        }
    }
    Ok((SignallerHandle { commands }, events_rx))
}
