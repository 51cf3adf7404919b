//! Frame timing for live sources: which frame is due and waiting on the
//! pipeline clock until it is, interruptible by `unlock()`.

use std::sync::Mutex;

use gst::prelude::*;

/// Frame `n` starts at `n * den / num` seconds of running time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRate {
    pub num: u64,
    pub den: u64,
}

impl FrameRate {
    pub fn new(fraction: gst::Fraction) -> Option<Self> {
        let (num, den) = (fraction.numer(), fraction.denom());
        (num > 0 && den > 0).then_some(Self {
            num: num as u64,
            den: den as u64,
        })
    }

    /// Computed from the frame number every time so that timestamps never
    /// drift, whatever the rounding of one frame's duration.
    pub fn frame_start(&self, frame: u64) -> gst::ClockTime {
        gst::ClockTime::from_nseconds(
            (frame as u128 * self.den as u128 * 1_000_000_000 / self.num as u128) as u64,
        )
    }

    pub fn frame_duration(&self, frame: u64) -> gst::ClockTime {
        self.frame_start(frame + 1) - self.frame_start(frame)
    }

    /// The frame whose interval contains `running_time`.
    pub fn frame_at(&self, running_time: gst::ClockTime) -> u64 {
        (running_time.nseconds() as u128 * self.num as u128 / (self.den as u128 * 1_000_000_000))
            as u64
    }
}

/// Numbers the frames of a live source and sleeps until each is due.
#[derive(Default)]
pub struct Ticker {
    waiting: Mutex<Waiting>,
}

#[derive(Default)]
struct Waiting {
    clock_id: Option<gst::SingleShotClockId>,
    flushing: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Tick {
    /// The frame is due now.
    Due,
    /// `unlock()` was called: the element is stopping or pausing.
    Flushing,
}

impl Ticker {
    /// The frame to produce after `previous`: the next one, or a later one
    /// when the source fell behind (late frames are skipped, not bunched).
    pub fn next_frame(
        element: &impl IsA<gst::Element>,
        rate: FrameRate,
        previous: Option<u64>,
    ) -> u64 {
        let now = running_time(element).unwrap_or(gst::ClockTime::ZERO);
        let current = rate.frame_at(now);
        match previous {
            None => current,
            Some(previous) => (previous + 1).max(current),
        }
    }

    /// Sleeps until `running_time` on the element's clock.
    pub fn wait_until(
        &self,
        element: &impl IsA<gst::Element>,
        running_time: gst::ClockTime,
    ) -> Tick {
        let (Some(clock), Some(base_time)) = (element.clock(), element.base_time()) else {
            return Tick::Due;
        };
        let id = clock.new_single_shot_id(base_time + running_time);
        {
            let mut waiting = self.waiting.lock().unwrap();
            if waiting.flushing {
                return Tick::Flushing;
            }
            waiting.clock_id = Some(id.clone());
        }
        let (result, _jitter) = id.wait();
        self.waiting.lock().unwrap().clock_id = None;
        match result {
            Err(gst::ClockError::Unscheduled) => Tick::Flushing,
            _ => Tick::Due,
        }
    }

    pub fn unlock(&self) {
        let mut waiting = self.waiting.lock().unwrap();
        waiting.flushing = true;
        if let Some(id) = waiting.clock_id.take() {
            id.unschedule();
        }
    }

    pub fn unlock_stop(&self) {
        self.waiting.lock().unwrap().flushing = false;
    }
}

pub fn running_time(element: &impl IsA<gst::Element>) -> Option<gst::ClockTime> {
    let clock = element.clock()?;
    let base_time = element.base_time()?;
    clock.time().checked_sub(base_time)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ntsc_frame_times_do_not_drift() {
        let rate = FrameRate {
            num: 30000,
            den: 1001,
        };
        assert_eq!(rate.frame_start(0), gst::ClockTime::ZERO);
        assert_eq!(rate.frame_start(30000).nseconds(), 1001 * 1_000_000_000);
        let frame = 12345;
        assert_eq!(rate.frame_at(rate.frame_start(frame)), frame);
    }

    #[test]
    fn durations_add_up_to_a_second() {
        let rate = FrameRate { num: 30, den: 1 };
        let total: u64 = (0..30).map(|n| rate.frame_duration(n).nseconds()).sum();
        assert_eq!(total, 1_000_000_000);
    }
}
