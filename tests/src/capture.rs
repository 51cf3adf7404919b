//! What a pipeline in another process (gst-launch-1.0 in a namespace of
//! its own, a reference peer) received, checked from files it writes: one
//! PNG per decoded frame and its audio as raw samples.

use std::path::{Path, PathBuf};
use std::time::Duration;

use gst::prelude::*;
use gst_video::prelude::*;

use crate::{dominant_frequency, wait_until};

/// Where their receiving pipeline writes: PNG frames and raw audio.
pub struct Capture {
    dir: PathBuf,
}

impl Capture {
    pub fn new(name: &str) -> Capture {
        let dir =
            std::env::temp_dir().join(format!("gst-peer-interop-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Capture { dir }
    }

    /// Branches writing one PNG per frame and the audio as mono S16LE 48 kHz.
    pub fn sinks(&self, video_from: &str, audio_from: &str) -> String {
        format!(
            "{video_from} ! queue ! videoconvert ! video/x-raw,format=RGB ! pngenc ! \
             multifilesink location={dir}/frame-%05d.png \
             {audio_from} ! queue ! audioconvert ! audioresample ! \
             audio/x-raw,format=S16LE,channels=1,rate=48000 ! filesink location={dir}/audio.raw",
            dir = self.dir.display()
        )
    }

    pub fn frames(&self) -> Vec<PathBuf> {
        let mut frames: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "png"))
                    .collect()
            })
            .unwrap_or_default();
        frames.sort();
        frames
    }

    /// Waits for `count` frames and a second of audio.
    pub fn wait(&self, count: usize, what: &str) {
        wait_until(Duration::from_secs(45), what, || {
            let audio = std::fs::metadata(self.dir.join("audio.raw")).map_or(0, |m| m.len());
            (self.frames().len() >= count && audio >= 96_000).then_some(())
        });
    }

    /// Size and centre colour of the last complete frame.
    pub fn picture(&self) -> (u32, u32, [u8; 3]) {
        let frames = self.frames();
        // The newest may still be being written.
        let frame = &frames[frames.len() - 2];
        decode_png(frame)
    }

    pub fn frequency(&self) -> f64 {
        let bytes = std::fs::read(self.dir.join("audio.raw")).unwrap();
        let samples: Vec<f32> = bytes
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]) as f32 / 32768.0)
            .collect();
        let last_second = &samples[samples.len().saturating_sub(48_000)..];
        dominant_frequency(last_second, 48_000)
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn decode_png(path: &Path) -> (u32, u32, [u8; 3]) {
    let pipeline = gst::parse::launch(&format!(
        "filesrc location={} ! pngdec ! videoconvert ! video/x-raw,format=RGB ! appsink name=out",
        path.display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let appsink = pipeline
        .by_name("out")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let sample = appsink
        .try_pull_preroll(gst::ClockTime::from_seconds(5))
        .expect("a decodable PNG");
    let caps = sample.caps().unwrap();
    let info = gst_video::VideoInfo::from_caps(caps).unwrap();
    let buffer = sample.buffer().unwrap();
    let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info).unwrap();
    let stride = frame.plane_stride()[0] as usize;
    let data = frame.plane_data(0).unwrap();
    let offset = (info.height() as usize / 2) * stride + (info.width() as usize / 2) * 3;
    let rgb = [data[offset], data[offset + 1], data[offset + 2]];
    pipeline.set_state(gst::State::Null).unwrap();
    (info.width(), info.height(), rgb)
}
