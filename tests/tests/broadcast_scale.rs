//! Broadcast at scale: one encoder per layer however many viewers, a lossy
//! viewer that costs the others nothing, and a viewer moved between
//! layers by its own bandwidth. The lossy and slow viewers live in
//! network namespaces of their own, joined by veth pairs (tests/src/netns.rs).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;
use peer_signalling::server::ServerConfig;
use peer_tests::netns::IsolatedHost;
use peer_tests::process::ChildProcess;
use peer_tests::{Receiver, TestServer, encoders_in, init, launch, play, viewer_stats, wait_until};

/// These tests add interfaces to the test namespace and load the CPU:
/// one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A server every namespace of the test can reach.
fn server_on_all_addresses() -> TestServer {
    TestServer::start_with(ServerConfig {
        bind: "0.0.0.0:0".parse().unwrap(),
        ..ServerConfig::default()
    })
}

/// A live sender: moving (or noisy) video through peersink, plus a tone.
fn broadcast(props: &str, pattern: &str, width: u32, height: u32) -> gst::Pipeline {
    launch(&format!(
        "peersink name=sink {props} \
         videotestsrc is-live=true {pattern} ! video/x-raw,width={width},height={height},framerate=30/1 \
           ! sink.video_0 \
         audiotestsrc is-live=true wave=sine freq=440 volume=0.3 ! sink.audio_0"
    ))
}

/// A viewer that does not decode: peersrc decode=false, counting what
/// arrives per pad.
struct EncodedViewer {
    pipeline: gst::Pipeline,
    video_buffers: Arc<AtomicU64>,
    audio_buffers: Arc<AtomicU64>,
}

impl EncodedViewer {
    fn start(props: &str) -> EncodedViewer {
        let pipeline = launch(&format!("peersrc name=src decode=false {props}"));
        let video_buffers = Arc::new(AtomicU64::new(0));
        let audio_buffers = Arc::new(AtomicU64::new(0));
        let (video, audio) = (video_buffers.clone(), audio_buffers.clone());
        let weak = pipeline.downgrade();
        pipeline
            .by_name("src")
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
                let counter = if pad.name().starts_with("video") {
                    video.clone()
                } else {
                    audio.clone()
                };
                pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                    counter.fetch_add(1, Ordering::Relaxed);
                    gst::PadProbeReturn::Ok
                });
                pad.link(&sink.static_pad("sink").unwrap()).unwrap();
            });
        play(&pipeline);
        EncodedViewer {
            pipeline,
            video_buffers,
            audio_buffers,
        }
    }
}

impl Drop for EncodedViewer {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

fn layer_of(sink: &gst::Element, peer: &str) -> Option<u32> {
    viewer_stats(sink, peer)?.get::<u32>("layer").ok()
}

/// `layer_of`, printing the viewer's stats once a second: what the
/// adaptation saw, should a switch not come.
struct LayerWatch {
    started: Instant,
    printed: Option<Instant>,
}

impl LayerWatch {
    fn new() -> LayerWatch {
        LayerWatch {
            started: Instant::now(),
            printed: None,
        }
    }

    fn layer(&mut self, sink: &gst::Element, peer: &str) -> Option<u32> {
        let stats = viewer_stats(sink, peer)?;
        if self
            .printed
            .is_none_or(|at| at.elapsed() >= Duration::from_secs(1))
        {
            self.printed = Some(Instant::now());
            // Without webrtcbin's own dictionary: a page per line.
            let mut ours = stats.clone();
            ours.remove_field("webrtc");
            eprintln!("{:>5.1} s {ours}", self.started.elapsed().as_secs_f64());
        }
        stats.get::<u32>("layer").ok()
    }
}

#[test]
fn ten_viewers_share_one_encoder_per_layer_and_get_stats_messages() {
    let _serial = serial();
    init();
    let server = TestServer::start();
    let sender = broadcast(
        &format!(
            "uri={} peer-id=cam video-layers=320x240@300,160x120@100 stats-interval=500",
            server.room_uri("ten")
        ),
        "pattern=smpte horizontal-speed=2",
        320,
        240,
    );
    play(&sender);
    let sink = sender.by_name("sink").unwrap();
    let viewers: Vec<EncodedViewer> = (0..10)
        .map(|i| {
            EncodedViewer::start(&format!(
                "uri={} producer=cam peer-id=viewer{i}",
                server.room_uri("ten")
            ))
        })
        .collect();
    wait_until(
        Duration::from_secs(60),
        "10 viewers receiving video and audio",
        || {
            viewers
                .iter()
                .all(|v| {
                    v.video_buffers.load(Ordering::Relaxed) >= 30
                        && v.audio_buffers.load(Ordering::Relaxed) >= 20
                })
                .then_some(())
        },
    );
    assert_eq!(sink.property::<u32>("viewers"), 10);

    let mut encoders = encoders_in(sink.downcast_ref::<gst::Bin>().unwrap());
    encoders.sort();
    let video = encoders
        .iter()
        .filter(|name| name.contains("vp8enc"))
        .count();
    let audio = encoders
        .iter()
        .filter(|name| name.contains("opusenc"))
        .count();
    assert_eq!(
        (video, audio, encoders.len()),
        (2, 1, 3),
        "one VP8 encoder per layer (2) and one Opus encoder for 10 viewers, got {encoders:?}"
    );

    // Without loss every viewer is on the best layer, and the periodic
    // message says so with the numbers a user would plot (messages from
    // before every viewer was sending are skipped).
    let sending = |structure: &gst::Structure| {
        structure
            .iter()
            .filter_map(|(_, value)| value.get::<gst::Structure>().ok())
            .filter(|viewer| viewer.get::<u64>("packets-sent").unwrap_or(0) > 0)
            .count()
            == 10
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let bus = sender.bus().unwrap();
    let message = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let message = bus
            .timed_pop_filtered(
                gst::ClockTime::from_nseconds(left.as_nanos() as u64),
                &[gst::MessageType::Element],
            )
            .expect("a peersink-stats message with 10 sending viewers within 10 s");
        let structure = message.structure().unwrap().to_owned();
        if structure.name() == "peersink-stats" && sending(&structure) {
            break structure;
        }
    };
    assert_eq!(message.get::<u32>("layers").unwrap(), 2);
    let per_viewer: Vec<gst::Structure> = message
        .iter()
        .filter_map(|(_, value)| value.get::<gst::Structure>().ok())
        .collect();
    assert_eq!(per_viewer.len(), 10, "{message}");
    for viewer in &per_viewer {
        assert_eq!(viewer.get::<u32>("layer").unwrap(), 0, "{viewer}");
        assert_eq!(viewer.get::<u32>("layer-width").unwrap(), 320, "{viewer}");
        assert!(
            viewer.get::<u64>("estimated-bitrate").unwrap() >= 300_000,
            "{viewer}"
        );
        assert!(viewer.get::<u64>("packets-sent").unwrap() > 0, "{viewer}");
        assert!(viewer.has_field("fraction-lost"), "{viewer}");
    }
    drop(viewers);
    let _ = sender.set_state(gst::State::Null);
}

/// `transport-cc=false`: our offer asks for no transport-cc, so the
/// viewer sends no feedback and is served as before (video and audio);
/// by default the same viewer sends it.
#[test]
fn transport_cc_feedback_comes_only_when_asked_for() {
    let _serial = serial();
    init();
    let server = TestServer::start();
    for transport_cc in [true, false] {
        let room = format!("twcc-{transport_cc}");
        let sender = broadcast(
            &format!(
                "uri={} peer-id=cam transport-cc={transport_cc}",
                server.room_uri(&room)
            ),
            "pattern=smpte horizontal-speed=2",
            320,
            240,
        );
        play(&sender);
        let sink = sender.by_name("sink").unwrap();
        let viewer = EncodedViewer::start(&format!(
            "uri={} producer=cam peer-id=viewer",
            server.room_uri(&room)
        ));
        wait_until(
            Duration::from_secs(30),
            "the viewer receiving video and audio for 3 s",
            || {
                (viewer.video_buffers.load(Ordering::Relaxed) >= 90
                    && viewer.audio_buffers.load(Ordering::Relaxed) >= 60)
                    .then_some(())
            },
        );
        let feedback = viewer_stats(&sink, "viewer")
            .and_then(|stats| stats.get::<u64>("transport-cc-feedback").ok())
            .expect("the viewer's stats");
        if transport_cc {
            // Every 50–100 ms from a viewer that was asked.
            assert!(
                feedback >= 10,
                "transport-cc feedback asked for: {feedback} messages"
            );
        } else {
            assert_eq!(feedback, 0, "transport-cc=false, yet feedback came");
        }
        drop(viewer);
        let _ = sender.set_state(gst::State::Null);
    }
}

#[test]
fn bad_video_layers_are_refused_naming_the_mistake() {
    init();
    for (layers, mentions) in [("640x360", "WIDTHxHEIGHT@BITRATE"), ("641x360@600", "641")] {
        let pipeline = launch(&format!(
            "videotestsrc is-live=true ! peersink port=0 video-layers={layers}"
        ));
        assert!(pipeline.set_state(gst::State::Playing).is_err(), "{layers}");
        let error = peer_tests::first_error(&pipeline, Duration::from_secs(2)).expect("an error");
        assert!(
            error.contains("video-layers") && error.contains(mentions),
            "{layers}: {error}"
        );
        let _ = pipeline.set_state(gst::State::Null);
    }
}

/// What `peer receive --headless` prints each second for its video:
/// decoded frames in that second and the picture size.
fn video_report(line: &str) -> Option<(u32, String)> {
    let rest = line.strip_prefix("video_0: ")?;
    let frames = rest.split(' ').next()?.parse().ok()?;
    let size = rest.rsplit(", ").next()?.split(' ').next()?.to_owned();
    Some((frames, size))
}

/// `peer receive` in `host`, receiving `producer` through the test server.
fn viewer_in(host: &IsolatedHost, server: &TestServer, room: &str, id: &str) -> ChildProcess {
    let mut command = host.command(peer_tests::peer_binary());
    command
        .args(["receive", "--headless", "--server"])
        .arg(format!("ws://{}:{}", host.near_address, server.port()))
        .args(["--room", room, "--producer", "cam", "--id", id]);
    // For a look inside the viewer: its own debug log.
    if let Ok(debug) = std::env::var("VIEWER_GST_DEBUG") {
        command
            .env("GST_DEBUG", debug)
            .env("GST_DEBUG_FILE", format!("/tmp/viewer-{id}.log"));
    }
    ChildProcess::spawn(&mut command)
}

#[test]
fn a_viewer_behind_ten_percent_loss_keeps_playing_and_costs_the_others_nothing() {
    let _serial = serial();
    init();
    let host = IsolatedHost::create();
    let server = server_on_all_addresses();
    let room = server.room_uri("lossy");
    let sender = broadcast(
        &format!(
            "uri={room} peer-id=cam ice-addresses=127.0.0.1,{} video-layers=320x240@500,160x120@120",
            host.near_address
        ),
        "pattern=smpte horizontal-speed=3",
        320,
        240,
    );
    play(&sender);
    let sink = sender.by_name("sink").unwrap();
    let good: Vec<Receiver> = (0..2)
        .map(|i| {
            Receiver::start(&format!(
                "uri={room} producer=cam peer-id=good{i} ice-addresses=127.0.0.1"
            ))
        })
        .collect();
    let mut lossy = viewer_in(&host, &server, "lossy", "lossy");
    for viewer in &good {
        viewer.wait(Duration::from_secs(30), "frames", |r| r.video_frames >= 30);
    }
    lossy.wait_line("video_0: ", Duration::from_secs(30));

    // The others' frame rate with everyone clean, to compare with.
    let baseline_window = Duration::from_secs(8);
    let start = Instant::now();
    let before: Vec<u64> = good.iter().map(|v| v.frames()).collect();
    while start.elapsed() < baseline_window {
        lossy.wait_line("video_0: ", Duration::from_secs(5));
    }
    let elapsed = start.elapsed().as_secs_f64();
    let baseline: Vec<f64> = good
        .iter()
        .zip(&before)
        .map(|(viewer, before)| (viewer.frames() - before) as f64 / elapsed)
        .collect();

    host.drop_incoming_udp(10);
    let window = Duration::from_secs(15);
    let start = Instant::now();
    let before: Vec<u64> = good.iter().map(|v| v.frames()).collect();
    let mut lossy_seconds_playing = 0;
    let mut lossy_frames = 0;
    while start.elapsed() < window {
        let line = lossy.wait_line("video_0: ", Duration::from_secs(5));
        if let Some((frames, _)) = video_report(&line) {
            lossy_frames += frames;
            if frames >= 5 {
                lossy_seconds_playing += 1;
            }
        }
        for i in 0..good.len() {
            let peer = format!("good{i}");
            assert_eq!(
                layer_of(&sink, &peer),
                Some(0),
                "{peer} left the best layer while another viewer was lossy: {:?}",
                viewer_stats(&sink, &peer)
            );
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    for ((viewer, before), baseline) in good.iter().zip(before).zip(baseline) {
        let received = viewer.snapshot();
        let rate = (received.video_frames - before) as f64 / elapsed;
        // Frames a clean viewer gets do not depend on another's loss (a
        // margin for the CPU this machine shares with the decoders).
        assert!(
            rate >= baseline * 0.85 && rate >= 20.0,
            "a viewer without loss got {rate:.1} frames/s while another was lossy, \
             {baseline:.1} before"
        );
        eprintln!("clean viewer: {baseline:.1} frames/s before, {rate:.1} during the loss");
        assert_eq!((received.width, received.height), (320, 240));
    }
    assert!(
        lossy_seconds_playing >= 10,
        "the lossy viewer played only {lossy_seconds_playing} of 15 s ({lossy_frames} frames)"
    );
    // The sender saw the loss from that viewer's own feedback.
    let stats = viewer_stats(&sink, "lossy").expect("the lossy viewer is in the stats");
    assert!(
        stats.get::<u64>("packets-nacked").unwrap() > 0
            || stats.get::<f64>("fraction-lost").unwrap() > 0.0,
        "no loss seen for the lossy viewer: {stats}"
    );
    drop(lossy);
    drop(good);
    let _ = sender.set_state(gst::State::Null);
}

#[test]
fn a_viewer_whose_bandwidth_drops_moves_down_a_layer_and_back_up() {
    let _serial = serial();
    init();
    let host = IsolatedHost::create();
    let server = server_on_all_addresses();
    let room = server.room_uri("slow");
    // Noise makes the encoder spend its whole budget (it drops frames
    // rather than exceed it): the best layer really needs 600 kbit/s and
    // cannot fit in 300.
    let sender = broadcast(
        &format!(
            "uri={room} peer-id=cam ice-addresses=127.0.0.1,{} video-layers=320x240@600,160x120@100",
            host.near_address
        ),
        "pattern=snow",
        320,
        240,
    );
    play(&sender);
    let sink = sender.by_name("sink").unwrap();
    let mut viewer = viewer_in(&host, &server, "slow", "slow");
    let size_seen = |viewer: &mut ChildProcess, size: &str, timeout: Duration| {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "the viewer never decoded {size}");
            let line = viewer.wait_line("video_0: ", left);
            if video_report(&line).is_some_and(|(frames, seen)| frames > 0 && seen == size) {
                return;
            }
        }
    };
    size_seen(&mut viewer, "320x240", Duration::from_secs(30));
    assert_eq!(layer_of(&sink, "slow"), Some(0));
    let mut watch = LayerWatch::new();

    // The link drops to 300 kbit/s: the 600 kbit/s layer cannot fit.
    host.limit_rate(300);
    let down = Instant::now();
    wait_until(
        Duration::from_secs(30),
        "the slow viewer on layer 1",
        || (watch.layer(&sink, "slow") == Some(1)).then_some(()),
    );
    size_seen(&mut viewer, "160x120", Duration::from_secs(10));
    eprintln!("moved down after {:?}", down.elapsed());

    // The link recovers: back to the best layer (after the probing hold,
    // which grows while probes fail).
    host.remove_rate_limit();
    let up = Instant::now();
    wait_until(
        Duration::from_secs(75),
        "the viewer back on layer 0",
        || (watch.layer(&sink, "slow") == Some(0)).then_some(()),
    );
    size_seen(&mut viewer, "320x240", Duration::from_secs(10));
    eprintln!("moved up after {:?}", up.elapsed());
    let stats = viewer_stats(&sink, "slow").unwrap();
    assert!(stats.get::<u64>("layer-switches").unwrap() >= 2, "{stats}");
    drop(viewer);
    let _ = sender.set_state(gst::State::Null);
}
