//! peersrc's properties: declared once, with the settings they fill.

use std::sync::LazyLock;
use std::time::Duration;

use gst::glib;
use gst::prelude::*;

use crate::common::{self, CommonSettings, DEFAULT_LATENCY_MS, DEFAULT_PRODUCER_TIMEOUT};

#[derive(Debug, Clone)]
pub struct Settings {
    pub common: CommonSettings,
    pub producer: Option<String>,
    pub decode: bool,
    pub latency_ms: u32,
    pub producer_timeout: Duration,
    pub eos_on_leave: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            common: CommonSettings::default(),
            producer: None,
            decode: true,
            latency_ms: DEFAULT_LATENCY_MS,
            producer_timeout: DEFAULT_PRODUCER_TIMEOUT,
            eos_on_leave: false,
        }
    }
}

pub fn properties() -> &'static [glib::ParamSpec] {
    static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
        let mut properties = common::properties();
        properties.extend([
            glib::ParamSpecString::builder("producer")
                .nick("Producer")
                .blurb("Peer id of the producer to receive; unset: the first producer in the room")
                .mutable_ready()
                .build(),
            glib::ParamSpecUInt::builder("producer-timeout")
                .nick("Producer timeout")
                .blurb("Seconds to wait for a named producer to join before failing (0: wait forever)")
                .maximum(86_400)
                .default_value(DEFAULT_PRODUCER_TIMEOUT.as_secs() as u32)
                .mutable_ready()
                .build(),
            glib::ParamSpecBoolean::builder("eos-on-leave")
                .nick("EOS on leave")
                .blurb(
                    "When the producer leaves, its connection dies or its media stops for 10 s, end \
                     the streams (EOS, so files get finalized) and post a peer-producer-left element \
                     message, instead of posting an error",
                )
                .default_value(false)
                .mutable_ready()
                .build(),
            glib::ParamSpecBoolean::builder("decode")
                .nick("Decode")
                .blurb("Output raw audio and video; false outputs the depayloaded encoded streams (for recording)")
                .default_value(true)
                .mutable_ready()
                .build(),
            glib::ParamSpecUInt::builder("latency")
                .nick("Latency")
                .blurb("Jitter buffer length in milliseconds")
                .maximum(60_000)
                    .default_value(DEFAULT_LATENCY_MS)
                .mutable_ready()
                .build(),
            glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                .nick("Statistics")
                .blurb("Producer id and webrtcbin statistics of the session (bitrate, loss, jitter, RTT)")
                .read_only()
                .build(),
        ]);
        properties
    });
    PROPERTIES.as_ref()
}

impl Settings {
    /// Sets `name`; false when it is not a settings property.
    pub fn set(&mut self, name: &str, value: &glib::Value) -> bool {
        let settings = self;
        if settings.common.set(name, value) {
            return true;
        }
        match name {
            "producer" => {
                settings.producer = value
                    .get::<Option<String>>()
                    .expect("type checked upstream")
                    .filter(|s| !s.is_empty())
            }
            "eos-on-leave" => settings.eos_on_leave = value.get().expect("type checked upstream"),
            "producer-timeout" => {
                settings.producer_timeout =
                    Duration::from_secs(value.get::<u32>().expect("type checked upstream") as u64)
            }
            "decode" => settings.decode = value.get().expect("type checked upstream"),
            "latency" => settings.latency_ms = value.get().expect("type checked upstream"),
            _ => return false,
        }
        true
    }

    pub fn get(&self, name: &str) -> Option<glib::Value> {
        let settings = self;
        if let Some(value) = settings.common.get(name) {
            return Some(value);
        }
        Some(match name {
            "producer" => settings.producer.to_value(),
            "producer-timeout" => (settings.producer_timeout.as_secs() as u32).to_value(),
            "eos-on-leave" => settings.eos_on_leave.to_value(),
            "decode" => settings.decode.to_value(),
            "latency" => settings.latency_ms.to_value(),
            _ => return None,
        })
    }
}
