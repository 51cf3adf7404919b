//! Probing a viewer's path for the next layer up without switching to
//! it: for a while, padding (retransmissions of packets it already has)
//! is sent on top of its current layer, up to the next layer's rate, and
//! the viewer's feedback judges whether the path carried it. Pure: times
//! and counts in, a verdict out, so every rule is a unit test;
//! padding.rs sends the padding, feedback.rs feeds this.
//!
//! Why: switching to the next layer to see whether it fits (what
//! adaptation.rs did alone) costs a frozen picture when it does not: the
//! viewer gets that layer's keyframe and frames at a rate its path
//! cannot carry, the bottleneck's queue fills with them, and going back
//! waits for the lower layer's keyframe behind that queue (1.1–1.45 s
//! frozen per failed probe on a 300 kbit/s path, measured). Padding that
//! fails is simply stopped: the picture never depended on it, and what
//! it left in the queue drains under the current layer.
//!
//! Judging: the path does not carry the extra rate when the viewer loses
//! packets of its stream in a burst (several NACKed within
//! `NACK_BURST_WINDOW`: a bottleneck's queue filling up delays or drops
//! every packet, random loss only now and then), when it asks for a
//! keyframe, or when a receiver report shows heavy loss. Clean for
//! `DURATION`: it does. The duration is longer than the bursts a
//! bottleneck absorbs before it queues (a token bucket's burst, a
//! switch's buffer: ~0.4 s of the probe's excess on the measured path).
//!
//! The padding rises evenly over `RAMP`, then holds: where the path
//! cannot carry it, its queue then grows slowly when the path's burst
//! allowance runs out, so it holds less when the viewer notices (the
//! verdict comes from the viewer's feedback, once packets are late: no
//! sooner than ~100 ms of queue). At once, the queue grew ~2 s per
//! second on the 300 kbit/s path, and a failed probe left a backlog that
//! froze the picture ~0.85 s while it drained; rising over 4 s, 0.63 s
//! in one run of three (the queue grows with the square root of the
//! ramp's slope when the burst runs out).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::adaptation::LOSS_HIGH;

/// How long the padding takes to reach the probed rate.
pub const RAMP: Duration = Duration::from_secs(8);
/// How long padding must go through cleanly, the ramp included.
pub const DURATION: Duration = Duration::from_secs(9);
/// NACKed packets within `NACK_BURST_WINDOW` that fail the probe.
const NACK_BURST: usize = 3;
const NACK_BURST_WINDOW: Duration = Duration::from_millis(250);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Still padding.
    Running,
    /// The path carried the extra rate for `DURATION`.
    Held,
    Failed(Failure),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    NackBurst,
    KeyframeRequest,
    HeavyLoss,
    /// The viewer's transport-cc feedback shows a queue building: the
    /// earliest sign, before any packet is late or lost.
    Congestion,
}

#[derive(Debug)]
pub struct Probe {
    /// The layer being probed for.
    pub layer: usize,
    /// Padding, bits per second.
    pub padding: u64,
    started: Instant,
    /// When the viewer NACKed packets during the probe, one entry each.
    nacked: VecDeque<Instant>,
    failure: Option<Failure>,
}

impl Probe {
    /// A probe for `layer` at `target` bits per second of video, from a
    /// layer of `current` bits per second.
    pub fn start(now: Instant, layer: usize, target: u32, current: u32) -> Probe {
        Probe {
            layer,
            padding: target.saturating_sub(current) as u64,
            started: now,
            nacked: VecDeque::new(),
            failure: None,
        }
    }

    /// The viewer NACKed `packets` of our video.
    pub fn nacked(&mut self, now: Instant, packets: u32) {
        for _ in 0..packets {
            self.nacked.push_back(now);
        }
        while self
            .nacked
            .front()
            .is_some_and(|at| now.saturating_duration_since(*at) > NACK_BURST_WINDOW)
        {
            self.nacked.pop_front();
        }
        if self.nacked.len() >= NACK_BURST {
            self.fail(Failure::NackBurst);
        }
    }

    pub fn keyframe_requested(&mut self) {
        self.fail(Failure::KeyframeRequest);
    }

    /// A tick's loss from the receiver reports.
    pub fn loss(&mut self, fraction: f64) {
        if fraction > LOSS_HIGH {
            self.fail(Failure::HeavyLoss);
        }
    }

    /// The transport-cc estimator found the path overused.
    pub fn congested(&mut self) {
        self.fail(Failure::Congestion);
    }

    fn fail(&mut self, failure: Failure) {
        self.failure.get_or_insert(failure);
    }

    pub fn verdict(&self, now: Instant) -> Verdict {
        match self.failure {
            Some(failure) => Verdict::Failed(failure),
            None if now >= self.started + DURATION => Verdict::Held,
            None => Verdict::Running,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn pads_up_to_the_next_layer_and_holds_when_clean() {
        let t0 = Instant::now();
        let probe = Probe::start(t0, 0, 800_000, 150_000);
        assert_eq!(probe.padding, 650_000);
        assert_eq!(probe.verdict(at(t0, 8999)), Verdict::Running);
        assert_eq!(probe.verdict(at(t0, 9000)), Verdict::Held);
    }

    #[test]
    fn random_loss_now_and_then_does_not_fail_it() {
        let t0 = Instant::now();
        let mut probe = Probe::start(t0, 0, 800_000, 150_000);
        // 5% of ~40 packets a second: a NACK every ~500 ms, now and
        // then two close together.
        for ms in [100, 600, 700, 1300, 1800] {
            probe.nacked(at(t0, ms), 1);
        }
        assert_eq!(
            probe.verdict(at(t0, DURATION.as_millis() as u64)),
            Verdict::Held
        );
    }

    #[test]
    fn a_burst_of_nacks_fails_it() {
        let t0 = Instant::now();
        let mut probe = Probe::start(t0, 0, 800_000, 150_000);
        // A queue filling: every packet late, one after the other.
        probe.nacked(at(t0, 500), 1);
        probe.nacked(at(t0, 530), 1);
        assert_eq!(probe.verdict(at(t0, 540)), Verdict::Running);
        probe.nacked(at(t0, 560), 1);
        assert_eq!(
            probe.verdict(at(t0, 570)),
            Verdict::Failed(Failure::NackBurst)
        );
        // Failed stays failed.
        assert_eq!(
            probe.verdict(at(t0, 3000)),
            Verdict::Failed(Failure::NackBurst)
        );
        // Several in one RTCP packet count as a burst too.
        let mut probe = Probe::start(t0, 0, 800_000, 150_000);
        probe.nacked(at(t0, 900), 4);
        assert_eq!(
            probe.verdict(at(t0, 900)),
            Verdict::Failed(Failure::NackBurst)
        );
    }

    #[test]
    fn a_keyframe_request_or_heavy_loss_fails_it() {
        let t0 = Instant::now();
        let mut probe = Probe::start(t0, 1, 600_000, 100_000);
        probe.keyframe_requested();
        assert_eq!(
            probe.verdict(at(t0, 10)),
            Verdict::Failed(Failure::KeyframeRequest)
        );
        let mut probe = Probe::start(t0, 1, 600_000, 100_000);
        probe.loss(0.05);
        assert_eq!(probe.verdict(at(t0, 1000)), Verdict::Running);
        probe.loss(0.3);
        assert_eq!(
            probe.verdict(at(t0, 1000)),
            Verdict::Failed(Failure::HeavyLoss)
        );
    }

    #[test]
    fn congestion_from_transport_cc_fails_it() {
        let t0 = Instant::now();
        let mut probe = Probe::start(t0, 1, 600_000, 100_000);
        assert_eq!(probe.verdict(at(t0, 500)), Verdict::Running);
        probe.congested();
        assert_eq!(
            probe.verdict(at(t0, 500)),
            Verdict::Failed(Failure::Congestion)
        );
    }
}
