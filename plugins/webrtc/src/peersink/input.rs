//! One input of peersink: its pad, the encoder chain built when its caps
//! are known, and the tee every viewer branches from. Whatever the number
//! of viewers, each input is encoded once.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;

use crate::codec::{Codec, MediaKind, VideoCodec};
use crate::keyframe::{Decision, KeyframeLimiter};
use crate::runtime::RUNTIME;

#[derive(Debug, Clone, Copy)]
pub struct EncoderSettings {
    pub video_codec: VideoCodec,
    pub video_bitrate: u32,
    pub audio_bitrate: u32,
}

pub struct Input {
    pub pad_name: String,
    pub kind: MediaKind,
    /// A queue: the ghost pad's target, and the thread that encodes.
    pub entry: gst::Element,
    pub tee: gst::Element,
    /// Paces non-live inputs at real time and keeps the tee always linked.
    pacer: gst::Element,
    chain: Mutex<Vec<gst::Element>>,
    codec: Mutex<Option<Codec>>,
    /// H.264 only: `profile-level-id` read from the stream's SPS, which is
    /// what the payloader will put in its caps; offering anything else
    /// would fail caps negotiation inside webrtcbin.
    h264_profile_level_id: Mutex<Option<String>>,
    pub keyframes: Mutex<KeyframeLimiter>,
    /// Called when the input becomes ready to offer.
    on_ready: Box<dyn Fn() + Send + Sync>,
}

impl Input {
    pub fn new(
        bin: &gst::Bin,
        pad_name: &str,
        kind: MediaKind,
        min_keyframe_interval: Duration,
        on_ready: Box<dyn Fn() + Send + Sync>,
    ) -> Result<Arc<Input>, String> {
        let make = |factory: &str, name: String| {
            gst::ElementFactory::make(factory)
                .name(name)
                .build()
                .map_err(|_| format!("element {factory} is missing"))
        };
        let entry = make("queue", format!("{pad_name}-entry"))?;
        entry.set_property("max-size-buffers", 3u32);
        entry.set_property("max-size-bytes", 0u32);
        entry.set_property("max-size-time", 0u64);
        let tee = make("tee", format!("{pad_name}-tee"))?;
        tee.set_property("allow-not-linked", true);
        let pacer = make("fakesink", format!("{pad_name}-pacer"))?;
        pacer.set_property("sync", true);
        pacer.set_property("async", false);
        pacer.set_property("enable-last-sample", false);
        bin.add_many([&entry, &tee, &pacer])
            .map_err(|e| e.to_string())?;
        tee.link(&pacer).map_err(|e| e.to_string())?;
        Ok(Arc::new(Input {
            pad_name: pad_name.to_owned(),
            kind,
            entry,
            tee,
            pacer,
            chain: Mutex::new(Vec::new()),
            codec: Mutex::new(None),
            h264_profile_level_id: Mutex::new(None),
            keyframes: Mutex::new(KeyframeLimiter::new(min_keyframe_interval)),
            on_ready,
        }))
    }

    pub fn codec(&self) -> Option<Codec> {
        *self.codec.lock().unwrap()
    }

    /// The codec this input will be sent as, before caps are known (for
    /// the stream list announced to the room).
    pub fn announced_codec(&self, settings: &EncoderSettings) -> Codec {
        self.codec().unwrap_or(match self.kind {
            MediaKind::Video => settings.video_codec.into(),
            MediaKind::Audio => Codec::Opus,
        })
    }

    /// RTP caps to offer, once the encoded caps (and for H.264 the SPS)
    /// are known.
    pub fn rtp_caps(&self) -> Option<gst::Caps> {
        let codec = self.codec()?;
        self.tee.static_pad("sink")?.current_caps()?;
        let profile_level_id = match codec {
            Codec::H264 => Some(self.h264_profile_level_id.lock().unwrap().clone()?),
            _ => None,
        };
        Some(codec.rtp_caps(profile_level_id.as_deref()))
    }

    pub fn is_ready(&self) -> bool {
        self.rtp_caps().is_some()
    }

    /// Builds entry → (convert, encode, parse) → tee for these input caps.
    /// Runs in the streaming thread, from the probe that sees the caps
    /// before they leave the entry queue.
    pub fn build_chain(
        &self,
        bin: &gst::Bin,
        caps: &gst::CapsRef,
        settings: &EncoderSettings,
    ) -> Result<Codec, String> {
        let structure = caps.structure(0).ok_or("empty caps")?;
        let name = structure.name().as_str();
        let (codec, descriptions): (Codec, Vec<String>) =
            if let Some(codec) = Codec::from_encoded_caps(structure) {
                if codec.kind() != self.kind {
                    return Err(format!(
                        "{} pad {} cannot take {name}",
                        self.kind.as_str(),
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
                (codec, chain)
            } else if name == "video/x-raw" && self.kind == MediaKind::Video {
                let codec: Codec = settings.video_codec.into();
                (codec, video_encoder_chain(codec, settings.video_bitrate))
            } else if name == "audio/x-raw" && self.kind == MediaKind::Audio {
                (Codec::Opus, audio_encoder_chain(settings.audio_bitrate))
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

        let mut elements = Vec::new();
        for (index, description) in descriptions.iter().enumerate() {
            let element = gst::parse::launch(description)
                .map_err(|err| format!("cannot create \"{description}\": {err}"))?;
            element.set_property(
                "name",
                format!("{}-{}-{index}", self.pad_name, factory_name(&element)),
            );
            elements.push(element);
        }
        bin.add_many(&elements).map_err(|e| e.to_string())?;
        let mut chain = vec![self.entry.clone()];
        chain.extend(elements.iter().cloned());
        chain.push(self.tee.clone());
        gst::Element::link_many(&chain)
            .map_err(|err| format!("cannot link the encoder chain: {err}"))?;
        for element in &elements {
            element
                .sync_state_with_parent()
                .map_err(|e| e.to_string())?;
        }
        *self.chain.lock().unwrap() = elements;
        *self.codec.lock().unwrap() = Some(codec);
        Ok(codec)
    }

    /// The element that encodes, to look at from tests and stats.
    pub fn encoder(&self) -> Option<gst::Element> {
        self.chain
            .lock()
            .unwrap()
            .iter()
            .find(|e| is_encoder(e))
            .cloned()
    }

    /// Asks for a keyframe under the keyframe policy (see keyframe.rs).
    pub fn request_keyframe(self: &Arc<Self>) {
        if self.kind != MediaKind::Video {
            return;
        }
        let decision = self.keyframes.lock().unwrap().request(Instant::now());
        match decision {
            Decision::SendNow => self.send_keyframe_request(),
            Decision::SendAt(at) => {
                let input = self.clone();
                RUNTIME.spawn(async move {
                    tokio::time::sleep_until(at.into()).await;
                    let fire = input.keyframes.lock().unwrap().fire(Instant::now());
                    if fire {
                        input.send_keyframe_request();
                    }
                });
            }
            Decision::Coalesced => {}
        }
    }

    fn send_keyframe_request(&self) {
        let event = gst_video::UpstreamForceKeyUnitEvent::builder()
            .all_headers(true)
            .build();
        if let Some(pad) = self.tee.static_pad("sink") {
            // Upstream through the parser to the encoder (or to whatever
            // encoded the input, for encoded input).
            let tee = self.tee.clone();
            RUNTIME.spawn_blocking(move || {
                let _ = pad.push_event(event);
                drop(tee);
            });
        }
    }

    /// Watches what reaches the tee: keyframes answer pending requests, and
    /// the first H.264 SPS gives the profile to offer.
    pub fn watch_output(self: &Arc<Self>) {
        let Some(pad) = self.tee.static_pad("sink") else {
            return;
        };
        let weak = Arc::downgrade(self);
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            let (Some(buffer), Some(input)) = (info.buffer(), weak.upgrade()) else {
                return gst::PadProbeReturn::Ok;
            };
            if buffer.flags().contains(gst::BufferFlags::DELTA_UNIT) {
                return gst::PadProbeReturn::Ok;
            }
            input
                .keyframes
                .lock()
                .unwrap()
                .keyframe_seen(Instant::now());
            let needs_profile = input.codec() == Some(Codec::H264)
                && input.h264_profile_level_id.lock().unwrap().is_none();
            if needs_profile {
                let found = buffer
                    .map_readable()
                    .ok()
                    .and_then(|map| h264_sps_profile_level_id(&map));
                if let Some(profile_level_id) = found {
                    *input.h264_profile_level_id.lock().unwrap() = Some(profile_level_id);
                    (input.on_ready)();
                }
            }
            gst::PadProbeReturn::Ok
        });
        // Other codecs are ready as soon as their encoded caps are set.
        let weak = Arc::downgrade(self);
        pad.connect_notify(Some("caps"), move |_, _| {
            if let Some(input) = weak.upgrade() {
                (input.on_ready)();
            }
        });
    }

    /// Removes every element of this input from the bin.
    pub fn remove(&self, bin: &gst::Bin) {
        let mut elements = vec![self.entry.clone(), self.tee.clone(), self.pacer.clone()];
        elements.extend(self.chain.lock().unwrap().drain(..));
        for element in elements {
            let _ = element.set_state(gst::State::Null);
            let _ = bin.remove(&element);
        }
    }
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

fn video_encoder_chain(codec: Codec, bitrate: u32) -> Vec<String> {
    let kbps = (bitrate / 1000).max(1);
    let encoder = match codec {
        // Real-time settings: no look-ahead, constant bitrate, keyframes
        // on request (a long GOP otherwise), error resilience for loss.
        Codec::Vp8 => format!(
            "vp8enc deadline=1 cpu-used=8 end-usage=cbr target-bitrate={bitrate} lag-in-frames=0 \
             keyframe-max-dist=300 error-resilient=default threads=2 buffer-size=1000 \
             buffer-initial-size=500 buffer-optimal-size=600 undershoot=95 static-threshold=0"
        ),
        Codec::Vp9 => format!(
            "vp9enc deadline=1 cpu-used=8 end-usage=cbr target-bitrate={bitrate} lag-in-frames=0 \
             keyframe-max-dist=300 error-resilient=default threads=2 row-mt=true"
        ),
        Codec::H264 => format!(
            "x264enc tune=zerolatency speed-preset=ultrafast bitrate={kbps} key-int-max=300 \
             vbv-buf-capacity=500"
        ),
        Codec::Opus => unreachable!("not a video codec"),
    };
    let mut chain = vec!["videoconvert".to_owned(), encoder];
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
