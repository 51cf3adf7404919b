//! Band magnitudes in dB, like Tone.js `FFT` (the Web Audio `AnalyserNode`):
//! a windowed FFT of the latest samples at each reading, magnitudes smoothed
//! over time per bin, then grouped into linear or log-spaced bands.

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};

use super::History;
use super::window::WindowKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BandScale {
    #[default]
    Linear,
    Log,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SpectrumConfig {
    /// FFT length, a power of two.
    pub size: usize,
    pub bands: usize,
    pub scale: BandScale,
    pub window: WindowKind,
    /// 0..1, the weight of the previous reading (`smoothingTimeConstant`).
    pub smoothing: f32,
    /// Lowest band edge in Hz; 0 means 0 Hz for linear bands and 20 Hz for log.
    pub min_frequency: f32,
    /// Highest band edge in Hz; 0 means the Nyquist frequency.
    pub max_frequency: f32,
    /// Readings below this many dB are reported as this value.
    pub threshold_db: f32,
}

impl Default for SpectrumConfig {
    fn default() -> Self {
        Self {
            size: 2048,
            bands: 128,
            scale: BandScale::Linear,
            window: WindowKind::Blackman,
            smoothing: 0.8,
            min_frequency: 0.0,
            max_frequency: 0.0,
            threshold_db: -100.0,
        }
    }
}

/// Bins `first..end` averaged into one band.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Band {
    first: usize,
    end: usize,
}

pub struct SpectrumAnalyzer {
    config: SpectrumConfig,
    fft: Arc<dyn RealToComplex<f32>>,
    window: Vec<f32>,
    input: Vec<f32>,
    spectrum: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
    smoothed: Vec<f32>,
    bands: Vec<Band>,
    edges_hz: (f32, f32),
    magnitude_scale: f32,
}

impl std::fmt::Debug for SpectrumAnalyzer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpectrumAnalyzer")
            .field("config", &self.config)
            .finish()
    }
}

impl SpectrumAnalyzer {
    pub fn new(rate: u32, mut config: SpectrumConfig) -> Self {
        config.size = config.size.clamp(32, 32768).next_power_of_two();
        config.bands = config.bands.max(1);
        config.smoothing = config.smoothing.clamp(0.0, 1.0);
        let nyquist = rate as f32 / 2.0;
        let max_hz = if config.max_frequency > 0.0 {
            config.max_frequency.min(nyquist)
        } else {
            nyquist
        };
        let min_hz = match (config.min_frequency > 0.0, config.scale) {
            (true, _) => config.min_frequency.min(max_hz * 0.5),
            (false, BandScale::Linear) => 0.0,
            (false, BandScale::Log) => 20.0f32.min(max_hz * 0.5),
        };
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(config.size);
        let window = config.window.build(config.size);
        let window_sum: f32 = window.iter().sum();
        let bin_hz = rate as f32 / config.size as f32;
        let bins = config.size / 2 + 1;
        let bands = (0..config.bands)
            .map(|i| {
                let lo = band_edge(config.scale, min_hz, max_hz, i, config.bands);
                let hi = band_edge(config.scale, min_hz, max_hz, i + 1, config.bands);
                let first = ((lo / bin_hz).ceil() as usize).min(bins - 1);
                let mut end = ((hi / bin_hz).ceil() as usize).min(bins);
                if i + 1 == config.bands && hi >= nyquist {
                    end = bins;
                }
                if end <= first {
                    // Narrower than a bin: take the bin holding the band centre.
                    let centre = (((lo + hi) * 0.5 / bin_hz).round() as usize).min(bins - 1);
                    Band {
                        first: centre,
                        end: centre + 1,
                    }
                } else {
                    Band { first, end }
                }
            })
            .collect();
        Self {
            input: fft.make_input_vec(),
            spectrum: fft.make_output_vec(),
            scratch: fft.make_scratch_vec(),
            smoothed: vec![0.0; bins],
            bands,
            edges_hz: (min_hz, max_hz),
            magnitude_scale: 2.0 / window_sum,
            fft,
            window,
            config,
        }
    }

    pub fn config(&self) -> &SpectrumConfig {
        &self.config
    }

    /// Frequency range covered by the bands, in Hz.
    pub fn range_hz(&self) -> (f32, f32) {
        self.edges_hz
    }

    /// Transforms the latest samples and writes one dB value per band: the
    /// mean power of the band's bins, scaled so that a full-scale sine reads
    /// 0 dB in its own bin. Averaging (rather than summing) keeps broadband
    /// noise flat on either scale; a pure tone reads lower in a wide band.
    pub fn analyze(&mut self, history: &History, out: &mut Vec<f32>) {
        history.copy_latest(&mut self.input);
        for (x, w) in self.input.iter_mut().zip(&self.window) {
            *x *= w;
        }
        let _ =
            self.fft
                .process_with_scratch(&mut self.input, &mut self.spectrum, &mut self.scratch);
        let keep = self.config.smoothing;
        for (s, c) in self.smoothed.iter_mut().zip(&self.spectrum) {
            *s = keep * *s + (1.0 - keep) * c.norm_sqr().sqrt() * self.magnitude_scale;
        }
        out.clear();
        let floor = self.config.threshold_db;
        for band in &self.bands {
            let bins = &self.smoothed[band.first..band.end];
            let power = bins.iter().map(|m| m * m).sum::<f32>() / bins.len() as f32;
            out.push((10.0 * power.log10()).max(floor));
        }
    }

    pub fn reset(&mut self) {
        self.smoothed.fill(0.0);
    }
}

/// Edge `index` of `count` bands between `min_hz` and `max_hz`.
pub fn band_edge(scale: BandScale, min_hz: f32, max_hz: f32, index: usize, count: usize) -> f32 {
    let t = index as f32 / count as f32;
    match scale {
        BandScale::Linear => min_hz + (max_hz - min_hz) * t,
        BandScale::Log => min_hz * (max_hz / min_hz).powf(t),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history_of(samples: impl Iterator<Item = f32>, len: usize) -> History {
        let mut history = History::new(len);
        let run = history.writable(len);
        for (slot, v) in run.iter_mut().zip(samples) {
            *slot = v;
        }
        history.commit(len);
        history
    }

    fn sine(freq: f32, amplitude: f32) -> impl Iterator<Item = f32> {
        (0..).map(move |i| {
            amplitude * (2.0 * std::f32::consts::PI * freq * i as f32 / 48000.0).sin()
        })
    }

    fn peak_band(values: &[f32]) -> usize {
        values
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap()
            .0
    }

    #[test]
    fn the_peak_band_of_a_1khz_sine_contains_1khz() {
        for scale in [BandScale::Linear, BandScale::Log] {
            let config = SpectrumConfig {
                scale,
                bands: 64,
                smoothing: 0.0,
                ..Default::default()
            };
            let mut analyzer = SpectrumAnalyzer::new(48000, config);
            let history = history_of(sine(1000.0, 0.5), 2048);
            let mut bands = Vec::new();
            analyzer.analyze(&history, &mut bands);
            let peak = peak_band(&bands);
            let (lo, hi) = analyzer.range_hz();
            let lower = band_edge(scale, lo, hi, peak, 64);
            let upper = band_edge(scale, lo, hi, peak + 1, 64);
            assert!(
                lower <= 1000.0 && 1000.0 < upper,
                "{scale:?}: band {peak} {lower}..{upper}"
            );
            let others = bands
                .iter()
                .enumerate()
                .filter(|(i, _)| i.abs_diff(peak) > 2);
            assert!(
                others.clone().all(|(_, &v)| v < bands[peak] - 30.0),
                "{scale:?}: {bands:?}"
            );
        }
    }

    #[test]
    fn white_noise_is_flat() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut noise = std::iter::from_fn(move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            Some((seed >> 40) as f32 / (1u64 << 23) as f32 - 1.0)
        });
        let config = SpectrumConfig {
            bands: 32,
            ..Default::default()
        };
        let mut analyzer = SpectrumAnalyzer::new(48000, config);
        let mut bands = Vec::new();
        for _ in 0..40 {
            let history = history_of(&mut noise, 2048);
            analyzer.analyze(&history, &mut bands);
        }
        let max = bands.iter().cloned().fold(f32::MIN, f32::max);
        let min = bands.iter().cloned().fold(f32::MAX, f32::min);
        assert!(max - min < 3.0, "{bands:?}");
    }

    #[test]
    fn silence_reads_the_threshold() {
        let mut analyzer = SpectrumAnalyzer::new(48000, SpectrumConfig::default());
        let mut bands = Vec::new();
        analyzer.analyze(&History::new(4096), &mut bands);
        assert_eq!(bands.len(), 128);
        assert!(bands.iter().all(|&b| b == -100.0));
    }

    #[test]
    fn log_bands_below_the_bin_width_reuse_the_nearest_bin() {
        let config = SpectrumConfig {
            scale: BandScale::Log,
            bands: 256,
            ..Default::default()
        };
        let analyzer = SpectrumAnalyzer::new(48000, config);
        assert!(
            analyzer
                .bands
                .iter()
                .all(|b| b.end > b.first && b.end <= 1025)
        );
    }
}
