//! The farm: N viewers on a small tokio runtime, started one after another,
//! and snapshots of their counters and of the farm's own cost.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};

use crate::FarmError;
use crate::signal::Target;
use crate::usage;
use crate::viewer::{self, Phase, ViewerSetup, ViewerStats};

#[derive(Debug, Clone)]
pub struct FarmConfig {
    pub target: Target,
    pub viewers: usize,
    /// Local address of the viewers' sockets (their only ICE candidate).
    pub bind: IpAddr,
    /// Pause between two viewers' starts: a crowd arriving, not every
    /// viewer in the same millisecond.
    pub ramp: Duration,
    /// Runtime worker threads shared by all viewers.
    pub threads: usize,
    /// Signalling + ICE + DTLS deadline per viewer.
    pub connect_timeout: Duration,
}

pub struct Farm {
    runtime: tokio::runtime::Runtime,
    viewers: Vec<Arc<ViewerStats>>,
    stop: watch::Sender<bool>,
    /// Viewer tasks not finished yet, and a wake-up each time one finishes.
    running: Arc<(AtomicUsize, Notify)>,
    started: Instant,
}

/// One viewer's counters at one moment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ViewerSnapshot {
    pub phase: String,
    /// Frames a decoder would show (complete, chained to a keyframe).
    pub decodable: u64,
    pub complete: u64,
    pub keyframes: u64,
    pub incomplete: u64,
    pub skipped: u64,
    pub packets: u64,
    pub bytes: u64,
    pub nacks: u64,
    pub plis: u64,
    /// Start → ICE and DTLS connected.
    pub connected_ms: Option<f64>,
    /// Start → first decodable frame.
    pub first_frame_ms: Option<f64>,
    /// The signalling connection went away with the media flowing; the
    /// viewer watched on without it.
    #[serde(default)]
    pub signalling_lost: bool,
    /// Frozen time of the decodable frames since the first (freeze.rs's
    /// definition, on arrival: no jitter buffer smooths it), ms.
    #[serde(default)]
    pub frozen_ms: f64,
    #[serde(default)]
    pub freezes: u64,
    /// The longest gap between two decodable frames, ms.
    #[serde(default)]
    pub longest_gap_ms: f64,
    pub error: Option<String>,
}

/// Every viewer plus the farm's own cost, at one moment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    /// Since the farm started.
    pub seconds: f64,
    /// The farm process's CPU time so far.
    pub cpu_seconds: f64,
    pub rss_kb: u64,
    pub threads: u64,
    pub viewers: Vec<ViewerSnapshot>,
}

impl Snapshot {
    pub fn receiving(&self) -> usize {
        self.viewers
            .iter()
            .filter(|v| v.phase == Phase::Receiving.name())
            .count()
    }

    /// Viewers that failed, with why.
    pub fn failures(&self) -> Vec<(usize, String)> {
        self.viewers
            .iter()
            .enumerate()
            .filter(|(_, v)| v.phase == Phase::Failed.name())
            .map(|(i, v)| (i, v.error.clone().unwrap_or_default()))
            .collect()
    }

    /// Packet and frame counts summed over the viewers, for diagnostics.
    pub fn totals(&self) -> String {
        let sum = |f: fn(&ViewerSnapshot) -> u64| self.viewers.iter().map(f).sum::<u64>();
        format!(
            "in all: {} packets, {} complete frames, {} keyframes, {} decodable, {} NACKs, {} PLIs",
            sum(|v| v.packets),
            sum(|v| v.complete),
            sum(|v| v.keyframes),
            sum(|v| v.decodable),
            sum(|v| v.nacks),
            sum(|v| v.plis)
        )
    }

    /// Phases and how many viewers are in each, e.g. "3 receiving, 1 connecting".
    pub fn phases(&self) -> String {
        let mut counts: Vec<(String, usize)> = Vec::new();
        for viewer in &self.viewers {
            match counts.iter_mut().find(|(phase, _)| *phase == viewer.phase) {
                Some((_, n)) => *n += 1,
                None => counts.push((viewer.phase.clone(), 1)),
            }
        }
        counts
            .iter()
            .map(|(phase, n)| format!("{n} {phase}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Frozen milliseconds per minute of each viewer between two snapshots.
pub fn frozen_per_minute(before: &Snapshot, after: &Snapshot) -> Vec<f64> {
    let minutes = (after.seconds - before.seconds) / 60.0;
    before
        .viewers
        .iter()
        .zip(&after.viewers)
        .map(|(b, a)| (a.frozen_ms - b.frozen_ms).max(0.0) / minutes)
        .collect()
}

/// Decodable frames per second of each viewer between two snapshots.
pub fn frame_rates(before: &Snapshot, after: &Snapshot) -> Vec<f64> {
    let seconds = after.seconds - before.seconds;
    before
        .viewers
        .iter()
        .zip(&after.viewers)
        .map(|(b, a)| a.decodable.saturating_sub(b.decodable) as f64 / seconds)
        .collect()
}

impl Farm {
    /// Starts the runtime and, in the background, the viewers one by one.
    pub fn start(config: FarmConfig) -> Result<Farm, FarmError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.threads.max(1))
            .thread_name("farm")
            .enable_all()
            .build()?;
        let cert = str0m::crypto::from_feature_flags()
            .dtls_provider
            .generate_certificate()
            .ok_or_else(|| FarmError::Certificate("the crypto provider made none".into()))?;
        let setup = ViewerSetup {
            target: config.target.clone(),
            bind: config.bind,
            cert,
            connect_timeout: config.connect_timeout,
        };
        let viewers: Vec<Arc<ViewerStats>> = (0..config.viewers)
            .map(|_| Arc::new(ViewerStats::default()))
            .collect();
        let (stop, stopped) = watch::channel(false);
        let launch = viewers.clone();
        let running = Arc::new((AtomicUsize::new(0), Notify::new()));
        let count = running.clone();
        runtime.spawn(async move {
            for (i, stats) in launch.into_iter().enumerate() {
                if i > 0 && !config.ramp.is_zero() {
                    tokio::time::sleep(config.ramp).await;
                }
                if *stopped.borrow() {
                    return;
                }
                count.0.fetch_add(1, Ordering::AcqRel);
                let done = count.clone();
                let viewer = viewer::run(setup.clone(), stats, stopped.clone());
                tokio::spawn(async move {
                    viewer.await;
                    done.0.fetch_sub(1, Ordering::AcqRel);
                    done.1.notify_waiters();
                });
            }
        });
        Ok(Farm {
            runtime,
            viewers,
            stop,
            running,
            started: Instant::now(),
        })
    }

    pub fn snapshot(&self) -> Snapshot {
        let viewers = self
            .viewers
            .iter()
            .map(|stats| {
                let ms = |us: u64| (us > 0).then(|| us as f64 / 1000.0);
                let load = |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::Relaxed);
                ViewerSnapshot {
                    phase: stats.phase().name().to_owned(),
                    decodable: load(&stats.decodable),
                    complete: load(&stats.complete),
                    keyframes: load(&stats.keyframes),
                    incomplete: load(&stats.incomplete),
                    skipped: load(&stats.skipped),
                    packets: load(&stats.packets),
                    bytes: load(&stats.bytes),
                    nacks: load(&stats.nacks),
                    plis: load(&stats.plis),
                    connected_ms: ms(load(&stats.connected_us)),
                    first_frame_ms: ms(load(&stats.first_frame_us)),
                    signalling_lost: load(&stats.signalling_lost) != 0,
                    frozen_ms: load(&stats.frozen_us) as f64 / 1000.0,
                    freezes: load(&stats.freezes),
                    longest_gap_ms: load(&stats.longest_gap_us) as f64 / 1000.0,
                    error: stats.error.lock().unwrap().clone(),
                }
            })
            .collect();
        Snapshot {
            seconds: self.started.elapsed().as_secs_f64(),
            cpu_seconds: usage::cpu_seconds(None),
            rss_kb: usage::rss_kb(None),
            threads: usage::threads(None),
            viewers,
        }
    }

    /// Waits until every viewer has a decodable frame. Fails as soon as
    /// one viewer fails, or at `timeout`, saying which viewers and why.
    pub fn wait_receiving(&self, timeout: Duration) -> Result<Snapshot, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let snapshot = self.snapshot();
            let failures = snapshot.failures();
            if !failures.is_empty() {
                let list: Vec<String> = failures
                    .iter()
                    .take(5)
                    .map(|(i, why)| format!("viewer {i}: {why}"))
                    .collect();
                return Err(format!(
                    "{} of {} viewers failed ({}); {}",
                    failures.len(),
                    snapshot.viewers.len(),
                    snapshot.phases(),
                    list.join("; ")
                ));
            }
            if snapshot.receiving() == snapshot.viewers.len() {
                return Ok(snapshot);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "after {timeout:?} only {} of {} viewers receive ({}; {})",
                    snapshot.receiving(),
                    snapshot.viewers.len(),
                    snapshot.phases(),
                    snapshot.totals()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops every viewer at once: their sockets close without a
    /// goodbye, as when a machine or its network goes (gst-peer's server
    /// then keeps their sessions for its resume window).
    pub fn stop(self) {
        let _ = self.stop.send(true);
        self.runtime.shutdown_timeout(Duration::from_secs(2));
    }

    /// Stops every viewer as a closing tab does: each closes its
    /// signalling WebSocket, so the server ends its session at once. Waits
    /// (at most 3 s) for every viewer to have closed.
    pub fn leave(self) {
        let _ = self.stop.send(true);
        let running = self.running.clone();
        self.runtime.block_on(async move {
            let all_closed = async {
                loop {
                    let finished = running.1.notified();
                    if running.0.load(Ordering::Acquire) == 0 {
                        return;
                    }
                    finished.await;
                }
            };
            let _ = tokio::time::timeout(Duration::from_secs(3), all_closed).await;
        });
        self.runtime.shutdown_timeout(Duration::from_secs(2));
    }
}
