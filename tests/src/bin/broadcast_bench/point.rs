//! One point of the benchmark: one sender of one kind, measured first with
//! no viewer (the baseline), then with N farm viewers over the same
//! window as the viewers' frame counts.

use std::time::{Duration, Instant};

use peer_farm::cli::Summary;
use peer_farm::farm::{Snapshot, frame_rates};
use peer_farm::usage;

use crate::Kind;
use crate::decoding::start_sender;
use crate::infra::{Process, Signalling, self_command};
use crate::memory;
use crate::sender::Broadcast;

/// How the points are run.
#[derive(Debug, Clone)]
pub struct PointOptions {
    pub broadcast: Broadcast,
    pub webrtc_server: Option<String>,
    /// The measured window with viewers.
    pub seconds: u64,
    /// The window with no viewer, same sender, just before.
    pub baseline_seconds: u64,
    pub farm_threads: usize,
    pub ramp_ms: u64,
}

/// A process's cost over a window.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cost {
    /// Cores (CPU seconds per second).
    pub cpu: f64,
    pub rss_kb: u64,
    pub threads: u64,
}

#[derive(Debug, Clone)]
pub struct Point {
    pub kind: Kind,
    pub viewers: usize,
    /// Decodable frames per second of each viewer over the window.
    pub fps: Summary,
    pub baseline: Cost,
    pub sender: Cost,
    pub farm: Cost,
    /// Viewer start → first decodable frame (ms), over viewers.
    pub join: Summary,
    pub nacks: u64,
    pub plis: u64,
    /// Frames given up incomplete or skipped (broken chain) in the window.
    pub lost_frames: u64,
    /// Video payload received per viewer (median), kbit/s.
    pub kbps: f64,
}

impl Point {
    /// Sender CPU per viewer, whole sender cost shared out (cores).
    pub fn cpu_total_per_viewer(&self) -> f64 {
        self.sender.cpu / self.viewers as f64
    }

    /// Sender CPU per viewer above the no-viewer baseline (cores).
    pub fn cpu_marginal_per_viewer(&self) -> f64 {
        (self.sender.cpu - self.baseline.cpu) / self.viewers as f64
    }

    pub fn rss_total_per_viewer_mb(&self) -> f64 {
        self.sender.rss_kb as f64 / 1024.0 / self.viewers as f64
    }

    pub fn rss_marginal_per_viewer_mb(&self) -> f64 {
        (self.sender.rss_kb as f64 - self.baseline.rss_kb as f64) / 1024.0 / self.viewers as f64
    }

    pub fn threads_marginal_per_viewer(&self) -> f64 {
        (self.sender.threads as f64 - self.baseline.threads as f64) / self.viewers as f64
    }

    /// Like for like: total sender CPU per viewer scaled to 30 fps by the
    /// median frame rate actually delivered.
    pub fn cpu_per_viewer_at_30fps(&self) -> f64 {
        self.cpu_total_per_viewer() * 30.0 / self.fps.median
    }

    /// Every viewer at full rate (≥ 29 fps: the bar).
    pub fn full_rate(&self) -> bool {
        self.fps.min >= 29.0
    }
}

fn cost(pid: u32, cpu_start: f64, started: Instant) -> Cost {
    Cost {
        cpu: (usage::cpu_seconds(Some(pid)) - cpu_start) / started.elapsed().as_secs_f64(),
        rss_kb: usage::rss_kb(Some(pid)),
        threads: usage::threads(Some(pid)),
    }
}

fn snapshot(farm: &mut Process) -> Result<Snapshot, String> {
    let line = farm.request("snapshot", Duration::from_secs(10))?;
    serde_json::from_str(&line).map_err(|err| format!("farm snapshot {line:?}: {err}"))
}

/// Measures `kind` with `viewers` viewers. An `Err` is a failed run: not
/// every viewer received, or one stopped receiving in the window.
pub fn measure(kind: Kind, viewers: usize, options: &PointOptions) -> Result<Point, String> {
    let signalling = Signalling::start(kind, options.webrtc_server.as_deref())?;
    let (sender, producer) = start_sender(kind, &signalling, options.broadcast)?;
    let pid = sender.id();
    // The encoder's first seconds (rate control settling) are no baseline.
    std::thread::sleep(Duration::from_secs(2));
    let (cpu_start, started) = (usage::cpu_seconds(Some(pid)), Instant::now());
    std::thread::sleep(Duration::from_secs(options.baseline_seconds));
    let baseline = cost(pid, cpu_start, started);
    memory::keep_smaps(pid, kind, 0);

    let protocol = match kind {
        Kind::PeerSink | Kind::PeerSinkNoDataChannel | Kind::PeerSinkBare => "peer",
        Kind::WebRtcSink => "gstwebrtc",
    };
    let mut farm = Process::spawn(&mut self_command(&[
        "farm",
        "--serve",
        "--uri",
        &signalling.uri(),
        "--producer",
        &producer,
        "--protocol",
        protocol,
        "--viewers",
        &viewers.to_string(),
        "--threads",
        &options.farm_threads.to_string(),
        "--ramp-ms",
        &options.ramp_ms.to_string(),
    ]))?;
    farm.wait_line("started", Duration::from_secs(10))?;
    let connect = Duration::from_millis(options.ramp_ms * viewers as u64) + Duration::from_secs(30);
    let reply = farm.request(
        &format!("wait {}", connect.as_secs_f64()),
        connect + Duration::from_secs(10),
    )?;
    if reply != "receiving" {
        return Err(format!("{} viewers: {reply}", viewers));
    }
    std::thread::sleep(Duration::from_secs(2));
    let before = snapshot(&mut farm)?;
    let (cpu_start, started) = (usage::cpu_seconds(Some(pid)), Instant::now());
    std::thread::sleep(Duration::from_secs(options.seconds));
    let after = snapshot(&mut farm)?;
    let sender_cost = cost(pid, cpu_start, started);
    memory::keep_smaps(pid, kind, viewers);

    let rates = frame_rates(&before, &after);
    let stalled: Vec<usize> = (0..rates.len()).filter(|&i| rates[i] == 0.0).collect();
    if !after.failures().is_empty() || !stalled.is_empty() {
        return Err(format!(
            "{viewers} viewers: during the window {} failed and {} received no frame ({}); {:?}",
            after.failures().len(),
            stalled.len(),
            after.phases(),
            after.failures().first()
        ));
    }
    let window = after.seconds - before.seconds;
    let kbps: Vec<f64> = before
        .viewers
        .iter()
        .zip(&after.viewers)
        .map(|(b, a)| (a.bytes - b.bytes) as f64 * 8.0 / 1000.0 / window)
        .collect();
    let sum = |f: fn(&peer_farm::ViewerSnapshot) -> u64, s: &Snapshot| -> u64 {
        s.viewers.iter().map(f).sum()
    };
    let joins: Vec<f64> = after
        .viewers
        .iter()
        .filter_map(|v| v.first_frame_ms)
        .collect();
    Ok(Point {
        kind,
        viewers,
        fps: Summary::of(&rates),
        baseline,
        sender: sender_cost,
        farm: Cost {
            cpu: (after.cpu_seconds - before.cpu_seconds) / window,
            rss_kb: after.rss_kb,
            threads: after.threads,
        },
        join: Summary::of(&joins),
        nacks: sum(|v| v.nacks, &after) - sum(|v| v.nacks, &before),
        plis: sum(|v| v.plis, &after) - sum(|v| v.plis, &before),
        lost_frames: sum(|v| v.incomplete + v.skipped, &after)
            - sum(|v| v.incomplete + v.skipped, &before),
        kbps: Summary::of(&kbps).median,
    })
}
