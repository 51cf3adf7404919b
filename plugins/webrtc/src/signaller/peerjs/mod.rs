//! The elements as PeerJS peers: `peerjs://host:port/ID`, against any
//! PeerServer (`peer serve`, or the npm `peer` reference server).
//!
//! - A **media call** to ID (`peer.call(ID, stream)`) is a session the
//!   element answers: peersink with its streams, sharing its encoders like
//!   any viewer; peersrc by giving out the caller's tracks (a set of pads
//!   per caller).
//! - A **data connection** to ID (`peer.connect(ID, {serialization})`) is
//!   a session with only the caller's data channel; its messages reach the
//!   elements' data-channel signals whole, in the connection's
//!   serialization (`framing.rs`).
//! - `?call=PEER` makes the element call PEER when it is registered (again
//!   every few seconds while PEER is not connected).
//!
//! Uri: `peerjs://HOST[:PORT]/[ID][?key=K&path=/P/&call=PEER&secure=1]`;
//! `peerjs+https://` is `secure=1`. Without ID the server's `GET /{key}/id`
//! gives one. Defaults as the `peerjs` client's with a self-hosted server:
//! key `peerjs`, path `/`, port 9000 (443 when secure). `signaller::token`
//! is the PeerJS token (random when unset).

mod binarypack;
mod framing;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use peer_signalling::client::{self, TextEvent};
use peer_signalling::protocol::{IceCandidate, SdpKind, SessionDescription};
use rand::Rng;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;
use url::Url;

use super::reconnect::{Reconnected, reconnect};
use super::{
    CommandSource, DataChannelPlan, EventSink, Negotiation, Role, SignallerCommand,
    SignallerConfig, SignallerError, SignallerEvent,
};
use framing::{PeerJsFraming, Serialization};

/// How often the client says it is alive (the `peerjs` client's interval).
const HEARTBEAT: Duration = Duration::from_secs(5);
/// How long after an `EXPIRE` a `call=` peer is called again.
const RECALL_AFTER: Duration = Duration::from_secs(3);
/// The client version announced to the server.
const CLIENT_VERSION: &str = "1.5.5";

/// Where and who, from the uri.
#[derive(Debug, Clone, PartialEq)]
struct Address {
    secure: bool,
    /// `host:port`
    authority: String,
    /// `/` or `/app/`
    path: String,
    key: String,
    id: Option<String>,
    call: Option<String>,
}

impl Address {
    fn parse(uri: &str) -> Result<Address, String> {
        let url = Url::parse(uri).map_err(|err| format!("not a URI: {err}"))?;
        let mut secure = url.scheme() == "peerjs+https";
        let query: HashMap<String, String> = url.query_pairs().into_owned().collect();
        if let Some(flag) = query.get("secure") {
            secure = matches!(flag.as_str(), "" | "1" | "true" | "yes");
        }
        let host = url.host_str().filter(|h| !h.is_empty()).ok_or("no host")?;
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_owned()
        };
        let port = url.port().unwrap_or(if secure { 443 } else { 9000 });
        let path = match query.get("path").map(|p| p.trim_matches('/')) {
            None | Some("") => "/".to_owned(),
            Some(path) => format!("/{path}/"),
        };
        let id = url.path().trim_matches('/');
        if id.contains('/') {
            return Err(format!(
                "\"{id}\" is not a peer id (the server's path goes in ?path=)"
            ));
        }
        let nonempty = |name: &str| query.get(name).filter(|v| !v.is_empty()).cloned();
        Ok(Address {
            secure,
            authority: format!("{host}:{port}"),
            path,
            key: nonempty("key").unwrap_or_else(|| "peerjs".into()),
            id: (!id.is_empty()).then(|| id.to_owned()),
            call: nonempty("call"),
        })
    }

    fn http_base(&self) -> String {
        let scheme = if self.secure { "https" } else { "http" };
        format!("{scheme}://{}{}", self.authority, self.path)
    }

    fn socket_url(&self, id: &str, token: &str) -> String {
        let scheme = if self.secure { "wss" } else { "ws" };
        let mut url = Url::parse(&format!("{scheme}://{}{}peerjs", self.authority, self.path))
            .expect("built from a parsed uri");
        url.query_pairs_mut()
            .append_pair("key", &self.key)
            .append_pair("id", id)
            .append_pair("token", token)
            .append_pair("version", CLIENT_VERSION);
        url.into()
    }
}

pub fn start(
    config: SignallerConfig,
    commands: CommandSource,
    events: EventSink,
) -> Result<(), SignallerError> {
    let uri = config.uri.clone().unwrap_or_default();
    let address = Address::parse(&uri).map_err(|reason| SignallerError::BadUri {
        uri: uri.clone(),
        reason,
    })?;
    tokio::spawn(run(config, address, commands, events));
    Ok(())
}

/// A random token, as the `peerjs` client makes one: it lets the same
/// client re-attach, nothing more.
fn random_token(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// `GET {path}{key}/id`.
async fn fetch_id(address: &Address, config: &SignallerConfig) -> Result<String, SignallerError> {
    let url = format!("{}{}/id", address.http_base(), address.key);
    let tls = peer_signalling::client::tls_client_config(config.tls_ca_pem.as_deref())
        .map_err(SignallerError::Connect)?;
    let client = reqwest::Client::builder()
        .timeout(config.protocol.timeout.max(Duration::from_secs(1)))
        .no_proxy()
        .use_preconfigured_tls(tls)
        .build()
        .map_err(|err| SignallerError::Connect(format!("cannot make an HTTP client: {err}")))?;
    let failed = |reason: String| {
        SignallerError::Connect(format!("cannot get a peer id from {url}: {reason}"))
    };
    let response = client
        .get(&url)
        .send()
        .await
        .map_err(|err| failed(err.to_string()))?;
    if !response.status().is_success() {
        return Err(failed(format!("status {}", response.status())));
    }
    let id = response
        .text()
        .await
        .map_err(|err| failed(err.to_string()))?;
    Ok(id.trim().to_owned())
}

async fn run(
    config: SignallerConfig,
    address: Address,
    mut commands: CommandSource,
    events: EventSink,
) {
    let id = match address.id.clone().or_else(|| config.peer_id.clone()) {
        Some(id) => id,
        None => match fetch_id(&address, &config).await {
            Ok(id) => id,
            Err(err) => {
                let _ = events.send(SignallerEvent::Error(err));
                return;
            }
        },
    };
    let token = config
        .protocol
        .token
        .clone()
        .unwrap_or_else(|| random_token(11));
    let url = address.socket_url(&id, &token);
    let (socket, mut incoming) =
        match client::connect_text(&url, config.tls_ca_pem.as_deref()).await {
            Ok(connected) => connected,
            Err(err) => {
                let _ = events.send(SignallerEvent::Error(SignallerError::Connect(format!(
                    "PeerServer {}: {err}",
                    address.http_base()
                ))));
                return;
            }
        };
    let mut peer = Peer {
        socket,
        events,
        me: id,
        address,
        only_from: match &config.role {
            Role::Consumer { producer, .. } => producer.clone(),
            Role::Producer { .. } => None,
        },
        links: HashMap::new(),
        recall_at: None,
        warned_messages: false,
        opened: false,
        lost_at: None,
        backoff: client::Backoff::default(),
    };
    let mut heartbeat = tokio::time::interval_at(Instant::now() + HEARTBEAT, HEARTBEAT);
    loop {
        tokio::select! {
            command = commands.recv() => match command {
                Some(command) => peer.on_command(command),
                None => break,
            },
            event = incoming.recv() => match event {
                Some(TextEvent::Text(text)) => {
                    if peer.on_text(&text).is_err() {
                        break;
                    }
                }
                Some(TextEvent::Closed(reason)) => {
                    match peer.reconnect(reason, &url, &config, &mut commands).await {
                        Some(receiver) => incoming = receiver,
                        None => break,
                    }
                }
                None => break,
            },
            _ = heartbeat.tick() => peer.send(json!({"type": "HEARTBEAT"})),
            _ = sleep_until(peer.recall_at) => {
                peer.recall_at = None;
                peer.place_call();
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Media,
    Data,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Media => "media",
            Kind::Data => "data",
        }
    }
}

/// One PeerJS connection, which is one session of the element.
struct Link {
    peer: String,
    connection_id: String,
    kind: Kind,
    /// We offered (a `call=`), and no answer came yet.
    awaiting_answer: bool,
}

struct Peer {
    socket: mpsc::UnboundedSender<String>,
    events: EventSink,
    me: String,
    address: Address,
    /// peersrc `producer`: only this peer's calls are taken.
    only_from: Option<String>,
    /// By the element's session id.
    links: HashMap<String, Link>,
    recall_at: Option<Instant>,
    warned_messages: bool,
    /// The server said OPEN on the current connection.
    opened: bool,
    /// When the server was lost, until it says OPEN again.
    lost_at: Option<Instant>,
    /// The next wait between reconnection attempts.
    backoff: client::Backoff,
}

/// The element must stop (the server refused us).
struct Fatal;

impl Peer {
    /// The PeerServer went away: attach again with the same id and token
    /// (a PeerServer that still holds them takes the socket back; a
    /// restarted one registers us afresh). Calls already up keep their
    /// media: it does not pass through the server. `None`: give up.
    async fn reconnect(
        &mut self,
        reason: String,
        url: &str,
        config: &SignallerConfig,
        commands: &mut CommandSource,
    ) -> Option<mpsc::UnboundedReceiver<TextEvent>> {
        let timeout = config.protocol.reconnect_timeout;
        let ever_opened = self.opened || self.lost_at.is_some();
        if !ever_opened || timeout.is_zero() {
            self.emit(SignallerEvent::Error(SignallerError::ConnectionLost(
                reason,
            )));
            return None;
        }
        // Lost again before OPEN: wait before the next attempt.
        let again = self.lost_at.is_some();
        let lost_at = *self.lost_at.get_or_insert_with(Instant::now);
        if !again {
            self.emit(SignallerEvent::SignallingLost {
                reason: reason.clone(),
            });
        }
        self.opened = false;
        let ca = config.tls_ca_pem.as_deref();
        match reconnect(
            || client::connect_text(url, ca),
            commands,
            lost_at + timeout,
            &mut self.backoff,
            again,
        )
        .await
        {
            Reconnected::Connected((socket, receiver)) => {
                self.socket = socket;
                Some(receiver)
            }
            Reconnected::GaveUp => {
                self.emit(SignallerEvent::Error(SignallerError::ConnectionLost(
                    format!("{reason}; no PeerServer to reconnect to for {timeout:?}"),
                )));
                None
            }
            Reconnected::Stopping => None,
        }
    }

    fn send(&self, message: Value) {
        let _ = self.socket.send(message.to_string());
    }

    fn emit(&self, event: SignallerEvent) {
        let _ = self.events.send(event);
    }

    fn session_of(&self, peer: &str, connection_id: &str) -> Option<String> {
        self.links
            .iter()
            .find(|(_, l)| l.peer == peer && l.connection_id == connection_id)
            .map(|(session, _)| session.clone())
    }

    /// A session id for the element: the connection id, made unique and
    /// safe for element names.
    fn new_session_id(&self, connection_id: &str) -> String {
        let base: String = connection_id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
            .take(40)
            .collect();
        let base = if base.is_empty() {
            "pj".to_owned()
        } else {
            base
        };
        let mut candidate = base.clone();
        let mut n = 1;
        while self.links.contains_key(&candidate) {
            n += 1;
            candidate = format!("{base}-{n}");
        }
        candidate
    }

    fn on_text(&mut self, text: &str) -> Result<(), Fatal> {
        let Ok(message) = serde_json::from_str::<Value>(text) else {
            return Ok(());
        };
        let kind = message["type"].as_str().unwrap_or_default();
        let src = message["src"].as_str().unwrap_or_default().to_owned();
        let payload = &message["payload"];
        match kind {
            "OPEN" => {
                self.opened = true;
                self.backoff.reset();
                match self.lost_at.take() {
                    Some(lost_at) => self.emit(SignallerEvent::SignallingRestored {
                        after: lost_at.elapsed(),
                    }),
                    None => self.emit(SignallerEvent::Ready {
                        peer_id: self.me.clone(),
                        room: self.address.key.clone(),
                        watch_url: None,
                        embedded: false,
                    }),
                }
                self.place_call();
            }
            "ERROR" | "ID-TAKEN" | "INVALID-KEY" => {
                let said = payload["msg"].as_str().unwrap_or("refused").to_owned();
                let (message, hint) = if kind == "ID-TAKEN" {
                    (
                        format!("peer id \"{}\" is taken ({said})", self.me),
                        "; choose another id in the uri, or leave it out for a random one",
                    )
                } else {
                    (said, "")
                };
                self.emit(SignallerEvent::Error(SignallerError::Refused {
                    code: kind.to_owned(),
                    message,
                    hint: hint.to_owned(),
                }));
                return Err(Fatal);
            }
            "OFFER" => self.on_offer(src, payload),
            "ANSWER" => {
                let connection_id = payload["connectionId"].as_str().unwrap_or_default();
                let Some(session) = self.session_of(&src, connection_id) else {
                    return Ok(());
                };
                let Ok(description) =
                    serde_json::from_value::<SessionDescription>(payload["sdp"].clone())
                else {
                    return Ok(());
                };
                if let Some(link) = self.links.get_mut(&session) {
                    link.awaiting_answer = false;
                }
                self.emit(SignallerEvent::RemoteDescription {
                    session,
                    description,
                });
            }
            "CANDIDATE" => {
                let connection_id = payload["connectionId"].as_str().unwrap_or_default();
                let Some(session) = self.session_of(&src, connection_id) else {
                    return Ok(());
                };
                if let Ok(candidate) =
                    serde_json::from_value::<IceCandidate>(payload["candidate"].clone())
                {
                    self.emit(SignallerEvent::RemoteCandidate {
                        session,
                        candidate: Some(candidate),
                    });
                }
            }
            "LEAVE" => self.end_sessions_with(&src, false, &format!("peer \"{src}\" left")),
            "EXPIRE" => {
                let reason = format!("peer \"{src}\" is not connected to the PeerServer");
                self.end_sessions_with(&src, true, &reason);
                if self.address.call.as_deref() == Some(src.as_str()) {
                    self.emit(SignallerEvent::Warning(SignallerError::Protocol(format!(
                        "{reason}; calling again in {} s",
                        RECALL_AFTER.as_secs()
                    ))));
                    self.recall_at = Some(Instant::now() + RECALL_AFTER);
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn on_offer(&mut self, src: String, payload: &Value) {
        let connection_id = payload["connectionId"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let Ok(offer) = serde_json::from_value::<SessionDescription>(payload["sdp"].clone()) else {
            return;
        };
        if offer.kind != SdpKind::Offer || connection_id.is_empty() {
            return;
        }
        let kind = match payload["type"].as_str() {
            Some("data") => Kind::Data,
            _ => Kind::Media,
        };
        let refusal = match &self.only_from {
            Some(wanted) if *wanted != src => Some(format!("only \"{wanted}\" may call")),
            _ => None,
        };
        if let Some(reason) = refusal {
            self.emit(SignallerEvent::Warning(SignallerError::Protocol(format!(
                "refused a {} connection from \"{src}\": {reason}",
                kind.name()
            ))));
            if !self.links.values().any(|l| l.peer == src) {
                self.send(json!({"type": "LEAVE", "dst": src}));
            }
            return;
        }
        // PeerJS offers the same connection again to replace it.
        if let Some(old) = self.session_of(&src, &connection_id) {
            self.links.remove(&old);
            self.emit(SignallerEvent::SessionEnded {
                session: old,
                reason: "offered again".into(),
            });
        }
        let framing = match kind {
            Kind::Data => {
                let serialization = Serialization::from_offer(payload["serialization"].as_str());
                Some(Arc::new(PeerJsFraming::new(serialization))
                    as Arc<dyn crate::datachannel::Framing>)
            }
            Kind::Media => None,
        };
        let session = self.new_session_id(&connection_id);
        self.links.insert(
            session.clone(),
            Link {
                peer: src.clone(),
                connection_id,
                kind,
                awaiting_answer: false,
            },
        );
        self.emit(SignallerEvent::SessionStarted {
            session,
            peer: src,
            negotiation: Negotiation::Answer(offer),
            ice_servers: Vec::new(),
            // The caller opened the channel PeerJS uses; one of ours would
            // take its place in the caller's connection.
            data_channels: Some(DataChannelPlan {
                open: Vec::new(),
                framing,
            }),
        });
    }

    /// `?call=PEER`: a media call, offered by the element.
    fn place_call(&mut self) {
        let Some(callee) = self.address.call.clone() else {
            return;
        };
        if self.links.values().any(|l| l.peer == callee) {
            return;
        }
        let connection_id = format!("mc_{}", random_token(10));
        let session = self.new_session_id(&connection_id);
        self.links.insert(
            session.clone(),
            Link {
                peer: callee.clone(),
                connection_id,
                kind: Kind::Media,
                awaiting_answer: true,
            },
        );
        self.emit(SignallerEvent::SessionStarted {
            session,
            peer: callee,
            negotiation: Negotiation::Offer,
            ice_servers: Vec::new(),
            data_channels: Some(DataChannelPlan {
                open: Vec::new(),
                framing: None,
            }),
        });
    }

    /// Ends the element's sessions with `peer` (only unanswered calls with
    /// `unanswered_only`).
    fn end_sessions_with(&mut self, peer: &str, unanswered_only: bool, reason: &str) {
        let ended: Vec<String> = self
            .links
            .iter()
            .filter(|(_, l)| l.peer == peer && (!unanswered_only || l.awaiting_answer))
            .map(|(session, _)| session.clone())
            .collect();
        for session in ended {
            self.links.remove(&session);
            self.emit(SignallerEvent::SessionEnded {
                session,
                reason: reason.to_owned(),
            });
        }
    }

    fn on_command(&mut self, command: SignallerCommand) {
        match command {
            SignallerCommand::Description {
                session,
                description,
            } => {
                let Some(link) = self.links.get(&session) else {
                    return;
                };
                let kind = match description.kind {
                    SdpKind::Offer => "OFFER",
                    SdpKind::Answer => "ANSWER",
                };
                let mut payload = json!({
                    "sdp": description,
                    "type": link.kind.name(),
                    "connectionId": link.connection_id,
                });
                if description.kind == SdpKind::Offer {
                    payload["metadata"] = Value::Null;
                }
                self.send(json!({"type": kind, "dst": link.peer, "payload": payload}));
            }
            SignallerCommand::Candidate { session, candidate } => {
                // PeerJS has no end-of-candidates.
                let (Some(link), Some(candidate)) = (self.links.get(&session), candidate) else {
                    return;
                };
                self.send(json!({"type": "CANDIDATE", "dst": link.peer, "payload": {
                    "candidate": candidate,
                    "type": link.kind.name(),
                    "connectionId": link.connection_id,
                }}));
            }
            SignallerCommand::EndSession { session, .. } => {
                let Some(link) = self.links.remove(&session) else {
                    return;
                };
                // LEAVE closes every connection the other side has with
                // us: said when this was the last one.
                if !self.links.values().any(|l| l.peer == link.peer) {
                    self.send(json!({"type": "LEAVE", "dst": link.peer}));
                }
            }
            SignallerCommand::Message { .. } => {
                if !std::mem::replace(&mut self.warned_messages, true) {
                    self.emit(SignallerEvent::Warning(SignallerError::Protocol(
                        "a PeerServer relays no application messages: send on a data \
                         connection (send-string) instead"
                            .into(),
                    )));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_uri_gives_server_key_id_and_callee() {
        let address = Address::parse("peerjs://127.0.0.1:9000/studio").unwrap();
        assert_eq!(
            address,
            Address {
                secure: false,
                authority: "127.0.0.1:9000".into(),
                path: "/".into(),
                key: "peerjs".into(),
                id: Some("studio".into()),
                call: None,
            }
        );
        assert_eq!(
            address.socket_url("studio", "t0k"),
            "ws://127.0.0.1:9000/peerjs?key=peerjs&id=studio&token=t0k&version=1.5.5"
        );
        assert_eq!(address.http_base(), "http://127.0.0.1:9000/");

        let address =
            Address::parse("peerjs://peers.example/?key=app&path=myapp&call=alice&secure=1")
                .unwrap();
        assert_eq!(address.authority, "peers.example:443");
        assert_eq!(address.id, None);
        assert_eq!(address.call.as_deref(), Some("alice"));
        assert_eq!(address.http_base(), "https://peers.example:443/myapp/");
        assert!(
            address
                .socket_url("x y", "t")
                .starts_with("wss://peers.example/myapp/peerjs?key=app&id=x+y&")
        );
        assert!(Address::parse("peerjs+https://h/a").unwrap().secure);
        assert_eq!(Address::parse("peerjs://h/a").unwrap().authority, "h:9000");
        assert!(
            Address::parse("peerjs://h/a/b")
                .unwrap_err()
                .contains("?path=")
        );
        assert!(Address::parse("peerjs:///nohost").is_err());
    }
}
