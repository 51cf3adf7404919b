//! Voice activity: espeak-ng speech is speech; silence and steady noise are not.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

fn voice_flags(source: &str) -> Vec<(bool, f64)> {
    run_to_eos(
        &format!(
            "{source} ! audiotap level=false loudness=false spectrum=false pitch=false onsets=false waveform=false \
             ! fakesink"
        ),
        Duration::from_secs(60),
    )
    .audiotap
    .iter()
    .map(|s| (s.get::<bool>("voice").unwrap(), double(s, "voice-activity")))
    .collect()
}

#[test]
fn espeak_speech_is_flagged_as_speech() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("speech.wav");
    let status = Command::new("espeak-ng")
        .arg("-w")
        .arg(&wav)
        .arg("The quick brown fox jumps over the lazy dog. Audio analysis in the pipeline, delivered to every browser.")
        .status()
        .expect("espeak-ng is installed");
    assert!(status.success());
    let flags = voice_flags(&format!("filesrc location={} ! wavparse", wav.display()));
    let active = flags.iter().filter(|f| f.0).count();
    assert!(flags.len() > 30, "{} intervals", flags.len());
    assert!(
        active * 10 >= flags.len() * 7,
        "speech in only {active} of {} intervals: {flags:?}",
        flags.len()
    );
}

#[test]
fn silence_is_not_speech() {
    let flags = voice_flags(
        "audiotestsrc num-buffers=100 wave=silence ! audio/x-raw,rate=16000,channels=1",
    );
    assert!(flags.iter().all(|f| !f.0 && f.1 == 0.0), "{flags:?}");
}

#[test]
fn steady_noise_is_not_speech() {
    for wave in [
        "white-noise volume=0.3",
        "pink-noise volume=0.3",
        "white-noise volume=0.01",
        "red-noise",
        "blue-noise volume=0.2",
    ] {
        let flags = voice_flags(&format!(
            "audiotestsrc num-buffers=150 wave={wave} ! audio/x-raw,rate=48000,channels=2"
        ));
        assert!(flags.iter().all(|f| !f.0), "{wave}: {flags:?}");
    }
}
