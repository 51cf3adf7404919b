//! Level readings: the expected values for a half-scale sine, and the same
//! numbers as GStreamer's `level` element on the very same buffers.

mod common;

use std::time::Duration;

use common::*;
use gst::prelude::*;

fn level_array(s: &gst::StructureRef, field: &str) -> Vec<f64> {
    #[allow(deprecated)]
    let array = s.get::<gst::glib::ValueArray>(field).unwrap();
    array.iter().map(|v| v.get::<f64>().unwrap()).collect()
}

fn compare_with_level(format: &str, channels: u32, interval_ms: u64) {
    let interval = interval_ms * 1_000_000;
    // volume 0.5 is -6.02 dBFS peak; its RMS is 3.01 dB lower.
    let run = run_to_eos(
        &format!(
            "audiotestsrc num-buffers=60 volume=0.5 freq=1000 \
             ! audio/x-raw,format={format},rate=48000,channels={channels} \
             ! audiotap interval={interval} loudness=false spectrum=false pitch=false onsets=false voice=false waveform=false \
             ! level interval={interval} ! fakesink"
        ),
        Duration::from_secs(60),
    );
    assert!(
        run.audiotap.len() >= 5,
        "{} audiotap messages",
        run.audiotap.len()
    );
    assert_eq!(run.audiotap.len(), run.level.len());
    for (ours, theirs) in run.audiotap.iter().zip(&run.level) {
        assert_eq!(
            ours.get::<u64>("timestamp").unwrap(),
            theirs.get::<u64>("timestamp").unwrap()
        );
        assert_eq!(
            ours.get::<u64>("duration").unwrap(),
            theirs.get::<u64>("duration").unwrap()
        );
        for field in ["rms", "peak", "decay"] {
            let a = doubles(ours, field);
            let b = level_array(theirs, field);
            assert_eq!(a.len(), channels as usize);
            for (x, y) in a.iter().zip(&b) {
                assert!(
                    (x - y).abs() <= 0.01,
                    "{format} {field}: audiotap {a:?} level {b:?}"
                );
            }
        }
    }
    // Whole intervals (the last one may be a partial EOS interval).
    for s in &run.audiotap[..run.audiotap.len() - 1] {
        for rms in doubles(s, "rms") {
            assert!((rms + 9.03).abs() <= 0.05, "{format} rms {rms}");
        }
        for peak in doubles(s, "peak") {
            assert!((peak + 6.0).abs() <= 0.05, "{format} peak {peak}");
        }
    }
}

#[test]
fn half_scale_sine_matches_level_f32_stereo() {
    compare_with_level("F32LE", 2, 100);
}

#[test]
fn half_scale_sine_matches_level_s16_stereo() {
    compare_with_level("S16LE", 2, 100);
}

#[test]
fn intervals_that_split_buffers_match_level() {
    // 30 ms is 1440 frames: interval boundaries fall inside 1024-frame buffers.
    compare_with_level("S32LE", 1, 30);
    compare_with_level("F64LE", 3, 30);
}

#[test]
fn decaying_peak_follows_level_after_the_sound_stops() {
    let interval = 50_000_000u64;
    // A loud second then a quiet one: the decay peak holds, then falls.
    let pipeline = launch(&format!(
        "audiotestsrc name=src num-buffers=94 volume=0.8 \
         ! audio/x-raw,format=F32LE,rate=48000,channels=2 \
         ! audiotap interval={interval} loudness=false spectrum=false pitch=false onsets=false voice=false waveform=false \
         ! level interval={interval} ! fakesink"
    ));
    let bin = pipeline.clone().downcast::<gst::Bin>().unwrap();
    let src = bin.by_name("src").unwrap();
    let pad = src.static_pad("src").unwrap();
    let count = std::sync::atomic::AtomicU32::new(0);
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        let n = count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if n >= 47
            && let Some(gst::PadProbeData::Buffer(buffer)) = &mut info.data
        {
            let buffer = buffer.make_mut();
            let mut map = buffer.map_writable().unwrap();
            map.fill(0);
        }
        gst::PadProbeReturn::Ok
    });
    let run = run_pipeline_to_eos(&pipeline, Duration::from_secs(60));
    assert_eq!(run.audiotap.len(), run.level.len());
    let mut fell = false;
    for (ours, theirs) in run.audiotap.iter().zip(&run.level) {
        let a = doubles(ours, "decay");
        let b = level_array(theirs, "decay");
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() <= 0.01, "decay audiotap {a:?} level {b:?}");
        }
        fell |= a[0] < -3.0 && a[0] > -60.0;
    }
    assert!(fell, "the decaying peak never fell");
}
