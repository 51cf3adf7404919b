//! `peer record` as a user runs it: a separate process recording a room,
//! publishers coming and going, files checked by decoding them.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use gst::prelude::*;
use peer_tests::browser::Browser;
use peer_tests::media::{close_colour, decode_file};
use peer_tests::process::ChildProcess;
use peer_tests::recorder::{Recorder, free_port, fresh_dir, sidecar};
use peer_tests::{dominant_frequency, init, play, sender};

#[test]
fn a_pipeline_publisher_is_recorded_with_its_colour_and_tone() {
    init();
    let mut recorder = Recorder::start("interviews");
    let publisher = sender(
        &format!("uri={} peer-id=guest", recorder.room_uri("interviews")),
        640,
        360,
        0xffd02020,
        440.0,
    );
    play(&publisher);
    let path = recorder.started("guest");
    // Record a few seconds, then the publisher leaves: the file is finalized.
    recorder
        .process
        .wait_line("1 recording(s) running", Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(3)); // the length of the recording itself
    publisher.set_state(gst::State::Null).unwrap();
    let line = recorder.finished("guest");
    assert!(line.contains("publisher left"), "{line}");

    let decoded = decode_file(&path);
    assert_eq!((decoded.width, decoded.height), (640, 360));
    assert!(
        close_colour(decoded.centre_rgb, [0xd0, 0x20, 0x20], 20),
        "{:?}",
        decoded.centre_rgb
    );
    let frequency = dominant_frequency(&decoded.audio, 48_000);
    assert!(
        (frequency - 440.0).abs() < 3.0,
        "recorded tone at {frequency} Hz"
    );
    let meta = sidecar(&path);
    assert_eq!(meta["publisher"], "guest");
    assert_eq!(meta["room"], "interviews");
    assert_eq!(meta["ended_cleanly"], true);
    assert_eq!(meta["container"], "webm");
    let kinds: Vec<&str> = meta["tracks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"video") && kinds.contains(&"audio"),
        "{meta}"
    );
    let recorded = meta["duration_seconds"].as_f64().unwrap();
    assert!(
        (recorded - decoded.span().as_secs_f64()).abs() < 0.5,
        "sidecar {recorded} s, file {:?}",
        decoded.span()
    );
    assert!(
        path.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("interviews_guest_"),
        "{}",
        path.display()
    );
    recorder.interrupt();
}

#[test]
fn chromium_publishing_ten_seconds_gives_a_ten_second_file() {
    init();
    let mut recorder = Recorder::start("web");
    let browser = Browser::start(&[]);
    browser.goto(&format!(
        "http://127.0.0.1:{}/publish?room=web&id=browser&width=640&height=360&autostart=1",
        recorder.port
    ));
    let path = recorder.started("browser");
    let started = Instant::now();
    // Publish for ten seconds, then stop from the page.
    std::thread::sleep(Duration::from_secs(10).saturating_sub(started.elapsed()));
    browser.eval("window.peerPage.publisher.stop(); return true;", vec![]);
    let finished = recorder.finished("browser");

    let decoded = decode_file(&path);
    let seconds = decoded.span().as_secs_f64();
    assert!(
        (seconds - 10.0).abs() <= 0.5,
        "recorded {seconds:.2} s of a 10 s publish"
    );
    assert_eq!((decoded.width, decoded.height), (640, 360));
    assert!(
        decoded.audio_buffers > 100,
        "audio present: {} buffers",
        decoded.audio_buffers
    );
    let meta = sidecar(&path);
    assert_eq!(meta["ended_cleanly"], true, "{finished}");
    let video = meta["tracks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["kind"] == "video")
        .expect("a video track");
    assert_eq!(
        (video["width"].as_i64(), video["height"].as_i64()),
        (Some(640), Some(360)),
        "{meta}"
    );
    assert!(
        meta["tracks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["kind"] == "audio"),
        "{meta}"
    );
    assert!(
        (meta["duration_seconds"].as_f64().unwrap() - 10.0).abs() <= 0.5,
        "{meta}"
    );
    recorder.interrupt();
}

#[test]
fn a_recorder_killed_with_sigkill_leaves_a_playable_file() {
    init();
    let mut recorder = Recorder::start("crash");
    let publisher = sender(
        &format!("uri={} peer-id=steady", recorder.room_uri("crash")),
        320,
        240,
        0xff20d020,
        440.0,
    );
    play(&publisher);
    let path = recorder.started("steady");
    std::thread::sleep(Duration::from_secs(5)); // five seconds of recording
    recorder.process.kill(); // SIGKILL: nothing gets finalized
    let decoded = decode_file(&path);
    assert!(
        decoded.span() >= Duration::from_secs(4),
        "only {:?} playable after SIGKILL",
        decoded.span()
    );
    assert_eq!((decoded.width, decoded.height), (320, 240));
    assert_eq!(sidecar(&path)["ended_cleanly"], false);
    let _ = publisher.set_state(gst::State::Null);
}

#[test]
fn two_publishers_record_independently_and_one_dying_spares_the_other() {
    init();
    let mut recorder = Recorder::start("pair");
    let uri = recorder.room_uri("pair");
    let first = sender(
        &format!("uri={uri} peer-id=first"),
        320,
        240,
        0xffd02020,
        440.0,
    );
    play(&first);
    // The second publisher is a process that will be killed the hard way.
    let mut second = ChildProcess::spawn(Command::new(peer_tests::peer_binary()).args([
        "send",
        "--server",
        &format!("ws://127.0.0.1:{}", recorder.port),
        "--room",
        "pair",
        "--id",
        "second",
        "--width",
        "320",
        "--height",
        "240",
        "--pattern",
        "solid-color",
    ]));
    let mut paths = [recorder.started("first"), PathBuf::new()];
    paths[1] = recorder.started("second");
    std::thread::sleep(Duration::from_secs(3));
    second.kill();
    // The server notices the dead publisher and its recording is finalized.
    let line = recorder
        .process
        .wait_line("finished second:", Duration::from_secs(40));
    assert!(line.contains("publisher left"), "{line}");
    std::thread::sleep(Duration::from_secs(2)); // the first keeps recording meanwhile
    first.set_state(gst::State::Null).unwrap();
    recorder.finished("first");

    let survivor = decode_file(&paths[0]);
    let killed = decode_file(&paths[1]);
    assert!(
        survivor.span() > killed.span() + Duration::from_secs(1),
        "{:?} vs {:?}",
        survivor.span(),
        killed.span()
    );
    assert!(
        close_colour(survivor.centre_rgb, [0xd0, 0x20, 0x20], 20),
        "{:?}",
        survivor.centre_rgb
    );
    assert!(
        killed.video_frames > 30,
        "the killed publisher's file holds its frames"
    );
    assert_eq!(sidecar(&paths[0])["ended_cleanly"], true);
    recorder.interrupt();
}

#[test]
fn a_publisher_that_rejoins_gets_a_new_file_and_sigint_finalizes() {
    init();
    let mut recorder = Recorder::start("again");
    let uri = recorder.room_uri("again");
    let publisher = sender(
        &format!("uri={uri} peer-id=back"),
        320,
        240,
        0xff2020d0,
        440.0,
    );
    play(&publisher);
    let first = recorder.started("back");
    std::thread::sleep(Duration::from_secs(2));
    publisher.set_state(gst::State::Null).unwrap();
    recorder.finished("back");
    play(&publisher);
    let second = recorder.started("back");
    assert_ne!(first, second, "a rejoin must not overwrite the first file");
    std::thread::sleep(Duration::from_secs(2));
    let output = recorder.interrupt();
    assert!(
        output
            .iter()
            .any(|l| l.contains("finished back:") && l.contains("recorder stopped")),
        "{output:?}"
    );
    assert_eq!(sidecar(&second)["ended_cleanly"], true);
    assert!(decode_file(&first).video_frames > 20);
    assert!(decode_file(&second).video_frames > 20);
    let _ = publisher.set_state(gst::State::Null);
}

#[test]
fn the_composite_shows_both_publishers_side_by_side() {
    init();
    let port = free_port();
    let dir = fresh_dir("composite");
    let mut recorder = Recorder::adopt(
        ChildProcess::spawn(
            Command::new(peer_tests::peer_binary())
                .args([
                    "record",
                    "--room",
                    "grid",
                    "--port",
                    &port.to_string(),
                    "--composite",
                    "grid.webm",
                ])
                .args(["--composite-size", "640x360", "--dir"])
                .arg(&dir),
        ),
        port,
        dir.clone(),
    );
    recorder
        .process
        .wait_line("publish at", Duration::from_secs(20));
    let uri = recorder.room_uri("grid");
    let red = sender(
        &format!("uri={uri} peer-id=red"),
        320,
        240,
        0xffd02020,
        440.0,
    );
    play(&red);
    recorder.started("red");
    let blue = sender(
        &format!("uri={uri} peer-id=blue"),
        320,
        240,
        0xff2040d0,
        660.0,
    );
    play(&blue);
    recorder.started("blue");
    std::thread::sleep(Duration::from_secs(3)); // both on screen for a while
    recorder.interrupt();
    let _ = red.set_state(gst::State::Null);
    let _ = blue.set_state(gst::State::Null);

    let mixed = decode_file(&dir.join("grid.webm"));
    assert_eq!((mixed.width, mixed.height), (640, 360));
    // Two publishers: a 2x1 grid, red (first) on the left, blue on the
    // right, in some second of the file once both were in (when blue's
    // cell fills depends on the machine's load, not on a fixed delay).
    let cells: Vec<_> = mixed
        .snapshots
        .iter()
        .map(|(at, frame)| {
            let left = mixed.pixel_of(frame, 160, 180);
            let right = mixed.pixel_of(frame, 480, 180);
            (*at, left, right)
        })
        .collect();
    assert!(
        cells.iter().any(|(_, left, right)| {
            close_colour(*left, [0xd0, 0x20, 0x20], 28)
                && close_colour(*right, [0x20, 0x40, 0xd0], 28)
        }),
        "no second of the composite shows red left and blue right: {cells:?}"
    );
    assert!(mixed.audio_buffers > 0, "the mix has sound");
}
