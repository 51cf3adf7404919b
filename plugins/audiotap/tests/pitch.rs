//! Pitch of sines within 1%, and none for silence.

mod common;

use std::time::Duration;

use common::*;

fn pitches(wave: &str, format: &str, rate: u32) -> Vec<(f64, f64)> {
    run_to_eos(
        &format!(
            "audiotestsrc num-buffers={} {wave} \
             ! audio/x-raw,format={format},rate={rate},channels=1 \
             ! audiotap level=false loudness=false spectrum=false onsets=false voice=false waveform=false \
             ! fakesink",
            buffers_for(0.6, rate)
        ),
        Duration::from_secs(60),
    )
    .audiotap
    .iter()
    .map(|s| (double(s, "pitch"), double(s, "clarity")))
    .collect()
}

#[test]
fn sines_at_110_440_and_1000_hz_are_detected_within_1_percent() {
    for (format, rate) in [("F32LE", 48000), ("S16LE", 44100)] {
        for freq in [110.0, 440.0, 1000.0] {
            let readings = pitches(&format!("freq={freq} volume=0.5"), format, rate);
            for &(pitch, clarity) in &readings[1..] {
                assert!(
                    (pitch / freq - 1.0).abs() < 0.01,
                    "{freq} Hz read as {pitch} ({format} {rate})"
                );
                assert!(clarity > 0.9, "clarity {clarity}");
            }
        }
    }
}

#[test]
fn silence_has_no_pitch() {
    for (pitch, clarity) in pitches("wave=silence", "F32LE", 48000) {
        assert_eq!(pitch, 0.0);
        assert_eq!(clarity, 0.0);
    }
}
