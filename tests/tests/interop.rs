//! WHIP and WHEP against an implementation no one here wrote:
//! gst-plugins-rs 0.15's whipclientsink, whepclientsrc, whipserversrc and
//! whepserversink (built by scripts/reference-peers.sh, outside the
//! workspace; scripts/test.sh passes its plugin directory in
//! GST_PEER_REFERENCE_PLUGINS). Each way, the picture is checked for size
//! and colour and the sound for its frequency.
//!
//! Their elements run in `gst-launch-1.0` in a second network namespace
//! joined to the test's by a veth pair: libnice skips `lo`, and they have
//! no option to use it, so they gather on the veth address (198.18.x.2)
//! and reach our server at the near end (198.18.x.1).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use gst::prelude::*;
use peer_signalling::server::ServerConfig;
use peer_tests::capture::Capture;
use peer_tests::media::close_colour;
use peer_tests::netns::IsolatedHost;
use peer_tests::process::ChildProcess;
use peer_tests::{Receiver, TestServer, dominant_frequency, init, play, sender, wait_until};

const BLUE: u32 = 0xff2050d0;
const BLUE_RGB: [u8; 3] = [0x20, 0x50, 0xd0];
/// A colour of theirs, told apart from ours.
const ORANGE_RGB: [u8; 3] = [0xe0, 0x80, 0x20];
const ORANGE: u32 = 0xffe08020;

fn reference_plugins() -> String {
    let dir = std::env::var("GST_PEER_REFERENCE_PLUGINS").unwrap_or_default();
    assert!(
        Path::new(&dir).join("libgstrswebrtc.so").exists(),
        "gst-plugins-rs's webrtc plugin is not built: run `bash scripts/reference-peers.sh` and \
         set GST_PEER_REFERENCE_PLUGINS to the directory it prints (scripts/test.sh does both); \
         got {dir:?}"
    );
    dir
}

/// `gst-launch-1.0 DESCRIPTION` with their plugin, inside `host`.
fn their_pipeline(host: &IsolatedHost, description: &str) -> ChildProcess {
    let mut command = host.command("gst-launch-1.0");
    command
        .env("GST_PLUGIN_PATH", reference_plugins())
        .env("GST_DEBUG", "*:1")
        .arg("-e")
        .args(shell_words(description))
        .stdin(Stdio::null());
    ChildProcess::spawn(&mut command)
}

/// gst-launch takes its description as separate words.
fn shell_words(description: &str) -> Vec<String> {
    description.split_whitespace().map(str::to_owned).collect()
}

/// A server on all addresses of the test namespace (reachable from the
/// far host), and its port.
fn server_for(host: &IsolatedHost) -> TestServer {
    TestServer::start_with(ServerConfig {
        bind: format!("{}:0", host.near_address).parse().unwrap(),
        ..ServerConfig::default()
    })
}

/// Their test sources: an orange picture and a 660 Hz tone.
fn their_sources() -> String {
    format!(
        "videotestsrc is-live=true pattern=solid-color foreground-color={ORANGE:#010x} ! \
         video/x-raw,width=640,height=360,framerate=30/1 ! videoconvert ! queue ! s. \
         audiotestsrc is-live=true wave=sine freq=660 volume=0.5 ! audioconvert ! queue ! s."
    )
}

fn assert_orange(received: &peer_tests::media::Received) {
    assert_eq!((received.width, received.height), (640, 360));
    assert!(
        close_colour(received.centre_rgb, ORANGE_RGB, 16),
        "{:?}",
        received.centre_rgb
    );
    let frequency = dominant_frequency(&received.audio, 48_000);
    assert!((frequency - 660.0).abs() < 3.0, "{frequency} Hz");
}

#[test]
fn their_whipclientsink_publishes_into_our_whip_and_a_peersrc_decodes_it() {
    init();
    let host = IsolatedHost::create();
    let server = server_for(&host);
    let receiver = Receiver::start(&format!(
        "uri=ws://{}:{}/ingest",
        host.near_address,
        server.port()
    ));
    let _theirs = their_pipeline(
        &host,
        &format!(
            "whipclientsink name=s stun-server=\"\" congestion-control=disabled video-caps=video/x-vp8 \
             signaller::whip-endpoint=http://{}:{}/whip/ingest {}",
            host.near_address,
            server.port(),
            their_sources()
        ),
    );
    let received = receiver.wait(Duration::from_secs(45), "their frames and tone", |r| {
        r.video_frames >= 30 && r.audio.len() >= 48_000
    });
    assert_orange(&received);
}

#[test]
fn their_whepclientsrc_plays_a_peersink_through_our_whep() {
    init();
    let host = IsolatedHost::create();
    let server = server_for(&host);
    let producer = sender(
        &format!(
            "uri=ws://{}:{}/show peer-id=cam",
            host.near_address,
            server.port()
        ),
        640,
        360,
        BLUE,
        440.0,
    );
    play(&producer);
    peer_tests::wait_element_message(&producer, "peer-ready", Duration::from_secs(10));
    let capture = Capture::new("whep-out");
    let _theirs = their_pipeline(
        &host,
        &format!(
            "whepclientsrc name=w stun-server=\"\" video-codecs=<VP8> audio-codecs=<OPUS> \
             signaller::whep-endpoint=http://{}:{}/whep/show/cam {}",
            host.near_address,
            server.port(),
            capture.sinks("w.", "w.")
        ),
    );
    capture.wait(30, "their decoded frames and audio");
    let (width, height, rgb) = capture.picture();
    assert_eq!((width, height), (640, 360));
    assert!(close_colour(rgb, BLUE_RGB, 16), "{rgb:?}");
    let frequency = capture.frequency();
    assert!((frequency - 440.0).abs() < 3.0, "{frequency} Hz");
    let _ = producer.set_state(gst::State::Null);
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn our_peersink_publishes_into_their_whipserversrc() {
    init();
    let host = IsolatedHost::create();
    let port = free_port();
    let capture = Capture::new("whip-out");
    let mut theirs = their_pipeline(
        &host,
        &format!(
            "whipserversrc name=w stun-server=\"\" signaller::host-addr=http://{}:{port} {}",
            host.far_address,
            capture.sinks("w.", "w.")
        ),
    );
    // Their server listens once the pipeline is up.
    wait_until(Duration::from_secs(20), "their WHIP server", || {
        std::net::TcpStream::connect((host.far_address.as_str(), port))
            .ok()
            .map(|_| ())
    });
    let producer = sender(
        &format!(
            "uri=whip+http://{}:{port}/whip/endpoint ice-addresses={}",
            host.far_address, host.near_address
        ),
        640,
        360,
        BLUE,
        440.0,
    );
    play(&producer);
    capture.wait(30, "their decoded frames and audio");
    let (width, height, rgb) = capture.picture();
    assert_eq!((width, height), (640, 360));
    assert!(close_colour(rgb, BLUE_RGB, 16), "{rgb:?}");
    let frequency = capture.frequency();
    assert!((frequency - 440.0).abs() < 3.0, "{frequency} Hz");
    let _ = producer.set_state(gst::State::Null);
    theirs.kill();
}

#[test]
fn our_peersrc_plays_their_whepserversink() {
    play_their_whepserversink(false);
}

/// WHEP -03's other flow: the server answers our offer with 406 and an
/// offer of its own, which peersrc answers by PATCH.
#[test]
fn our_peersrc_answers_their_whepserversinks_counter_offer() {
    play_their_whepserversink(true);
}

fn play_their_whepserversink(counter_offer: bool) {
    init();
    let host = IsolatedHost::create();
    let port = free_port();
    let _theirs = their_pipeline(
        &host,
        &format!(
            "whepserversink name=s stun-server=\"\" congestion-control=disabled video-caps=video/x-vp8 \
             signaller::host-addr=http://{}:{port} signaller::stun-server=\"\" \
             signaller::send-counter-offer={counter_offer} {}",
            host.far_address,
            their_sources()
        ),
    );
    // whepserversink listens once every input's codec is known.
    wait_until(Duration::from_secs(30), "their WHEP server", || {
        std::net::TcpStream::connect((host.far_address.as_str(), port))
            .ok()
            .map(|_| ())
    });
    let receiver = Receiver::start(&format!(
        "uri=whep+http://{}:{port}/whep/endpoint ice-addresses={}",
        host.far_address, host.near_address
    ));
    let received = receiver.wait(Duration::from_secs(45), "their frames and tone", |r| {
        r.video_frames >= 30 && r.audio.len() >= 48_000
    });
    assert_orange(&received);
}
