//! What a user checks of a Matroska/WebM file: the duration tools report
//! (`gst-discoverer-1.0`), the frames it really holds (demuxed and
//! counted), where a seek lands, and whether it has an index (Cues).

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gst::prelude::*;

/// The duration `gst-discoverer-1.0 FILE` prints, if it prints one.
pub fn discovered_duration(path: &Path) -> Option<Duration> {
    let output = Command::new("gst-discoverer-1.0")
        .arg(path)
        .output()
        .expect("gst-discoverer-1.0 runs (Debian: gstreamer1.0-plugins-base-apps)");
    let text = String::from_utf8_lossy(&output.stdout);
    let value = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Duration: "))?;
    // H:MM:SS.nnnnnnnnn
    let mut parts = value.trim().split(':');
    let hours: f64 = parts.next()?.parse().ok()?;
    let minutes: f64 = parts.next()?.parse().ok()?;
    let seconds: f64 = parts.next()?.parse().ok()?;
    Some(Duration::from_secs_f64(
        hours * 3600.0 + minutes * 60.0 + seconds,
    ))
}

/// The video track as demuxed, frame by frame (nothing decoded), and
/// where the audio ends.
#[derive(Debug, Default, Clone)]
pub struct VideoTrack {
    /// Every frame's timestamp, in file order.
    pub timestamps: Vec<gst::ClockTime>,
    /// The end (timestamp + duration) of the last audio packet.
    pub audio_end: Option<gst::ClockTime>,
}

impl VideoTrack {
    pub fn frames(&self) -> usize {
        self.timestamps.len()
    }

    pub fn first_pts(&self) -> Option<gst::ClockTime> {
        self.timestamps.iter().min().copied()
    }

    pub fn last_pts(&self) -> Option<gst::ClockTime> {
        self.timestamps.iter().max().copied()
    }

    /// The first frame at or after `position`: what a player shows there.
    pub fn frame_at(&self, position: gst::ClockTime) -> Option<gst::ClockTime> {
        self.timestamps
            .iter()
            .filter(|&&pts| pts >= position)
            .min()
            .copied()
    }

    pub fn end(&self, frame: Duration) -> Duration {
        self.last_pts().map_or(Duration::ZERO, |last| {
            Duration::from_nanos(last.nseconds()) + frame
        })
    }
}

/// Demuxes the file and counts its video frames.
pub fn demux_video(path: &Path) -> VideoTrack {
    let pipeline = gst::parse::launch(&format!(
        "filesrc location=\"{}\" ! matroskademux name=demux",
        path.display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let track = Arc::new(Mutex::new(VideoTrack::default()));
    let demux = pipeline.by_name("demux").unwrap();
    let weak = pipeline.downgrade();
    let counted = track.clone();
    demux.connect_pad_added(move |_, pad| {
        let Some(pipeline) = weak.upgrade() else {
            return;
        };
        // No preroll: the demuxer feeds every track from one thread, so a
        // sink waiting in PAUSED with the first audio packet would block
        // the video track from ever reaching its own sink (a file that
        // starts with audio hung here; players put queues in between).
        let sink = gst::ElementFactory::make("fakesink")
            .property("sync", false)
            .property("async", false)
            .build()
            .unwrap();
        pipeline.add(&sink).unwrap();
        sink.sync_state_with_parent().unwrap();
        pad.link(&sink.static_pad("sink").unwrap()).unwrap();
        let video = pad.name().starts_with("video");
        let counted = counted.clone();
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            let Some(buffer) = info.buffer() else {
                return gst::PadProbeReturn::Ok;
            };
            if let Some(pts) = buffer.pts() {
                let mut track = counted.lock().unwrap();
                if video {
                    track.timestamps.push(pts);
                } else {
                    let end = pts + buffer.duration().unwrap_or_default();
                    track.audio_end = Some(track.audio_end.map_or(end, |e| e.max(end)));
                }
            }
            gst::PadProbeReturn::Ok
        });
    });
    let progress = track.clone();
    run_to_eos(&pipeline, path, move || {
        let track = progress.lock().unwrap();
        format!(
            "{} video frames (last {:?}), audio to {:?}",
            track.frames(),
            track.last_pts(),
            track.audio_end
        )
    });
    track.lock().unwrap().clone()
}

/// Plays `pipeline` to its end; on a timeout, says how far it got
/// (`progress`), in what state each element is, and where a copy of the
/// file is kept for a post-mortem.
fn run_to_eos(pipeline: &gst::Pipeline, path: &Path, progress: impl Fn() -> String) {
    pipeline.set_state(gst::State::Playing).unwrap();
    let message = pipeline.bus().unwrap().timed_pop_filtered(
        gst::ClockTime::from_seconds(60),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    let states = crate::element_states(pipeline);
    let _ = pipeline.set_state(gst::State::Null);
    match message.as_ref().map(|m| m.view()) {
        Some(gst::MessageView::Eos(_)) => {}
        Some(gst::MessageView::Error(err)) => panic!("{}: {}", path.display(), err.error()),
        _ => {
            crate::dump_threads("demuxing did not end");
            let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
            let kept = std::env::temp_dir().join(format!(
                "gst-peer-unended-{}",
                path.file_name().unwrap_or_default().to_string_lossy()
            ));
            let _ = std::fs::copy(path, &kept);
            panic!(
                "{} ({size} bytes, kept as {}) did not end within 60 s: {}\n{states}",
                path.display(),
                kept.display(),
                progress()
            )
        }
    }
}

/// Seeks to `position` (accurately, as a player's seek bar does) in the
/// decoded video and returns the timestamp of the frame shown there.
pub fn seek_video(path: &Path, position: gst::ClockTime) -> Result<gst::ClockTime, String> {
    let pipeline = gst::parse::launch(&format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! appsink name=sink sync=false",
        path.display()
    ))
    .map_err(|e| e.to_string())?
    .downcast::<gst::Pipeline>()
    .unwrap();
    let sink = pipeline
        .by_name("sink")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    let wait_paused = |what: &str| -> Result<(), String> {
        let (result, state, _) = pipeline.state(gst::ClockTime::from_seconds(20));
        match (result, state) {
            (Ok(_), gst::State::Paused) => Ok(()),
            other => Err(format!("{what}: {other:?}")),
        }
    };
    let result = (|| {
        pipeline
            .set_state(gst::State::Paused)
            .map_err(|e| format!("cannot pause: {e}"))?;
        wait_paused("preroll")?;
        pipeline
            .seek_simple(gst::SeekFlags::FLUSH | gst::SeekFlags::ACCURATE, position)
            .map_err(|e| format!("seek to {position} refused: {e}"))?;
        wait_paused("preroll after the seek")?;
        let sample = sink
            .try_pull_preroll(gst::ClockTime::from_seconds(10))
            .ok_or("no frame after the seek")?;
        sample
            .buffer()
            .and_then(|b| b.pts())
            .ok_or_else(|| "a frame without timestamp".to_owned())
    })();
    let _ = pipeline.set_state(gst::State::Null);
    result
}

const SEGMENT: u32 = 0x1853_8067;
const UNKNOWN_SIZE: u64 = u64::MAX;

/// IDs of the elements directly in the file's Segment, in order (until an
/// element of unknown size, after which sizes cannot be followed).
pub fn segment_children(path: &Path) -> Vec<u32> {
    let data = std::fs::read(path).unwrap();
    let mut at = 0;
    let mut children = Vec::new();
    while let Some((id, size, body)) = element(&data, at) {
        if id == SEGMENT {
            let end = if size == UNKNOWN_SIZE {
                data.len()
            } else {
                (body + size as usize).min(data.len())
            };
            let mut child = body;
            while child < end {
                let Some((id, size, child_body)) = element(&data, child) else {
                    break;
                };
                children.push(id);
                if size == UNKNOWN_SIZE {
                    break;
                }
                child = child_body + size as usize;
            }
            break;
        }
        if size == UNKNOWN_SIZE {
            break;
        }
        at = body + size as usize;
    }
    children
}

/// Cues, the index players seek with.
pub const CUES: u32 = 0x1C53_BB6B;

/// (id, size, offset of the body) of the EBML element at `at`.
fn element(data: &[u8], at: usize) -> Option<(u32, u64, usize)> {
    let (id, id_len) = vint(data.get(at..)?, true)?;
    let (size, size_len) = vint(data.get(at + id_len..)?, false)?;
    let all_ones = (1u64 << (7 * size_len)) - 1;
    let size = if size == all_ones { UNKNOWN_SIZE } else { size };
    Some((id as u32, size, at + id_len + size_len))
}

fn vint(data: &[u8], keep_marker: bool) -> Option<(u64, usize)> {
    let first = *data.first()?;
    let length = first.leading_zeros() as usize + 1;
    if length > 8 || data.len() < length {
        return None;
    }
    let mut value = if keep_marker {
        first as u64
    } else {
        (first as u64) & (0xFF >> length)
    };
    for byte in &data[1..length] {
        value = (value << 8) | *byte as u64;
    }
    Some((value, length))
}
