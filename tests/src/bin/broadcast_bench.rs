//! Benchmark of one broadcast watched by many: peersink against
//! gst-plugins-rs's webrtcsink, side by side in one run. For each viewer
//! count it reports the sender's CPU (process CPU time per second of wall
//! time), memory and threads, and the frame rate the viewers received;
//! then glass-to-glass latency (a timestamp written into pixel blocks by
//! the sender, read from the decoded picture) and join → first decoded
//! frame, cold (a new process) and warm (a new pipeline in a running one).
//!
//! Run inside a loopback-only namespace, release build (docs/benchmarks/broadcast.md):
//!   cargo build --release -p peer-tests --bin broadcast_bench
//!   unshare -n sh -c 'ip link set lo up && target/release/broadcast_bench'
//! webrtcsink is measured when its plugin is found on GST_PLUGIN_PATH and
//! `--webrtc-server PATH` names gst-webrtc-signalling-server.
//!
//! Viewers are processes of this binary (`viewer`), several viewers per
//! process, receiving without decoding (except the latency and join
//! viewers), so that their cost does not drown the sender's.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gst::prelude::*;
use peer_signalling::server::{self, ServerConfig};
use peer_tests::process::cpu_seconds;

const WIDTH: u32 = 1280;
const HEIGHT: u32 = 720;
const BITRATE: u32 = 2_000_000;
/// Timestamp bits written into the picture (µs, modulo 2^40: 12 days).
const STAMP_BITS: usize = 40;
const BLOCK: usize = 16;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("sender") => sender(&args[1], &args[2]),
        Some("viewer") => viewer(&args[1], &args[2], &args[3], &args[4], &args[5]),
        _ => orchestrate(&args),
    }
}

fn init() {
    gst::init().expect("GStreamer initializes");
    gstpeer::plugin_register_static().expect("the peer plugin registers");
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    PeerSink,
    WebRtcSink,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::PeerSink => "peersink",
            Kind::WebRtcSink => "webrtcsink",
        }
    }

    fn parse(text: &str) -> Kind {
        match text {
            "peersink" => Kind::PeerSink,
            "webrtcsink" => Kind::WebRtcSink,
            other => panic!("unknown kind {other}"),
        }
    }
}

// ---------------------------------------------------------------- sender

/// The broadcast: a moving 1280x720@30 picture stamped with the time.
fn sender(kind: &str, uri: &str) {
    init();
    let kind = Kind::parse(kind);
    let sink = match kind {
        Kind::PeerSink => format!(
            "peersink name=sink uri={uri} peer-id=cam ice-addresses=127.0.0.1 video-bitrate={BITRATE}"
        ),
        Kind::WebRtcSink => format!(
            "webrtcsink name=sink signaller::uri={uri} congestion-control=disabled \
             start-bitrate={BITRATE} do-fec=false video-caps=video/x-vp8"
        ),
    };
    let pipeline = peer_tests::launch(&format!(
        "videotestsrc is-live=true pattern=smpte horizontal-speed=2 name=source \
         ! video/x-raw,format=I420,width={WIDTH},height={HEIGHT},framerate=30/1 ! {sink}"
    ));
    let sink = pipeline.by_name("sink").unwrap();
    if kind == Kind::WebRtcSink {
        // No public STUN server: nothing may leave the namespace.
        sink.set_property("stun-server", None::<String>);
    }
    stamp_frames(&pipeline.by_name("source").unwrap());
    pipeline
        .set_state(gst::State::Playing)
        .expect("sender plays");
    if kind == Kind::WebRtcSink {
        // Its id is given by the server; viewers need it.
        let signaller = sink.property::<glib::Object>("signaller");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let id = signaller
                .find_property("client-id")
                .and_then(|_| signaller.property::<Option<String>>("client-id"));
            if let Some(id) = id {
                println!("producer {id}");
                break;
            }
            assert!(Instant::now() < deadline, "webrtcsink never registered");
            std::thread::sleep(Duration::from_millis(50));
        }
    } else {
        println!("producer cam");
    }
    run_until_killed(&pipeline);
}

use gst::glib;

/// Writes the current time (µs) into the top-left luma blocks of each frame.
fn stamp_frames(source: &gst::Element) {
    let pad = source.static_pad("src").unwrap();
    pad.add_probe(gst::PadProbeType::BUFFER, |_, info| {
        let Some(buffer) = info.buffer_mut() else {
            return gst::PadProbeReturn::Ok;
        };
        let buffer = buffer.make_mut();
        let Ok(mut map) = buffer.map_writable() else {
            return gst::PadProbeReturn::Ok;
        };
        let stamp = now_micros();
        let luma = map.as_mut_slice();
        for bit in 0..STAMP_BITS {
            let value = if stamp >> bit & 1 == 1 { 235 } else { 16 };
            for row in 0..BLOCK {
                let start = row * WIDTH as usize + bit * BLOCK;
                luma[start..start + BLOCK].fill(value);
            }
        }
        gst::PadProbeReturn::Ok
    });
}

/// Reads the stamp back from a decoded I420 picture of width `stride`.
fn read_stamp(luma: &[u8], stride: usize) -> u64 {
    let centre = BLOCK / 2;
    (0..STAMP_BITS).fold(0u64, |stamp, bit| {
        let value = luma[centre * stride + bit * BLOCK + centre];
        stamp | (((value > 128) as u64) << bit)
    })
}

fn run_until_killed(pipeline: &gst::Pipeline) {
    let bus = pipeline.bus().unwrap();
    for message in bus.iter_timed(gst::ClockTime::NONE) {
        if let gst::MessageView::Error(err) = message.view() {
            eprintln!("error: {} ({:?})", err.error(), err.debug());
            std::process::exit(1);
        }
    }
}

// ---------------------------------------------------------------- viewer

/// `count` viewers in this process. `mode`: `count` (encoded, counting
/// frames), `latency` (decoded, printing stamp ages) or `join:N` (N joins
/// one after another, decoded, printing each join time).
fn viewer(kind: &str, uri: &str, producer: &str, count: &str, mode: &str) {
    let started = Instant::now();
    init();
    let kind = Kind::parse(kind);
    let count: usize = count.parse().unwrap();
    if let Some(joins) = mode.strip_prefix("join:") {
        for join in 0..joins.parse::<usize>().unwrap() {
            let begin = if join == 0 { started } else { Instant::now() };
            let frames = Arc::new(AtomicU64::new(0));
            let pipeline = receive(kind, uri, producer, true, frames.clone(), None);
            while frames.load(Ordering::Relaxed) == 0 {
                assert!(begin.elapsed() < Duration::from_secs(30), "no frame");
                std::thread::sleep(Duration::from_millis(2));
            }
            println!(
                "join {} {:.1}",
                join,
                begin.elapsed().as_secs_f64() * 1000.0
            );
            let _ = pipeline.set_state(gst::State::Null);
        }
        return;
    }
    let latency = mode == "latency";
    let frames = Arc::new(AtomicU64::new(0));
    let ages = latency.then(|| Arc::new(Mutex::new(Vec::<u64>::new())));
    let _pipelines: Vec<gst::Pipeline> = (0..count)
        .map(|_| receive(kind, uri, producer, latency, frames.clone(), ages.clone()))
        .collect();
    loop {
        std::thread::sleep(Duration::from_secs(1));
        println!("frames {}", frames.load(Ordering::Relaxed));
        if let Some(ages) = &ages {
            let ages: Vec<u64> = std::mem::take(&mut *ages.lock().unwrap());
            for age in ages {
                println!("age {age}");
            }
        }
    }
}

/// peersrc's jitter buffer (`BENCH_JITTER_MS`, default 100 as peersrc);
/// webrtcsrc has no such property and keeps its own default.
fn jitter_buffer_ms() -> u32 {
    std::env::var("BENCH_JITTER_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100)
}

fn receive(
    kind: Kind,
    uri: &str,
    producer: &str,
    decode: bool,
    frames: Arc<AtomicU64>,
    ages: Option<Arc<Mutex<Vec<u64>>>>,
) -> gst::Pipeline {
    let source = match kind {
        Kind::PeerSink => gst::ElementFactory::make("peersrc")
            .property("uri", uri)
            .property("producer", producer)
            .property("decode", decode)
            .property("ice-addresses", "127.0.0.1")
            .property("latency", jitter_buffer_ms())
            .build()
            .unwrap(),
        Kind::WebRtcSink => {
            let source = gst::ElementFactory::make("webrtcsrc")
                .property("stun-server", None::<String>)
                .build()
                .expect("webrtcsrc (gst-plugins-rs) on GST_PLUGIN_PATH");
            let signaller = source.property::<glib::Object>("signaller");
            signaller.set_property("uri", uri);
            signaller.set_property("producer-peer-id", producer);
            source
        }
    };
    let pipeline = gst::Pipeline::new();
    pipeline.add(&source).unwrap();
    let weak = pipeline.downgrade();
    source.connect_pad_added(move |_, pad| {
        let Some(pipeline) = weak.upgrade() else {
            return;
        };
        let video = pad.name().starts_with("video");
        let description = match (video, decode) {
            // webrtcsrc decodes unless downstream takes the encoded format.
            (true, false) => "capsfilter caps=video/x-vp8 ! fakesink sync=false async=false",
            (true, true) => {
                "videoconvert ! video/x-raw,format=I420 ! fakesink name=check sync=false async=false"
            }
            (false, _) => "fakesink sync=false async=false",
        };
        let bin = gst::parse::bin_from_description(description, true).unwrap();
        if video {
            let frames = frames.clone();
            let ages = ages.clone();
            let probe_pad = match bin.by_name("check") {
                Some(check) => check.static_pad("sink").unwrap(),
                None => bin.static_pad("sink").unwrap(),
            };
            probe_pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
                frames.fetch_add(1, Ordering::Relaxed);
                if let (Some(ages), Some(buffer)) = (&ages, info.buffer()) {
                    let stride = pad
                        .current_caps()
                        .and_then(|caps| gst_video::VideoInfo::from_caps(&caps).ok())
                        .map(|info| info.stride()[0] as usize)
                        .unwrap_or(WIDTH as usize);
                    if let Ok(map) = buffer.map_readable() {
                        let sent = read_stamp(&map, stride);
                        let now = now_micros() & ((1u64 << STAMP_BITS) - 1);
                        if now >= sent && now - sent < 10_000_000 {
                            ages.lock().unwrap().push(now - sent);
                        }
                    }
                }
                gst::PadProbeReturn::Ok
            });
        }
        pipeline.add(&bin).unwrap();
        bin.sync_state_with_parent().unwrap();
        let _ = pad.link(&bin.static_pad("sink").unwrap());
    });
    pipeline
        .set_state(gst::State::Playing)
        .expect("viewer plays");
    pipeline
}

// ---------------------------------------------------------------- orchestration

struct Options {
    counts: Vec<usize>,
    kinds: Vec<Kind>,
    seconds: u64,
    latency_seconds: u64,
    per_process: usize,
    webrtcsink_max: usize,
    webrtc_server: Option<String>,
}

fn parse_options(args: &[String]) -> Options {
    let mut options = Options {
        counts: vec![0, 1, 10, 50, 100],
        kinds: vec![Kind::PeerSink, Kind::WebRtcSink],
        seconds: 15,
        latency_seconds: 30,
        per_process: 5,
        webrtcsink_max: 10,
        webrtc_server: None,
    };
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let mut value = || args.next().expect("a value after the flag").clone();
        match flag.as_str() {
            "--viewers" => {
                options.counts = value().split(',').map(|n| n.parse().unwrap()).collect()
            }
            "--kinds" => options.kinds = value().split(',').map(Kind::parse).collect(),
            "--seconds" => options.seconds = value().parse().unwrap(),
            "--latency-seconds" => options.latency_seconds = value().parse().unwrap(),
            "--per-process" => options.per_process = value().parse().unwrap(),
            "--webrtcsink-max" => options.webrtcsink_max = value().parse().unwrap(),
            "--webrtc-server" => options.webrtc_server = Some(value()),
            other => panic!("unknown option {other}"),
        }
    }
    options
}

/// A child process whose output lines are parsed as they come.
struct Process {
    child: Child,
    frames: Arc<AtomicU64>,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Process {
    fn spawn(command: &mut Command) -> Process {
        // Children's warnings (libnice's UPnP discovery under webrtcsink
        // complains loudly in a namespace without multicast) go to a log.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(std::env::temp_dir().join("broadcast_bench.log"))
            .expect("log file");
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("child starts");
        let frames = Arc::new(AtomicU64::new(0));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().unwrap();
        let (f, l) = (frames.clone(), lines.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(count) = line.strip_prefix("frames ") {
                    f.store(count.parse().unwrap_or(0), Ordering::Relaxed);
                } else {
                    l.lock().unwrap().push(line);
                }
            }
        });
        Process {
            child,
            frames,
            lines,
        }
    }

    fn wait_line(&self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let found = self
                .lines
                .lock()
                .unwrap()
                .iter()
                .position(|line| line.starts_with(prefix));
            if let Some(index) = found {
                return self.lines.lock().unwrap().remove(index);
            }
            assert!(Instant::now() < deadline, "no \"{prefix}\" line");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn id(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn self_command(args: &[&str]) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.args(args);
    command
}

/// Signalling for one kind: our server in this process, or
/// gst-webrtc-signalling-server as a child.
enum Signalling {
    Ours(Option<server::RunningServer>, tokio::runtime::Runtime),
    Theirs(Child, u16),
}

impl Signalling {
    fn start(kind: Kind, options: &Options) -> Signalling {
        match kind {
            Kind::PeerSink => {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                    .unwrap();
                let running = runtime
                    .block_on(server::start(ServerConfig {
                        bind: "127.0.0.1:0".parse().unwrap(),
                        ..ServerConfig::default()
                    }))
                    .unwrap();
                Signalling::Ours(Some(running), runtime)
            }
            Kind::WebRtcSink => {
                let port = free_port();
                let child = Command::new(options.webrtc_server.as_ref().unwrap())
                    .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("gst-webrtc-signalling-server starts");
                let deadline = Instant::now() + Duration::from_secs(10);
                while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                    assert!(Instant::now() < deadline, "signalling server not listening");
                    std::thread::sleep(Duration::from_millis(20));
                }
                Signalling::Theirs(child, port)
            }
        }
    }

    fn uri(&self) -> String {
        match self {
            Signalling::Ours(running, _) => format!(
                "ws://127.0.0.1:{}/bench",
                running.as_ref().unwrap().local_addr().port()
            ),
            Signalling::Theirs(_, port) => format!("ws://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Signalling {
    fn drop(&mut self) {
        match self {
            Signalling::Ours(running, runtime) => {
                if let Some(running) = running.take() {
                    runtime.block_on(running.stop());
                }
            }
            Signalling::Theirs(child, _) => {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn status_field(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

struct Row {
    cpu: f64,
    rss_kb: u64,
    threads: u64,
    mean_fps: f64,
    min_fps: f64,
}

fn start_sender(kind: Kind, signalling: &Signalling) -> (Process, String) {
    let sender = Process::spawn(&mut self_command(&[
        "sender",
        kind.name(),
        &signalling.uri(),
    ]));
    let producer =
        sender.wait_line("producer ", Duration::from_secs(30))["producer ".len()..].to_owned();
    (sender, producer)
}

fn measure(kind: Kind, count: usize, options: &Options) -> Row {
    let signalling = Signalling::start(kind, options);
    let (sender, producer) = start_sender(kind, &signalling);
    let mut viewers = Vec::new();
    let mut left = count;
    while left > 0 {
        let here = left.min(options.per_process);
        viewers.push((
            here,
            Process::spawn(&mut self_command(&[
                "viewer",
                kind.name(),
                &signalling.uri(),
                &producer,
                &here.to_string(),
                "count",
            ])),
        ));
        left -= here;
        std::thread::sleep(Duration::from_millis(100));
    }
    // Every viewer receiving: each process has counted 30 frames per viewer.
    let deadline = Instant::now() + Duration::from_secs(60 + count as u64);
    while !viewers
        .iter()
        .all(|(n, p)| p.frames.load(Ordering::Relaxed) >= 30 * *n as u64)
    {
        if Instant::now() > deadline {
            eprintln!(
                "{} with {count} viewers: not every viewer receives; measuring anyway",
                kind.name()
            );
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    let cpu_start = cpu_seconds(sender.id());
    let frames_start: Vec<u64> = viewers
        .iter()
        .map(|(_, p)| p.frames.load(Ordering::Relaxed))
        .collect();
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(options.seconds));
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = (cpu_seconds(sender.id()) - cpu_start) / elapsed;
    let rates: Vec<f64> = viewers
        .iter()
        .zip(frames_start)
        .map(|((n, p), start)| {
            (p.frames.load(Ordering::Relaxed) - start) as f64 / elapsed / *n as f64
        })
        .collect();
    let row = Row {
        cpu,
        rss_kb: status_field(sender.id(), "VmRSS:"),
        threads: status_field(sender.id(), "Threads:"),
        mean_fps: if rates.is_empty() {
            0.0
        } else {
            rates.iter().sum::<f64>() / rates.len() as f64
        },
        min_fps: rates.iter().cloned().fold(f64::INFINITY, f64::min),
    };
    drop(viewers);
    drop(sender);
    row
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn latency(kind: Kind, options: &Options) -> (f64, f64, usize) {
    let signalling = Signalling::start(kind, options);
    let (_sender, producer) = start_sender(kind, &signalling);
    let viewer = Process::spawn(&mut self_command(&[
        "viewer",
        kind.name(),
        &signalling.uri(),
        &producer,
        "1",
        "latency",
    ]));
    let deadline = Instant::now() + Duration::from_secs(60);
    while viewer.frames.load(Ordering::Relaxed) < 30 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    viewer.lines.lock().unwrap().clear();
    std::thread::sleep(Duration::from_secs(options.latency_seconds));
    let mut ages: Vec<f64> = viewer
        .lines
        .lock()
        .unwrap()
        .iter()
        .filter_map(|line| line.strip_prefix("age ")?.parse::<f64>().ok())
        .map(|micros| micros / 1000.0)
        .collect();
    ages.sort_by(f64::total_cmp);
    (percentile(&ages, 0.5), percentile(&ages, 0.95), ages.len())
}

fn joins(kind: Kind, options: &Options) -> (f64, f64) {
    let signalling = Signalling::start(kind, options);
    let (_sender, producer) = start_sender(kind, &signalling);
    std::thread::sleep(Duration::from_secs(2));
    let spawned = Instant::now();
    let viewer = Process::spawn(&mut self_command(&[
        "viewer",
        kind.name(),
        &signalling.uri(),
        &producer,
        "1",
        "join:6",
    ]));
    viewer.wait_line("join 0 ", Duration::from_secs(60));
    let cold = spawned.elapsed().as_secs_f64() * 1000.0;
    let mut warm: Vec<f64> = (1..6)
        .map(|join| {
            let line = viewer.wait_line(&format!("join {join} "), Duration::from_secs(60));
            line.rsplit(' ').next().unwrap().parse().unwrap()
        })
        .collect();
    warm.sort_by(f64::total_cmp);
    (cold, percentile(&warm, 0.5))
}

/// libnice skips `lo`, and webrtcsink has no address option: a veth pair
/// holding 127.0.0.1 lets it gather 127.0.0.1 (WEBRTC-NOTES). Only made in
/// a namespace that holds nothing but `lo`.
struct LoopbackVeth;

impl LoopbackVeth {
    fn create() -> LoopbackVeth {
        let interfaces = std::fs::read_to_string("/proc/net/dev").unwrap_or_default();
        let names: Vec<&str> = interfaces
            .lines()
            .skip(2)
            .filter_map(|line| line.split(':').next().map(str::trim))
            .collect();
        assert!(
            names.iter().all(|name| *name == "lo"),
            "run this benchmark in a loopback-only namespace (unshare -n); interfaces: {names:?}"
        );
        let run = |args: &[&str]| {
            let status = Command::new(args[0]).args(&args[1..]).status().unwrap();
            assert!(status.success(), "{args:?} failed");
        };
        run(&[
            "ip", "link", "add", "bbloop0", "type", "veth", "peer", "name", "bbloop1",
        ]);
        for name in ["bbloop0", "bbloop1"] {
            let _ = Command::new("sysctl")
                .args(["-qw", &format!("net.ipv6.conf.{name}.disable_ipv6=1")])
                .status();
            run(&["ip", "link", "set", name, "up"]);
        }
        run(&["ip", "addr", "add", "127.0.0.1/32", "dev", "bbloop0"]);
        LoopbackVeth
    }
}

impl Drop for LoopbackVeth {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", "bbloop0"]).status();
    }
}

fn orchestrate(args: &[String]) {
    let mut options = parse_options(args);
    gst::init().unwrap();
    let have_webrtcsink = gst::ElementFactory::find("webrtcsink").is_some();
    if !have_webrtcsink || options.webrtc_server.is_none() {
        if options.kinds.contains(&Kind::WebRtcSink) {
            eprintln!(
                "webrtcsink not measured: needs its plugin on GST_PLUGIN_PATH and --webrtc-server"
            );
        }
        options.kinds.retain(|kind| *kind == Kind::PeerSink);
    }
    let _veth = options
        .kinds
        .contains(&Kind::WebRtcSink)
        .then(LoopbackVeth::create);
    println!(
        "## Sender cost, {WIDTH}x{HEIGHT}@30 VP8 at {} kbit/s, {} s per point\n",
        BITRATE / 1000,
        options.seconds
    );
    println!(
        "| viewers | sender | CPU (% of a core) | per viewer over 0 | RSS MB | threads | fps received (mean / min) |"
    );
    println!("|---|---|---|---|---|---|---|");
    for kind in options.kinds.clone() {
        let mut base: Option<Row> = None;
        for &count in &options.counts {
            if kind == Kind::WebRtcSink && count > options.webrtcsink_max {
                println!(
                    "| {count} | {} | not run: one encoder per viewer exceeds this machine past {} viewers | | | | |",
                    kind.name(),
                    options.webrtcsink_max
                );
                continue;
            }
            let row = measure(kind, count, &options);
            let per_viewer = match (&base, count) {
                (Some(base), n) if n > 0 => format!(
                    "{:.2}% / {:.2} MB",
                    (row.cpu - base.cpu) * 100.0 / n as f64,
                    (row.rss_kb as f64 - base.rss_kb as f64) / 1024.0 / n as f64
                ),
                _ => "—".to_owned(),
            };
            let fps = if count == 0 {
                "—".to_owned()
            } else {
                format!("{:.1} / {:.1}", row.mean_fps, row.min_fps)
            };
            println!(
                "| {count} | {} | {:.1}% | {per_viewer} | {:.0} | {} | {fps} |",
                kind.name(),
                row.cpu * 100.0,
                row.rss_kb as f64 / 1024.0,
                row.threads
            );
            if count == 0 {
                base = Some(row);
            }
        }
    }
    println!(
        "\n## Glass-to-glass latency ({} s, decoded picture, no render delay)\n",
        options.latency_seconds
    );
    println!("| sender → receiver | p50 ms | p95 ms | samples |");
    println!("|---|---|---|---|");
    for kind in options.kinds.clone() {
        let (p50, p95, samples) = latency(kind, &options);
        let receiver = if kind == Kind::PeerSink {
            "peersrc"
        } else {
            "webrtcsrc"
        };
        println!(
            "| {} → {receiver} | {p50:.1} | {p95:.1} | {samples} |",
            kind.name()
        );
    }
    println!("\n## Join → first decoded frame\n");
    println!("| sender → receiver | cold process ms | warm (median of 5) ms |");
    println!("|---|---|---|");
    for kind in options.kinds.clone() {
        let (cold, warm) = joins(kind, &options);
        let receiver = if kind == Kind::PeerSink {
            "peersrc"
        } else {
            "webrtcsrc"
        };
        println!("| {} → {receiver} | {cold:.0} | {warm:.0} |", kind.name());
    }
}
