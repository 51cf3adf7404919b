//! One viewer's path, judged from its transport-wide congestion control
//! feedback (draft-holmer-rmcat-transport-wide-cc-extensions-01): for every
//! packet we sent, when it left us and when, by the viewer's clock, it
//! arrived, or that it never did. Chromium sends this feedback (its own
//! bandwidth estimate runs on it on the sending side, and it stops sending
//! REMB once transport-cc is negotiated), and so does peersrc.
//!
//! Pure, like adaptation.rs: times are the feedback's own (our send clock
//! and the viewer's arrival clock, each from an arbitrary origin), so every
//! rule is a unit test. In the spirit of Google congestion control, much
//! simpler:
//! - Packets sent within `GROUP_SPAN` of each other form a group (a video
//!   frame goes out as one burst). The group's one-way delay is its least
//!   arrival − send: the queue its first packet met, not the queue the
//!   burst built behind itself.
//! - The lowest group delay of the last `BASE_WINDOW` is the path's delay
//!   with empty queues; a group's delay above it is queuing delay (the two
//!   clocks' offset cancels out), smoothed over the last groups.
//! - The trend (least-squares slope of the group delays over the last
//!   `TREND_GROUPS`) tells a queue filling from one draining.
//! - Overuse: smoothed queuing delay above `DELAY_THRESHOLD` while not
//!   draining, or loss above `LOSS_THRESHOLD` over the last `LOSS_WINDOW`
//!   with a queue standing (above a third of the threshold: a full
//!   tail-drop queue; random loss on an idle path is not congestion and is
//!   left to the loss rule of adaptation.rs).
//! - On overuse a [`Congestion`] is reported: the path carries `BACKOFF`
//!   × the rate the viewer actually received over the last `RATE_WINDOW`;
//!   again at most every `SIGNAL_HOLDOFF` while overuse lasts
//!   and we still send more than that: once we send less, the queue only
//!   needs time to drain, and reporting it again would back off twice
//!   (for `DRAIN_GRACE` at most: a queue that does not drain by then means
//!   the path narrowed further).
//! - Growing back is adaptation.rs's business: switching up a layer is
//!   the probe, and this module reports if it overuses the path.

use std::collections::VecDeque;
use std::time::Duration;

/// Packets sent closer than this are one burst.
pub const GROUP_SPAN: Duration = Duration::from_millis(5);
/// How long the lowest delay seen stays the path's base.
pub const BASE_WINDOW: Duration = Duration::from_secs(30);
/// Queuing delay above which the path is overused.
pub const DELAY_THRESHOLD: Duration = Duration::from_millis(30);
/// Groups the trend is computed over.
pub const TREND_GROUPS: usize = 20;
/// Weight of each new group in the smoothed queuing delay.
const SMOOTHING: f64 = 0.2;
/// Share of packets lost that, with a queue standing, is overuse.
pub const LOSS_THRESHOLD: f64 = 0.10;
pub const LOSS_WINDOW: Duration = Duration::from_secs(1);
/// Fewest packets in `LOSS_WINDOW` to judge loss by.
const LOSS_MIN_PACKETS: usize = 20;
/// The received rate is measured over this much arrival time.
pub const RATE_WINDOW: Duration = Duration::from_secs(1);
/// Arrivals kept at most: the arrival times are the viewer's word, and a
/// viewer whose clock never advances would otherwise keep every packet
/// (a 2 Mbit/s layer sends ~200 a second).
const MAX_ARRIVALS: usize = 4096;
/// The shortest span a received rate is computed over.
const RATE_MIN_SPAN: Duration = Duration::from_millis(200);
/// What a path found overused carries, times the rate received.
pub const BACKOFF: f64 = 0.85;
/// Time between two reports of the same overuse.
pub const SIGNAL_HOLDOFF: Duration = Duration::from_secs(1);
/// The rate we send at is measured over this much send time.
pub const SENT_WINDOW: Duration = Duration::from_millis(300);
/// How long a queue may take to drain once we send what a report allowed.
pub const DRAIN_GRACE: Duration = Duration::from_secs(3);
/// A slope (delay per send time) below this is a queue draining.
const DRAINING_SLOPE: f64 = -0.01;

/// What the feedback says of one packet we sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketReport {
    /// When it left us, by our clock.
    pub sent: Duration,
    /// When it arrived, by the viewer's clock; `None`: lost.
    pub arrived: Option<Duration>,
    /// Payload bytes.
    pub size: u32,
}

/// The path is overused: what it carries now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Congestion {
    /// Bits per second the viewer received over the last `RATE_WINDOW`.
    pub received_rate: u64,
    /// What to send at most from now: `BACKOFF` × `received_rate`.
    pub available: u64,
    pub queuing_delay: Duration,
    /// Share of packets lost over the last `LOSS_WINDOW`.
    pub loss: f64,
}

/// A burst being gathered.
#[derive(Debug, Clone, Copy)]
struct Group {
    first_sent: Duration,
    last_sent: Duration,
    /// Least arrival − send of its packets, nanoseconds.
    delay: i64,
}

#[derive(Debug, Default)]
pub struct TransportEstimator {
    group: Option<Group>,
    /// Least group delay per second of send time, oldest first.
    base: VecDeque<(u64, i64)>,
    /// (send time, group delay) of the last groups, seconds.
    trend: VecDeque<(f64, f64)>,
    /// Smoothed queuing delay, seconds.
    queuing: Option<f64>,
    /// (send time, lost) of the packets of the last `LOSS_WINDOW`.
    outcomes: VecDeque<(Duration, bool)>,
    /// (arrival time, bytes) of the packets received in the last
    /// `RATE_WINDOW`, at most `MAX_ARRIVALS`.
    arrivals: VecDeque<(Duration, u32)>,
    /// Latest arrival time reported (the viewer's clock).
    latest_arrival: Duration,
    /// (send time, bytes) of the packets of the last `SENT_WINDOW`.
    sends: VecDeque<(Duration, u32)>,
    /// What the last report said the path carries, bits per second.
    last_available: Option<f64>,
    /// Latest send time seen: this module's "now".
    latest_sent: Duration,
    last_signal: Option<Duration>,
    reports: u64,
    signals: u64,
}

impl TransportEstimator {
    pub fn new() -> TransportEstimator {
        TransportEstimator::default()
    }

    /// Takes one feedback message's packets, in sequence order; returns
    /// the congestion found, if any is to be reported now.
    pub fn on_feedback(&mut self, packets: &[PacketReport]) -> Option<Congestion> {
        if packets.is_empty() {
            return None;
        }
        self.reports += 1;
        for packet in packets {
            self.take(packet);
        }
        self.judge()
    }

    /// Feedback messages taken so far.
    pub fn reports(&self) -> u64 {
        self.reports
    }

    /// Congestion reports made so far.
    pub fn signals(&self) -> u64 {
        self.signals
    }

    /// Smoothed queuing delay, once known.
    pub fn queuing_delay(&self) -> Option<Duration> {
        self.queuing
            .map(|seconds| Duration::from_secs_f64(seconds.max(0.0)))
    }

    /// Bits per second received over the last `RATE_WINDOW`.
    pub fn received_rate(&self) -> Option<u64> {
        let (first, _) = *self.arrivals.front()?;
        let (last, _) = *self.arrivals.back()?;
        let span = last.saturating_sub(first);
        if span < RATE_MIN_SPAN {
            return None;
        }
        // The first packet opens the span; what it carried came before.
        let bytes: u64 = self.arrivals.iter().skip(1).map(|(_, b)| *b as u64).sum();
        Some((bytes as f64 * 8.0 / span.as_secs_f64()) as u64)
    }

    /// Share of packets lost over the last `LOSS_WINDOW`, when enough
    /// were sent to tell.
    pub fn loss(&self) -> Option<f64> {
        if self.outcomes.len() < LOSS_MIN_PACKETS {
            return None;
        }
        let lost = self.outcomes.iter().filter(|(_, lost)| *lost).count();
        Some(lost as f64 / self.outcomes.len() as f64)
    }

    /// Bits per second we sent over the last `SENT_WINDOW`.
    fn sent_rate(&self) -> Option<f64> {
        let (first, _) = *self.sends.front()?;
        let span = self.latest_sent.saturating_sub(first);
        if span < RATE_MIN_SPAN {
            return None;
        }
        let bytes: u64 = self.sends.iter().skip(1).map(|(_, b)| *b as u64).sum();
        Some(bytes as f64 * 8.0 / span.as_secs_f64())
    }

    fn take(&mut self, packet: &PacketReport) {
        self.latest_sent = self.latest_sent.max(packet.sent);
        self.outcomes
            .push_back((packet.sent, packet.arrived.is_none()));
        self.sends.push_back((packet.sent, packet.size));
        while self
            .sends
            .front()
            .is_some_and(|(sent, _)| *sent + SENT_WINDOW < self.latest_sent)
        {
            self.sends.pop_front();
        }
        while self
            .outcomes
            .front()
            .is_some_and(|(sent, _)| *sent + LOSS_WINDOW < self.latest_sent)
        {
            self.outcomes.pop_front();
        }
        let Some(arrived) = packet.arrived else {
            return;
        };
        self.arrivals.push_back((arrived, packet.size));
        // Feedback comes in sequence order, which is send order; arrivals
        // may be reordered a little, hence the latest so far.
        self.latest_arrival = self.latest_arrival.max(arrived);
        while self.arrivals.len() > MAX_ARRIVALS
            || self
                .arrivals
                .front()
                .is_some_and(|(first, _)| *first + RATE_WINDOW < self.latest_arrival)
        {
            self.arrivals.pop_front();
        }
        let delay = arrived.as_nanos() as i64 - packet.sent.as_nanos() as i64;
        match &mut self.group {
            Some(group) if packet.sent < group.first_sent + GROUP_SPAN => {
                group.last_sent = group.last_sent.max(packet.sent);
                group.delay = group.delay.min(delay);
            }
            _ => {
                if let Some(done) = self.group.take() {
                    self.close(done);
                }
                self.group = Some(Group {
                    first_sent: packet.sent,
                    last_sent: packet.sent,
                    delay,
                });
            }
        }
    }

    /// A group is complete: it updates the base, the trend and the
    /// queuing delay.
    fn close(&mut self, group: Group) {
        let second = group.first_sent.as_secs();
        match self.base.back_mut() {
            Some((at, least)) if *at == second => *least = (*least).min(group.delay),
            _ => self.base.push_back((second, group.delay)),
        }
        while self
            .base
            .front()
            .is_some_and(|(at, _)| at + BASE_WINDOW.as_secs() < second)
        {
            self.base.pop_front();
        }
        let base = self.base.iter().map(|(_, least)| *least).min();
        let base = base.unwrap_or(group.delay);
        let queuing = (group.delay - base) as f64 / 1e9;
        self.queuing = Some(match self.queuing {
            Some(smoothed) => smoothed + SMOOTHING * (queuing - smoothed),
            None => queuing,
        });
        self.trend
            .push_back((group.last_sent.as_secs_f64(), group.delay as f64 / 1e9));
        if self.trend.len() > TREND_GROUPS {
            self.trend.pop_front();
        }
    }

    /// Least-squares slope of the group delays over their send times:
    /// seconds of delay gained per second.
    fn slope(&self) -> Option<f64> {
        if self.trend.len() < TREND_GROUPS / 2 {
            return None;
        }
        let n = self.trend.len() as f64;
        let mean_x = self.trend.iter().map(|(x, _)| x).sum::<f64>() / n;
        let mean_y = self.trend.iter().map(|(_, y)| y).sum::<f64>() / n;
        let (mut covariance, mut variance) = (0.0, 0.0);
        for (x, y) in &self.trend {
            covariance += (x - mean_x) * (y - mean_y);
            variance += (x - mean_x) * (x - mean_x);
        }
        (variance > 0.0).then(|| covariance / variance)
    }

    fn overused(&self) -> bool {
        let threshold = DELAY_THRESHOLD.as_secs_f64();
        let queuing = self.queuing.unwrap_or(0.0);
        let draining = self.slope().is_some_and(|slope| slope < DRAINING_SLOPE);
        if queuing > threshold && !draining {
            return true;
        }
        self.loss().is_some_and(|loss| loss > LOSS_THRESHOLD) && queuing > threshold / 3.0
    }

    fn judge(&mut self) -> Option<Congestion> {
        let now = self.latest_sent;
        let received = self.received_rate();
        if !self.overused() {
            self.last_available = None;
            return None;
        }
        let received = received?;
        if self.last_signal.is_some_and(|at| now < at + SIGNAL_HOLDOFF) {
            return None;
        }
        // Already sending what the last report allowed: the queue is
        // draining, not growing.
        let draining_since_report = self.last_signal.is_some_and(|at| now < at + DRAIN_GRACE);
        if let (Some(allowed), Some(sent)) = (self.last_available, self.sent_rate())
            && sent <= allowed
            && draining_since_report
        {
            return None;
        }
        let available = received as f64 * BACKOFF;
        self.last_available = Some(available);
        self.last_signal = Some(now);
        self.signals += 1;
        Some(Congestion {
            received_rate: received,
            available: available as u64,
            queuing_delay: self.queuing_delay().unwrap_or_default(),
            loss: self.loss().unwrap_or(0.0),
        })
    }
}

#[cfg(test)]
#[path = "twcc_tests.rs"]
mod tests;
