//! Measurements that need a decoded picture, made with each sender's own
//! receiving element (peersrc, webrtcsrc) in a process of its own:
//! glass-to-glass latency (the stamp the sender wrote into the picture,
//! read back after decoding) and join → first decoded frame, cold (a new
//! process) and warm (a new pipeline in a running process).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use peer_farm::cli::Summary;

use crate::Kind;
use crate::infra::{Process, Signalling, self_command};
use crate::psnr;
use crate::sender::{self, Broadcast, STAMP_BITS, now_micros, read_stamp};

/// The `viewer` subcommand. `mode`: `latency` (prints `age µs` lines) or
/// `join:N` (N joins one after another, printing `join I ms`).
pub fn viewer(kind: Kind, uri: &str, producer: &str, mode: &str) {
    let started = Instant::now();
    sender::init();
    if let Some(joins) = mode.strip_prefix("join:") {
        let joins: usize = joins.parse().expect("join:N");
        for join in 0..joins {
            let begin = if join == 0 { started } else { Instant::now() };
            let frames = Arc::new(AtomicU64::new(0));
            let pipeline = receive(kind, uri, producer, frames.clone(), None, None);
            while frames.load(Ordering::Relaxed) == 0 {
                assert!(begin.elapsed() < Duration::from_secs(30), "no frame");
                std::thread::sleep(Duration::from_millis(1));
            }
            println!("join {join} {:.1}", begin.elapsed().as_secs_f64() * 1000.0);
            let _ = pipeline.set_state(gst::State::Null);
        }
        return;
    }
    let frames = Arc::new(AtomicU64::new(0));
    let ages = Arc::new(Mutex::new(Vec::<u64>::new()));
    let _pipeline = receive(
        kind,
        uri,
        producer,
        frames.clone(),
        Some(ages.clone()),
        None,
    );
    loop {
        std::thread::sleep(Duration::from_millis(200));
        println!("frames {}", frames.load(Ordering::Relaxed));
        for age in std::mem::take(&mut *ages.lock().unwrap()) {
            println!("age {age}");
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

/// A receiving pipeline counting decoded frames into `frames` (and their
/// glass-to-glass ages into `ages`); `before_play` sees it before it starts.
pub fn receive(
    kind: Kind,
    uri: &str,
    producer: &str,
    frames: Arc<AtomicU64>,
    ages: Option<Arc<Mutex<Vec<u64>>>>,
    before_play: Option<&dyn Fn(&gst::Pipeline)>,
) -> gst::Pipeline {
    let source = match kind {
        Kind::PeerSink | Kind::PeerSinkNoDataChannel | Kind::PeerSinkBare => {
            gst::ElementFactory::make("peersrc")
                .property("uri", uri)
                .property("producer", producer)
                .property("ice-addresses", "127.0.0.1")
                .property("latency", jitter_buffer_ms())
                .build()
                .expect("peersrc")
        }
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
    pipeline.add(&source).expect("a new pipeline takes it");
    let weak = pipeline.downgrade();
    source.connect_pad_added(move |_, pad| {
        let Some(pipeline) = weak.upgrade() else {
            return;
        };
        let video = pad.name().starts_with("video");
        let description = if video {
            "videoconvert ! video/x-raw,format=I420 ! fakesink name=check sync=false async=false"
        } else {
            "fakesink sync=false async=false"
        };
        let bin = gst::parse::bin_from_description(description, true).expect("a valid bin");
        if let Some(check) = bin.by_name("check") {
            let frames = frames.clone();
            let ages = ages.clone();
            let probe_pad = check.static_pad("sink").expect("sinks have a sink pad");
            let quality = std::sync::OnceLock::new();
            probe_pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
                frames.fetch_add(1, Ordering::Relaxed);
                if let (Some(ages), Some(buffer)) = (&ages, info.buffer()) {
                    let info = pad
                        .current_caps()
                        .and_then(|caps| gst_video::VideoInfo::from_caps(&caps).ok());
                    if let (Some(info), Ok(map)) = (info, buffer.map_readable()) {
                        let stride = info.stride()[0] as usize;
                        let sent = read_stamp(&map, stride, 0);
                        let now = now_micros() & ((1u64 << STAMP_BITS) - 1);
                        if now >= sent && now - sent < 10_000_000 {
                            ages.lock().unwrap().push(now - sent);
                        }
                        // Quality off this thread: it must not delay frames.
                        let compare =
                            quality.get_or_init(|| psnr::start(info.width(), info.height()));
                        let luma = map[..stride * info.height() as usize].to_vec();
                        let _ = compare.try_send(psnr::Decoded { luma, stride });
                    }
                }
                gst::PadProbeReturn::Ok
            });
        }
        pipeline.add(&bin).expect("the pipeline takes the bin");
        let _ = bin.sync_state_with_parent();
        let _ = pad.link(&bin.static_pad("sink").expect("ghost sink pad"));
    });
    if let Some(before_play) = before_play {
        before_play(&pipeline);
    }
    pipeline
        .set_state(gst::State::Playing)
        .expect("viewer plays");
    pipeline
}

/// A command (whitespace-separated words) the sender process is started
/// through, when set: profiling the sender without the rest.
pub const SENDER_WRAPPER: &str = "BROADCAST_BENCH_SENDER_WRAPPER";

/// Starts a sender of `kind` and returns it with its producer id.
pub fn start_sender(
    kind: Kind,
    signalling: &Signalling,
    broadcast: Broadcast,
) -> Result<(Process, String), String> {
    let arguments = [
        "sender",
        kind.name(),
        &signalling.uri(),
        &broadcast.width.to_string(),
        &broadcast.height.to_string(),
        &broadcast.bitrate.to_string(),
    ];
    let mut command = match std::env::var(SENDER_WRAPPER) {
        // For profiling the sender alone, e.g. `env LD_PRELOAD=... `: the
        // wrapper must exec the sender, whose pid is the one measured.
        Ok(wrapper) if !wrapper.trim().is_empty() => {
            let mut words = wrapper.split_whitespace();
            let mut command = std::process::Command::new(words.next().expect("not empty"));
            command
                .args(words)
                .arg(std::env::current_exe().expect("the benchmark knows its own path"))
                .args(arguments);
            command
        }
        _ => self_command(&arguments),
    };
    let mut sender = Process::spawn(&mut command)?;
    let producer = sender.wait_line("producer ", Duration::from_secs(30))?;
    Ok((sender, producer))
}

/// What the decoding viewer saw over its window.
#[derive(Debug, Clone, Copy)]
pub struct Picture {
    /// Glass-to-glass, ms.
    pub latency: Summary,
    pub frames: usize,
    /// Mean luma PSNR against the source, dB; its spread; over how many frames.
    pub psnr: f64,
    pub psnr_spread: Summary,
    pub psnr_frames: usize,
}

/// Glass-to-glass latency and picture quality over `seconds`.
pub fn latency(
    kind: Kind,
    webrtc_server: Option<&str>,
    broadcast: Broadcast,
    seconds: u64,
) -> Result<Picture, String> {
    let signalling = Signalling::start(kind, webrtc_server)?;
    let (_sender, producer) = start_sender(kind, &signalling, broadcast)?;
    let mut viewer = Process::spawn(&mut self_command(&[
        "viewer",
        kind.name(),
        &signalling.uri(),
        &producer,
        "latency",
    ]))?;
    // Measure once the picture flows, after a second of settling.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let frames: u64 = viewer
            .wait_line("frames ", Duration::from_secs(60))?
            .parse()
            .unwrap_or(0);
        if frames >= 30 {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("{} latency viewer got no picture", kind.name()));
        }
    }
    std::thread::sleep(Duration::from_secs(1));
    viewer.drain();
    std::thread::sleep(Duration::from_secs(seconds));
    let lines = viewer.drain();
    let values = |prefix: &str| -> Vec<f64> {
        lines
            .iter()
            .filter_map(|line| line.strip_prefix(prefix)?.parse::<f64>().ok())
            .collect()
    };
    let ages: Vec<f64> = values("age ")
        .iter()
        .map(|micros| micros / 1000.0)
        .collect();
    let psnr = values("psnr ");
    if ages.len() < seconds as usize * 20 {
        return Err(format!(
            "{} latency viewer decoded {} frames in {seconds} s",
            kind.name(),
            ages.len()
        ));
    }
    Ok(Picture {
        latency: Summary::of(&ages),
        frames: ages.len(),
        psnr: psnr.iter().sum::<f64>() / psnr.len() as f64,
        psnr_spread: Summary::of(&psnr),
        psnr_frames: psnr.len(),
    })
}

/// Join → first decoded frame: a new process (cold), then `warm` new
/// pipelines in it one after another (median). Milliseconds.
pub fn joins(
    kind: Kind,
    webrtc_server: Option<&str>,
    broadcast: Broadcast,
    warm: usize,
) -> Result<(f64, f64), String> {
    let signalling = Signalling::start(kind, webrtc_server)?;
    let (_sender, producer) = start_sender(kind, &signalling, broadcast)?;
    std::thread::sleep(Duration::from_secs(2));
    let spawned = Instant::now();
    let mut viewer = Process::spawn(&mut self_command(&[
        "viewer",
        kind.name(),
        &signalling.uri(),
        &producer,
        &format!("join:{}", warm + 1),
    ]))?;
    viewer.wait_line("join 0 ", Duration::from_secs(60))?;
    let cold = spawned.elapsed().as_secs_f64() * 1000.0;
    let mut times = Vec::new();
    for join in 1..=warm {
        let line = viewer.wait_line(&format!("join {join} "), Duration::from_secs(60))?;
        times.push(line.parse::<f64>().map_err(|err| err.to_string())?);
    }
    Ok((cold, Summary::of(&times).median))
}
