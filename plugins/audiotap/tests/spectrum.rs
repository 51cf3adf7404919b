//! Spectrum: a sine peaks in its own band; white noise is flat.

mod common;

use std::time::Duration;

use common::*;

fn last_spectra(wave: &str, extra: &str, seconds: f64) -> Vec<gst::Structure> {
    run_to_eos(
        &format!(
            "audiotestsrc num-buffers={} {wave} \
             ! audio/x-raw,format=S16LE,rate=48000,channels=2 \
             ! audiotap {extra} level=false loudness=false pitch=false onsets=false voice=false waveform=false \
             ! fakesink",
            buffers_for(seconds, 48000)
        ),
        Duration::from_secs(60),
    )
    .audiotap
}

fn band_edges(s: &gst::StructureRef, band: usize, bands: usize, log: bool) -> (f64, f64) {
    let low = double(s, "spectrum-low");
    let high = double(s, "spectrum-high");
    let edge = |i: usize| {
        let t = i as f64 / bands as f64;
        if log {
            low * (high / low).powf(t)
        } else {
            low + (high - low) * t
        }
    };
    (edge(band), edge(band + 1))
}

#[test]
fn the_peak_band_of_a_1khz_sine_is_the_band_holding_1khz() {
    for (scale, bands) in [("linear", 128usize), ("log", 64), ("linear", 64)] {
        let messages = last_spectra(
            "freq=1000 volume=0.5",
            &format!("spectrum-scale={scale} spectrum-bands={bands}"),
            1.0,
        );
        let s = &messages[messages.len() - 2];
        let spectrum = floats(s, "spectrum");
        assert_eq!(spectrum.len(), bands);
        let peak = (0..bands)
            .max_by(|&a, &b| spectrum[a].total_cmp(&spectrum[b]))
            .unwrap();
        let (lo, hi) = band_edges(s, peak, bands, scale == "log");
        assert!(
            lo <= 1000.0 && 1000.0 < hi,
            "{scale}/{bands}: peak band {peak} is {lo}..{hi} Hz"
        );
    }
}

#[test]
fn white_noise_is_flat_within_3_db() {
    for scale in ["linear", "log"] {
        let messages = last_spectra(
            "wave=white-noise volume=0.5",
            // Long smoothing, as one would to judge a response by eye.
            &format!(
                "spectrum-scale={scale} spectrum-bands=32 spectrum-size=4096 spectrum-smoothing=0.98"
            ),
            // Long enough for the smoothing to forget the first frames:
            // the narrow low bands of the log scale hold one or two bins
            // each, whose power varies by several dB from frame to frame.
            15.0,
        );
        let spectrum = floats(&messages[messages.len() - 2], "spectrum");
        let max = spectrum.iter().cloned().fold(f32::MIN, f32::max);
        let min = spectrum.iter().cloned().fold(f32::MAX, f32::min);
        assert!(max - min <= 3.0, "{scale}: {spectrum:?}");
    }
}
