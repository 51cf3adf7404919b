//! The measurements behind `audiotap`, as plain Rust with no GStreamer.
//!
//! Each analysis is a small state machine fed with interleaved samples (or,
//! for the spectral ones, with a mono mix) and read out once per interval.
//! All buffers are sized when the stream format is known, so feeding samples
//! never allocates.

pub mod level;
pub mod loudness;
pub mod onset;
pub mod pitch;
pub mod report;
pub mod spectrum;
pub mod stft;
pub mod tap;
pub mod true_peak;
pub mod vad;
pub mod waveform;
pub mod window;

pub use report::Report;
pub use tap::{AnalysisSet, Tap, TapConfig};

/// An interleaved sample format the tap accepts, normalised to [-1, 1] the way
/// GStreamer's `level` does it (integers are divided by 2^(bits-1)).
pub trait Sample: Copy + Send + Sync + 'static {
    fn to_f32(self) -> f32;
    fn to_f64(self) -> f64;
}

impl Sample for i16 {
    #[inline(always)]
    fn to_f32(self) -> f32 {
        self as f32 * (1.0 / 32768.0)
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as f64 * (1.0 / 32768.0)
    }
}

impl Sample for i32 {
    #[inline(always)]
    fn to_f32(self) -> f32 {
        self as f32 * (1.0 / 2_147_483_648.0)
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as f64 * (1.0 / 2_147_483_648.0)
    }
}

impl Sample for f32 {
    #[inline(always)]
    fn to_f32(self) -> f32 {
        self
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as f64
    }
}

impl Sample for f64 {
    #[inline(always)]
    fn to_f32(self) -> f32 {
        self as f32
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
}

/// Averages the channels of `interleaved` into `mono` (one value per frame).
///
/// Mono and stereo get their own loops so the compiler can vectorise them;
/// they are what nearly every stream carries.
pub fn mix_to_mono<S: Sample>(interleaved: &[S], channels: usize, mono: &mut [f32]) {
    debug_assert_eq!(interleaved.len(), mono.len() * channels);
    match channels {
        1 => {
            for (out, s) in mono.iter_mut().zip(interleaved) {
                *out = s.to_f32();
            }
        }
        2 => {
            for (out, frame) in mono.iter_mut().zip(interleaved.chunks_exact(2)) {
                *out = 0.5 * (frame[0].to_f32() + frame[1].to_f32());
            }
        }
        _ => {
            let scale = 1.0 / channels as f32;
            for (out, frame) in mono.iter_mut().zip(interleaved.chunks_exact(channels)) {
                *out = frame.iter().map(|s| s.to_f32()).sum::<f32>() * scale;
            }
        }
    }
}

/// Natural logarithm to within 5e-4, for the per-bin logs of onset and voice
/// detection where `f32::ln` (a libm call per bin) dominated the cost.
/// Positive, finite input only.
#[inline(always)]
pub fn fast_ln(x: f32) -> f32 {
    let bits = x.to_bits();
    let exponent = ((bits >> 23) & 0xff) as i32 - 127;
    // Mantissa m in [1, 2); ln(m) by a minimax polynomial in (m - 1).
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000) - 1.0;
    let ln_m = m
        * (0.999_866_2
            + m * (-0.497_373_1 + m * (0.309_189_5 + m * (-0.166_446_4 + m * 0.048_098_4))));
    exponent as f32 * std::f32::consts::LN_2 + ln_m
}

/// Converts a power ratio to decibels, keeping silence at -inf like `level`.
#[inline]
pub fn power_to_db(power: f64) -> f64 {
    10.0 * power.log10()
}

/// A fixed-size history of the most recent mono samples.
///
/// The capacity is a power of two so positions wrap with a mask.
#[derive(Debug, Clone)]
pub struct History {
    samples: Vec<f32>,
    mask: usize,
    written: u64,
}

impl History {
    pub fn new(min_capacity: usize) -> Self {
        let capacity = min_capacity.max(16).next_power_of_two();
        Self {
            samples: vec![0.0; capacity],
            mask: capacity - 1,
            written: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.samples.len()
    }

    /// Total samples ever written.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Gives the caller a writable run of up to `wanted` slots (stopping at the
    /// wrap point), to fill in place; `commit` must follow with how many were filled.
    pub fn writable(&mut self, wanted: usize) -> &mut [f32] {
        let start = (self.written as usize) & self.mask;
        let end = (start + wanted).min(self.samples.len());
        &mut self.samples[start..end]
    }

    pub fn commit(&mut self, count: usize) {
        self.written += count as u64;
    }

    /// Copies the latest `out.len()` samples, oldest first; zeros stand in for
    /// samples not yet seen.
    pub fn copy_latest(&self, out: &mut [f32]) {
        let n = out.len();
        assert!(n <= self.samples.len());
        let available = (self.written as usize).min(n);
        let missing = n - available;
        out[..missing].fill(0.0);
        let end = (self.written as usize) & self.mask;
        let start = end.wrapping_sub(available) & self.mask;
        let dest = &mut out[missing..];
        if available == 0 {
            return;
        }
        if start < end {
            dest.copy_from_slice(&self.samples[start..start + available]);
        } else {
            let first = self.samples.len() - start;
            dest[..first].copy_from_slice(&self.samples[start..]);
            dest[first..].copy_from_slice(&self.samples[..end]);
        }
    }

    pub fn reset(&mut self) {
        self.samples.fill(0.0);
        self.written = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_samples_are_normalised_like_level() {
        assert_eq!(i16::MIN.to_f64(), -1.0);
        assert_eq!(i32::MIN.to_f64(), -1.0);
        assert!((16384i16.to_f32() - 0.5).abs() < 1e-7);
    }

    #[test]
    fn fast_ln_is_close_to_ln() {
        for &x in &[1e-20f32, 1e-6, 0.01, 0.5, 1.0, 1.5, 2.0, 3.7, 100.0, 1e6] {
            assert!(
                (fast_ln(x) - x.ln()).abs() < 5e-4,
                "{x}: {} vs {}",
                fast_ln(x),
                x.ln()
            );
        }
    }

    #[test]
    fn stereo_mix_averages_channels() {
        let mut mono = [0.0; 2];
        mix_to_mono(&[1.0f32, 0.0, -0.5, -0.5], 2, &mut mono);
        assert_eq!(mono, [0.5, -0.5]);
        let mut mono3 = [0.0; 1];
        mix_to_mono(&[0.3f64, 0.3, 0.3], 3, &mut mono3);
        assert!((mono3[0] - 0.3).abs() < 1e-6);
    }

    fn write_all(history: &mut History, values: &[f32]) {
        let mut rest = values;
        while !rest.is_empty() {
            let run = history.writable(rest.len());
            let n = run.len();
            run.copy_from_slice(&rest[..n]);
            history.commit(n);
            rest = &rest[n..];
        }
    }

    #[test]
    fn history_returns_latest_samples_across_the_wrap() {
        let mut history = History::new(16);
        let values: Vec<f32> = (0..40).map(|v| v as f32).collect();
        write_all(&mut history, &values[..5]);
        let mut out = [9.0; 8];
        history.copy_latest(&mut out);
        assert_eq!(out, [0.0, 0.0, 0.0, 0.0, 1.0, 2.0, 3.0, 4.0]);
        write_all(&mut history, &values[5..]);
        let mut out = [0.0; 16];
        history.copy_latest(&mut out);
        let expected: Vec<f32> = (24..40).map(|v| v as f32).collect();
        assert_eq!(out.to_vec(), expected);
        write_all(&mut history, &values[..8]);
        let mut out = [0.0; 10];
        history.copy_latest(&mut out);
        assert_eq!(out, [38.0, 39.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]);
    }
}
