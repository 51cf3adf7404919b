//! A peersrc viewer that reports each decoded video frame as it comes out
//! of the decoder, for tests that measure freezes of a viewer running in a
//! network namespace of its own (tests/tests/loss_freeze.rs), where the
//! test process itself cannot be.
//!
//! Usage: freeze_viewer 'PEERSRC PROPERTIES'
//!
//! The video goes to a clock-synchronised sink, as any player's does: a
//! frame is shown at its timestamp plus the pipeline's latency (the jitter
//! buffer's included), so a retransmission that arrives within that
//! latency delays no frame on screen. This is where libwebrtc measures
//! freezes too (VideoQualityObserver, at rendering).
//!
//! Lines on stdout:
//!   frame NS WxH R G B   a frame shown: when it was rendered on
//!                        CLOCK_MONOTONIC (ns, comparable with the test's
//!                        clock), size, and the RGB of the pixel at (8, 8)
//!   decoded NS [AHEAD]   a frame out of the decoder (before the sink's
//!                        wait): what a sink that does not wait would
//!                        show; AHEAD: ms its timestamp's running time is
//!                        ahead of the clock (the sink adds the latency)
//!   jitterbuffer STATS   every 5 s: the video jitter buffer's own figures
//!                        (retransmissions asked for, lost packets)
//!   latency live=B min=T every 5 s: the pipeline's latency, how long the
//!                        sink holds each frame back
//!   keyreq NS            the video depayloader asked for a keyframe (peersrc
//!                        passes at most two a second on as PLI)
//!   lost NS              the jitter buffer gave a video packet up (the
//!                        depayloader was told it is lost)
//!   rtcp STATS           every 5 s: the RTP session's NACK figures (sent,
//!                        and dropped because their deadline passed)
//!   second VIDEO AUDIO KEYFRAME_REQUESTS
//!                        once a second: video frames and audio buffers
//!                        decoded so far, PLIs peersrc sent so far
//!   error: MESSAGE       a pipeline error (then exit status 1)

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gst::prelude::*;
use gst_video::prelude::*;
use peer_tests::freeze::monotonic_now;

/// Where the colour is sampled: a corner the test's moving content leaves
/// to its background most of the time.
const PROBE: (usize, usize) = (8, 8);

fn video_branch(frames: Arc<AtomicU64>) -> gst::Element {
    let bin = gst::parse::bin_from_description(
        "queue ! videoconvert ! video/x-raw,format=RGB ! appsink name=frames sync=true",
        true,
    )
    .expect("the video branch builds");
    bin.static_pad("sink")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, |pad, info| {
            let arrival = monotonic_now();
            // How far ahead of its timestamp's running time the frame
            // is (negative: behind); the sink shows it at that time plus
            // the pipeline's latency.
            let ahead = (|| {
                let pts = info.buffer()?.pts()?;
                let segment = pad.sticky_event::<gst::event::Segment>(0)?;
                let segment = segment.segment().downcast_ref::<gst::ClockTime>()?;
                let running = segment.to_running_time(pts)?;
                let now = pad.parent_element()?.current_running_time()?;
                Some((running.nseconds() as i64 - now.nseconds() as i64) / 1_000_000)
            })();
            let mut out = std::io::stdout().lock();
            let _ = match ahead {
                Some(ahead) => writeln!(out, "decoded {} {ahead}", arrival.as_nanos()),
                None => writeln!(out, "decoded {}", arrival.as_nanos()),
            };
            let _ = out.flush();
            gst::PadProbeReturn::Ok
        });
    let appsink = bin
        .by_name("frames")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    appsink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                // Taken first: the arrival is what is measured.
                let arrival = monotonic_now();
                let caps = sample.caps().ok_or(gst::FlowError::NotNegotiated)?;
                let info = gst_video::VideoInfo::from_caps(caps)
                    .map_err(|_| gst::FlowError::NotNegotiated)?;
                let buffer = sample.buffer().ok_or(gst::FlowError::Error)?;
                let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info)
                    .map_err(|_| gst::FlowError::Error)?;
                let stride = frame.plane_stride()[0] as usize;
                let data = frame.plane_data(0).map_err(|_| gst::FlowError::Error)?;
                let offset = PROBE.1 * stride + PROBE.0 * 3;
                let rgb = data.get(offset..offset + 3).unwrap_or(&[0, 0, 0]);
                frames.fetch_add(1, Ordering::Relaxed);
                let mut out = std::io::stdout().lock();
                let _ = writeln!(
                    out,
                    "frame {} {}x{} {} {} {}",
                    arrival.as_nanos(),
                    info.width(),
                    info.height(),
                    rgb[0],
                    rgb[1],
                    rgb[2]
                );
                let _ = out.flush();
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    bin.upcast()
}

fn audio_branch(buffers: Arc<AtomicU64>) -> gst::Element {
    let sink = gst::ElementFactory::make("fakesink")
        .property("sync", false)
        .property("async", false)
        .build()
        .expect("fakesink");
    sink.static_pad("sink")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            buffers.fetch_add(1, Ordering::Relaxed);
            gst::PadProbeReturn::Ok
        });
    sink
}

/// PLIs peersrc sent for its video, from its `stats`.
fn keyframe_requests(peersrc: &gst::Element) -> u64 {
    let stats = peersrc.property::<gst::Structure>("stats");
    let Ok(tracks) = stats.get::<gst::Structure>("tracks") else {
        return 0;
    };
    tracks
        .iter()
        .filter_map(|(_, track)| track.get::<gst::Structure>().ok())
        .filter_map(|track| track.get::<u64>("keyframe-requests").ok())
        .sum()
}

/// The elements inside peersrc whose figures the log wants, found as
/// they are created (their pads' caps do not always say which medium
/// they carry, so every jitter buffer is reported).
#[derive(Default)]
struct Watched {
    jitterbuffers: Vec<gst::Element>,
    sessions: Vec<gst::Element>,
}

fn print_line(line: String) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Watches what peersrc builds: keyframe requests and lost packets at
/// the video depayloader, and keeps the jitter buffers and RTP sessions
/// for their statistics.
fn watch(pipeline: &gst::Pipeline, watched: Arc<Mutex<Watched>>) {
    pipeline.connect_deep_element_added(move |_, _, element| {
        let Some(factory) = element.factory() else {
            return;
        };
        match factory.name().as_str() {
            "rtpjitterbuffer" => watched.lock().unwrap().jitterbuffers.push(element.clone()),
            "rtpsession" => watched.lock().unwrap().sessions.push(element.clone()),
            "rtpvp8depay" | "rtpvp9depay" | "rtph264depay" => {
                let sink = element
                    .static_pad("sink")
                    .expect("depayloaders have a sink pad");
                sink.add_probe(
                    gst::PadProbeType::EVENT_UPSTREAM | gst::PadProbeType::EVENT_DOWNSTREAM,
                    |_, info| {
                        let Some(event) = info.event() else {
                            return gst::PadProbeReturn::Ok;
                        };
                        let now = monotonic_now().as_nanos();
                        if gst_video::ForceKeyUnitEvent::is(event) {
                            print_line(format!("keyreq {now}"));
                        } else if event
                            .structure()
                            .is_some_and(|s| s.name() == "GstRTPPacketLost")
                        {
                            print_line(format!("lost {now}"));
                        }
                        gst::PadProbeReturn::Ok
                    },
                );
            }
            _ => {}
        }
    });
}

/// The figures of peersrc's jitter buffers and RTP sessions, for a
/// test's log.
fn print_stats(watched: &Mutex<Watched>) {
    let watched = watched.lock().unwrap();
    for jitterbuffer in &watched.jitterbuffers {
        print_line(format!(
            "jitterbuffer {} {}",
            jitterbuffer.name(),
            jitterbuffer.property::<gst::Structure>("stats")
        ));
    }
    for session in &watched.sessions {
        let stats = session.property::<gst::Structure>("stats");
        let field = |name: &str| stats.get::<u32>(name).unwrap_or(0);
        print_line(format!(
            "rtcp sent-nack-count={} rtx-drop-count={} recv-nack-count={}",
            field("sent-nack-count"),
            field("rtx-drop-count"),
            field("recv-nack-count")
        ));
    }
}

fn main() {
    let properties = std::env::args()
        .nth(1)
        .expect("usage: freeze_viewer 'PEERSRC PROPERTIES'");
    gst::init().expect("GStreamer initializes");
    gstpeer::plugin_register_static().expect("the peer plugin registers");
    let pipeline = gst::Pipeline::new();
    let watched = Arc::new(Mutex::new(Watched::default()));
    watch(&pipeline, watched.clone());
    let peersrc = gst::parse::launch(&format!("peersrc {properties}"))
        .unwrap_or_else(|err| panic!("cannot make peersrc {properties}: {err}"));
    pipeline.add(&peersrc).unwrap();
    let video_frames = Arc::new(AtomicU64::new(0));
    let audio_buffers = Arc::new(AtomicU64::new(0));
    let (video, audio) = (video_frames.clone(), audio_buffers.clone());
    let weak = pipeline.downgrade();
    peersrc.connect_pad_added(move |_, pad| {
        let Some(pipeline) = weak.upgrade() else {
            return;
        };
        let branch = if pad.name().starts_with("video") {
            video_branch(video.clone())
        } else {
            audio_branch(audio.clone())
        };
        pipeline.add(&branch).unwrap();
        branch.sync_state_with_parent().unwrap();
        pad.link(&branch.static_pad("sink").unwrap()).unwrap();
    });
    pipeline
        .set_state(gst::State::Playing)
        .expect("the viewer plays");
    let bus = pipeline.bus().unwrap();
    let mut seconds = 0u64;
    loop {
        seconds += 1;
        if seconds.is_multiple_of(5) {
            print_stats(&watched);
            // How long the sink holds a frame back: what a retransmission
            // has to arrive within.
            let mut query = gst::query::Latency::new();
            if pipeline.query(&mut query) {
                let (live, min, _) = query.result();
                println!("latency live={live} min={min}");
            }
        }
        if let Some(message) = bus.timed_pop_filtered(
            gst::ClockTime::from_nseconds(Duration::from_secs(1).as_nanos() as u64),
            &[gst::MessageType::Error, gst::MessageType::Eos],
        ) {
            let text = match message.view() {
                gst::MessageView::Error(err) => format!("{} ({:?})", err.error(), err.debug()),
                _ => "end of stream".to_owned(),
            };
            println!("error: {text}");
            let _ = pipeline.set_state(gst::State::Null);
            std::process::exit(1);
        }
        println!(
            "second {} {} {}",
            video_frames.load(Ordering::Relaxed),
            audio_buffers.load(Ordering::Relaxed),
            keyframe_requests(&peersrc)
        );
    }
}
