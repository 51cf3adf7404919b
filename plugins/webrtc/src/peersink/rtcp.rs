//! Reads the RTCP a viewer sends back (RFC 3550 reports, RFC 4585
//! feedback, REMB) into what the adaptation needs. Pure, so that the
//! bit layouts are unit-tested; malformed input is skipped, never trusted.

/// A reception report about one of our streams.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReportBlock {
    pub ssrc: u32,
    /// Share of packets lost since the previous report (0.0–1.0).
    pub fraction_lost: f64,
    pub cumulative_lost: i32,
    /// Extended highest sequence number received (cycles in the top 16
    /// bits): with `cumulative_lost`, the loss between any two reports.
    pub highest_seq: u32,
    /// Interarrival jitter, in RTP timestamp units.
    pub jitter: u32,
}

/// What one compound RTCP packet says.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Feedback {
    pub reports: Vec<ReportBlock>,
    /// Receiver-estimated maximum bitrate, bits per second.
    pub remb: Option<u64>,
    /// Packets asked for again by generic NACKs, per media SSRC.
    pub nacked: Vec<(u32, u32)>,
    /// Picture loss indications and full intra requests.
    pub keyframe_requests: u32,
}

const SR: u8 = 200;
const RR: u8 = 201;
const RTPFB: u8 = 205;
const PSFB: u8 = 206;

pub fn parse(data: &[u8]) -> Feedback {
    let mut feedback = Feedback::default();
    let mut rest = data;
    while rest.len() >= 4 {
        let count = (rest[0] & 0x1f) as usize;
        let version = rest[0] >> 6;
        let packet_type = rest[1];
        let length = (u16::from_be_bytes([rest[2], rest[3]]) as usize + 1) * 4;
        if version != 2 || length > rest.len() {
            break;
        }
        let packet = &rest[..length];
        rest = &rest[length..];
        match packet_type {
            SR => report_blocks(packet, 28, count, &mut feedback.reports),
            RR => report_blocks(packet, 8, count, &mut feedback.reports),
            RTPFB if count == 1 && packet.len() >= 12 => {
                let media_ssrc = u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]);
                let lost: u32 = packet[12..]
                    .chunks_exact(4)
                    .map(|fci| 1 + u16::from_be_bytes([fci[2], fci[3]]).count_ones())
                    .sum();
                feedback.nacked.push((media_ssrc, lost));
            }
            PSFB if count == 1 || count == 4 => feedback.keyframe_requests += 1,
            PSFB if count == 15 && packet.len() >= 20 && &packet[12..16] == b"REMB" => {
                let exponent = packet[17] >> 2;
                let mantissa = (((packet[17] & 0x03) as u64) << 16)
                    | ((packet[18] as u64) << 8)
                    | packet[19] as u64;
                feedback.remb = Some(mantissa.checked_shl(exponent as u32).unwrap_or(u64::MAX));
            }
            _ => {}
        }
    }
    feedback
}

fn report_blocks(packet: &[u8], start: usize, count: usize, reports: &mut Vec<ReportBlock>) {
    let Some(blocks) = packet.get(start..) else {
        return;
    };
    for block in blocks.chunks_exact(24).take(count) {
        // 24-bit two's complement.
        let lost = i32::from_be_bytes([block[5], block[6], block[7], 0]) >> 8;
        reports.push(ReportBlock {
            ssrc: u32::from_be_bytes([block[0], block[1], block[2], block[3]]),
            fraction_lost: block[4] as f64 / 256.0,
            cumulative_lost: lost,
            highest_seq: u32::from_be_bytes([block[8], block[9], block[10], block[11]]),
            jitter: u32::from_be_bytes([block[12], block[13], block[14], block[15]]),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(count: u8, packet_type: u8, words_after: u16) -> Vec<u8> {
        let mut out = vec![0x80 | count, packet_type];
        out.extend(words_after.to_be_bytes());
        out
    }

    fn report_block(ssrc: u32, fraction: u8, lost: i32) -> Vec<u8> {
        let mut out = ssrc.to_be_bytes().to_vec();
        out.push(fraction);
        out.extend(&lost.to_be_bytes()[1..]);
        out.extend(1000u32.to_be_bytes()); // highest sequence
        out.extend(42u32.to_be_bytes()); // jitter
        out.extend([0; 8]); // LSR, DLSR
        out
    }

    #[test]
    fn receiver_report_then_remb_then_nack_and_pli() {
        let mut data = header(2, RR, 1 + 12);
        data.extend(7u32.to_be_bytes());
        data.extend(report_block(0xaabb, 26, 120));
        data.extend(report_block(0xccdd, 0, -1));
        // REMB for one SSRC: 1.5 Mbit/s = 187500 << 3 (an 18-bit mantissa).
        data.extend(header(15, PSFB, 5));
        data.extend(7u32.to_be_bytes());
        data.extend(0u32.to_be_bytes());
        data.extend(b"REMB");
        let (exponent, mantissa) = (3u32, 187_500u32);
        data.push(1);
        data.push(((exponent << 2) | (mantissa >> 16)) as u8);
        data.extend(&(mantissa as u16).to_be_bytes());
        data.extend(0xaabbu32.to_be_bytes());
        // NACK: packet 10 and the two after it (BLP bits 0 and 1).
        data.extend(header(1, RTPFB, 3));
        data.extend(7u32.to_be_bytes());
        data.extend(0xaabbu32.to_be_bytes());
        data.extend(10u16.to_be_bytes());
        data.extend(0b11u16.to_be_bytes());
        data.extend(header(1, PSFB, 2));
        data.extend(7u32.to_be_bytes());
        data.extend(0xaabbu32.to_be_bytes());

        let feedback = parse(&data);
        assert_eq!(feedback.reports.len(), 2);
        assert_eq!(feedback.reports[0].ssrc, 0xaabb);
        assert!((feedback.reports[0].fraction_lost - 0.1016).abs() < 0.001);
        assert_eq!(feedback.reports[0].cumulative_lost, 120);
        assert_eq!(feedback.reports[0].jitter, 42);
        assert_eq!(feedback.reports[0].highest_seq, 1000);
        assert_eq!(feedback.reports[1].cumulative_lost, -1);
        assert_eq!(feedback.remb, Some(1_500_000));
        assert_eq!(feedback.nacked, vec![(0xaabb, 3)]);
        assert_eq!(feedback.keyframe_requests, 1);
    }

    #[test]
    fn sender_report_blocks_follow_the_sender_info() {
        let mut data = header(1, SR, 6 + 6);
        data.extend(7u32.to_be_bytes());
        data.extend([0; 20]);
        data.extend(report_block(5, 128, 3));
        let feedback = parse(&data);
        assert_eq!(feedback.reports.len(), 1);
        assert_eq!(feedback.reports[0].fraction_lost, 0.5);
    }

    #[test]
    fn truncated_or_foreign_data_is_skipped() {
        assert_eq!(parse(&[]), Feedback::default());
        assert_eq!(parse(&[0x81, RR, 0, 40, 1, 2]), Feedback::default());
        assert_eq!(parse(&[0x01, RR, 0, 0]), Feedback::default());
        // Claims two blocks, carries none.
        let mut data = header(2, RR, 1);
        data.extend(7u32.to_be_bytes());
        assert!(parse(&data).reports.is_empty());
    }
}
