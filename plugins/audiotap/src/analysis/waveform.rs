//! A min/max envelope of the mono mix for drawing a waveform: each point
//! holds the lowest and highest sample of an equal slice of the interval.

#[derive(Debug, Clone, Default, PartialEq)]
pub struct WaveformReading {
    pub min: Vec<f32>,
    pub max: Vec<f32>,
}

#[derive(Debug, Clone)]
pub struct WaveformEnvelope {
    bucket_frames: usize,
    filled: usize,
    low: f32,
    high: f32,
    points: WaveformReading,
    capacity: usize,
}

impl WaveformEnvelope {
    /// `points` per interval of `interval_frames`.
    pub fn new(points: usize, interval_frames: usize) -> Self {
        let points = points.max(1);
        let capacity = points + 1;
        Self {
            bucket_frames: interval_frames.div_ceil(points).max(1),
            filled: 0,
            low: f32::INFINITY,
            high: f32::NEG_INFINITY,
            points: WaveformReading {
                min: Vec::with_capacity(capacity),
                max: Vec::with_capacity(capacity),
            },
            capacity,
        }
    }

    pub fn push(&mut self, mono: &[f32]) {
        let mut rest = mono;
        while !rest.is_empty() {
            let take = (self.bucket_frames - self.filled).min(rest.len());
            let (low, high) = min_max(&rest[..take]);
            self.low = self.low.min(low);
            self.high = self.high.max(high);
            self.filled += take;
            rest = &rest[take..];
            if self.filled == self.bucket_frames {
                self.close_bucket();
            }
        }
    }

    fn close_bucket(&mut self) {
        if self.points.min.len() < self.capacity {
            self.points.min.push(self.low);
            self.points.max.push(self.high);
        }
        self.filled = 0;
        self.low = f32::INFINITY;
        self.high = f32::NEG_INFINITY;
    }

    /// Points of the interval, a partly filled last one included.
    pub fn read(&mut self, out: &mut WaveformReading) {
        if self.filled > 0 {
            self.close_bucket();
        }
        out.min.clear();
        out.max.clear();
        out.min.extend_from_slice(&self.points.min);
        out.max.extend_from_slice(&self.points.max);
        self.points.min.clear();
        self.points.max.clear();
    }

    pub fn reset(&mut self) {
        self.filled = 0;
        self.low = f32::INFINITY;
        self.high = f32::NEG_INFINITY;
        self.points.min.clear();
        self.points.max.clear();
    }
}

/// Eight lanes so the loop compiles to vector min/max.
fn min_max(values: &[f32]) -> (f32, f32) {
    let mut low = [f32::INFINITY; 8];
    let mut high = [f32::NEG_INFINITY; 8];
    let chunks = values.chunks_exact(8);
    let tail = chunks.remainder();
    for chunk in chunks {
        for lane in 0..8 {
            low[lane] = if chunk[lane] < low[lane] {
                chunk[lane]
            } else {
                low[lane]
            };
            high[lane] = if chunk[lane] > high[lane] {
                chunk[lane]
            } else {
                high[lane]
            };
        }
    }
    let mut lo = low.iter().cloned().fold(f32::INFINITY, f32::min);
    let mut hi = high.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    for &v in tail {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    (lo, hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_follows_each_slice() {
        let mut envelope = WaveformEnvelope::new(4, 400);
        let ramp: Vec<f32> = (0..400).map(|i| i as f32 / 400.0).collect();
        for chunk in ramp.chunks(37) {
            envelope.push(chunk);
        }
        let mut reading = WaveformReading::default();
        envelope.read(&mut reading);
        assert_eq!(reading.min, [0.0, 0.25, 0.5, 0.75]);
        assert_eq!(
            reading.max,
            [99.0 / 400.0, 199.0 / 400.0, 299.0 / 400.0, 399.0 / 400.0]
        );
    }

    #[test]
    fn a_short_interval_yields_a_partial_last_point() {
        let mut envelope = WaveformEnvelope::new(2, 100);
        envelope.push(&[-0.5; 60]);
        let mut reading = WaveformReading::default();
        envelope.read(&mut reading);
        assert_eq!(reading.min, [-0.5, -0.5]);
        envelope.read(&mut reading);
        assert!(reading.min.is_empty());
    }
}
