//! Where a frame's glass-to-glass time goes (`broadcast_bench
//! latency-trace`): each sender and its own receiving element in one
//! process, every frame timed on one clock at each step of both sides:
//! into and out of the encoder and the payloader, the frame's last packet
//! handed to the socket (nicesink), its last packet into the viewer's
//! jitter buffer and out of it, the depayloaded frame and the decoded one.
//! The benchmark's latency (a viewer process of its own) says how long;
//! this says where, for peersink and webrtcsink side by side.
//!
//! Frames are followed by the time stamp the source writes into the
//! picture: read where the frame is raw (the encoder's input, the decoded
//! output), carried between by the buffers' PTS on each side and, between
//! the jitter buffer's input and output, by the RTP timestamp.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;
use peer_farm::cli::Summary;

use crate::Kind;
use crate::decoding::receive;
use crate::infra::{LoopbackVeth, Signalling};
use crate::sender::{self, Broadcast, STAMP_BITS, now_micros, read_stamp};

/// The steps a frame passes, in order; the source's stamp comes first.
const STEPS: [&str; 10] = [
    "source (stamp)",
    "encoder in",
    "encoder out",
    "payloader in",
    "payloader out (first packet)",
    "socket (last packet)",
    "jitter buffer in (last packet)",
    "jitter buffer out (last packet)",
    "depayloaded",
    "decoded",
];
const SOURCE: usize = 0;
const ENCODER_IN: usize = 1;
const ENCODER_OUT: usize = 2;
const PAYLOADER_IN: usize = 3;
const PAYLOADER_OUT: usize = 4;
const SOCKET: usize = 5;
const JITTER_IN: usize = 6;
const JITTER_OUT: usize = 7;
const DEPAYLOADED: usize = 8;
const DECODED: usize = 9;

type Times = [Option<u64>; STEPS.len()];

/// What the probes saw (µs of `now_micros`).
#[derive(Default)]
struct Log {
    /// Per frame, by its stamp.
    frames: HashMap<u64, Times>,
    /// The sender's PTS of each stamped frame (set at the encoder's input).
    sender_pts: HashMap<u64, u64>,
    /// The viewer's jitter buffer: last packet in, per RTP timestamp.
    arrived: HashMap<u32, u64>,
    /// The viewer's PTS → (RTP timestamp, last packet out of the jitter
    /// buffer, depayloaded).
    received: HashMap<u64, (u32, Option<u64>, Option<u64>)>,
    /// CPU time of the encoding thread at each frame's input, by PTS, and
    /// what the encode of each frame took of it (ms).
    encoder_cpu_in: HashMap<u64, u64>,
    encode_cpu: Vec<f64>,
    /// Only frames stamped after this are kept (the settling is not).
    since: u64,
}

type Shared = Arc<Mutex<Log>>;

const STAMP_MASK: u64 = (1 << STAMP_BITS) - 1;

impl Log {
    /// Times `step` of the sender's frame with PTS `pts`; `last`: the
    /// latest packet counts, else the first.
    fn sender_step(&mut self, pts: u64, step: usize, last: bool) {
        let Some(&stamp) = self.sender_pts.get(&pts) else {
            return;
        };
        let now = now_micros();
        if let Some(times) = self.frames.get_mut(&stamp)
            && (last || times[step].is_none())
        {
            times[step] = Some(now);
        }
    }
}

/// CPU time of the calling thread (µs): with the wall time, tells a
/// step's own work from its waiting for a core.
fn thread_cpu_micros() -> u64 {
    let mut time = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut time) };
    time.tv_sec as u64 * 1_000_000 + time.tv_nsec as u64 / 1000
}

/// The stamp of a raw I420 frame, with its PTS.
fn stamp_of(pad: &gst::Pad, buffer: &gst::BufferRef) -> Option<(u64, u64)> {
    let caps = pad.current_caps()?;
    let info = gst_video::VideoInfo::from_caps(&caps).ok()?;
    let map = buffer.map_readable().ok()?;
    let stamp = read_stamp(&map, info.stride()[0] as usize, 0);
    Some((stamp, buffer.pts()?.nseconds()))
}

/// Every buffer of a probe's data (one, or a list's).
fn each_buffer(info: &gst::PadProbeInfo, mut f: impl FnMut(&gst::BufferRef)) {
    match &info.data {
        Some(gst::PadProbeData::Buffer(buffer)) => f(buffer),
        Some(gst::PadProbeData::BufferList(list)) => list.iter().for_each(f),
        _ => {}
    }
}

fn probe(
    element: &gst::Element,
    pad: &str,
    log: &Shared,
    on: impl Fn(&mut Log, &gst::Pad, &gst::BufferRef) + Send + Sync + 'static,
) {
    let Some(pad) = element.static_pad(pad) else {
        return;
    };
    let log = log.clone();
    pad.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
        move |pad, info| {
            let mut log = log.lock().unwrap();
            each_buffer(info, |buffer| on(&mut log, pad, buffer));
            gst::PadProbeReturn::Ok
        },
    );
}

fn pts(buffer: &gst::BufferRef) -> Option<u64> {
    buffer.pts().map(|pts| pts.nseconds())
}

/// The RTP timestamp of an RTP packet.
fn rtp_timestamp(buffer: &gst::BufferRef) -> Option<u32> {
    let mut header = [0u8; 8];
    (buffer.copy_to_slice(0, &mut header).is_ok() && header[0] >> 6 == 2)
        .then(|| u32::from_be_bytes([header[4], header[5], header[6], header[7]]))
}

/// Probes the sender's elements as they are added to `bin`.
fn watch_sender(element: &gst::Element, log: &Shared) {
    let Some(factory) = element.factory() else {
        return;
    };
    match factory.name().as_str() {
        "vp8enc" => {
            probe(element, "sink", log, |log, pad, buffer| {
                let Some((stamp, pts)) = stamp_of(pad, buffer) else {
                    return;
                };
                if stamp < (log.since & STAMP_MASK) {
                    return;
                }
                log.sender_pts.insert(pts, stamp);
                let now = now_micros();
                let times = log.frames.entry(stamp).or_default();
                // The stamp is the source's time modulo 2^STAMP_BITS.
                times[SOURCE] = Some(now - (now.wrapping_sub(stamp) & STAMP_MASK));
                times[ENCODER_IN] = Some(now);
                log.encoder_cpu_in.insert(pts, thread_cpu_micros());
            });
            probe(element, "src", log, |log, _, buffer| {
                if let Some(pts) = pts(buffer) {
                    log.sender_step(pts, ENCODER_OUT, false);
                    // vp8enc (lag-in-frames=0) pushes from its input's thread.
                    if let Some(before) = log.encoder_cpu_in.remove(&pts) {
                        let used = thread_cpu_micros().saturating_sub(before);
                        log.encode_cpu.push(used as f64 / 1000.0);
                    }
                }
            });
        }
        "rtpvp8pay" => {
            probe(element, "sink", log, |log, _, buffer| {
                if let Some(pts) = pts(buffer) {
                    log.sender_step(pts, PAYLOADER_IN, false);
                }
            });
            probe(element, "src", log, |log, _, buffer| {
                if let Some(pts) = pts(buffer) {
                    log.sender_step(pts, PAYLOADER_OUT, false);
                }
            });
        }
        "nicesink" => probe(element, "sink", log, |log, _, buffer| {
            if let Some(pts) = pts(buffer) {
                log.sender_step(pts, SOCKET, true);
            }
        }),
        _ => {}
    }
}

fn watch_viewer(element: &gst::Element, log: &Shared) {
    let Some(factory) = element.factory() else {
        return;
    };
    match factory.name().as_str() {
        "rtpjitterbuffer" => {
            probe(element, "sink", log, |log, _, buffer| {
                if let Some(rtp) = rtp_timestamp(buffer) {
                    log.arrived.insert(rtp, now_micros());
                }
            });
            probe(element, "src", log, |log, _, buffer| {
                if let (Some(rtp), Some(pts)) = (rtp_timestamp(buffer), pts(buffer)) {
                    let entry = log.received.entry(pts).or_insert((rtp, None, None));
                    entry.1 = Some(now_micros());
                }
            });
        }
        "rtpvp8depay" => probe(element, "src", log, |log, _, buffer| {
            if let Some(pts) = pts(buffer)
                && let Some(entry) = log.received.get_mut(&pts)
            {
                entry.2.get_or_insert(now_micros());
            }
        }),
        "vp8dec" => probe(element, "src", log, |log, pad, buffer| {
            let now = now_micros();
            let Some((stamp, pts)) = stamp_of(pad, buffer) else {
                return;
            };
            let Some(&(rtp, jitter_out, depayloaded)) = log.received.get(&pts) else {
                return;
            };
            let arrived = log.arrived.get(&rtp).copied();
            if let Some(times) = log.frames.get_mut(&stamp) {
                times[JITTER_IN] = arrived;
                times[JITTER_OUT] = jitter_out;
                times[DEPAYLOADED] = depayloaded;
                times[DECODED] = Some(now);
            }
        }),
        _ => {}
    }
}

/// Calls `watch` on every element inside `bin`, now and later.
fn watch_deep(bin: &gst::Bin, log: &Shared, watch: fn(&gst::Element, &Shared)) {
    for element in bin.iterate_recurse().into_iter().flatten() {
        watch(&element, log);
    }
    let log = log.clone();
    bin.connect_deep_element_added(move |_, _, element| watch(element, &log));
}

/// One sender and its viewer for `seconds`: the frames seen at every step.
fn trace(
    kind: Kind,
    webrtc_server: Option<&str>,
    broadcast: Broadcast,
    seconds: u64,
) -> Result<Trace, String> {
    let signalling = Signalling::start(kind, webrtc_server)?;
    let log: Shared = Arc::default();
    let sending = sender::pipeline(kind, &signalling.uri(), broadcast);
    watch_deep(sending.upcast_ref(), &log, watch_sender);
    let sink = sending.by_name("sink").expect("the sink is named");
    if kind == Kind::WebRtcSink {
        // Its encoders and webrtcbins live in a pipeline per viewer.
        let log = log.clone();
        sink.connect("consumer-pipeline-created", false, move |values| {
            if let Ok(pipeline) = values[2].get::<gst::Pipeline>() {
                watch_deep(pipeline.upcast_ref(), &log, watch_sender);
            }
            None
        });
    }
    sending
        .set_state(gst::State::Playing)
        .map_err(|err| err.to_string())?;
    let producer = sender::producer_id(kind, &sink);
    let frames = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let viewer_log = log.clone();
    let viewing = receive(
        kind,
        &signalling.uri(),
        &producer,
        frames.clone(),
        None,
        Some(&move |pipeline: &gst::Pipeline| {
            watch_deep(pipeline.upcast_ref(), &viewer_log, watch_viewer)
        }),
    );
    let begin = Instant::now();
    while frames.load(std::sync::atomic::Ordering::Relaxed) < 30 {
        if begin.elapsed() > Duration::from_secs(30) {
            return Err(format!(
                "{}: the viewer got no picture in 30 s",
                kind.name()
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // A second of settling, then the measured window.
    std::thread::sleep(Duration::from_secs(1));
    {
        let mut log = log.lock().unwrap();
        *log = Log {
            since: now_micros(),
            ..Log::default()
        };
    }
    std::thread::sleep(Duration::from_secs(seconds));
    let _ = viewing.set_state(gst::State::Null);
    let _ = sending.set_state(gst::State::Null);
    let log = std::mem::take(&mut *log.lock().unwrap());
    Ok(Trace {
        frames: log
            .frames
            .into_values()
            .filter(|times| times[DECODED].is_some())
            .collect(),
        encode_cpu: log.encode_cpu,
    })
}

/// What one sender's run saw.
struct Trace {
    /// Every frame followed to the viewer's decoder.
    frames: Vec<Times>,
    /// CPU time (ms) of each frame's encode.
    encode_cpu: Vec<f64>,
}

fn ms(from: Option<u64>, to: Option<u64>) -> Option<f64> {
    Some(to?.checked_sub(from?)? as f64 / 1000.0)
}

/// Each step's share of the frames' time, for all frames and for the
/// slowest 5% (where the tail comes from).
fn report(kind: Kind, round: usize, trace: &Trace) {
    let frames = &trace.frames;
    let total = |times: &Times| ms(times[SOURCE], times[DECODED]).unwrap_or(f64::NAN);
    let totals: Vec<f64> = frames.iter().map(total).collect();
    let summary = Summary::of(&totals);
    let slowest: Vec<&Times> = frames.iter().filter(|t| total(t) >= summary.p95).collect();
    println!(
        "\n### Round {round}, {} → {}: {} frames decoded, source → decoded p50 {:.1} / p95 {:.1} / max {:.1} ms\n",
        kind.name(),
        kind.receiver(),
        frames.len(),
        summary.median,
        summary.p95,
        summary.max
    );
    println!(
        "| step (time since the step before) | frames | p50 ms | p95 ms | mean ms in the slowest 5% |"
    );
    println!("|---|---|---|---|---|");
    for step in 1..STEPS.len() {
        let delta = |times: &Times| {
            // Since the latest earlier step this frame was seen at.
            let before = (0..step).rev().find_map(|s| times[s]);
            ms(before, times[step])
        };
        let deltas: Vec<f64> = frames.iter().filter_map(delta).collect();
        let tail: Vec<f64> = slowest.iter().filter_map(|t| delta(t)).collect();
        let spread = Summary::of(&deltas);
        let tail_mean = tail.iter().sum::<f64>() / tail.len().max(1) as f64;
        println!(
            "| {} | {} | {:.2} | {:.2} | {:.2} |",
            STEPS[step],
            deltas.len(),
            spread.median,
            spread.p95,
            tail_mean
        );
        if step == ENCODER_OUT {
            let cpu = Summary::of(&trace.encode_cpu);
            println!(
                "| ... of it the encoding thread's CPU time | {} | {:.2} | {:.2} | |",
                trace.encode_cpu.len(),
                cpu.median,
                cpu.p95
            );
        }
    }
}

/// Runs the trace for each kind, interleaved in rounds.
pub fn run(
    kinds: &[Kind],
    webrtc_server: Option<&str>,
    broadcast: Broadcast,
    seconds: u64,
    rounds: usize,
) -> i32 {
    sender::init();
    let _veth = match LoopbackVeth::for_kinds(kinds) {
        Ok(veth) => veth,
        Err(err) => {
            eprintln!("{err}");
            return 2;
        }
    };
    let mut status = 0;
    for round in 1..=rounds {
        for &kind in kinds {
            match trace(kind, webrtc_server, broadcast, seconds) {
                Ok(trace) if trace.frames.len() >= seconds as usize * 20 => {
                    report(kind, round, &trace)
                }
                Ok(trace) => {
                    eprintln!(
                        "{}: only {} frames followed to the end",
                        kind.name(),
                        trace.frames.len()
                    );
                    status = 1;
                }
                Err(err) => {
                    eprintln!("{err}");
                    status = 1;
                }
            }
        }
    }
    status
}
