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
        }
    }
}

pub fn properties() -> Vec<glib::ParamSpec> {
    vec![
        glib::ParamSpecString::builder("uri")
            .nick("Signalling URI")
            .blurb(
                "Where to signal: ws://host:port/room or wss://host:port/room for a gst-peer server. \
                 Unset: start a server inside the element on 127.0.0.1 (see \"port\") and print the page to open",
            )
            .mutable_ready()
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
    ]
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
            _ => return None,
        })
    }

    /// Checks everything that can be checked before starting, so that a
    /// mistake fails the state change with a message naming it.
    pub fn validate(&self, latency_ms: u32) -> Result<(SessionConfig, Value), String> {
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
            peer_signalling::client::RoomAddress::parse(uri)?;
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
        let config = SessionConfig {
            stun_server: self.stun_server.clone(),
            turn_servers,
            ice_addresses: ice::addresses_to_use(&explicit),
            latency_ms,
        };
        Ok((config, meta))
    }
}

/// How long peersrc waits for a named producer that is not there yet.
pub const DEFAULT_PRODUCER_TIMEOUT: Duration = Duration::from_secs(10);

/// Posts the element message announcing where the element signals, and
/// prints the page address for people running gst-launch.
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
