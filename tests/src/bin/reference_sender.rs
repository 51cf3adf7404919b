//! Runs a sending pipeline of gst-plugins-rs's webrtcsink family (the
//! reference peers of scripts/reference-peers.sh, found through
//! GST_PLUGIN_PATH) and reports, as JSON lines on stdout, what the SENDER
//! sees of its receiver's congestion feedback: how many transport-cc
//! feedback reports its RTP session processed (`twcc-stats` notifications,
//! only emitted on received feedback), the rates and loss those reports
//! give, and the target bitrate its congestion control set on the encoder.
//! gst-launch cannot show any of that, hence this tool (tests/tests/ingest.rs).
//!
//! Usage: reference_sender 'PIPELINE' (its webrtcsink-based element named `s`)
//!
//! Lines:
//!   {"offer": "<the remote description's SDP>"}           once, when set
//!   {"at": s, "feedback": n, "bitrate_sent": b, "bitrate_recv": b,
//!    "loss_pct": p, "encoder_bitrate": b}                  every 500 ms

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;

const INTERVAL: Duration = Duration::from_millis(500);

/// The one consumer's webrtcbin and what was learnt from it.
#[derive(Default)]
struct Consumer {
    webrtcbin: Option<gst::Element>,
    /// The RTP session element (session 0: all is bundled), once it exists
    /// and its `twcc-stats` is watched.
    session: Option<gst::Element>,
    offer_printed: bool,
}

fn main() {
    let description = std::env::args()
        .nth(1)
        .expect("usage: reference_sender 'PIPELINE' (the sink named s)");
    gst::init().expect("GStreamer initializes");
    let pipeline = gst::parse::launch(&description)
        .unwrap_or_else(|err| panic!("cannot build {description:?}: {err}"))
        .downcast::<gst::Pipeline>()
        .expect("a pipeline description");
    let sink = pipeline
        .by_name("s")
        .expect("the webrtcsink-based element is named s");

    let consumer = Arc::new(Mutex::new(Consumer::default()));
    let feedback = Arc::new(AtomicU64::new(0));
    let latest = Arc::new(Mutex::new(None::<gst::Structure>));
    {
        let consumer = consumer.clone();
        sink.connect("consumer-added", false, move |values| {
            let webrtcbin = values[2].get::<gst::Element>().ok()?;
            consumer.lock().unwrap().webrtcbin = Some(webrtcbin);
            None
        });
    }

    pipeline
        .set_state(gst::State::Playing)
        .expect("the sending pipeline starts");
    let bus = pipeline.bus().expect("a pipeline has a bus");
    let started = Instant::now();
    loop {
        if let Some(message) = bus.timed_pop_filtered(
            gst::ClockTime::from_mseconds(INTERVAL.as_millis() as u64),
            &[gst::MessageType::Error, gst::MessageType::Eos],
        ) {
            if let gst::MessageView::Error(err) = message.view() {
                eprintln!("error: {} ({:?})", err.error(), err.debug());
                std::process::exit(1);
            }
            break;
        }
        let mut state = consumer.lock().unwrap();
        let Some(webrtcbin) = state.webrtcbin.clone() else {
            continue;
        };
        if !state.offer_printed
            && let Some(offer) = webrtcbin
                .property::<Option<gst_webrtc::WebRTCSessionDescription>>("remote-description")
            && let Ok(text) = offer.sdp().as_text()
        {
            println!("{}", serde_json::json!({ "offer": text }));
            state.offer_printed = true;
        }
        if state.session.is_none() {
            let rtpbin = webrtcbin
                .downcast_ref::<gst::Bin>()
                .and_then(|bin| bin.by_name("rtpbin"));
            let session = rtpbin.and_then(|rtpbin| {
                rtpbin.emit_by_name::<Option<gst::Element>>("get-session", &[&0u32])
            });
            if let Some(session) = session {
                let (feedback, latest) = (feedback.clone(), latest.clone());
                // rtpsession notifies twcc-stats each time it has processed
                // a transport-cc feedback packet from the receiver.
                session.connect_notify(Some("twcc-stats"), move |session, _| {
                    feedback.fetch_add(1, Ordering::Relaxed);
                    *latest.lock().unwrap() =
                        Some(session.property::<gst::Structure>("twcc-stats"));
                });
                state.session = Some(session);
            }
        }
        drop(state);
        let twcc = latest.lock().unwrap().clone();
        let field = |name: &str| -> Option<f64> {
            let twcc = twcc.as_ref()?;
            twcc.get::<u32>(name)
                .map(f64::from)
                .or_else(|_| twcc.get::<f64>(name))
                .ok()
        };
        println!(
            "{}",
            serde_json::json!({
                "at": started.elapsed().as_secs_f64(),
                "feedback": feedback.load(Ordering::Relaxed),
                "bitrate_sent": field("bitrate-sent"),
                "bitrate_recv": field("bitrate-recv"),
                "loss_pct": field("packet-loss-pct"),
                "encoder_bitrate": encoder_bitrate(&sink),
            })
        );
    }
    let _ = pipeline.set_state(gst::State::Null);
}

/// The target bitrate webrtcsink's congestion control last gave the
/// (first) video encoder of any session, from its `stats`.
fn encoder_bitrate(sink: &gst::Element) -> Option<i64> {
    let stats = sink.property::<gst::Structure>("stats");
    stats.iter().find_map(|(_, session)| {
        let session = session.get::<gst::Structure>().ok()?;
        let consumer = session.get::<gst::Structure>("consumer-stats").ok()?;
        let encoders = consumer.get::<gst::Array>("video-encoders").ok()?;
        let encoder = encoders.first()?.get::<gst::Structure>().ok()?;
        encoder.get::<i32>("bitrate").ok().map(i64::from)
    })
}
