//! Counts the video frames of recordings (Matroska/WebM), demuxed and not
//! decoded, for scripts that report how much of a run a recording covers
//! (scripts/soak.sh): a file's duration can come from its audio alone.
//!
//! Usage: count_frames FILE...
//!
//! One line per file: `FILE: N video frames, first S s, last S s, longest
//! gap S s, audio to S s`.

use std::path::Path;

use peer_tests::matroska::demux_video;

fn seconds(time: gst::ClockTime) -> f64 {
    time.nseconds() as f64 / 1e9
}

fn main() {
    gst::init().expect("GStreamer initializes");
    for path in std::env::args().skip(1) {
        let track = demux_video(Path::new(&path));
        let mut timestamps = track.timestamps.clone();
        timestamps.sort();
        let longest_gap = timestamps
            .windows(2)
            .map(|pair| pair[1] - pair[0])
            .max()
            .unwrap_or(gst::ClockTime::ZERO);
        println!(
            "{path}: {} video frames, first {:.3} s, last {:.3} s, longest gap {:.3} s, audio to {:.3} s",
            track.frames(),
            track.first_pts().map_or(0.0, seconds),
            track.last_pts().map_or(0.0, seconds),
            seconds(longest_gap),
            track.audio_end.map_or(0.0, seconds),
        );
    }
}
