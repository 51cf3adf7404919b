//! Fundamental frequency by the McLeod Pitch Method: the normalised square
//! difference function (NSDF) computed through an FFT autocorrelation, the
//! first key maximum close to the highest one, refined by a parabola. The
//! NSDF value at that maximum is the clarity (1.0 for a pure periodic tone).

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

use super::History;

/// The first maximum within this fraction of the highest is the period;
/// MPM's usual constant, which avoids octave errors from later periods.
const KEY_MAXIMUM_RATIO: f32 = 0.9;
/// Quieter frames than this (RMS, -60 dBFS) have no pitch.
const MIN_RMS: f32 = 0.001;
const MAX_FREQUENCY_HZ: f32 = 4200.0;

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PitchReading {
    /// Hz; `None` when the sound is too quiet or not periodic enough.
    pub frequency: Option<f32>,
    /// 0..1, how periodic the sound is.
    pub clarity: f32,
}

pub struct PitchDetector {
    rate: f32,
    min_clarity: f32,
    frame: Vec<f32>,
    padded: Vec<f32>,
    spectrum: Vec<Complex<f32>>,
    forward: Arc<dyn RealToComplex<f32>>,
    inverse: Arc<dyn ComplexToReal<f32>>,
    scratch: Vec<Complex<f32>>,
    nsdf: Vec<f32>,
    min_lag: usize,
}

impl std::fmt::Debug for PitchDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PitchDetector")
            .field("window", &self.frame.len())
            .finish()
    }
}

impl PitchDetector {
    /// About 43 ms of history (2048 frames at 48 kHz): down to ~47 Hz, the
    /// lowest pitch whose period fits twice in the window.
    pub fn new(rate: u32, min_clarity: f32) -> Self {
        let window = ((rate as f64 * 0.04) as usize).max(256).next_power_of_two();
        let mut planner = RealFftPlanner::<f32>::new();
        let forward = planner.plan_fft_forward(2 * window);
        let inverse = planner.plan_fft_inverse(2 * window);
        let scratch_len = forward.get_scratch_len().max(inverse.get_scratch_len());
        Self {
            rate: rate as f32,
            min_clarity,
            frame: vec![0.0; window],
            padded: forward.make_input_vec(),
            spectrum: forward.make_output_vec(),
            scratch: vec![Complex::default(); scratch_len],
            nsdf: vec![0.0; window / 2 + 2],
            min_lag: ((rate as f32 / MAX_FREQUENCY_HZ) as usize).max(2),
            forward,
            inverse,
        }
    }

    pub fn window_len(&self) -> usize {
        self.frame.len()
    }

    pub fn analyze(&mut self, history: &History) -> PitchReading {
        history.copy_latest(&mut self.frame);
        let w = self.frame.len();
        let energy: f32 = self.frame.iter().map(|x| x * x).sum();
        if energy / (w as f32) < MIN_RMS * MIN_RMS {
            return PitchReading::default();
        }

        // Autocorrelation r(lag) = IFFT(|FFT(x, zero padded to 2w)|²).
        self.padded[..w].copy_from_slice(&self.frame);
        self.padded[w..].fill(0.0);
        let _ = self.forward.process_with_scratch(
            &mut self.padded,
            &mut self.spectrum,
            &mut self.scratch,
        );
        for c in &mut self.spectrum {
            *c = Complex::new(c.norm_sqr(), 0.0);
        }
        let _ = self.inverse.process_with_scratch(
            &mut self.spectrum,
            &mut self.padded,
            &mut self.scratch,
        );
        let acf_scale = 1.0 / (2 * w) as f32;

        // m(lag) = sum of x[j]² + x[j+lag]² over the overlap, updated per lag.
        let mut m = 2.0 * energy;
        for lag in 0..self.nsdf.len() {
            if lag > 0 {
                m -= self.frame[lag - 1] * self.frame[lag - 1]
                    + self.frame[w - lag] * self.frame[w - lag];
            }
            let r = self.padded[lag] * acf_scale;
            self.nsdf[lag] = if m > f32::EPSILON { 2.0 * r / m } else { 0.0 };
        }
        self.pick_period()
    }

    fn pick_period(&self) -> PitchReading {
        let nsdf = &self.nsdf;
        let last = nsdf.len() - 1;
        // Key maxima: the highest point of each positive lobe after the first
        // downward zero crossing (lag 0 is trivially 1.0).
        let mut lag = 1;
        while lag < last && nsdf[lag] > 0.0 {
            lag += 1;
        }
        let mut best_overall = 0.0f32;
        let mut candidates = [(0usize, 0.0f32); 32];
        let mut count = 0;
        while lag < last && count < candidates.len() {
            while lag < last && nsdf[lag] <= 0.0 {
                lag += 1;
            }
            let mut peak = (lag, nsdf[lag]);
            while lag < last && nsdf[lag] > 0.0 {
                if nsdf[lag] > peak.1 {
                    peak = (lag, nsdf[lag]);
                }
                lag += 1;
            }
            // A lobe cut off by the end of the window has no proven maximum.
            if lag >= last || peak.1 <= 0.0 || peak.0 < self.min_lag {
                continue;
            }
            best_overall = best_overall.max(peak.1);
            candidates[count] = peak;
            count += 1;
        }
        let threshold = KEY_MAXIMUM_RATIO * best_overall;
        let Some(&(lag, _)) = candidates[..count].iter().find(|c| c.1 >= threshold) else {
            return PitchReading::default();
        };
        let (a, b, c) = (nsdf[lag - 1], nsdf[lag], nsdf[lag + 1]);
        let curvature = a - 2.0 * b + c;
        let (shift, clarity) = if curvature.abs() > f32::EPSILON {
            let shift = 0.5 * (a - c) / curvature;
            (shift, b - 0.25 * (a - c) * shift)
        } else {
            (0.0, b)
        };
        let clarity = clarity.min(1.0);
        let frequency = self.rate / (lag as f32 + shift);
        PitchReading {
            frequency: (clarity >= self.min_clarity).then_some(frequency),
            clarity,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history_with(mut signal: impl FnMut(usize) -> f32, rate: u32) -> History {
        let mut history = History::new(rate as usize / 10);
        let len = history.capacity();
        let run = history.writable(len);
        for (i, v) in run.iter_mut().enumerate() {
            *v = signal(i);
        }
        history.commit(len);
        history
    }

    #[test]
    fn sines_are_found_within_a_tenth_of_a_percent() {
        for rate in [48000, 44100, 16000] {
            let mut detector = PitchDetector::new(rate, 0.8);
            for freq in [110.0f32, 440.0, 1000.0] {
                let history = history_with(
                    |i| 0.5 * (2.0 * std::f32::consts::PI * freq * i as f32 / rate as f32).sin(),
                    rate,
                );
                let reading = detector.analyze(&history);
                let found = reading.frequency.expect("pitch");
                assert!(
                    (found / freq - 1.0).abs() < 0.001,
                    "{rate}: {freq} -> {found}"
                );
                assert!(reading.clarity > 0.95);
            }
        }
    }

    #[test]
    fn a_harmonic_tone_reports_its_fundamental() {
        let rate = 48000;
        let mut detector = PitchDetector::new(rate, 0.8);
        let history = history_with(
            |i| {
                let t = i as f32 / rate as f32;
                let w = 2.0 * std::f32::consts::PI * 220.0 * t;
                0.3 * w.sin() + 0.4 * (2.0 * w).sin() + 0.2 * (3.0 * w).sin()
            },
            rate,
        );
        let found = detector.analyze(&history).frequency.unwrap();
        assert!((found / 220.0 - 1.0).abs() < 0.01, "{found}");
    }

    #[test]
    fn silence_and_noise_have_no_pitch() {
        let mut detector = PitchDetector::new(48000, 0.8);
        assert_eq!(detector.analyze(&History::new(4096)).frequency, None);
        let mut seed = 12345u32;
        let history = history_with(
            |_| {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
            },
            48000,
        );
        let reading = detector.analyze(&history);
        assert_eq!(reading.frequency, None, "clarity {}", reading.clarity);
    }
}
