//! Padding towards one viewer, for probing its path (probe.rs): RTX
//! retransmissions (RFC 4588) of video packets it has just received,
//! which its jitter buffer drops as duplicates (or its RTX receiver, as
//! unrequested), at a given rate on top of its stream. libwebrtc pads the
//! same way. They are made by webrtcbin's own `rtprtxsend`, from its
//! packet history, asked for with the event the RTP session sends it for
//! a NACK.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;

use crate::runtime::RUNTIME;

/// How many recent video packets padding cycles through (those still in
/// rtprtxsend's history: see [`RecentPackets::snapshot`]).
const RECENT_PACKETS: usize = 32;
/// How long rtprtxsend keeps a packet for retransmission: libwebrtc's
/// sender keeps max(1 s, 3 × RTT) (RtpPacketHistory); a NACK for an older
/// packet comes after the viewer stopped waiting for its frame. webrtcbin
/// bounds the history to 500 packets only (2.4 s at 2 Mbit/s), and with
/// transport-cc each stored packet is a copy of its own for each viewer
/// (the payloader's header extension write makes its payload private):
/// ~0.85 MB per viewer at 2 Mbit/s before, measured.
const RETRANSMISSION_HISTORY_MS: u32 = 1000;
/// How often padding is sent: small bursts, not a flood.
const PERIOD: Duration = Duration::from_millis(10);
/// RTX adds the original sequence number to each packet.
const RTX_OVERHEAD: usize = 2;

/// Padding asks only for packets this much younger than the history
/// bound, so that rtprtxsend still has them when the request reaches it.
const HISTORY_MARGIN: Duration = Duration::from_millis(250);

/// The latest video packets sent to a viewer: sequence number, size and
/// when.
#[derive(Debug, Default)]
pub struct RecentPackets(VecDeque<(u16, usize, Instant)>);

impl RecentPackets {
    /// Records one RTP packet (ignored if it is not one).
    #[cfg(test)]
    pub fn record(&mut self, packet: &[u8]) {
        if let Some(head) = packet.first_chunk::<4>() {
            self.record_head(head, packet.len());
        }
    }

    /// Records the RTP packet in `buffer`, reading only its first bytes.
    /// Not with `map_readable`: mapping a buffer made of several memories
    /// (the payloader's header and a slice of the encoded frame that every
    /// viewer shares) merges them into a new copy that then replaces them
    /// in the buffer. Every packet of every viewer became a private copy,
    /// kept as long as rtprtxsend's history keeps the packet: 0.67 MB per
    /// viewer, measured (docs/benchmarks/broadcast.md, "Memory per
    /// viewer").
    pub fn record_buffer(&mut self, buffer: &gst::BufferRef) {
        let mut head = [0u8; 4];
        // copy_to_slice panics on a range past the buffer's end.
        if buffer.size() >= 12 && buffer.copy_to_slice(0, &mut head).is_ok() {
            self.record_head(&head, buffer.size());
        }
    }

    fn record_head(&mut self, head: &[u8; 4], size: usize) {
        if size < 12 || head[0] >> 6 != 2 {
            return;
        }
        let seqnum = u16::from_be_bytes([head[2], head[3]]);
        self.0.push_back((seqnum, size, Instant::now()));
        if self.0.len() > RECENT_PACKETS {
            self.0.pop_front();
        }
    }

    /// The recent packets rtprtxsend still keeps: at a low bitrate the
    /// oldest of RECENT_PACKETS can be older than its history.
    fn snapshot(&self) -> Vec<(u16, usize)> {
        let history = Duration::from_millis(RETRANSMISSION_HISTORY_MS.into()) - HISTORY_MARGIN;
        self.0
            .iter()
            .filter(|(_, _, at)| at.elapsed() < history)
            .map(|&(seqnum, size, _)| (seqnum, size))
            .collect()
    }
}

pub struct Padder {
    /// rtprtxsend's source pad, where retransmission requests go.
    rtx_src: gst::Pad,
    rtxsend: gst::Element,
    /// rtprtxsend's history now, in ms.
    history_ms: AtomicU32,
    recent: Arc<Mutex<RecentPackets>>,
    /// Bumped by every start and stop: a padding task runs while it
    /// still sees its own generation.
    generation: Arc<AtomicU64>,
}

/// Keeps `rtxsend`'s history to what a NACK can still use (its packet
/// bound, webrtcbin's, stays: whichever is reached first).
fn bound_history(rtxsend: &gst::Element, ms: u32) {
    if rtxsend.find_property("max-size-time").is_some() {
        rtxsend.set_property("max-size-time", ms);
    }
}

/// The history a path with `round_trip` needs, as libwebrtc keeps it:
/// max(1 s, 3 × RTT) — a NACK for a packet comes a round trip after it
/// was sent at the earliest, and may be repeated.
pub fn history_for(round_trip: Duration) -> u32 {
    let three_round_trips = round_trip.as_millis().saturating_mul(3);
    RETRANSMISSION_HISTORY_MS.max(three_round_trips.min(u32::MAX as u128) as u32)
}

impl Padder {
    /// The padder of `webrtcbin`'s session, if it retransmits (the
    /// viewer negotiated RTX).
    pub fn find(webrtcbin: &gst::Element, recent: Arc<Mutex<RecentPackets>>) -> Option<Padder> {
        let rtxsend = crate::common::child_made_by(webrtcbin, "rtprtxsend", true)?;
        bound_history(&rtxsend, RETRANSMISSION_HISTORY_MS);
        Some(Padder {
            rtx_src: rtxsend.static_pad("src")?,
            history_ms: AtomicU32::new(RETRANSMISSION_HISTORY_MS),
            rtxsend,
            recent,
            generation: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Keeps enough history for NACKs over a path with `round_trip`
    /// (the 1 s minimum was cut for memory; a long path needs more).
    pub fn keep_history_for(&self, round_trip: Duration) {
        let ms = history_for(round_trip);
        if self.history_ms.swap(ms, Ordering::Relaxed) != ms {
            bound_history(&self.rtxsend, ms);
        }
    }

    /// Pads with retransmissions of our video stream `ssrc`, rising
    /// evenly from nothing to `bits_per_second` over `ramp`, then at that
    /// rate until [`Padder::stop`].
    pub fn start(&self, ssrc: u32, bits_per_second: u64, ramp: Duration) {
        let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        let current = self.generation.clone();
        let recent = self.recent.clone();
        let pad = self.rtx_src.clone();
        RUNTIME.spawn(async move {
            let mut interval = tokio::time::interval(PERIOD);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let started = Instant::now();
            let mut last = started;
            let mut owed = 0.0f64;
            let mut next = 0usize;
            // At most two periods' worth at once, whatever the timer did.
            let most = bits_per_second as f64 / 8.0 * PERIOD.as_secs_f64() * 2.0;
            loop {
                interval.tick().await;
                if current.load(Ordering::Acquire) != generation {
                    return;
                }
                let now = Instant::now();
                let share = if ramp.is_zero() {
                    1.0
                } else {
                    (now.duration_since(started).as_secs_f64() / ramp.as_secs_f64()).min(1.0)
                };
                owed = (owed
                    + share * bits_per_second as f64 / 8.0
                        * now.duration_since(last).as_secs_f64())
                .min(most);
                last = now;
                let packets = recent.lock().unwrap().snapshot();
                if packets.is_empty() {
                    continue;
                }
                while owed > 0.0 {
                    let (seqnum, size) = packets[next % packets.len()];
                    next = next.wrapping_add(1);
                    let request = gst::Structure::builder("GstRTPRetransmissionRequest")
                        .field("seqnum", seqnum as u32)
                        .field("ssrc", ssrc)
                        .build();
                    if !pad.send_event(gst::event::CustomUpstream::new(request)) {
                        return;
                    }
                    owed -= (size + RTX_OVERHEAD) as f64;
                }
            }
        });
    }

    pub fn stop(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

impl Drop for Padder {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rtp(seqnum: u16, size: usize) -> Vec<u8> {
        let mut packet = vec![0x80, 96];
        packet.extend(seqnum.to_be_bytes());
        packet.resize(size, 0);
        packet
    }

    #[test]
    fn keeps_the_latest_packets() {
        let mut recent = RecentPackets::default();
        for seqnum in 0..40u16 {
            recent.record(&rtp(seqnum, 100 + seqnum as usize));
        }
        recent.record(&[0x00, 1, 2]);
        let kept = recent.snapshot();
        assert_eq!(kept.len(), RECENT_PACKETS);
        assert_eq!(kept[0], (8, 108));
        assert_eq!(kept.last(), Some(&(39, 139)));
    }

    #[test]
    fn the_history_covers_three_round_trips_and_never_less_than_a_second() {
        assert_eq!(history_for(Duration::from_millis(20)), 1000);
        assert_eq!(history_for(Duration::from_millis(333)), 1000);
        assert_eq!(history_for(Duration::from_millis(600)), 1800);
        assert_eq!(history_for(Duration::from_secs(u64::MAX / 1000)), u32::MAX);
    }

    #[test]
    fn offers_only_packets_still_in_the_history() {
        let mut recent = RecentPackets::default();
        let old = Instant::now() - Duration::from_millis(RETRANSMISSION_HISTORY_MS.into());
        recent.0.push_back((1, 100, old));
        recent.record(&rtp(2, 100));
        assert_eq!(recent.snapshot(), vec![(2, 100)]);
    }

    #[test]
    fn reading_a_packet_leaves_its_memories_shared() {
        gst::init().unwrap();
        let header = rtp(7, 12);
        let payload = vec![0xab; 1000];
        let mut buffer = gst::Buffer::from_slice(header);
        buffer
            .get_mut()
            .unwrap()
            .append_memory(gst::Memory::from_slice(payload));
        let mut recent = RecentPackets::default();
        recent.record_buffer(&buffer);
        assert_eq!(recent.snapshot(), vec![(7, 1012)]);
        // Mapped whole, the two memories would have been merged into one
        // new copy of the packet.
        assert_eq!(buffer.n_memory(), 2);
        recent.record_buffer(&gst::Buffer::from_slice([0x80u8, 96]));
        assert_eq!(recent.snapshot().len(), 1, "a runt is no RTP packet");
    }
}
