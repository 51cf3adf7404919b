//! What one second of a viewer's feedback says about its loss, for
//! adaptation.rs. Pure: counters in, a loss figure (or nothing) out, so
//! every rule is a unit test. feedback.rs gathers the counters.
//!
//! Receivers differ in what they send under congestion. Chromium sends
//! receiver reports every second whatever happens. A GStreamer receiver
//! sends each NACK as early RTCP, and each early packet pushes its next
//! regular report back, so under steady loss no report comes at all and
//! most NACKs expire unsent; its keyframe requests still come. Hence
//! several signals, each trusted only where it means something.

use super::adaptation::LOSS_LOW;

/// Share of sent packets NACKed in a tick above which loss is taken
/// from NACKs, without waiting for the next receiver report, once the
/// latest report has confirmed real loss (above `LOSS_LOW`) or the burst
/// has lasted `NACK_BURST_TICKS`: a receiver whose process stalls for a
/// moment NACKs bursts of packets that were only late, and that alone
/// must not cost it its layer.
const NACK_BURST: f64 = 0.2;
const NACK_BURST_TICKS: u32 = 3;
/// Keyframe requests (PLI, FIR) over the last `KEYFRAME_STORM_TICKS`
/// ticks that mean the viewer cannot decode this layer: it loses whole
/// frames. Counted as `KEYFRAME_STORM_LOSS`. Receivers limit their
/// requests (peersrc to one per 500 ms, so at most 6 in 3 s): 5 is a
/// receiver asking at nearly every chance it has, which a joining
/// decoder (once or twice) or random loss repaired by retransmission
/// (a request every few seconds) never is.
const KEYFRAME_STORM: u64 = 5;
const KEYFRAME_STORM_TICKS: usize = 3;
pub const KEYFRAME_STORM_LOSS: f64 = 0.25;
/// Below this many packets in a tick, a loss share means little.
const MIN_PACKETS_FOR_LOSS: u64 = 20;

/// One tick's worth of feedback: differences of counters since the
/// previous tick.
#[derive(Debug, Clone, Copy, Default)]
pub struct TickCounts {
    /// Video packets sent to the viewer.
    pub sent: u64,
    /// Of those, how many it asked to have retransmitted.
    pub nacked: u64,
    pub keyframe_requests: u64,
    /// RTCP packets of any kind from the viewer.
    pub rtcp_packets: u64,
    /// Highest fraction lost in receiver reports about our video.
    pub report: Option<f64>,
}

#[derive(Debug, Default)]
pub struct LossSignals {
    nack_burst_ticks: u32,
    /// Keyframe requests of the latest ticks, oldest first.
    recent_keyframe_requests: std::collections::VecDeque<u64>,
}

impl LossSignals {
    /// The loss this tick shows, if any; `reported_loss` is the fraction
    /// lost of the latest receiver report, however old.
    pub fn tick(&mut self, counts: TickCounts, reported_loss: f64) -> Option<f64> {
        let share_nacked = (counts.sent >= MIN_PACKETS_FOR_LOSS)
            .then(|| counts.nacked as f64 / counts.sent as f64);
        // NACKs count only in bursts: a receiver also asks again for
        // packets that are merely late, and asks more than once.
        let burst = share_nacked.filter(|share| *share > NACK_BURST);
        self.nack_burst_ticks = if burst.is_some() {
            self.nack_burst_ticks + 1
        } else {
            0
        };
        let confirmed = reported_loss > LOSS_LOW || self.nack_burst_ticks >= NACK_BURST_TICKS;
        let nack_loss = burst.filter(|_| confirmed);

        let recent = &mut self.recent_keyframe_requests;
        recent.push_back(counts.keyframe_requests);
        if recent.len() > KEYFRAME_STORM_TICKS {
            recent.pop_front();
        }
        let storm =
            recent.len() == KEYFRAME_STORM_TICKS && recent.iter().sum::<u64>() >= KEYFRAME_STORM;
        let storm_loss = storm.then_some(KEYFRAME_STORM_LOSS);

        // A viewer that keeps sending RTCP (NACKs for other streams, say)
        // yet asks for nothing of our video is receiving it: from a
        // GStreamer viewer this may be the only clean news there is.
        let quiet = (counts.rtcp_packets > 0 && counts.keyframe_requests == 0)
            .then_some(share_nacked)
            .flatten()
            .filter(|share| *share <= LOSS_LOW);

        [nack_loss, counts.report, storm_loss]
            .into_iter()
            .flatten()
            .reduce(f64::max)
            .or(quiet)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(sent: u64, nacked: u64, keyframe_requests: u64, rtcp_packets: u64) -> TickCounts {
        TickCounts {
            sent,
            nacked,
            keyframe_requests,
            rtcp_packets,
            report: None,
        }
    }

    #[test]
    fn a_report_is_taken_as_it_is() {
        let mut signals = LossSignals::default();
        let tick = TickCounts {
            report: Some(0.3),
            ..counts(100, 0, 0, 1)
        };
        assert_eq!(signals.tick(tick, 0.3), Some(0.3));
    }

    #[test]
    fn a_short_nack_burst_alone_is_not_loss_but_a_long_one_is() {
        let mut signals = LossSignals::default();
        // 40% NACKed, no report has shown loss: late packets, maybe.
        assert_eq!(signals.tick(counts(100, 40, 0, 1), 0.0), None);
        assert_eq!(signals.tick(counts(100, 40, 0, 1), 0.0), None);
        // The third second in a row: congestion, whatever the reports say.
        assert_eq!(signals.tick(counts(100, 40, 0, 1), 0.0), Some(0.4));
        // A burst ends; the count starts again.
        assert_eq!(signals.tick(counts(100, 1, 0, 1), 0.0), Some(0.01));
        assert_eq!(signals.tick(counts(100, 40, 0, 1), 0.0), None);
    }

    #[test]
    fn a_nack_burst_counts_at_once_after_a_lossy_report() {
        let mut signals = LossSignals::default();
        assert_eq!(signals.tick(counts(100, 30, 0, 1), 0.15), Some(0.3));
    }

    #[test]
    fn three_seconds_of_keyframe_requests_count_as_heavy_loss() {
        let mut signals = LossSignals::default();
        // A GStreamer viewer under congestion: a few NACKs get through
        // (most expire), no report, PLI after PLI.
        assert_eq!(signals.tick(counts(200, 6, 4, 8), 0.0), None);
        assert_eq!(signals.tick(counts(200, 6, 5, 8), 0.0), None);
        assert_eq!(
            signals.tick(counts(200, 6, 3, 8), 0.0),
            Some(KEYFRAME_STORM_LOSS)
        );
        // A joining decoder asks once or twice; random loss that
        // retransmission mostly repairs, now and then: no storm.
        let mut signals = LossSignals::default();
        for requests in [2, 1, 0, 1, 0, 0, 1, 1, 0, 1, 1] {
            assert_ne!(
                signals.tick(counts(200, 0, requests, 8), 0.0),
                Some(KEYFRAME_STORM_LOSS)
            );
        }
    }

    #[test]
    fn a_receiver_asking_at_every_chance_it_has_is_a_storm() {
        // peersrc asks at most once per 500 ms: on a path too thin for
        // the layer it asks twice a second, sometimes once or three
        // times as the request times fall across the ticks.
        let mut signals = LossSignals::default();
        assert_eq!(signals.tick(counts(200, 6, 2, 8), 0.0), None);
        assert_eq!(signals.tick(counts(200, 6, 1, 8), 0.0), None);
        assert_eq!(
            signals.tick(counts(200, 6, 2, 8), 0.0),
            Some(KEYFRAME_STORM_LOSS)
        );
        assert_eq!(
            signals.tick(counts(200, 6, 3, 8), 0.0),
            Some(KEYFRAME_STORM_LOSS)
        );
        // It stops asking: the storm is over once its requests are no
        // longer 5 of the last three ticks'.
        assert_eq!(
            signals.tick(counts(200, 0, 0, 8), 0.0),
            Some(KEYFRAME_STORM_LOSS)
        );
        assert_eq!(signals.tick(counts(200, 0, 0, 8), 0.0), Some(0.0));
    }

    #[test]
    fn rtcp_without_requests_for_our_video_is_clean_news() {
        let mut signals = LossSignals::default();
        assert_eq!(signals.tick(counts(30, 0, 0, 12), 0.25), Some(0.0));
        assert_eq!(signals.tick(counts(30, 0, 0, 12), 0.25), Some(0.0));
    }

    #[test]
    fn silence_is_not_clean_news() {
        let mut signals = LossSignals::default();
        // Nothing at all from the viewer: its RTCP may be what is lost.
        assert_eq!(signals.tick(counts(30, 0, 0, 0), 0.25), None);
        // Talking, but asking for a keyframe: not clean either.
        assert_eq!(signals.tick(counts(30, 0, 1, 5), 0.25), None);
        // Talking, but NACKing more than 2%: the loss holds.
        assert_eq!(signals.tick(counts(30, 3, 0, 5), 0.25), None);
    }
}
