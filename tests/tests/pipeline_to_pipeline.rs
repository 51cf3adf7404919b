//! GStreamer → signalling server → GStreamer over WebRTC on loopback:
//! what arrives has the size, colour and pitch that were sent.

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;
use peer_tests::media::close_colour;
use peer_tests::{
    Receiver, TestServer, dominant_frequency, encoders_in, init, launch, play, sender,
    wait_element_message,
};

const GREENISH: u32 = 0xff20c040;
const GREENISH_RGB: [u8; 3] = [0x20, 0xc0, 0x40];

#[test]
fn frames_arrive_with_the_sent_size_and_colour_and_audio_at_the_sent_frequency() {
    init();
    let server = TestServer::start();
    let sender = sender(
        &format!("uri={} peer-id=cam", server.room_uri("demo")),
        1280,
        720,
        GREENISH,
        440.0,
    );
    play(&sender);

    let receiver = Receiver::start(&format!("uri={} producer=cam", server.room_uri("demo")));
    let received = receiver.wait(
        Duration::from_secs(20),
        "30 frames and 1.5 s of audio",
        |r| r.video_frames >= 30 && r.audio.len() >= 72_000,
    );
    assert_eq!((received.width, received.height), (1280, 720));
    assert!(
        close_colour(received.centre_rgb, GREENISH_RGB, 16),
        "centre pixel {:?} should be close to {:?}",
        received.centre_rgb,
        GREENISH_RGB
    );
    let frequency = dominant_frequency(&received.audio, 48_000);
    assert!(
        (frequency - 440.0).abs() < 3.0,
        "dominant frequency {frequency} Hz, sent 440 Hz"
    );
    let mut pads = received.pads.clone();
    pads.sort();
    assert_eq!(pads, ["audio_0", "video_0"]);
    let _ = sender.set_state(gst::State::Null);
}

/// peersrc asks for lost video packets again (NACK) but not for audio,
/// which no sender retransmits: a NACK for it is only traffic.
#[test]
fn the_viewer_asks_for_retransmission_of_video_only() {
    init();
    let server = TestServer::start();
    let sender = sender(
        &format!("uri={} peer-id=cam", server.room_uri("nack")),
        320,
        240,
        GREENISH,
        440.0,
    );
    play(&sender);
    let receiver = Receiver::start(&format!("uri={} producer=cam", server.room_uri("nack")));
    receiver.wait(Duration::from_secs(20), "video and audio", |r| {
        r.video_frames >= 10 && r.audio.len() >= 4_800
    });
    let bin = receiver
        .peersrc
        .downcast_ref::<gst::Bin>()
        .expect("peersrc is a bin");
    let webrtcbin = bin
        .iterate_recurse()
        .into_iter()
        .flatten()
        .find(|e| e.factory().is_some_and(|f| f.name() == "webrtcbin"))
        .expect("peersrc holds a webrtcbin");
    let mut seen = Vec::new();
    // One per m-section of the offer (video, audio; no data channel here).
    for index in 0..2i32 {
        let transceiver = webrtcbin
            .emit_by_name::<Option<gst_webrtc::WebRTCRTPTransceiver>>("get-transceiver", &[&index])
            .unwrap_or_else(|| panic!("a transceiver at {index}"));
        let kind = transceiver.property::<gst_webrtc::WebRTCKind>("kind");
        let nack = transceiver.property::<bool>("do-nack");
        seen.push(format!("{kind:?} do-nack={nack}"));
    }
    seen.sort();
    assert_eq!(seen, ["Audio do-nack=false", "Video do-nack=true"]);
    let _ = sender.set_state(gst::State::Null);
}

#[test]
fn encoded_h264_input_and_decode_false_output() {
    init();
    let server = TestServer::start();
    // Already-encoded input is passed through without a second encoder.
    let sender = peer_tests::launch(&format!(
        "peersink name=sink uri={} peer-id=h264cam \
         videotestsrc is-live=true pattern=solid-color foreground-color={GREENISH:#010x} \
         ! video/x-raw,width=640,height=360,framerate=30/1 ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 \
         ! video/x-h264,profile=constrained-baseline ! sink.video_0",
        server.room_uri("enc")
    ));
    play(&sender);
    let sink = sender.by_name("sink").unwrap();
    let receiver = Receiver::start(&format!("uri={} producer=h264cam", server.room_uri("enc")));
    let received = receiver.wait(Duration::from_secs(20), "10 decoded H.264 frames", |r| {
        r.video_frames >= 10
    });
    assert_eq!((received.width, received.height), (640, 360));
    assert!(
        close_colour(received.centre_rgb, GREENISH_RGB, 16),
        "{:?}",
        received.centre_rgb
    );
    // peersink added no encoder of its own: the only one is the user's.
    let own = encoders_in(sink.downcast_ref::<gst::Bin>().unwrap());
    assert!(own.is_empty(), "peersink encoded again: {own:?}");

    // decode=false gives the encoded stream, ready for a muxer.
    let encoded = peer_tests::launch(&format!(
        "peersrc name=src decode=false uri={} producer=h264cam",
        server.room_uri("enc")
    ));
    let src = encoded.by_name("src").unwrap();
    let (caps_tx, caps_rx) = std::sync::mpsc::channel::<String>();
    let weak = encoded.downgrade();
    src.connect_pad_added(move |_, pad| {
        let pipeline = weak.upgrade().unwrap();
        let sink = gst::ElementFactory::make("fakesink")
            .property("async", false)
            .build()
            .unwrap();
        pipeline.add(&sink).unwrap();
        sink.sync_state_with_parent().unwrap();
        let caps_tx = caps_tx.clone();
        sink.static_pad("sink")
            .unwrap()
            .add_probe(gst::PadProbeType::BUFFER, move |pad, _| {
                if let Some(caps) = pad.current_caps() {
                    let _ = caps_tx.send(caps.to_string());
                }
                gst::PadProbeReturn::Remove
            });
        pad.link(&sink.static_pad("sink").unwrap()).unwrap();
    });
    play(&encoded);
    let caps = caps_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("an encoded buffer arrives");
    assert!(caps.starts_with("video/x-h264"), "{caps}");
    assert!(caps.contains("alignment=(string)au"), "{caps}");
    let _ = encoded.set_state(gst::State::Null);
    let _ = sender.set_state(gst::State::Null);
}

/// An application tunes peersink's encoders (say, a faster VP8 speed for
/// lower latency) through `encoder-setup`: called once per encoder it
/// makes, naming the pad and the layer, after peersink's own settings
/// (`video-content-hint=detail` among them); what the handler sets is what
/// goes on the wire, and a handler returning true is the last one called.
#[test]
fn encoder_setup_lets_the_application_tune_each_encoder() {
    init();
    let server = TestServer::start();
    // Moving bars: hard enough to use each layer's whole bitrate.
    let sender = launch(&format!(
        "peersink name=sink uri={} peer-id=cam video-layers=640x360@1500,320x180@400 \
         video-content-hint=detail \
         videotestsrc is-live=true pattern=smpte horizontal-speed=4 \
           ! video/x-raw,width=640,height=360,framerate=30/1 ! sink.video_0 \
         audiotestsrc is-live=true wave=sine freq=440 volume=0.5 ! sink.audio_0",
        server.room_uri("tuned")
    ));
    let sink = sender.by_name("sink").unwrap();
    let calls = Arc::new(Mutex::new(Vec::new()));
    // A first handler that configures the audio encoder entirely: the
    // handlers after it are not called for that encoder.
    let seen = calls.clone();
    sink.connect("encoder-setup", false, move |args| {
        let encoder = args[3].get::<gst::Element>().unwrap();
        let audio = encoder.factory().unwrap().name() == "opusenc";
        if audio {
            seen.lock().unwrap().push("opusenc handled".to_owned());
        }
        Some(audio.to_value())
    });
    let seen = calls.clone();
    sink.connect("encoder-setup", false, move |args| {
        let pad = args[1].get::<String>().unwrap();
        let layer = args[2].get::<u32>().unwrap();
        let encoder = args[3].get::<gst::Element>().unwrap();
        let factory = encoder.factory().unwrap().name();
        let mut call = format!("{pad} layer {layer} {factory}");
        if factory == "vp8enc" {
            // peersink's settings are there already; ours replace them.
            // video-content-hint=detail: unchanged blocks are skipped.
            call += &format!(
                " cpu-used={} static-threshold={}",
                encoder.property::<i32>("cpu-used"),
                encoder.property::<i32>("static-threshold")
            );
            encoder.set_property("cpu-used", -16i32);
            encoder.set_property("target-bitrate", 100_000i32);
        }
        seen.lock().unwrap().push(call);
        Some(false.to_value())
    });
    play(&sender);

    let receiver = Receiver::start(&format!("uri={} producer=cam", server.room_uri("tuned")));
    let received = receiver.wait(Duration::from_secs(20), "frames", |r| r.video_frames >= 10);
    let mut calls = calls.lock().unwrap().clone();
    calls.sort();
    assert_eq!(
        calls,
        [
            "opusenc handled",
            "video_0 layer 0 vp8enc cpu-used=-8 static-threshold=1",
            "video_0 layer 1 vp8enc cpu-used=-8 static-threshold=1"
        ]
    );
    let speeds: Vec<i32> = sink
        .downcast_ref::<gst::Bin>()
        .unwrap()
        .iterate_elements()
        .into_iter()
        .flatten()
        .filter(|e| e.factory().is_some_and(|f| f.name() == "vp8enc"))
        .map(|e| e.property::<i32>("cpu-used"))
        .collect();
    assert_eq!(speeds, [-16, -16], "the handler's speed stays");

    // Whichever layer the viewer is on, it gets 100 kbit/s, not the
    // layer's 400 or 1,500: counted over at least 4 s of video.
    let video_bytes = || {
        track_stats(&receiver, "video_0")
            .and_then(|video| video.get::<u64>("bytes").ok())
            .unwrap_or(0)
    };
    let (start, bytes_at_start) = (Instant::now(), video_bytes());
    let frames_at_start = received.video_frames;
    receiver.wait(Duration::from_secs(30), "4 s of video", |r| {
        r.video_frames >= frames_at_start + 30 && start.elapsed() >= Duration::from_secs(4)
    });
    let kbits = video_bytes().saturating_sub(bytes_at_start) as f64 * 8.0 / 1000.0;
    let rate = kbits / start.elapsed().as_secs_f64();
    assert!(
        (30.0..250.0).contains(&rate),
        "the viewer got {rate:.0} kbit/s of video; the handler set 100"
    );
    let _ = sender.set_state(gst::State::Null);
}

#[test]
fn three_viewers_share_one_encoder_and_survive_one_being_killed() {
    init();
    let server = TestServer::start();
    let sender = sender(
        &format!("uri={} peer-id=cam", server.room_uri("many")),
        640,
        360,
        GREENISH,
        440.0,
    );
    play(&sender);
    let sink = sender.by_name("sink").unwrap();

    let first = Receiver::start(&format!("uri={} producer=cam", server.room_uri("many")));
    let second = Receiver::start(&format!("uri={} producer=cam", server.room_uri("many")));
    // The third viewer is another process, killed the hard way.
    let mut third = Command::new(peer_tests::peer_binary())
        .args(["receive", "--headless", "--server"])
        .arg(format!("ws://127.0.0.1:{}", server.port()))
        .args(["--room", "many", "--producer", "cam", "--id", "doomed"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("peer receive starts");
    for receiver in [&first, &second] {
        receiver.wait(Duration::from_secs(20), "frames", |r| r.video_frames >= 10);
    }
    let viewers = peer_tests::wait_until(Duration::from_secs(20), "three viewers", || {
        let count = sink.property::<u32>("viewers");
        (count == 3).then_some(count)
    });
    assert_eq!(viewers, 3);
    // Third viewer really receives: its first report line names the video pad.
    let mut stdout = std::io::BufReader::new(third.stdout.take().unwrap());
    let mut line = String::new();
    peer_tests::wait_until(Duration::from_secs(20), "the third viewer's frames", || {
        line.clear();
        std::io::BufRead::read_line(&mut stdout, &mut line).ok()?;
        line.contains("video_0:").then_some(())
    });

    let encoders = encoders_in(sink.downcast_ref::<gst::Bin>().unwrap());
    assert_eq!(
        encoders.len(),
        2,
        "one video and one audio encoder for three viewers, got {encoders:?}"
    );

    third.kill().expect("kill the third viewer");
    third.wait().unwrap();
    // The server notices the dead connection; peersink drops that viewer.
    peer_tests::wait_until(
        Duration::from_secs(20),
        "the killed viewer to be dropped",
        || (sink.property::<u32>("viewers") == 2).then_some(()),
    );
    let before = [first.frames(), second.frames()];
    for (receiver, before) in [&first, &second].into_iter().zip(before) {
        receiver.wait(Duration::from_secs(10), "frames after the kill", |r| {
            r.video_frames >= before + 30
        });
    }
    let _ = sender.set_state(gst::State::Null);
}

#[test]
fn embedded_server_needs_no_external_server() {
    init();
    let sender = sender("port=0 peer-id=solo", 320, 240, GREENISH, 440.0);
    play(&sender);
    let ready = wait_element_message(&sender, "peer-ready", Duration::from_secs(10));
    assert!(ready.get::<bool>("embedded-server").unwrap());
    let url = ready.get::<String>("url").unwrap();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let port: u16 = url["http://127.0.0.1:".len()..]
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();

    let receiver = Receiver::start(&format!("uri=ws://127.0.0.1:{port}/default producer=solo"));
    let received = receiver.wait(
        Duration::from_secs(20),
        "frames from the embedded server",
        |r| r.video_frames >= 10,
    );
    assert_eq!((received.width, received.height), (320, 240));
    let _ = sender.set_state(gst::State::Null);
}

#[test]
fn unknown_producer_is_a_clear_error() {
    init();
    let server = TestServer::start();
    let receiver = peer_tests::launch(&format!(
        "peersrc uri={} producer=nobody producer-timeout=1 ! fakesink",
        server.room_uri("empty")
    ));
    play(&receiver);
    let error = peer_tests::first_error(&receiver, Duration::from_secs(10)).expect("an error");
    assert!(
        error.contains("\"nobody\"") && error.contains("empty"),
        "{error}"
    );
    let _ = receiver.set_state(gst::State::Null);
}

#[test]
fn producer_leaving_is_a_clear_error() {
    init();
    let server = TestServer::start();
    let sender = sender(
        &format!("uri={} peer-id=leaver", server.room_uri("bye")),
        320,
        240,
        GREENISH,
        440.0,
    );
    play(&sender);
    let receiver = Receiver::start(&format!("uri={} producer=leaver", server.room_uri("bye")));
    receiver.wait(Duration::from_secs(20), "frames", |r| r.video_frames >= 5);
    sender.set_state(gst::State::Null).unwrap();
    let error =
        peer_tests::first_error(&receiver.pipeline, Duration::from_secs(10)).expect("an error");
    assert!(error.contains("\"leaver\""), "{error}");
}

#[test]
fn bad_settings_fail_with_a_message_naming_them() {
    init();
    for (props, mentions) in [
        ("uri=ftp://example/x", "ftp"),
        ("meta=notjson", "meta"),
        ("peer-id=\"bad id\"", "bad id"),
        ("ice-addresses=localhost", "localhost"),
        ("turn-servers=relay.example", "turn://"),
    ] {
        let pipeline = peer_tests::launch(&format!("videotestsrc is-live=true ! peersink {props}"));
        assert!(
            pipeline.set_state(gst::State::Playing).is_err(),
            "{props} should be refused"
        );
        let error =
            peer_tests::first_error(&pipeline, Duration::from_secs(2)).expect("an error message");
        assert!(error.contains(mentions), "{props}: {error}");
        let _ = pipeline.set_state(gst::State::Null);
    }
}

#[test]
fn raw_video_encoded_as_vp9_and_h264() {
    init();
    let server = TestServer::start();
    for codec in ["vp9", "h264"] {
        let id = format!("{codec}cam");
        let sender = sender(
            &format!(
                "uri={} peer-id={id} video-codec={codec}",
                server.room_uri("codecs")
            ),
            640,
            480,
            GREENISH,
            440.0,
        );
        play(&sender);
        let receiver = Receiver::start(&format!("uri={} producer={id}", server.room_uri("codecs")));
        let received = receiver.wait(Duration::from_secs(20), &format!("{codec} frames"), |r| {
            r.video_frames >= 10
        });
        assert_eq!((received.width, received.height), (640, 480), "{codec}");
        assert!(
            close_colour(received.centre_rgb, GREENISH_RGB, 16),
            "{codec}: {:?}",
            received.centre_rgb
        );
        let stats = sender
            .by_name("sink")
            .unwrap()
            .property::<gst::Structure>("stats");
        assert_eq!(stats.get::<u32>("viewers").unwrap(), 1, "{stats}");
        check_track_stats(&receiver, &codec.to_uppercase());
        let _ = sender.set_state(gst::State::Null);
    }
}

/// What peersrc's `stats` says now of the track it gives out on `pad`.
fn track_stats(receiver: &Receiver, pad: &str) -> Option<gst::Structure> {
    let stats = receiver.peersrc.property::<gst::Structure>("stats");
    stats.get::<gst::Structure>("tracks").ok()?.get(pad).ok()
}

/// What peersrc's `stats` says of each track it gives out (refreshed once
/// a second): the codec, the picture's size, a frame rate and a bitrate
/// near what the sender makes.
fn check_track_stats(receiver: &Receiver, codec: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let (video, audio) = loop {
        let track = |name| track_stats(receiver, name);
        if let (Some(video), Some(audio)) = (track("video_0"), track("audio_0"))
            && video.get::<f64>("framerate").unwrap_or(0.0) > 0.0
            && audio.get::<u64>("bitrate").unwrap_or(0) > 0
        {
            break (video, audio);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no figures for both tracks in peersrc's stats: {}",
            receiver.peersrc.property::<gst::Structure>("stats")
        );
        std::thread::sleep(Duration::from_millis(100)); // stats refresh each second
    };
    assert_eq!(video.get::<&str>("kind").unwrap(), "video", "{video}");
    assert_eq!(video.get::<&str>("codec").unwrap(), codec, "{video}");
    assert_eq!(
        (
            video.get::<u32>("width").unwrap(),
            video.get::<u32>("height").unwrap()
        ),
        (640, 480),
        "{video}"
    );
    // videotestsrc makes 30 fps; a loaded machine delivers fewer.
    let framerate = video.get::<f64>("framerate").unwrap();
    assert!((10.0..=35.0).contains(&framerate), "{video}");
    // A solid colour: VP9 sends ~12 kbit/s of it.
    let bitrate = video.get::<u64>("bitrate").unwrap();
    assert!((1_000..=10_000_000).contains(&bitrate), "{video}");
    assert!(video.get::<u64>("bytes").unwrap() > 0, "{video}");
    assert!(video.get::<u64>("frames").unwrap() >= 10, "{video}");
    assert_eq!(audio.get::<&str>("kind").unwrap(), "audio", "{audio}");
    assert_eq!(audio.get::<&str>("codec").unwrap(), "OPUS", "{audio}");
}
