//! Freezes of a video track, measured from the wall-clock arrival of its
//! decoded frames: what a viewer sees as a picture that stops.
//!
//! **Definition** (W3C webrtc-stats `freezeCount` / `totalFreezesDuration`,
//! computed as libwebrtc's `VideoQualityObserver` does): the interval
//! between two consecutive decoded frames is a *freeze* when it is at
//! least `max(3 × avg, avg + 150 ms)`, where `avg` is the mean of the 30
//! most recent intervals, this one included; no interval is judged before
//! 5 have been seen. The whole interval counts as frozen time (the picture
//! shown during it stood still for all of it), so at 30 fps a gap of
//! 200 ms or more is a freeze of that length, while the ordinary jitter
//! of a few tens of milliseconds never is.
//!
//! Two additions, for a test that measures a window of a longer run:
//! - an interval that straddles an end of the window counts for its part
//!   inside the window (the average still sees all of it);
//! - the time from the last frame to the window's end counts as an
//!   interval too (a picture that stopped for good is frozen, even though
//!   no frame came to close the gap), and a window without a single frame
//!   before and in it is frozen throughout.
//!
//! The functions here are pure (arrival times in, figures out) so that the
//! definition is unit-tested on synthetic timestamps; [`monotonic_now`]
//! gives times comparable across processes (CLOCK_MONOTONIC is one clock
//! for the whole machine, namespaces included), so a viewer in another
//! process can report its arrivals and the test can cut the window.

use std::collections::VecDeque;
use std::time::Duration;

/// Intervals in the running average (libwebrtc's
/// `kAvgInterframeDelaysWindowSizeFrames`).
pub const AVERAGE_OVER: usize = 30;
/// Intervals seen before any can be a freeze (`kMinFrameSamplesToDetectFreeze`).
pub const MIN_INTERVALS: usize = 5;
/// The least a freeze exceeds the average by (`kMinIncreaseForFreezeMs`).
pub const MIN_INCREASE: Duration = Duration::from_millis(150);

/// What a window of a video track looked like.
#[derive(Debug, Clone, PartialEq)]
pub struct FreezeReport {
    /// Length of the window measured.
    pub window: Duration,
    /// Frames that arrived in it.
    pub frames: usize,
    /// The longest interval between frames overlapping the window, in full
    /// (the open one from the last frame to the window's end included).
    pub longest_gap: Duration,
    /// Intervals that were freezes.
    pub freeze_count: usize,
    /// Frozen time inside the window.
    pub frozen: Duration,
    /// Each freeze: when it began (after the window opened, 0 for one
    /// already under way) and how long it lasted, in full.
    pub freezes: Vec<(Duration, Duration)>,
}

impl FreezeReport {
    /// Frozen time scaled to a minute of watching (the unit).
    pub fn frozen_per_minute(&self) -> Duration {
        if self.window.is_zero() {
            return Duration::ZERO;
        }
        self.frozen.mul_f64(60.0 / self.window.as_secs_f64())
    }

    pub fn frames_per_second(&self) -> f64 {
        if self.window.is_zero() {
            return 0.0;
        }
        self.frames as f64 / self.window.as_secs_f64()
    }
}

impl std::fmt::Display for FreezeReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} frames in {:.1} s ({:.1} fps), longest gap {} ms, {} freezes, frozen {} ms \
             ({} ms per minute)",
            self.frames,
            self.window.as_secs_f64(),
            self.frames_per_second(),
            self.longest_gap.as_millis(),
            self.freeze_count,
            self.frozen.as_millis(),
            self.frozen_per_minute().as_millis()
        )?;
        if !self.freezes.is_empty() {
            let list: Vec<String> = self
                .freezes
                .iter()
                .map(|(at, length)| format!("{:.1} s: {} ms", at.as_secs_f64(), length.as_millis()))
                .collect();
            write!(f, " [{}]", list.join(", "))?;
        }
        Ok(())
    }
}

/// The running average of the definition.
#[derive(Debug, Default)]
struct IntervalAverage {
    recent: VecDeque<Duration>,
    seen: usize,
}

impl IntervalAverage {
    /// Adds `interval` and tells whether it is a freeze.
    fn is_freeze(&mut self, interval: Duration) -> bool {
        self.recent.push_back(interval);
        if self.recent.len() > AVERAGE_OVER {
            self.recent.pop_front();
        }
        self.seen += 1;
        self.judge(interval)
    }

    /// Whether `interval` would be a freeze, without adding it.
    fn would_be_freeze(&self, interval: Duration) -> bool {
        let mut probe = IntervalAverage {
            recent: self.recent.clone(),
            seen: self.seen,
        };
        probe.is_freeze(interval)
    }

    fn judge(&self, interval: Duration) -> bool {
        if self.seen < MIN_INTERVALS {
            return false;
        }
        let average = self.recent.iter().sum::<Duration>() / self.recent.len() as u32;
        interval >= (average * 3).max(average + MIN_INCREASE)
    }
}

/// The part of `[start, end]` inside `[from, to]`.
fn overlap(start: Duration, end: Duration, from: Duration, to: Duration) -> Duration {
    end.min(to).saturating_sub(start.max(from))
}

/// Freezes in the window `[from, to]` of a track whose decoded frames
/// arrived at `arrivals` (ascending, on any clock; earlier frames feed the
/// running average, later ones are ignored).
pub fn analyse(arrivals: &[Duration], from: Duration, to: Duration) -> FreezeReport {
    assert!(from <= to, "window from {from:?} to {to:?}");
    debug_assert!(arrivals.windows(2).all(|pair| pair[0] <= pair[1]));
    let mut report = FreezeReport {
        window: to - from,
        frames: arrivals
            .iter()
            .filter(|at| **at >= from && **at <= to)
            .count(),
        longest_gap: Duration::ZERO,
        freeze_count: 0,
        frozen: Duration::ZERO,
        freezes: Vec::new(),
    };
    let mut average = IntervalAverage::default();
    let mut frames_before_end = arrivals.iter().take_while(|at| **at <= to);
    let Some(mut previous) = frames_before_end.next().copied() else {
        // Nothing ever shown: frozen throughout.
        report.longest_gap = report.window;
        report.frozen = report.window;
        report.freeze_count = usize::from(!report.window.is_zero());
        report.freezes.push((Duration::ZERO, report.window));
        return report;
    };
    if previous > from {
        // The picture had not started when the window opened.
        report.longest_gap = previous - from;
        report.frozen = previous - from;
        report.freeze_count = 1;
        report.freezes.push((Duration::ZERO, previous - from));
    }
    for &at in frames_before_end {
        let interval = at - previous;
        let freeze = average.is_freeze(interval);
        let inside = overlap(previous, at, from, to);
        if at > from {
            report.longest_gap = report.longest_gap.max(interval);
            if freeze {
                report.freeze_count += 1;
                report.frozen += inside;
                report
                    .freezes
                    .push((previous.saturating_sub(from), interval));
            }
        }
        previous = at;
    }
    // The interval still open at the window's end.
    let open = to.saturating_sub(previous);
    if !open.is_zero() {
        report.longest_gap = report.longest_gap.max(open);
        if average.would_be_freeze(open) {
            report.freeze_count += 1;
            report.frozen += overlap(previous, to, from, to);
            report.freezes.push((previous.saturating_sub(from), open));
        }
    }
    report
}

/// The same definition fed one frame at a time, for a viewer that runs
/// for hours and cannot keep every arrival: totals since its first frame
/// (a caller wanting a window subtracts two readings). Unlike [`analyse`]
/// it has no window, so the interval still open is not counted.
#[derive(Debug, Default)]
pub struct FreezeMeter {
    previous: Option<Duration>,
    average: IntervalAverage,
    /// Frozen time so far.
    pub frozen: Duration,
    /// Intervals that were freezes.
    pub freeze_count: u64,
    /// The longest interval between two frames.
    pub longest_gap: Duration,
}

impl FreezeMeter {
    /// A frame arrived at `at` (on any clock that does not go back).
    pub fn frame(&mut self, at: Duration) {
        if let Some(previous) = self.previous {
            let interval = at.saturating_sub(previous);
            self.longest_gap = self.longest_gap.max(interval);
            if self.average.is_freeze(interval) {
                self.freeze_count += 1;
                self.frozen += interval;
            }
        }
        self.previous = Some(at);
    }
}

/// Now on CLOCK_MONOTONIC, the clock [`analyse`]'s callers share across
/// processes (Rust's `Instant` reads it too but cannot be sent elsewhere).
pub fn monotonic_now() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec to write; CLOCK_MONOTONIC always exists on Linux.
    let result = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    assert_eq!(result, 0, "clock_gettime(CLOCK_MONOTONIC) failed");
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: Duration = Duration::from_nanos(33_333_333);

    fn ms(value: u64) -> Duration {
        Duration::from_millis(value)
    }

    /// Frames every `FRAME` from `start` for `count` frames.
    fn steady(start: Duration, count: u32) -> Vec<Duration> {
        (0..count).map(|i| start + FRAME * i).collect()
    }

    #[test]
    fn the_meter_counts_what_analyse_counts_over_the_whole_track() {
        let mut arrivals = steady(Duration::ZERO, 100);
        let after_stop = *arrivals.last().unwrap() + ms(400);
        arrivals.extend(steady(after_stop, 100));
        let after_stop = *arrivals.last().unwrap() + ms(1200);
        arrivals.extend(steady(after_stop, 50));
        let mut meter = FreezeMeter::default();
        for at in &arrivals {
            meter.frame(*at);
        }
        let report = analyse(&arrivals, arrivals[0], *arrivals.last().unwrap());
        assert_eq!(meter.freeze_count, 2);
        assert_eq!(meter.freeze_count as usize, report.freeze_count);
        assert_eq!(meter.frozen, report.frozen);
        assert_eq!(meter.frozen, ms(1600));
        assert_eq!(meter.longest_gap, ms(1200));
    }

    #[test]
    fn steady_thirty_fps_never_freezes() {
        let arrivals = steady(Duration::ZERO, 1800);
        let report = analyse(&arrivals, ms(1000), ms(59_000));
        assert_eq!(report.freeze_count, 0, "{report}");
        assert_eq!(report.frozen, Duration::ZERO);
        assert!(report.longest_gap <= ms(34), "{report}");
        assert!((report.frames_per_second() - 30.0).abs() < 0.1, "{report}");
    }

    #[test]
    fn jitter_of_a_few_frames_is_not_a_freeze_but_a_long_gap_is_whole() {
        let mut arrivals = steady(Duration::ZERO, 100);
        // A 150 ms hiccup (under avg + 150 ms): played on.
        let after_hiccup = *arrivals.last().unwrap() + ms(150);
        arrivals.extend(steady(after_hiccup, 100));
        // A 400 ms stop: a freeze, all 400 ms of it.
        let after_stop = *arrivals.last().unwrap() + ms(400);
        arrivals.extend(steady(after_stop, 100));
        let end = *arrivals.last().unwrap();
        let report = analyse(&arrivals, Duration::ZERO, end);
        assert_eq!(report.freeze_count, 1, "{report}");
        assert_eq!(report.frozen, ms(400));
        assert_eq!(report.freezes.len(), 1);
        assert_eq!(report.freezes[0].1, ms(400));
        assert_eq!(report.longest_gap, ms(400));
        assert_eq!(report.frames, 300);
    }

    #[test]
    fn the_threshold_is_three_intervals_at_low_frame_rates() {
        // 5 fps: 200 ms intervals; avg + 150 ms would be 350 ms but three
        // intervals (600 ms) is the larger, so 500 ms is no freeze.
        let mut arrivals: Vec<Duration> = (0..50).map(|i| ms(200) * i).collect();
        let last = *arrivals.last().unwrap();
        arrivals.push(last + ms(500));
        arrivals.push(last + ms(700));
        let report = analyse(&arrivals, Duration::ZERO, last + ms(700));
        assert_eq!(report.freeze_count, 0, "{report}");
        let mut arrivals: Vec<Duration> = (0..50).map(|i| ms(200) * i).collect();
        arrivals.push(last + ms(800));
        let report = analyse(&arrivals, Duration::ZERO, last + ms(800));
        assert_eq!(
            (report.freeze_count, report.frozen),
            (1, ms(800)),
            "{report}"
        );
    }

    #[test]
    fn a_freeze_straddling_the_window_counts_for_its_part_inside() {
        let mut arrivals = steady(Duration::ZERO, 60);
        let stop = *arrivals.last().unwrap();
        arrivals.extend(steady(stop + ms(1000), 60));
        // The window opens 300 ms into the 1 s gap.
        let report = analyse(&arrivals, stop + ms(300), stop + ms(3000));
        assert_eq!(report.freeze_count, 1, "{report}");
        assert_eq!(report.frozen, ms(700));
        assert_eq!(report.longest_gap, ms(1000));
    }

    #[test]
    fn a_picture_that_stopped_is_frozen_up_to_the_window_end() {
        let arrivals = steady(Duration::ZERO, 90);
        let last = *arrivals.last().unwrap();
        let report = analyse(&arrivals, ms(1000), last + ms(2000));
        assert_eq!(report.freeze_count, 1, "{report}");
        assert_eq!(report.frozen, ms(2000));
        assert_eq!(report.longest_gap, ms(2000));
        // A moment after the last frame is not (yet) a freeze.
        let report = analyse(&arrivals, ms(1000), last + ms(20));
        assert_eq!(report.freeze_count, 0, "{report}");
    }

    #[test]
    fn no_frames_at_all_is_frozen_throughout() {
        let report = analyse(&[], ms(0), ms(30_000));
        assert_eq!(report.frozen, ms(30_000));
        assert_eq!(report.frozen_per_minute(), ms(60_000));
        // Frames only after the window opened: frozen until the first.
        let arrivals = steady(ms(2000), 300);
        let report = analyse(&arrivals, ms(0), ms(12_000));
        assert_eq!(report.frozen, ms(2000), "{report}");
    }

    #[test]
    fn frozen_time_is_scaled_to_a_minute() {
        // Ten 300 ms freezes in 30 s: 3 s, so 6 s per minute.
        let mut arrivals = Vec::new();
        let mut at = Duration::ZERO;
        for _ in 0..10 {
            arrivals.extend(steady(at, 80));
            at = *arrivals.last().unwrap() + ms(300);
        }
        let end = *arrivals.last().unwrap();
        let report = analyse(&arrivals, Duration::ZERO, end);
        assert_eq!(report.freeze_count, 9, "{report}");
        assert_eq!(report.frozen, ms(2700));
        let expected = 2.7 * 60.0 / end.as_secs_f64();
        assert!(
            (report.frozen_per_minute().as_secs_f64() - expected).abs() < 0.001,
            "{report}"
        );
    }

    #[test]
    fn monotonic_clock_moves_forward() {
        let before = monotonic_now();
        std::thread::sleep(ms(5));
        assert!(monotonic_now() >= before + ms(5));
    }
}
