//! All analyses together: the stream in, one `Report` per interval out.
//! Only the enabled analyses exist, so disabled ones cost nothing.

use super::level::{LevelMeter, LevelReading};
use super::loudness::{LoudnessMeter, LoudnessReading, LoudnessSample};
use super::onset::{OnsetDetector, OnsetReading};
use super::pitch::PitchDetector;
use super::spectrum::{SpectrumAnalyzer, SpectrumConfig};
use super::stft::Stft;
use super::vad::VoiceDetector;
use super::waveform::{WaveformEnvelope, WaveformReading};
use super::{History, Report, mix_to_mono};

/// Which analyses run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnalysisSet {
    pub level: bool,
    pub loudness: bool,
    pub spectrum: bool,
    pub waveform: bool,
    pub pitch: bool,
    pub onsets: bool,
    pub voice: bool,
}

impl AnalysisSet {
    pub const ALL: Self = Self {
        level: true,
        loudness: true,
        spectrum: true,
        waveform: true,
        pitch: true,
        onsets: true,
        voice: true,
    };
    pub const NONE: Self = Self {
        level: false,
        loudness: false,
        spectrum: false,
        waveform: false,
        pitch: false,
        onsets: false,
        voice: false,
    };

    fn needs_mono(&self) -> bool {
        self.spectrum || self.waveform || self.pitch || self.onsets || self.voice
    }
}

impl Default for AnalysisSet {
    fn default() -> Self {
        Self::ALL
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TapConfig {
    pub channels: usize,
    pub rate: u32,
    /// Frames per interval; sizes the waveform slices.
    pub interval_frames: u64,
    pub analyses: AnalysisSet,
    pub peak_ttl_ns: u64,
    pub peak_falloff_db_per_s: f64,
    pub spectrum: SpectrumConfig,
    pub waveform_points: usize,
    pub min_pitch_clarity: f32,
    /// BS.1770 weight per channel for loudness (0 for LFE, 1.41 for
    /// surrounds); `None` guesses from the channel count.
    pub loudness_weights: Option<Vec<f64>>,
}

impl TapConfig {
    pub fn new(channels: usize, rate: u32, interval_frames: u64) -> Self {
        Self {
            channels,
            rate,
            interval_frames,
            analyses: AnalysisSet::ALL,
            peak_ttl_ns: 300_000_000,
            peak_falloff_db_per_s: 10.0,
            spectrum: SpectrumConfig::default(),
            waveform_points: 64,
            min_pitch_clarity: 0.8,
            loudness_weights: None,
        }
    }
}

#[derive(Debug)]
pub struct Tap {
    config: TapConfig,
    level: Option<LevelMeter>,
    loudness: Option<LoudnessMeter>,
    history: Option<History>,
    spectrum: Option<SpectrumAnalyzer>,
    waveform: Option<WaveformEnvelope>,
    pitch: Option<PitchDetector>,
    stft: Option<Stft>,
    onsets: Option<OnsetDetector>,
    voice: Option<VoiceDetector>,
    hop_filled: usize,
    frames_in_interval: u64,
    report: Report,
}

impl Tap {
    pub fn new(config: TapConfig) -> Self {
        let TapConfig { channels, rate, .. } = config;
        let on = config.analyses;
        let level = on.level.then(|| {
            LevelMeter::new(
                channels,
                rate,
                config.peak_ttl_ns,
                config.peak_falloff_db_per_s,
            )
        });
        let loudness = on
            .loudness
            .then(|| LoudnessMeter::new(channels, rate, config.loudness_weights.as_deref()))
            .flatten();
        let spectrum = on
            .spectrum
            .then(|| SpectrumAnalyzer::new(rate, config.spectrum.clone()));
        let waveform = on.waveform.then(|| {
            WaveformEnvelope::new(config.waveform_points, config.interval_frames as usize)
        });
        let pitch = on
            .pitch
            .then(|| PitchDetector::new(rate, config.min_pitch_clarity));
        let stft = (on.onsets || on.voice).then(|| Stft::for_rate(rate));
        let onsets = stft
            .as_ref()
            .filter(|_| on.onsets)
            .map(|s| OnsetDetector::new(rate, s.size() / 2 + 1, s.size(), s.hop()));
        let voice = stft
            .as_ref()
            .filter(|_| on.voice)
            .map(|s| VoiceDetector::new(rate, s.size(), s.hop()));
        let history = on.needs_mono().then(|| {
            let longest = [
                spectrum.as_ref().map(|s| s.config().size),
                pitch.as_ref().map(PitchDetector::window_len),
                stft.as_ref().map(Stft::size),
            ]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(0);
            History::new(longest)
        });
        let report = Report {
            level: level
                .as_ref()
                .map(|_| LevelReading::with_channels(channels)),
            loudness: loudness.as_ref().map(|_| LoudnessReading {
                true_peak: Vec::with_capacity(channels),
                ..Default::default()
            }),
            spectrum: spectrum
                .as_ref()
                .map(|s| Vec::with_capacity(s.config().bands)),
            spectrum_range_hz: spectrum.as_ref().map_or((0.0, 0.0), |s| s.range_hz()),
            waveform: waveform.as_ref().map(|_| WaveformReading {
                min: Vec::with_capacity(config.waveform_points + 1),
                max: Vec::with_capacity(config.waveform_points + 1),
            }),
            pitch: pitch.as_ref().map(|_| Default::default()),
            onsets: onsets.as_ref().map(|_| OnsetReading {
                positions: Vec::with_capacity(64),
                bpm: None,
            }),
            onset_times_ns: Vec::with_capacity(64),
            voice: voice.as_ref().map(|_| Default::default()),
            ..Default::default()
        };
        Self {
            config,
            level,
            loudness,
            history,
            spectrum,
            waveform,
            pitch,
            stft,
            onsets,
            voice,
            hop_filled: 0,
            frames_in_interval: 0,
            report,
        }
    }

    pub fn config(&self) -> &TapConfig {
        &self.config
    }

    /// Frames taken since the last `read`.
    pub fn frames_in_interval(&self) -> u64 {
        self.frames_in_interval
    }

    /// Adds a block of interleaved frames. Blocks must not straddle an
    /// interval boundary; `frames_left_in_buffer` counts this block and the
    /// rest of its buffer (see `level`). `gap` marks GStreamer GAP data.
    pub fn process<S: LoudnessSample>(
        &mut self,
        block: &[S],
        frames_left_in_buffer: usize,
        gap: bool,
    ) {
        let channels = self.config.channels;
        if block.is_empty() {
            return;
        }
        if let Some(level) = &mut self.level {
            if gap {
                level.process_gap(frames_left_in_buffer);
            } else {
                level.process(block, frames_left_in_buffer);
            }
        }
        if let Some(loudness) = &mut self.loudness {
            loudness.process(block);
        }
        if self.history.is_some() {
            self.feed_mono(block);
        }
        self.frames_in_interval += (block.len() / channels) as u64;
    }

    fn feed_mono<S: LoudnessSample>(&mut self, block: &[S]) {
        let Self {
            config,
            history,
            waveform,
            stft,
            onsets,
            voice,
            hop_filled,
            ..
        } = self;
        let history = history.as_mut().expect("mono history");
        let channels = config.channels;
        let mut rest = block;
        while !rest.is_empty() {
            let mut wanted = rest.len() / channels;
            if let Some(stft) = stft {
                wanted = wanted.min(stft.hop() - *hop_filled);
            }
            let run = history.writable(wanted);
            let frames = run.len();
            mix_to_mono(&rest[..frames * channels], channels, run);
            if let Some(waveform) = waveform {
                waveform.push(run);
            }
            history.commit(frames);
            rest = &rest[frames * channels..];
            if let Some(stft) = stft {
                *hop_filled += frames;
                if *hop_filled == stft.hop() {
                    *hop_filled = 0;
                    let magnitudes = stft.analyze(history);
                    if let Some(onsets) = onsets {
                        onsets.push(magnitudes, history.written());
                    }
                    if let Some(voice) = voice {
                        voice.push(magnitudes);
                    }
                }
            }
        }
    }

    /// Closes the interval and returns its report. Onset positions count
    /// frames since the tap was created.
    pub fn read(&mut self) -> &mut Report {
        let frames = self.frames_in_interval;
        self.frames_in_interval = 0;
        let report = &mut self.report;
        report.frames = frames;
        report.duration_ns = super::level::frames_to_ns(frames, u64::from(self.config.rate.max(1)));
        if let (Some(meter), Some(out)) = (&mut self.level, &mut report.level) {
            meter.read(frames, out);
        }
        if let (Some(meter), Some(out)) = (&mut self.loudness, &mut report.loudness) {
            meter.read(out);
        }
        if let Some(history) = &self.history {
            if let (Some(analyzer), Some(out)) = (&mut self.spectrum, &mut report.spectrum) {
                analyzer.analyze(history, out);
            }
            if let (Some(detector), Some(out)) = (&mut self.pitch, &mut report.pitch) {
                *out = detector.analyze(history);
            }
        }
        if let (Some(envelope), Some(out)) = (&mut self.waveform, &mut report.waveform) {
            envelope.read(out);
        }
        if let (Some(detector), Some(out)) = (&mut self.onsets, &mut report.onsets) {
            detector.read(out);
        }
        if let (Some(detector), Some(out)) = (&mut self.voice, &mut report.voice) {
            *out = detector.read();
        }
        report.onset_times_ns.clear();
        report
    }

    /// Forgets the stream (after a flush or discontinuity).
    pub fn reset(&mut self) {
        if let Some(level) = &mut self.level {
            level.reset();
        }
        if let Some(loudness) = &mut self.loudness {
            loudness.reset();
        }
        if let Some(history) = &mut self.history {
            history.reset();
        }
        if let Some(spectrum) = &mut self.spectrum {
            spectrum.reset();
        }
        if let Some(waveform) = &mut self.waveform {
            waveform.reset();
        }
        if let Some(onsets) = &mut self.onsets {
            onsets.reset();
        }
        if let Some(voice) = &mut self.voice {
            voice.reset();
        }
        self.hop_filled = 0;
        self.frames_in_interval = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_on_reports_every_analysis() {
        let rate = 48000;
        let mut tap = Tap::new(TapConfig::new(2, rate, 4800));
        let tone: Vec<i16> = (0..4800)
            .flat_map(|i| {
                let v = (16384.0
                    * (2.0 * std::f64::consts::PI * 440.0 * i as f64 / rate as f64).sin())
                    as i16;
                [v, v]
            })
            .collect();
        for _ in 0..5 {
            for block in tone.chunks(2 * 1024) {
                tap.process(block, block.len() / 2, false);
            }
            assert_eq!(tap.frames_in_interval(), 4800);
            tap.read();
        }
        let report = tap.read().clone();
        assert_eq!(report.frames, 0);
        let mut tap = Tap::new(TapConfig::new(2, rate, 4800));
        for block in tone.chunks(2 * 1024) {
            tap.process(block, block.len() / 2, false);
        }
        let report = tap.read();
        let level = report.level.as_ref().unwrap();
        assert!((level.peak[0] + 6.02).abs() < 0.01, "{level:?}");
        let pitch = report.pitch.unwrap().frequency.unwrap();
        assert!((pitch - 440.0).abs() < 2.0, "{pitch}");
        assert_eq!(report.spectrum.as_ref().unwrap().len(), 128);
        assert_eq!(report.waveform.as_ref().unwrap().min.len(), 64);
        assert!(report.loudness.is_some() && report.onsets.is_some() && report.voice.is_some());
    }

    #[test]
    fn disabled_analyses_are_absent() {
        let mut config = TapConfig::new(1, 16000, 1600);
        config.analyses = AnalysisSet {
            level: true,
            ..AnalysisSet::NONE
        };
        let mut tap = Tap::new(config);
        assert!(tap.history.is_none() && tap.stft.is_none() && tap.loudness.is_none());
        tap.process(&[0.5f32; 1600], 1600, false);
        let report = tap.read();
        assert!(report.level.is_some());
        assert!(report.spectrum.is_none() && report.pitch.is_none() && report.voice.is_none());
    }
}
