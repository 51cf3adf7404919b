//! A receiving pipeline that records what a user would check: decoded
//! frames (size, colour at the centre) and audio samples.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;
use gst_video::prelude::*;

#[derive(Debug, Default, Clone)]
pub struct Received {
    pub video_frames: u64,
    pub width: u32,
    pub height: u32,
    /// RGB of the centre pixel of the last frame.
    pub centre_rgb: [u8; 3],
    /// RGB of the centre pixel of every frame, in decoding order.
    pub centres: Vec<[u8; 3]>,
    /// The last frame, packed RGB rows of `width` pixels.
    pub last_frame: Vec<u8>,
    /// One frame per second of media time (its timestamp and packed RGB).
    pub snapshots: Vec<(gst::ClockTime, Vec<u8>)>,
    /// Mono F32 at 48 kHz, the most recent few seconds.
    pub audio: Vec<f32>,
    pub audio_buffers: u64,
    pub pads: Vec<String>,
    /// Earliest and latest end timestamp of what was decoded, any track.
    pub first_pts: Option<gst::ClockTime>,
    pub last_end: Option<gst::ClockTime>,
    /// Freezes, from the wall-clock arrival of decoded frames since the
    /// first frame (or the last `Receiver::reset_freezes`).
    pub freezes: Freezes,
}

/// A picture is frozen while no new frame is decoded: gaps between frames
/// longer than `FROZEN_AFTER` count, whole, as frozen time.
#[derive(Debug, Default, Clone)]
pub struct Freezes {
    pub last_frame_at: Option<Instant>,
    pub since: Option<Instant>,
    pub longest_gap: Duration,
    pub frozen: Duration,
}

/// Three frame intervals at 30 fps, with room for jitter.
pub const FROZEN_AFTER: Duration = Duration::from_millis(150);

impl Freezes {
    fn frame(&mut self, now: Instant) {
        if let Some(previous) = self.last_frame_at {
            let gap = now - previous;
            self.longest_gap = self.longest_gap.max(gap);
            if gap > FROZEN_AFTER {
                self.frozen += gap;
            }
        }
        self.since.get_or_insert(now);
        self.last_frame_at = Some(now);
    }

    /// Frozen time per minute of watching, up to now (the gap since the
    /// last frame included).
    pub fn frozen_per_minute(&self) -> Duration {
        let (Some(since), Some(last)) = (self.since, self.last_frame_at) else {
            return Duration::ZERO;
        };
        let now = Instant::now();
        let open_gap = now - last;
        let frozen = self.frozen
            + if open_gap > FROZEN_AFTER {
                open_gap
            } else {
                Duration::ZERO
            };
        let watched = (now - since).as_secs_f64().max(1.0);
        frozen.mul_f64(60.0 / watched)
    }

    /// The longest gap, the one still open included.
    pub fn longest_gap_now(&self) -> Duration {
        let open = self
            .last_frame_at
            .map_or(Duration::ZERO, |last| last.elapsed());
        self.longest_gap.max(open)
    }
}

impl Received {
    /// RGB at (x, y) of the last frame.
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        self.pixel_of(&self.last_frame, x, y)
    }

    /// RGB at (x, y) of a packed frame of this size.
    pub fn pixel_of(&self, frame: &[u8], x: u32, y: u32) -> [u8; 3] {
        let offset = ((y * self.width + x) * 3) as usize;
        [frame[offset], frame[offset + 1], frame[offset + 2]]
    }

    /// Media time covered by what was received.
    pub fn span(&self) -> Duration {
        match (self.first_pts, self.last_end) {
            (Some(first), Some(last)) if last > first => {
                Duration::from_nanos((last - first).nseconds())
            }
            _ => Duration::ZERO,
        }
    }

    fn note_timestamps(&mut self, buffer: &gst::BufferRef) {
        if let Some(pts) = buffer.pts() {
            self.first_pts = Some(self.first_pts.map_or(pts, |first| first.min(pts)));
            let end = pts + buffer.duration().unwrap_or(gst::ClockTime::ZERO);
            self.last_end = Some(self.last_end.map_or(end, |last| last.max(end)));
        }
    }
}

/// Decodes a whole file as fast as possible and reports what it holds.
pub fn decode_file(path: &std::path::Path) -> Received {
    let pipeline = gst::Pipeline::new();
    let source = gst::ElementFactory::make("filesrc")
        .property("location", path.to_string_lossy().as_ref())
        .build()
        .unwrap();
    let decode = gst::ElementFactory::make("decodebin").build().unwrap();
    pipeline.add_many([&source, &decode]).unwrap();
    source.link(&decode).unwrap();
    let shared = Arc::new(Shared::default());
    let weak = pipeline.downgrade();
    let pad_shared = shared.clone();
    decode.connect_pad_added(move |_, pad| {
        let Some(pipeline) = weak.upgrade() else {
            return;
        };
        let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
        let video = caps
            .structure(0)
            .is_some_and(|s| s.name().starts_with("video"));
        pad_shared
            .received
            .lock()
            .unwrap()
            .pads
            .push(pad.name().to_string());
        let sink = if video {
            video_checker(pad_shared.clone())
        } else {
            audio_checker(pad_shared.clone())
        };
        pipeline.add(&sink).unwrap();
        sink.sync_state_with_parent().unwrap();
        pad.link(&sink.static_pad("sink").unwrap()).unwrap();
    });
    pipeline
        .set_state(gst::State::Playing)
        .expect("the file can be played");
    let bus = pipeline.bus().unwrap();
    let end = bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(60),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    let _ = pipeline.set_state(gst::State::Null);
    match end.as_ref().map(|m| m.view()) {
        Some(gst::MessageView::Eos(_)) => {}
        Some(gst::MessageView::Error(err)) => {
            panic!("{} does not play: {}", path.display(), err.error())
        }
        _ => panic!("{} did not finish decoding within 60 s", path.display()),
    }
    shared.received.lock().unwrap().clone()
}

#[derive(Default)]
struct Shared {
    received: Mutex<Received>,
    changed: Condvar,
}

pub struct Receiver {
    pub pipeline: gst::Pipeline,
    pub peersrc: gst::Element,
    shared: Arc<Shared>,
}

const AUDIO_KEEP: usize = 48_000 * 4;

impl Receiver {
    /// `peersrc` with the given properties, each decoded track checked.
    pub fn start(peersrc_props: &str) -> Receiver {
        let pipeline = gst::Pipeline::new();
        let peersrc = gst::parse::launch(&format!("peersrc {peersrc_props}"))
            .unwrap_or_else(|err| panic!("cannot make peersrc {peersrc_props}: {err}"));
        pipeline.add(&peersrc).unwrap();
        let shared = Arc::new(Shared::default());
        let weak_pipeline = pipeline.downgrade();
        let pad_shared = shared.clone();
        peersrc.connect_pad_added(move |_, pad| {
            let Some(pipeline) = weak_pipeline.upgrade() else {
                return;
            };
            let name = pad.name().to_string();
            pad_shared.received.lock().unwrap().pads.push(name.clone());
            let sink = if name.starts_with("video") {
                video_checker(pad_shared.clone())
            } else {
                audio_checker(pad_shared.clone())
            };
            pipeline.add(&sink).unwrap();
            sink.sync_state_with_parent().unwrap();
            pad.link(&sink.static_pad("sink").unwrap()).unwrap();
        });
        crate::play(&pipeline);
        Receiver {
            pipeline,
            peersrc,
            shared,
        }
    }

    pub fn snapshot(&self) -> Received {
        self.shared.received.lock().unwrap().clone()
    }

    /// Waits until `check` holds on what was received, or panics naming
    /// `what` and showing what did arrive.
    pub fn wait(
        &self,
        timeout: Duration,
        what: &str,
        check: impl Fn(&Received) -> bool,
    ) -> Received {
        let deadline = Instant::now() + timeout;
        let bus = self.pipeline.bus().unwrap();
        let mut received = self.shared.received.lock().unwrap();
        loop {
            if check(&received) {
                return received.clone();
            }
            if let Some(message) = bus.pop_filtered(&[gst::MessageType::Error])
                && let gst::MessageView::Error(err) = message.view()
            {
                panic!("receiver error while waiting for {what}: {}", err.error());
            }
            let now = Instant::now();
            if now >= deadline {
                crate::dump_threads(&format!(
                    "{what}\n{}",
                    crate::element_states(&self.pipeline)
                ));
                panic!(
                    "timed out after {timeout:?} waiting for {what}; received {} frames {}x{}, {} audio buffers, pads {:?}",
                    received.video_frames,
                    received.width,
                    received.height,
                    received.audio_buffers,
                    received.pads
                );
            }
            let wait = (deadline - now).min(Duration::from_millis(200));
            received = self.shared.changed.wait_timeout(received, wait).unwrap().0;
        }
    }

    pub fn frames(&self) -> u64 {
        self.shared.received.lock().unwrap().video_frames
    }

    /// Starts measuring freezes afresh from the next frame.
    pub fn reset_freezes(&self) {
        let mut received = self.shared.received.lock().unwrap();
        let last = received.freezes.last_frame_at;
        received.freezes = Freezes {
            last_frame_at: last,
            since: Some(Instant::now()),
            ..Freezes::default()
        };
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

fn video_checker(shared: Arc<Shared>) -> gst::Element {
    let bin = gst::parse::bin_from_description(
        "queue ! videoconvert ! video/x-raw,format=RGB ! appsink name=video-check sync=false emit-signals=false",
        true,
    )
    .unwrap();
    let appsink = bin
        .by_name("video-check")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    appsink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let caps = sample.caps().ok_or(gst::FlowError::NotNegotiated)?;
                let info = gst_video::VideoInfo::from_caps(caps)
                    .map_err(|_| gst::FlowError::NotNegotiated)?;
                let buffer = sample.buffer().ok_or(gst::FlowError::Error)?;
                let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info)
                    .map_err(|_| gst::FlowError::Error)?;
                let stride = frame.plane_stride()[0] as usize;
                let data = frame.plane_data(0).map_err(|_| gst::FlowError::Error)?;
                let (cx, cy) = (info.width() as usize / 2, info.height() as usize / 2);
                let offset = cy * stride + cx * 3;
                let mut received = shared.received.lock().unwrap();
                received.note_timestamps(buffer);
                received.freezes.frame(Instant::now());
                received.video_frames += 1;
                received.width = info.width();
                received.height = info.height();
                received.centre_rgb = [data[offset], data[offset + 1], data[offset + 2]];
                let centre = received.centre_rgb;
                received.centres.push(centre);
                let row = info.width() as usize * 3;
                received.last_frame.clear();
                for y in 0..info.height() as usize {
                    received
                        .last_frame
                        .extend_from_slice(&data[y * stride..y * stride + row]);
                }
                if let Some(pts) = buffer.pts() {
                    let due = received
                        .snapshots
                        .last()
                        .is_none_or(|(at, _)| pts >= *at + gst::ClockTime::SECOND);
                    if due {
                        let frame = received.last_frame.clone();
                        received.snapshots.push((pts, frame));
                    }
                }
                drop(received);
                shared.changed.notify_all();
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    bin.upcast()
}

fn audio_checker(shared: Arc<Shared>) -> gst::Element {
    let bin = gst::parse::bin_from_description(
        "queue ! audioconvert ! audioresample ! audio/x-raw,format=F32LE,channels=1,rate=48000 \
         ! appsink name=audio-check sync=false",
        true,
    )
    .unwrap();
    let appsink = bin
        .by_name("audio-check")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    appsink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let buffer = sample.buffer().ok_or(gst::FlowError::Error)?;
                let map = buffer.map_readable().map_err(|_| gst::FlowError::Error)?;
                let samples = map
                    .as_slice()
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]));
                let mut received = shared.received.lock().unwrap();
                received.note_timestamps(buffer);
                received.audio.extend(samples);
                let excess = received.audio.len().saturating_sub(AUDIO_KEEP);
                received.audio.drain(..excess);
                received.audio_buffers += 1;
                drop(received);
                shared.changed.notify_all();
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    bin.upcast()
}

/// The frequency with the most energy between 50 Hz and 4 kHz, to about
/// 1 Hz, by a Goertzel scan of the last second.
pub fn dominant_frequency(samples: &[f32], rate: u32) -> f64 {
    let window = &samples[samples.len().saturating_sub(rate as usize)..];
    let power = |freq: f64| {
        let coefficient = 2.0 * (2.0 * std::f64::consts::PI * freq / rate as f64).cos();
        let (mut s1, mut s2) = (0.0f64, 0.0f64);
        for &sample in window {
            let s0 = sample as f64 + coefficient * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        s1 * s1 + s2 * s2 - coefficient * s1 * s2
    };
    let coarse = (50..4000)
        .step_by(10)
        .map(|f| f as f64)
        .max_by(|a, b| power(*a).total_cmp(&power(*b)))
        .unwrap();
    let fine = ((coarse - 10.0) as i64 * 10..=(coarse + 10.0) as i64 * 10).map(|f| f as f64 / 10.0);
    fine.max_by(|a, b| power(*a).total_cmp(&power(*b))).unwrap()
}

/// True when two colours differ by at most `tolerance` in every channel.
pub fn close_colour(a: [u8; 3], b: [u8; 3], tolerance: u8) -> bool {
    a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= tolerance)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goertzel_scan_finds_a_sine() {
        let samples: Vec<f32> = (0..48_000)
            .map(|i| (2.0 * std::f32::consts::PI * 440.0 * i as f32 / 48_000.0).sin() * 0.5)
            .collect();
        assert!((dominant_frequency(&samples, 48_000) - 440.0).abs() < 1.0);
    }
}
