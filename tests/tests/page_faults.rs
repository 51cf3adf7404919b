//! Faults seen from the pages `peer serve` serves: the server is SIGKILLed
//! and restarted on the same port under a watching and a publishing page.
//! Media does not pass through the server, so what the pages play or send
//! goes on; each page says it lost the server and is back, reconnects by
//! itself (peer.js: backoff with jitter) under the id it had, and viewers
//! that come after the restart get in.

use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use gst::prelude::*;
use peer_tests::browser::Browser;
use peer_tests::media::Receiver;
use peer_tests::pages::{frames, monitor_frames, recorded, reset_gaps, wait_frames};
use peer_tests::process::ChildProcess;
use peer_tests::{play, recorder::free_port};
use serde_json::Value;

/// From the issue: back on the new server within this long.
const BACK_WITHIN: Duration = Duration::from_secs(5);
/// From the issue: no gap between decoded frames longer than this.
const LONGEST_GAP: Duration = Duration::from_secs(1);

/// Two browsers and their media on two cores: one test at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serve(port: u16) -> ChildProcess {
    let mut process = ChildProcess::spawn(
        Command::new(peer_tests::peer_binary())
            .args(["serve", "--port", &port.to_string()])
            .env("PEER_LOG", "warn"),
    );
    process.wait_line("gst-peer signalling on", Duration::from_secs(20));
    process
}

fn text(browser: &Browser, expression: &str) -> String {
    browser
        .eval(&format!("return String({expression});"), vec![])
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// peersink `cam` broadcasting in room `live` and a watch page (its query
/// ending with `extra`) playing it for 30 frames, its frame gaps counted
/// from then on.
fn watching(port: u16, extra: &str) -> (gst::Pipeline, Browser) {
    let sender = peer_tests::sender(
        &format!("uri=ws://127.0.0.1:{port}/live peer-id=cam"),
        320,
        240,
        0xff2050d0,
        440.0,
    );
    play(&sender);
    let browser = Browser::start(&[]);
    browser.goto(&format!(
        "http://127.0.0.1:{port}/watch?room=live&producer=cam{extra}"
    ));
    browser.wait_for(
        "window.peerPage.state === 'playing'",
        Duration::from_secs(30),
    );
    monitor_frames(&browser);
    let start = frames(&browser).decoded;
    wait_frames(&browser, start, 30, Duration::from_secs(10));
    reset_gaps(&browser);
    (sender, browser)
}

/// Kills `server`, checks the page noticed, lets media run two seconds
/// with no server at all (`media_flowing` waits for it), restarts the
/// server; returns it and how long the page took to be back.
fn restart_under(
    browser: &Browser,
    server: &mut ChildProcess,
    port: u16,
    media_flowing: impl FnOnce(),
) -> (ChildProcess, Duration) {
    server.kill();
    browser.wait_for(
        "window.peerPage.client.signalling === 'lost'",
        Duration::from_secs(5),
    );
    let status = text(browser, "document.getElementById('status').textContent");
    assert!(
        status.contains("Lost the signalling server"),
        "status line: {status}"
    );
    media_flowing();
    let restarted_server = serve(port);
    let restarted = Instant::now();
    browser.wait_for(
        "window.peerPage.client.signalling === 'connected'",
        BACK_WITHIN + Duration::from_secs(5),
    );
    let back = restarted.elapsed();
    (restarted_server, back)
}

/// The page's `lost` then `restored` record, the latter under `id`.
fn check_signalling_record(browser: &Browser, id: &str) -> u64 {
    let events = recorded(browser, "signalling");
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    assert_eq!(kinds, ["lost", "restored"], "{events:?}");
    assert_eq!(events[1]["id"].as_str(), Some(id), "{events:?}");
    assert_eq!(
        events[1]["resumed"],
        Value::Bool(false),
        "a restarted server cannot resume: {events:?}"
    );
    let status = text(browser, "document.getElementById('status').textContent");
    assert!(
        status.contains("Back on the signalling server"),
        "status line: {status}"
    );
    events[1]["afterMs"].as_u64().unwrap_or(0)
}

#[test]
fn a_watch_page_plays_through_a_server_restart_and_takes_its_id_back() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    peer_tests::init();
    peer_tests::require_loopback_only();
    let port = free_port();
    let mut server = serve(port);
    let (sender, browser) = watching(port, "");
    let id = text(&browser, "window.peerPage.client.id");
    let session = text(&browser, "window.peerPage.session.id");

    let (_server, back) = restart_under(&browser, &mut server, port, || {
        let before = frames(&browser).decoded;
        wait_frames(&browser, before, 60, Duration::from_secs(10));
    });
    let after_ms = check_signalling_record(&browser, &id);
    println!("watch page {id}: back {back:?} after the restart ({after_ms} ms after the loss)");
    assert!(back < BACK_WITHIN, "the page came back only after {back:?}");
    assert_eq!(text(&browser, "window.peerPage.client.room"), "live");

    // A viewer that comes after the restart: another watch page.
    browser.eval(
        &format!(
            "const frame = document.createElement('iframe'); frame.id = 'newcomer'; \
             frame.width = 400; frame.height = 300; \
             frame.src = 'http://127.0.0.1:{port}/watch?room=live&producer=cam&id=newcomer'; \
             document.body.append(frame); return true;"
        ),
        vec![],
    );
    browser.wait_for(
        "document.getElementById('newcomer').contentWindow.peerPage.state === 'playing' && \
         document.getElementById('newcomer').contentDocument.querySelector('video').videoWidth === 320",
        Duration::from_secs(20),
    );

    // The first page never stopped: frames throughout, the same session.
    let before = frames(&browser).decoded;
    wait_frames(&browser, before, 30, Duration::from_secs(10));
    let seen = frames(&browser);
    println!(
        "watch page: longest gap between decoded frames {:?}",
        seen.longest_gap
    );
    assert!(
        seen.longest_gap < LONGEST_GAP,
        "the page froze for {:?}",
        seen.longest_gap
    );
    assert_eq!(text(&browser, "window.peerPage.session.id"), session);
    assert_eq!(text(&browser, "window.peerPage.session.ended"), "false");
    assert_eq!(text(&browser, "window.peerPage.state"), "playing");
    let _ = sender.set_state(gst::State::Null);
}

#[test]
fn a_publish_page_sends_through_a_server_restart_and_newcomers_get_in() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    peer_tests::init();
    peer_tests::require_loopback_only();
    let port = free_port();
    let mut server = serve(port);
    let browser = Browser::start(&[]);
    browser.goto(&format!(
        "http://127.0.0.1:{port}/publish?room=studio&id=browser&width=640&height=360&fps=30&autostart=1"
    ));
    browser.wait_for(
        "window.peerPage.state === 'publishing'",
        Duration::from_secs(20),
    );
    let uri = format!("ws://127.0.0.1:{port}/studio");
    let viewer = Receiver::start(&format!("uri={uri} producer=browser peer-id=viewer"));
    viewer.wait(Duration::from_secs(30), "the camera's frames", |r| {
        r.video_frames >= 30
    });
    viewer.reset_freezes();

    let (_server, back) = restart_under(&browser, &mut server, port, || {
        let before = viewer.frames();
        viewer.wait(
            Duration::from_secs(10),
            "frames with the server down",
            |r| r.video_frames >= before + 60,
        );
    });
    let after_ms = check_signalling_record(&browser, "browser");
    println!("publish page: back {back:?} after the restart ({after_ms} ms after the loss)");
    assert!(back < BACK_WITHIN, "the page came back only after {back:?}");

    // It announced its streams to the new server again: a newcomer finds
    // and gets them.
    let newcomer = Receiver::start(&format!("uri={uri} producer=browser peer-id=newcomer"));
    let seen = newcomer.wait(Duration::from_secs(20), "the newcomer's frames", |r| {
        r.video_frames >= 15
    });
    assert_eq!((seen.width, seen.height), (640, 360));
    browser.wait_for(
        "window.peerPage.publisher.sessions.size === 2",
        Duration::from_secs(5),
    );

    let before = viewer.frames();
    let received = viewer.wait(Duration::from_secs(10), "frames after the restart", |r| {
        r.video_frames >= before + 30
    });
    let gap = received.freezes.longest_gap_now();
    println!("publish page's first viewer: longest gap {gap:?}");
    assert!(gap < LONGEST_GAP, "the first viewer froze for {gap:?}");
    assert_eq!((received.width, received.height), (640, 360));
}

/// The server stays, the page's connection to it dies (reset, no close
/// frame: a network drop). The page resumes with the secret of its last
/// `welcome`: same id, room and session, nobody in the room told anything.
#[test]
fn a_watch_page_whose_connection_drops_resumes_its_peer() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    peer_tests::init();
    peer_tests::require_loopback_only();
    let port = free_port();
    let _server = serve(port);
    let (sender, browser) = watching(port, "&id=fan");
    let session = text(&browser, "window.peerPage.session.id");

    // Every connection to the server's port is destroyed on this side
    // (the kernel resets it): the server sees the peers vanish and holds
    // them for a resume.
    let killed = Command::new("ss")
        .args(["-K", "dst", "127.0.0.1", "dport", "=", &port.to_string()])
        .output()
        .expect("ss runs");
    assert!(killed.status.success(), "ss -K failed: {killed:?}");
    browser.wait_for(
        "window.peerPage.signalling.some(e => e.event === 'lost')",
        Duration::from_secs(5),
    );
    browser.wait_for(
        "window.peerPage.client.signalling === 'connected'",
        BACK_WITHIN,
    );
    let events = recorded(&browser, "signalling");
    println!("watch page across a dropped connection: {events:?}");
    let restored = events
        .iter()
        .find(|e| e["event"] == "restored")
        .expect("restored");
    assert_eq!(restored["resumed"], Value::Bool(true), "{events:?}");
    assert_eq!(restored["id"].as_str(), Some("fan"), "{events:?}");
    assert_eq!(text(&browser, "window.peerPage.client.room"), "live");

    // The session goes on: the pictures keep coming, the same session.
    let before = frames(&browser).decoded;
    wait_frames(&browser, before, 30, Duration::from_secs(10));
    let seen = frames(&browser);
    println!("longest gap {:?}", seen.longest_gap);
    assert!(
        seen.longest_gap < LONGEST_GAP,
        "froze for {:?}",
        seen.longest_gap
    );
    assert_eq!(text(&browser, "window.peerPage.session.id"), session);
    assert_eq!(text(&browser, "window.peerPage.session.ended"), "false");
    // The server talks to the page's new connection: a newcomer is
    // announced to it, and is served alongside.
    browser.eval(
        &format!(
            "const frame = document.createElement('iframe'); frame.id = 'newcomer'; \
             frame.src = 'http://127.0.0.1:{port}/watch?room=live&producer=cam&id=newcomer'; \
             document.body.append(frame); return true;"
        ),
        vec![],
    );
    browser.wait_for(
        "document.getElementById('newcomer').contentWindow.peerPage.state === 'playing'",
        Duration::from_secs(20),
    );
    browser.wait_for(
        "window.peerPage.client.peers.has('newcomer')",
        Duration::from_secs(5),
    );
    let _ = sender.set_state(gst::State::Null);
}
