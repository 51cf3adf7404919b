//! Counting VP8 frames from RTP packets without decoding them.
//!
//! A frame is *complete* when every packet from its first one (VP8
//! descriptor S=1, partition 0) to its last one (RTP marker bit) has
//! arrived, with no sequence number missing between them. A complete frame
//! is *decodable* when the chain back to a keyframe is unbroken: its first
//! packet directly follows the last packet of the previous decodable frame.
//! That is what a decoder would show, so frame rates are counted from
//! decodable frames. A broken chain (a lost packet NACK did not repair in
//! time) is mended only by a keyframe; the counter says when to ask for
//! one (PLI).
//!
//! Pure: packets and times come in, counts and decisions come out.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How long a broken chain may wait for retransmissions before a keyframe
/// is requested, and how often the request is repeated.
pub const KEYFRAME_REQUEST_AFTER: Duration = Duration::from_millis(300);
pub const KEYFRAME_REQUEST_EVERY: Duration = Duration::from_millis(500);

/// Frames kept waiting (incomplete, or complete but not chained) before
/// the oldest is given up: a bound on memory, about 2 s of video.
const MAX_WAITING: usize = 64;

/// One RTP packet of a VP8 stream, as the viewer sees it.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    /// Extended (64-bit, rollover-free) sequence number.
    pub seq: u64,
    /// Extended RTP timestamp.
    pub timestamp: u64,
    pub marker: bool,
    /// The RTP payload: VP8 payload descriptor, then VP8 data.
    pub payload: &'a [u8],
}

/// What the start of a VP8 RTP payload says about the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vp8Start {
    /// The first packet of a frame (S=1 and partition index 0).
    pub starts_frame: bool,
    /// When `starts_frame`: the frame is a keyframe (VP8 header P bit 0).
    pub keyframe: bool,
}

/// Reads the VP8 payload descriptor (RFC 7741 section 4.2). `None` when
/// the payload is too short to hold what the descriptor announces.
pub fn parse_vp8(payload: &[u8]) -> Option<Vp8Start> {
    let first = *payload.first()?;
    let extended = first & 0x80 != 0;
    let start = first & 0x10 != 0;
    let partition = first & 0x07;
    let mut index = 1;
    if extended {
        let flags = *payload.get(1)?;
        index = 2;
        if flags & 0x80 != 0 {
            // PictureID: 15 bits when its M bit is set, else 7.
            index += if *payload.get(index)? & 0x80 != 0 {
                2
            } else {
                1
            };
        }
        if flags & 0x40 != 0 {
            index += 1; // TL0PICIDX
        }
        if flags & 0x30 != 0 {
            index += 1; // TID / Y / KEYIDX
        }
    }
    let starts_frame = start && partition == 0;
    let keyframe = starts_frame && *payload.get(index)? & 0x01 == 0;
    Some(Vp8Start {
        starts_frame,
        keyframe,
    })
}

/// Counts since the stream began.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Frames whose every packet arrived.
    pub complete: u64,
    /// Complete frames in an unbroken chain from a keyframe: what a
    /// decoder would show.
    pub decodable: u64,
    pub keyframes: u64,
    /// Frames given up incomplete (a packet never came).
    pub incomplete: u64,
    /// Complete frames that could not be decoded (the chain was broken).
    pub skipped: u64,
    /// Packets that could not be read as VP8.
    pub malformed: u64,
}

#[derive(Debug, Default)]
struct Partial {
    first: Option<u64>,
    last: Option<u64>,
    keyframe: bool,
    /// Sequence numbers received, sorted, without duplicates.
    seqs: Vec<u64>,
}

impl Partial {
    fn is_complete(&self) -> bool {
        match (self.first, self.last) {
            (Some(first), Some(last)) => {
                last >= first && self.seqs.len() as u64 == last - first + 1
            }
            _ => false,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Ready {
    last: u64,
    timestamp: u64,
    keyframe: bool,
}

/// The per-viewer frame counter.
#[derive(Debug, Default)]
pub struct FrameCounter {
    /// Incomplete frames by RTP timestamp.
    pending: BTreeMap<u64, Partial>,
    /// Complete frames not yet chained, by first sequence number.
    ready: BTreeMap<u64, Ready>,
    /// Last sequence number and timestamp of the last decodable frame.
    anchor: Option<(u64, u64)>,
    /// Since when frames have been waiting that cannot be decoded.
    broken_since: Option<Instant>,
    last_request: Option<Instant>,
    first_packet: Option<Instant>,
    counts: Counts,
}

impl FrameCounter {
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// Takes one packet; returns how many frames became decodable.
    pub fn push(&mut self, packet: Packet<'_>, now: Instant) -> u64 {
        self.first_packet.get_or_insert(now);
        let Some(vp8) = parse_vp8(packet.payload) else {
            self.counts.malformed += 1;
            return 0;
        };
        if self
            .anchor
            .is_some_and(|(_, timestamp)| packet.timestamp <= timestamp)
        {
            // A late copy of a frame already shown or given up.
            return 0;
        }
        let partial = self.pending.entry(packet.timestamp).or_default();
        if let Err(at) = partial.seqs.binary_search(&packet.seq) {
            partial.seqs.insert(at, packet.seq);
        }
        if vp8.starts_frame {
            partial.first = Some(packet.seq);
            partial.keyframe = vp8.keyframe;
        }
        if packet.marker {
            partial.last = Some(packet.seq);
        }
        if partial.is_complete() {
            let partial = self
                .pending
                .remove(&packet.timestamp)
                .expect("the entry was just used");
            self.counts.complete += 1;
            self.counts.keyframes += partial.keyframe as u64;
            let first = partial.first.expect("complete frames have a first packet");
            self.ready.insert(
                first,
                Ready {
                    last: partial.last.expect("complete frames have a last packet"),
                    timestamp: packet.timestamp,
                    keyframe: partial.keyframe,
                },
            );
        }
        let decoded = self.advance();
        self.forget_old();
        if self.ready.is_empty() && self.anchor.is_some() {
            self.broken_since = None;
        } else {
            self.broken_since.get_or_insert(now);
        }
        decoded
    }

    /// Chains what can be chained; jumps to a keyframe when one is ready,
    /// since a decoder starts over there whatever was lost before it.
    fn advance(&mut self) -> u64 {
        let mut decoded = 0;
        loop {
            let next = self
                .anchor
                .and_then(|(last, _)| self.ready.remove_entry(&(last + 1)));
            if let Some((_, frame)) = next {
                self.show(frame);
                decoded += 1;
                continue;
            }
            let keyframe = self
                .ready
                .iter()
                .find(|(_, frame)| frame.keyframe)
                .map(|(first, _)| *first);
            let Some(first) = keyframe else {
                return decoded;
            };
            // Whatever completed before the keyframe is never shown.
            let later = self.ready.split_off(&first);
            self.counts.skipped += self.ready.len() as u64;
            self.ready = later;
            let frame = self.ready.remove(&first).expect("found above");
            self.show(frame);
            decoded += 1;
        }
    }

    fn show(&mut self, frame: Ready) {
        self.counts.decodable += 1;
        self.anchor = Some((frame.last, frame.timestamp));
        self.broken_since = None;
    }

    /// Drops frames that can no longer be shown, and bounds what waits.
    fn forget_old(&mut self) {
        if let Some((last, timestamp)) = self.anchor {
            let newer = self.pending.split_off(&(timestamp + 1));
            self.counts.incomplete += self.pending.len() as u64;
            self.pending = newer;
            let newer = self.ready.split_off(&(last + 1));
            self.counts.skipped += self.ready.len() as u64;
            self.ready = newer;
        }
        while self.pending.len() > MAX_WAITING {
            self.pending.pop_first();
            self.counts.incomplete += 1;
        }
        while self.ready.len() > MAX_WAITING {
            self.ready.pop_first();
            self.counts.skipped += 1;
        }
    }

    /// Whether to send a keyframe request (PLI) now: frames have waited
    /// undecodable longer than retransmission needs, or video flows
    /// without a keyframe. Repeated while that lasts, rate limited.
    pub fn wants_keyframe(&mut self, now: Instant) -> bool {
        let waiting_since = match (self.anchor, self.broken_since) {
            (_, Some(since)) => since,
            (None, None) => match self.first_packet {
                Some(first) => first,
                None => return false,
            },
            (Some(_), None) => return false,
        };
        let waited = now.saturating_duration_since(waiting_since) >= KEYFRAME_REQUEST_AFTER;
        let rested = self
            .last_request
            .is_none_or(|at| now.saturating_duration_since(at) >= KEYFRAME_REQUEST_EVERY);
        if waited && rested {
            self.last_request = Some(now);
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A VP8 payload: descriptor with a 15-bit picture id, then one byte
    /// of VP8 header (P bit) when the packet starts a frame.
    fn payload(start: bool, keyframe: bool) -> Vec<u8> {
        let mut bytes = vec![0x80 | if start { 0x10 } else { 0 }, 0x80, 0x81, 0x02];
        bytes.push(if keyframe { 0x00 } else { 0x01 });
        bytes
    }

    /// Frames of `sizes[i]` packets each, the first one a keyframe,
    /// numbered from seq 100: (seq, timestamp, marker, payload).
    fn stream(sizes: &[u64]) -> Vec<(u64, u64, bool, Vec<u8>)> {
        let mut packets = Vec::new();
        let mut seq = 100;
        for (frame, &size) in sizes.iter().enumerate() {
            for i in 0..size {
                let bytes = payload(i == 0, frame == 0);
                packets.push((seq, 3000 * frame as u64, i == size - 1, bytes));
                seq += 1;
            }
        }
        packets
    }

    fn push_all(counter: &mut FrameCounter, packets: &[(u64, u64, bool, Vec<u8>)], now: Instant) {
        for (seq, timestamp, marker, bytes) in packets {
            let packet = Packet {
                seq: *seq,
                timestamp: *timestamp,
                marker: *marker,
                payload: bytes,
            };
            counter.push(packet, now);
        }
    }

    #[test]
    fn reads_the_descriptor() {
        assert_eq!(
            parse_vp8(&payload(true, true)),
            Some(Vp8Start {
                starts_frame: true,
                keyframe: true
            })
        );
        assert!(!parse_vp8(&payload(true, false)).unwrap().keyframe);
        assert!(!parse_vp8(&payload(false, false)).unwrap().starts_frame);
        // No extension: the VP8 header follows the first byte.
        assert!(parse_vp8(&[0x10, 0x00]).unwrap().keyframe);
        // A later partition does not start a frame.
        assert!(!parse_vp8(&[0x11, 0x00]).unwrap().starts_frame);
        assert_eq!(parse_vp8(&[0x90, 0x80]), None);
        assert_eq!(parse_vp8(&[]), None);
    }

    #[test]
    fn counts_every_frame_of_a_clean_stream() {
        let mut counter = FrameCounter::default();
        let now = Instant::now();
        push_all(&mut counter, &stream(&[5, 2, 1, 3]), now);
        let counts = counter.counts();
        assert_eq!(
            (counts.complete, counts.decodable, counts.keyframes),
            (4, 4, 1)
        );
        assert!(!counter.wants_keyframe(now + Duration::from_secs(5)));
    }

    #[test]
    fn reordered_packets_still_make_frames() {
        let mut counter = FrameCounter::default();
        let mut packets = stream(&[3, 3, 3]);
        packets.swap(1, 2);
        packets.swap(4, 6);
        push_all(&mut counter, &packets, Instant::now());
        assert_eq!(counter.counts().decodable, 3);
    }

    #[test]
    fn a_lost_packet_breaks_the_chain_until_a_keyframe() {
        let now = Instant::now();
        let mut counter = FrameCounter::default();
        let mut packets = stream(&[2, 2, 2, 2]);
        packets.remove(3); // frame 1 loses its last packet
        push_all(&mut counter, &packets, now);
        let counts = counter.counts();
        assert_eq!((counts.complete, counts.decodable), (3, 1));
        // Retransmission gets its chance first, then PLI, rate limited.
        assert!(!counter.wants_keyframe(now + Duration::from_millis(100)));
        assert!(counter.wants_keyframe(now + KEYFRAME_REQUEST_AFTER));
        assert!(!counter.wants_keyframe(now + KEYFRAME_REQUEST_AFTER));
        assert!(counter.wants_keyframe(now + KEYFRAME_REQUEST_AFTER + KEYFRAME_REQUEST_EVERY));
        // A keyframe mends it.
        let later = Instant::now();
        let keyframe = [payload(true, true), payload(false, false)];
        for (i, seq) in (108..110).enumerate() {
            let packet = Packet {
                seq,
                timestamp: 12_000,
                marker: i == 1,
                payload: &keyframe[i],
            };
            counter.push(packet, later);
        }
        let counts = counter.counts();
        assert_eq!((counts.decodable, counts.keyframes), (2, 2));
        assert_eq!(counts.skipped + counts.incomplete, 3);
        assert!(!counter.wants_keyframe(later + Duration::from_secs(1)));
    }

    #[test]
    fn a_retransmission_in_time_mends_the_chain() {
        let now = Instant::now();
        let mut counter = FrameCounter::default();
        let mut packets = stream(&[2, 2, 2]);
        let lost = packets.remove(2);
        push_all(&mut counter, &packets, now);
        assert_eq!(counter.counts().decodable, 1);
        push_all(&mut counter, &[lost], now);
        assert_eq!(counter.counts().decodable, 3);
        assert!(!counter.wants_keyframe(now + Duration::from_secs(1)));
    }

    #[test]
    fn a_stream_joined_mid_way_waits_for_a_keyframe_and_asks_for_one() {
        let now = Instant::now();
        let mut counter = FrameCounter::default();
        let packets = stream(&[2, 2, 2]);
        push_all(&mut counter, &packets[2..], now);
        assert_eq!(counter.counts().decodable, 0);
        assert_eq!(counter.counts().complete, 2);
        assert!(counter.wants_keyframe(now + KEYFRAME_REQUEST_AFTER));
    }

    #[test]
    fn duplicates_and_late_copies_are_not_counted_twice() {
        let mut counter = FrameCounter::default();
        let packets = stream(&[2, 2]);
        let now = Instant::now();
        push_all(&mut counter, &packets, now);
        push_all(&mut counter, &packets, now);
        let counts = counter.counts();
        assert_eq!((counts.complete, counts.decodable), (2, 2));
    }
}
