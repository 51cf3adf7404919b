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
    let port = peer_tests::recorder::free_port();
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
    let port = peer_tests::recorder::free_port();
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

/// `peer record --server`: the server restarts under a recording. The
/// recording goes on (one continuous file, no gap), the recorder gets
/// back on the new server by itself, and a publisher that joins after the
/// restart is recorded too.
#[test]
fn peer_record_rides_out_a_server_restart_and_records_newcomers() {
    use peer_tests::recorder::{Recorder, fresh_dir};
    peer_tests::init();
    peer_tests::require_loopback_only();
    let port = peer_tests::recorder::free_port();
    let mut server = serve(port);
    let dir = fresh_dir("restart");
    let mut process = ChildProcess::spawn(
        Command::new(peer_tests::peer_binary())
            .args(["record", "--room", "live", "--summary-interval", "1"])
            .args(["--server", &format!("ws://127.0.0.1:{port}")])
            .arg("--dir")
            .arg(&dir),
    );
    process.wait_line("recording room", Duration::from_secs(20));
    let mut recorder = Recorder::adopt(process, port, dir.clone());
    let uri = format!("ws://127.0.0.1:{port}/live");
    let first = peer_tests::sender(
        &format!("uri={uri} peer-id=cam1"),
        320,
        240,
        0xff2050d0,
        440.0,
    );
    play(&first);
    let path = recorder.started("cam1");
    let progress = |recorder: &mut Recorder, publisher: &str, reports: usize| {
        for _ in 0..reports {
            recorder
                .process
                .wait_line(&format!("  {publisher}: "), Duration::from_secs(10));
        }
    };
    progress(&mut recorder, "cam1", 2);

    server.kill();
    recorder
        .process
        .wait_line("lost the signalling server", Duration::from_secs(10));
    // Recording with no server at all.
    progress(&mut recorder, "cam1", 2);

    let _server = serve(port);
    let restarted = Instant::now();
    recorder
        .process
        .wait_line("back on the signalling server", Duration::from_secs(10));
    let back = restarted.elapsed();
    assert!(back < Duration::from_secs(5), "back only after {back:?}");

    let second = peer_tests::sender(
        &format!("uri={uri} peer-id=cam2"),
        320,
        240,
        0xff20d050,
        660.0,
    );
    play(&second);
    let newcomer = recorder.started("cam2");
    progress(&mut recorder, "cam2", 2);
    let lines = recorder.interrupt();
    let _ = first.set_state(gst::State::Null);
    let _ = second.set_state(gst::State::Null);
    assert!(
        lines
            .iter()
            .all(|l| !l.contains("finished cam1") || !l.contains("error")),
        "{lines:?}"
    );

    let cam1_files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("cam1") && !name.ends_with(".json"))
        .collect();
    assert_eq!(cam1_files.len(), 1, "one continuous file: {cam1_files:?}");
    let times = peer_tests::ramp::decoded_video_times(&path);
    let longest = times.windows(2).map(|w| w[1] - w[0]).fold(0.0f64, f64::max);
    let span = times.last().copied().unwrap_or(0.0) - times.first().copied().unwrap_or(0.0);
    println!(
        "cam1: {} frames over {span:.1} s, longest gap {longest:.3} s; back after {back:?}",
        times.len()
    );
    assert!(span >= 5.0, "the recording spans only {span:.1} s");
    assert!(longest < 1.0, "a {longest:.2} s gap in the recording");
    assert!(
        times.len() as f64 >= span * 20.0,
        "{} frames over {span:.1} s",
        times.len()
    );
    let newcomer_frames = peer_tests::ramp::decoded_video_times(&newcomer).len();
    assert!(
        newcomer_frames >= 30,
        "the newcomer: {newcomer_frames} frames"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
