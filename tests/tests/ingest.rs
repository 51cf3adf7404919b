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
/// How much later than towards a browser the recorder's ramp may reach
/// the same picture size: Chromium steps up every ~5 s, and two runs of
/// the same call differ by up to a step.
const RAMP_TOLERANCE_SECONDS: f64 = 5.0;
/// The transport-wide congestion control header extension.
const TWCC_URI: &str = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";

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
    // As fast: the largest picture the call between browsers reached, no
    // later towards the recorder (give or take what two runs of the same
    // call differ by: steps come at ~5 s intervals).
    let reached = |ramp: &Ramp| ramp.time_to_width(reference.width);
    let (to_recorder_at, to_browser_at) = (reached(&to_recorder), reached(&to_browser));
    println!(
        "{}x{} reached after {to_recorder_at:?} s towards the recorder, {to_browser_at:?} s towards a browser",
        reference.width, reference.height
    );
    assert!(
        to_recorder_at
            .zip(to_browser_at)
            .is_some_and(|(ours, theirs)| ours <= theirs + RAMP_TOLERANCE_SECONDS),
        "{}x{} reached after {to_recorder_at:?} s towards the recorder, {to_browser_at:?} s \
         towards a browser (tolerance {RAMP_TOLERANCE_SECONDS} s)",
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
/// recording plays throughout. Then the link narrows below what the
/// browser sends (Chromium's fake camera wants ~700 kbit/s, which fits in
/// 1 Mbit/s): only our receiver's feedback can tell it to back off, and
/// it does, without sustained loss, the recording still playing.
#[test]
fn a_publisher_on_a_one_megabit_uplink_settles_below_it() {
    let _serial = serial();
    init();
    const LINK_KBITS: u32 = 1000;
    /// The narrower link of the second phase: well under what the
    /// browser sends on the first.
    const NARROW_KBITS: u32 = 400;
    const PHASE_SECONDS: f64 = 40.0;
    /// Loss the receiver may report over the last seconds: probing the
    /// link costs a few packets now and then; congestion it does not
    /// back off from costs many more.
    const LOST_SHARE: f64 = 0.03;
    /// On a link that binds, Chromium's estimate swings around the link's
    /// rate (300–460 kbit/s on 400 here) and each swing above it costs
    /// packets in the link's short queue (50 ms): 2.2 and 4.4 per 100 in
    /// two runs. Its loss-based control holds its rate below 10% loss and
    /// cuts it above; 8% leaves room under that, where a browser that did
    /// not back off would lose far more (what it sent before: ~750 kbit/s
    /// into 400 is ~45%).
    const BINDING_LOST_SHARE: f64 = 0.08;
    /// Chromium's fake camera sends about 20 fps on this 2-core machine
    /// while a browser and a recorder run; half of that is a picture that
    /// keeps moving.
    const MIN_FPS: f64 = 10.0;
    /// A lost keyframe costs a PLI (at most one per 500 ms) and a new
    /// keyframe across a link with a 50 ms queue: well under a second.
    const MAX_GAP_SECONDS: f64 = 1.0;
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
    let thin = ramp::sampled_until(&browser, PHASE_SECONDS);
    let narrowed_at = thin.last().at;
    host.limit_outgoing_rate(NARROW_KBITS);
    let narrow = ramp::collect(&browser, narrowed_at + PHASE_SECONDS);
    stop_publishing(&browser, &mut recorder);
    println!(
        "{}",
        narrow.table(&format!(
            "Chromium on a {LINK_KBITS} kbit/s uplink → peer record, {NARROW_KBITS} kbit/s from {narrowed_at:.0} s"
        ))
    );
    check_settled_below(&thin, LINK_KBITS, LOST_SHARE);
    let before = thin.bitrate_of_last(LAST_SECONDS) / 1000.0;
    assert!(
        before > NARROW_KBITS as f64 * 1.25,
        "the browser sent {before:.0} kbit/s before the link narrowed to {NARROW_KBITS}: \
         the narrower link would not bind"
    );
    check_settled_below(&narrow, NARROW_KBITS, BINDING_LOST_SHARE);

    // The recording keeps playing: frames all through its last seconds,
    // no long freeze among them.
    let times = ramp::decoded_video_times(&path);
    let (frames, longest_gap) = ramp::frames_and_longest_gap_of_last(&times, LAST_SECONDS);
    println!(
        "recording, last {LAST_SECONDS} s: {frames} frames, longest gap {:.0} ms",
        longest_gap * 1000.0
    );
    assert!(
        frames as f64 >= LAST_SECONDS * MIN_FPS,
        "the recording's last {LAST_SECONDS} s hold {frames} frames (at least {:.0} wanted)",
        LAST_SECONDS * MIN_FPS
    );
    assert!(
        longest_gap <= MAX_GAP_SECONDS,
        "the recording's last {LAST_SECONDS} s freeze for {longest_gap:.2} s"
    );
    // The recording holds the whole run, decodable to its end.
    let recorded = decode_file(&path);
    let seconds = match (recorded.first_pts, recorded.last_end) {
        (Some(first), Some(last)) => (last - first).seconds_f64(),
        _ => 0.0,
    };
    assert!(
        seconds >= narrow.last().at - 3.0,
        "the recording holds {seconds:.1} s of a {:.1} s run",
        narrow.last().at
    );
    assert!(
        recorded.video_frames as f64 >= seconds * MIN_FPS,
        "{} frames in {seconds:.1} s",
        recorded.video_frames
    );
    recorder.interrupt();
}

/// Over `ramp`'s last seconds the browser sent below `link_kbits`, and
/// little of it was lost: NACKed by our receiver (every gap in the
/// sequence numbers makes its jitter buffer ask), or lost after
/// retransmissions as our receiver reports say, when the browser shows
/// them (it showed no `remote-inbound-rtp` for peer record at the end of
/// one run of two, so that part is not required).
fn check_settled_below(ramp: &Ramp, link_kbits: u32, lost_share: f64) {
    let rate = ramp.bitrate_of_last(LAST_SECONDS) / 1000.0;
    let nacked = ramp.nacked_share_of_last(LAST_SECONDS);
    println!(
        "{link_kbits} kbit/s link, last {LAST_SECONDS} s: {rate:.0} kbit/s sent, {:.2} NACKs per 100 video packets",
        nacked * 100.0
    );
    assert!(
        rate < link_kbits as f64,
        "last {LAST_SECONDS} s: {rate:.0} kbit/s over a {link_kbits} kbit/s link"
    );
    assert!(
        nacked <= lost_share,
        "{link_kbits} kbit/s link, last {LAST_SECONDS} s: {:.1} NACKs per 100 video packets \
         (allowed {:.0})",
        nacked * 100.0,
        lost_share * 100.0
    );
    if ramp.last().loss_reported {
        let lost = ramp.lost_share_of_last(LAST_SECONDS);
        assert!(
            lost <= lost_share,
            "{link_kbits} kbit/s link, last {LAST_SECONDS} s: {:.1}% of the video lost \
             (allowed {:.0}%)",
            lost * 100.0,
            lost_share * 100.0
        );
    } else {
        println!("the browser shows no receiver report from peer record (remote-inbound-rtp)");
    }
}

/// gst-plugins-rs's reference plugin directory (scripts/test.sh sets it).
fn reference_plugins() -> String {
    let dir = std::env::var("GST_PEER_REFERENCE_PLUGINS").unwrap_or_default();
    assert!(
        std::path::Path::new(&dir)
            .join("libgstrswebrtc.so")
            .exists(),
        "gst-plugins-rs's webrtc plugin is not built: run `bash scripts/reference-peers.sh` and \
         set GST_PEER_REFERENCE_PLUGINS to the directory it prints (scripts/test.sh does both); \
         got {dir:?}"
    );
    dir
}

/// What `reference_sender` says its sender saw, one line every 500 ms.
#[derive(Debug, Clone, Copy)]
struct SenderSample {
    at: f64,
    /// Transport-cc feedback reports its RTP session processed so far.
    feedback: u64,
    /// The target bitrate its congestion control gave the encoder.
    encoder_bitrate: f64,
    /// Loss over the last feedback interval, as the feedback tells it.
    loss_pct: f64,
}

/// Reads `reference_sender`'s lines for `seconds`.
fn sender_samples(sender: &mut ChildProcess, seconds: f64) -> Vec<SenderSample> {
    let start = std::time::Instant::now();
    let mut samples = Vec::new();
    while start.elapsed().as_secs_f64() < seconds {
        let line = sender.wait_line("\"at\":", Duration::from_secs(5));
        let value: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        let number = |key: &str| value[key].as_f64().unwrap_or(0.0);
        samples.push(SenderSample {
            at: number("at"),
            feedback: number("feedback") as u64,
            encoder_bitrate: number("encoder_bitrate"),
            loss_pct: number("loss_pct"),
        });
    }
    samples
}

fn sender_table(label: &str, samples: &[SenderSample]) -> String {
    let mut text = format!("{label}\n  t (s)  target kbit/s  feedback  loss %\n");
    let mut next = 0.0;
    for sample in samples {
        if sample.at >= next {
            text += &format!(
                "  {:>5.1}  {:>13.0}  {:>8}  {:>6.1}\n",
                sample.at,
                sample.encoder_bitrate / 1000.0,
                sample.feedback,
                sample.loss_pct
            );
            next = sample.at + 5.0;
        }
    }
    text
}

/// A second sender stack, GStreamer's own (gst-plugins-rs 0.15's
/// whepserversink, its "homegrown" congestion control, which runs only on
/// transport-cc feedback), sending to peersrc over WHEP, peersrc
/// offering: our offer asks for transport-cc, the sender's RTP session
/// gets our feedback, its estimate ramps up on a free link and backs off
/// under a 1 Mbit/s limit on its uplink, and the picture keeps arriving.
#[test]
fn their_webrtcsink_ramps_and_backs_off_on_our_transport_cc_feedback() {
    let _serial = serial();
    init();
    const START_KBITS: f64 = 300.0;
    const MAX_KBITS: f64 = 3000.0;
    const LINK_KBITS: f64 = 1000.0;
    let host = IsolatedHost::create();
    let port = std::net::TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // A moving zone plate: detail enough that vp8enc spends what the
    // estimate allows (~2.8 Mbit/s at a 3 Mbit/s target) and still meets
    // a low target (~360 kbit/s at 300k). Noise (pattern=snow) cannot be
    // squeezed below ~1 Mbit/s at this size: under the limit it drowned
    // the link whatever the target.
    let description = format!(
        "whepserversink name=s stun-server=\"\" congestion-control=homegrown enable-mitigation-modes=none \
         start-bitrate={start} min-bitrate=100000 max-bitrate={max} video-caps=video/x-vp8 \
         signaller::host-addr=http://{far}:{port} signaller::stun-server=\"\" \
         videotestsrc is-live=true pattern=zone-plate kx2=20 ky2=20 kt=1 ! \
         video/x-raw,width=640,height=360,framerate=30/1 ! videoconvert ! queue ! s.",
        start = START_KBITS as u32 * 1000,
        max = MAX_KBITS as u32 * 1000,
        far = host.far_address,
    );
    let mut sender = ChildProcess::spawn(
        host.command(env!("CARGO_BIN_EXE_reference_sender"))
            .env("GST_PLUGIN_PATH", reference_plugins())
            .env("GST_DEBUG", "*:1")
            .arg(&description)
            .stdin(std::process::Stdio::null()),
    );
    peer_tests::wait_until(Duration::from_secs(30), "their WHEP server", || {
        std::net::TcpStream::connect((host.far_address.as_str(), port))
            .ok()
            .map(|_| ())
    });
    let receiver = peer_tests::Receiver::start(&format!(
        "uri=whep+http://{}:{port}/whep/endpoint ice-addresses={}",
        host.far_address, host.near_address
    ));
    receiver.wait(Duration::from_secs(30), "their first frames", |r| {
        r.video_frames >= 10
    });

    let offer = sender.wait_line("\"offer\":", Duration::from_secs(5));
    let offer: serde_json::Value = serde_json::from_str(&offer).unwrap();
    let offer = offer["offer"].as_str().unwrap_or_default().to_owned();
    let video = offer
        .split("m=")
        .find(|section| section.starts_with("video"))
        .unwrap_or_default();
    assert!(
        video.contains(&format!("a=extmap:3 {TWCC_URI}")) && video.contains(" transport-cc"),
        "our offer's video section asks for transport-cc:\n{offer}"
    );

    // A free link: the estimate grows on our feedback.
    let free = sender_samples(&mut sender, 20.0);
    // Their uplink limited: the estimate comes down, then holds; the
    // last LAST_SECONDS are measured.
    host.limit_outgoing_rate(LINK_KBITS as u32);
    let mut limited = sender_samples(&mut sender, 20.0);
    let frames_before = receiver.frames();
    receiver.reset_freezes();
    let settled = sender_samples(&mut sender, LAST_SECONDS);
    let received = receiver.snapshot();
    let frames_settled = received.video_frames - frames_before;
    limited.extend(settled.iter().copied());
    println!(
        "{}",
        sender_table("webrtcsink (homegrown) → peersrc, free link", &free)
    );
    println!(
        "{}",
        sender_table(
            "webrtcsink (homegrown) → peersrc, 1 Mbit/s uplink",
            &limited
        )
    );
    drop(receiver);
    sender.kill();

    let end_free = free.last().expect("samples");
    assert!(
        end_free.feedback >= 20,
        "the sender processed {} transport-cc feedback reports in {:.0} s",
        end_free.feedback,
        end_free.at
    );
    assert!(
        end_free.encoder_bitrate >= 3.0 * START_KBITS * 1000.0,
        "the sender's estimate went from {START_KBITS} to {:.0} kbit/s on a free link",
        end_free.encoder_bitrate / 1000.0
    );
    let end_limited = limited.last().expect("samples");
    assert!(
        end_limited.feedback > end_free.feedback,
        "feedback stopped under the limit"
    );
    let mean = |samples: &[SenderSample], value: fn(&SenderSample) -> f64| {
        samples.iter().map(value).sum::<f64>() / samples.len().max(1) as f64
    };
    let (target, loss) = (
        mean(&settled, |s| s.encoder_bitrate),
        mean(&settled, |s| s.loss_pct),
    );
    let longest_gap = received.freezes.longest_gap_now();
    println!(
        "last {LAST_SECONDS} s under the limit: target {:.0} kbit/s on average, {loss:.1}% lost \
         (their feedback), {frames_settled} frames at peersrc, longest gap {longest_gap:?}",
        target / 1000.0
    );
    assert!(
        target < LINK_KBITS * 1000.0,
        "under a {LINK_KBITS} kbit/s uplink the sender aims at {:.0} kbit/s on average",
        target / 1000.0
    );
    // The picture keeps coming, at its size.
    assert_eq!((received.width, received.height), (640, 360));
    assert!(
        frames_settled as f64 >= LAST_SECONDS * 15.0,
        "{frames_settled} frames in the last {LAST_SECONDS} s under the limit (30 fps sent)"
    );
    assert!(
        longest_gap <= Duration::from_secs(1),
        "the picture froze for {longest_gap:?} in the last {LAST_SECONDS} s under the limit"
    );
    // Homegrown probes: it raises its target by 3 % per report until
    // the feedback shows loss, then cuts it (516 → 1318 → 926 kbit/s
    // within 10 s in one run), so a few percent of loss on average is
    // how it keeps finding the link (5 % measured). Congestion it did
    // not back off from loses far more: 75 % when its encoder could
    // not meet the target (pattern=snow).
    assert!(
        loss <= 10.0,
        "last {LAST_SECONDS} s under the limit: {loss:.1}% lost on average, as their feedback says"
    );
}
