//! Onsets by spectral flux, and tempo from the periodicity of the flux.
//!
//! Flux is the mean rise of log-compressed magnitudes between successive STFT
//! frames. A frame is an onset when its flux is the local maximum of a short
//! neighbourhood and stands clear of the recent average (Böck & Widmer's
//! peak picking). Tempo is the lag, between 60 and 200 BPM, at which the last
//! eight seconds of flux best correlate with themselves.

/// Compression: ln(1 + GAMMA · magnitude) makes flux follow relative rises.
const GAMMA: f32 = 1000.0;
/// Hops before and after a candidate that it must dominate.
const PRE_MAX: usize = 3;
const POST_MAX: usize = 2;
/// Hops before the candidate averaged for the adaptive threshold.
const PRE_AVG: usize = 10;
/// How far above the neighbourhood average an onset must rise.
const DELTA: f32 = 0.08;
const MIN_GAP_SECONDS: f64 = 0.05;
const TEMPO_WINDOW_SECONDS: f64 = 8.0;
const MIN_TEMPO_HISTORY_SECONDS: f64 = 2.5;
const MIN_BPM: f64 = 60.0;
const MAX_BPM: f64 = 200.0;
/// Estimating tempo every reading is wasteful: it moves slowly.
const TEMPO_UPDATE_SECONDS: f64 = 0.25;
const MAX_ONSETS_PER_READING: usize = 64;
/// Without this many onsets in the tempo window there is no beat to measure.
const MIN_ONSETS_FOR_TEMPO: usize = 4;
/// Preference for tempi near 120 BPM (log-Gaussian, width in octaves),
/// which settles the ambiguity between a tempo and its half or double.
const TEMPO_PRIOR_OCTAVES: f64 = 1.0;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct OnsetReading {
    /// Stream positions (in frames since the tap started) of the onsets found
    /// since the previous reading.
    pub positions: Vec<u64>,
    /// Tempo in beats per minute, once there is enough regular history.
    pub bpm: Option<f32>,
}

#[derive(Debug, Clone)]
pub struct OnsetDetector {
    hop_seconds: f64,
    window_frames: u64,
    /// Compressed magnitudes of the previous frame; zeros before the first,
    /// so sound at the very start of a stream is an onset.
    previous: Vec<f32>,
    /// Recent flux and the frame position it belongs to, newest last.
    /// Starts as silence, so the first frames can be onsets too.
    recent: [(f32, u64); PRE_AVG + POST_MAX + 1],
    last_onset: Option<u64>,
    min_gap_frames: u64,
    found: Vec<u64>,
    envelope: Vec<f32>,
    envelope_next: usize,
    envelope_len: usize,
    ordered: Vec<f32>,
    smoothed: Vec<f32>,
    /// Positions of the latest onsets, a ring.
    recent_onsets: [u64; MIN_ONSETS_FOR_TEMPO],
    onset_count: usize,
    tempo_window_frames: u64,
    latest_position: u64,
    hops_since_tempo: usize,
    bpm: Option<f32>,
}

impl OnsetDetector {
    /// `bins` magnitudes per frame, one frame every `hop` of `window` samples.
    pub fn new(rate: u32, bins: usize, window: usize, hop: usize) -> Self {
        let hop_seconds = hop as f64 / rate as f64;
        let envelope_capacity = (TEMPO_WINDOW_SECONDS / hop_seconds).ceil() as usize;
        Self {
            hop_seconds,
            window_frames: window as u64,
            previous: vec![0.0; bins],
            recent: [(0.0, 0); PRE_AVG + POST_MAX + 1],
            last_onset: None,
            min_gap_frames: (MIN_GAP_SECONDS * rate as f64) as u64,
            found: Vec::with_capacity(MAX_ONSETS_PER_READING),
            envelope: vec![0.0; envelope_capacity],
            envelope_next: 0,
            envelope_len: 0,
            ordered: vec![0.0; envelope_capacity],
            smoothed: vec![0.0; envelope_capacity],
            recent_onsets: [0; MIN_ONSETS_FOR_TEMPO],
            onset_count: 0,
            tempo_window_frames: (TEMPO_WINDOW_SECONDS * rate as f64) as u64,
            latest_position: 0,
            hops_since_tempo: usize::MAX / 2,
            bpm: None,
        }
    }

    /// Takes one STFT frame whose window ends at stream frame `end_position`.
    pub fn push(&mut self, magnitudes: &[f32], end_position: u64) {
        let mut rise = 0.0f32;
        for (prev, &m) in self.previous.iter_mut().zip(magnitudes) {
            let compressed = super::fast_ln(1.0 + GAMMA * m);
            rise += (compressed - *prev).max(0.0);
            *prev = compressed;
        }
        let flux = rise / magnitudes.len() as f32;

        self.envelope[self.envelope_next] = flux;
        self.envelope_next = (self.envelope_next + 1) % self.envelope.len();
        self.envelope_len = (self.envelope_len + 1).min(self.envelope.len());
        self.hops_since_tempo = self.hops_since_tempo.saturating_add(1);

        self.latest_position = end_position;
        let centre = end_position.saturating_sub(self.window_frames / 2);
        self.recent.copy_within(1.., 0);
        *self.recent.last_mut().unwrap() = (flux, centre);
        self.pick_peak();
    }

    fn pick_peak(&mut self) {
        let candidate = PRE_AVG;
        let (flux, position) = self.recent[candidate];
        let is_local_max = self.recent[candidate - PRE_MAX..]
            .iter()
            .all(|&(other, _)| other <= flux);
        let average = self.recent.iter().map(|r| r.0).sum::<f32>() / self.recent.len() as f32;
        let far_enough = self
            .last_onset
            .is_none_or(|last| position >= last + self.min_gap_frames);
        if is_local_max && flux >= average + DELTA && far_enough {
            self.last_onset = Some(position);
            self.recent_onsets[self.onset_count % MIN_ONSETS_FOR_TEMPO] = position;
            self.onset_count += 1;
            if self.found.len() < MAX_ONSETS_PER_READING {
                self.found.push(position);
            }
        }
    }

    pub fn read(&mut self, out: &mut OnsetReading) {
        out.positions.clear();
        out.positions.extend_from_slice(&self.found);
        self.found.clear();
        if self.hops_since_tempo as f64 * self.hop_seconds >= TEMPO_UPDATE_SECONDS {
            self.bpm = self.estimate_tempo();
            self.hops_since_tempo = 0;
        }
        out.bpm = self.bpm;
    }

    fn estimate_tempo(&mut self) -> Option<f32> {
        let n = self.envelope_len;
        if (n as f64) * self.hop_seconds < MIN_TEMPO_HISTORY_SECONDS {
            return None;
        }
        let window_start = self
            .latest_position
            .saturating_sub(self.tempo_window_frames);
        if self.onset_count < MIN_ONSETS_FOR_TEMPO
            || self.recent_onsets.iter().any(|&p| p < window_start)
        {
            return None;
        }
        let start = (self.envelope_next + self.envelope.len() - n) % self.envelope.len();
        for (i, slot) in self.ordered[..n].iter_mut().enumerate() {
            *slot = self.envelope[(start + i) % self.envelope.len()];
        }
        // Widen each flux spike over a few hops so beats whose period falls
        // between two lags still line up.
        let raw = &self.ordered[..n];
        for (i, out) in self.smoothed[..n].iter_mut().enumerate() {
            let at = |d: isize| raw[(i as isize + d).clamp(0, n as isize - 1) as usize];
            *out = (at(-2) + 2.0 * at(-1) + 3.0 * at(0) + 2.0 * at(1) + at(2)) / 9.0;
        }
        let series = &mut self.smoothed[..n];
        let mean = series.iter().sum::<f32>() / n as f32;
        series.iter_mut().for_each(|v| *v -= mean);
        let energy: f32 = series.iter().map(|v| v * v).sum();
        if energy <= f32::EPSILON {
            return None;
        }

        let min_lag = (60.0 / (MAX_BPM * self.hop_seconds)).floor() as usize;
        let max_lag = ((60.0 / (MIN_BPM * self.hop_seconds)).ceil() as usize).min(n / 2);
        let correlation = |lag: usize| -> f32 {
            series[..n - lag]
                .iter()
                .zip(&series[lag..])
                .map(|(a, b)| a * b)
                .sum::<f32>()
                / energy
        };
        let hop_seconds = self.hop_seconds;
        let prior = |lag: usize| -> f32 {
            let octaves = (60.0 / (lag as f64 * hop_seconds) / 120.0).log2() / TEMPO_PRIOR_OCTAVES;
            (-0.5 * octaves * octaves).exp() as f32
        };
        let (mut best_lag, mut best, mut best_score) = (0, 0.0f32, 0.0f32);
        for lag in min_lag.max(1)..=max_lag {
            let c = correlation(lag);
            if c * prior(lag) > best_score {
                best_lag = lag;
                best = c;
                best_score = c * prior(lag);
            }
        }
        // A beat must repeat clearly: a weak best lag is noise, not a tempo.
        if best_lag == 0 || best < 0.2 {
            return None;
        }
        let (a, b, c) = (correlation(best_lag - 1), best, correlation(best_lag + 1));
        let curvature = a - 2.0 * b + c;
        let shift = if curvature.abs() > f32::EPSILON {
            (0.5 * (a - c) / curvature).clamp(-0.5, 0.5)
        } else {
            0.0
        };
        Some((60.0 / ((best_lag as f64 + shift as f64) * self.hop_seconds)) as f32)
    }

    pub fn reset(&mut self) {
        self.previous.fill(0.0);
        self.recent = [(0.0, 0); PRE_AVG + POST_MAX + 1];
        self.last_onset = None;
        self.found.clear();
        self.envelope_len = 0;
        self.envelope_next = 0;
        self.hops_since_tempo = usize::MAX / 2;
        self.bpm = None;
        self.onset_count = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::super::History;
    use super::super::stft::Stft;
    use super::*;

    /// Runs the detector over `seconds` of a signal, reading every 100 ms.
    fn run(rate: u32, seconds: f64, signal: impl Fn(usize) -> f32) -> (Vec<u64>, Option<f32>) {
        let mut stft = Stft::for_rate(rate);
        let mut detector = OnsetDetector::new(rate, stft.size() / 2 + 1, stft.size(), stft.hop());
        let mut history = History::new(4 * stft.size());
        let total = (seconds * rate as f64) as usize;
        let mut onsets = Vec::new();
        let mut reading = OnsetReading::default();
        let read_every = rate as usize / 10 / stft.hop() * stft.hop();
        let mut position = 0;
        while position + stft.hop() <= total {
            let run = history.writable(stft.hop());
            let n = run.len();
            for (i, v) in run.iter_mut().enumerate() {
                *v = signal(position + i);
            }
            history.commit(n);
            position += n;
            if position % stft.hop() == 0 {
                let mags = stft.analyze(&history);
                detector.push(mags, position as u64);
            }
            if position % read_every == 0 {
                detector.read(&mut reading);
                onsets.extend_from_slice(&reading.positions);
            }
        }
        detector.read(&mut reading);
        onsets.extend_from_slice(&reading.positions);
        (onsets, reading.bpm)
    }

    fn click_train(rate: u32, period_seconds: f64) -> impl Fn(usize) -> f32 {
        let period = (period_seconds * rate as f64) as usize;
        move |i| {
            let k = i % period;
            // A 5 ms decaying 2 kHz burst: a drum-machine click.
            if k < rate as usize / 200 {
                let t = k as f32 / rate as f32;
                0.5 * (-t * 800.0).exp() * (2.0 * std::f32::consts::PI * 2000.0 * t).sin()
            } else {
                0.0
            }
        }
    }

    #[test]
    fn a_120_bpm_click_train_has_onsets_every_half_second() {
        let rate = 48000;
        let (onsets, bpm) = run(rate, 10.0, click_train(rate, 0.5));
        assert!((19..=21).contains(&onsets.len()), "{onsets:?}");
        for pair in onsets.windows(2) {
            let gap = (pair[1] - pair[0]) as f64 / rate as f64;
            assert!((gap - 0.5).abs() < 0.015, "gap {gap} in {onsets:?}");
        }
        let bpm = bpm.expect("tempo");
        assert!((bpm - 120.0).abs() <= 2.0, "{bpm}");
    }

    #[test]
    fn other_tempi_are_found() {
        for (rate, bpm_wanted) in [(44100, 90.0), (48000, 150.0)] {
            let (_, bpm) = run(rate, 10.0, click_train(rate, 60.0 / bpm_wanted));
            let bpm = bpm.expect("tempo");
            assert!(
                (bpm as f64 - bpm_wanted).abs() <= 2.0,
                "{bpm} vs {bpm_wanted}"
            );
        }
    }

    #[test]
    fn a_steady_tone_has_no_onsets_after_its_start() {
        let rate = 48000;
        let (onsets, bpm) = run(rate, 4.0, |i| {
            0.3 * (2.0 * std::f32::consts::PI * 440.0 * i as f32 / rate as f32).sin()
        });
        assert!(onsets.len() <= 1, "{onsets:?}");
        assert_eq!(bpm, None);
    }
}
