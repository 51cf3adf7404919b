//! Analysis windows for the FFT-based measurements.

use std::f64::consts::PI;

/// The window applied before an FFT. Blackman is the default because it is
/// what the Web Audio `AnalyserNode` (and so Tone.js `FFT`) uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WindowKind {
    #[default]
    Blackman,
    Hann,
    Hamming,
    Rectangular,
}

impl WindowKind {
    /// Fills `out` with the window, symmetric over `out.len()` points in the
    /// periodic form used for spectral analysis.
    pub fn fill(self, out: &mut [f32]) {
        let n = out.len() as f64;
        for (i, w) in out.iter_mut().enumerate() {
            let x = 2.0 * PI * i as f64 / n;
            *w = match self {
                // Exact Blackman coefficients as in the Web Audio specification.
                WindowKind::Blackman => 0.42 - 0.5 * x.cos() + 0.08 * (2.0 * x).cos(),
                WindowKind::Hann => 0.5 - 0.5 * x.cos(),
                WindowKind::Hamming => 0.54 - 0.46 * x.cos(),
                WindowKind::Rectangular => 1.0,
            } as f32;
        }
    }

    pub fn build(self, len: usize) -> Vec<f32> {
        let mut window = vec![0.0; len];
        self.fill(&mut window);
        window
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_peak_in_the_middle_and_vanish_at_the_start() {
        for kind in [WindowKind::Blackman, WindowKind::Hann] {
            let w = kind.build(64);
            assert!(w[0].abs() < 1e-6, "{kind:?}");
            assert!((w[32] - 1.0).abs() < 1e-6, "{kind:?}");
        }
        assert!((WindowKind::Hamming.build(8)[0] - 0.08).abs() < 1e-6);
        assert!(WindowKind::Rectangular.build(8).iter().all(|&v| v == 1.0));
    }
}
