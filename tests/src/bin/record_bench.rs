//! Benchmark of `peer record`: N publishers of 1.5 Mbit/s VP8 + Opus
//! recorded at once. Reports the recorder's CPU (per recording) and what
//! share of the sent frames reached the files.
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
        "| publishers | recorder CPU (% of a core) | per recording | publishers' process CPU | frames in files / sent |"
    );
    println!("|---|---|---|---|---|");
    for count in cli.counts {
        let row = measure(count);
        println!(
            "| {count} | {:.1}% | {:.2}% | {:.1}% | {:.1}% |",
            row.recorder_cpu * 100.0,
            row.recorder_cpu * 100.0 / count as f64,
            row.publisher_cpu * 100.0,
            row.frame_share * 100.0
        );
    }
}

struct Row {
    recorder_cpu: f64,
    publisher_cpu: f64,
    frame_share: f64,
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
    for _ in 0..count {
        recorder.wait_line("recording ", Duration::from_secs(120));
    }
    // Let every recording settle, then measure a fixed window.
    std::thread::sleep(Duration::from_secs(2));
    let recorder_start = cpu_seconds(recorder.id());
    let publishers_cpu =
        |publishers: &[ChildProcess]| publishers.iter().map(|p| cpu_seconds(p.id())).sum::<f64>();
    let publisher_start = publishers_cpu(&publishers);
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(SECONDS));
    let elapsed = started.elapsed().as_secs_f64();
    let recorder_cpu = (cpu_seconds(recorder.id()) - recorder_start) / elapsed;
    let publisher_cpu = (publishers_cpu(&publishers) - publisher_start) / elapsed;
    for publisher in &mut publishers {
        publisher.kill();
    }
    let _ = Command::new("kill")
        .args(["-INT", &recorder.id().to_string()])
        .status();
    recorder.wait_exit(Duration::from_secs(30));
    let frame_share = frames_recorded(&dir, count);
    let _ = std::fs::remove_dir_all(&dir);
    Row {
        recorder_cpu,
        publisher_cpu,
        frame_share,
    }
}

/// Frames in all files over the frames the publishers sent while recorded
/// (30 fps over each file's own span), by demuxing only.
fn frames_recorded(dir: &Path, count: usize) -> f64 {
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "webm"))
        .collect();
    assert_eq!(files.len(), count, "one file per publisher");
    let (mut frames, mut expected) = (0u64, 0u64);
    for file in files {
        let (count, span) = count_video_frames(&file);
        frames += count;
        expected += (span.as_secs_f64() * FRAMERATE as f64).round() as u64 + 1;
    }
    frames as f64 / expected.max(1) as f64
}

fn count_video_frames(file: &Path) -> (u64, Duration) {
    let pipeline = peer_tests::launch(&format!(
        "filesrc location={} ! matroskademux name=d",
        file.display()
    ));
    let counted = std::sync::Arc::new(std::sync::Mutex::new((
        0u64,
        None::<gst::ClockTime>,
        None::<gst::ClockTime>,
    )));
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
                    let mut c = counts.lock().unwrap();
                    c.0 += 1;
                    c.1 = Some(c.1.map_or(pts, |f: gst::ClockTime| f.min(pts)));
                    c.2 = Some(c.2.map_or(pts, |l: gst::ClockTime| l.max(pts)));
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
    let (frames, first, last) = *counted.lock().unwrap();
    let span = match (first, last) {
        (Some(f), Some(l)) => Duration::from_nanos((l - f).nseconds()),
        _ => Duration::ZERO,
    };
    (frames, span)
}

/// N publishers sharing one VP8 (1.5 Mbit/s) and one Opus encoder.
fn publish(count: usize, uri: &str, first: usize) {
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
    pipeline
        .set_state(gst::State::Playing)
        .expect("publishers start");
    let bus = pipeline.bus().unwrap();
    for message in bus.iter_timed(gst::ClockTime::NONE) {
        if let gst::MessageView::Error(err) = message.view() {
            eprintln!("publisher error: {}", err.error());
        }
    }
}
