//! Padding towards one viewer, for probing its path (probe.rs): RTX
//! retransmissions (RFC 4588) of video packets it has just received,
//! which its jitter buffer drops as duplicates (or its RTX receiver, as
//! unrequested), at a given rate on top of its stream. libwebrtc pads the
//! same way. They are made by webrtcbin's own `rtprtxsend`, from its
//! packet history, asked for with the event the RTP session sends it for
//! a NACK.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;

use crate::runtime::RUNTIME;

/// How many recent video packets padding cycles through (all within
/// rtprtxsend's history of 100).
const RECENT_PACKETS: usize = 32;
/// How often padding is sent: small bursts, not a flood.
const PERIOD: Duration = Duration::from_millis(10);
/// RTX adds the original sequence number to each packet.
const RTX_OVERHEAD: usize = 2;

/// The latest video packets sent to a viewer: sequence number and size.
#[derive(Debug, Default)]
pub struct RecentPackets(VecDeque<(u16, usize)>);

impl RecentPackets {
    /// Records one RTP packet (ignored if it is not one).
    pub fn record(&mut self, packet: &[u8]) {
        if packet.len() < 12 || packet[0] >> 6 != 2 {
            return;
        }
        let seqnum = u16::from_be_bytes([packet[2], packet[3]]);
        self.0.push_back((seqnum, packet.len()));
        if self.0.len() > RECENT_PACKETS {
            self.0.pop_front();
        }
    }

    fn snapshot(&self) -> Vec<(u16, usize)> {
        self.0.iter().copied().collect()
    }
}

pub struct Padder {
    /// rtprtxsend's source pad, where retransmission requests go.
    rtx_src: gst::Pad,
    recent: Arc<Mutex<RecentPackets>>,
    /// Bumped by every start and stop: a padding task runs while it
    /// still sees its own generation.
    generation: Arc<AtomicU64>,
}

impl Padder {
    /// The padder of `webrtcbin`'s session, if it retransmits (the
    /// viewer negotiated RTX).
    pub fn find(webrtcbin: &gst::Element, recent: Arc<Mutex<RecentPackets>>) -> Option<Padder> {
        let rtxsend = crate::common::child_made_by(webrtcbin, "rtprtxsend", true)?;
        Some(Padder {
            rtx_src: rtxsend.static_pad("src")?,
            recent,
            generation: Arc::new(AtomicU64::new(0)),
        })
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
}
