//! EBU Tech 3341 cases that audiotestsrc can generate, through the element.

mod common;

use std::time::Duration;

use common::*;

fn sine_run(dbfs: f64, seconds: f64) -> Vec<gst::Structure> {
    let volume = 10f64.powf(dbfs / 20.0);
    run_to_eos(
        &format!(
            "audiotestsrc num-buffers={} volume={volume} freq=1000 \
             ! audio/x-raw,format=F32LE,rate=48000,channels=2 \
             ! audiotap level=false spectrum=false pitch=false onsets=false voice=false waveform=false \
             ! fakesink",
            buffers_for(seconds, 48000)
        ),
        Duration::from_secs(120),
    )
    .audiotap
}

#[test]
fn tech_3341_cases_1_and_2_steady_stereo_sines() {
    for dbfs in [-23.0, -33.0] {
        let messages = sine_run(dbfs, 20.0);
        let last = messages.last().unwrap();
        for field in ["momentary", "short-term", "integrated"] {
            let value = double(last, field);
            assert!(
                (value - dbfs).abs() <= 0.1,
                "{dbfs} dBFS: {field} = {value}"
            );
        }
        // True peak of a 1 kHz sine is its sample peak.
        for tp in doubles(last, "true-peak") {
            assert!((tp - dbfs).abs() <= 0.2, "true peak {tp}");
        }
    }
}

#[test]
fn momentary_and_short_term_settle_within_their_windows() {
    let messages = sine_run(-23.0, 4.0);
    // 100 ms reports: momentary (400 ms window) is settled from the 5th
    // report on, short-term (3 s) from the 31st.
    for s in &messages[4..messages.len() - 1] {
        let m = double(s, "momentary");
        assert!((m + 23.0).abs() <= 0.1, "momentary {m}");
    }
    for s in &messages[30..messages.len() - 1] {
        let st = double(s, "short-term");
        assert!((st + 23.0).abs() <= 0.1, "short-term {st}");
    }
    let early = double(&messages[1], "short-term");
    assert!(
        early < -25.0,
        "short-term after 200 ms should still be filling: {early}"
    );
}

#[test]
fn integrated_loudness_ignores_silence_by_gating() {
    // Tech 3341 case 4 in spirit: quiet passages below the absolute gate do
    // not pull the integrated loudness down.
    let volume = 10f64.powf(-23.0 / 20.0);
    let run = run_to_eos(
        &format!(
            "audiomixer name=mix ! audio/x-raw,format=F32LE,rate=48000,channels=2 \
             ! audiotap level=false spectrum=false pitch=false onsets=false voice=false waveform=false ! fakesink \
             audiotestsrc num-buffers={} volume={volume} freq=1000 ! audio/x-raw,rate=48000,channels=2 ! mix. \
             audiotestsrc num-buffers={} wave=silence ! audio/x-raw,rate=48000,channels=2 ! mix.",
            buffers_for(10.0, 48000),
            buffers_for(20.0, 48000)
        ),
        Duration::from_secs(120),
    );
    let integrated = double(run.audiotap.last().unwrap(), "integrated");
    assert!((integrated + 23.0).abs() <= 0.1, "integrated {integrated}");
}
