//! The loss a viewer's receiver reports show over one tick of
//! feedback.rs (about a second), from their cumulative counters. Pure, so
//! the arithmetic is unit-tested.
//!
//! A report's own "fraction lost" covers only the interval since the
//! viewer's previous report. peersrc reports often (every ~15–60 ms, so
//! that its NACKs are not held back; receive.rs), and over a few packets
//! one lost packet is a fraction of a third: taken as it is, 2% random
//! loss would read as heavy loss. The cumulative number lost and the
//! extended highest sequence number give the loss over the whole tick
//! instead, however many reports it had.

/// Fewer packets expected than this over a tick: the report's own
/// fraction is used instead (a slow stream, or one report only).
const MIN_EXPECTED: u32 = 10;

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

    /// The loss since the previous tick (0.0–1.0), or None when no report
    /// came since.
    pub fn tick(&mut self) -> Option<f64> {
        let fraction = self.highest_fraction.take()?;
        let from_counters = match (self.base, self.latest) {
            (Some(base), Some(latest)) => {
                let expected = latest.highest_seq.wrapping_sub(base.highest_seq);
                // A sequence going backwards (a new stream) is no measure.
                (expected >= MIN_EXPECTED && expected < u32::MAX / 2).then(|| {
                    let lost = latest.cumulative_lost.saturating_sub(base.cumulative_lost);
                    (lost as f64 / expected as f64).clamp(0.0, 1.0)
                })
            }
            _ => None,
        };
        self.base = self.latest;
        Some(from_counters.unwrap_or(fraction))
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
    fn the_first_report_or_a_slow_stream_gives_the_reports_own_fraction() {
        let mut loss = ReportLoss::default();
        loss.report(0.25, 40, 160);
        assert_eq!(loss.tick(), Some(0.25));
        // Four packets expected since: too few to count.
        loss.report(0.5, 42, 164);
        assert_eq!(loss.tick(), Some(0.5));
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
        loss.report(0.0, 1, 0x0001_0010);
        assert_eq!(loss.tick(), Some(1.0 / 32.0));
        // A new stream starting lower: the report's own fraction.
        loss.report(0.1, 0, 5);
        assert_eq!(loss.tick(), Some(0.1));
    }
}
