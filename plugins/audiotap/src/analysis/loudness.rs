//! EBU R128 loudness per EBU Tech 3341/3342 and ITU-R BS.1770-4: momentary
//! (400 ms), short-term (3 s), integrated (gated) loudness, loudness range,
//! and true peak (by [`TruePeakMeter`]).
//!
//! The signal is K-weighted (two biquads per channel), squared and summed in
//! 100 ms sub-blocks; every window is a mean of sub-blocks. Gating works on
//! histograms of 0.1 LU bins that also hold the summed energies, so memory
//! stays constant for streams of any length and integrated loudness is exact
//! but for blocks in the bin at the relative gate itself.

use std::f64::consts::PI;

use super::Sample;
use super::true_peak::TruePeakMeter;

const ABSOLUTE_GATE_LUFS: f64 = -70.0;
const HISTOGRAM_TOP_LUFS: f64 = 10.0;
const BINS_PER_LU: f64 = 10.0;
const HISTOGRAM_BINS: usize = ((HISTOGRAM_TOP_LUFS - ABSOLUTE_GATE_LUFS) * BINS_PER_LU) as usize;
const MOMENTARY_SUB_BLOCKS: usize = 4;
const SHORT_TERM_SUB_BLOCKS: usize = 30;

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

/// Transposed direct form II biquad; f64 because the 38 Hz high-pass has
/// poles too close to 1 for f32.
#[derive(Debug, Clone, Copy, Default)]
struct Biquad {
    b: [f64; 3],
    a: [f64; 2],
}

#[derive(Debug, Clone, Copy, Default)]
struct ChannelFilter {
    z: [f64; 4],
}

impl ChannelFilter {
    #[inline(always)]
    fn run(&mut self, stages: &[Biquad; 2], x: f64) -> f64 {
        let [shelf, high_pass] = stages;
        let y = shelf.b[0] * x + self.z[0];
        self.z[0] = shelf.b[1] * x - shelf.a[0] * y + self.z[1];
        self.z[1] = shelf.b[2] * x - shelf.a[1] * y;
        let out = high_pass.b[0] * y + self.z[2];
        self.z[2] = high_pass.b[1] * y - high_pass.a[0] * out + self.z[3];
        self.z[3] = high_pass.b[2] * y - high_pass.a[1] * out;
        out
    }
}

/// The BS.1770 K-weighting, derived for any rate (the standard lists 48 kHz
/// coefficients only): a high shelf (+4 dB above ~1.7 kHz) then a 38 Hz
/// high-pass.
fn k_weighting(rate: f64) -> [Biquad; 2] {
    let f0 = 1681.974450955533;
    let gain_db = 3.999843853973347;
    let q = 0.7071752369554196;
    let k = (PI * f0 / rate).tan();
    let vh = 10f64.powf(gain_db / 20.0);
    let vb = vh.powf(0.4996667741545416);
    let a0 = 1.0 + k / q + k * k;
    let shelf = Biquad {
        b: [
            (vh + vb * k / q + k * k) / a0,
            2.0 * (k * k - vh) / a0,
            (vh - vb * k / q + k * k) / a0,
        ],
        a: [2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0],
    };
    let f0 = 38.13547087602444;
    let q = 0.5003270373238773;
    let k = (PI * f0 / rate).tan();
    let a0 = 1.0 + k / q + k * k;
    let high_pass = Biquad {
        b: [1.0, -2.0, 1.0],
        a: [2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0],
    };
    [shelf, high_pass]
}

/// Block loudnesses in 0.1 LU bins from the absolute gate up, with the
/// count and summed energy of each bin.
#[derive(Debug, Clone)]
struct GatingHistogram {
    counts: Vec<u64>,
    energies: Vec<f64>,
}

impl GatingHistogram {
    fn new() -> Self {
        Self {
            counts: vec![0; HISTOGRAM_BINS],
            energies: vec![0.0; HISTOGRAM_BINS],
        }
    }

    fn add(&mut self, energy: f64) {
        let lufs = energy_to_lufs(energy);
        if lufs <= ABSOLUTE_GATE_LUFS {
            return;
        }
        let bin = (((lufs - ABSOLUTE_GATE_LUFS) * BINS_PER_LU) as usize).min(HISTOGRAM_BINS - 1);
        self.counts[bin] += 1;
        self.energies[bin] += energy;
    }

    /// First bin at or above `lufs`.
    fn bin_of(lufs: f64) -> usize {
        (((lufs - ABSOLUTE_GATE_LUFS) * BINS_PER_LU).ceil().max(0.0) as usize).min(HISTOGRAM_BINS)
    }

    fn mean_energy_from(&self, first_bin: usize) -> Option<f64> {
        let count: u64 = self.counts[first_bin..].iter().sum();
        (count > 0).then(|| self.energies[first_bin..].iter().sum::<f64>() / count as f64)
    }

    /// Blocks above the relative gate `gate_lu` below their mean.
    fn relative_gate_bin(&self, gate_lu: f64) -> Option<usize> {
        let mean = self.mean_energy_from(0)?;
        Some(Self::bin_of(energy_to_lufs(mean) + gate_lu))
    }

    fn reset(&mut self) {
        self.counts.fill(0);
        self.energies.fill(0.0);
    }
}

fn energy_to_lufs(energy: f64) -> f64 {
    -0.691 + 10.0 * energy.log10()
}

pub struct LoudnessMeter {
    stages: [Biquad; 2],
    filters: Vec<ChannelFilter>,
    weights: Vec<f64>,
    /// Weighted sum of squares per channel for the open sub-block.
    sums: Vec<f64>,
    sub_block_frames: usize,
    filled: usize,
    /// Mean-square energies of the latest sub-blocks, a ring.
    sub_blocks: [f64; SHORT_TERM_SUB_BLOCKS],
    sub_block_count: u64,
    blocks: GatingHistogram,
    short_terms: GatingHistogram,
    true_peak: TruePeakMeter,
    max_true_peak: f64,
}

impl std::fmt::Debug for LoudnessMeter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoudnessMeter")
            .field("weights", &self.weights)
            .field("sub_block_frames", &self.sub_block_frames)
            .finish()
    }
}

/// Kept as a name for the formats the meter reads; every [`Sample`] is one.
pub trait LoudnessSample: Sample {}
impl<S: Sample> LoudnessSample for S {}

/// BS.1770 channel weights for the usual layouts when no positions are
/// known: L R (C) (LFE) Ls Rs, as in libebur128.
pub fn default_weights(channels: usize) -> Vec<f64> {
    const SURROUND: f64 = 1.41;
    match channels {
        4 => vec![1.0, 1.0, SURROUND, SURROUND],
        5 => vec![1.0, 1.0, 1.0, SURROUND, SURROUND],
        n if n >= 6 => {
            let mut w = vec![1.0, 1.0, 1.0, 0.0, SURROUND, SURROUND];
            w.resize(n, 1.0);
            w
        }
        n => vec![1.0; n],
    }
}

impl LoudnessMeter {
    /// `weights` per channel (0 for LFE, 1.41 for surrounds, 1 otherwise);
    /// `None` picks [`default_weights`].
    pub fn new(channels: usize, rate: u32, weights: Option<&[f64]>) -> Option<Self> {
        if channels == 0 || rate < 100 {
            return None;
        }
        let weights = match weights {
            Some(w) if w.len() == channels => w.to_vec(),
            _ => default_weights(channels),
        };
        Some(Self {
            stages: k_weighting(rate as f64),
            filters: vec![ChannelFilter::default(); channels],
            weights,
            sums: vec![0.0; channels],
            sub_block_frames: (rate as usize + 5) / 10,
            filled: 0,
            sub_blocks: [0.0; SHORT_TERM_SUB_BLOCKS],
            sub_block_count: 0,
            blocks: GatingHistogram::new(),
            short_terms: GatingHistogram::new(),
            true_peak: TruePeakMeter::new(channels, rate),
            max_true_peak: 0.0,
        })
    }

    pub fn process<S: LoudnessSample>(&mut self, block: &[S]) {
        let channels = self.filters.len();
        self.true_peak.process(block);
        let mut rest = block;
        while !rest.is_empty() {
            let frames = (rest.len() / channels).min(self.sub_block_frames - self.filled);
            let (now, later) = rest.split_at(frames * channels);
            match channels {
                1 => filter_frames::<S, 1>(now, &self.stages, &mut self.filters, &mut self.sums),
                2 => filter_frames::<S, 2>(now, &self.stages, &mut self.filters, &mut self.sums),
                _ => filter_any(now, &self.stages, &mut self.filters, &mut self.sums),
            }
            self.filled += frames;
            rest = later;
            if self.filled == self.sub_block_frames {
                self.close_sub_block();
            }
        }
    }

    fn close_sub_block(&mut self) {
        let energy = self
            .sums
            .iter()
            .zip(&self.weights)
            .map(|(s, w)| s * w)
            .sum::<f64>()
            / self.sub_block_frames as f64;
        self.sums.fill(0.0);
        self.filled = 0;
        self.sub_blocks[(self.sub_block_count % SHORT_TERM_SUB_BLOCKS as u64) as usize] = energy;
        self.sub_block_count += 1;
        // Gating blocks of 400 ms overlap by 75 %: one per sub-block.
        if self.sub_block_count >= MOMENTARY_SUB_BLOCKS as u64 {
            self.blocks.add(self.window_energy(MOMENTARY_SUB_BLOCKS));
        }
        // Short-term values for the loudness range, at 10 Hz (Tech 3342).
        if self.sub_block_count >= SHORT_TERM_SUB_BLOCKS as u64 {
            self.short_terms
                .add(self.window_energy(SHORT_TERM_SUB_BLOCKS));
        }
    }

    /// Mean energy of the latest `count` sub-blocks; sub-blocks before the
    /// start of the stream count as silence.
    fn window_energy(&self, count: usize) -> f64 {
        let newest = self.sub_block_count as usize;
        (0..count.min(newest))
            .map(|back| self.sub_blocks[(newest - 1 - back) % SHORT_TERM_SUB_BLOCKS])
            .sum::<f64>()
            / count as f64
    }

    fn integrated(&self) -> f64 {
        self.blocks
            .relative_gate_bin(-10.0)
            .and_then(|bin| self.blocks.mean_energy_from(bin))
            .map_or(f64::NEG_INFINITY, energy_to_lufs)
    }

    /// EBU Tech 3342: the spread between the 10th and 95th percentiles of
    /// short-term loudness, gated 20 LU below its mean.
    fn range(&self) -> f64 {
        let Some(first) = self.short_terms.relative_gate_bin(-20.0) else {
            return 0.0;
        };
        let counts = &self.short_terms.counts[first..];
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return 0.0;
        }
        let percentile = |p: f64| {
            let wanted = ((total - 1) as f64 * p).round() as u64;
            let mut seen = 0;
            for (i, &c) in counts.iter().enumerate() {
                seen += c;
                if seen > wanted {
                    return ABSOLUTE_GATE_LUFS + (first + i) as f64 / BINS_PER_LU;
                }
            }
            HISTOGRAM_TOP_LUFS
        };
        percentile(0.95) - percentile(0.10)
    }

    pub fn read(&mut self, out: &mut LoudnessReading) {
        let lufs = |e: f64| {
            if e > 0.0 {
                energy_to_lufs(e)
            } else {
                f64::NEG_INFINITY
            }
        };
        out.momentary = lufs(self.window_energy(MOMENTARY_SUB_BLOCKS));
        out.short_term = lufs(self.window_energy(SHORT_TERM_SUB_BLOCKS));
        out.integrated = self.integrated();
        out.range = self.range();
        self.true_peak.take(&mut out.true_peak);
        for peak in &mut out.true_peak {
            self.max_true_peak = self.max_true_peak.max(*peak);
            *peak = 20.0 * peak.log10();
        }
        out.max_true_peak = 20.0 * self.max_true_peak.log10();
    }

    pub fn reset(&mut self) {
        self.filters.fill(ChannelFilter::default());
        self.sums.fill(0.0);
        self.filled = 0;
        self.sub_blocks = [0.0; SHORT_TERM_SUB_BLOCKS];
        self.sub_block_count = 0;
        self.blocks.reset();
        self.short_terms.reset();
        self.true_peak.reset();
        self.max_true_peak = 0.0;
    }
}

/// K-weights and accumulates squares; channels interleave in one loop so
/// their independent filter chains overlap in the pipeline.
#[inline(always)]
fn filter_frames<S: Sample, const C: usize>(
    block: &[S],
    stages: &[Biquad; 2],
    filters: &mut [ChannelFilter],
    sums: &mut [f64],
) {
    let mut state: [ChannelFilter; C] = std::array::from_fn(|c| filters[c]);
    let mut acc = [0.0f64; C];
    for frame in block.chunks_exact(C) {
        for c in 0..C {
            let y = state[c].run(stages, frame[c].to_f64());
            acc[c] += y * y;
        }
    }
    filters[..C].copy_from_slice(&state);
    for (sum, a) in sums.iter_mut().zip(acc) {
        *sum += a;
    }
}

fn filter_any<S: Sample>(
    block: &[S],
    stages: &[Biquad; 2],
    filters: &mut [ChannelFilter],
    sums: &mut [f64],
) {
    let channels = filters.len();
    for frame in block.chunks_exact(channels) {
        for ((s, filter), sum) in frame.iter().zip(filters.iter_mut()).zip(sums.iter_mut()) {
            let y = filter.run(stages, s.to_f64());
            *sum += y * y;
        }
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
    fn agrees_with_the_ebur128_crate_on_varied_programme() {
        // Noise bursts of changing level and length, as a stand-in for
        // programme material; compared with libebur128's Rust port.
        let mut seed = 0x9e37_79b9u32;
        let mut random = move || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f64 / (1u32 << 24) as f64
        };
        let mut samples = Vec::new();
        while samples.len() < 2 * 60 * RATE as usize {
            let gain = db_to_amplitude(-45.0 + 40.0 * random());
            let frames = (RATE as f64 * (0.2 + 2.0 * random())) as usize;
            for _ in 0..frames {
                samples.push((gain * (random() - 0.5)) as f32);
                samples.push((gain * (random() - 0.5)) as f32);
            }
        }
        let mode = ebur128::Mode::M | ebur128::Mode::S | ebur128::Mode::I | ebur128::Mode::LRA;
        let mut reference = ebur128::EbuR128::new(2, RATE, mode).unwrap();
        let mut meter = LoudnessMeter::new(2, RATE, None).unwrap();
        let mut reading = LoudnessReading::default();
        // Whole 100 ms steps so both measure the same windows.
        for chunk in samples.chunks(2 * 4800).filter(|c| c.len() == 2 * 4800) {
            reference.add_frames_f32(chunk).unwrap();
            meter.process(chunk);
            meter.read(&mut reading);
            let m = reference.loudness_momentary().unwrap();
            let s = reference.loudness_shortterm().unwrap();
            assert_close(reading.momentary, m, 0.01, "momentary");
            assert_close(reading.short_term, s, 0.01, "short-term");
        }
        assert_close(
            reading.integrated,
            reference.loudness_global().unwrap(),
            0.05,
            "integrated",
        );
        assert_close(
            reading.range,
            reference.loudness_range().unwrap(),
            0.5,
            "range",
        );
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
