//! The loss a viewer's receiver reports show over one tick of
//! feedback.rs (about a second), from their cumulative counters. Pure, so
//! the arithmetic is unit-tested.
//!
//! A report's own "fraction lost" covers only the interval since the
//! viewer's previous report. peersrc reports often (every ~15–60 ms, so
//! that its NACKs are not held back; receive.rs), and over a few packets
//! one lost packet is a fraction of a third: taken as it is, 2% random
//! loss would read as heavy loss. The cumulative number lost and the
//! extended highest sequence number give the loss over many reports
//! instead: over at least `MIN_EXPECTED` packets (a second of a 1 Mbit/s
//! stream, ~3 s of a 150 kbit/s one), so that 5% random loss does not
//! read as more than 10% now and then (over the ~36 packets a second of
//! a 150 kbit/s layer it does, one second in twenty); at once when the
//! loss is plainly heavy.

/// Packets the loss is measured over.
const MIN_EXPECTED: u32 = 100;
/// Fewer packets are enough when this share of them was lost.
const PLAINLY_HEAVY: f64 = 0.2;
const MIN_EXPECTED_HEAVY: u32 = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Counters {
    cumulative_lost: i32,
    highest_seq: u32,
}

#[derive(Debug, Default)]
pub struct ReportLoss {
    /// The latest report as of the previous tick.
    base: Option<Counters>,
    latest: Option<Counters>,
    /// Highest fraction lost of the reports since the previous tick.
    highest_fraction: Option<f64>,
}

impl ReportLoss {
    /// A report about our stream arrived.
    pub fn report(&mut self, fraction_lost: f64, cumulative_lost: i32, highest_seq: u32) {
        self.latest = Some(Counters {
            cumulative_lost,
            highest_seq,
        });
        self.highest_fraction = Some(self.highest_fraction.unwrap_or(0.0).max(fraction_lost));
    }

    /// The loss since the last figure given (0.0–1.0), once enough
    /// packets were expected; None when no report came since the
    /// previous tick, or too few packets to say.
    pub fn tick(&mut self) -> Option<f64> {
        let fraction = self.highest_fraction.take()?;
        let latest = self.latest?;
        let Some(base) = self.base else {
            // The first report: its own fraction is all there is.
            self.base = Some(latest);
            return Some(fraction);
        };
        let expected = latest.highest_seq.wrapping_sub(base.highest_seq);
        if expected >= u32::MAX / 2 {
            // The sequence went backwards: a new stream.
            self.base = Some(latest);
            return Some(fraction);
        }
        let lost = latest.cumulative_lost.saturating_sub(base.cumulative_lost);
        let loss = (lost as f64 / expected.max(1) as f64).clamp(0.0, 1.0);
        let enough =
            expected >= MIN_EXPECTED || (expected >= MIN_EXPECTED_HEAVY && loss > PLAINLY_HEAVY);
        if !enough {
            return None;
        }
        self.base = Some(latest);
        Some(loss)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frequent_reports_of_a_lightly_lossy_stream_add_up_to_its_loss() {
        let mut loss = ReportLoss::default();
        loss.report(0.0, 0, 1000);
        assert_eq!(loss.tick(), Some(0.0));
        // Twenty reports in a second, each over 2-3 packets; one packet
        // in fifty lost: single reports say 33%, the second says 2%.
        let mut lost = 0;
        for report in 1..=20u32 {
            let fraction = if report % 10 == 0 {
                lost += 1;
                0.33
            } else {
                0.0
            };
            loss.report(fraction, lost, 1000 + report * 5);
        }
        let second = loss.tick().unwrap();
        assert!((second - 0.02).abs() < 1e-9, "{second}");
    }

    #[test]
    fn no_report_no_figure() {
        let mut loss = ReportLoss::default();
        assert_eq!(loss.tick(), None);
        loss.report(0.1, 5, 100);
        assert!(loss.tick().is_some());
        assert_eq!(loss.tick(), None);
    }

    #[test]
    fn the_first_report_gives_its_own_fraction_then_enough_packets_are_waited_for() {
        let mut loss = ReportLoss::default();
        loss.report(0.25, 40, 160);
        assert_eq!(loss.tick(), Some(0.25));
        // 40 packets, 3 lost: not enough to say (at 5% random loss one
        // second in twenty would read above 10% over so few).
        loss.report(0.5, 43, 200);
        assert_eq!(loss.tick(), None);
        // 100 packets since the last figure, 5 lost.
        loss.report(0.0, 45, 260);
        assert_eq!(loss.tick(), Some(0.05));
    }

    #[test]
    fn plainly_heavy_loss_is_told_at_once() {
        let mut loss = ReportLoss::default();
        loss.report(0.0, 0, 0);
        loss.tick();
        loss.report(0.5, 12, 30);
        assert_eq!(loss.tick(), Some(0.4));
    }

    #[test]
    fn heavy_loss_reads_as_heavy() {
        let mut loss = ReportLoss::default();
        loss.report(0.0, 0, 0);
        loss.tick();
        loss.report(0.6, 60, 100);
        assert_eq!(loss.tick(), Some(0.6));
    }

    #[test]
    fn sequence_wraps_and_restarts_are_handled() {
        let mut loss = ReportLoss::default();
        loss.report(0.0, 0, 0x0000_fff0);
        loss.tick();
        // The 16-bit sequence wrapped: the cycle count went up.
        loss.report(0.0, 4, 0x0001_0070);
        assert_eq!(loss.tick(), Some(4.0 / 128.0));
        // A new stream starting lower: the report's own fraction.
        loss.report(0.1, 0, 5);
        assert_eq!(loss.tick(), Some(0.1));
    }
}
