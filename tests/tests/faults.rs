//! Faults: the signalling server goes away mid-broadcast. Media does not
//! pass through it, so what was playing must go on playing; the elements
//! reconnect by themselves, take their ids back, and new viewers get in.

use std::process::Command;

use gst::prelude::*;
use std::time::{Duration, Instant};

use peer_tests::media::Receiver;
use peer_tests::process::ChildProcess;
use peer_tests::{play, wait_element_message};

fn serve(port: u16) -> ChildProcess {
    let mut process = ChildProcess::spawn(
        Command::new(peer_tests::peer_binary())
            .args(["serve", "--port", &port.to_string()])
            .env("PEER_LOG", "warn"),
    );
    process.wait_line("gst-peer signalling on", Duration::from_secs(20));
    process
}

#[test]
fn the_server_killed_and_restarted_mid_broadcast_freezes_no_viewer() {
    peer_tests::init();
    peer_tests::require_loopback_only();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let uri = format!("ws://127.0.0.1:{port}/live");
    let mut server = serve(port);
    let sender = peer_tests::sender(
        &format!("uri={uri} peer-id=cam"),
        320,
        240,
        0xff2050d0,
        440.0,
    );
    play(&sender);
    let viewers: Vec<Receiver> = (0..2)
        .map(|i| Receiver::start(&format!("uri={uri} producer=cam peer-id=viewer-{i}")))
        .collect();
    for viewer in &viewers {
        viewer.wait(Duration::from_secs(30), "frames before the outage", |r| {
            r.video_frames >= 30
        });
        viewer.reset_freezes();
    }

    // SIGKILL: no goodbye to anyone.
    server.kill();
    let lost = Instant::now();
    wait_element_message(&sender, "peer-signalling-lost", Duration::from_secs(5));
    for viewer in &viewers {
        wait_element_message(
            &viewer.pipeline,
            "peer-signalling-lost",
            Duration::from_secs(5),
        );
    }
    // Two seconds of media while there is no server at all.
    for viewer in &viewers {
        let before = viewer.frames();
        viewer.wait(
            Duration::from_secs(10),
            "frames with the server down",
            |r| r.video_frames >= before + 60,
        );
    }
    let outage = lost.elapsed();

    let _server = serve(port);
    let restarted = Instant::now();
    let restored =
        wait_element_message(&sender, "peer-signalling-restored", Duration::from_secs(10));
    let mut back = vec![restarted.elapsed()];
    for viewer in &viewers {
        wait_element_message(
            &viewer.pipeline,
            "peer-signalling-restored",
            Duration::from_secs(10),
        );
        back.push(restarted.elapsed());
    }
    println!(
        "outage {outage:?}; back on the new server after {back:?} (sender says {:?} ms since the loss)",
        restored.get::<u64>("after-ms").unwrap()
    );
    for took in &back {
        assert!(
            *took < Duration::from_secs(5),
            "an element came back only after {took:?}"
        );
    }

    // A viewer that joins the new server gets the broadcast.
    let newcomer = Receiver::start(&format!("uri={uri} producer=cam peer-id=newcomer"));
    let seen = newcomer.wait(Duration::from_secs(30), "the newcomer's frames", |r| {
        r.video_frames >= 15
    });
    assert_eq!((seen.width, seen.height), (320, 240));

    // The first viewers never froze: frames throughout, the same picture.
    for (i, viewer) in viewers.iter().enumerate() {
        let before = viewer.frames();
        let received = viewer.wait(Duration::from_secs(10), "frames after the restart", |r| {
            r.video_frames >= before + 30
        });
        let freezes = &received.freezes;
        println!(
            "viewer-{i}: longest gap {:?}, frozen {:?} per minute",
            freezes.longest_gap_now(),
            freezes.frozen_per_minute()
        );
        assert!(
            freezes.longest_gap_now() < Duration::from_secs(1),
            "viewer-{i} froze for {:?}",
            freezes.longest_gap_now()
        );
        let [r, g, b] = received.centre_rgb;
        assert!(
            peer_tests::media::close_colour([r, g, b], [0x20, 0x50, 0xd0], 40),
            "viewer-{i} shows {:?}",
            received.centre_rgb
        );
    }
    let _ = sender.set_state(gst::State::Null);
}

/// The same outage for PeerJS peers: a pipeline that called another
/// (`?call=`) keeps its call, and both attach again to the restarted
/// PeerServer under their ids.
#[test]
fn a_peerjs_call_survives_the_peer_server_restarting() {
    peer_tests::init();
    peer_tests::require_loopback_only();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = serve(port);
    let booth = Receiver::start(&format!("uri=peerjs://127.0.0.1:{port}/booth"));
    let caller = peer_tests::sender(
        &format!("uri=\"peerjs://127.0.0.1:{port}/cam?call=booth\""),
        320,
        240,
        0xff2050d0,
        440.0,
    );
    play(&caller);
    booth.wait(Duration::from_secs(30), "the call's frames", |r| {
        r.video_frames >= 30
    });
    booth.reset_freezes();

    server.kill();
    wait_element_message(&caller, "peer-signalling-lost", Duration::from_secs(5));
    wait_element_message(
        &booth.pipeline,
        "peer-signalling-lost",
        Duration::from_secs(5),
    );
    let before = booth.frames();
    booth.wait(Duration::from_secs(10), "frames with no PeerServer", |r| {
        r.video_frames >= before + 60
    });

    let _server = serve(port);
    let restarted = Instant::now();
    wait_element_message(&caller, "peer-signalling-restored", Duration::from_secs(10));
    wait_element_message(
        &booth.pipeline,
        "peer-signalling-restored",
        Duration::from_secs(10),
    );
    let back = restarted.elapsed();
    assert!(back < Duration::from_secs(5), "back only after {back:?}");

    let before = booth.frames();
    let received = booth.wait(Duration::from_secs(10), "frames after the restart", |r| {
        r.video_frames >= before + 30
    });
    println!(
        "PeerJS: back after {back:?}; longest gap {:?}",
        received.freezes.longest_gap_now()
    );
    assert!(
        received.freezes.longest_gap_now() < Duration::from_secs(1),
        "the call froze for {:?}",
        received.freezes.longest_gap_now()
    );
    assert_eq!((received.width, received.height), (320, 240));
    let _ = caller.set_state(gst::State::Null);
}
