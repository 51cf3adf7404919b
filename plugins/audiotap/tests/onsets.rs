//! A 120 BPM click train: onsets every half second and a tempo of 120.

mod common;

use std::time::Duration;

use common::*;

#[test]
fn click_train_at_120_bpm_gives_onsets_every_half_second_and_tempo_120() {
    let run = run_to_eos(
        &format!(
            "audiotestsrc num-buffers={} wave=ticks tick-interval=500000000 freq=2000 volume=0.8 \
             ! audio/x-raw,format=F32LE,rate=48000,channels=2 \
             ! audiotap level=false loudness=false spectrum=false pitch=false voice=false waveform=false \
             ! fakesink",
            buffers_for(12.0, 48000)
        ),
        Duration::from_secs(60),
    );
    let onsets: Vec<f64> = run
        .audiotap
        .iter()
        .flat_map(|s| {
            s.get::<gst::Array>("onsets")
                .unwrap()
                .iter()
                .map(|v| v.get::<u64>().unwrap() as f64 / 1e9)
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        (23..=25).contains(&onsets.len()),
        "{} onsets: {onsets:?}",
        onsets.len()
    );
    for pair in onsets.windows(2) {
        let gap = pair[1] - pair[0];
        assert!((gap - 0.5).abs() <= 0.02, "gap {gap} in {onsets:?}");
    }
    // audiotestsrc sounds its first tick around 0.47-0.49 s; onsets are
    // timed within a hop (~11 ms).
    assert!(
        (0.45..=0.51).contains(&onsets[0]),
        "first onset at {}",
        onsets[0]
    );
    let bpm = double(run.audiotap.last().unwrap(), "bpm");
    assert!((bpm - 120.0).abs() <= 2.0, "tempo {bpm}");
}
