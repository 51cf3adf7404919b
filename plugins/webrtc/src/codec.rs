//! The codecs gst-peer sends and receives, and the GStreamer elements and
//! RTP caps that go with each.

use gst::glib;

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
}
