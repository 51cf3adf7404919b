//! Data channels of a session: which ones the element opens (the
//! `data-channels` property), the ones the peer opens, and the messages
//! both ways.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use gst::glib;
use gst::prelude::*;
use gst_webrtc::WebRTCDataChannel;

/// One channel to open, from `data-channels`: `label[:unordered][:max-retransmits=N][:max-packet-lifetime=MS]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelSpec {
    pub label: String,
    pub ordered: bool,
    pub max_retransmits: Option<i32>,
    pub max_packet_lifetime: Option<i32>,
}

pub const DEFAULT_CHANNELS: &str = "chat";

/// Parses the `data-channels` property: comma-separated channel specs.
pub fn parse_specs(text: &str) -> Result<Vec<ChannelSpec>, String> {
    let mut specs = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let mut parts = item.split(':');
        let label = parts.next().unwrap_or_default().trim().to_owned();
        if label.is_empty() {
            return Err(format!("data-channels: \"{item}\" has no label"));
        }
        let mut spec = ChannelSpec {
            label,
            ordered: true,
            max_retransmits: None,
            max_packet_lifetime: None,
        };
        for option in parts {
            let number = |value: &str| {
                value.parse::<i32>().map_err(|_| {
                    format!("data-channels: \"{option}\" in \"{item}\" needs a whole number")
                })
            };
            match option.split_once('=') {
                None if option == "unordered" => spec.ordered = false,
                Some(("max-retransmits", value)) => spec.max_retransmits = Some(number(value)?),
                Some(("max-packet-lifetime", value)) => {
                    spec.max_packet_lifetime = Some(number(value)?)
                }
                _ => {
                    return Err(format!(
                        "data-channels: unknown option \"{option}\" in \"{item}\" \
                         (expected unordered, max-retransmits=N, max-packet-lifetime=MS)"
                    ));
                }
            }
        }
        if spec.max_retransmits.is_some() && spec.max_packet_lifetime.is_some() {
            return Err(format!(
                "data-channels: \"{item}\" sets both max-retransmits and max-packet-lifetime; pick one"
            ));
        }
        if specs.iter().any(|s: &ChannelSpec| s.label == spec.label) {
            return Err(format!(
                "data-channels: label \"{}\" appears twice",
                spec.label
            ));
        }
        specs.push(spec);
    }
    Ok(specs)
}

/// What travels on a channel.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    Text(String),
    Bytes(glib::Bytes),
}

/// How a signalling protocol frames application messages on its data
/// channels (PeerJS: binarypack with chunking, JSON): the element's
/// signals carry whole messages, the channel what the protocol needs.
pub trait Framing: Send + Sync {
    /// For logs.
    fn name(&self) -> &'static str;
    /// One message the element sends → the channel messages carrying it.
    fn encode(&self, message: &Payload) -> Result<Vec<Payload>, String>;
    /// One channel message received → the whole message it completes, if any.
    fn decode(&self, message: Payload) -> Result<Option<Payload>, String>;
}

/// The open (or opening) channels of one session, by label.
#[derive(Default)]
pub struct Channels {
    by_label: Mutex<HashMap<String, WebRTCDataChannel>>,
    framing: Mutex<Option<Arc<dyn Framing>>>,
}

impl Channels {
    /// Creates the element's own channels; call before the offer.
    pub fn create(
        &self,
        webrtcbin: &gst::Element,
        specs: &[ChannelSpec],
    ) -> Vec<WebRTCDataChannel> {
        let mut created = Vec::new();
        for spec in specs {
            let mut options =
                gst::Structure::builder("data-channel-options").field("ordered", spec.ordered);
            if let Some(n) = spec.max_retransmits {
                options = options.field("max-retransmits", n);
            }
            if let Some(ms) = spec.max_packet_lifetime {
                options = options.field("max-packet-lifetime", ms);
            }
            let channel = webrtcbin.emit_by_name::<Option<WebRTCDataChannel>>(
                "create-data-channel",
                &[&spec.label, &options.build()],
            );
            if let Some(channel) = channel {
                self.by_label
                    .lock()
                    .unwrap()
                    .insert(spec.label.clone(), channel.clone());
                created.push(channel);
            }
        }
        created
    }

    /// Registers a channel the peer opened.
    pub fn adopt(&self, channel: &WebRTCDataChannel) {
        if let Some(label) = channel.label() {
            self.by_label
                .lock()
                .unwrap()
                .insert(label.to_string(), channel.clone());
        }
    }

    /// Frames every message of this session's channels (set before any
    /// channel opens).
    pub fn set_framing(&self, framing: Arc<dyn Framing>) {
        *self.framing.lock().unwrap() = Some(framing);
    }

    pub fn framing(&self) -> Option<Arc<dyn Framing>> {
        self.framing.lock().unwrap().clone()
    }

    /// Sends on the channel `label` (empty: on every open channel of the
    /// session, for protocols whose peers pick labels of their own); false
    /// when there is no such open channel, or the framing refused it.
    pub fn send(&self, label: &str, payload: &Payload) -> bool {
        let channels: Vec<WebRTCDataChannel> = {
            let by_label = self.by_label.lock().unwrap();
            if label.is_empty() {
                by_label.values().cloned().collect()
            } else {
                by_label.get(label).cloned().into_iter().collect()
            }
        };
        let open =
            |c: &&WebRTCDataChannel| c.ready_state() == gst_webrtc::WebRTCDataChannelState::Open;
        let channels: Vec<&WebRTCDataChannel> = channels.iter().filter(open).collect();
        if channels.is_empty() {
            return false;
        }
        let messages = match self.framing() {
            None => vec![payload.clone()],
            Some(framing) => match framing.encode(payload) {
                Ok(messages) => messages,
                Err(err) => {
                    gst::warning!(gst::CAT_DEFAULT, "cannot send on \"{label}\": {err}");
                    return false;
                }
            },
        };
        let mut sent = false;
        for channel in channels {
            sent |= messages.iter().all(|message| {
                match message {
                    Payload::Text(text) => channel.send_string_full(Some(text)),
                    Payload::Bytes(bytes) => channel.send_data_full(Some(bytes)),
                }
                .is_ok()
            });
        }
        sent
    }
}

/// Calls `on_message(label, payload)` for every message on `channel`.
pub fn watch(
    channel: &WebRTCDataChannel,
    on_message: impl Fn(String, Payload) + Send + Sync + Clone + 'static,
) {
    let on_text = on_message.clone();
    channel.connect_on_message_string(move |channel, text| {
        let label = channel.label().map(|l| l.to_string()).unwrap_or_default();
        on_text(label, Payload::Text(text.unwrap_or_default().to_owned()));
    });
    channel.connect_on_message_data(move |channel, bytes| {
        let label = channel.label().map(|l| l.to_string()).unwrap_or_default();
        let bytes = bytes
            .cloned()
            .unwrap_or_else(|| glib::Bytes::from_static(b""));
        on_message(label, Payload::Bytes(bytes));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_with_options() {
        let specs =
            parse_specs("chat, cursors:unordered:max-retransmits=0,state:max-packet-lifetime=500")
                .unwrap();
        assert_eq!(specs.len(), 3);
        assert!(specs[0].ordered && specs[0].max_retransmits.is_none());
        assert!(!specs[1].ordered);
        assert_eq!(specs[1].max_retransmits, Some(0));
        assert_eq!(specs[2].max_packet_lifetime, Some(500));
        assert!(parse_specs("").unwrap().is_empty());
    }

    #[test]
    fn bad_specs_name_the_problem() {
        assert!(parse_specs("chat:fast").unwrap_err().contains("fast"));
        assert!(
            parse_specs("a:max-retransmits=x")
                .unwrap_err()
                .contains("whole number")
        );
        assert!(parse_specs("a,a").unwrap_err().contains("twice"));
        assert!(parse_specs(":unordered").unwrap_err().contains("no label"));
        assert!(
            parse_specs("a:max-retransmits=1:max-packet-lifetime=2")
                .unwrap_err()
                .contains("both")
        );
    }
}
