//! What a receiving session (peersrc) tells the peer sending to it, so
//! that the sender's congestion control has something to work on:
//! transport-wide congestion control feedback (what Chromium's bandwidth
//! estimate runs on; without it a browser ramps up slowly and stays low),
//! and the operator's bitrate cap, announced in the SDP and enforced
//! through REMB.
//!
//! webrtcbin 1.22 answers an offer with the offer's own RTCP feedback
//! lines but without its header extensions, so the transport-cc
//! extension never gets negotiated when it answers; our answers get it
//! here; our offers ask for it through the transceivers' caps
//! (`Codec::receivable`). When the negotiated descriptions carry it,
//! webrtcbin hands the extension to its RTP session through the payload
//! type's caps, and the RTP session then sends transport-cc feedback by
//! itself.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::glib;
use gst::glib::translate::ToGlibPtr;
use gst::prelude::*;
use peer_signalling::protocol::sdp as protocol_sdp;

/// The transport-wide congestion control header extension (what
/// Chromium, Firefox, Safari and gst-plugins-rs's webrtcsink use).
pub const TWCC_URI: &str =
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";

/// How often a capped session repeats its REMB.
const REMB_INTERVAL: Duration = Duration::from_millis(500);

/// What a receiving session asks of its sender.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReceivePolicy {
    /// Bits per second the sender may send, audio and video together;
    /// `None`: as much as the path carries.
    pub max_bitrate: Option<u32>,
}

/// The id an m-section gives the transport-cc header extension.
pub fn twcc_id(media: &gst_sdp::SDPMediaRef) -> Option<u32> {
    media
        .attributes()
        .filter(|attribute| attribute.key() == "extmap")
        .filter_map(|attribute| attribute.value())
        .find_map(|value| {
            let mut words = value.split_whitespace();
            let id = words.next()?;
            let uri = words.next()?;
            if uri != TWCC_URI {
                return None;
            }
            // "3" or "3/recvonly"
            id.split('/').next()?.parse().ok()
        })
}

/// Payload types for which an m-section asks for transport-cc feedback
/// (`a=rtcp-fb:PT transport-cc`); `*` stands for all.
fn transport_cc_payloads(media: &gst_sdp::SDPMediaRef) -> Vec<String> {
    media
        .attributes()
        .filter(|attribute| attribute.key() == "rtcp-fb")
        .filter_map(|attribute| attribute.value())
        .filter_map(|value| {
            let (pt, feedback) = value.split_once(' ')?;
            (feedback.trim() == "transport-cc").then(|| pt.to_owned())
        })
        .collect()
}

fn is_rtp_media(media: &gst_sdp::SDPMediaRef) -> bool {
    matches!(media.media(), Some("audio" | "video")) && media.port() != 0
}

/// Our answer to `offer`, completed: every audio and video m-section whose
/// offer declared the transport-cc extension gets it (with the offer's
/// id) and transport-cc feedback for the payload types the offer asked it
/// for, and the cap of `policy` is announced.
pub fn shape_answer(
    answer: &mut gst_sdp::SDPMessageRef,
    offer: &gst_sdp::SDPMessageRef,
    policy: &ReceivePolicy,
) {
    for index in 0..answer.medias_len() {
        let Some(offered) = offer.media(index) else {
            continue;
        };
        let offered_id = twcc_id(offered);
        let offered_feedback = transport_cc_payloads(offered);
        let media = answer.media_mut(index).expect("index below medias_len");
        if !is_rtp_media(media) {
            continue;
        }
        if let Some(id) = offered_id {
            if twcc_id(media).is_none() {
                media.add_attribute("extmap", Some(&format!("{id} {TWCC_URI}")));
            }
            let answered = transport_cc_payloads(media);
            let formats: Vec<String> = media.formats().map(str::to_owned).collect();
            for pt in formats {
                let asked = offered_feedback.iter().any(|p| *p == pt || p == "*");
                if asked && !answered.contains(&pt) {
                    media.add_attribute("rtcp-fb", Some(&format!("{pt} transport-cc")));
                }
            }
        }
        announce_cap(media, policy);
    }
}

/// Our offer to receive, with the cap of `policy` announced (transport-cc
/// is already in it, from the transceivers' caps).
pub fn shape_offer(offer: &mut gst_sdp::SDPMessageRef, policy: &ReceivePolicy) {
    for media in offer.medias_mut() {
        if is_rtp_media(media) {
            announce_cap(media, policy);
        }
    }
}

/// `b=TIAS` (bit/s, RFC 3890) and `b=AS` (kbit/s, for those that read
/// only that) on an audio or video m-section: what the sender may send
/// on it. Chromium and Firefox hold their encoders to it.
fn announce_cap(media: &mut gst_sdp::SDPMediaRef, policy: &ReceivePolicy) {
    let Some(total) = policy.max_bitrate else {
        return;
    };
    let (audio, video) = protocol_sdp::split_bitrate_cap(total);
    let bits = match media.media() {
        Some("audio") => audio,
        Some("video") => video,
        _ => return,
    };
    while media.bandwidths_len() > 0 {
        let _ = media.remove_bandwidth(0);
    }
    media.add_bandwidth("TIAS", bits);
    media.add_bandwidth("AS", bits / 1000);
}

/// Consecutive packets after which a new stream's jitter buffer starts
/// pushing instead of waiting its latency out: enough for a reordered
/// first packet to be put back in place, a few ms of a video keyframe.
const FASTSTART_PACKETS: u32 = 3;

/// RTCP bandwidth of a receiving session, as a share of the media it
/// receives (RFC 3550's default is 0.05). A NACK goes out at once only
/// if no early RTCP packet was sent in the last regular interval (RFC
/// 4585 3.5.2, which rtpsession follows); otherwise it waits for the
/// next regular report, and the jitter buffer's deadline (its latency,
/// 100 ms) passes first when the interval is longer: with 5% of a
/// 250 kbit/s stream the interval is ~0.3 s, so a packet whose
/// retransmission was lost too, or a second loss soon after a first,
/// was given up and cost a keyframe request (the NACKs dropped show in
/// the session's `rtx-drop-count`; 0 since, in the loss tests). A
/// quarter makes the interval ~60 ms at 250 kbit/s, ~15 ms at
/// 1 Mbit/s (rtpsession's formula, not measured); the bandwidth is
/// shared by the session's members (~5: the sender's streams, their
/// RTX, ours), so this receiver's own reports stay near 5% of what it
/// receives.
const RTCP_FRACTION: f64 = 0.25;

/// Sets up the RTP session of `webrtcbin` (created later, when the first
/// description is applied) for receiving under `policy`.
pub fn configure(webrtcbin: &gst::Element, policy: ReceivePolicy) {
    let Some(bin) = webrtcbin.downcast_ref::<gst::Bin>() else {
        return;
    };
    bin.connect_deep_element_added(move |_, _, element| {
        let factory = element.factory().map(|factory| factory.name());
        if factory.as_deref() == Some("rtpjitterbuffer") {
            // Without it the jitter buffer holds the first packet for its
            // whole latency (100 ms of every join to the first frame,
            // measured by `broadcast_bench join-trace`); with it, it
            // starts once a few packets in a row have come.
            element.set_property("faststart-min-packets", FASTSTART_PACKETS);
            // NACK packets missing from the sequence only, as libwebrtc
            // does, not the next packet when it is merely later than
            // expected: on a path whose queue is filling every packet
            // is late, and each retransmitted one (which arrives after
            // the original) added to that queue. On the 300 kbit/s test
            // path a viewer asked for ~250 packets it then received
            // twice, kept the queue full and lost 28% for 25 s.
            element.set_property("rtx-next-seqnum", false);
            return;
        }
        if factory.as_deref() != Some("rtpsession") {
            return;
        }
        element.set_property("rtcp-fraction", RTCP_FRACTION);
        let session = element.property::<glib::Object>("internal-session");
        if let Some(max_bitrate) = policy.max_bitrate {
            send_remb(&session, max_bitrate);
        }
    });
}

/// Adds a REMB (receiver estimated maximum bitrate) of `bitrate` to the
/// RTCP the session sends, every [`REMB_INTERVAL`] at most. Senders cap
/// their estimate by it (Chromium's does, whether or not transport-cc is
/// in use), which holds them to the cap even if they ignore the SDP's.
fn send_remb(session: &glib::Object, bitrate: u32) {
    // The media SSRCs the REMB is about: every remote source.
    let remote_ssrcs = Arc::new(Mutex::new(Vec::<u32>::new()));
    let ssrcs = remote_ssrcs.clone();
    session.connect("on-new-ssrc", false, move |values| {
        let source = values[1].get::<glib::Object>().ok()?;
        // RTPSource has no `internal` property in 1.22; its stats say it.
        let internal = source
            .property::<gst::Structure>("stats")
            .get::<bool>("internal")
            .unwrap_or(true);
        if !internal {
            let ssrc = source.property::<u32>("ssrc");
            let mut ssrcs = ssrcs.lock().unwrap();
            if !ssrcs.contains(&ssrc) {
                ssrcs.push(ssrc);
            }
        }
        None
    });
    let last_sent = Mutex::new(None::<Instant>);
    session.connect("on-sending-rtcp", false, move |values| {
        let due = last_sent
            .lock()
            .unwrap()
            .is_none_or(|at| at.elapsed() >= REMB_INTERVAL);
        let ssrcs = remote_ssrcs.lock().unwrap().clone();
        if !due || ssrcs.is_empty() {
            return Some(false.to_value());
        }
        // SAFETY: the RTP session emits this with the one reference to an
        // unmapped buffer it is about to send; appending a packet to it is
        // what the signal is for. Taking a reference of our own would make
        // it unwritable.
        let appended = unsafe {
            let pointer = glib::gobject_ffi::g_value_get_boxed(values[1].to_glib_none().0)
                as *mut gst::ffi::GstBuffer;
            if pointer.is_null() || gst::ffi::gst_mini_object_is_writable(pointer.cast()) == 0 {
                false
            } else {
                let buffer = gst::BufferRef::from_mut_ptr(pointer);
                match sender_ssrc(buffer) {
                    Some(sender) => {
                        let packet = remb_packet(sender, bitrate, &ssrcs);
                        buffer.append_memory(gst::Memory::from_slice(packet));
                        true
                    }
                    None => false,
                }
            }
        };
        if appended {
            *last_sent.lock().unwrap() = Some(Instant::now());
        }
        Some(false.to_value())
    });
}

/// The sender SSRC of the first packet of a compound RTCP buffer (every
/// RTCP packet the session sends starts with its own SSRC).
fn sender_ssrc(buffer: &gst::BufferRef) -> Option<u32> {
    let map = buffer.map_readable().ok()?;
    let bytes = map.as_slice();
    (bytes.len() >= 8).then(|| u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]))
}

/// A REMB packet (draft-alvestrand-rmcat-remb-03): payload-specific
/// feedback (PT 206), FMT 15, "REMB", the bitrate as an 18-bit mantissa
/// and a 6-bit exponent, and the SSRCs it applies to.
pub fn remb_packet(sender_ssrc: u32, bitrate: u32, ssrcs: &[u32]) -> Vec<u8> {
    let ssrcs = &ssrcs[..ssrcs.len().min(255)];
    let mut mantissa = bitrate;
    let mut exponent = 0u32;
    while mantissa >= 1 << 18 {
        mantissa >>= 1;
        exponent += 1;
    }
    let words = 4 + ssrcs.len() as u16; // length: 32-bit words minus one
    let mut packet = Vec::with_capacity(20 + 4 * ssrcs.len());
    packet.push(0x80 | 15);
    packet.push(206);
    packet.extend_from_slice(&words.to_be_bytes());
    packet.extend_from_slice(&sender_ssrc.to_be_bytes());
    packet.extend_from_slice(&0u32.to_be_bytes());
    packet.extend_from_slice(b"REMB");
    packet.push(ssrcs.len() as u8);
    let value = (exponent << 18) | mantissa;
    packet.extend_from_slice(&value.to_be_bytes()[1..]);
    for ssrc in ssrcs {
        packet.extend_from_slice(&ssrc.to_be_bytes());
    }
    packet
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHROMIUM_OFFER: &str = "v=0\r\n\
o=- 1 2 IN IP4 127.0.0.1\r\n\
s=-\r\n\
t=0 0\r\n\
a=group:BUNDLE 0 1\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
c=IN IP4 0.0.0.0\r\n\
a=mid:0\r\n\
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n\
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n\
a=sendonly\r\n\
a=rtpmap:111 opus/48000/2\r\n\
a=rtcp-fb:111 transport-cc\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\n\
c=IN IP4 0.0.0.0\r\n\
a=mid:1\r\n\
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n\
a=sendonly\r\n\
a=rtpmap:96 VP8/90000\r\n\
a=rtcp-fb:96 goog-remb\r\n\
a=rtcp-fb:96 transport-cc\r\n\
a=rtcp-fb:96 nack\r\n\
a=rtpmap:97 rtx/90000\r\n\
a=fmtp:97 apt=96\r\n";

    /// What webrtcbin 1.22 answers: feedback lines but no extension.
    const WEBRTCBIN_ANSWER: &str = "v=0\r\n\
o=- 1 2 IN IP4 0.0.0.0\r\n\
s=-\r\n\
t=0 0\r\n\
a=group:BUNDLE 0 1\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
c=IN IP4 0.0.0.0\r\n\
a=mid:0\r\n\
a=recvonly\r\n\
a=rtpmap:111 OPUS/48000/2\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\n\
c=IN IP4 0.0.0.0\r\n\
a=mid:1\r\n\
a=recvonly\r\n\
a=rtpmap:96 VP8/90000\r\n\
a=rtcp-fb:96 transport-cc\r\n\
a=rtcp-fb:96 nack\r\n\
a=rtpmap:97 rtx/90000\r\n\
a=fmtp:97 apt=96\r\n";

    fn parse(text: &str) -> gst_sdp::SDPMessage {
        gst::init().unwrap();
        gst_sdp::SDPMessage::parse_buffer(text.as_bytes()).unwrap()
    }

    fn lines_of(sdp: &gst_sdp::SDPMessage, index: u32) -> Vec<String> {
        let text = sdp.media(index).unwrap().as_text().unwrap();
        text.lines().map(str::to_owned).collect()
    }

    #[test]
    fn the_answer_gets_the_offers_transport_cc_extension_and_feedback() {
        let offer = parse(CHROMIUM_OFFER);
        let mut answer = parse(WEBRTCBIN_ANSWER);
        shape_answer(&mut answer, &offer, &ReceivePolicy::default());
        let audio = lines_of(&answer, 0);
        let video = lines_of(&answer, 1);
        let extmap = format!("a=extmap:3 {TWCC_URI}");
        assert!(audio.contains(&extmap), "{audio:?}");
        assert!(video.contains(&extmap), "{video:?}");
        assert!(audio.contains(&"a=rtcp-fb:111 transport-cc".to_owned()));
        // Not twice, and not for RTX, which the offer did not ask it for.
        let feedback = video.iter().filter(|l| l.ends_with("transport-cc")).count();
        assert_eq!(feedback, 1, "{video:?}");
        assert!(!video.iter().any(|l| l.starts_with("b=")), "no cap asked");
        assert_eq!(twcc_id(answer.media(1).unwrap()), Some(3));
    }

    #[test]
    fn an_offer_without_the_extension_gets_none_in_the_answer() {
        let offer = parse(&CHROMIUM_OFFER.replace(TWCC_URI, "urn:example:other"));
        let mut answer = parse(WEBRTCBIN_ANSWER);
        shape_answer(&mut answer, &offer, &ReceivePolicy::default());
        assert!(twcc_id(answer.media(0).unwrap()).is_none());
        assert!(twcc_id(answer.media(1).unwrap()).is_none());
    }

    #[test]
    fn a_cap_is_announced_per_section_audio_taking_its_share() {
        let offer = parse(CHROMIUM_OFFER);
        let mut answer = parse(WEBRTCBIN_ANSWER);
        let policy = ReceivePolicy {
            max_bitrate: Some(300_000),
        };
        shape_answer(&mut answer, &offer, &policy);
        let audio = lines_of(&answer, 0);
        let video = lines_of(&answer, 1);
        assert!(audio.contains(&"b=TIAS:40000".to_owned()), "{audio:?}");
        assert!(audio.contains(&"b=AS:40".to_owned()), "{audio:?}");
        assert!(video.contains(&"b=TIAS:260000".to_owned()), "{video:?}");
        assert!(video.contains(&"b=AS:260".to_owned()), "{video:?}");
        // And in an offer of ours.
        let mut ours = parse(WEBRTCBIN_ANSWER);
        shape_offer(&mut ours, &policy);
        assert!(lines_of(&ours, 1).contains(&"b=TIAS:260000".to_owned()));
    }

    #[test]
    fn remb_carries_the_bitrate_as_mantissa_and_exponent() {
        let packet = remb_packet(0x11223344, 300_000, &[0xaabbccdd]);
        assert_eq!(packet.len(), 24);
        assert_eq!(&packet[..4], &[0x8f, 206, 0, 5]);
        assert_eq!(&packet[4..8], &[0x11, 0x22, 0x33, 0x44]);
        assert_eq!(&packet[12..16], b"REMB");
        assert_eq!(packet[16], 1);
        let value = u32::from_be_bytes([0, packet[17], packet[18], packet[19]]);
        let (exponent, mantissa) = (value >> 18, value & 0x3ffff);
        assert_eq!(mantissa << exponent, 300_000 & !((1 << exponent) - 1));
        assert!(300_000 - (mantissa << exponent) < 1 << exponent);
        assert_eq!(&packet[20..], &[0xaa, 0xbb, 0xcc, 0xdd]);
    }
}
