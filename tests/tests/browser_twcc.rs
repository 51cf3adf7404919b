//! A Chromium viewer behind a rate limit: peersink judges its path by the
//! transport-cc feedback Chromium sends (twcc.rs), moves it down a layer
//! while the limit holds and back up once it goes, and the page shows the
//! picture size of each layer.
//!
//! peersink broadcasts from this test's namespace; Chromium runs in a
//! namespace of its own, joined by a veth pair (tests/src/netns.rs), and
//! the rate limit is a tbf on our end of the pair, on what peersink sends
//! it.

use std::time::{Duration, Instant};

use gst::prelude::*;

use peer_signalling::server::ServerConfig;
use peer_tests::browser::Browser;
use peer_tests::netns::IsolatedHost;
use peer_tests::pages::{frames, monitor_frames, wait_frames};
use peer_tests::{TestServer, init, launch, play, viewer_stats, wait_until};
use serde_json::Value;

/// What the layers are, best first, and the limit: the best layer needs
/// its 600 kbit/s (noise makes the encoder spend its whole budget) and
/// cannot fit in 300; the other can.
const LAYERS: &str = "320x240@600,160x120@100";
const LIMIT_KBIT: u32 = 300;
/// From the limit to the smaller picture on the page.
const DOWN_WITHIN: Duration = Duration::from_secs(15);
/// From the limit's end to the full picture again: the first probe up
/// waits 4 s of clean path, and each probe that fails multiplies the
/// wait before the next (docs/elements.md, "Adaptation"), so a viewer
/// whose probes failed during the limit waits up to 64 s.
const UP_WITHIN: Duration = Duration::from_secs(75);
/// Frames the page decodes in 5 s on either layer, at the least: the
/// encoders drop frames to hold a layer's bitrate on noise.
const KEEP_PLAYING_FRAMES: u64 = 10;

/// Waits for [`KEEP_PLAYING_FRAMES`] more decoded frames within 5 s.
fn keeps_playing(browser: &Browser) {
    let decoded = frames(browser).decoded;
    wait_frames(
        browser,
        decoded,
        KEEP_PLAYING_FRAMES,
        Duration::from_secs(5),
    );
}

/// The page's only viewer as the sender sees it (its peer id is the
/// page's own).
fn page_viewer(sink: &gst::Element) -> Option<gst::Structure> {
    let stats = sink.property::<gst::Structure>("stats");
    stats
        .iter()
        .filter_map(|(_, value)| value.get::<gst::Structure>().ok())
        .find(|viewer| viewer.has_field("peer-id") && viewer.has_field("layer"))
}

/// The decoded picture size the page shows.
fn picture(browser: &Browser) -> (u64, u64) {
    let size = browser.eval(
        "const v = document.querySelector('video'); return [v.videoWidth, v.videoHeight];",
        vec![],
    );
    let at = |i: usize| size.get(i).and_then(Value::as_u64).unwrap_or(0);
    (at(0), at(1))
}

/// Waits until the page shows a `width`×`height` picture, printing the
/// sender's view of the viewer once a second; the time it took.
fn wait_picture(
    browser: &Browser,
    sink: &gst::Element,
    (width, height): (u64, u64),
    timeout: Duration,
    what: &str,
) -> Duration {
    let start = Instant::now();
    let mut printed = Instant::now();
    wait_until(timeout, what, || {
        if printed.elapsed() >= Duration::from_secs(1) {
            printed = Instant::now();
            if let Some(mut stats) = page_viewer(sink) {
                stats.remove_field("webrtc");
                eprintln!("{:>5.1} s {stats}", start.elapsed().as_secs_f64());
            }
        }
        (picture(browser) == (width, height)).then_some(())
    });
    start.elapsed()
}

#[test]
fn a_chromium_viewer_behind_a_rate_limit_moves_down_a_layer_and_back_up() {
    init();
    let host = IsolatedHost::create();
    let server = TestServer::start_with(ServerConfig {
        bind: "0.0.0.0:0".parse().unwrap(),
        ..ServerConfig::default()
    });
    let sender = launch(&format!(
        "peersink name=sink uri={} peer-id=cam ice-addresses={} video-layers={LAYERS} \
         videotestsrc is-live=true pattern=snow ! video/x-raw,width=320,height=240,framerate=30/1 \
           ! sink.video_0 \
         audiotestsrc is-live=true wave=sine freq=440 volume=0.3 ! sink.audio_0",
        server.room_uri("slow"),
        host.near_address
    ));
    play(&sender);
    let sink = sender.by_name("sink").unwrap();
    let browser = Browser::start_in(&host, &[]);
    browser.goto(&format!(
        "http://{}:{}/watch?room=slow&producer=cam",
        host.near_address,
        server.port()
    ));
    browser.wait_for(
        "window.peerPage.state === 'playing'",
        Duration::from_secs(30),
    );
    monitor_frames(&browser);
    wait_picture(
        &browser,
        &sink,
        (320, 240),
        Duration::from_secs(30),
        "the full picture at first",
    );
    let peer = page_viewer(&sink)
        .and_then(|stats| stats.get::<String>("peer-id").ok())
        .expect("the page is a viewer in the sender's stats");
    // Chromium answered our offer with transport-cc: its feedback comes.
    wait_until(
        Duration::from_secs(5),
        "transport-cc feedback from Chromium",
        || {
            let stats = viewer_stats(&sink, &peer)?;
            (stats.get::<u64>("transport-cc-feedback").ok()? >= 10).then_some(())
        },
    );
    let stats = viewer_stats(&sink, &peer).unwrap();
    assert_eq!(stats.get::<u32>("layer").unwrap(), 0, "{stats}");
    assert_eq!(
        stats.get::<u64>("congestion-signals").unwrap(),
        0,
        "congestion on a path without a limit: {stats}"
    );

    host.limit_rate(LIMIT_KBIT);
    let down = wait_picture(
        &browser,
        &sink,
        (160, 120),
        DOWN_WITHIN,
        "the smaller picture",
    );
    let stats = viewer_stats(&sink, &peer).unwrap();
    eprintln!("moved down {down:?} after the limit: {stats}");
    assert!(
        stats.get::<u64>("congestion-signals").unwrap() >= 1,
        "moved down, but not on transport-cc's word: {stats}"
    );
    // Pictures keep coming under the limit (noise at these rates makes
    // the encoders drop frames: a few a second is what it is).
    keeps_playing(&browser);

    host.remove_rate_limit();
    let up = wait_picture(
        &browser,
        &sink,
        (320, 240),
        UP_WITHIN,
        "the full picture again",
    );
    eprintln!("moved up {up:?} after the limit went");
    keeps_playing(&browser);
    assert_eq!(picture(&browser), (320, 240));
    let stats = viewer_stats(&sink, &peer).unwrap();
    assert_eq!(stats.get::<u32>("layer").unwrap(), 0, "{stats}");
    assert!(stats.get::<u64>("layer-switches").unwrap() >= 2, "{stats}");
    drop(browser);
    let _ = sender.set_state(gst::State::Null);
}
