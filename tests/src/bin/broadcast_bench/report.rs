//! What the benchmark prints: a markdown row per point as it is measured,
//! then tables over the rounds, the like-for-like ratio, how many viewers
//! each sender serves at full rate, latency and joins, and every failed
//! point, plainly.

use peer_farm::cli::Summary;

use crate::Kind;
use crate::decoding::Picture;
use crate::point::{Point, PointOptions};
use crate::sender::Broadcast;

pub struct Report {
    broadcast: Broadcast,
    kinds: Vec<Kind>,
    webrtcsink_max: usize,
    points: Vec<(usize, Point)>,
    latencies: Vec<(usize, Kind, Picture)>,
    joins: Vec<(usize, Kind, f64, f64)>,
    failures: Vec<String>,
}

fn pct(cores: f64) -> String {
    format!("{:.1}%", cores * 100.0)
}

fn pct2(cores: f64) -> String {
    format!("{:.2}%", cores * 100.0)
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let values: Vec<f64> = values.collect();
    Summary::of(&values).median
}

impl Report {
    pub fn new(broadcast: Broadcast, kinds: &[Kind], webrtcsink_max: usize) -> Report {
        Report {
            broadcast,
            kinds: kinds.to_vec(),
            webrtcsink_max,
            points: Vec::new(),
            latencies: Vec::new(),
            joins: Vec::new(),
            failures: Vec::new(),
        }
    }

    pub fn header(&self, options: &PointOptions, rounds: usize) {
        let b = self.broadcast;
        println!(
            "# Broadcast: {}x{}@30 VP8 at {} kbit/s; {} round(s); per point {} s with no viewer, \
             then {} s with N viewers (farm: {} threads)\n",
            b.width,
            b.height,
            b.bitrate / 1000,
            rounds,
            options.baseline_seconds,
            options.seconds,
            options.farm_threads
        );
        println!(
            "CPU in % of one core. total/N: the sender's whole cost shared out; marginal: \
             (with N − with none) / N. at 30 fps: total/N × 30 / median fps.\n"
        );
        println!(
            "| round | sender | viewers | fps per viewer min / p5 / median | kbit/s | sender CPU 0 → N | \
             CPU per viewer total/N · marginal | at 30 fps | RSS MB 0 → N | MB per viewer \
             total/N · marginal | threads 0 → N | farm CPU | join → frame ms median / p95 | \
             NACK / PLI / lost frames |"
        );
        println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    }

    pub fn point(
        &mut self,
        round: usize,
        kind: Kind,
        viewers: usize,
        result: Result<Point, String>,
    ) {
        match result {
            Ok(p) => {
                println!(
                    "| {round} | {} | {viewers} | {:.1} / {:.1} / {:.1} | {:.0} | {} → {} | {} · {} | {} | \
                     {:.0} → {:.0} | {:.2} · {:.2} | {} → {} | {} | {:.0} / {:.0} | {} / {} / {} |",
                    kind.name(),
                    p.fps.min,
                    p.fps.p5,
                    p.fps.median,
                    p.kbps,
                    pct(p.baseline.cpu),
                    pct(p.sender.cpu),
                    pct2(p.cpu_total_per_viewer()),
                    pct2(p.cpu_marginal_per_viewer()),
                    pct2(p.cpu_per_viewer_at_30fps()),
                    p.baseline.rss_kb as f64 / 1024.0,
                    p.sender.rss_kb as f64 / 1024.0,
                    p.rss_total_per_viewer_mb(),
                    p.rss_marginal_per_viewer_mb(),
                    p.baseline.threads,
                    p.sender.threads,
                    pct(p.farm.cpu),
                    p.join.median,
                    p.join.p95,
                    p.nacks,
                    p.plis,
                    p.lost_frames
                );
                self.points.push((round, p));
            }
            Err(why) => {
                println!(
                    "| {round} | {} | {viewers} | **FAILED**: {why} | | | | | | | | | | |",
                    kind.name()
                );
                self.failures.push(format!(
                    "round {round}, {} with {viewers} viewers: {why}",
                    kind.name()
                ));
            }
        }
    }

    pub fn latency(&mut self, round: usize, kind: Kind, result: Result<Picture, String>) {
        match result {
            Ok(picture) => self.latencies.push((round, kind, picture)),
            Err(why) => self
                .failures
                .push(format!("round {round}, {} latency: {why}", kind.name())),
        }
    }

    pub fn join(&mut self, round: usize, kind: Kind, result: Result<(f64, f64), String>) {
        match result {
            Ok((cold, warm)) => self.joins.push((round, kind, cold, warm)),
            Err(why) => self
                .failures
                .push(format!("round {round}, {} joins: {why}", kind.name())),
        }
    }

    fn ok_points(&self, kind: Kind, viewers: usize) -> Vec<&Point> {
        self.points
            .iter()
            .filter(|(_, p)| p.kind == kind && p.viewers == viewers)
            .map(|(_, p)| p)
            .collect()
    }

    /// Prints the tables over rounds; returns the exit status.
    pub fn summary(&self) -> i32 {
        let mut counts: Vec<usize> = self.points.iter().map(|(_, p)| p.viewers).collect();
        counts.sort_unstable();
        counts.dedup();
        println!("\n## Over the rounds (medians; fps min is the worst viewer of any round)\n");
        println!(
            "| viewers | sender | rounds | fps min / median | sender CPU | CPU per viewer total/N \
             · marginal | at 30 fps | MB per viewer total/N · marginal | threads per viewer | \
             farm CPU | join ms median |"
        );
        println!("|---|---|---|---|---|---|---|---|---|---|---|");
        for &count in &counts {
            for &kind in &self.kinds {
                let points = self.ok_points(kind, count);
                if points.is_empty() {
                    continue;
                }
                let m = |f: fn(&Point) -> f64| median(points.iter().map(|p| f(p)));
                println!(
                    "| {count} | {} | {} | {:.1} / {:.1} | {} | {} · {} | {} | {:.2} · {:.2} | \
                     {:.1} | {} | {:.0} |",
                    kind.name(),
                    points.len(),
                    points
                        .iter()
                        .map(|p| p.fps.min)
                        .fold(f64::INFINITY, f64::min),
                    m(|p| p.fps.median),
                    pct(m(|p| p.sender.cpu)),
                    pct2(m(Point::cpu_total_per_viewer)),
                    pct2(m(Point::cpu_marginal_per_viewer)),
                    pct2(m(Point::cpu_per_viewer_at_30fps)),
                    m(Point::rss_total_per_viewer_mb),
                    m(Point::rss_marginal_per_viewer_mb),
                    m(Point::threads_marginal_per_viewer),
                    pct(m(|p| p.farm.cpu)),
                    m(|p| p.join.median),
                );
            }
        }
        self.like_for_like(&counts);
        self.full_rate(&counts);
        self.decoded();
        if self.failures.is_empty() {
            println!("\nEvery point reached every viewer.");
            0
        } else {
            println!(
                "\n## FAILED ({} of the run's points)\n",
                self.failures.len()
            );
            for failure in &self.failures {
                println!("- FAILED: {failure}");
            }
            1
        }
    }

    fn like_for_like(&self, counts: &[usize]) {
        if !self.kinds.contains(&Kind::WebRtcSink) {
            return;
        }
        println!("\n## Like for like: sender CPU per viewer at 30 fps, webrtcsink / peersink\n");
        for &ours_kind in self.kinds.iter().filter(|kind| kind.is_peersink()) {
            for &count in counts {
                let at30 = |kind| {
                    let points = self.ok_points(kind, count);
                    median(points.iter().map(|p| p.cpu_per_viewer_at_30fps()))
                };
                let (ours, theirs) = (at30(ours_kind), at30(Kind::WebRtcSink));
                if ours.is_nan() || theirs.is_nan() {
                    continue;
                }
                println!(
                    "- {count} viewers: webrtcsink {} per viewer, {} {}: {:.1}×",
                    pct2(theirs),
                    ours_kind.name(),
                    pct2(ours),
                    theirs / ours
                );
            }
        }
    }

    fn full_rate(&self, counts: &[usize]) {
        println!("\n## Viewers served with every viewer at ≥ 29 fps in every round\n");
        for &kind in &self.kinds {
            let tried: Vec<usize> = counts
                .iter()
                .copied()
                .filter(|&n| !self.ok_points(kind, n).is_empty())
                .collect();
            let served = tried
                .iter()
                .copied()
                .filter(|&n| self.ok_points(kind, n).iter().all(|p| p.full_rate()))
                .max();
            let limit = if kind == Kind::WebRtcSink {
                format!(" (not run past {})", self.webrtcsink_max)
            } else {
                String::new()
            };
            match served {
                Some(n) => println!("- {}: {n} (of {tried:?}){limit}", kind.name()),
                None => println!("- {}: none of {tried:?}{limit}", kind.name()),
            }
        }
    }

    fn decoded(&self) {
        if !self.latencies.is_empty() {
            println!(
                "\n## Glass-to-glass latency (decoded picture, no render delay) and picture \
                 quality (luma PSNR against the source frame)\n"
            );
            println!(
                "| round | sender → receiver | p50 ms | p95 ms | frames | PSNR dB mean (p5 / median; frames) |"
            );
            println!("|---|---|---|---|---|---|");
            for (round, kind, p) in &self.latencies {
                println!(
                    "| {round} | {} → {} | {:.1} | {:.1} | {} | {:.2} ({:.1} / {:.1}; {}) |",
                    kind.name(),
                    kind.receiver(),
                    p.latency.median,
                    p.latency.p95,
                    p.frames,
                    p.psnr,
                    p.psnr_spread.p5,
                    p.psnr_spread.median,
                    p.psnr_frames
                );
            }
        }
        if !self.joins.is_empty() {
            println!("\n## Join → first decoded frame\n");
            println!("| round | sender → receiver | cold process ms | warm (median) ms |");
            println!("|---|---|---|---|");
            for (round, kind, cold, warm) in &self.joins {
                println!(
                    "| {round} | {} → {} | {cold:.0} | {warm:.0} |",
                    kind.name(),
                    kind.receiver()
                );
            }
        }
    }
}
