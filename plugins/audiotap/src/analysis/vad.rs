//! Voice activity: is someone speaking?
//!
//! Per STFT frame, the energy in the speech band (300–3400 Hz) is compared
//! with a noise floor that follows the quietest recent frames: steady noise
//! becomes the floor and so never counts as speech. Voiced speech is also
//! harmonic, so its band is far from spectrally flat, unlike noise. A short
//! hangover bridges the gaps between syllables.

const SPEECH_LOW_HZ: f32 = 300.0;
const SPEECH_HIGH_HZ: f32 = 3400.0;
/// Speech must stand this far above the noise floor...
const MARGIN_DB: f32 = 9.0;
/// ...and above this absolute level.
const MIN_LEVEL_DB: f32 = -55.0;
/// Geometric over arithmetic mean of band power; white noise sits near 0.56.
const MAX_FLATNESS: f32 = 0.35;
/// How fast the floor may climb towards louder sound (down is immediate).
const FLOOR_RISE_DB_PER_SECOND: f32 = 3.0;
const FLOOR_MIN_DB: f32 = -90.0;
const HANGOVER_SECONDS: f32 = 0.3;
/// Band power is smoothed over about this long before it is judged, so the
/// random frame-to-frame dips of noise neither drag the floor down nor let
/// the next random peak pass for speech.
const SMOOTHING_SECONDS: f32 = 0.06;

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct VoiceReading {
    /// Speech is going on at the end of the interval.
    pub active: bool,
    /// Fraction of the interval's frames judged speech (0..1).
    pub activity: f32,
}

#[derive(Debug, Clone)]
pub struct VoiceDetector {
    band: std::ops::Range<usize>,
    smoothed_power: Option<f32>,
    smoothing: f32,
    floor_db: Option<f32>,
    floor_rise_per_hop: f32,
    hangover_hops: u32,
    hops_since_speech: u32,
    active_hops: u32,
    hops: u32,
}

impl VoiceDetector {
    pub fn new(rate: u32, window: usize, hop: usize) -> Self {
        let bin_hz = rate as f32 / window as f32;
        let bins = window / 2 + 1;
        let first = ((SPEECH_LOW_HZ / bin_hz).round() as usize).min(bins - 1);
        let end = ((SPEECH_HIGH_HZ / bin_hz).round() as usize + 1).clamp(first + 1, bins);
        let hop_seconds = hop as f32 / rate as f32;
        Self {
            band: first..end,
            smoothed_power: None,
            smoothing: (-hop_seconds / SMOOTHING_SECONDS).exp(),
            floor_db: None,
            floor_rise_per_hop: FLOOR_RISE_DB_PER_SECOND * hop_seconds,
            hangover_hops: (HANGOVER_SECONDS / hop_seconds).ceil() as u32,
            hops_since_speech: u32::MAX,
            active_hops: 0,
            hops: 0,
        }
    }

    pub fn push(&mut self, magnitudes: &[f32]) {
        let band = &magnitudes[self.band.clone()];
        let mut power_sum = 0.0f32;
        let mut log_sum = 0.0f32;
        for &m in band {
            let p = m * m + 1e-20;
            power_sum += p;
            log_sum += super::fast_ln(p);
        }
        let n = band.len() as f32;
        let smoothed = match self.smoothed_power {
            Some(previous) => self.smoothing * previous + (1.0 - self.smoothing) * power_sum,
            None => power_sum,
        };
        self.smoothed_power = Some(smoothed);
        let level_db = 10.0 * smoothed.log10();
        let flatness = (log_sum / n).exp() / (power_sum / n);

        let floor = match self.floor_db {
            None => level_db,
            Some(floor) if level_db < floor => level_db,
            Some(floor) => (floor + self.floor_rise_per_hop).min(level_db),
        }
        .max(FLOOR_MIN_DB);
        self.floor_db = Some(floor);

        let speech =
            level_db > floor + MARGIN_DB && level_db > MIN_LEVEL_DB && flatness < MAX_FLATNESS;
        if speech {
            self.hops_since_speech = 0;
        } else {
            self.hops_since_speech = self.hops_since_speech.saturating_add(1);
        }
        self.hops += 1;
        if self.is_active() {
            self.active_hops += 1;
        }
    }

    fn is_active(&self) -> bool {
        self.hops_since_speech <= self.hangover_hops
    }

    pub fn read(&mut self) -> VoiceReading {
        let active = self.is_active();
        let activity = if self.hops > 0 {
            self.active_hops as f32 / self.hops as f32
        } else if active {
            1.0
        } else {
            0.0
        };
        self.hops = 0;
        self.active_hops = 0;
        VoiceReading { active, activity }
    }

    pub fn reset(&mut self) {
        self.smoothed_power = None;
        self.floor_db = None;
        self.hops_since_speech = u32::MAX;
        self.hops = 0;
        self.active_hops = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::super::History;
    use super::super::stft::Stft;
    use super::*;

    /// Fraction of 100 ms readings flagged active over a signal.
    fn active_readings(rate: u32, seconds: f64, signal: impl Fn(usize) -> f32) -> Vec<bool> {
        let mut stft = Stft::for_rate(rate);
        let mut vad = VoiceDetector::new(rate, stft.size(), stft.hop());
        let mut history = History::new(stft.size());
        let hops_per_reading = (rate as usize / 10) / stft.hop();
        let total_hops = (seconds * rate as f64) as usize / stft.hop();
        let mut readings = Vec::new();
        for hop in 0..total_hops {
            let run = history.writable(stft.hop());
            for (i, v) in run.iter_mut().enumerate() {
                *v = signal(hop * stft.hop() + i);
            }
            history.commit(stft.hop());
            vad.push(stft.analyze(&history));
            if (hop + 1) % hops_per_reading == 0 {
                readings.push(vad.read().active);
            }
        }
        readings
    }

    fn noise(amplitude: f32) -> impl Fn(usize) -> f32 {
        move |i| {
            let mut x = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            x ^= x >> 29;
            x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
            x ^= x >> 32;
            amplitude * ((x >> 40) as f32 / (1u64 << 23) as f32 - 1.0)
        }
    }

    #[test]
    fn silence_and_steady_noise_are_not_speech() {
        assert!(active_readings(16000, 3.0, |_| 0.0).iter().all(|a| !a));
        assert!(active_readings(48000, 3.0, noise(0.3)).iter().all(|a| !a));
        assert!(active_readings(48000, 3.0, noise(0.003)).iter().all(|a| !a));
    }

    #[test]
    fn syllable_like_harmonic_bursts_are_speech() {
        // A 140 Hz buzz with formant-ish harmonics, 4 syllables a second,
        // over faint noise.
        let rate = 16000;
        let background = noise(0.001);
        let readings = active_readings(rate, 3.0, move |i| {
            let t = i as f32 / rate as f32;
            let envelope = (std::f32::consts::PI * 4.0 * t).sin().max(0.0);
            let w = 2.0 * std::f32::consts::PI * 140.0 * t;
            let voiced: f32 = (1..20).map(|h| (h as f32 * w).sin() / h as f32).sum();
            0.2 * envelope * voiced + background(i)
        });
        let active = readings.iter().filter(|&&a| a).count();
        assert!(active * 10 >= readings.len() * 8, "{readings:?}");
    }
}
