//! A short-time FFT of the mono mix at a fixed hop, shared by onset detection
//! and voice activity so the transform runs once for both.

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};

use super::History;
use super::window::WindowKind;

pub struct Stft {
    rate: u32,
    hop: usize,
    fft: Arc<dyn RealToComplex<f32>>,
    window: Vec<f32>,
    input: Vec<f32>,
    spectrum: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
    magnitudes: Vec<f32>,
    magnitude_scale: f32,
}

impl std::fmt::Debug for Stft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stft")
            .field("size", &self.size())
            .field("hop", &self.hop)
            .finish()
    }
}

impl Stft {
    /// About 21 ms frames with half overlap: 1024/512 at 48 kHz, 512/256 at
    /// 22.05 kHz. Fine enough in time for onsets, in frequency for speech bands.
    pub fn for_rate(rate: u32) -> Self {
        let size = ((rate as f64 * 0.0213).round() as usize)
            .max(64)
            .next_power_of_two();
        Self::new(rate, size, size / 2)
    }

    pub fn new(rate: u32, size: usize, hop: usize) -> Self {
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(size);
        let window = WindowKind::Hann.build(size);
        let window_sum: f32 = window.iter().sum();
        Self {
            rate,
            hop,
            input: fft.make_input_vec(),
            spectrum: fft.make_output_vec(),
            scratch: fft.make_scratch_vec(),
            magnitudes: vec![0.0; size / 2 + 1],
            // A full-scale sine centred on a bin reads 1.0.
            magnitude_scale: 2.0 / window_sum,
            fft,
            window,
        }
    }

    pub fn size(&self) -> usize {
        self.window.len()
    }

    pub fn hop(&self) -> usize {
        self.hop
    }

    pub fn rate(&self) -> u32 {
        self.rate
    }

    pub fn bin_hz(&self) -> f32 {
        self.rate as f32 / self.size() as f32
    }

    /// Transforms the latest `size` samples of `history`; returns linear
    /// magnitudes for bins 0..=size/2.
    pub fn analyze(&mut self, history: &History) -> &[f32] {
        history.copy_latest(&mut self.input);
        for (x, w) in self.input.iter_mut().zip(&self.window) {
            *x *= w;
        }
        let _ =
            self.fft
                .process_with_scratch(&mut self.input, &mut self.spectrum, &mut self.scratch);
        for (m, c) in self.magnitudes.iter_mut().zip(&self.spectrum) {
            *m = c.norm_sqr().sqrt() * self.magnitude_scale;
        }
        &self.magnitudes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_the_rate() {
        assert_eq!(Stft::for_rate(48000).size(), 1024);
        assert_eq!(Stft::for_rate(48000).hop(), 512);
        assert_eq!(Stft::for_rate(22050).size(), 512);
        assert_eq!(Stft::for_rate(8000).size(), 256);
    }

    #[test]
    fn a_bin_centred_sine_reads_its_amplitude() {
        let mut stft = Stft::for_rate(48000);
        let mut history = History::new(4096);
        let freq = 40.0 * stft.bin_hz();
        let run = history.writable(2048);
        for (i, v) in run.iter_mut().enumerate() {
            *v = 0.5 * (2.0 * std::f32::consts::PI * freq * i as f32 / 48000.0).sin();
        }
        history.commit(2048);
        let mags = stft.analyze(&history);
        assert!((mags[40] - 0.5).abs() < 0.01, "{}", mags[40]);
        assert!(mags[60] < 1e-3);
    }
}
