//! True peak (ITU-R BS.1770-4 Annex 2): the signal oversampled four times
//! by a windowed-sinc interpolator, and its highest absolute value.
//!
//! Written here rather than taken from the `ebur128` crate, whose scalar
//! interpolator was three quarters of its cost: this one deinterleaves a
//! chunk per channel and computes eight outputs per step, which compiles to
//! vector code.

use std::f64::consts::PI;

use super::Sample;

/// Taps per phase; 16 keeps the interpolation error of a full-scale sine
/// below 0.05 dB up to 18 kHz at 48 kHz.
const TAPS: usize = 16;
const OVERSAMPLING: usize = 4;
const CHUNK: usize = 256;
const LANES: usize = 8;

#[derive(Debug, Clone)]
pub struct TruePeakMeter {
    channels: usize,
    /// Phases 1..OVERSAMPLING (phase 0 is the sample itself), taps reversed
    /// so tap j multiplies `history[n + j]`.
    phases: Vec<[f32; TAPS]>,
    /// Per channel: the last TAPS-1 samples, then the current chunk.
    buffers: Vec<Vec<f32>>,
    peaks: Vec<f32>,
}

impl TruePeakMeter {
    /// At 96 kHz and above the signal is already fine enough: only the
    /// sample peak is taken, as BS.1770 allows.
    pub fn new(channels: usize, rate: u32) -> Self {
        let phases = if rate < 96000 {
            (1..OVERSAMPLING)
                .map(|k| phase_coefficients(k as f64 / OVERSAMPLING as f64))
                .collect()
        } else {
            Vec::new()
        };
        Self {
            channels,
            phases,
            buffers: vec![vec![0.0; TAPS - 1 + CHUNK + LANES]; channels],
            peaks: vec![0.0; channels],
        }
    }

    pub fn process<S: Sample>(&mut self, interleaved: &[S]) {
        let channels = self.channels;
        for chunk in interleaved.chunks(CHUNK * channels) {
            let frames = chunk.len() / channels;
            for (ch, (buffer, peak)) in self.buffers.iter_mut().zip(&mut self.peaks).enumerate() {
                let fresh = &mut buffer[TAPS - 1..TAPS - 1 + frames];
                let mut sample_peak = *peak;
                for (slot, frame) in fresh.iter_mut().zip(chunk.chunks_exact(channels)) {
                    *slot = frame[ch].to_f32();
                    sample_peak = sample_peak.max(slot.abs());
                }
                // The lanes past `frames` must not raise the peak.
                buffer[TAPS - 1 + frames..].fill(0.0);
                let mut interpolated = 0.0f32;
                for coefficients in &self.phases {
                    interpolated = interpolated.max(phase_peak(buffer, frames, coefficients));
                }
                *peak = sample_peak.max(interpolated);
                buffer.copy_within(frames..frames + TAPS - 1, 0);
            }
        }
    }

    /// Highest absolute value per channel since the last `take`, linear.
    pub fn take(&mut self, out: &mut Vec<f64>) {
        out.clear();
        out.extend(self.peaks.iter().map(|&p| f64::from(p)));
        self.peaks.fill(0.0);
    }

    pub fn reset(&mut self) {
        for buffer in &mut self.buffers {
            buffer.fill(0.0);
        }
        self.peaks.fill(0.0);
    }
}

/// Largest |y| of one interpolation phase over `frames` outputs; eight
/// outputs at a time so the accumulators stay in vector registers.
fn phase_peak(buffer: &[f32], frames: usize, coefficients: &[f32; TAPS]) -> f32 {
    let mut top = [0.0f32; LANES];
    let mut base = 0;
    while base < frames {
        // A fixed-size view: every index below is known in range at compile
        // time, so no bounds checks stand in the way of vectorising.
        let window: &[f32; TAPS + LANES - 1] = buffer[base..base + TAPS + LANES - 1]
            .try_into()
            .expect("buffer holds TAPS - 1 + CHUNK + LANES samples");
        let mut acc = [0.0f32; LANES];
        for (j, &c) in coefficients.iter().enumerate() {
            for lane in 0..LANES {
                acc[lane] += c * window[j + lane];
            }
        }
        for lane in 0..LANES {
            top[lane] = top[lane].max(acc[lane].abs());
        }
        base += LANES;
    }
    top.iter().fold(0.0, |a, &b| a.max(b))
}

/// Kaiser-windowed sinc taps for the point `fraction` of a sample after
/// the sample `TAPS/2 - 1` of the window, reversed for `phase_peak`.
fn phase_coefficients(fraction: f64) -> [f32; TAPS] {
    let half = TAPS as f64 / 2.0;
    let beta = 6.0;
    let mut taps = [0.0f64; TAPS];
    for (j, tap) in taps.iter_mut().enumerate() {
        // Tap j reads the sample at offset (j - (TAPS/2 - 1)) from the
        // interpolated point's left neighbour, i.e. at distance t.
        let t = j as f64 - (half - 1.0) - fraction;
        let sinc = if t.abs() < 1e-12 {
            1.0
        } else {
            (PI * t).sin() / (PI * t)
        };
        let x = t / half;
        let window = if x.abs() <= 1.0 {
            bessel_i0(beta * (1.0 - x * x).sqrt()) / bessel_i0(beta)
        } else {
            0.0
        };
        *tap = sinc * window;
    }
    let sum: f64 = taps.iter().sum();
    let mut out = [0.0f32; TAPS];
    for (o, t) in out.iter_mut().zip(taps) {
        *o = (t / sum) as f32;
    }
    out
}

fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    for k in 1..50 {
        term *= (x / (2.0 * k as f64)).powi(2);
        sum += term;
        if term < 1e-12 * sum {
            break;
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    fn true_peak_db(freq: f64, phase: f64, rate: u32, amplitude: f64) -> f64 {
        let mut meter = TruePeakMeter::new(2, rate);
        let samples: Vec<f32> = (0..rate as usize / 2)
            .flat_map(|i| {
                let v =
                    (amplitude * (2.0 * PI * freq * i as f64 / rate as f64 + phase).sin()) as f32;
                [v, -v]
            })
            .collect();
        let mut peaks = Vec::new();
        for (i, block) in samples.chunks(2 * 1000).enumerate() {
            meter.process(block);
            if i == 0 {
                // The abrupt start of the tone overshoots, as it would in
                // any interpolator: measure the steady part only.
                meter.take(&mut peaks);
            }
        }
        meter.take(&mut peaks);
        assert!((peaks[0] - peaks[1]).abs() < 1e-6);
        20.0 * peaks[0].log10()
    }

    #[test]
    fn sines_read_their_amplitude_within_tech_3341_tolerance() {
        // Tech 3341 asks for +0.2/-0.4 dB; sample peaks alone miss by up to 3 dB.
        for freq in [997.0, 5000.0, 12000.0, 15000.0, 18000.0] {
            for phase in [0.0, 0.3, PI / 4.0, 1.1] {
                let db = true_peak_db(freq, phase, 48000, 0.5);
                let expected = 20.0 * 0.5f64.log10();
                assert!(
                    (-0.4..=0.2).contains(&(db - expected)),
                    "{freq} Hz phase {phase}: {db} vs {expected}"
                );
            }
        }
    }

    #[test]
    fn the_peak_between_samples_of_a_quarter_rate_sine_is_found() {
        let db = true_peak_db(12000.0, PI / 4.0, 48000, 0.5);
        assert!((db + 6.02).abs() < 0.1, "{db}");
    }

    #[test]
    fn high_rates_use_the_sample_peak() {
        let mut meter = TruePeakMeter::new(1, 96000);
        meter.process(&[0.25f32, -0.75, 0.5]);
        let mut peaks = Vec::new();
        meter.take(&mut peaks);
        assert_eq!(peaks, [0.75]);
    }
}
