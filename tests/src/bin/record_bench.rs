//! Benchmark of `peer record`: N publishers of 1.5 Mbit/s VP8 + Opus
//! recorded at once. Reports the recorder's CPU (per recording) and what
//! share of the frames the publishers sent reached the files, both counted
//! over the window the CPU is measured in.
//!
//! Run inside a loopback-only namespace, release build:
//!   cargo build --release -p peer -p peer-tests --bin record_bench
//!   unshare -n sh -c 'ip link set lo up && target/release/record_bench 1 10 25 50 100'
//!
//! The publishers live in processes of their own (this binary, run with
//! `publish`), ten per process, each process sharing a single encoder
//! through a tee, so their cost does not hide the recorder's and the
//! machine is not spent encoding N times.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gst::prelude::*;
use peer_tests::process::{ChildProcess, cpu_seconds};

const SECONDS: u64 = 20;
const FRAMERATE: u64 = 30;
const PER_PROCESS: usize = 10;

/// Benchmark of `peer record`: N publishers of 1.5 Mbit/s VP8 + Opus
/// recorded at once; prints a Markdown table row per N (recorder CPU, per
/// recording, the publishers' CPU, and the share of sent frames in the
/// files). Run it in a loopback-only network namespace (see the top of
/// tests/src/bin/record_bench.rs).
#[derive(clap::Parser)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    role: Option<Role>,
    /// Publisher counts to measure, one table row each.
    #[arg(value_name = "PUBLISHERS", default_values_t = [1, 10, 25, 50, 100])]
    counts: Vec<usize>,
}

#[derive(clap::Subcommand)]
enum Role {
    /// (internal) Run COUNT publishers into URI, ids starting at FIRST: the
    /// benchmark starts this binary so for each group of ten.
    #[command(hide = true)]
    Publish {
        count: usize,
        uri: String,
        first: usize,
    },
}

fn main() {
    let cli = <Cli as clap::Parser>::parse();
    if let Some(Role::Publish { count, uri, first }) = cli.role {
        return publish(count, &uri, first);
    }
    peer_tests::init();
    println!(
        "| publishers | recorder CPU (% of a core) | per recording | publishers' process CPU | frames encoded × publishers | frames sent (into the peersinks) | frames in files | in files / sent |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for count in cli.counts {
        let row = measure(count);
        println!(
            "| {count} | {:.1}% | {:.2}% | {:.1}% | {} | {} | {} | {:.1}% |",
            row.recorder_cpu * 100.0,
            row.recorder_cpu * 100.0 / count as f64,
            row.publisher_cpu * 100.0,
            row.encoded,
            row.sent,
            row.in_files,
            row.in_files as f64 * 100.0 / row.sent.max(1) as f64
        );
    }
}

struct Row {
    recorder_cpu: f64,
    publisher_cpu: f64,
    /// Frames out of the publishers' shared encoders over the window,
    /// times the publishers each encoder feeds (what they could send).
    encoded: u64,
    /// Frames the publishers' peersinks took over the window.
    sent: u64,
    /// Frames in the files over the same window.
    in_files: u64,
}

/// What a publishing process had counted at a mark: frames out of its
/// encoder, and frames each of its peersinks took.
struct Counts {
    encoded: u64,
    sent: Vec<u64>,
}

/// Parses `mark NAME encoded=E sent=A,B,...` from a publishing process.
fn parse_mark(line: &str) -> Counts {
    let field = |name: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {line:?}"))
    };
    Counts {
        encoded: field("encoded=").parse().unwrap(),
        sent: field("sent=")
            .split(',')
            .map(|n| n.parse().unwrap())
            .collect(),
    }
}

/// Sends `signal` to every publishing process and reads back their counts.
fn mark(publishers: &mut [ChildProcess], signal: i32, name: &str) -> Vec<Counts> {
    for publisher in publishers.iter() {
        // SAFETY: kill(2) on our child's pid with a valid signal number.
        unsafe { libc::kill(publisher.id() as i32, signal) };
    }
    publishers
        .iter_mut()
        .map(|p| parse_mark(&p.wait_line(&format!("mark {name} "), Duration::from_secs(10))))
        .collect()
}

fn measure(count: usize) -> Row {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = std::env::temp_dir().join(format!("record-bench-{}-{count}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut recorder = ChildProcess::spawn(
        Command::new(peer_tests::peer_binary())
            .args([
                "record",
                "--room",
                "bench",
                "--summary-interval",
                "0",
                "--port",
                &port.to_string(),
                "--dir",
            ])
            .arg(&dir),
    );
    recorder.wait_line("publish at", Duration::from_secs(20));
    // Publishers in groups of ten per process, so they spread over the cores.
    let mut publishers: Vec<ChildProcess> = (0..count)
        .step_by(PER_PROCESS)
        .map(|first| {
            let group = PER_PROCESS.min(count - first);
            ChildProcess::spawn(
                Command::new(std::env::current_exe().unwrap())
                    .args([
                        "publish",
                        &group.to_string(),
                        &format!("ws://127.0.0.1:{port}/bench"),
                        &first.to_string(),
                    ])
                    .env("GST_PLUGIN_PATH", peer_tests::target_dir()),
            )
        })
        .collect();
    for publisher in &mut publishers {
        publisher.wait_line("publishing", Duration::from_secs(60));
    }
    for _ in 0..count {
        recorder.wait_line("recording ", Duration::from_secs(120));
    }
    // Let every recording settle, then measure a fixed window: CPU, and
    // the frames the publishers counted at its edges (marks by signal).
    std::thread::sleep(Duration::from_secs(2));
    let publishers_cpu =
        |publishers: &[ChildProcess]| publishers.iter().map(|p| cpu_seconds(p.id())).sum::<f64>();
    let start_marks = mark(&mut publishers, libc::SIGUSR1, "start");
    let recorder_start = cpu_seconds(recorder.id());
    let publisher_start = publishers_cpu(&publishers);
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(SECONDS));
    let elapsed = started.elapsed();
    let recorder_cpu = (cpu_seconds(recorder.id()) - recorder_start) / elapsed.as_secs_f64();
    let publisher_cpu = (publishers_cpu(&publishers) - publisher_start) / elapsed.as_secs_f64();
    // The end mark also shuts the publishers' gates: no frame after it
    // reaches a file, so every file ends where the window does.
    let end_marks = mark(&mut publishers, libc::SIGUSR2, "end");
    let (mut encoded, mut sent) = (0, 0);
    for (start, end) in start_marks.iter().zip(&end_marks) {
        encoded += (end.encoded - start.encoded) * end.sent.len() as u64;
        sent += end
            .sent
            .iter()
            .zip(&start.sent)
            .map(|(e, s)| e - s)
            .sum::<u64>();
    }
    // Frames in flight reach the recorder before it stops.
    std::thread::sleep(Duration::from_secs(2));
    let _ = Command::new("kill")
        .args(["-INT", &recorder.id().to_string()])
        .status();
    recorder.wait_exit(Duration::from_secs(30));
    for publisher in &mut publishers {
        publisher.kill();
    }
    let in_files = frames_recorded(&dir, count, elapsed);
    let _ = std::fs::remove_dir_all(&dir);
    Row {
        recorder_cpu,
        publisher_cpu,
        encoded,
        sent,
        in_files,
    }
}

/// Video frames in all files over the last `window` of each. The
/// publishers stopped feeding them at the end of the measured window, so a
/// file's last frame marks that end; its timestamps follow the sender's
/// RTP timestamps, so the window spans the same frames.
fn frames_recorded(dir: &Path, count: usize, window: Duration) -> u64 {
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "webm"))
        .collect();
    assert_eq!(files.len(), count, "one file per publisher");
    let window = gst::ClockTime::from_nseconds(window.as_nanos() as u64);
    files
        .iter()
        .map(|file| {
            let pts = video_timestamps(file);
            let Some(&last) = pts.iter().max() else {
                return 0;
            };
            pts.iter().filter(|&&t| t + window > last).count() as u64
        })
        .sum()
}

/// The timestamps of a file's video frames, by demuxing only.
fn video_timestamps(file: &Path) -> Vec<gst::ClockTime> {
    let pipeline = peer_tests::launch(&format!(
        "filesrc location={} ! matroskademux name=d",
        file.display()
    ));
    let counted = Arc::new(std::sync::Mutex::new(Vec::new()));
    let probe_counts = counted.clone();
    let weak = pipeline.downgrade();
    pipeline
        .by_name("d")
        .unwrap()
        .connect_pad_added(move |_, pad| {
            let Some(pipeline) = weak.upgrade() else {
                return;
            };
            let sink = gst::ElementFactory::make("fakesink")
                .property("sync", false)
                .property("async", false)
                .build()
                .unwrap();
            pipeline.add(&sink).unwrap();
            sink.sync_state_with_parent().unwrap();
            pad.link(&sink.static_pad("sink").unwrap()).unwrap();
            if !pad.name().starts_with("video") {
                return;
            }
            let counts = probe_counts.clone();
            pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                if let Some(pts) = info.buffer().and_then(|b| b.pts()) {
                    counts.lock().unwrap().push(pts);
                }
                gst::PadProbeReturn::Ok
            });
        });
    pipeline.set_state(gst::State::Playing).unwrap();
    let _ = pipeline.bus().unwrap().timed_pop_filtered(
        gst::ClockTime::from_seconds(60),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    let _ = pipeline.set_state(gst::State::Null);
    std::mem::take(&mut *counted.lock().unwrap())
}

/// N publishers sharing one VP8 (1.5 Mbit/s) and one Opus encoder.
fn publish(count: usize, uri: &str, first: usize) {
    block_mark_signals();
    peer_tests::init();
    let mut description = format!(
        "videotestsrc is-live=true pattern=ball animation-mode=running-time ! video/x-raw,width=1280,height=720,framerate={FRAMERATE}/1 \
         ! vp8enc deadline=1 cpu-used=16 end-usage=cbr target-bitrate=1450000 keyframe-max-dist=60 threads=2 ! tee name=v allow-not-linked=true \
         audiotestsrc is-live=true ! opusenc bitrate=48000 ! tee name=a allow-not-linked=true "
    );
    for i in first..first + count {
        description.push_str(&format!(
            "peersink name=p{i} uri={uri} peer-id=pub{i} data-channels=\"\" \
             v. ! queue leaky=downstream max-size-time=500000000 ! p{i}.video_0 \
             a. ! queue leaky=downstream max-size-time=500000000 ! p{i}.audio_0 "
        ));
    }
    let pipeline = peer_tests::launch(&description);
    // What the publishers send, counted where it leaves the shared encoder
    // and where each peersink takes it; after the end mark the gates drop
    // everything, so the files end with the measured window.
    let encoded = Arc::new(AtomicU64::new(0));
    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..count).map(|_| AtomicU64::new(0)).collect());
    let closed = Arc::new(AtomicBool::new(false));
    {
        let encoded = encoded.clone();
        let tee = pipeline.by_name("v").unwrap().static_pad("sink").unwrap();
        tee.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            encoded.fetch_add(1, Ordering::Relaxed);
            gst::PadProbeReturn::Ok
        });
    }
    for (index, i) in (first..first + count).enumerate() {
        let (sent, closed) = (sent.clone(), closed.clone());
        let pad = pipeline
            .by_name(&format!("p{i}"))
            .unwrap()
            .static_pad("video_0")
            .expect("peersink's video pad");
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            if closed.load(Ordering::Relaxed) {
                return gst::PadProbeReturn::Handled; // freed by gstreamer-rs
            }
            sent[index].fetch_add(1, Ordering::Relaxed);
            gst::PadProbeReturn::Ok
        });
    }
    std::thread::spawn(move || {
        loop {
            let signal = wait_for_mark();
            let name = if signal == libc::SIGUSR2 {
                closed.store(true, Ordering::Relaxed);
                "end"
            } else {
                "start"
            };
            let counts: Vec<String> = sent
                .iter()
                .map(|c| c.load(Ordering::Relaxed).to_string())
                .collect();
            println!(
                "mark {name} encoded={} sent={}",
                encoded.load(Ordering::Relaxed),
                counts.join(",")
            );
        }
    });
    pipeline
        .set_state(gst::State::Playing)
        .expect("publishers start");
    println!("publishing");
    let bus = pipeline.bus().unwrap();
    for message in bus.iter_timed(gst::ClockTime::NONE) {
        if let gst::MessageView::Error(err) = message.view() {
            eprintln!("publisher error: {}", err.error());
        }
    }
}

/// The window marks: SIGUSR1 (start) and SIGUSR2 (end).
fn mark_signals() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset fill a zeroed set we own.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGUSR1);
        libc::sigaddset(&mut set, libc::SIGUSR2);
        set
    }
}

/// Blocks the mark signals in this thread and every thread started from
/// it afterwards, so only `wait_for_mark` takes them (their default action
/// ends the process). Called before any thread starts.
fn block_mark_signals() {
    let set = mark_signals();
    // SAFETY: a valid set; the old mask is not wanted.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
}

/// Waits for the next mark signal and returns it.
fn wait_for_mark() -> i32 {
    let set = mark_signals();
    let mut signal = 0;
    // SAFETY: a valid set and out pointer.
    unsafe { libc::sigwait(&set, &mut signal) };
    signal
}
