//! One interval's results, and their compact JSON form for browsers.

use std::fmt::Write;

use super::level::LevelReading;
use super::loudness::LoudnessReading;
use super::onset::OnsetReading;
use super::pitch::PitchReading;
use super::vad::VoiceReading;
use super::waveform::WaveformReading;

/// What every enabled analysis measured over one interval. Disabled
/// analyses are `None`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// Sample frames covered by this interval.
    pub frames: u64,
    /// Stream time of the interval's first frame, in ns, when known.
    pub stream_time_ns: Option<u64>,
    pub duration_ns: u64,
    pub level: Option<LevelReading>,
    pub loudness: Option<LoudnessReading>,
    /// dB per band.
    pub spectrum: Option<Vec<f32>>,
    /// Lowest and highest band edge, Hz.
    pub spectrum_range_hz: (f32, f32),
    pub waveform: Option<WaveformReading>,
    pub pitch: Option<PitchReading>,
    pub onsets: Option<OnsetReading>,
    /// Stream times of `onsets.positions`, in ns, filled in by the element.
    pub onset_times_ns: Vec<u64>,
    pub voice: Option<VoiceReading>,
}

const NS_PER_SECOND: f64 = 1e9;

impl Report {
    /// The compact JSON document described in docs/audiotap.md, written into
    /// `out` (cleared first). Times are stream times in seconds, levels in
    /// dB with two decimals; values that are -inf (silence) become `null`.
    pub fn write_json(&self, out: &mut String) {
        out.clear();
        out.push_str("{\"type\":\"audiotap\"");
        match self.stream_time_ns {
            Some(t) => field_number(out, "time", t as f64 / NS_PER_SECOND, 4),
            None => out.push_str(",\"time\":null"),
        }
        field_number(out, "duration", self.duration_ns as f64 / NS_PER_SECOND, 4);
        if let Some(level) = &self.level {
            field_array(out, "rms", level.rms.iter().copied(), 2);
            field_array(out, "peak", level.peak.iter().copied(), 2);
            field_array(out, "decay", level.decay.iter().copied(), 2);
        }
        if let Some(loudness) = &self.loudness {
            field_number(out, "momentary", loudness.momentary, 2);
            field_number(out, "short-term", loudness.short_term, 2);
            field_number(out, "integrated", loudness.integrated, 2);
            field_number(out, "loudness-range", loudness.range, 2);
            field_array(out, "true-peak", loudness.true_peak.iter().copied(), 2);
            field_number(out, "max-true-peak", loudness.max_true_peak, 2);
        }
        if let Some(spectrum) = &self.spectrum {
            field_array(out, "spectrum", spectrum.iter().map(|&v| v as f64), 1);
            let (low, high) = self.spectrum_range_hz;
            field_array(
                out,
                "spectrum-range",
                [low as f64, high as f64].into_iter(),
                1,
            );
        }
        if let Some(waveform) = &self.waveform {
            field_array(
                out,
                "waveform-min",
                waveform.min.iter().map(|&v| v as f64),
                4,
            );
            field_array(
                out,
                "waveform-max",
                waveform.max.iter().map(|&v| v as f64),
                4,
            );
        }
        if let Some(pitch) = &self.pitch {
            field_number(out, "pitch", pitch.frequency.map_or(f64::NAN, f64::from), 2);
            field_number(out, "clarity", pitch.clarity as f64, 3);
        }
        if let Some(onsets) = &self.onsets {
            let times = self
                .onset_times_ns
                .iter()
                .map(|&t| t as f64 / NS_PER_SECOND);
            field_array(out, "onsets", times, 4);
            field_number(out, "bpm", onsets.bpm.map_or(f64::NAN, f64::from), 2);
        }
        if let Some(voice) = &self.voice {
            out.push_str(if voice.active {
                ",\"voice\":true"
            } else {
                ",\"voice\":false"
            });
            field_number(out, "voice-activity", voice.activity as f64, 2);
        }
        out.push('}');
    }

    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(256);
        self.write_json(&mut out);
        out
    }
}

fn field_number(out: &mut String, name: &str, value: f64, decimals: u32) {
    out.push_str(",\"");
    out.push_str(name);
    out.push_str("\":");
    push_number(out, value, decimals);
}

fn field_array(out: &mut String, name: &str, values: impl Iterator<Item = f64>, decimals: u32) {
    out.push_str(",\"");
    out.push_str(name);
    out.push_str("\":[");
    for (i, v) in values.enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_number(out, v, decimals);
    }
    out.push(']');
}

/// Fixed-point without trailing zeros ("-9.03", "-6", "0.5"); `null` for
/// values JSON cannot hold. Faster than float formatting, which matters for
/// a spectrum of hundreds of bands every few tens of milliseconds.
fn push_number(out: &mut String, value: f64, decimals: u32) {
    if !value.is_finite() {
        out.push_str("null");
        return;
    }
    let scale = 10i64.pow(decimals);
    let scaled = (value * scale as f64).round();
    if scaled.abs() >= 9e15 {
        let _ = write!(out, "{value}");
        return;
    }
    let scaled = scaled as i64;
    if scaled < 0 {
        out.push('-');
    }
    let magnitude = scaled.unsigned_abs();
    let _ = write!(out, "{}", magnitude / scale as u64);
    let mut fraction = magnitude % scale as u64;
    if fraction == 0 {
        return;
    }
    let mut digits = decimals;
    while fraction.is_multiple_of(10) {
        fraction /= 10;
        digits -= 1;
    }
    let _ = write!(out, ".{fraction:0width$}", width = digits as usize);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(value: f64, decimals: u32) -> String {
        let mut s = String::new();
        push_number(&mut s, value, decimals);
        s
    }

    #[test]
    fn numbers_are_compact() {
        assert_eq!(number(-9.0309, 2), "-9.03");
        assert_eq!(number(-6.0, 2), "-6");
        assert_eq!(number(0.5, 4), "0.5");
        assert_eq!(number(0.05, 2), "0.05");
        assert_eq!(number(-0.001, 2), "0");
        assert_eq!(number(-0.004, 3), "-0.004");
        assert_eq!(number(f64::NEG_INFINITY, 2), "null");
        assert_eq!(number(f64::NAN, 2), "null");
    }

    #[test]
    fn json_holds_only_enabled_analyses() {
        let report = Report {
            frames: 4800,
            stream_time_ns: Some(1_500_000_000),
            duration_ns: 100_000_000,
            level: Some(LevelReading {
                rms: vec![-9.0309, -9.0309],
                peak: vec![-6.0, -6.0],
                decay: vec![-6.0, -6.0],
            }),
            pitch: Some(PitchReading {
                frequency: None,
                clarity: 0.1,
            }),
            onsets: Some(OnsetReading {
                positions: vec![24000],
                bpm: Some(120.04),
            }),
            onset_times_ns: vec![500_000_000],
            voice: Some(VoiceReading {
                active: true,
                activity: 0.75,
            }),
            ..Default::default()
        };
        assert_eq!(
            report.to_json(),
            "{\"type\":\"audiotap\",\"time\":1.5,\"duration\":0.1,\
             \"rms\":[-9.03,-9.03],\"peak\":[-6,-6],\"decay\":[-6,-6],\
             \"pitch\":null,\"clarity\":0.1,\"onsets\":[0.5],\"bpm\":120.04,\
             \"voice\":true,\"voice-activity\":0.75}"
        );
    }
}
