//! The estimator against a simulated bottleneck: a link of a given rate
//! with a tail-drop queue of a given depth, fed 30 frames a second, and
//! feedback every 100 ms as Chromium sends it.

use super::*;

const MS: Duration = Duration::from_millis(1);

/// A bottleneck link; times are the sender's, arrivals get the viewer's
/// clock offset.
struct Link {
    capacity: f64,
    max_queue: Duration,
    busy_until: Duration,
    propagation: Duration,
    clock_offset: Duration,
    /// Every nth packet is lost on the way whatever the queue (0: none).
    random_loss_every: u64,
    /// Extra delay of packet n, for jitter (repeats).
    jitter: Vec<Duration>,
    sent: u64,
}

impl Link {
    fn new(capacity_bps: u64, max_queue: Duration) -> Link {
        Link {
            capacity: capacity_bps as f64,
            max_queue,
            busy_until: Duration::ZERO,
            propagation: 20 * MS,
            // The viewer's clock started long before ours.
            clock_offset: Duration::from_secs(86_400),
            random_loss_every: 0,
            jitter: Vec::new(),
            sent: 0,
        }
    }

    fn carry(&mut self, sent: Duration, size: u32) -> PacketReport {
        self.sent += 1;
        let lost = |arrived| PacketReport {
            sent,
            arrived,
            size,
        };
        if self.random_loss_every > 0 && self.sent.is_multiple_of(self.random_loss_every) {
            return lost(None);
        }
        let waiting = self.busy_until.saturating_sub(sent);
        if waiting > self.max_queue {
            return lost(None);
        }
        let wire = Duration::from_secs_f64((size as f64 + 60.0) * 8.0 / self.capacity);
        self.busy_until = self.busy_until.max(sent) + wire;
        let jitter = if self.jitter.is_empty() {
            Duration::ZERO
        } else {
            self.jitter[self.sent as usize % self.jitter.len()]
        };
        lost(Some(
            self.busy_until + self.propagation + jitter + self.clock_offset,
        ))
    }
}

/// Sends `rate_bps` of 30 frames a second from `from` for `duration`
/// through `link`, feeding the estimator every 100 ms; returns the
/// congestion reports with the send time they came at.
fn run(
    estimator: &mut TransportEstimator,
    link: &mut Link,
    rate_bps: u64,
    from: Duration,
    duration: Duration,
) -> Vec<(Duration, Congestion)> {
    // A hair over 1/30 s: three frames per 100 ms, whatever the start.
    let frame_interval = Duration::from_nanos(33_333_334);
    let frame_bytes = (rate_bps / 8 / 30) as u32;
    let mut reports = Vec::new();
    let mut batch = Vec::new();
    let mut next_feedback = from + 100 * MS;
    let mut at = from;
    while at < from + duration {
        let mut left = frame_bytes;
        let mut offset = Duration::ZERO;
        while left > 0 {
            let size = left.min(1200);
            left -= size;
            batch.push(link.carry(at + offset, size));
            offset += Duration::from_micros(20);
        }
        at += frame_interval;
        if at >= next_feedback {
            next_feedback += 100 * MS;
            if let Some(congestion) = estimator.on_feedback(&std::mem::take(&mut batch)) {
                reports.push((at, congestion));
            }
        }
    }
    reports
}

#[test]
fn a_path_with_room_shows_no_congestion() {
    let mut estimator = TransportEstimator::new();
    let mut link = Link::new(2_000_000, 50 * MS);
    let reports = run(
        &mut estimator,
        &mut link,
        600_000,
        Duration::ZERO,
        20 * 1000 * MS,
    );
    assert!(reports.is_empty(), "{reports:?}");
    assert!(estimator.queuing_delay().unwrap() < 5 * MS);
    assert_eq!(estimator.loss(), Some(0.0));
    let received = estimator.received_rate().unwrap();
    assert!(
        (540_000..=660_000).contains(&received),
        "received {received} bit/s of 600 kbit/s"
    );
    assert_eq!(estimator.signals(), 0);
    assert!(estimator.reports() >= 190);
}

#[test]
fn a_deep_queue_filling_is_found_before_any_loss() {
    let mut estimator = TransportEstimator::new();
    // A 1 s buffer: 600 kbit/s into 300 loses nothing for seconds.
    let mut link = Link::new(300_000, 1000 * MS);
    let clean = run(
        &mut estimator,
        &mut link,
        250_000,
        Duration::ZERO,
        5000 * MS,
    );
    assert!(clean.is_empty(), "{clean:?}");
    let start = 5000 * MS;
    let reports = run(&mut estimator, &mut link, 600_000, start, 3000 * MS);
    let (when, congestion) = *reports.first().expect("overuse found");
    assert!(when - start < 1000 * MS, "found after {:?}", when - start);
    assert_eq!(congestion.loss, 0.0, "found before any loss");
    assert!(congestion.queuing_delay > DELAY_THRESHOLD);
    // The link's rate, less what the headers take, and backed off from.
    assert!(
        (240_000..=310_000).contains(&congestion.received_rate),
        "{congestion:?}"
    );
    assert_eq!(
        congestion.available,
        (congestion.received_rate as f64 * BACKOFF) as u64
    );
}

#[test]
fn a_shallow_tail_drop_queue_overflowing_is_congestion() {
    let mut estimator = TransportEstimator::new();
    // tbf with `latency 50ms`, as in the tests: loss and a full queue.
    let mut link = Link::new(300_000, 50 * MS);
    let reports = run(
        &mut estimator,
        &mut link,
        600_000,
        Duration::ZERO,
        4000 * MS,
    );
    let (when, congestion) = *reports.first().expect("overuse found");
    assert!(when < 1500 * MS, "found after {when:?}");
    assert!(congestion.available < 300_000, "{congestion:?}");
    assert!(estimator.loss().unwrap() > LOSS_THRESHOLD);
}

#[test]
fn overuse_is_reported_once_a_second_while_it_lasts() {
    let mut estimator = TransportEstimator::new();
    let mut link = Link::new(300_000, 200 * MS);
    let reports = run(
        &mut estimator,
        &mut link,
        900_000,
        Duration::ZERO,
        5000 * MS,
    );
    assert!((3..=6).contains(&reports.len()), "{reports:?}");
    for pair in reports.windows(2) {
        assert!(pair[1].0 - pair[0].0 >= SIGNAL_HOLDOFF, "{reports:?}");
    }
    assert_eq!(estimator.signals(), reports.len() as u64);
}

#[test]
fn random_loss_on_an_idle_path_is_not_congestion() {
    let mut estimator = TransportEstimator::new();
    let mut link = Link::new(10_000_000, 50 * MS);
    link.random_loss_every = 5; // 20%
    let reports = run(
        &mut estimator,
        &mut link,
        600_000,
        Duration::ZERO,
        10_000 * MS,
    );
    assert!(reports.is_empty(), "{reports:?}");
    let loss = estimator.loss().unwrap();
    assert!((0.15..=0.25).contains(&loss), "loss {loss}");
}

#[test]
fn jitter_below_the_threshold_is_not_congestion() {
    let mut estimator = TransportEstimator::new();
    let mut link = Link::new(10_000_000, 50 * MS);
    // Up to 20 ms of extra delay, in no order.
    link.jitter = [0, 13, 4, 20, 7, 1, 17, 9, 0, 15, 2, 11]
        .iter()
        .map(|ms| *ms * MS)
        .collect();
    let reports = run(
        &mut estimator,
        &mut link,
        600_000,
        Duration::ZERO,
        10_000 * MS,
    );
    assert!(reports.is_empty(), "{reports:?}");
}

#[test]
fn a_draining_queue_after_backing_off_is_not_reported_again() {
    let mut estimator = TransportEstimator::new();
    let mut link = Link::new(300_000, 1000 * MS);
    let overuse = run(
        &mut estimator,
        &mut link,
        600_000,
        Duration::ZERO,
        2000 * MS,
    );
    assert!(!overuse.is_empty());
    let signals = estimator.signals();
    // The sender moved to a layer that fits: the queue drains, and then
    // the path is clean again.
    let after = run(&mut estimator, &mut link, 100_000, 2000 * MS, 10_000 * MS);
    // Once what we send shows the back-off, the queue only drains.
    let late: Vec<_> = after
        .iter()
        .filter(|(at, _)| *at > 2000 * MS + SENT_WINDOW)
        .collect();
    assert!(late.is_empty(), "{after:?}");
    assert!(estimator.signals() <= signals + 1);
    assert!(estimator.queuing_delay().unwrap() < 5 * MS);
}

#[test]
fn lost_packets_alone_give_no_rate_and_no_report() {
    let mut estimator = TransportEstimator::new();
    let lost: Vec<PacketReport> = (0..50)
        .map(|n| PacketReport {
            sent: n * 10 * MS,
            arrived: None,
            size: 1000,
        })
        .collect();
    assert_eq!(estimator.on_feedback(&lost), None);
    assert_eq!(estimator.received_rate(), None);
    assert_eq!(estimator.loss(), Some(1.0));
    assert_eq!(estimator.on_feedback(&[]), None);
    assert_eq!(estimator.reports(), 1);
}

/// The estimator driving adaptation.rs, as feedback.rs wires them: a
/// viewer on layers of 600 and 100 kbit/s whose link drops to 300 kbit/s
/// (a tbf queue of 50 ms) for 20 s.
#[test]
fn a_rate_limit_moves_the_viewer_down_and_its_end_back_up() {
    use super::super::adaptation::{Adaptation, Feedback};
    use std::time::Instant;

    let layers = vec![600_000, 100_000];
    let t0 = Instant::now();
    let mut adaptation = Adaptation::new(layers.clone(), t0);
    let mut estimator = TransportEstimator::new();
    let mut link = Link::new(10_000_000, 50 * MS);
    let limit = (10_000 * MS, 30_000 * MS);
    let mut layer_at = Vec::new();
    let mut now = Duration::ZERO;
    let step = 100 * MS;
    while now < 120_000 * MS {
        link.capacity = if now >= limit.0 && now < limit.1 {
            300_000.0
        } else {
            10_000_000.0
        };
        let rate = layers[adaptation.layer()] as u64;
        for congestion in run(&mut estimator, &mut link, rate, now, step) {
            adaptation.feedback(
                t0 + congestion.0,
                Feedback::Congestion(congestion.1.available),
            );
        }
        now += step;
        adaptation.tick(t0 + now);
        layer_at.push((now, adaptation.layer()));
    }
    let first_on = |layer: usize, after: Duration| {
        layer_at
            .iter()
            .find(|(at, l)| *at > after && *l == layer)
            .map(|(at, _)| *at - after)
    };
    assert!(
        layer_at
            .iter()
            .filter(|(at, _)| *at < limit.0)
            .all(|(_, l)| *l == 0),
        "left the best layer before the limit"
    );
    let down = first_on(1, limit.0).expect("moved down");
    assert!(down < 2000 * MS, "moved down after {down:?}");
    let up = first_on(0, limit.1).expect("moved back up");
    // The probing hold grows while probes fail (adaptation.rs): up to 64 s.
    assert!(up < 70_000 * MS, "moved up after {up:?}");
    let settled = limit.1 + up + 10_000 * MS;
    assert!(
        layer_at
            .iter()
            .filter(|(at, _)| *at > settled)
            .all(|(_, l)| *l == 0),
        "left the best layer again without a limit"
    );
}

#[test]
fn a_viewer_clock_that_never_advances_keeps_memory_bounded() {
    let mut estimator = TransportEstimator::new();
    let packets: Vec<PacketReport> = (0..20_000u64)
        .map(|i| PacketReport {
            sent: Duration::from_micros(i * 500),
            arrived: Some(Duration::from_secs(1)),
            size: 1200,
        })
        .collect();
    for batch in packets.chunks(100) {
        estimator.on_feedback(batch);
    }
    assert!(estimator.arrivals.len() <= MAX_ARRIVALS);
}
