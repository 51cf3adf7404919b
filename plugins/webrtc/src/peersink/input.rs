//! One input of peersink: its pad, the encoder chain built when its caps
//! are known, and the encodings every viewer takes from. Whatever the
//! number of viewers, each input is encoded once per quality layer.
//!
//! ```text
//! one layer:  entry → videoconvert → vp8enc → output
//! layers:     entry → tee ─ queue → videoconvert → videoscale → caps → vp8enc → output (layer 0)
//!                         └ queue → videoconvert → videoscale → caps → vp8enc → output (layer 1)
//! ```
//! Each output is a pacing sink whose pad fans buffers out (encoding.rs).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use gst::prelude::*;

use super::encoding::Encoding;
use super::layers::LayerSpec;
use crate::codec::{Codec, MediaKind, VideoCodec, VideoContentHint};
use crate::keyframe::KeyframeLimiter;
use crate::session::discard;

#[derive(Debug, Clone)]
pub struct EncoderSettings {
    pub video_codec: VideoCodec,
    pub video_content_hint: VideoContentHint,
    /// Video quality layers, best first (one at the input's size by default).
    pub video_layers: Vec<LayerSpec>,
    pub audio_bitrate: u32,
    pub min_keyframe_interval: Duration,
}

/// One encoding to build: its layer (video) and element descriptions.
type Branch = (Option<LayerSpec>, Vec<String>);

pub struct Input {
    pub pad_name: String,
    pub kind: MediaKind,
    /// A queue: the ghost pad's target, and the thread that encodes.
    pub entry: gst::Element,
    /// Everything built for the caps: converters, encoders, outputs.
    chain: Mutex<Vec<gst::Element>>,
    encodings: Mutex<Vec<Arc<Encoding>>>,
    codec: Mutex<Option<Codec>>,
    /// H.264 only: `profile-level-id` read from the best layer's SPS,
    /// which is what the payloader will put in its caps; offering
    /// anything else would fail caps negotiation inside webrtcbin.
    h264_profile_level_id: Mutex<Option<String>>,
    /// Called when the input becomes ready to offer.
    on_ready: Box<dyn Fn() + Send + Sync>,
}

impl Input {
    pub fn new(
        bin: &gst::Bin,
        pad_name: &str,
        kind: MediaKind,
        on_ready: Box<dyn Fn() + Send + Sync>,
    ) -> Result<Arc<Input>, String> {
        let entry = make("queue", format!("{pad_name}-entry"))?;
        entry.set_property("max-size-buffers", 3u32);
        entry.set_property("max-size-bytes", 0u32);
        entry.set_property("max-size-time", 0u64);
        bin.add(&entry).map_err(|e| e.to_string())?;
        Ok(Arc::new(Input {
            pad_name: pad_name.to_owned(),
            kind,
            entry,
            chain: Mutex::new(Vec::new()),
            encodings: Mutex::new(Vec::new()),
            codec: Mutex::new(None),
            h264_profile_level_id: Mutex::new(None),
            on_ready,
        }))
    }

    pub fn codec(&self) -> Option<Codec> {
        *self.codec.lock().unwrap()
    }

    /// The encodings viewers take from: one per layer (video), one (audio).
    pub fn encodings(&self) -> Vec<Arc<Encoding>> {
        self.encodings.lock().unwrap().clone()
    }

    /// The codec this input will be sent as, before caps are known (for
    /// the stream list announced to the room).
    pub fn announced_codec(&self, settings: &EncoderSettings) -> Codec {
        self.codec().unwrap_or(match self.kind {
            MediaKind::Video => settings.video_codec.into(),
            MediaKind::Audio => Codec::Opus,
        })
    }

    /// RTP caps to offer, once every encoding's caps (and for H.264 the
    /// SPS) are known.
    pub fn rtp_caps(&self) -> Option<gst::Caps> {
        let codec = self.codec()?;
        let encodings = self.encodings();
        if encodings.is_empty() || encodings.iter().any(|e| e.caps().is_none()) {
            return None;
        }
        let profile_level_id = match codec {
            Codec::H264 => Some(self.h264_profile_level_id.lock().unwrap().clone()?),
            _ => None,
        };
        Some(codec.rtp_caps(profile_level_id.as_deref()))
    }

    pub fn is_ready(&self) -> bool {
        self.rtp_caps().is_some()
    }

    /// Builds entry → (convert, scale, encode, parse) → outputs for these
    /// input caps. Runs in the streaming thread, from the probe that sees
    /// the caps before they leave the entry queue. Returns the codec and
    /// a warning for the application, if any.
    pub fn build_chain(
        self: &Arc<Self>,
        bin: &gst::Bin,
        caps: &gst::CapsRef,
        settings: &EncoderSettings,
    ) -> Result<(Codec, Option<String>), String> {
        let structure = caps.structure(0).ok_or("empty caps")?;
        let name = structure.name().as_str();
        let mut warning = None;
        // Per encoding: the elements between the split and its output.
        let (codec, branches): (Codec, Vec<Branch>) = if let Some(codec) =
            Codec::from_encoded_caps(structure)
        {
            if codec.kind() != self.kind {
                return Err(format!(
                    "{} pad {} cannot take {name}",
                    self.kind.as_str(),
                    self.pad_name
                ));
            }
            if self.kind == MediaKind::Video && settings.video_layers.len() > 1 {
                warning = Some(format!(
                    "{} is already encoded: it is sent as it is, in one layer (video-layers needs raw video)",
                    self.pad_name
                ));
            }
            let chain = match codec {
                Codec::H264 => vec![
                    "h264parse config-interval=-1".to_owned(),
                    "capsfilter caps=video/x-h264,stream-format=byte-stream,alignment=au"
                        .to_owned(),
                ],
                _ => Vec::new(),
            };
            (codec, vec![(None, chain)])
        } else if name == "video/x-raw" && self.kind == MediaKind::Video {
            let codec: Codec = settings.video_codec.into();
            let branches = settings
                .video_layers
                .iter()
                .map(|layer| {
                    let pixels = layer.size.map_or_else(
                        || {
                            let dimension = |name| structure.get::<i32>(name).unwrap_or(0).max(0);
                            dimension("width") as u64 * dimension("height") as u64
                        },
                        |(width, height)| width as u64 * height as u64,
                    );
                    let chain =
                        video_encoder_chain(codec, layer, pixels, settings.video_content_hint);
                    (Some(*layer), chain)
                })
                .collect();
            (codec, branches)
        } else if name == "audio/x-raw" && self.kind == MediaKind::Audio {
            (
                Codec::Opus,
                vec![(None, audio_encoder_chain(settings.audio_bitrate))],
            )
        } else {
            return Err(format!(
                "{} pad {} cannot send {name}; it takes raw {} or {}",
                self.kind.as_str(),
                self.pad_name,
                self.kind.as_str(),
                match self.kind {
                    MediaKind::Video => "VP8, VP9 or H.264",
                    MediaKind::Audio => "Opus",
                }
            ));
        };

        let mut added = Vec::new();
        let result = self.build_branches(bin, codec, &branches, settings, &mut added);
        if let Err(err) = result {
            for element in added {
                discard(bin, &element);
            }
            return Err(err);
        }
        *self.codec.lock().unwrap() = Some(codec);
        Ok((codec, warning))
    }

    fn build_branches(
        self: &Arc<Self>,
        bin: &gst::Bin,
        codec: Codec,
        branches: &[Branch],
        settings: &EncoderSettings,
        added: &mut Vec<gst::Element>,
    ) -> Result<(), String> {
        // Several layers split the raw input; each encodes on its own
        // thread, behind a leaky queue so that a slow layer drops its own
        // frames instead of holding the others.
        let split = if branches.len() > 1 {
            let tee = make("tee", format!("{}-split", self.pad_name))?;
            bin.add(&tee).map_err(|e| e.to_string())?;
            added.push(tee.clone());
            self.entry.link(&tee).map_err(|e| e.to_string())?;
            Some(tee)
        } else {
            None
        };
        let live = self.is_live();
        let mut encodings = Vec::new();
        for (index, (layer, descriptions)) in branches.iter().enumerate() {
            let prefix = format!("{}-{index}", self.pad_name);
            let mut elements = Vec::new();
            if split.is_some() {
                let queue = make("queue", format!("{prefix}-queue"))?;
                queue.set_property("max-size-buffers", 2u32);
                queue.set_property("max-size-bytes", 0u32);
                queue.set_property("max-size-time", 0u64);
                queue.set_property_from_str("leaky", "downstream");
                elements.push(queue);
            }
            for description in descriptions {
                let element = gst::parse::launch(description)
                    .map_err(|err| format!("cannot create \"{description}\": {err}"))?;
                // A chain may hold two of a kind (H.264 has two capsfilters).
                let factory = factory_name(&element);
                let same_kind = elements
                    .iter()
                    .filter(|other| factory_name(other) == factory)
                    .count();
                let name = match same_kind {
                    0 => format!("{prefix}-{factory}"),
                    n => format!("{prefix}-{factory}{n}"),
                };
                element.set_property("name", name);
                elements.push(element);
            }
            // Paces non-live input at real time; its pad is the fan-out.
            // Live input comes at real time already, and waiting on the
            // clock here would hold the encoder by the pipeline latency.
            let output = make("fakesink", format!("{prefix}-output"))?;
            output.set_property("sync", !live);
            output.set_property("async", false);
            output.set_property("enable-last-sample", false);
            output.set_property("qos", false);
            elements.push(output.clone());
            bin.add_many(&elements).map_err(|e| e.to_string())?;
            added.extend(elements.iter().cloned());
            let upstream = split.clone().unwrap_or_else(|| self.entry.clone());
            let mut chain = vec![upstream];
            chain.extend(elements.iter().cloned());
            gst::Element::link_many(&chain)
                .map_err(|err| format!("cannot link the encoder chain: {err}"))?;
            // After peersink's own settings, before the first frame: what
            // the application sets wins.
            for encoder in elements.iter().filter(|e| is_encoder(e)) {
                bin.emit_by_name::<bool>(
                    "encoder-setup",
                    &[&self.pad_name, &(index as u32), encoder],
                );
            }
            let limiter = KeyframeLimiter::new(settings.min_keyframe_interval);
            let encoding = Encoding::new(self.kind, index, *layer, output, limiter);
            if elements.iter().any(is_encoder) {
                self.skip_when_unwatched(&elements[0], &encoding);
            }
            if index == 0 && codec == Codec::H264 {
                self.watch_h264_profile(&encoding);
            }
            self.watch_caps(&encoding);
            encodings.push(encoding);
        }
        *self.encodings.lock().unwrap() = encodings;
        // Downstream first, so that nothing is pushed into a stopped element.
        for element in added.iter().rev() {
            element
                .sync_state_with_parent()
                .map_err(|e| e.to_string())?;
        }
        *self.chain.lock().unwrap() = added.clone();
        Ok(())
    }

    /// Encodes only while someone watches: once the input is ready to
    /// offer (its encoded caps known), raw buffers for an encoding no
    /// viewer takes are dropped before they reach its encoder. A viewer
    /// subscribes before it connects and asks for a keyframe when it does,
    /// so the encoder is running again by then.
    fn skip_when_unwatched(self: &Arc<Self>, first: &gst::Element, encoding: &Arc<Encoding>) {
        let Some(pad) = first.static_pad("sink") else {
            return;
        };
        let input = Arc::downgrade(self);
        let encoding = Arc::downgrade(encoding);
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            let (Some(input), Some(encoding)) = (input.upgrade(), encoding.upgrade()) else {
                return gst::PadProbeReturn::Ok;
            };
            if !encoding.has_feeds() && input.is_ready() {
                // Handled, not Drop: gstreamer-rs has already taken the
                // buffer out of the probe info and frees it; with Drop,
                // GStreamer 1.22 then unrefs the emptied info and logs a
                // CRITICAL for every frame skipped.
                gst::PadProbeReturn::Handled
            } else {
                gst::PadProbeReturn::Ok
            }
        });
    }

    /// Whether what feeds this input is live (asked upstream).
    fn is_live(&self) -> bool {
        let mut query = gst::query::Latency::new();
        let answered = self
            .entry
            .static_pad("sink")
            .is_some_and(|pad| pad.peer_query(&mut query));
        answered && query.result().0
    }

    /// The elements that encode, to look at from tests and stats.
    pub fn encoders(&self) -> Vec<gst::Element> {
        self.chain
            .lock()
            .unwrap()
            .iter()
            .filter(|e| is_encoder(e))
            .cloned()
            .collect()
    }

    /// Sets the keyframe interval of every encoding.
    pub fn set_min_keyframe_interval(&self, interval: Duration) {
        for encoding in self.encodings() {
            encoding
                .keyframes
                .lock()
                .unwrap()
                .set_min_interval(interval);
        }
    }

    /// The first H.264 SPS of the best layer gives the profile to offer.
    fn watch_h264_profile(self: &Arc<Self>, encoding: &Arc<Encoding>) {
        let Some(pad) = encoding.output.static_pad("sink") else {
            return;
        };
        let weak = Arc::downgrade(self);
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            let (Some(buffer), Some(input)) = (info.buffer(), weak.upgrade()) else {
                return gst::PadProbeReturn::Remove;
            };
            if buffer.flags().contains(gst::BufferFlags::DELTA_UNIT) {
                return gst::PadProbeReturn::Ok;
            }
            let found = buffer
                .map_readable()
                .ok()
                .and_then(|map| h264_sps_profile_level_id(&map));
            let Some(profile_level_id) = found else {
                return gst::PadProbeReturn::Ok;
            };
            *input.h264_profile_level_id.lock().unwrap() = Some(profile_level_id);
            (input.on_ready)();
            gst::PadProbeReturn::Remove
        });
    }

    /// Other codecs are ready as soon as every encoding's caps are set.
    fn watch_caps(self: &Arc<Self>, encoding: &Arc<Encoding>) {
        let Some(pad) = encoding.output.static_pad("sink") else {
            return;
        };
        let weak = Arc::downgrade(self);
        pad.connect_notify(Some("caps"), move |_, _| {
            if let Some(input) = weak.upgrade() {
                (input.on_ready)();
            }
        });
    }

    /// Removes every element of this input from the bin.
    pub fn remove(&self, bin: &gst::Bin) {
        let mut elements = vec![self.entry.clone()];
        elements.extend(self.chain.lock().unwrap().drain(..));
        self.encodings.lock().unwrap().clear();
        for element in elements {
            discard(bin, &element);
        }
    }
}

fn make(factory: &str, name: String) -> Result<gst::Element, String> {
    gst::ElementFactory::make(factory)
        .name(name)
        .build()
        .map_err(|_| format!("element {factory} is missing"))
}

/// `profile-level-id` (profile_idc, constraint flags, level_idc in hex)
/// from the first SPS NAL unit of an Annex B byte-stream.
fn h264_sps_profile_level_id(data: &[u8]) -> Option<String> {
    let mut i = 0;
    while i + 3 < data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            let nal = i + 3;
            if data[nal] & 0x1f == 7 && nal + 3 < data.len() {
                return Some(format!(
                    "{:02x}{:02x}{:02x}",
                    data[nal + 1],
                    data[nal + 2],
                    data[nal + 3]
                ));
            }
            i = nal;
        } else {
            i += 1;
        }
    }
    None
}

fn factory_name(element: &gst::Element) -> String {
    element
        .factory()
        .map(|f| f.name().to_string())
        .unwrap_or_else(|| "element".into())
}

pub fn is_encoder(element: &gst::Element) -> bool {
    element
        .factory()
        .is_some_and(|f| f.has_type(gst::ElementFactoryType::ENCODER))
}

/// Pictures up to this size are encoded by one VP8 thread: a second one
/// cost more than it saved (broadcast benchmark, 720p30 on 2 busy cores:
/// 53% of a core with threads=2, 38% with 1, libvpx's threads spinning
/// while they wait for each other).
const ONE_THREAD_PIXELS: u64 = 1920 * 1080;

fn video_encoder_chain(
    codec: Codec,
    layer: &LayerSpec,
    pixels: u64,
    hint: VideoContentHint,
) -> Vec<String> {
    let bitrate = layer.bitrate;
    let static_threshold = u32::from(hint.is_mostly_still());
    let kbps = (bitrate / 1000).max(1);
    let threads = if pixels <= ONE_THREAD_PIXELS { 1 } else { 2 };
    let encoder = match codec {
        // Real-time settings: no look-ahead, constant bitrate, keyframes
        // on request (a long GOP otherwise), error resilience for loss.
        // Dropping a frame when the rate buffer runs low is what holds the
        // rate on hard content: without it vp8enc sends 2 Mbit/s of noise
        // for a 600 kbit/s layer, and a layer is only worth choosing if it
        // costs what it says. cpu-used is negative, a fixed speed: a
        // positive one lets libvpx pick a slower speed while a frame takes
        // less than (16 - n)/16 of its period, so the encoder grows to fill
        // the idle cores (29-38% of a core at 720p30 for 8 and 12). Fixed
        // speed 8 encodes every frame of 720p SMPTE bars at 2 Mbit/s (12
        // and 16 dropped 8-10% of them) for ~16% of a core; webrtcsink
        // uses -16 without frame dropping. static-threshold=1 (vp8enc's
        // default, and libwebrtc's) lets blocks predicted exactly skip the
        // mode search: about half the encode of a still picture, but 2.3%
        // more of the frames of moving 720p bars at 2 Mbit/s dropped
        // (docs/benchmarks/broadcast.md): so only for content said to be
        // still (`video-content-hint`). vp9enc keeps its default, 1.
        Codec::Vp8 => format!(
            "vp8enc deadline=1 cpu-used=-8 end-usage=cbr target-bitrate={bitrate} lag-in-frames=0 \
             keyframe-max-dist=300 error-resilient=default threads={threads} buffer-size=1000 \
             buffer-initial-size=500 buffer-optimal-size=600 undershoot=95 static-threshold={static_threshold} \
             dropframe-threshold=30"
        ),
        Codec::Vp9 => format!(
            "vp9enc deadline=1 cpu-used=8 end-usage=cbr target-bitrate={bitrate} lag-in-frames=0 \
             keyframe-max-dist=300 error-resilient=default threads=2 row-mt=true \
             dropframe-threshold=30"
        ),
        Codec::H264 => format!(
            "x264enc tune=zerolatency speed-preset=ultrafast bitrate={kbps} key-int-max=300 \
             vbv-buf-capacity=500"
        ),
        Codec::Opus => unreachable!("not a video codec"),
    };
    let mut chain = vec!["videoconvert".to_owned()];
    if let Some((width, height)) = layer.size {
        // Borders keep the picture's shape when the layer's differs.
        chain.push("videoscale add-borders=true".to_owned());
        chain.push(format!(
            "capsfilter caps=video/x-raw,width={width},height={height},pixel-aspect-ratio=1/1"
        ));
    }
    chain.push(encoder);
    if codec == Codec::H264 {
        chain.push("capsfilter caps=video/x-h264,profile=constrained-baseline".to_owned());
        chain.push("h264parse config-interval=-1".to_owned());
        // In-band SPS/PPS before every keyframe: viewers join mid-stream.
        chain
            .push("capsfilter caps=video/x-h264,stream-format=byte-stream,alignment=au".to_owned());
    }
    chain
}

fn audio_encoder_chain(bitrate: u32) -> Vec<String> {
    vec![
        "audioconvert".to_owned(),
        "audioresample".to_owned(),
        format!("opusenc bitrate={bitrate} frame-size=20 bitrate-type=cbr"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn still_content_lets_vp8_skip_unchanged_blocks_and_motion_does_not() {
        let layer = LayerSpec::source_size(2_000_000);
        let vp8 = |hint| video_encoder_chain(Codec::Vp8, &layer, 1280 * 720, hint).join(" ! ");
        assert!(vp8(VideoContentHint::Motion).contains("static-threshold=0"));
        assert!(vp8(VideoContentHint::Detail).contains("static-threshold=1"));
        assert!(vp8(VideoContentHint::Text).contains("static-threshold=1"));
    }

    #[test]
    fn sps_profile_level_id_is_found_after_other_nal_units() {
        // AUD, then SPS (constrained baseline 42c01e), then PPS.
        let stream = [
            0, 0, 0, 1, 0x09, 0xf0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1e, 0xda, 0, 0, 1, 0x68, 0xce,
        ];
        assert_eq!(
            h264_sps_profile_level_id(&stream).as_deref(),
            Some("42c01e")
        );
        assert_eq!(h264_sps_profile_level_id(&[0, 0, 1, 0x65, 1, 2, 3]), None);
    }
}
