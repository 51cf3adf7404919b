//! Properties and behaviour peersink and peersrc share: where to signal,
//! who to be, and how ICE may connect.

use std::time::Duration;

use gst::glib;
use gst::prelude::*;
use serde_json::Value;

use crate::ice;
use crate::session::SessionConfig;

pub const DEFAULT_LATENCY_MS: u32 = 100;

#[derive(Debug, Clone)]
pub struct CommonSettings {
    pub uri: Option<String>,
    pub peer_id: Option<String>,
    pub meta: Option<String>,
    pub port: u16,
    pub stun_server: Option<String>,
    pub turn_servers: Option<String>,
    pub ice_addresses: Option<String>,
    pub data_channels: String,
    pub tls_ca_file: Option<String>,
    pub token: Option<String>,
    pub relay_only: bool,
}

impl Default for CommonSettings {
    fn default() -> Self {
        CommonSettings {
            uri: None,
            peer_id: None,
            meta: None,
            port: peer_signalling::server::DEFAULT_PORT,
            stun_server: None,
            turn_servers: None,
            ice_addresses: None,
            data_channels: crate::datachannel::DEFAULT_CHANNELS.to_owned(),
            tls_ca_file: None,
            token: None,
            relay_only: false,
        }
    }
}

pub fn properties() -> Vec<glib::ParamSpec> {
    vec![
        glib::ParamSpecString::builder("uri")
            .nick("Signalling URI")
            .blurb(
                "Where to signal: ws://host:port/room or wss://host:port/room for a gst-peer server \
                 (?viewer-offer=true: peersrc offers); whip+http(s)://host/path to publish to a WHIP \
                 endpoint (peersink); whep+http(s)://host/path to play a WHEP endpoint (peersrc); \
                 ?token=T gives a Bearer token. Unset: start a server inside the element on \
                 127.0.0.1 (see \"port\") and print the page to open",
            )
            .mutable_ready()
            .build(),
        glib::ParamSpecString::builder("token")
            .nick("Access token")
            .blurb(
                "Access token (JWT) for a server that requires one (`peer token` mints them): sent \
                 in hello on our protocol, as Authorization: Bearer to WHIP/WHEP endpoints",
            )
            .mutable_ready()
            .build(),
        glib::ParamSpecEnum::builder_with_default(
            "ice-transport-policy",
            gst_webrtc::WebRTCICETransportPolicy::All,
        )
        .nick("ICE transport policy")
        .blurb("all: any candidate pair; relay: only through a TURN server (hides local addresses)")
        .mutable_ready()
        .build(),
        glib::ParamSpecObject::builder::<crate::signaller::settings::SignallerSettings>("signaller")
            .nick("Signaller")
            .blurb(crate::signaller::settings::SUMMARY)
            .read_only()
            .build(),
        glib::ParamSpecString::builder("peer-id")
            .nick("Peer id")
            .blurb("Name to register under (1-64 of A-Z a-z 0-9 . _ -); unset for a random one. Fails if taken")
            .mutable_ready()
            .build(),
        glib::ParamSpecString::builder("meta")
            .nick("Meta")
            .blurb("JSON object announced with this peer, e.g. {\"title\":\"Studio A\"}")
            .mutable_ready()
            .build(),
        glib::ParamSpecUInt::builder("port")
            .nick("Embedded server port")
            .blurb(
                "Port of the embedded server when no uri is set (0 picks a free one; \
                 with the default, the next free of 8080-8089 is used)",
            )
            .maximum(u16::MAX as u32)
            .default_value(peer_signalling::server::DEFAULT_PORT as u32)
            .mutable_ready()
            .build(),
        glib::ParamSpecString::builder("stun-server")
            .nick("STUN server")
            .blurb("STUN server as stun://host:port; none by default (no traffic leaves for a public one)")
            .mutable_ready()
            .build(),
        glib::ParamSpecString::builder("turn-servers")
            .nick("TURN servers")
            .blurb("Comma-separated TURN servers as turn(s)://user:password@host:port")
            .mutable_ready()
            .build(),
        glib::ParamSpecString::builder("ice-addresses")
            .nick("ICE addresses")
            .blurb(
                "Comma-separated local IP addresses ICE may use. Unset: every interface, or 127.0.0.1 \
                 when the host has only loopback",
            )
            .mutable_ready()
            .build(),
        glib::ParamSpecString::builder("data-channels")
            .nick("Data channels")
            .blurb(
                "Data channels to open with each peer, comma-separated: \
                 label[:unordered][:max-retransmits=N][:max-packet-lifetime=MS]. \
                 Channels the peer opens are used as well",
            )
            .default_value(Some(crate::datachannel::DEFAULT_CHANNELS))
            .mutable_ready()
            .build(),
        glib::ParamSpecString::builder("tls-ca-file")
            .nick("TLS CA file")
            .blurb(
                "PEM certificate(s) to trust for wss:// besides the public roots, \
                 e.g. the self-signed certificate of a `peer serve --tls`",
            )
            .mutable_ready()
            .build(),
    ]
}

/// Settings checked and turned into what the element runs with.
pub struct Validated {
    pub session: SessionConfig,
    pub meta: Value,
    pub tls_ca_pem: Option<Vec<u8>>,
}

impl CommonSettings {
    /// Sets a shared property; false when `name` is not one of them.
    pub fn set(&mut self, name: &str, value: &glib::Value) -> bool {
        let text = || {
            value
                .get::<Option<String>>()
                .expect("type checked upstream")
                .filter(|s| !s.is_empty())
        };
        match name {
            "uri" => self.uri = text(),
            "peer-id" => self.peer_id = text(),
            "meta" => self.meta = text(),
            "port" => self.port = value.get::<u32>().expect("type checked upstream") as u16,
            "stun-server" => self.stun_server = text(),
            "turn-servers" => self.turn_servers = text(),
            "ice-addresses" => self.ice_addresses = text(),
            "data-channels" => self.data_channels = text().unwrap_or_default(),
            "tls-ca-file" => self.tls_ca_file = text(),
            "token" => self.token = text(),
            "ice-transport-policy" => {
                self.relay_only = value
                    .get::<gst_webrtc::WebRTCICETransportPolicy>()
                    .expect("type checked upstream")
                    == gst_webrtc::WebRTCICETransportPolicy::Relay
            }
            _ => return false,
        }
        true
    }

    pub fn get(&self, name: &str) -> Option<glib::Value> {
        Some(match name {
            "uri" => self.uri.to_value(),
            "peer-id" => self.peer_id.to_value(),
            "meta" => self.meta.to_value(),
            "port" => (self.port as u32).to_value(),
            "stun-server" => self.stun_server.to_value(),
            "turn-servers" => self.turn_servers.to_value(),
            "ice-addresses" => self.ice_addresses.to_value(),
            "data-channels" => self.data_channels.to_value(),
            "tls-ca-file" => self.tls_ca_file.to_value(),
            "token" => self.token.to_value(),
            "ice-transport-policy" => if self.relay_only {
                gst_webrtc::WebRTCICETransportPolicy::Relay
            } else {
                gst_webrtc::WebRTCICETransportPolicy::All
            }
            .to_value(),
            _ => return None,
        })
    }

    /// Checks everything that can be checked before starting, so that a
    /// mistake fails the state change with a message naming it.
    pub fn validate(&self, latency_ms: u32) -> Result<Validated, String> {
        let meta = match &self.meta {
            None => Value::Null,
            Some(text) => match serde_json::from_str::<Value>(text) {
                Ok(value @ Value::Object(_)) => value,
                Ok(_) => return Err(format!("meta must be a JSON object, got: {text}")),
                Err(err) => return Err(format!("meta is not valid JSON ({err}): {text}")),
            },
        };
        if let Some(id) = &self.peer_id
            && !peer_signalling::protocol::is_valid_name(id)
        {
            return Err(format!(
                "peer-id \"{id}\" is not 1-64 characters of A-Z a-z 0-9 . _ -"
            ));
        }
        if let Some(uri) = &self.uri {
            match crate::signaller::protocol_name(Some(uri)).map_err(|e| e.to_string())? {
                "native" => {
                    peer_signalling::client::RoomAddress::parse(uri)?;
                }
                _ => {
                    url::Url::parse(uri.split_once('+').map_or(uri.as_str(), |(_, rest)| rest))
                        .map_err(|err| format!("uri \"{uri}\" is not a URL: {err}"))?;
                }
            }
        }
        let explicit = match &self.ice_addresses {
            Some(text) => {
                ice::parse_address_list(text).map_err(|err| format!("ice-addresses: {err}"))?
            }
            None => Vec::new(),
        };
        let turn_servers = self
            .turn_servers
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect::<Vec<_>>();
        for turn in &turn_servers {
            if !(turn.starts_with("turn://") || turn.starts_with("turns://")) {
                return Err(format!(
                    "turn-servers: \"{turn}\" must start with turn:// or turns://"
                ));
            }
        }
        if let Some(stun) = &self.stun_server
            && !stun.starts_with("stun://")
        {
            return Err(format!("stun-server \"{stun}\" must start with stun://"));
        }
        let data_channels = crate::datachannel::parse_specs(&self.data_channels)?;
        let config = SessionConfig {
            data_channels,
            stun_server: self.stun_server.clone(),
            turn_servers,
            ice_addresses: ice::addresses_to_use(&explicit),
            latency_ms,
            relay_only: self.relay_only,
            ice_restarts: Default::default(),
        };
        let tls_ca_pem = match &self.tls_ca_file {
            Some(path) => {
                Some(std::fs::read(path).map_err(|err| format!("tls-ca-file \"{path}\": {err}"))?)
            }
            None => None,
        };
        Ok(Validated {
            session: config,
            meta,
            tls_ca_pem,
        })
    }
}

/// How long peersrc waits for a named producer that is not there yet.
pub const DEFAULT_PRODUCER_TIMEOUT: Duration = Duration::from_secs(10);

/// Posts the element message announcing where the element signals, and
/// prints the page address for people running gst-launch.
/// `peer-signalling-lost` on the bus (and a warning): the server went
/// away; the element reconnects, and media already flowing goes on.
pub fn announce_signalling_lost(element: &gst::Element, reason: &str) {
    let structure = gst::Structure::builder("peer-signalling-lost")
        .field("reason", reason)
        .build();
    let _ = element.post_message(
        gst::message::Element::builder(structure)
            .src(element)
            .build(),
    );
    gst::warning!(
        gst::CAT_DEFAULT,
        obj = element,
        "signalling server lost ({reason}); reconnecting"
    );
}

/// `peer-signalling-restored` on the bus: back on a server under the same
/// peer id, `after` the loss.
pub fn announce_signalling_restored(element: &gst::Element, after: std::time::Duration) {
    let structure = gst::Structure::builder("peer-signalling-restored")
        .field("after-ms", after.as_millis() as u64)
        .build();
    let _ = element.post_message(
        gst::message::Element::builder(structure)
            .src(element)
            .build(),
    );
    gst::info!(
        gst::CAT_DEFAULT,
        obj = element,
        "signalling server back after {after:?}"
    );
}

pub fn announce_ready(
    element: &gst::Element,
    peer_id: &str,
    room: &str,
    watch_url: Option<&str>,
    embedded: bool,
) {
    let mut builder = gst::Structure::builder("peer-ready")
        .field("peer-id", peer_id)
        .field("room", room)
        .field("embedded-server", embedded);
    if let Some(url) = watch_url {
        builder = builder.field("url", url);
    }
    let _ = element.post_message(
        gst::message::Element::builder(builder.build())
            .src(element)
            .build(),
    );
    if let Some(url) = watch_url {
        if embedded {
            eprintln!("{}: signalling server embedded; open {url}", element.name());
        }
        gst::info!(
            gst::CAT_DEFAULT,
            obj = element,
            "registered as \"{peer_id}\" in room \"{room}\": {url}"
        );
    }
}

/// The data-channel signals both elements have. `send` carries out the
/// action signals: (element, label, peer or None for every peer, payload).
pub fn data_channel_signals(
    send: fn(&glib::Object, &str, Option<&str>, crate::datachannel::Payload) -> bool,
) -> Vec<glib::subclass::Signal> {
    use crate::datachannel::Payload;
    vec![
        // send-string(label, peer-id or NULL for every peer, text) -> sent to at least one
        glib::subclass::Signal::builder("send-string")
            .param_types([
                String::static_type(),
                Option::<String>::static_type(),
                String::static_type(),
            ])
            .return_type::<bool>()
            .action()
            .class_handler(move |args| {
                let element = args[0].get::<glib::Object>().expect("the element");
                let label = args[1].get::<String>().unwrap_or_default();
                let peer = args[2]
                    .get::<Option<String>>()
                    .ok()
                    .flatten()
                    .filter(|p| !p.is_empty());
                let text = args[3].get::<String>().unwrap_or_default();
                Some(send(&element, &label, peer.as_deref(), Payload::Text(text)).to_value())
            })
            .build(),
        // send-data(label, peer-id or NULL for every peer, bytes) -> sent to at least one
        glib::subclass::Signal::builder("send-data")
            .param_types([
                String::static_type(),
                Option::<String>::static_type(),
                glib::Bytes::static_type(),
            ])
            .return_type::<bool>()
            .action()
            .class_handler(move |args| {
                let element = args[0].get::<glib::Object>().expect("the element");
                let label = args[1].get::<String>().unwrap_or_default();
                let peer = args[2]
                    .get::<Option<String>>()
                    .ok()
                    .flatten()
                    .filter(|p| !p.is_empty());
                let bytes = args[3]
                    .get::<glib::Bytes>()
                    .unwrap_or_else(|_| glib::Bytes::from_static(b""));
                Some(send(&element, &label, peer.as_deref(), Payload::Bytes(bytes)).to_value())
            })
            .build(),
        // data-channel-message(peer-id, label, text or NULL, bytes or NULL)
        glib::subclass::Signal::builder("data-channel-message")
            .param_types([
                String::static_type(),
                String::static_type(),
                Option::<String>::static_type(),
                Option::<glib::Bytes>::static_type(),
            ])
            .run_last()
            .build(),
    ]
}

/// Application messages of the signalling protocol (room chat, cursors,
/// app data; docs/protocol.md `message`), both ways. `send` carries out
/// `send-message`: (element, peer or None for the whole room, JSON text).
pub fn message_signals(
    send: fn(&glib::Object, Option<&str>, &str) -> bool,
) -> Vec<glib::subclass::Signal> {
    vec![
        // send-message(peer-id or NULL for the whole room, JSON text) -> sent
        glib::subclass::Signal::builder("send-message")
            .param_types([Option::<String>::static_type(), String::static_type()])
            .return_type::<bool>()
            .action()
            .class_handler(move |args| {
                let element = args[0].get::<glib::Object>().expect("the element");
                let peer = args[1]
                    .get::<Option<String>>()
                    .ok()
                    .flatten()
                    .filter(|p| !p.is_empty());
                let json = args[2].get::<String>().unwrap_or_default();
                Some(send(&element, peer.as_deref(), &json).to_value())
            })
            .build(),
        // message-received(from peer-id, JSON text)
        glib::subclass::Signal::builder("message-received")
            .param_types([String::static_type(), String::static_type()])
            .run_last()
            .build(),
    ]
}

/// Reports the signaller events both elements report alike (the server
/// ready, application messages, the server lost and back, warnings and
/// errors) and hands back the session events, which each element handles
/// its own way.
pub fn announce_signaller_event(
    element: &gst::Element,
    event: crate::signaller::SignallerEvent,
) -> Option<crate::signaller::SignallerEvent> {
    use crate::error::ElementError;
    use crate::signaller::SignallerEvent;
    match event {
        SignallerEvent::Ready {
            peer_id,
            room,
            watch_url,
            embedded,
        } => announce_ready(element, &peer_id, &room, watch_url.as_deref(), embedded),
        SignallerEvent::Message { from, data } => {
            announce_signalling_message(element, &from, &data)
        }
        SignallerEvent::SignallingLost { reason } => announce_signalling_lost(element, &reason),
        SignallerEvent::SignallingRestored { after } => {
            announce_signalling_restored(element, after)
        }
        SignallerEvent::Warning(error) => ElementError::from(error).post_warning(element),
        SignallerEvent::Error(error) => ElementError::from(error).post_error(element),
        session_event => return Some(session_event),
    }
    None
}

/// The elements' `send-message` action: an application message through
/// the signalling server, to `peer` or the whole room, handed to `send`
/// (false while the element does not run). Not JSON: a warning, false.
pub fn send_message(
    element: &gst::Element,
    peer: Option<&str>,
    json: &str,
    send: impl FnOnce(crate::signaller::SignallerCommand) -> bool,
) -> bool {
    match parse_message(json) {
        Ok(data) => send(crate::signaller::SignallerCommand::Message {
            to: peer.map(str::to_owned),
            data,
        }),
        Err(err) => {
            crate::error::ElementError::Settings(err).post_warning(element);
            false
        }
    }
}

/// Whether `element` was made by the factory `name`.
pub fn is_made_by(element: &gst::Element, name: &str) -> bool {
    element
        .factory()
        .is_some_and(|factory| factory.name() == name)
}

/// The first element made by the factory `name` inside `bin`: among its
/// children, or at any depth when `recurse`.
pub fn child_made_by(bin: &gst::Element, name: &str, recurse: bool) -> Option<gst::Element> {
    let bin = bin.downcast_ref::<gst::Bin>()?;
    let elements = if recurse {
        bin.iterate_recurse()
    } else {
        bin.iterate_elements()
    };
    elements
        .into_iter()
        .flatten()
        .find(|element| is_made_by(element, name))
}

/// Checks an application message before it goes out: JSON, as the
/// protocol carries it.
pub fn parse_message(json: &str) -> Result<serde_json::Value, String> {
    serde_json::from_str(json).map_err(|err| format!("send-message: not JSON ({err}): {json}"))
}

/// Tells the application about a signalling message from `from`: the
/// `message-received` signal and a `peer-message` element message (fields
/// `from`, `json`).
pub fn announce_signalling_message(element: &gst::Element, from: &str, data: &serde_json::Value) {
    let json = data.to_string();
    element.emit_by_name::<()>("message-received", &[&from, &json]);
    let structure = gst::Structure::builder("peer-message")
        .field("from", from)
        .field("json", &json)
        .build();
    let _ = element.post_message(
        gst::message::Element::builder(structure)
            .src(element)
            .build(),
    );
}

/// Tells the application about a data-channel message: the
/// `data-channel-message` signal and a `peer-data-channel-message` element
/// message (fields `peer-id`, `label`, and `text` or `data`).
pub fn announce_message(
    element: &gst::Element,
    peer: &str,
    label: &str,
    payload: &crate::datachannel::Payload,
) {
    use crate::datachannel::Payload;
    let (text, bytes) = match payload {
        Payload::Text(text) => (Some(text.clone()), None),
        Payload::Bytes(bytes) => (None, Some(bytes.clone())),
    };
    element.emit_by_name::<()>("data-channel-message", &[&peer, &label, &text, &bytes]);
    let mut structure = gst::Structure::builder("peer-data-channel-message")
        .field("peer-id", peer)
        .field("label", label);
    structure = match payload {
        Payload::Text(text) => structure.field("text", text),
        Payload::Bytes(bytes) => structure.field("data", bytes),
    };
    let _ = element.post_message(
        gst::message::Element::builder(structure.build())
            .src(element)
            .build(),
    );
}
