//! Where a warm join's time goes (`broadcast_bench join-trace`): peersink
//! and a series of peersrc viewers in one process, so that every step of
//! both sides is stamped on one clock: the viewer's signalling, the
//! sender's offer and the viewer's answer, ICE, DTLS, the keyframe asked
//! for and encoded, the first RTP packet decrypted, the jitter buffer's
//! first output and the first decoded frame.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;
use peer_farm::cli::Summary;

use crate::Kind;
use crate::decoding::receive;
use crate::infra::Signalling;
use crate::sender::{self, Broadcast};

/// The steps of the join under way, first time each was seen (ms from
/// the viewer pipeline's start).
#[derive(Default)]
struct Steps {
    start: Option<Instant>,
    seen: Vec<(String, f64)>,
}

type Log = Arc<Mutex<Steps>>;

fn mark(log: &Log, step: String) {
    let mut steps = log.lock().unwrap();
    let Some(start) = steps.start else { return };
    if steps.seen.iter().any(|(seen, _)| *seen == step) {
        return;
    }
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    steps.seen.push((step, ms));
}

/// Stamps the states of every webrtcbin, and the first buffer through the
/// elements that tell a step, inside `pipeline`; `side` names it.
fn watch(pipeline: &gst::Pipeline, side: &'static str, log: &Log) {
    let log = log.clone();
    pipeline.connect_deep_element_added(move |_, _, element| {
        let Some(factory) = element.factory() else {
            return;
        };
        match factory.name().as_str() {
            "webrtcbin" => {
                for property in [
                    "signaling-state",
                    "ice-gathering-state",
                    "ice-connection-state",
                    "connection-state",
                ] {
                    let log = log.clone();
                    element.connect_notify(Some(property), move |bin, pspec| {
                        let value = bin.property_value(pspec.name());
                        let text = enum_nick(&value);
                        mark(&log, format!("{side} {property} {text}"));
                    });
                }
            }
            "vp8enc" => first_buffer(
                element,
                "src",
                &log,
                format!("{side} keyframe encoded"),
                true,
            ),
            "srtpdec" => first_buffer(
                element,
                "rtp_src",
                &log,
                format!("{side} first RTP decrypted"),
                false,
            ),
            "rtpjitterbuffer" => first_buffer(
                element,
                "src",
                &log,
                format!("{side} jitter buffer out"),
                false,
            ),
            "vp8dec" => first_buffer(element, "src", &log, format!("{side} frame decoded"), false),
            _ => {}
        }
    });
}

fn enum_nick(value: &glib::Value) -> String {
    glib::EnumValue::from_value(value)
        .map(|(_, v)| v.nick().to_owned())
        .unwrap_or_else(|| format!("{value:?}"))
}

fn first_buffer(element: &gst::Element, pad: &str, log: &Log, step: String, keyframe: bool) {
    let Some(pad) = element.static_pad(pad) else {
        return;
    };
    let log = log.clone();
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        let is_key = info
            .buffer()
            .is_some_and(|b| !b.flags().contains(gst::BufferFlags::DELTA_UNIT));
        if !keyframe || is_key {
            mark(&log, step.clone());
        }
        gst::PadProbeReturn::Ok
    });
}

use gst::glib;

/// Runs the trace: prints each join's steps, then the median of each
/// step over the warm joins (the first join warms the process up).
pub fn run(broadcast: Broadcast, joins: usize) -> i32 {
    sender::init();
    let signalling = match Signalling::start(Kind::PeerSink, None) {
        Ok(signalling) => signalling,
        Err(err) => {
            eprintln!("{err}");
            return 2;
        }
    };
    let log: Log = Arc::default();
    let sending = sender::pipeline(Kind::PeerSink, &signalling.uri(), broadcast);
    watch(&sending, "sender", &log);
    let sink = sending.by_name("sink").expect("the sink is named");
    let added = log.clone();
    sink.connect("viewer-added", false, move |_| {
        mark(&added, "sender viewer added (offer next)".into());
        None
    });
    sending
        .set_state(gst::State::Playing)
        .expect("sender plays");
    std::thread::sleep(Duration::from_secs(2));

    let mut steps: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for join in 0..=joins {
        *log.lock().unwrap() = Steps {
            start: Some(Instant::now()),
            seen: Vec::new(),
        };
        let frames = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let viewer = receive(
            Kind::PeerSink,
            &signalling.uri(),
            "cam",
            frames.clone(),
            None,
            Some(&|pipeline: &gst::Pipeline| watch(pipeline, "viewer", &log)),
        );
        let begin = Instant::now();
        while frames.load(std::sync::atomic::Ordering::Relaxed) == 0 {
            if begin.elapsed() > Duration::from_secs(30) {
                eprintln!("join {join}: no frame in 30 s");
                return 1;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        mark(&log, "viewer frame counted".into());
        let mut seen = std::mem::take(&mut log.lock().unwrap().seen);
        seen.sort_by(|a, b| a.1.total_cmp(&b.1));
        println!("join {join}{}", if join == 0 { " (first)" } else { "" });
        for (step, ms) in &seen {
            println!("  {ms:7.1} ms  {step}");
            if join > 0 {
                steps.entry(step.clone()).or_default().push(*ms);
            }
        }
        let _ = viewer.set_state(gst::State::Null);
        // As the benchmark's warm joins: the next one right after.
    }
    let mut medians: Vec<(f64, String, usize)> = steps
        .into_iter()
        .map(|(step, times)| (Summary::of(&times).median, step, times.len()))
        .collect();
    medians.sort_by(|a, b| a.0.total_cmp(&b.0));
    println!("median over {joins} warm joins (ms from the viewer's start):");
    for (ms, step, count) in medians {
        println!("  {ms:7.1}  {step} ({count})");
    }
    let _ = sending.set_state(gst::State::Null);
    0
}
