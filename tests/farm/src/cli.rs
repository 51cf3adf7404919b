//! The farm's command line, shared by `viewer-farm` and broadcast_bench's
//! `farm` subcommand.
//!
//! Two modes: a run of `--seconds` that prints a summary (exit status 1 if
//! any viewer never received), and `--serve`, a line protocol on
//! stdin/stdout for a benchmark that measures other processes over the
//! same window: the farm prints `started`, then answers each `snapshot`
//! line with one JSON [`Snapshot`] line, `wait SECONDS` with `receiving`
//! (every viewer has a decodable frame) or `failed REASON`, and stops at
//! `quit` or end of input.

use std::io::BufRead;
use std::net::IpAddr;
use std::time::Duration;

use crate::farm::{Farm, FarmConfig, frame_rates, frozen_per_minute};
use crate::signal::Target;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    /// gst-peer's signalling (peersink): --uri ws://host:port/room
    Peer,
    /// gst-plugins-rs's gst-webrtc-signalling-server (webrtcsink): --uri ws://host:port
    Gstwebrtc,
}

#[derive(Debug, Clone, clap::Args)]
pub struct FarmArgs {
    /// Signalling address: ws://host:port/room (peer) or ws://host:port (gstwebrtc)
    #[arg(long)]
    pub uri: String,
    /// The producer's peer id
    #[arg(long)]
    pub producer: String,
    #[arg(long, value_enum, default_value_t = Protocol::Peer)]
    pub protocol: Protocol,
    /// Number of viewers
    #[arg(long, default_value_t = 10)]
    pub viewers: usize,
    /// Local address of the viewers' sockets
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Milliseconds between two viewers' starts
    #[arg(long, default_value_t = 20)]
    pub ramp_ms: u64,
    /// Worker threads shared by all viewers
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Seconds each viewer may take to connect and get its first frame
    #[arg(long, default_value_t = 30)]
    pub connect_timeout: u64,
    /// Seconds to count frames over, once every viewer receives
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Line protocol on stdin/stdout instead of a timed run (for benchmarks)
    #[arg(long)]
    pub serve: bool,
    /// At the end, viewers close their signalling WebSockets (as closing tabs do) instead of vanishing
    #[arg(long)]
    pub close_at_end: bool,
}

impl FarmArgs {
    pub fn config(&self) -> FarmConfig {
        let target = match self.protocol {
            Protocol::Peer => Target::Peer {
                uri: self.uri.clone(),
                producer: self.producer.clone(),
            },
            Protocol::Gstwebrtc => Target::GstWebRtc {
                url: self.uri.clone(),
                producer: self.producer.clone(),
            },
        };
        FarmConfig {
            target,
            viewers: self.viewers,
            bind: self.bind,
            ramp: Duration::from_millis(self.ramp_ms),
            threads: self.threads,
            connect_timeout: Duration::from_secs(self.connect_timeout),
        }
    }

    /// How long all viewers may take to receive: the last one starts
    /// after the ramp, then has its own connect timeout.
    fn receiving_timeout(&self) -> Duration {
        Duration::from_millis(self.ramp_ms * self.viewers as u64)
            + Duration::from_secs(self.connect_timeout)
    }
}

/// Runs the farm as the arguments say; the process exit status.
pub fn run(args: &FarmArgs) -> i32 {
    let farm = match Farm::start(args.config()) {
        Ok(farm) => farm,
        Err(err) => {
            eprintln!("viewer farm: {err}");
            return 2;
        }
    };
    let status = if args.serve {
        serve(&farm)
    } else {
        timed(&farm, args)
    };
    if args.close_at_end {
        farm.leave();
    } else {
        farm.stop();
    }
    status
}

fn timed(farm: &Farm, args: &FarmArgs) -> i32 {
    if let Err(why) = farm.wait_receiving(args.receiving_timeout()) {
        println!("FAILED: {why}");
        return 1;
    }
    let before = farm.snapshot();
    std::thread::sleep(Duration::from_secs(args.seconds));
    let after = farm.snapshot();
    let rates = frame_rates(&before, &after);
    let summary = Summary::of(&rates);
    let window = after.seconds - before.seconds;
    let cpu = (after.cpu_seconds - before.cpu_seconds) / window;
    let joins: Vec<f64> = after
        .viewers
        .iter()
        .filter_map(|v| v.first_frame_ms)
        .collect();
    let joins = Summary::of(&joins);
    let frozen = Summary::of(&frozen_per_minute(&before, &after));
    let longest_gap = after
        .viewers
        .iter()
        .map(|v| v.longest_gap_ms)
        .fold(0.0, f64::max);
    println!(
        "{} viewers, {window:.1} s: fps per viewer min {:.1} / p5 {:.1} / median {:.1}; \
         join → first frame median {:.0} ms, max {:.0} ms; farm CPU {:.1}% of a core, \
         RSS {} MB, {} threads; frozen per viewer max {:.0} / median {:.0} ms a minute, \
         longest gap {:.0} ms",
        rates.len(),
        summary.min,
        summary.p5,
        summary.median,
        joins.median,
        joins.max,
        cpu * 100.0,
        after.rss_kb / 1024,
        after.threads,
        frozen.max,
        frozen.median,
        longest_gap
    );
    if after.failures().is_empty() && summary.min > 0.0 {
        0
    } else {
        println!("FAILED: {} ({:?})", after.phases(), after.failures());
        1
    }
}

fn serve(farm: &Farm) -> i32 {
    println!("started");
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let mut words = line.split_whitespace();
        match words.next() {
            Some("snapshot") => match serde_json::to_string(&farm.snapshot()) {
                Ok(json) => println!("{json}"),
                Err(err) => println!("failed {err}"),
            },
            Some("wait") => {
                let seconds = words.next().and_then(|s| s.parse().ok()).unwrap_or(60.0);
                match farm.wait_receiving(Duration::from_secs_f64(seconds)) {
                    Ok(_) => println!("receiving"),
                    Err(why) => println!("failed {why}"),
                }
            }
            Some("quit") => break,
            _ => println!("failed unknown command {line:?}"),
        }
    }
    0
}

/// Minimum, 5th percentile, median and maximum of a set of values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub min: f64,
    pub p5: f64,
    pub median: f64,
    pub p95: f64,
    pub max: f64,
}

impl Summary {
    /// NaN everywhere for an empty set.
    pub fn of(values: &[f64]) -> Summary {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let at = |p: f64| {
            if sorted.is_empty() {
                f64::NAN
            } else {
                // Nearest rank: the value at or below which p of them lie.
                let rank = (p * sorted.len() as f64).ceil() as usize;
                sorted[rank.clamp(1, sorted.len()) - 1]
            }
        };
        Summary {
            min: at(0.0),
            p5: at(0.05),
            median: at(0.5),
            p95: at(0.95),
            max: at(1.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Summary;

    #[test]
    fn summary_uses_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = Summary::of(&values);
        assert_eq!(
            (s.min, s.p5, s.median, s.p95, s.max),
            (1.0, 5.0, 50.0, 95.0, 100.0)
        );
        let s = Summary::of(&[30.0, 29.0, 12.0]);
        assert_eq!((s.min, s.p5, s.median), (12.0, 12.0, 29.0));
        assert!(Summary::of(&[]).median.is_nan());
    }
}
