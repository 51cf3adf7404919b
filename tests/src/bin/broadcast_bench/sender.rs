//! The broadcast: a moving picture stamped with the wall-clock time, sent
//! by peersink or webrtcsink. Runs in a process of its own so that its CPU
//! time, memory and threads are the sender's alone.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gst::glib;
use gst::prelude::*;

use crate::Kind;

/// Timestamp bits written into the picture (µs, modulo 2^40: 12 days).
pub const STAMP_BITS: usize = 40;
pub const BLOCK: usize = 16;

/// What the sender sends.
#[derive(Debug, Clone, Copy)]
pub struct Broadcast {
    pub width: u32,
    pub height: u32,
    pub bitrate: u32,
}

pub fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_micros() as u64
}

pub fn init() {
    gst::init().expect("GStreamer initializes");
    gstpeer::plugin_register_static().expect("the peer plugin registers");
}

/// Sends until killed; prints `producer ID` once viewers can ask for it.
pub fn run(kind: Kind, uri: &str, broadcast: Broadcast) {
    init();
    let pipeline = pipeline(kind, uri, broadcast);
    let sink = pipeline.by_name("sink").expect("the sink is named");
    pipeline
        .set_state(gst::State::Playing)
        .expect("sender plays");
    println!("producer {}", producer_id(kind, &sink));
    run_until_killed(&pipeline);
}

/// The id viewers ask for once `sink` plays: `cam` for peersink;
/// webrtcsink's is given by the server when it registers.
pub fn producer_id(kind: Kind, sink: &gst::Element) -> String {
    if kind != Kind::WebRtcSink {
        return "cam".into();
    }
    let signaller = sink.property::<glib::Object>("signaller");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let id = signaller
            .find_property("client-id")
            .and_then(|_| signaller.property::<Option<String>>("client-id"));
        if let Some(id) = id {
            return id;
        }
        assert!(Instant::now() < deadline, "webrtcsink never registered");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The sending pipeline (not started): stamped test picture → `kind`,
/// producer id `cam` for peersink.
pub fn pipeline(kind: Kind, uri: &str, broadcast: Broadcast) -> gst::Pipeline {
    let Broadcast {
        width,
        height,
        bitrate,
    } = broadcast;
    let sink = match kind {
        Kind::PeerSink => format!(
            "peersink name=sink uri={uri} peer-id=cam ice-addresses=127.0.0.1 max-viewers=0 video-bitrate={bitrate}"
        ),
        Kind::PeerSinkNoDataChannel => format!(
            "peersink name=sink uri={uri} peer-id=cam ice-addresses=127.0.0.1 max-viewers=0 video-bitrate={bitrate} \
             data-channels=\"\""
        ),
        Kind::PeerSinkBare => format!(
            "peersink name=sink uri={uri} peer-id=cam ice-addresses=127.0.0.1 max-viewers=0 video-bitrate={bitrate} \
             data-channels=\"\" transport-cc=false"
        ),
        // The same fixed bitrate as peersink, no FEC: like for like. With
        // congestion control disabled webrtcsink encodes at max-bitrate
        // (8 Mbit/s by default, seen), not start-bitrate: both are set.
        // Its mitigations (half the frame rate under 500 kbit/s, a smaller
        // picture under 2 Mbit/s) are off: peersink sends what it gets.
        Kind::WebRtcSink => format!(
            "webrtcsink name=sink signaller::uri={uri} congestion-control=disabled \
             start-bitrate={bitrate} max-bitrate={bitrate} do-fec=false video-caps=video/x-vp8 \
             enable-mitigation-modes=none"
        ),
    };
    let pipeline = peer_tests::launch(&format!(
        "videotestsrc is-live=true pattern=smpte horizontal-speed=2 name=source \
         ! video/x-raw,format=I420,width={width},height={height},framerate=30/1 ! {sink}"
    ));
    let sink = pipeline.by_name("sink").expect("the sink is named");
    if kind == Kind::WebRtcSink {
        // No public STUN server: nothing may leave the namespace.
        sink.set_property("stun-server", None::<String>);
    } else if let Ok(settings) = std::env::var(PEERSINK_VP8_ENV) {
        tune_vp8(&sink, &settings);
    }
    stamp_frames(
        &pipeline.by_name("source").expect("the source is named"),
        width,
    );
    pipeline
}

/// `name=value …` set on peersink's VP8 encoders through its
/// `encoder-setup` signal, over peersink's own settings: to measure other
/// encoder settings (webrtcsink's `cpu-used=-16 dropframe-threshold=0`,
/// say) with the same build.
pub const PEERSINK_VP8_ENV: &str = "BROADCAST_BENCH_PEERSINK_VP8";

fn tune_vp8(sink: &gst::Element, settings: &str) {
    // Checked here, on a spare vp8enc: a mistake found in the signal
    // handler would abort the sender from its streaming thread.
    let probe = gst::ElementFactory::make("vp8enc")
        .build()
        .expect("vp8enc is installed");
    let settings: Vec<(String, String)> = settings
        .split_whitespace()
        .map(|setting| {
            let (name, value) = setting.split_once('=').unwrap_or_else(|| {
                eprintln!("{PEERSINK_VP8_ENV}: \"{setting}\" is not name=value");
                std::process::exit(2)
            });
            if probe.find_property(name).is_none() {
                eprintln!("{PEERSINK_VP8_ENV}: vp8enc has no property \"{name}\"");
                std::process::exit(2)
            }
            (name.to_owned(), value.to_owned())
        })
        .collect();
    sink.connect("encoder-setup", false, move |args| {
        let encoder = args[3].get::<gst::Element>().expect("an element");
        if encoder.factory().is_some_and(|f| f.name() == "vp8enc") {
            for (name, value) in &settings {
                encoder.set_property_from_str(name, value);
            }
        }
        Some(false.to_value())
    });
}

/// Writes the current time (µs) into the top-left luma blocks of each
/// frame, and below it the frame's number (to find the source frame a
/// decoded one came from, for PSNR).
fn stamp_frames(source: &gst::Element, width: u32) {
    let pad = source.static_pad("src").expect("sources have a src pad");
    let frames = std::sync::atomic::AtomicU64::new(0);
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        let Some(buffer) = info.buffer_mut() else {
            return gst::PadProbeReturn::Ok;
        };
        let buffer = buffer.make_mut();
        let Ok(mut map) = buffer.map_writable() else {
            return gst::PadProbeReturn::Ok;
        };
        let stamp = now_micros();
        let number = frames.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let luma = map.as_mut_slice();
        for (line, value) in [(0, stamp), (1, number)] {
            write_bits(luma, width as usize, line, value);
        }
        gst::PadProbeReturn::Ok
    });
}

/// Rows of blocks the stamps take at the top of the picture.
pub const STAMP_ROWS: usize = 2 * BLOCK;

/// `value`'s low STAMP_BITS bits as black and white blocks on block line `line`.
fn write_bits(luma: &mut [u8], stride: usize, line: usize, value: u64) {
    for bit in 0..STAMP_BITS {
        let level = if value >> bit & 1 == 1 { 235 } else { 16 };
        for row in line * BLOCK..(line + 1) * BLOCK {
            let start = row * stride + bit * BLOCK;
            luma[start..start + BLOCK].fill(level);
        }
    }
}

/// Reads block line `line` back from a decoded picture of stride `stride`:
/// 0 the time stamp, 1 the frame number.
pub fn read_stamp(luma: &[u8], stride: usize, line: usize) -> u64 {
    let centre = BLOCK / 2;
    (0..STAMP_BITS).fold(0u64, |stamp, bit| {
        let value = luma[(line * BLOCK + centre) * stride + bit * BLOCK + centre];
        stamp | (((value > 128) as u64) << bit)
    })
}

pub fn run_until_killed(pipeline: &gst::Pipeline) {
    let bus = pipeline.bus().expect("pipelines have a bus");
    for message in bus.iter_timed(gst::ClockTime::NONE) {
        if let gst::MessageView::Error(err) = message.view() {
            eprintln!("error: {} ({:?})", err.error(), err.debug());
            std::process::exit(1);
        }
    }
}
