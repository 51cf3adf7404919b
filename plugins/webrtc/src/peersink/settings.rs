//! peersink's properties: declared once, with the settings they fill.

use std::sync::LazyLock;
use std::time::Duration;

use gst::glib;
use gst::prelude::*;

use super::input::EncoderSettings;
use super::layers;
use super::viewer::ViewerOptions;
use crate::codec::{VideoCodec, VideoContentHint};
use crate::common::{self, CommonSettings};

const DEFAULT_VIDEO_BITRATE: u32 = 2_000_000;
const DEFAULT_AUDIO_BITRATE: u32 = 64_000;
const DEFAULT_MIN_KEYFRAME_INTERVAL_MS: u32 = 300;
/// What `video-layers` accepts for a layer, too (`layers.rs`).
const MAX_VIDEO_BITRATE: u32 = 50_000_000;
/// A minute: longer and a joining viewer would wait that long for a picture.
const MAX_MIN_KEYFRAME_INTERVAL_MS: u32 = 60_000;
/// An hour.
const MAX_STATS_INTERVAL_MS: u32 = 3_600_000;
/// Viewers served at once unless `max-viewers` says otherwise: each holds a
/// webrtcbin (about 11 threads), so a producer that anyone may ask is
/// bounded by default.
pub const DEFAULT_MAX_VIEWERS: u32 = 100;
/// Seconds a viewer has to connect after its session starts.
pub const DEFAULT_VIEWER_TIMEOUT_S: u32 = 15;

#[derive(Debug, Clone)]
pub struct Settings {
    pub common: CommonSettings,
    pub video_codec: VideoCodec,
    pub video_content_hint: VideoContentHint,
    pub video_bitrate: u32,
    pub video_layers: Option<String>,
    pub audio_bitrate: u32,
    pub max_viewers: u32,
    pub viewer_timeout_s: u32,
    pub min_keyframe_interval_ms: u32,
    pub stats_interval_ms: u32,
    pub fec_percentage: u32,
    /// 0: one per core.
    pub send_threads: u32,
    pub transport_cc: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            common: CommonSettings::default(),
            video_codec: VideoCodec::Vp8,
            video_content_hint: VideoContentHint::Motion,
            video_bitrate: DEFAULT_VIDEO_BITRATE,
            video_layers: None,
            audio_bitrate: DEFAULT_AUDIO_BITRATE,
            max_viewers: DEFAULT_MAX_VIEWERS,
            viewer_timeout_s: DEFAULT_VIEWER_TIMEOUT_S,
            min_keyframe_interval_ms: DEFAULT_MIN_KEYFRAME_INTERVAL_MS,
            stats_interval_ms: 0,
            fec_percentage: 0,
            send_threads: 0,
            transport_cc: true,
        }
    }
}

impl Settings {
    /// Encoder settings; fails with a message naming `video-layers` when
    /// it cannot be parsed.
    pub fn encoder(&self) -> Result<EncoderSettings, String> {
        Ok(EncoderSettings {
            video_codec: self.video_codec,
            video_content_hint: self.video_content_hint,
            video_layers: layers::parse_layers(
                self.video_layers.as_deref().unwrap_or(""),
                self.video_bitrate,
            )?,
            audio_bitrate: self.audio_bitrate,
            min_keyframe_interval: self.min_keyframe_interval(),
        })
    }

    pub fn min_keyframe_interval(&self) -> Duration {
        Duration::from_millis(self.min_keyframe_interval_ms as u64)
    }

    /// `None`: viewers may take as long as they like to connect.
    pub fn viewer_timeout(&self) -> Option<Duration> {
        (self.viewer_timeout_s > 0).then(|| Duration::from_secs(self.viewer_timeout_s.into()))
    }

    pub fn viewer_options(&self) -> ViewerOptions {
        ViewerOptions {
            fec_percentage: self.fec_percentage,
            transport_cc: self.transport_cc,
        }
    }

    /// Sets `name`; false when it is not a settings property.
    pub fn set(&mut self, name: &str, value: &glib::Value) -> bool {
        if self.common.set(name, value) {
            return true;
        }
        let number = || value.get::<u32>().expect("type checked upstream");
        match name {
            "video-codec" => self.video_codec = value.get().expect("type checked upstream"),
            "video-content-hint" => {
                self.video_content_hint = value.get().expect("type checked upstream")
            }
            "video-bitrate" => self.video_bitrate = number(),
            "video-layers" => {
                self.video_layers = value
                    .get::<Option<String>>()
                    .expect("type checked upstream")
                    .filter(|text| !text.trim().is_empty())
            }
            "audio-bitrate" => self.audio_bitrate = number(),
            "max-viewers" => self.max_viewers = number(),
            "viewer-timeout" => self.viewer_timeout_s = number(),
            "min-keyframe-interval" => self.min_keyframe_interval_ms = number(),
            "stats-interval" => self.stats_interval_ms = number(),
            "fec-percentage" => self.fec_percentage = number(),
            "send-threads" => self.send_threads = number(),
            "transport-cc" => self.transport_cc = value.get().expect("type checked upstream"),
            _ => return false,
        }
        true
    }

    pub fn get(&self, name: &str) -> Option<glib::Value> {
        if let Some(value) = self.common.get(name) {
            return Some(value);
        }
        Some(match name {
            "video-codec" => self.video_codec.to_value(),
            "video-content-hint" => self.video_content_hint.to_value(),
            "video-bitrate" => self.video_bitrate.to_value(),
            "video-layers" => self.video_layers.to_value(),
            "audio-bitrate" => self.audio_bitrate.to_value(),
            "max-viewers" => self.max_viewers.to_value(),
            "viewer-timeout" => self.viewer_timeout_s.to_value(),
            "min-keyframe-interval" => self.min_keyframe_interval_ms.to_value(),
            "stats-interval" => self.stats_interval_ms.to_value(),
            "fec-percentage" => self.fec_percentage.to_value(),
            "send-threads" => self.send_threads.to_value(),
            "transport-cc" => self.transport_cc.to_value(),
            _ => return None,
        })
    }
}

pub fn properties() -> &'static [glib::ParamSpec] {
    static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
        let mut properties = common::properties();
        properties.extend([
            glib::ParamSpecEnum::builder_with_default("video-codec", VideoCodec::Vp8)
                .nick("Video codec")
                .blurb("Codec raw video is encoded to, once per layer for every viewer")
                .mutable_ready()
                .build(),
            glib::ParamSpecEnum::builder_with_default(
                "video-content-hint",
                VideoContentHint::Motion,
            )
            .nick("Video content hint")
            .blurb(
                "What the video shows, like a browser track's contentHint: with detail or text \
                 (a screen, a canvas) the VP8 encoders skip blocks that did not change, about \
                 half the encoding of a still picture; motion drops fewer frames of moving \
                 content near the bitrate. VP8 only",
            )
            .mutable_ready()
            .build(),
            glib::ParamSpecUInt::builder("video-bitrate")
                .nick("Video bitrate")
                .blurb(
                    "Target bitrate of the video encoder, in bits per second \
                     (when video-layers is unset)",
                )
                .minimum(10_000)
                .maximum(MAX_VIDEO_BITRATE)
                .default_value(DEFAULT_VIDEO_BITRATE)
                .mutable_ready()
                .build(),
            glib::ParamSpecString::builder("video-layers")
                .nick("Video layers")
                .blurb(
                    "Quality layers of raw video, comma-separated WIDTHxHEIGHT@BITRATE \
                     (kbit/s, or with k/M), e.g. 1280x720@2M,640x360@600,320x180@150: \
                     one encoder each; every viewer gets the best layer its network carries. \
                     Unset: one layer at the input's size and video-bitrate",
                )
                .mutable_ready()
                .build(),
            glib::ParamSpecUInt::builder("audio-bitrate")
                .nick("Audio bitrate")
                .blurb("Target bitrate of the Opus encoder, in bits per second")
                .minimum(6_000)
                .maximum(510_000)
                .default_value(DEFAULT_AUDIO_BITRATE)
                .mutable_ready()
                .build(),
            glib::ParamSpecUInt::builder("max-viewers")
                .nick("Maximum viewers")
                .blurb(
                    "Viewers served at once; one more is refused, its session ended with the \
                     reason too-many-viewers (0: no limit)",
                )
                .default_value(DEFAULT_MAX_VIEWERS)
                .mutable_playing()
                .build(),
            glib::ParamSpecUInt::builder("viewer-timeout")
                .nick("Viewer timeout")
                .blurb(
                    "Seconds a viewer has to connect (answer, ICE, DTLS) after its session starts; \
                     then its session is ended with the reason viewer-timeout and its webrtcbin \
                     freed (0: wait forever)",
                )
                .maximum(3600)
                .default_value(DEFAULT_VIEWER_TIMEOUT_S)
                .mutable_playing()
                .build(),
            glib::ParamSpecUInt::builder("min-keyframe-interval")
                .nick("Minimum keyframe interval")
                .blurb(
                    "Milliseconds between keyframes forced, per layer, for joining viewers, \
                     layer switches and PLI/FIR; requests in between are coalesced into one",
                )
                .maximum(MAX_MIN_KEYFRAME_INTERVAL_MS)
                .default_value(DEFAULT_MIN_KEYFRAME_INTERVAL_MS)
                .mutable_playing()
                .build(),
            glib::ParamSpecUInt::builder("fec-percentage")
                .nick("FEC percentage")
                .blurb(
                    "Forward error correction on video (ULPFEC in RED), as a percentage of \
                     the media packets, per viewer; 0 turns it off (retransmission on NACK \
                     is always on)",
                )
                .maximum(100)
                .mutable_ready()
                .build(),
            glib::ParamSpecBoolean::builder("transport-cc")
                .nick("Transport-wide congestion control")
                .blurb(
                    "Ask viewers (in our offers) for transport-wide congestion control feedback: \
                     their per-packet arrival times, which move a viewer down a layer before \
                     its path loses packets. Off: adaptation from receiver reports, NACK and \
                     PLI only, and the sender saves reading 20 feedback messages a second \
                     per viewer",
                )
                .default_value(true)
                .mutable_ready()
                .build(),
            glib::ParamSpecUInt::builder("send-threads")
                .nick("Send threads")
                .blurb(
                    "Threads that push the encoded frames into every viewer's session \
                     (payloading, encryption, sending), shared by all viewers; 0: one per core. \
                     A viewer whose frames wait over 400 ms for them loses those frames",
                )
                .maximum(64)
                .mutable_ready()
                .build(),
            glib::ParamSpecUInt::builder("stats-interval")
                .nick("Statistics interval")
                .blurb(
                    "Milliseconds between peersink-stats element messages on the bus \
                     (per viewer: layer, estimated bandwidth, loss, round trip); 0: none",
                )
                .maximum(MAX_STATS_INTERVAL_MS)
                .mutable_playing()
                .build(),
            glib::ParamSpecUInt::builder("viewers")
                .nick("Viewers")
                .blurb("Number of viewers with a session now")
                .read_only()
                .build(),
            glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                .nick("Statistics")
                .blurb(
                    "Per viewer (one field per session id): peer id, layer, estimated bandwidth, \
                     loss, round trip, packets sent and NACKed, and webrtcbin's own statistics",
                )
                .read_only()
                .build(),
        ]);
        properties
    });
    PROPERTIES.as_ref()
}
