//! EBU R128 loudness (momentary, short-term, integrated, loudness range),
//! measured by the `ebur128` crate, which follows EBU Tech 3341/3342, and
//! true peak, measured by [`TruePeakMeter`].

use ebur128::{EbuR128, Mode};

use super::Sample;
use super::true_peak::TruePeakMeter;

/// One interval's loudness reading. Loudness values are LUFS (LU for the
/// range); they are -inf while nothing above the gate has been heard.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoudnessReading {
    pub momentary: f64,
    pub short_term: f64,
    pub integrated: f64,
    pub range: f64,
    /// Highest true peak of this interval per channel, dBTP.
    pub true_peak: Vec<f64>,
    /// Highest true peak since the stream started, over all channels, dBTP.
    pub max_true_peak: f64,
}

pub struct LoudnessMeter {
    meter: EbuR128,
    true_peak: TruePeakMeter,
    max_true_peak: f64,
}

impl std::fmt::Debug for LoudnessMeter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoudnessMeter")
            .field("channels", &self.meter.channels())
            .field("rate", &self.meter.rate())
            .finish()
    }
}

/// How the interleaved samples reach the meter without conversion: the
/// `ebur128` crate reads every format the element accepts.
pub trait LoudnessSample: Sample {
    fn add(meter: &mut EbuR128, frames: &[Self]);
}

impl LoudnessSample for i16 {
    fn add(meter: &mut EbuR128, frames: &[Self]) {
        let _ = meter.add_frames_i16(frames);
    }
}
impl LoudnessSample for i32 {
    fn add(meter: &mut EbuR128, frames: &[Self]) {
        let _ = meter.add_frames_i32(frames);
    }
}
impl LoudnessSample for f32 {
    fn add(meter: &mut EbuR128, frames: &[Self]) {
        let _ = meter.add_frames_f32(frames);
    }
}
impl LoudnessSample for f64 {
    fn add(meter: &mut EbuR128, frames: &[Self]) {
        let _ = meter.add_frames_f64(frames);
    }
}

impl LoudnessMeter {
    /// Channels beyond 5 default to the `ebur128` crate's map (L, R, C, LFE
    /// unused, Ls, Rs); `lfe_channel` marks another channel as LFE so it is
    /// left out as the standard asks.
    pub fn new(channels: usize, rate: u32, lfe_channel: Option<usize>) -> Option<Self> {
        // HISTOGRAM keeps integrated loudness and range in constant memory
        // for streams of any length, at 0.1 LU resolution.
        let mode = Mode::M | Mode::S | Mode::I | Mode::LRA | Mode::HISTOGRAM;
        let mut meter = EbuR128::new(channels as u32, rate, mode).ok()?;
        if let Some(lfe) = lfe_channel.filter(|&c| c < channels) {
            let _ = meter.set_channel(lfe as u32, ebur128::Channel::Unused);
        }
        Some(Self {
            meter,
            true_peak: TruePeakMeter::new(channels, rate),
            max_true_peak: 0.0,
        })
    }

    pub fn process<S: LoudnessSample>(&mut self, block: &[S]) {
        S::add(&mut self.meter, block);
        self.true_peak.process(block);
    }

    pub fn read(&mut self, out: &mut LoudnessReading) {
        let neg_inf = f64::NEG_INFINITY;
        out.momentary = self.meter.loudness_momentary().unwrap_or(neg_inf);
        out.short_term = self.meter.loudness_shortterm().unwrap_or(neg_inf);
        out.integrated = self.meter.loudness_global().unwrap_or(neg_inf);
        out.range = self.meter.loudness_range().unwrap_or(0.0);
        self.true_peak.take(&mut out.true_peak);
        for peak in &mut out.true_peak {
            self.max_true_peak = self.max_true_peak.max(*peak);
            *peak = 20.0 * peak.log10();
        }
        out.max_true_peak = 20.0 * self.max_true_peak.log10();
    }

    pub fn reset(&mut self) {
        self.meter.reset();
        self.true_peak.reset();
        self.max_true_peak = 0.0;
    }
}

#[cfg(test)]
mod tests {
    //! Cases from EBU Tech 3341 (v4) that can be generated exactly.
    use super::*;

    const RATE: u32 = 48000;

    fn db_to_amplitude(db: f64) -> f64 {
        10f64.powf(db / 20.0)
    }

    /// A 1 kHz sine, identical in every channel, continuing phase across calls.
    struct ToneWriter {
        phase: f64,
    }

    impl ToneWriter {
        fn tone(&mut self, gains_db: &[f64], seconds: f64, out: &mut Vec<f32>) {
            let frames = (seconds * RATE as f64).round() as usize;
            let step = 2.0 * std::f64::consts::PI * 1000.0 / RATE as f64;
            for _ in 0..frames {
                let s = self.phase.sin();
                for &gain in gains_db {
                    out.push((db_to_amplitude(gain) * s) as f32);
                }
                self.phase += step;
            }
        }
    }

    fn integrated(sections: &[(f64, f64)]) -> LoudnessReading {
        let mut tone = ToneWriter { phase: 0.0 };
        let mut samples = Vec::new();
        for &(gain, seconds) in sections {
            tone.tone(&[gain, gain], seconds, &mut samples);
        }
        let mut meter = LoudnessMeter::new(2, RATE, None).unwrap();
        for chunk in samples.chunks(2048) {
            meter.process(chunk);
        }
        let mut reading = LoudnessReading::default();
        meter.read(&mut reading);
        reading
    }

    fn assert_close(actual: f64, expected: f64, tolerance: f64, what: &str) {
        assert!(
            (actual - expected).abs() <= tolerance,
            "{what}: {actual} vs {expected}"
        );
    }

    #[test]
    fn case_1_and_2_steady_sines_read_their_level() {
        for level in [-23.0, -33.0] {
            let r = integrated(&[(level, 20.0)]);
            assert_close(r.momentary, level, 0.1, "momentary");
            assert_close(r.short_term, level, 0.1, "short-term");
            assert_close(r.integrated, level, 0.1, "integrated");
        }
    }

    #[test]
    fn case_3_4_5_gating_keeps_integrated_at_minus_23() {
        let cases: [&[(f64, f64)]; 3] = [
            &[(-36.0, 10.0), (-23.0, 60.0), (-36.0, 10.0)],
            &[
                (-72.0, 10.0),
                (-36.0, 10.0),
                (-23.0, 60.0),
                (-36.0, 10.0),
                (-72.0, 10.0),
            ],
            &[(-26.0, 20.0), (-20.0, 20.1), (-26.0, 20.0)],
        ];
        for sections in cases {
            assert_close(integrated(sections).integrated, -23.0, 0.1, "integrated");
        }
    }

    #[test]
    fn case_6_five_channels_weight_the_surrounds() {
        let mut tone = ToneWriter { phase: 0.0 };
        let mut samples = Vec::new();
        // L, R, C, Ls, Rs as in the crate's default five-channel map.
        tone.tone(&[-28.0, -28.0, -24.0, -30.0, -30.0], 20.0, &mut samples);
        let mut meter = LoudnessMeter::new(5, RATE, None).unwrap();
        meter.process(&samples);
        let mut r = LoudnessReading::default();
        meter.read(&mut r);
        assert_close(r.integrated, -23.0, 0.1, "integrated");
    }

    #[test]
    fn loudness_range_of_tech_3342_case_1_is_10_lu() {
        // Tech 3342 case 1: -20 dBFS then -30 dBFS, 20 s each: LRA 10 LU.
        let r = integrated(&[(-20.0, 20.0), (-30.0, 20.0)]);
        assert_close(r.range, 10.0, 1.0, "range");
    }

    #[test]
    fn momentary_and_short_term_windows_of_tone_bursts() {
        // A 3 s burst at -23 dBFS between silences: the short-term window is
        // exactly filled once, the momentary one many times.
        let mut tone = ToneWriter { phase: 0.0 };
        let mut samples = Vec::new();
        tone.tone(&[-120.0, -120.0], 1.0, &mut samples);
        tone.tone(&[-23.0, -23.0], 3.0, &mut samples);
        tone.tone(&[-120.0, -120.0], 1.0, &mut samples);
        let mut meter = LoudnessMeter::new(2, RATE, None).unwrap();
        let mut reading = LoudnessReading::default();
        let (mut max_m, mut max_s) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
        // Read every 10 ms, as a meter would.
        for chunk in samples.chunks(2 * 480) {
            meter.process(chunk);
            meter.read(&mut reading);
            max_m = max_m.max(reading.momentary);
            max_s = max_s.max(reading.short_term);
        }
        assert_close(max_m, -23.0, 0.1, "max momentary");
        assert_close(max_s, -23.0, 0.1, "max short-term");
    }

    #[test]
    fn true_peak_finds_the_peak_between_samples() {
        // Tech 3341 case 16 style: fs/4 sine with 45 degree phase, -6 dBFS
        // amplitude; the samples themselves only reach -9 dBFS.
        let amplitude = db_to_amplitude(-6.0);
        let samples: Vec<f32> = (0..RATE as usize)
            .flat_map(|i| {
                let phase = std::f64::consts::FRAC_PI_2 * i as f64 + std::f64::consts::FRAC_PI_4;
                let v = (amplitude * phase.sin()) as f32;
                [v, v]
            })
            .collect();
        let mut meter = LoudnessMeter::new(2, RATE, None).unwrap();
        let mut reading = LoudnessReading::default();
        // Skip the first 10 ms: the tone's abrupt start overshoots.
        meter.process(&samples[..960]);
        meter.read(&mut reading);
        meter.process(&samples[960..]);
        meter.read(&mut reading);
        for tp in &reading.true_peak {
            assert!((-6.4..=-5.8).contains(tp), "true peak {tp}");
        }
        assert!(reading.max_true_peak > -6.4);
    }
}
