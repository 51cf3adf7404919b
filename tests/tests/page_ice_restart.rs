//! A page's media path breaks for 5 s and comes back: the session heals by
//! ICE restart in the same session, whichever side offered. The watch page
//! answers peersink's restart (peersink made the offer), and with
//! `offer=1` the page itself made the offer and restarts ICE (peer.js:
//! ICE `disconnected` for 2 s or `failed`, bounded attempts with backoff).
//!
//! peersink runs in gst-launch-1.0 in a namespace of its own, joined to
//! the test's namespace by a veth pair; Chromium is in the test's
//! namespace, where iptables drops everything on that link but the
//! signalling server's TCP (the page's own signalling is on loopback).
//! At the end peersink is SIGKILLed: the page frees the session (closes
//! its RTCPeerConnection) when the server says the peer is gone.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use peer_signalling::server::ServerConfig;
use peer_tests::browser::Browser;
use peer_tests::netns::{IsolatedHost, PathBlocked};
use peer_tests::pages::{frames, ice_states, mark, monitor_frames, recorded, wait_frames};
use peer_tests::process::ChildProcess;
use peer_tests::{TestServer, init};
use serde_json::Value;

const OUTAGE: Duration = Duration::from_secs(5);
/// From the issue: media resumes within this long of the path's return.
const RESUME_WITHIN: Duration = Duration::from_secs(3);
/// The server's resume window (docs/protocol.md): how long a vanished
/// peer is held before the room is told.
const RESUME_WINDOW: Duration = Duration::from_secs(10);

/// A browser, a pipeline and their media on two cores: one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn text(browser: &Browser, expression: &str) -> String {
    browser
        .eval(&format!("return String({expression});"), vec![])
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The value of `field=(type)value` in a gst-launch `-m` message line.
fn field_of(line: &str, field: &str) -> Option<String> {
    let start = line.find(&format!(" {field}=("))? + field.len() + 2;
    let rest = &line[start..];
    let value = &rest[rest.find(')')? + 1..];
    let end = value.find([',', ';']).unwrap_or(value.len());
    Some(value[..end].trim_matches('"').to_owned())
}

/// What a test saw of one outage.
struct Healed {
    restarts: Vec<Value>,
}

/// Watches `cam` from the page (`query` adds to the watch address), breaks
/// the path for [`OUTAGE`], and checks the pictures come back within
/// [`RESUME_WITHIN`] in the same session, healed by an ICE restart.
fn break_and_heal(
    query: &str,
    page_offers: bool,
) -> (Healed, ChildProcess, Browser, IsolatedHost, TestServer) {
    init();
    let host = IsolatedHost::create();
    let server = TestServer::start_with(ServerConfig {
        bind: "0.0.0.0:0".parse().unwrap(),
        ..ServerConfig::default()
    });
    let mut sender = host.broadcast(server.port());
    let browser = Browser::start(&[]);
    browser.goto(&format!(
        "http://127.0.0.1:{}/watch?room=paths&producer=cam{query}",
        server.port()
    ));
    browser.wait_for(
        "window.peerPage.state === 'playing'",
        Duration::from_secs(30),
    );
    monitor_frames(&browser);
    // Five seconds of watching: by then peersink knows how often this
    // viewer reports (its silence limit follows that rhythm).
    wait_frames(&browser, 0, 150, Duration::from_secs(15));
    let session = text(&browser, "window.peerPage.session.id");
    assert_eq!(
        text(&browser, "window.peerPage.session.offerer"),
        page_offers.to_string()
    );

    let blocked = PathBlocked::block(&host.near_interface, server.port());
    let dropped = Instant::now();
    mark(&browser, "path dropped");
    let frames_at_drop = frames(&browser).decoded;
    // The offering side finds the path broken and starts restarting while
    // it is still down.
    let started = if page_offers {
        browser.wait_for(
            "(window.peerPage.iceRestarts || []).find(e => e.event === 'ice-restart-started')",
            OUTAGE,
        )
    } else {
        Value::String(sender.wait_line("peer-ice-restart-started", OUTAGE))
    };
    let noticed = dropped.elapsed();
    std::thread::sleep(OUTAGE.saturating_sub(dropped.elapsed()));
    let frames_at_return = frames(&browser).decoded;
    drop(blocked);
    let returned = Instant::now();
    browser.eval(
        "window.frameMonitor.iceStates.push(`path back`); return 1;",
        vec![],
    );
    assert!(
        frames_at_return <= frames_at_drop + 10,
        "{} frames arrived while the path was down: the test left another path open",
        frames_at_return - frames_at_drop
    );

    wait_frames(&browser, frames_at_return, 10, RESUME_WITHIN);
    let resumed_after = returned.elapsed();
    let picture = browser.eval(
        "const v = document.querySelector('video'); return [v.videoWidth, v.videoHeight];",
        vec![],
    );
    assert_eq!(picture, serde_json::json!([320, 240]));
    println!("ICE states: {}", ice_states(&browser));
    browser.wait_for(
        "(window.peerPage.iceRestarts || []).find(e => e.event === 'ice-restart-succeeded')",
        Duration::from_secs(5),
    );
    let restarts = recorded(&browser, "iceRestarts");
    println!(
        "outage {OUTAGE:?}: restart started {noticed:?} after the drop ({started}); \
         10 frames {resumed_after:?} after the path came back; page: {restarts:?}"
    );
    // The same session on both sides; nothing ended.
    assert_eq!(text(&browser, "window.peerPage.session.id"), session);
    assert_eq!(text(&browser, "window.peerPage.session.ended"), "false");
    for event in &restarts {
        assert_eq!(event["session"].as_str(), Some(session.as_str()), "{event}");
        assert_eq!(event["byPeer"].as_bool(), Some(!page_offers), "{event}");
    }
    let status = text(&browser, "document.getElementById('status').textContent");
    assert!(
        status.contains("restored by ICE restart"),
        "status line: {status}"
    );
    assert!(
        !sender
            .seen
            .iter()
            .any(|line| line.contains("removed (session") || line.contains("ERROR")),
        "peersink dropped the viewer or failed: {:?}",
        sender.seen
    );
    let healed = sender.wait_line("peer-ice-restart-succeeded", Duration::from_secs(10));
    assert_eq!(
        field_of(&healed, "session-id").as_deref(),
        Some(session.as_str()),
        "{healed}"
    );
    (Healed { restarts }, sender, browser, host, server)
}

#[test]
fn the_watch_page_answers_peersinks_ice_restart_and_plays_on() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (healed, mut sender, browser, _host, _server) = break_and_heal("", false);
    assert!(
        healed
            .restarts
            .iter()
            .any(|e| e["event"] == "ice-restart-started"),
        "the page saw no restart offer: {:?}",
        healed.restarts
    );

    // peersink vanishes (SIGKILL, no goodbye): once the server's resume
    // window has passed it tells the room, and the page frees the session.
    sender.kill();
    let killed = Instant::now();
    browser.wait_for(
        "window.peerPage.session.ended && window.peerPage.session.pc.connectionState === 'closed'",
        RESUME_WINDOW + Duration::from_secs(5),
    );
    let freed = killed.elapsed();
    println!("the vanished producer's session freed {freed:?} after the kill");
    assert_eq!(text(&browser, "window.peerPage.state"), "producer-gone");
}

#[test]
fn the_watch_page_that_offered_restarts_ice_itself() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (healed, mut sender, _browser, _host, _server) = break_and_heal("&offer=1", true);
    let first = &healed.restarts[0];
    assert_eq!(
        first["event"], "ice-restart-started",
        "{:?}",
        healed.restarts
    );
    assert_eq!(first["attempt"], 1, "{:?}", healed.restarts);
    // peersink answered the page's restart offer.
    let answered = sender.wait_line("peer-ice-restart-started", Duration::from_secs(1));
    assert!(answered.contains("by-peer=(boolean)true"), "{answered}");
}
