//! The codecs gst-peer sends and receives, and the GStreamer elements and
//! RTP caps that go with each.

use gst::glib;

use crate::receive::TWCC_URI;

/// The transport-cc extension's id in our own offers (the one Chromium
/// picks too).
pub const OFFER_TWCC_ID: u32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, glib::Enum)]
#[enum_type(name = "GstPeerVideoCodec")]
pub enum VideoCodec {
    #[enum_value(
        name = "VP8: every browser decodes it; cheapest to encode",
        nick = "vp8"
    )]
    Vp8,
    #[enum_value(name = "VP9: better quality per bit, more CPU", nick = "vp9")]
    Vp9,
    #[enum_value(name = "H.264 constrained baseline (x264)", nick = "h264")]
    H264,
}

/// What the video shows, as the browser's `MediaStreamTrack.contentHint`
/// says it: the encoder may then skip the work a still picture does not
/// need.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, glib::Enum)]
#[enum_type(name = "GstPeerVideoContentHint")]
pub enum VideoContentHint {
    #[default]
    #[enum_value(
        name = "Motion: a camera, a game, moving pictures (fewer frames dropped)",
        nick = "motion"
    )]
    Motion,
    #[enum_value(
        name = "Detail: a screen, a canvas, slides: mostly still, fine detail",
        nick = "detail"
    )]
    Detail,
    #[enum_value(name = "Text: a screen of text, like detail", nick = "text")]
    Text,
}

impl VideoContentHint {
    /// Whether most of the picture stays still from frame to frame.
    pub fn is_mostly_still(self) -> bool {
        matches!(self, VideoContentHint::Detail | VideoContentHint::Text)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    Vp8,
    Vp9,
    H264,
    Opus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Video,
    Audio,
}

impl MediaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Video => "video",
            MediaKind::Audio => "audio",
        }
    }
}

impl From<VideoCodec> for Codec {
    fn from(codec: VideoCodec) -> Self {
        match codec {
            VideoCodec::Vp8 => Codec::Vp8,
            VideoCodec::Vp9 => Codec::Vp9,
            VideoCodec::H264 => Codec::H264,
        }
    }
}

impl Codec {
    pub fn kind(self) -> MediaKind {
        match self {
            Codec::Opus => MediaKind::Audio,
            _ => MediaKind::Video,
        }
    }

    /// The name in SDP (`a=rtpmap`) and in RTP caps.
    pub fn encoding_name(self) -> &'static str {
        match self {
            Codec::Vp8 => "VP8",
            Codec::Vp9 => "VP9",
            Codec::H264 => "H264",
            Codec::Opus => "OPUS",
        }
    }

    pub fn from_encoding_name(name: &str) -> Option<Codec> {
        match name.to_ascii_uppercase().as_str() {
            "VP8" => Some(Codec::Vp8),
            "VP9" => Some(Codec::Vp9),
            "H264" => Some(Codec::H264),
            "OPUS" => Some(Codec::Opus),
            _ => None,
        }
    }

    /// Encoded media caps, as an encoder or parser outputs them.
    pub fn encoded_caps_name(self) -> &'static str {
        match self {
            Codec::Vp8 => "video/x-vp8",
            Codec::Vp9 => "video/x-vp9",
            Codec::H264 => "video/x-h264",
            Codec::Opus => "audio/x-opus",
        }
    }

    pub fn from_encoded_caps(structure: &gst::StructureRef) -> Option<Codec> {
        [Codec::Vp8, Codec::Vp9, Codec::H264, Codec::Opus]
            .into_iter()
            .find(|codec| structure.name() == codec.encoded_caps_name())
    }

    pub fn payload_type(self) -> u32 {
        match self {
            Codec::Vp8 => 96,
            Codec::Vp9 => 98,
            Codec::H264 => 102,
            Codec::Opus => 111,
        }
    }

    pub fn clock_rate(self) -> i32 {
        match self {
            Codec::Opus => 48_000,
            _ => 90_000,
        }
    }

    pub fn payloader(self) -> &'static str {
        match self {
            Codec::Vp8 => "rtpvp8pay",
            Codec::Vp9 => "rtpvp9pay",
            Codec::H264 => "rtph264pay",
            Codec::Opus => "rtpopuspay",
        }
    }

    pub fn depayloader(self) -> &'static str {
        match self {
            Codec::Vp8 => "rtpvp8depay",
            Codec::Vp9 => "rtpvp9depay",
            Codec::H264 => "rtph264depay",
            Codec::Opus => "rtpopusdepay",
        }
    }

    /// Parser after the depayloader, so encoded output has complete caps.
    pub fn parser(self) -> Option<&'static str> {
        match self {
            Codec::H264 => Some("h264parse"),
            Codec::Vp9 => Some("vp9parse"),
            Codec::Opus => Some("opusparse"),
            Codec::Vp8 => None,
        }
    }

    pub fn decoder(self) -> &'static str {
        match self {
            Codec::Vp8 => "vp8dec",
            Codec::Vp9 => "vp9dec",
            Codec::H264 => "avdec_h264",
            Codec::Opus => "opusdec",
        }
    }

    /// RTP caps to negotiate, with the feedback that lets a viewer ask for
    /// retransmissions and keyframes.
    pub fn rtp_caps(self, h264_profile_level_id: Option<&str>) -> gst::Caps {
        let mut builder = gst::Structure::builder("application/x-rtp")
            .field("media", self.kind().as_str())
            .field("encoding-name", self.encoding_name())
            .field("payload", self.payload_type() as i32)
            .field("clock-rate", self.clock_rate());
        match self {
            Codec::Opus => {
                builder = builder
                    .field("encoding-params", "2")
                    .field("minptime", "10")
                    .field("useinbandfec", "1");
            }
            Codec::H264 => {
                builder = builder
                    .field("packetization-mode", "1")
                    .field("level-asymmetry-allowed", "1")
                    .field(
                        "profile-level-id",
                        h264_profile_level_id.unwrap_or("42e01f"),
                    );
            }
            _ => {}
        }
        if self.kind() == MediaKind::Video {
            builder = builder
                .field("rtcp-fb-nack", true)
                .field("rtcp-fb-nack-pli", true)
                .field("rtcp-fb-ccm-fir", true)
                .field("rtcp-fb-goog-remb", true);
        }
        gst::Caps::builder_full().structure(builder.build()).build()
    }
}

impl Codec {
    /// Every codec of `kind` a receiver can take, as one caps with a
    /// structure per codec (the transceiver of an offer to receive). Each
    /// asks for transport-wide congestion control: the header extension
    /// (`extmap-N`, which webrtcbin 1.22 turns into `a=extmap`) and its
    /// feedback (`rtcp-fb-transport-cc`), so that a sender answering our
    /// offer can run its bandwidth estimate on our RTP session's feedback.
    pub fn receivable(kind: MediaKind) -> gst::Caps {
        let mut caps = gst::Caps::new_empty();
        let caps_mut = caps.get_mut().expect("new caps are writable");
        for codec in [Codec::Vp8, Codec::Vp9, Codec::H264, Codec::Opus] {
            if codec.kind() == kind {
                let mut rtp = codec.rtp_caps(None);
                {
                    let structure = rtp.make_mut().structure_mut(0).expect("one structure");
                    structure.set(format!("extmap-{OFFER_TWCC_ID}").as_str(), TWCC_URI);
                    structure.set("rtcp-fb-transport-cc", true);
                }
                caps_mut.append(rtp);
            }
        }
        caps
    }

    /// The payload type the remote offer gives this codec in its `index`th
    /// m-section, and the caps to send with it; `None` when that section
    /// does not take the codec. For H.264 the offer's profile must match
    /// ours (`profile-level-id`'s first four digits) and use
    /// packetization-mode 1, the only one our payloader speaks.
    pub fn offered(
        self,
        offer: &gst_sdp::SDPMessageRef,
        index: u32,
        ours: &gst::Caps,
    ) -> Option<(u32, gst::Caps)> {
        let media = offer.media(index)?;
        let mut fallback = None;
        for format in media.formats() {
            let Ok(pt) = format.parse::<i32>() else {
                continue;
            };
            let Some(theirs) = media.caps_from_media(pt) else {
                continue;
            };
            let Some(structure) = theirs.structure(0) else {
                continue;
            };
            let name = structure.get::<&str>("encoding-name").unwrap_or_default();
            if Codec::from_encoding_name(name) != Some(self) {
                continue;
            }
            let mut caps = ours.clone();
            {
                let ours = caps.make_mut().structure_mut(0).expect("one structure");
                ours.set("payload", pt);
                if self == Codec::H264 {
                    if structure.get::<&str>("packetization-mode").ok() != Some("1") {
                        continue;
                    }
                    let profile = |s: &gst::StructureRef| {
                        s.get::<&str>("profile-level-id")
                            .ok()
                            .map(|id| id.get(..4).unwrap_or(id).to_ascii_lowercase())
                    };
                    if profile(structure) != profile(ours) {
                        // Same codec, another profile: only if nothing
                        // better comes, and announced as theirs.
                        if fallback.is_none()
                            && let Ok(id) = structure.get::<&str>("profile-level-id")
                        {
                            ours.set("profile-level-id", id);
                            fallback = Some((pt as u32, caps.clone()));
                        }
                        continue;
                    }
                }
            }
            return Some((pt as u32, caps));
        }
        fallback
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_names_round_trip() {
        for codec in [Codec::Vp8, Codec::Vp9, Codec::H264, Codec::Opus] {
            assert_eq!(
                Codec::from_encoding_name(codec.encoding_name()),
                Some(codec)
            );
        }
    }

    #[test]
    fn receivable_caps_ask_for_transport_cc() {
        gst::init().unwrap();
        for kind in [MediaKind::Video, MediaKind::Audio] {
            let caps = Codec::receivable(kind);
            assert!(!caps.is_empty());
            for structure in caps.iter() {
                let extmap = format!("extmap-{OFFER_TWCC_ID}");
                assert_eq!(structure.get::<&str>(extmap.as_str()).unwrap(), TWCC_URI);
                assert!(structure.get::<bool>("rtcp-fb-transport-cc").unwrap());
            }
        }
    }
}
