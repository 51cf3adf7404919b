//! `peer record --peerjs booth` as a user runs it: unmodified `peerjs`
//! 1.5.5 in Chromium calls "booth" with its fake camera and microphone,
//! hangs up, and the call is a finished file: frames counted, size and
//! audio checked. With the recorder's own PeerServer and with the
//! reference one (npm `peer` 1.0.2 under node).

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use peer_tests::browser::Browser;
use peer_tests::matroska::demux_video;
use peer_tests::media::decode_file;
use peer_tests::process::ChildProcess;
use peer_tests::recorder::{Recorder, free_port, fresh_dir, sidecar};
use peer_tests::{TestServer, init};

/// How long the call is recorded before the browser hangs up.
const CALL_LENGTH: Duration = Duration::from_secs(5);

/// `peer record --peerjs booth` with `options`, into a fresh directory.
fn start_recorder(options: &[&str], ready_line: &str) -> Recorder {
    let dir = fresh_dir("peerjs-rec");
    let port = free_port();
    let mut process = ChildProcess::spawn(
        Command::new(peer_tests::peer_binary())
            .args(["record", "--peerjs", "booth", "--summary-interval", "1"])
            .args(options)
            .args(["--port", &port.to_string()])
            .arg("--dir")
            .arg(&dir),
    );
    process.wait_line(ready_line, Duration::from_secs(20));
    Recorder::adopt(process, port, dir)
}

/// The browser (on `page`) calls booth as `caller`, the call is recorded
/// for [`CALL_LENGTH`], the browser hangs up; returns the finished file.
fn record_a_call(recorder: &mut Recorder, browser: &Browser, page: &str, caller: &str) -> PathBuf {
    browser.goto(page);
    let path = recorder.started(caller);
    let started = Instant::now();
    std::thread::sleep(CALL_LENGTH.saturating_sub(started.elapsed())); // the call itself
    browser.eval(
        "for (const call of window.callPage.calls) call.close(); return true;",
        vec![],
    );
    let line = recorder.finished(caller);
    assert!(line.contains("publisher left"), "{line}");
    path
}

/// What a user checks of the file: the frames it holds (counted, not
/// decoded), the picture's size, the caller's voice, its sidecar.
fn check_recording(path: &Path, key: &str, caller: &str) {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with(&format!("{key}_{caller}_")) && name.ends_with(".webm"),
        "named like other publishers' recordings: {name}"
    );
    let video = demux_video(path);
    let span = video
        .last_pts()
        .zip(video.first_pts())
        .map(|(last, first)| (last - first).seconds_f64())
        .unwrap_or(0.0);
    // Chromium's fake camera sends 30 fps; a loaded machine fewer.
    assert!(
        span >= CALL_LENGTH.as_secs_f64() - 1.5,
        "{span:.1} s of video in a {CALL_LENGTH:?} call"
    );
    assert!(
        video.frames() as f64 >= 15.0 * span,
        "{} video frames over {span:.1} s",
        video.frames()
    );
    assert!(video.audio_end.is_some(), "the file has an audio track");

    let decoded = decode_file(path);
    // Chromium's fake camera, at getUserMedia's default size.
    assert_eq!((decoded.width, decoded.height), (640, 480));
    assert!(
        decoded.video_frames as usize >= video.frames() * 9 / 10,
        "{} of {} frames decode",
        decoded.video_frames,
        video.frames()
    );
    assert!(
        decoded.audio_buffers > 100,
        "{} audio buffers",
        decoded.audio_buffers
    );
    // The fake microphone beeps; the recording is not silence.
    let loudest = decoded.audio.iter().fold(0f32, |m, s| m.max(s.abs()));
    assert!(loudest > 0.01, "audio peak {loudest}");

    let meta = sidecar(path);
    assert_eq!(meta["publisher"], caller, "{meta}");
    assert_eq!(meta["room"], key, "{meta}");
    assert_eq!(meta["ended_cleanly"], true, "{meta}");
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
}

#[test]
fn every_caller_of_booth_is_recorded_to_a_file_of_its_own() {
    init();
    let mut recorder = start_recorder(&[], "PeerJS callers:");
    let browser = Browser::start(&[]);
    let page = |caller: &str| {
        format!(
            "http://127.0.0.1:{}/call?id={caller}&peer=booth&call=1",
            recorder.port
        )
    };
    let (first_page, second_page) = (page("alice"), page("bob"));
    let first = record_a_call(&mut recorder, &browser, &first_page, "alice");
    // Another caller afterwards: another file.
    let second = record_a_call(&mut recorder, &browser, &second_page, "bob");
    assert_ne!(first, second);
    check_recording(&first, "peerjs", "alice");
    check_recording(&second, "peerjs", "bob");
    recorder.interrupt();
}

/// The reference PeerServer from npm, installed by scripts/install-deps.sh.
fn reference_peerserver() -> PathBuf {
    let npm = std::env::var_os("GST_PEER_NPM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/gst-peer/npm")
        });
    let script = npm.join("node_modules/peer/dist/bin/peerjs.js");
    assert!(
        script.exists(),
        "{} is missing: run scripts/install-deps.sh (npm `peer` 1.0.2)",
        script.display()
    );
    script
}

#[test]
fn callers_through_the_reference_peerserver_are_recorded() {
    init();
    let port = free_port();
    let _reference = ChildProcess::spawn(Command::new("node").arg(reference_peerserver()).args([
        "--port",
        &port.to_string(),
        "--host",
        "127.0.0.1",
    ]));
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the reference PeerServer did not listen"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let server = format!("http://127.0.0.1:{port}/");
    let mut recorder = start_recorder_with_server(&server);
    // Our server only serves the page; PeerJS talks to the reference one.
    let pages = TestServer::start();
    let browser = Browser::start(&[]);
    let page = format!(
        "http://127.0.0.1:{}/call?id=carol&peer=booth&call=1&port={port}",
        pages.port()
    );
    let path = record_a_call(&mut recorder, &browser, &page, "carol");
    check_recording(&path, "peerjs", "carol");
    recorder.interrupt();
}

/// `peer record --peerjs booth --server URL`: no server of its own.
fn start_recorder_with_server(server: &str) -> Recorder {
    let dir = fresh_dir("peerjs-rec");
    let mut process = ChildProcess::spawn(
        Command::new(peer_tests::peer_binary())
            .args(["record", "--peerjs", "booth", "--summary-interval", "1"])
            .args(["--server", server])
            .arg("--dir")
            .arg(&dir),
    );
    process.wait_line("recording every caller", Duration::from_secs(20));
    Recorder::adopt(process, 0, dir)
}

#[test]
fn meaningless_combinations_with_peerjs_are_refused_with_the_reason() {
    for (options, expected) in [
        (
            &["--room", "talks"][..],
            "--room cannot be used with --peerjs",
        ),
        (&["--id", "rec"][..], "--id cannot be used with --peerjs"),
        (
            &["--composite", "all.webm"][..],
            "--composite cannot be used with --peerjs",
        ),
        (
            &["--server", "peerjs://127.0.0.1:9000/studio"][..],
            "the PeerJS id is --peerjs's",
        ),
    ] {
        let output = Command::new(peer_tests::peer_binary())
            .args(["record", "--peerjs", "booth"])
            .args(options)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{options:?}: {stderr}");
        assert!(stderr.contains(expected), "{options:?}: {stderr}");
    }
}
