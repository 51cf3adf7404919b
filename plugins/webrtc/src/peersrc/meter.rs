//! What arrives on one track of peersrc, for its statistics and for
//! `peer record`'s progress lines: the picture size, frames and encoded
//! bytes, turned into a frame rate and a bitrate once a tick. And the
//! keyframe requests (PLI) the track sends, rate-limited.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::codec::{Codec, MediaKind};

/// Keyframe requests of one track closer together than this are folded
/// into the first: a burst of losses asks the sender for one keyframe,
/// not one per lost packet (a keyframe costs the sender several frames'
/// worth of bits).
pub const MIN_KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_millis(500);

#[derive(Debug, Default)]
struct Counts {
    width: Option<u32>,
    height: Option<u32>,
    frames: u64,
    bytes: u64,
    keyframe_requests: u64,
    /// Frames and bytes at the previous tick, and when it was.
    previous: Option<(Instant, u64, u64)>,
    frames_per_second: f64,
    bitrate: f64,
    last_keyframe_request: Option<Instant>,
}

/// One track's figures, as the stats show them.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackFigures {
    pub kind: MediaKind,
    pub codec: Codec,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub frames_per_second: f64,
    /// Encoded bits per second over the last tick.
    pub bitrate: f64,
    pub frames: u64,
    pub bytes: u64,
    pub keyframe_requests: u64,
}

#[derive(Debug)]
pub struct TrackMeter {
    codec: Codec,
    counts: Mutex<Counts>,
}

impl TrackMeter {
    pub fn new(codec: Codec) -> TrackMeter {
        TrackMeter {
            codec,
            counts: Mutex::new(Counts::default()),
        }
    }

    /// An encoded frame (or audio packet) out of the depayloader.
    pub fn encoded(&self, data: &[u8]) {
        let size = (self.codec == Codec::Vp8)
            .then(|| vp8_keyframe_size(data))
            .flatten();
        let mut counts = self.counts.lock().unwrap();
        counts.bytes += data.len() as u64;
        if let Some((width, height)) = size {
            counts.width = Some(width);
            counts.height = Some(height);
        }
    }

    /// A frame at the track's output (decoded, or parsed whole).
    pub fn frame(&self) {
        self.counts.lock().unwrap().frames += 1;
    }

    /// The output's caps changed: a picture size, when they carry one.
    pub fn caps(&self, structure: &gst::StructureRef) {
        if let (Ok(width), Ok(height)) = (
            structure.get::<i32>("width"),
            structure.get::<i32>("height"),
        ) {
            let mut counts = self.counts.lock().unwrap();
            counts.width = Some(width as u32);
            counts.height = Some(height as u32);
        }
    }

    /// Whether a keyframe request may go to the sender now (see
    /// [`MIN_KEYFRAME_REQUEST_INTERVAL`]); counts those that may.
    pub fn allow_keyframe_request(&self, now: Instant) -> bool {
        let mut counts = self.counts.lock().unwrap();
        let allowed = counts
            .last_keyframe_request
            .is_none_or(|last| now.duration_since(last) >= MIN_KEYFRAME_REQUEST_INTERVAL);
        if allowed {
            counts.last_keyframe_request = Some(now);
            counts.keyframe_requests += 1;
        }
        allowed
    }

    /// Once a tick: rates since the previous tick.
    pub fn tick(&self, now: Instant) {
        let mut counts = self.counts.lock().unwrap();
        if let Some((at, frames, bytes)) = counts.previous {
            let seconds = now.duration_since(at).as_secs_f64();
            if seconds > 0.0 {
                counts.frames_per_second = (counts.frames - frames) as f64 / seconds;
                counts.bitrate = (counts.bytes - bytes) as f64 * 8.0 / seconds;
            }
        }
        counts.previous = Some((now, counts.frames, counts.bytes));
    }

    pub fn figures(&self) -> TrackFigures {
        let counts = self.counts.lock().unwrap();
        TrackFigures {
            kind: self.codec.kind(),
            codec: self.codec,
            width: counts.width,
            height: counts.height,
            frames_per_second: counts.frames_per_second,
            bitrate: counts.bitrate,
            frames: counts.frames,
            bytes: counts.bytes,
            keyframe_requests: counts.keyframe_requests,
        }
    }
}

/// The picture size of a VP8 keyframe (RFC 6386 9.1: a 3-byte frame tag
/// whose lowest bit is 0 for keyframes, the start code 9d 01 2a, then
/// width and height in 14 bits each, little-endian); None for other
/// frames. rtpvp8depay's caps do not always say it.
pub fn vp8_keyframe_size(frame: &[u8]) -> Option<(u32, u32)> {
    if frame.len() < 10 || frame[0] & 1 != 0 || frame[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let width = u16::from_le_bytes([frame[6], frame[7]]) & 0x3fff;
    let height = u16::from_le_bytes([frame[8], frame[9]]) & 0x3fff;
    Some((width as u32, height as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp8_keyframes_tell_their_size() {
        let mut keyframe = vec![0x50, 0x2a, 0x01, 0x9d, 0x01, 0x2a];
        keyframe.extend_from_slice(&1280u16.to_le_bytes());
        keyframe.extend_from_slice(&(720u16 | 0x4000).to_le_bytes()); // scaling bits ignored
        assert_eq!(vp8_keyframe_size(&keyframe), Some((1280, 720)));
        let mut interframe = keyframe.clone();
        interframe[0] |= 1;
        assert_eq!(vp8_keyframe_size(&interframe), None);
        assert_eq!(vp8_keyframe_size(&keyframe[..8]), None);
    }

    #[test]
    fn rates_are_per_second_between_ticks() {
        let meter = TrackMeter::new(Codec::Vp8);
        let start = Instant::now();
        meter.tick(start);
        for _ in 0..30 {
            meter.frame();
            meter.encoded(&[0u8; 1000]);
        }
        meter.tick(start + Duration::from_secs(2));
        let figures = meter.figures();
        assert_eq!(figures.frames_per_second, 15.0);
        assert_eq!(figures.bitrate, 120_000.0);
        assert_eq!(figures.frames, 30);
    }

    #[test]
    fn keyframe_requests_are_spaced() {
        let meter = TrackMeter::new(Codec::Vp8);
        let start = Instant::now();
        assert!(meter.allow_keyframe_request(start));
        assert!(!meter.allow_keyframe_request(start + Duration::from_millis(100)));
        assert!(meter.allow_keyframe_request(start + MIN_KEYFRAME_REQUEST_INTERVAL));
        assert_eq!(meter.figures().keyframe_requests, 2);
    }
}
