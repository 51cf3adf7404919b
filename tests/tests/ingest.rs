//! Browsers publishing to gst-peer (issue 17): they ramp up as fast and as
//! high as towards another browser, obey the operator's cap, and back off
//! on a thin link. Everything is read from the sending browser's own
//! getStats (tests/src/ramp.rs) and from the recorded file.
//!
//! These compare rates and times: run them alone on the machine
//! (`flock -x /work/cpu.lock bash scripts/test.sh --test ingest`).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use peer_signalling::server::ServerConfig;
use peer_tests::browser::Browser;
use peer_tests::media::decode_file;
use peer_tests::netns::IsolatedHost;
use peer_tests::process::ChildProcess;
use peer_tests::ramp::{self, PUBLISH_PAGE_CONNECTION, Ramp};
use peer_tests::recorder::{Recorder, fresh_dir};
use peer_tests::{TestServer, init, peer_binary};

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

/// One browser publishing at a time: these tests measure rates on 2 cores.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Publishes from the publish page to `recorder` for `seconds`; the ramp
/// and the recording's file.
fn publish_to_recorder(
    browser: &Browser,
    recorder: &mut Recorder,
    room: &str,
    seconds: f64,
) -> (Ramp, PathBuf) {
    publish_page_to(browser, &format!("127.0.0.1:{}", recorder.port), room);
    let path = recorder.started("cam");
    (ramp::collect(browser, seconds), path)
}

/// Opens the publish page of the server at `host` (address:port) in `room`
/// as `cam`, camera at WIDTHxHEIGHT, and starts sampling its connection.
fn publish_page_to(browser: &Browser, host: &str, room: &str) {
    browser.goto(&format!(
        "http://{host}/publish?room={room}&id=cam&width={WIDTH}&height={HEIGHT}&autostart=1"
    ));
    ramp::start_sampling(browser, PUBLISH_PAGE_CONNECTION);
}

/// The recorder's current progress line for `cam`'s video, parsed:
/// (width, height, frames per second, kbit/s).
fn progress_of_cam(recorder: &mut Recorder) -> (u32, u32, f64, f64) {
    let line = recorder
        .process
        .wait_fresh_line("  cam: ", Duration::from_secs(5));
    // "  cam: audio OPUS 24 kbit/s, video VP8 1280x720 20 fps 650 kbit/s"
    let parsed = line.split(", ").find_map(|track| {
        let words: Vec<&str> = track.split_whitespace().collect();
        let at = words.iter().position(|w| *w == "video")?;
        let (width, height) = words.get(at + 2)?.split_once('x')?;
        Some((
            width.parse().ok()?,
            height.parse().ok()?,
            words.get(at + 3)?.parse().ok()?,
            words.get(at + 5)?.parse().ok()?,
        ))
    });
    parsed.unwrap_or_else(|| panic!("unexpected progress line {line:?}"))
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
    let _serial = serial();
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
    let (to_recorder, path) =
        publish_to_recorder(&browser, &mut recorder, "ramp", MEASURED_SECONDS);
    let progress = progress_of_cam(&mut recorder);
    stop_publishing(&browser, &mut recorder);

    println!("{}", to_browser.table("Chromium → Chromium"));
    println!("{}", to_recorder.table("Chromium → peer record"));
    save_artifact(
        "ingest-ramp",
        &serde_json::json!({"to_browser": to_browser.to_json(), "to_recorder": to_recorder.to_json()}),
    );

    // The recorder's progress line says what arrives, as the browser
    // sends it (its rate over one second: within a factor of two of the
    // browser's over the last five).
    let sent = to_recorder.last();
    assert_eq!(
        (progress.0, progress.1),
        (sent.width, sent.height),
        "progress line {progress:?}, browser sends {}x{}",
        sent.width,
        sent.height
    );
    let sent_kbits = to_recorder.video_bitrate_between(sent.at - 5.0, sent.at) / 1000.0;
    assert!(
        progress.3 > sent_kbits / 2.0 && progress.3 < sent_kbits * 2.0,
        "progress line {progress:?}, browser sends {sent_kbits:.0} kbit/s of video"
    );
    assert!(progress.2 > 10.0, "progress line {progress:?}");

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

/// The operator's cap: `peer record --max-bitrate 300k`, announced in the
/// answer and held by the browser, on our protocol (the publish page) and
/// on WHIP.
#[test]
fn peer_record_max_bitrate_holds_the_browser_to_it() {
    let _serial = serial();
    init();
    const CAP_KBITS: f64 = 300.0;
    /// What the issue allows over the cap: RTP headers and the
    /// encoder's overshoot around its target.
    const ALLOWED_KBITS: f64 = 330.0;
    let mut recorder = Recorder::start_with("capped", &["--max-bitrate", "300k"]);
    let browser = Browser::start(&[]);

    let (page_ramp, _) = publish_to_recorder(&browser, &mut recorder, "capped", 25.0);
    let description: serde_json::Value = browser.eval(
        &format!("return ({PUBLISH_PAGE_CONNECTION}).remoteDescription.sdp;"),
        vec![],
    );
    stop_publishing(&browser, &mut recorder);
    println!(
        "{}",
        page_ramp.table("Chromium → peer record --max-bitrate 300k")
    );
    let answer = description.as_str().unwrap_or_default();
    // Chromium keeps the limit it took from the answer as b=AS (kbit/s)
    // in the description it shows, whichever of b=TIAS / b=AS it read.
    assert!(
        answer.contains("b=AS:260"),
        "the video section of the answer announces its share of the cap:\n{answer}"
    );
    let rate = page_ramp.bitrate_of_last(LAST_SECONDS) / 1000.0;
    assert!(
        rate <= ALLOWED_KBITS,
        "last {LAST_SECONDS} s: {rate:.0} kbit/s sent under a {CAP_KBITS:.0} kbit/s cap"
    );
    assert!(
        rate > CAP_KBITS / 3.0,
        "{rate:.0} kbit/s: the cap is not a stall"
    );

    // WHIP, into the recorder's own server: the same cap in the answer.
    let answer = ramp::publish_whip(
        &browser,
        &format!("http://127.0.0.1:{}/whip/capped", recorder.port),
        WIDTH,
        HEIGHT,
    );
    let publisher = recorder
        .process
        .wait_line("recording ", Duration::from_secs(30));
    let whip_ramp = ramp::collect(&browser, 20.0);
    ramp::stop_whip(&browser);
    println!(
        "{}",
        whip_ramp.table("Chromium over WHIP → peer record --max-bitrate 300k")
    );
    assert!(answer.contains("b=TIAS:260000"), "{publisher}\n{answer}");
    let rate = whip_ramp.bitrate_of_last(LAST_SECONDS) / 1000.0;
    assert!(
        rate <= ALLOWED_KBITS,
        "WHIP, last {LAST_SECONDS} s: {rate:.0} kbit/s sent under a {CAP_KBITS:.0} kbit/s cap"
    );
    recorder.interrupt();
}

/// A publisher on a thin uplink (1 Mbit/s, its own namespace): the browser
/// settles below the link's rate without sustained loss, and the
/// recording plays throughout.
#[test]
fn a_publisher_on_a_one_megabit_uplink_settles_below_it() {
    let _serial = serial();
    init();
    const LINK_KBITS: u32 = 1000;
    /// Loss the receiver may report over the last seconds: probing the
    /// link costs a few packets now and then; congestion it does not
    /// back off from costs many more.
    const LOST_SHARE: f64 = 0.03;
    let host = IsolatedHost::create();
    let server = TestServer::start_with(ServerConfig {
        bind: "0.0.0.0:0".parse().unwrap(),
        ..ServerConfig::default()
    });
    let dir = fresh_dir("thin");
    let process = ChildProcess::spawn(
        Command::new(peer_binary())
            .args(["record", "--room", "thin", "--summary-interval", "1"])
            .args(["--server", &format!("ws://127.0.0.1:{}", server.port())])
            .arg("--dir")
            .arg(&dir),
    );
    let mut recorder = Recorder::adopt(process, server.port(), dir);
    host.limit_outgoing_rate(LINK_KBITS);
    let origin = format!("{}:{}", host.near_address, server.port());
    let browser = Browser::start_in(
        &host,
        // getUserMedia needs a secure context; this test address is one.
        &[format!(
            "--unsafely-treat-insecure-origin-as-secure=http://{origin}"
        )],
    );
    publish_page_to(&browser, &origin, "thin");
    let path = recorder.started("cam");
    let thin = ramp::collect(&browser, 40.0);
    stop_publishing(&browser, &mut recorder);
    println!(
        "{}",
        thin.table("Chromium on a 1 Mbit/s uplink → peer record")
    );

    let rate = thin.bitrate_of_last(LAST_SECONDS) / 1000.0;
    assert!(
        rate < LINK_KBITS as f64,
        "last {LAST_SECONDS} s: {rate:.0} kbit/s over a {LINK_KBITS} kbit/s link"
    );
    let lost = thin.lost_share_of_last(LAST_SECONDS);
    assert!(
        lost <= LOST_SHARE,
        "last {LAST_SECONDS} s: {:.1}% of the video lost (allowed {:.0}%)",
        lost * 100.0,
        LOST_SHARE * 100.0
    );
    // The recording holds the whole run, decodable to its end.
    let recorded = decode_file(&path);
    let seconds = match (recorded.first_pts, recorded.last_end) {
        (Some(first), Some(last)) => (last - first).seconds_f64(),
        _ => 0.0,
    };
    assert!(
        seconds >= thin.last().at - 3.0,
        "the recording holds {seconds:.1} s of a {:.1} s run",
        thin.last().at
    );
    assert!(
        recorded.video_frames as f64 >= seconds * 10.0,
        "{} frames in {seconds:.1} s",
        recorded.video_frames
    );
    recorder.interrupt();
}
