//! RMS, peak and decaying peak per channel, defined exactly as GStreamer's
//! `level` element defines them so that both report the same numbers.
//!
//! `level` quirks kept on purpose, so readings agree to the hundredth of a dB:
//! - integers are normalised by 2^(bits-1);
//! - the decay peak ages by the frames left in the *buffer* each time a block
//!   of it is processed, not by the block length;
//! - the fall-off factor, computed for amplitude, is applied to the peak
//!   *power*, so the decay reading falls at half the `peak-falloff` dB rate;
//! - a tiny epsilon is added before the logarithm, so silence reads about
//!   -700 dB (RMS) and -350 dB (peaks) rather than -inf.

use super::Sample;

const EPSILON: f64 = 1e-35;
const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// One interval's reading, in dBFS per channel.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LevelReading {
    pub rms: Vec<f64>,
    pub peak: Vec<f64>,
    pub decay: Vec<f64>,
}

impl LevelReading {
    pub fn with_channels(channels: usize) -> Self {
        Self {
            rms: Vec::with_capacity(channels),
            peak: Vec::with_capacity(channels),
            decay: Vec::with_capacity(channels),
        }
    }
}

#[derive(Debug, Clone)]
pub struct LevelMeter {
    rate: u64,
    peak_ttl_ns: u64,
    peak_falloff_db_per_s: f64,
    sum_squares: Vec<f64>,
    block_peak: Vec<f64>,
    interval_peak: Vec<f64>,
    decay_peak: Vec<f64>,
    decay_base: Vec<f64>,
    decay_age_ns: Vec<u64>,
}

impl LevelMeter {
    /// `peak_ttl_ns` and `peak_falloff_db_per_s` mean what `level`'s
    /// `peak-ttl` and `peak-falloff` mean (defaults 300 ms and 10 dB/s).
    pub fn new(channels: usize, rate: u32, peak_ttl_ns: u64, peak_falloff_db_per_s: f64) -> Self {
        Self {
            rate: u64::from(rate.max(1)),
            peak_ttl_ns,
            peak_falloff_db_per_s,
            sum_squares: vec![0.0; channels],
            block_peak: vec![0.0; channels],
            interval_peak: vec![0.0; channels],
            decay_peak: vec![0.0; channels],
            decay_base: vec![0.0; channels],
            decay_age_ns: vec![0; channels],
        }
    }

    pub fn channels(&self) -> usize {
        self.sum_squares.len()
    }

    /// Adds one block of interleaved frames. `frames_left_in_buffer` counts
    /// this block and everything after it in the same buffer (see module docs).
    pub fn process<S: Sample>(&mut self, block: &[S], frames_left_in_buffer: usize) {
        match self.channels() {
            1 => accumulate::<S, 1>(block, &mut self.sum_squares, &mut self.block_peak),
            2 => accumulate::<S, 2>(block, &mut self.sum_squares, &mut self.block_peak),
            n => accumulate_any(block, n, &mut self.sum_squares, &mut self.block_peak),
        }
        self.update_peaks(frames_left_in_buffer);
    }

    /// A GAP buffer block: no energy and a zero block peak, as in `level`.
    pub fn process_gap(&mut self, frames_left_in_buffer: usize) {
        self.block_peak.fill(0.0);
        self.update_peaks(frames_left_in_buffer);
    }

    fn update_peaks(&mut self, frames_left_in_buffer: usize) {
        let age_step = frames_to_ns(frames_left_in_buffer as u64, self.rate);
        for ch in 0..self.channels() {
            let peak = self.block_peak[ch];
            self.decay_age_ns[ch] += age_step;
            if peak > self.interval_peak[ch] {
                self.interval_peak[ch] = peak;
            }
            let falloff_ns = self.decay_age_ns[ch] as i64 - self.peak_ttl_ns as i64;
            if falloff_ns > 0 {
                let falloff_db =
                    self.peak_falloff_db_per_s * falloff_ns as f64 / NANOS_PER_SECOND as f64;
                self.decay_peak[ch] = self.decay_base[ch] * 10f64.powf(-falloff_db / 20.0);
            }
            if peak >= self.decay_peak[ch] {
                self.decay_peak[ch] = peak;
                self.decay_base[ch] = peak;
                self.decay_age_ns[ch] = 0;
            }
        }
    }

    /// Reads out the interval of `frames` frames and starts the next one.
    pub fn read(&mut self, frames: u64, out: &mut LevelReading) {
        out.rms.clear();
        out.peak.clear();
        out.decay.clear();
        for ch in 0..self.channels() {
            let rms = (self.sum_squares[ch] / frames.max(1) as f64).sqrt();
            out.rms.push(20.0 * (rms + EPSILON).log10());
            out.peak
                .push(10.0 * (self.interval_peak[ch] + EPSILON).log10());
            out.decay
                .push(10.0 * (self.decay_peak[ch] + EPSILON).log10());
            if self.decay_peak[ch] < self.interval_peak[ch] {
                self.decay_peak[ch] = self.interval_peak[ch];
            }
            self.sum_squares[ch] = 0.0;
            self.interval_peak[ch] = 0.0;
        }
    }

    pub fn reset(&mut self) {
        for v in [
            &mut self.sum_squares,
            &mut self.block_peak,
            &mut self.interval_peak,
            &mut self.decay_peak,
            &mut self.decay_base,
        ] {
            v.fill(0.0);
        }
        self.decay_age_ns.fill(0);
    }
}

/// Rounded like GST_FRAMES_TO_CLOCK_TIME.
pub fn frames_to_ns(frames: u64, rate: u64) -> u64 {
    ((frames as u128 * NANOS_PER_SECOND as u128 + rate as u128 / 2) / rate as u128) as u64
}

/// Sum of squares and peak square per channel. Four frames per step keep
/// four independent adds in flight instead of one serial chain.
#[inline(always)]
fn accumulate<S: Sample, const C: usize>(block: &[S], sums: &mut [f64], peaks: &mut [f64]) {
    let mut acc = [[0.0f64; C]; 4];
    let mut top = [[0.0f64; C]; 4];
    let quads = block.chunks_exact(4 * C);
    let tail = quads.remainder();
    for quad in quads {
        for lane in 0..4 {
            for ch in 0..C {
                let x = quad[lane * C + ch].to_f64();
                let sq = x * x;
                acc[lane][ch] += sq;
                top[lane][ch] = top[lane][ch].max(sq);
            }
        }
    }
    for frame in tail.chunks_exact(C) {
        for ch in 0..C {
            let x = frame[ch].to_f64();
            acc[0][ch] += x * x;
            top[0][ch] = top[0][ch].max(x * x);
        }
    }
    for ch in 0..C {
        sums[ch] += acc[0][ch] + acc[1][ch] + acc[2][ch] + acc[3][ch];
        peaks[ch] = top[0][ch].max(top[1][ch]).max(top[2][ch]).max(top[3][ch]);
    }
}

fn accumulate_any<S: Sample>(block: &[S], channels: usize, sums: &mut [f64], peaks: &mut [f64]) {
    peaks.fill(0.0);
    for frame in block.chunks_exact(channels) {
        for ((s, sum), peak) in frame.iter().zip(sums.iter_mut()).zip(peaks.iter_mut()) {
            let x = s.to_f64();
            *sum += x * x;
            *peak = peak.max(x * x);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(amplitude: f64, freq: f64, rate: f64, frames: usize, channels: usize) -> Vec<f32> {
        (0..frames)
            .flat_map(|i| {
                let v = (amplitude * (2.0 * std::f64::consts::PI * freq * i as f64 / rate).sin())
                    as f32;
                std::iter::repeat_n(v, channels)
            })
            .collect()
    }

    #[test]
    fn half_scale_sine_reads_rms_minus_9_03_and_peak_minus_6_02() {
        let amplitude = 0.5;
        for channels in [1, 2, 3] {
            let samples = sine(amplitude, 1000.0, 48000.0, 4800, channels);
            let mut meter = LevelMeter::new(channels, 48000, 300_000_000, 10.0);
            meter.process(&samples, 4800);
            let mut reading = LevelReading::default();
            meter.read(4800, &mut reading);
            for ch in 0..channels {
                assert!((reading.rms[ch] + 9.03).abs() < 0.01, "{:?}", reading.rms);
                assert!((reading.peak[ch] + 6.02).abs() < 0.01, "{:?}", reading.peak);
                assert_eq!(reading.decay[ch], reading.peak[ch]);
            }
        }
    }

    #[test]
    fn decay_peak_holds_for_the_ttl_then_falls_at_the_falloff_rate() {
        let mut meter = LevelMeter::new(1, 1000, 300_000_000, 10.0);
        let mut reading = LevelReading::default();
        meter.process(&[1.0f32; 100], 100);
        meter.read(100, &mut reading);
        assert!(reading.decay[0].abs() < 1e-9);
        // 300 ms of silence: still within the ttl.
        meter.process(&[0.0f32; 300], 300);
        meter.read(300, &mut reading);
        assert!(reading.decay[0].abs() < 1e-9);
        assert!(reading.peak[0] < -300.0);
        // 500 ms more: aged 800 ms, 500 ms past the ttl at 10 dB/s. Like
        // `level`, the amplitude factor is applied to the peak power, so the
        // reading falls by half the nominal dB.
        meter.process(&[0.0f32; 500], 500);
        meter.read(500, &mut reading);
        assert!((reading.decay[0] + 2.5).abs() < 1e-6, "{:?}", reading.decay);
    }

    #[test]
    fn s16_full_scale_is_32768() {
        let mut meter = LevelMeter::new(1, 48000, 0, 10.0);
        let mut reading = LevelReading::default();
        meter.process(&[i16::MIN, 16384, -16384, 0], 4);
        meter.read(4, &mut reading);
        assert!(reading.peak[0].abs() < 1e-9);
        let expected_rms = 20.0 * ((1.0 + 0.25 + 0.25) / 4.0f64).sqrt().log10();
        assert!((reading.rms[0] - expected_rms).abs() < 1e-9);
    }
}
