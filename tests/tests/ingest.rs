//! Browsers publishing to gst-peer (issue 17): they ramp up as fast and as
//! high as towards another browser, obey the operator's cap, and back off
//! on a thin link. Everything is read from the sending browser's own
//! getStats (tests/src/ramp.rs) and from the recorded file.
//!
//! These compare rates and times: run them alone on the machine
//! (`flock -x /work/cpu.lock bash scripts/test.sh --test ingest`).

use std::path::PathBuf;

use peer_tests::browser::Browser;
use peer_tests::init;
use peer_tests::media::decode_file;
use peer_tests::ramp::{self, PUBLISH_PAGE_CONNECTION, Ramp};
use peer_tests::recorder::Recorder;

const WIDTH: u32 = 1280;
const HEIGHT: u32 = 720;
/// Each publishing run is measured for this long after its first frame.
const MEASURED_SECONDS: f64 = 30.0;
/// The window whose bitrate is compared: the end of the run, after the
/// ramp-up.
const LAST_SECONDS: f64 = 10.0;
/// How far below the browser-to-browser bitrate the recording's may be:
/// two runs of the same call on this machine differ by about this much.
const BITRATE_TOLERANCE: f64 = 0.15;

/// Publishes from the publish page to `recorder` for the measured time;
/// the ramp and the recording's file.
fn publish_to_recorder(browser: &Browser, recorder: &mut Recorder, room: &str) -> (Ramp, PathBuf) {
    browser.goto(&format!(
        "http://127.0.0.1:{}/publish?room={room}&id=cam&width={WIDTH}&height={HEIGHT}&autostart=1",
        recorder.port
    ));
    ramp::start_sampling(browser, PUBLISH_PAGE_CONNECTION);
    let path = recorder.started("cam");
    (ramp::collect(browser, MEASURED_SECONDS), path)
}

/// Stops the publish page; the recording is finalized.
fn stop_publishing(browser: &Browser, recorder: &mut Recorder) {
    browser.eval("window.peerPage.publisher.stop(); return true;", vec![]);
    recorder.finished("cam");
}

fn save_artifact(name: &str, value: &serde_json::Value) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("artifacts");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(
        dir.join(format!("{name}.json")),
        serde_json::to_string_pretty(value).unwrap(),
    );
}

#[test]
fn chromium_publishes_to_peer_record_as_well_as_to_another_chromium() {
    init();
    let mut recorder = Recorder::start("ramp");
    let browser = Browser::start(&[]);

    // The same fake camera, first to another browser (two connections of
    // one page: a call between two browsers on this machine), then to
    // the recorder.
    browser.goto(&format!("http://127.0.0.1:{}/", recorder.port));
    ramp::publish_browser_to_browser(&browser, WIDTH, HEIGHT);
    let to_browser = ramp::collect(&browser, MEASURED_SECONDS);
    ramp::end_browser_to_browser(&browser);
    let (to_recorder, path) = publish_to_recorder(&browser, &mut recorder, "ramp");
    stop_publishing(&browser, &mut recorder);

    println!("{}", to_browser.table("Chromium → Chromium"));
    println!("{}", to_recorder.table("Chromium → peer record"));
    save_artifact(
        "ingest-ramp",
        &serde_json::json!({"to_browser": to_browser.to_json(), "to_recorder": to_recorder.to_json()}),
    );

    let recorded = decode_file(&path);
    let reference = to_browser.last();
    assert!(
        recorded.width >= reference.width,
        "the recording ends at {}x{}, the call between browsers at {}x{}",
        recorded.width,
        recorded.height,
        reference.width,
        reference.height
    );
    assert!(
        to_recorder.last().width >= reference.width,
        "the browser sends {}x{} to the recorder at the end, {}x{} to a browser",
        to_recorder.last().width,
        to_recorder.last().height,
        reference.width,
        reference.height
    );
    let (recording_rate, reference_rate) = (
        to_recorder.bitrate_of_last(LAST_SECONDS),
        to_browser.bitrate_of_last(LAST_SECONDS),
    );
    assert!(
        recording_rate >= reference_rate * (1.0 - BITRATE_TOLERANCE),
        "last {LAST_SECONDS} s: {:.0} kbit/s to the recorder, {:.0} kbit/s to a browser \
         (tolerance {:.0}%)",
        recording_rate / 1000.0,
        reference_rate / 1000.0,
        BITRATE_TOLERANCE * 100.0
    );
    recorder.interrupt();
}
