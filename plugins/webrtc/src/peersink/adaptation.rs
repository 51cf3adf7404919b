//! Which quality layer one viewer should receive, decided from that
//! viewer's own feedback. Pure: no clock, no GStreamer, so every rule is
//! a unit test.
//!
//! The policy (docs/elements.md, "Adaptation"):
//! - The viewer starts on the best layer, with an estimate of the
//!   available bandwidth equal to that layer's bitrate.
//! - Loss above 10% (an RTCP receiver report's fraction lost, or, once a
//!   report has shown loss, the share of sent packets the viewer asked to
//!   have retransmitted, whichever is higher) cuts the estimate to the current layer's rate × (1 − loss/2),
//!   the loss rule of Google congestion control. Between 2% and 10% the
//!   estimate holds; below 2% it grows by 8% a second.
//! - A round-trip time 150 ms above the lowest seen means a queue is
//!   building at a bottleneck: the estimate drops by 15%.
//! - REMB (what Chromium sends when transport-cc is not negotiated) caps
//!   the estimate.
//! - Transport-cc congestion (twcc.rs: a queue building or overflowing on
//!   the viewer's path) caps the estimate at what the path was found to
//!   carry, at once (a probe's own congestion included), and counts as
//!   loss for the clean hold before going up.
//! - The target is the best layer whose bitrate fits in the estimate (the
//!   lowest when none does). Going down happens at once; going up only
//!   after `UP_HOLD` with no loss, and then the estimate is raised to the
//!   next layer's rate to probe it. A probe that fails (the viewer comes
//!   back down within `PROBE_JUDGED_AFTER`) multiplies the wait before
//!   the next one by `PROBE_BACKOFF`, up to `MAX_UP_HOLD`: a probe into a
//!   layer the path cannot carry freezes the picture until the viewer is
//!   back down, so a viewer whose probes keep failing is probed rarely.
//!   Coming down from a layer otherwise (the path stopped carrying it)
//!   counts as one failed probe: the first probe back waits
//!   `UP_HOLD × PROBE_BACKOFF`. A layer held for `STEADY_AFTER` resets
//!   the wait.
//! - A keyframe request during a probe fails it at once: the viewer lost
//!   a frame of the layer it was probing, which repaired random loss does
//!   not do. Waiting for the loss figures (a 3 s keyframe storm) would
//!   leave the picture frozen for those seconds. A viewer whose latest report was lossy does not go up
//!   until a clean report comes: silence is not good news.
//! - Reports in the `SETTLE` after a switch are ignored: they describe
//!   the layer the viewer just left.
//! - Where padding can be sent (the viewer takes retransmissions),
//!   going up waits for a probe without switching (probe.rs): the
//!   adaptation asks for one (`take_probe_wanted`) and goes up only once
//!   the path carried padding at the next layer's rate (`probe_result`);
//!   a failed padding probe backs off as a failed switch does, without
//!   having cost the picture anything.
//!
//! The switch itself happens at the next keyframe of the target layer.

use std::time::{Duration, Instant};

pub const LOSS_HIGH: f64 = 0.10;
pub const LOSS_LOW: f64 = 0.02;
/// Growth of the estimate per second while loss stays low.
const GROWTH_PER_SECOND: f64 = 1.08;
const RTT_INFLATION: Duration = Duration::from_millis(150);
const RTT_BACKOFF: f64 = 0.85;
pub const UP_HOLD: Duration = Duration::from_secs(4);
pub const MAX_UP_HOLD: Duration = Duration::from_secs(128);
/// What a failed probe multiplies the wait before the next one by.
const PROBE_BACKOFF: u32 = 4;
pub const PROBE_JUDGED_AFTER: Duration = Duration::from_secs(10);
pub const STEADY_AFTER: Duration = Duration::from_secs(30);
pub const SETTLE: Duration = Duration::from_secs(1);
/// The estimate never grows past this many times the best layer's rate.
const HEADROOM: f64 = 1.5;
/// A REMB value older than this no longer caps the estimate.
const REMB_FRESH: Duration = Duration::from_secs(5);
/// How long a padding probe that held allows going up.
const PROBE_HELD_FRESH: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Feedback {
    /// Share of packets lost (0.0–1.0) over the last report interval.
    Loss(f64),
    RoundTrip(Duration),
    /// Receiver-estimated maximum bitrate, bits per second.
    Remb(u64),
    /// The viewer asked for a keyframe (PLI, FIR): it lost a frame that
    /// retransmission did not repair.
    KeyframeRequest,
    /// Transport-cc feedback shows the path overused: it carries about
    /// this many bits per second.
    Congestion(u64),
}

#[derive(Debug)]
pub struct Adaptation {
    /// Bits per second of each layer, best (highest) first.
    bitrates: Vec<u32>,
    layer: usize,
    estimate: f64,
    last_growth: Instant,
    last_switch: Instant,
    last_loss: f64,
    /// Since when the viewer has had no loss above `LOSS_LOW`.
    clean_since: Instant,
    up_hold: Duration,
    last_up: Option<Instant>,
    rtt: Option<Duration>,
    min_rtt: Option<Duration>,
    remb: Option<(u64, Instant)>,
    /// Going up waits for a padding probe (see the module's notes).
    padding_probes: bool,
    /// A layer up whose padding probe is asked for.
    probe_wanted: Option<usize>,
    /// A layer whose padding probe held, and when.
    probe_held: Option<(usize, Instant)>,
}

impl Adaptation {
    /// `bitrates`: one per layer, best first (at least one).
    pub fn new(bitrates: Vec<u32>, now: Instant) -> Adaptation {
        assert!(!bitrates.is_empty(), "at least one layer");
        let estimate = bitrates[0] as f64;
        Adaptation {
            bitrates,
            layer: 0,
            estimate,
            last_growth: now,
            last_switch: now,
            last_loss: 0.0,
            clean_since: now,
            up_hold: UP_HOLD,
            last_up: None,
            rtt: None,
            min_rtt: None,
            remb: None,
            padding_probes: false,
            probe_wanted: None,
            probe_held: None,
        }
    }

    /// Whether going up waits for a padding probe (only where padding can
    /// be sent).
    pub fn set_padding_probes(&mut self, on: bool) {
        self.padding_probes = on;
    }

    /// The layer up a padding probe should be run for, if one is due.
    pub fn take_probe_wanted(&mut self) -> Option<usize> {
        self.probe_wanted.take()
    }

    /// A padding probe for `layer` held (the viewer goes up now: the
    /// returned layer) or failed (the next waits longer).
    pub fn probe_result(&mut self, now: Instant, layer: usize, held: bool) -> Option<usize> {
        self.probe_wanted = None;
        if held {
            self.probe_held = Some((layer, now));
            return self.decide(now);
        }
        self.probe_held = None;
        self.clean_since = now;
        self.up_hold = (self.up_hold * PROBE_BACKOFF).min(MAX_UP_HOLD);
        None
    }

    /// The layer the viewer should be on now (0 is the best).
    pub fn layer(&self) -> usize {
        self.layer
    }

    /// Bits per second of `layer`.
    pub fn bitrate(&self, layer: usize) -> u32 {
        self.bitrates[layer.min(self.bitrates.len() - 1)]
    }

    /// Estimated available bandwidth, bits per second.
    pub fn estimate(&self) -> u64 {
        self.estimate as u64
    }

    pub fn loss(&self) -> f64 {
        self.last_loss
    }

    pub fn round_trip(&self) -> Option<Duration> {
        self.rtt
    }

    pub fn remb(&self) -> Option<u64> {
        self.remb.map(|(bitrate, _)| bitrate)
    }

    /// Takes one piece of feedback; returns the new layer when the viewer
    /// should switch.
    pub fn feedback(&mut self, now: Instant, feedback: Feedback) -> Option<usize> {
        let settling = now < self.last_switch + SETTLE;
        match feedback {
            Feedback::Loss(fraction) => {
                let fraction = fraction.clamp(0.0, 1.0);
                if settling {
                    self.last_loss = fraction;
                    return None;
                }
                // Growth up to now follows the loss reported before.
                self.grow(now);
                // After a lossy report the clean time counts from the
                // first clean one: what came between is unknown.
                let was_lossy = self.last_loss >= LOSS_LOW;
                self.last_loss = fraction;
                if fraction > LOSS_LOW || was_lossy {
                    self.clean_since = now;
                }
                if fraction > LOSS_HIGH {
                    self.estimate = self.estimate.min(self.current_rate()) * (1.0 - fraction / 2.0);
                }
            }
            Feedback::RoundTrip(rtt) => {
                self.rtt = Some(rtt);
                let min = *self.min_rtt.get_or_insert(rtt);
                self.min_rtt = Some(min.min(rtt));
                if settling {
                    return None;
                }
                self.grow(now);
                if rtt > min + RTT_INFLATION {
                    self.clean_since = now;
                    self.estimate = self.estimate.min(self.current_rate()) * RTT_BACKOFF;
                }
            }
            Feedback::Remb(bitrate) => {
                self.remb = Some((bitrate, now));
                self.grow(now);
                self.estimate = self.estimate.min(bitrate as f64);
            }
            Feedback::Congestion(available) => {
                self.grow(now);
                self.clean_since = now;
                self.estimate = self.estimate.min(available as f64);
            }
            Feedback::KeyframeRequest => {
                if !self.probing(now) {
                    // Outside a probe the loss figures judge (a storm of
                    // requests counts as loss): one request is a frame
                    // lost to random loss, not a layer that does not fit.
                    return None;
                }
                // Back to the layer the probe left, whose rate fits.
                self.clean_since = now;
                let below = (self.layer + 1).min(self.bitrates.len() - 1);
                self.estimate = self.estimate.min(self.bitrates[below] as f64);
            }
        }
        self.decide(now)
    }

    /// Called regularly (about once a second): growth, and going up after
    /// a clean hold.
    pub fn tick(&mut self, now: Instant) -> Option<usize> {
        self.grow(now);
        self.decide(now)
    }

    /// Whether the viewer went up within `PROBE_JUDGED_AFTER`: its new
    /// layer is on trial.
    fn probing(&self, now: Instant) -> bool {
        self.last_up.is_some_and(|up| now < up + PROBE_JUDGED_AFTER)
    }

    fn current_rate(&self) -> f64 {
        self.bitrates[self.layer] as f64
    }

    fn remb_cap(&self, now: Instant) -> Option<f64> {
        self.remb
            .filter(|(_, at)| now < *at + REMB_FRESH)
            .map(|(bitrate, _)| bitrate as f64)
    }

    fn grow(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last_growth);
        self.last_growth = now;
        if self.last_loss >= LOSS_LOW || now < self.last_switch + SETTLE {
            return;
        }
        let mut cap = self.bitrates[0] as f64 * HEADROOM;
        if let Some(remb) = self.remb_cap(now) {
            cap = cap.min(remb);
        }
        if self.estimate < cap {
            let grown = self.estimate * GROWTH_PER_SECOND.powf(elapsed.as_secs_f64());
            self.estimate = grown.min(cap);
        }
    }

    /// The best layer that fits in `estimate`, the lowest when none does.
    fn fitting_layer(&self, estimate: f64) -> usize {
        self.bitrates
            .iter()
            .position(|&rate| rate as f64 <= estimate)
            .unwrap_or(self.bitrates.len() - 1)
    }

    fn decide(&mut self, now: Instant) -> Option<usize> {
        if self.last_up.is_some_and(|up| now >= up + STEADY_AFTER) {
            self.up_hold = UP_HOLD;
            self.last_up = None;
        }
        let target = self.fitting_layer(self.estimate);
        if target > self.layer {
            // Down at once. Coming down soon after going up means the
            // probe failed; coming down otherwise means the path no
            // longer carries this layer, which a probe would find again
            // at the same cost: the wait is that after one failed probe.
            self.up_hold = if self.probing(now) {
                self.up_hold * PROBE_BACKOFF
            } else {
                self.up_hold.max(UP_HOLD * PROBE_BACKOFF)
            }
            .min(MAX_UP_HOLD);
            self.last_up = None;
            return Some(self.switch(now, target));
        }
        if self.layer == 0 || now < self.clean_since + self.up_hold {
            return None;
        }
        // Silence is not good news: a viewer whose last report was lossy
        // and who has reported nothing since (its RTCP starved by the very
        // congestion that moved it down) stays until a clean report.
        if self.last_loss >= LOSS_LOW {
            return None;
        }
        if now < self.last_switch + self.up_hold {
            return None;
        }
        // Clean long enough: probe the next layer up, unless REMB says it
        // cannot fit.
        let next = self.layer - 1;
        let next_rate = self.bitrates[next] as f64;
        if self.remb_cap(now).is_some_and(|remb| remb < next_rate) {
            return None;
        }
        let held = self
            .probe_held
            .is_some_and(|(layer, at)| layer == next && now < at + PROBE_HELD_FRESH);
        if self.padding_probes && !held {
            self.probe_wanted = Some(next);
            return None;
        }
        self.probe_held = None;
        self.probe_wanted = None;
        self.estimate = self.estimate.max(next_rate);
        let target = self.fitting_layer(self.estimate).min(next);
        self.last_up = Some(now);
        Some(self.switch(now, target))
    }

    fn switch(&mut self, now: Instant, layer: usize) -> usize {
        self.layer = layer;
        self.last_switch = now;
        self.clean_since = now;
        layer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAYERS: [u32; 3] = [2_000_000, 600_000, 150_000];

    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn starts_on_the_best_layer_and_stays_there_without_loss() {
        let t0 = Instant::now();
        let mut adaptation = Adaptation::new(LAYERS.to_vec(), t0);
        assert_eq!(adaptation.layer(), 0);
        for second in 1..60 {
            assert_eq!(
                adaptation.feedback(at(t0, second * 1000), Feedback::Loss(0.0)),
                None
            );
        }
        assert_eq!(adaptation.layer(), 0);
        assert!(adaptation.estimate() <= 3_000_000);
    }

    #[test]
    fn moderate_loss_holds_the_layer() {
        let t0 = Instant::now();
        let mut adaptation = Adaptation::new(LAYERS.to_vec(), t0);
        adaptation.feedback(at(t0, 1000), Feedback::Loss(0.05));
        let held = adaptation.estimate();
        for second in 2..30 {
            assert_eq!(
                adaptation.feedback(at(t0, second * 1000), Feedback::Loss(0.05)),
                None
            );
        }
        assert_eq!(adaptation.estimate(), held);
        assert_eq!(adaptation.layer(), 0);
    }

    #[test]
    fn heavy_loss_moves_down_at_once_and_clean_reports_move_back_up() {
        let t0 = Instant::now();
        let mut adaptation = Adaptation::new(LAYERS.to_vec(), t0);
        // A link of about 1 Mbit/s under a 2 Mbit/s layer loses half.
        assert_eq!(
            adaptation.feedback(at(t0, 2000), Feedback::Loss(0.5)),
            Some(1)
        );
        assert_eq!(adaptation.estimate(), 1_500_000);
        // The lower layer fits: no loss. Up after the hold.
        let mut went_up = None;
        for tenth in 21..400 {
            let now = at(t0, tenth * 100);
            if let Some(layer) = adaptation.feedback(now, Feedback::Loss(0.0)) {
                went_up = Some((layer, now));
                break;
            }
        }
        let (layer, when) = went_up.expect("goes back up");
        assert_eq!(layer, 0);
        // The descent counts as a failed probe of the layer left.
        let waited = when - at(t0, 2000);
        let hold = UP_HOLD * PROBE_BACKOFF;
        assert!(waited >= hold && waited < hold + UP_HOLD, "{waited:?}");
    }

    #[test]
    fn no_report_after_a_lossy_one_keeps_the_lower_layer() {
        let t0 = Instant::now();
        let mut adaptation = Adaptation::new(LAYERS.to_vec(), t0);
        assert_eq!(
            adaptation.feedback(at(t0, 2000), Feedback::Loss(0.5)),
            Some(1)
        );
        // A lossy report just after the switch (about the layer left),
        // then nothing for a minute: no probe up.
        assert_eq!(adaptation.feedback(at(t0, 2500), Feedback::Loss(0.6)), None);
        for second in 3..63 {
            assert_eq!(
                adaptation.tick(at(t0, second * 1000)),
                None,
                "at {second} s"
            );
        }
        // A clean report: up after the hold.
        assert_eq!(
            adaptation.feedback(at(t0, 63_000), Feedback::Loss(0.0)),
            None
        );
        let went_up = (64..90).find_map(|second| adaptation.tick(at(t0, second * 1000)));
        assert_eq!(went_up, Some(0));
    }

    #[test]
    fn reports_right_after_a_switch_are_ignored() {
        let t0 = Instant::now();
        let mut adaptation = Adaptation::new(LAYERS.to_vec(), t0);
        assert_eq!(
            adaptation.feedback(at(t0, 2000), Feedback::Loss(0.5)),
            Some(1)
        );
        // Still about the old layer: no further step down.
        assert_eq!(adaptation.feedback(at(t0, 2500), Feedback::Loss(0.6)), None);
        assert_eq!(adaptation.layer(), 1);
    }

    #[test]
    fn failed_probes_back_off_and_steady_layers_reset_it() {
        let t0 = Instant::now();
        let mut adaptation = Adaptation::new(LAYERS.to_vec(), t0);
        let mut now = at(t0, 1000);
        adaptation.feedback(now, Feedback::Loss(0.5));
        let mut holds = Vec::new();
        // The bottleneck stays: each probe up fails.
        for _ in 0..5 {
            let down_at = now;
            loop {
                now += Duration::from_millis(100);
                if adaptation.feedback(now, Feedback::Loss(0.0)) == Some(0) {
                    break;
                }
            }
            holds.push((now - down_at).as_secs());
            now += Duration::from_millis(1500);
            assert_eq!(adaptation.feedback(now, Feedback::Loss(0.5)), Some(1));
        }
        assert_eq!(holds, vec![16, 64, 128, 128, 128]);
    }

    /// Goes down on heavy loss, then clean reports until the probe up.
    fn probe_up(adaptation: &mut Adaptation, t0: Instant) -> Instant {
        let mut now = at(t0, 1000);
        assert_eq!(adaptation.feedback(now, Feedback::Loss(0.5)), Some(1));
        loop {
            now += Duration::from_millis(100);
            if adaptation.feedback(now, Feedback::Loss(0.0)) == Some(0) {
                return now;
            }
        }
    }

    #[test]
    fn a_keyframe_request_during_a_probe_fails_it_at_once() {
        let t0 = Instant::now();
        let mut adaptation = Adaptation::new(LAYERS.to_vec(), t0);
        let up = probe_up(&mut adaptation, t0);
        // The probed layer loses a frame: straight back, no waiting for
        // the loss figures, and the next probe waits longer.
        let failed = up + Duration::from_millis(300);
        assert_eq!(
            adaptation.feedback(failed, Feedback::KeyframeRequest),
            Some(1)
        );
        let mut now = failed;
        loop {
            now += Duration::from_millis(100);
            if adaptation.feedback(now, Feedback::Loss(0.0)) == Some(0) {
                break;
            }
        }
        // The descent that preceded the probe counted as one failure.
        assert_eq!(
            (now - failed).as_secs(),
            (UP_HOLD * PROBE_BACKOFF * PROBE_BACKOFF).as_secs()
        );
    }

    #[test]
    fn keyframe_requests_outside_a_probe_do_not_move_the_viewer() {
        let t0 = Instant::now();
        let mut adaptation = Adaptation::new(LAYERS.to_vec(), t0);
        // On its first layer, never probed: random loss's occasional
        // request is no reason to leave it.
        assert_eq!(
            adaptation.feedback(at(t0, 500), Feedback::KeyframeRequest),
            None
        );
        let up = probe_up(&mut adaptation, t0);
        // Once the probe has been judged good, requests are loss again.
        let later = up + PROBE_JUDGED_AFTER + Duration::from_secs(1);
        assert_eq!(adaptation.tick(later), None);
        assert_eq!(adaptation.feedback(later, Feedback::KeyframeRequest), None);
        assert_eq!(adaptation.layer(), 0);
    }

    #[test]
    fn with_padding_going_up_waits_for_a_probe_that_held() {
        let t0 = Instant::now();
        let mut adaptation = Adaptation::new(LAYERS.to_vec(), t0);
        adaptation.set_padding_probes(true);
        let mut now = at(t0, 1000);
        assert_eq!(adaptation.feedback(now, Feedback::Loss(0.5)), Some(1));
        // Clean past the hold: a probe is asked for, no switch.
        let wanted = loop {
            now += Duration::from_millis(100);
            assert_eq!(adaptation.feedback(now, Feedback::Loss(0.0)), None);
            if let Some(layer) = adaptation.take_probe_wanted() {
                break layer;
            }
        };
        assert_eq!(wanted, 0);
        assert_eq!(adaptation.layer(), 1);
        // It failed: nothing moved, and the next one waits longer.
        let failed = now + Duration::from_millis(700);
        assert_eq!(adaptation.probe_result(failed, 0, false), None);
        assert_eq!(adaptation.layer(), 1);
        now = failed;
        loop {
            now += Duration::from_millis(100);
            assert_eq!(adaptation.feedback(now, Feedback::Loss(0.0)), None);
            if adaptation.take_probe_wanted().is_some() {
                break;
            }
        }
        assert_eq!(
            (now - failed).as_secs(),
            (UP_HOLD * PROBE_BACKOFF * PROBE_BACKOFF).as_secs()
        );
        // This one held: up at once.
        let held = now + DURATION_OF_A_PROBE;
        assert_eq!(adaptation.probe_result(held, 0, true), Some(0));
        assert_eq!(adaptation.layer(), 0);
    }

    const DURATION_OF_A_PROBE: Duration = Duration::from_secs(9);

    #[test]
    fn remb_caps_the_estimate_and_blocks_probes() {
        let t0 = Instant::now();
        let mut adaptation = Adaptation::new(LAYERS.to_vec(), t0);
        assert_eq!(
            adaptation.feedback(at(t0, 500), Feedback::Remb(800_000)),
            Some(1)
        );
        for second in 1..40 {
            let now = at(t0, 500 + second * 1000);
            assert_eq!(adaptation.feedback(now, Feedback::Remb(800_000)), None);
            assert_eq!(adaptation.feedback(now, Feedback::Loss(0.0)), None);
        }
        assert!(adaptation.estimate() <= 800_000);
        // The receiver's estimate recovers.
        let later = at(t0, 50_000);
        let up = adaptation
            .feedback(later, Feedback::Remb(5_000_000))
            .or_else(|| {
                (1..100)
                    .find_map(|tenth| adaptation.tick(later + Duration::from_millis(tenth * 100)))
            });
        assert_eq!(up, Some(0));
    }

    #[test]
    fn very_low_estimates_stay_on_the_lowest_layer() {
        let t0 = Instant::now();
        let mut adaptation = Adaptation::new(LAYERS.to_vec(), t0);
        assert_eq!(
            adaptation.feedback(at(t0, 100), Feedback::Remb(50_000)),
            Some(2)
        );
        assert_eq!(adaptation.tick(at(t0, 3000)), None);
        assert_eq!(adaptation.layer(), 2);
    }

    #[test]
    fn a_growing_round_trip_backs_off() {
        let t0 = Instant::now();
        let mut adaptation = Adaptation::new(LAYERS.to_vec(), t0);
        adaptation.feedback(at(t0, 2000), Feedback::RoundTrip(Duration::from_millis(20)));
        assert_eq!(adaptation.layer(), 0);
        let switched = adaptation.feedback(
            at(t0, 3000),
            Feedback::RoundTrip(Duration::from_millis(400)),
        );
        assert_eq!(switched, Some(1));
        assert_eq!(adaptation.round_trip(), Some(Duration::from_millis(400)));
    }

    #[test]
    fn a_single_layer_never_switches() {
        let t0 = Instant::now();
        let mut adaptation = Adaptation::new(vec![1_000_000], t0);
        assert_eq!(adaptation.feedback(at(t0, 2000), Feedback::Loss(0.9)), None);
        assert_eq!(adaptation.tick(at(t0, 30_000)), None);
        assert_eq!(adaptation.layer(), 0);
    }
}
