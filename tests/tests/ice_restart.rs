//! A viewer's media path breaks for 5 s and comes back: the session heals
//! by ICE restart (peersink re-offers with new ICE credentials in the same
//! session, peersrc answers) instead of ending, and the pictures resume.
//!
//! peersink runs in gst-launch-1.0 in a namespace of its own, joined to the
//! test's namespace by a veth pair; the viewer (peersrc, in this process)
//! is in the test's namespace, where iptables drops everything on that
//! link but the signalling server's TCP: the media path goes (UDP and
//! ICE-TCP), the signalling connection survives, as when a NAT binding or
//! a radio link is lost for a while.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;
use peer_signalling::server::ServerConfig;
use peer_tests::media::Receiver;
use peer_tests::netns::{IsolatedHost, PathBlocked};
use peer_tests::{TestServer, init};

const OUTAGE: Duration = Duration::from_secs(5);
/// From the issue: media resumes within this long of the path's return.
const RESUME_WITHIN: Duration = Duration::from_secs(3);

/// Names of the element messages posted on `pipeline`'s bus from now on
/// (the receiver's own waiting pops and drops the others).
fn collect_element_messages(pipeline: &gst::Pipeline) -> Arc<Mutex<Vec<String>>> {
    let names = Arc::new(Mutex::new(Vec::new()));
    let bus = pipeline.bus().unwrap();
    bus.enable_sync_message_emission();
    let collected = names.clone();
    bus.connect_sync_message(Some("element"), move |_, message| {
        if let Some(structure) = message.structure() {
            collected.lock().unwrap().push(structure.name().to_string());
        }
    });
    names
}

fn session_of(viewer: &Receiver) -> Option<String> {
    let stats = viewer.peersrc.property::<gst::Structure>("stats");
    stats.get::<String>("session").ok()
}

/// The value of `field=(type)value` in a gst-launch `-m` message line.
fn field_of(line: &str, field: &str) -> Option<String> {
    let start = line.find(&format!(" {field}=("))? + field.len() + 2;
    let rest = &line[start..];
    let value = &rest[rest.find(')')? + 1..];
    let end = value.find([',', ';']).unwrap_or(value.len());
    Some(value[..end].trim_matches('"').to_owned())
}

/// The viewer's `rtcp-packets` counter in a `peersink-stats` line
/// (`rtcp-packets\=\(guint64\)N` inside the viewer's structure).
fn rtcp_packets_of(line: &str) -> Option<u64> {
    let rest = &line[line.find("rtcp-packets")?..];
    let value = &rest[rest.find(')')? + 1..];
    value
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .ok()
}

/// RTCP packets the sender counts from the viewer per stats interval
/// (1 s), over the next `intervals` of them.
fn rtcp_rate(sender: &mut peer_tests::process::ChildProcess, intervals: u64) -> f64 {
    let count = |sender: &mut peer_tests::process::ChildProcess| {
        let line = sender.wait_fresh_line("peersink-stats,", Duration::from_secs(5));
        rtcp_packets_of(&line).unwrap_or_else(|| panic!("no rtcp-packets in {line}"))
    };
    let first = count(sender);
    for _ in 1..intervals {
        sender.wait_fresh_line("peersink-stats,", Duration::from_secs(5));
    }
    (count(sender) - first) as f64 / intervals as f64
}

#[test]
fn a_viewer_path_dropped_for_five_seconds_heals_in_the_same_session() {
    init();
    let host = IsolatedHost::create();
    let server = TestServer::start_with(ServerConfig {
        bind: "0.0.0.0:0".parse().unwrap(),
        ..ServerConfig::default()
    });
    let mut sender = host.broadcast(server.port());
    let viewer = Receiver::start(&format!(
        "uri=ws://127.0.0.1:{}/paths producer=cam peer-id=viewer",
        server.port()
    ));
    let viewer_messages = collect_element_messages(&viewer.pipeline);
    // Five seconds of watching: by then the sender knows how often this
    // viewer reports (its silence limit follows that rhythm).
    viewer.wait(Duration::from_secs(30), "frames before the outage", |r| {
        r.video_frames >= 150
    });
    let session = session_of(&viewer).expect("the viewer's stats name its session");
    let rtcp_before = rtcp_rate(&mut sender, 3);

    let blocked = PathBlocked::block(&host.near_interface, server.port());
    let dropped = Instant::now();
    let frames_at_drop = viewer.frames();
    // The sender finds the path broken (nothing from the viewer) and
    // starts restarting while it is still down.
    let started = sender.wait_line("peer-ice-restart-started", OUTAGE);
    let noticed = dropped.elapsed();
    assert_eq!(
        field_of(&started, "session-id").as_deref(),
        Some(session.as_str()),
        "{started}"
    );
    std::thread::sleep(OUTAGE.saturating_sub(dropped.elapsed()));
    let frames_at_return = viewer.frames();
    drop(blocked);
    assert!(
        frames_at_return <= frames_at_drop + 10,
        "{} frames arrived while the path was down: the test left another path open",
        frames_at_return - frames_at_drop
    );
    let returned = Instant::now();

    let resumed = viewer.wait(RESUME_WITHIN, "frames after the path came back", |r| {
        r.video_frames >= frames_at_return + 10
    });
    let resumed_after = returned.elapsed();
    assert_eq!((resumed.width, resumed.height), (320, 240));
    let healed = sender.wait_line("peer-ice-restart-succeeded", Duration::from_secs(10));
    // The viewer's RTCP is counted once after the restart as before it
    // (each restart used to add another listener: every report counted
    // twice, feeding adaptation double).
    let rtcp_after = rtcp_rate(&mut sender, 3);
    println!("RTCP from the viewer per second: {rtcp_before} before, {rtcp_after} after");
    assert!(
        rtcp_before >= 1.0 && rtcp_after >= 0.5 * rtcp_before && rtcp_after <= 1.5 * rtcp_before,
        "RTCP packets counted per second: {rtcp_before} before the restart, {rtcp_after} after"
    );
    println!(
        "outage {OUTAGE:?}: restart started {noticed:?} after the drop ({started}); \
         10 frames {resumed_after:?} after the path came back; {healed}"
    );
    assert_eq!(
        field_of(&healed, "session-id").as_deref(),
        Some(session.as_str()),
        "{healed}"
    );
    assert_eq!(
        session_of(&viewer).as_deref(),
        Some(session.as_str()),
        "the viewer is in another session"
    );
    let [r, g, b] = resumed.centre_rgb;
    assert!(
        peer_tests::media::close_colour([r, g, b], [0x20, 0x50, 0xd0], 40),
        "the viewer shows {:?}",
        resumed.centre_rgb
    );
    // The viewer answered the restart; nothing ended on either side.
    let names = viewer_messages.lock().unwrap().clone();
    for line in sender
        .seen
        .iter()
        .filter(|l| l.contains("restart") || l.contains("ICE"))
    {
        println!("sender: {line}");
    }
    assert!(
        names.iter().any(|n| n == "peer-ice-restart-started"),
        "the viewer saw no restart: {names:?}"
    );
    assert!(
        !sender
            .seen
            .iter()
            .any(|line| line.contains("removed (session") || line.contains("ERROR")),
        "the sender dropped the viewer or failed: {:?}",
        sender.seen
    );
    let _ = viewer.pipeline.set_state(gst::State::Null);
}
