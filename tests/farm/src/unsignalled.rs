//! Streams whose SSRC the offer does not announce.
//!
//! webrtcbin (1.22) offers no `a=ssrc` lines and no `mid` header
//! extension, so str0m, which maps incoming RTP to a media by one or the
//! other, would drop every packet. Browsers accept such a stream as the
//! m-line's "unsignalled" one; so does the farm: the RTP header is not
//! encrypted by SRTP, so the first packet of an unknown SSRC is read here,
//! its payload type tells the m-line (and whether it is a retransmission
//! stream), and the viewer declares the stream to str0m before handing it
//! the packet. Pure: SDP text and packets in, declarations out.

use std::collections::HashMap;

/// A stream to declare to str0m (`DirectApi::expect_stream_rx`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declare {
    pub mid: String,
    /// The media stream's SSRC.
    pub ssrc: u32,
    /// Its retransmission stream, once seen.
    pub rtx: Option<u32>,
}

#[derive(Debug, Default)]
pub struct Unsignalled {
    /// Payload type → (mid, is a retransmission payload type).
    payload_types: HashMap<u8, (String, bool)>,
    /// SSRCs already handled (declared, or not ours to declare).
    known: Vec<u32>,
    /// Media SSRC of each mid, once seen.
    main: HashMap<String, u32>,
}

impl Unsignalled {
    /// Reads the m-lines of `offer`: their mids and payload types.
    pub fn from_offer(offer: &str) -> Unsignalled {
        let mut unsignalled = Unsignalled::default();
        let mut section: Option<(Vec<u8>, Option<String>, Vec<u8>)> = None;
        let mut finish = |section: Option<(Vec<u8>, Option<String>, Vec<u8>)>| {
            if let Some((pts, Some(mid), rtx)) = section {
                for pt in pts {
                    let is_rtx = rtx.contains(&pt);
                    unsignalled.payload_types.insert(pt, (mid.clone(), is_rtx));
                }
            }
        };
        for line in offer.lines().map(str::trim) {
            if let Some(media) = line.strip_prefix("m=") {
                finish(section.take());
                // m=video 9 UDP/TLS/RTP/SAVPF 96 97
                let pts = media
                    .split_whitespace()
                    .skip(3)
                    .filter_map(|pt| pt.parse().ok());
                section = Some((pts.collect(), None, Vec::new()));
            } else if let Some((_, mid, rtx)) = section.as_mut() {
                if let Some(value) = line.strip_prefix("a=mid:") {
                    *mid = Some(value.to_owned());
                } else if let Some(map) = line.strip_prefix("a=rtpmap:") {
                    // a=rtpmap:97 rtx/90000
                    let mut parts = map.split_whitespace();
                    let pt = parts.next().and_then(|pt| pt.parse().ok());
                    let encoding = parts.next().unwrap_or("");
                    if let Some(pt) = pt
                        && encoding.to_ascii_lowercase().starts_with("rtx/")
                    {
                        rtx.push(pt);
                    }
                }
            }
        }
        finish(section);
        unsignalled
    }

    /// Called with every datagram before str0m sees it: a declaration
    /// when it is the first RTP packet of an SSRC the offer did not name.
    /// `signalled` says whether str0m already knows the SSRC.
    pub fn check(
        &mut self,
        datagram: &[u8],
        mut signalled: impl FnMut(u32) -> bool,
    ) -> Option<Declare> {
        let (pt, ssrc) = peek_rtp(datagram)?;
        if self.known.contains(&ssrc) {
            return None;
        }
        if signalled(ssrc) {
            self.known.push(ssrc);
            return None;
        }
        let (mid, is_rtx) = self.payload_types.get(&pt)?.clone();
        if is_rtx {
            // A retransmission stream belongs to the media stream already seen.
            let main = *self.main.get(&mid)?;
            self.known.push(ssrc);
            return Some(Declare {
                mid,
                ssrc: main,
                rtx: Some(ssrc),
            });
        }
        if self.main.contains_key(&mid) {
            // A second media stream on one m-line: not what a broadcast sends.
            return None;
        }
        self.known.push(ssrc);
        self.main.insert(mid.clone(), ssrc);
        Some(Declare {
            mid,
            ssrc,
            rtx: None,
        })
    }
}

/// Payload type and SSRC of an RTP packet (not RTCP, RFC 5761 section 4).
pub fn peek_rtp(datagram: &[u8]) -> Option<(u8, u32)> {
    if datagram.len() < 12 || datagram[0] & 0xc0 != 0x80 || (192..=223).contains(&datagram[1]) {
        return None;
    }
    let ssrc = u32::from_be_bytes(datagram[8..12].try_into().ok()?);
    Some((datagram[1] & 0x7f, ssrc))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\n\
        a=group:BUNDLE video0 application1\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\n\
        a=rtpmap:96 VP8/90000\r\n\
        a=rtpmap:97 rtx/90000\r\n\
        a=fmtp:97 apt=96\r\n\
        a=mid:video0\r\n\
        m=application 0 UDP/DTLS/SCTP webrtc-datachannel\r\n\
        a=mid:application1\r\n";

    fn rtp(pt: u8, ssrc: u32, marker: bool) -> Vec<u8> {
        let mut packet = vec![0x80, pt | if marker { 0x80 } else { 0 }, 0, 1, 0, 0, 0, 0];
        packet.extend_from_slice(&ssrc.to_be_bytes());
        packet.extend_from_slice(&[1, 2, 3]);
        packet
    }

    #[test]
    fn declares_the_media_stream_then_its_retransmissions() {
        let mut unsignalled = Unsignalled::from_offer(OFFER);
        let nothing_signalled = |_| false;
        // A retransmission before any media: nothing to attach it to yet.
        assert_eq!(
            unsignalled.check(&rtp(97, 7, false), nothing_signalled),
            None
        );
        assert_eq!(
            unsignalled.check(&rtp(96, 1234, true), nothing_signalled),
            Some(Declare {
                mid: "video0".into(),
                ssrc: 1234,
                rtx: None
            })
        );
        assert_eq!(
            unsignalled.check(&rtp(96, 1234, false), nothing_signalled),
            None
        );
        assert_eq!(
            unsignalled.check(&rtp(97, 99, false), nothing_signalled),
            Some(Declare {
                mid: "video0".into(),
                ssrc: 1234,
                rtx: Some(99)
            })
        );
        assert_eq!(
            unsignalled.check(&rtp(97, 99, false), nothing_signalled),
            None
        );
    }

    #[test]
    fn leaves_alone_what_is_signalled_rtcp_and_unknown_payload_types() {
        let mut unsignalled = Unsignalled::from_offer(OFFER);
        assert_eq!(
            unsignalled.check(&rtp(96, 5, false), |ssrc| ssrc == 5),
            None
        );
        assert_eq!(unsignalled.check(&rtp(111, 6, false), |_| false), None);
        // A receiver report (PT 201) is RTCP, not RTP.
        let mut report = vec![0x81, 201, 0, 7];
        report.extend_from_slice(&[0; 8]);
        assert_eq!(peek_rtp(&report), None);
        assert_eq!(peek_rtp(&[0x16, 0xfe, 0xfd]), None); // DTLS
    }
}
