//! The signalling seam as its users meet it: a pipeline watched through
//! WHEP (Chromium's page, our own peersrc as a WHEP client, raw HTTP for
//! every status), peersink publishing to a WHIP endpoint and recorded, and
//! our own protocol with the viewer offering (a browser to peersink,
//! peersrc to a browser).

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use gst::prelude::*;
use peer_signalling::server::ServerConfig;
use peer_signalling::wish::WishConfig;
use peer_tests::browser::Browser;
use peer_tests::http::request;
use peer_tests::media::{close_colour, decode_file};
use peer_tests::pages::{VIDEO_PIXEL, wait_playing};
use peer_tests::process::ChildProcess;
use peer_tests::ws::RawPeer;
use peer_tests::{
    RUNTIME, Receiver, TestServer, dominant_frequency, init, play, sender, wait_until,
};
use serde_json::{Value, json};

const BLUE: u32 = 0xff2050d0;
const BLUE_RGB: [u8; 3] = [0x20, 0x50, 0xd0];

fn rgb(value: &Value) -> [u8; 3] {
    let array = value.as_array().expect("an [r, g, b] array");
    [0, 1, 2].map(|i| array[i].as_u64().unwrap() as u8)
}

/// Size and centre pixel of the page's <video>, and its playback time.
/// The loudest frequency of `stream` (a JS expression), by an AnalyserNode.
fn audio_peak(browser: &Browser, stream: &str) -> f64 {
    let script = format!(
        r#"
        const done = arguments[arguments.length - 1];
        const context = new AudioContext();
        const source = context.createMediaStreamSource({stream});
        const analyser = context.createAnalyser();
        analyser.fftSize = 16384;
        source.connect(analyser);
        setTimeout(() => {{
          const bins = new Float32Array(analyser.frequencyBinCount);
          analyser.getFloatFrequencyData(bins);
          let best = 0;
          for (let i = 1; i < bins.length; i++) if (bins[i] > bins[best]) best = i;
          done(best * context.sampleRate / analyser.fftSize);
        }}, 1500);
        "#
    );
    browser.eval_async(&script, vec![]).as_f64().unwrap()
}

/// A blue 640x360 picture and a 440 Hz tone from peersink `cam` in `room`.
fn broadcast(server: &TestServer, room: &str) -> gst::Pipeline {
    let producer = sender(
        &format!("uri={} peer-id=cam", server.room_uri(room)),
        640,
        360,
        BLUE,
        440.0,
    );
    play(&producer);
    // Registered before anyone asks for it.
    peer_tests::wait_element_message(&producer, "peer-ready", Duration::from_secs(10));
    producer
}

/// The WHEP player's decoded frames, ICE username fragment in use and
/// connection state.
fn transport_state(browser: &Browser) -> Value {
    browser.eval_async(
        r#"const done = arguments[0];
           window.peerPage.player.pc.getStats().then((report) => {
             let frames = 0, ufrag = null;
             report.forEach((e) => {
               if (e.type === 'inbound-rtp' && e.kind === 'video') frames = e.framesDecoded;
               if (e.type === 'transport') ufrag = e.iceLocalUsernameFragment;
             });
             done({ frames, ufrag, state: window.peerPage.player.pc.connectionState });
           });"#,
        vec![],
    )
}

/// The session ids of peersink's viewers.
fn viewer_sessions(sink: &gst::Element) -> Vec<String> {
    let stats = sink.property::<gst::Structure>("stats");
    stats
        .iter()
        .filter(|(_, value)| value.get::<gst::Structure>().is_ok())
        .map(|(name, _)| name.to_string())
        .collect()
}

fn viewers(producer: &gst::Pipeline) -> u32 {
    producer.by_name("sink").unwrap().property::<u32>("viewers")
}

#[test]
fn chromium_plays_a_pipeline_through_the_whep_page_and_stops_with_delete() {
    init();
    let server = TestServer::start();
    let producer = broadcast(&server, "show");
    let browser = Browser::start(&[]);
    browser.goto(&format!(
        "http://127.0.0.1:{}/play?url=/whep/show/cam",
        server.port()
    ));
    let frame = wait_playing(&browser, Duration::from_secs(30));
    assert_eq!(
        (frame["width"].as_u64(), frame["height"].as_u64()),
        (Some(640), Some(360)),
        "{frame}"
    );
    assert!(close_colour(rgb(&frame["rgb"]), BLUE_RGB, 20), "{frame}");
    let frequency = audio_peak(&browser, "window.peerPage.player.stream");
    assert!(
        (frequency - 440.0).abs() < 6.0,
        "loudest frequency {frequency}"
    );
    assert_eq!(
        viewers(&producer),
        1,
        "a WHEP player is a viewer of peersink"
    );
    let resource = browser.eval("return window.peerPage.player.resource;", vec![]);
    let resource = resource.as_str().unwrap().to_owned();
    assert!(
        !resource.contains("whep-"),
        "the resource is not the peer id the room sees: {resource}"
    );

    // An ICE restart keeps the session: same viewer, pictures go on.
    let sink = producer.by_name("sink").unwrap();
    let session_before = viewer_sessions(&sink);
    let ufrag_before = transport_state(&browser)["ufrag"].clone();
    let restarted = browser.eval_async(
        r#"const done = arguments[0]; const p = window.peerPage.player;
           p.restartIce().then((status) => done({ status, etag: p.etag }), (e) => done({ error: String(e) }));"#,
        vec![],
    );
    assert_eq!(restarted["status"], json!(200), "ICE restart: {restarted}");
    let before = transport_state(&browser);
    // Connected again on the new credentials (the transport's ICE
    // generation changed), and pictures keep coming.
    wait_until(
        Duration::from_secs(15),
        "frames after the ICE restart",
        || {
            let now = transport_state(&browser);
            (now["state"] == "connected"
                && now["ufrag"] != ufrag_before
                && now["frames"].as_u64() >= before["frames"].as_u64().map(|f| f + 60))
            .then_some(())
        },
    );
    assert_eq!(viewer_sessions(&sink), session_before, "the same session");
    let frame = browser.eval(VIDEO_PIXEL, vec![]);
    assert!(close_colour(rgb(&frame["rgb"]), BLUE_RGB, 20), "{frame}");

    let status = browser.eval_async(
        "const done = arguments[0]; window.peerPage.player.stop().then(done, (e) => done(String(e)));",
        vec![],
    );
    assert_eq!(status, json!(200), "DELETE of the WHEP session");
    wait_until(Duration::from_secs(10), "the viewer to leave", || {
        (viewers(&producer) == 0).then_some(())
    });
    let _ = producer.set_state(gst::State::Null);
}

/// The /play page keeps playing by itself: its producer stops (the WHEP
/// session is gone with it) and a new one starts under the same id; the
/// page notices the broken connection, asks for a new session until there
/// is something to play again (409 meanwhile), and shows the new picture
/// with nobody touching it.
#[test]
fn the_play_page_plays_again_when_its_producer_comes_back() {
    const GREEN: u32 = 0xff30c040;
    const GREEN_RGB: [u8; 3] = [0x30, 0xc0, 0x40];
    init();
    let server = TestServer::start();
    let first = broadcast(&server, "again");
    let browser = Browser::start(&[]);
    browser.goto(&format!(
        "http://127.0.0.1:{}/play?url=/whep/again/cam",
        server.port()
    ));
    let frame = wait_playing(&browser, Duration::from_secs(30));
    assert!(close_colour(rgb(&frame["rgb"]), BLUE_RGB, 20), "{frame}");

    let _ = first.set_state(gst::State::Null);
    drop(first);
    let stopped = Instant::now();
    browser.wait_for(
        "window.peerPage.state === 'reconnecting'",
        Duration::from_secs(40),
    );
    let noticed = stopped.elapsed();
    // Nothing to play for a while: the page keeps asking.
    let second = sender(
        &format!("uri={} peer-id=cam", server.room_uri("again")),
        640,
        360,
        GREEN,
        440.0,
    );
    play(&second);
    let restarted = Instant::now();
    browser.wait_for(
        "window.peerPage.state === 'playing' && window.peerPage.reconnects.length === 1",
        Duration::from_secs(30),
    );
    let back_after = restarted.elapsed();
    let reconnects = browser.eval("return window.peerPage.reconnects;", vec![]);
    println!(
        "the page noticed the producer gone after {noticed:?}, played again {back_after:?} after \
         the new one started: {reconnects}"
    );
    assert_eq!(reconnects[0]["how"], json!("new-session"), "{reconnects}");
    // The new producer's picture, not a frozen old frame.
    let frame = wait_until(Duration::from_secs(10), "the new picture", || {
        let frame = browser.eval(VIDEO_PIXEL, vec![]);
        close_colour(rgb(&frame["rgb"]), GREEN_RGB, 20).then_some(frame)
    });
    assert_eq!(
        (frame["width"].as_u64(), frame["height"].as_u64()),
        (Some(640), Some(360)),
        "{frame}"
    );
    assert_eq!(viewers(&second), 1, "the page is the new producer's viewer");
    let _ = second.set_state(gst::State::Null);
}

#[test]
fn peersrc_plays_a_whep_endpoint_with_the_sent_picture_and_tone() {
    init();
    let server = TestServer::start();
    let producer = broadcast(&server, "show");
    // The room's first producer, then the one named.
    for path in ["/whep/show", "/whep/show/cam"] {
        let uri = format!("whep+http://127.0.0.1:{}{path}", server.port());
        let receiver = Receiver::start(&format!("uri={uri}"));
        let received = receiver.wait(Duration::from_secs(30), "frames and audio", |r| {
            r.video_frames >= 20 && r.audio.len() >= 48_000
        });
        assert_eq!((received.width, received.height), (640, 360), "{path}");
        assert!(
            close_colour(received.centre_rgb, BLUE_RGB, 16),
            "{path}: {:?}",
            received.centre_rgb
        );
        let frequency = dominant_frequency(&received.audio, 48_000);
        assert!((frequency - 440.0).abs() < 3.0, "{path}: {frequency} Hz");
        let signaller = receiver
            .peersrc
            .dynamic_cast_ref::<gst::ChildProxy>()
            .unwrap()
            .child_by_name("signaller")
            .unwrap();
        assert_eq!(
            signaller.property::<Option<String>>("protocol").as_deref(),
            Some("whep")
        );
        let resource = signaller
            .property::<Option<String>>("resource-url")
            .unwrap();
        assert!(
            resource.starts_with(&format!("http://127.0.0.1:{}/whep/show/", server.port())),
            "{resource}"
        );
        drop(receiver);
        wait_until(Duration::from_secs(10), "DELETE to end the viewer", || {
            (viewers(&producer) == 0).then_some(())
        });
    }
    let _ = producer.set_state(gst::State::Null);
}

#[test]
fn a_whep_endpoint_that_is_not_there_is_an_error_naming_it() {
    init();
    let server = TestServer::start();
    let receiver = Receiver::start(&format!(
        "uri=whep+http://127.0.0.1:{}/whep/empty",
        server.port()
    ));
    let error = peer_tests::first_error(&receiver.pipeline, Duration::from_secs(20))
        .expect("an error on the bus");
    assert!(
        error.contains("409") && error.contains("nothing is published in room \"empty\""),
        "{error}"
    );
    drop(receiver);
    let nobody = format!("uri=whep+http://127.0.0.1:{}/whep/x", free_port());
    let receiver = Receiver::start(&nobody);
    let error = peer_tests::first_error(&receiver.pipeline, Duration::from_secs(20))
        .expect("an error on the bus");
    assert!(
        error.contains("cannot reach") && error.contains("refused"),
        "{error}"
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `peer record` with its own server, recording room "studio".
struct Recorder {
    process: ChildProcess,
    port: u16,
    dir: PathBuf,
}

impl Drop for Recorder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Recorder {
    fn start() -> Recorder {
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("gst-peer-whipout-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let process = ChildProcess::spawn(
            Command::new(peer_tests::peer_binary())
                .args(["record", "--room", "studio", "--port", &port.to_string()])
                .args(["--summary-interval", "0", "--dir"])
                .arg(&dir),
        );
        let mut recorder = Recorder { process, port, dir };
        recorder
            .process
            .wait_line("WHIP publishers", Duration::from_secs(20));
        recorder
    }
}

#[test]
fn peersink_publishes_over_whip_and_peer_record_records_every_frame() {
    init();
    let mut recorder = Recorder::start();
    let producer = sender(
        &format!("uri=whip+http://127.0.0.1:{}/whip/studio", recorder.port),
        640,
        360,
        BLUE,
        440.0,
    );
    play(&producer);
    let line = recorder
        .process
        .wait_line("recording whip-", Duration::from_secs(30));
    let path = PathBuf::from(line.split(" → ").nth(1).unwrap().trim());
    let publisher = line
        .trim_start_matches("recording ")
        .split(' ')
        .next()
        .unwrap()
        .to_owned();
    let signaller = producer
        .by_name("sink")
        .unwrap()
        .dynamic_cast::<gst::ChildProxy>()
        .unwrap()
        .child_by_name("signaller")
        .unwrap();
    wait_until(Duration::from_secs(10), "the resource URL", || {
        signaller.property::<Option<String>>("resource-url")
    });
    std::thread::sleep(Duration::from_secs(5));
    // Stopping DELETEs the session: the publisher leaves, the file ends.
    producer.set_state(gst::State::Null).unwrap();
    let finished = recorder
        .process
        .wait_line(&format!("finished {publisher}:"), Duration::from_secs(15));
    assert!(finished.contains("publisher left"), "{finished}");
    let decoded = decode_file(&path);
    assert_eq!((decoded.width, decoded.height), (640, 360));
    assert!(
        close_colour(decoded.centre_rgb, BLUE_RGB, 16),
        "{:?}",
        decoded.centre_rgb
    );
    // About five seconds at 30 fps, counted frame by frame.
    assert!(
        decoded.video_frames >= 120,
        "{} video frames recorded",
        decoded.video_frames
    );
    assert!(
        decoded.audio_buffers > 100,
        "audio: {}",
        decoded.audio_buffers
    );
    assert!(
        signaller
            .property::<Option<String>>("resource-url")
            .is_none(),
        "forgotten once deleted"
    );
}

#[test]
fn a_browser_that_offers_gets_an_answer_from_peersink() {
    init();
    let server = TestServer::start();
    let producer = broadcast(&server, "offers");
    let browser = Browser::start(&[]);
    browser.goto(&format!(
        "http://127.0.0.1:{}/watch?room=offers&producer=cam&offer=1",
        server.port()
    ));
    let frame = wait_playing(&browser, Duration::from_secs(30));
    assert_eq!(
        (frame["width"].as_u64(), frame["height"].as_u64()),
        (Some(640), Some(360)),
        "{frame}"
    );
    assert!(close_colour(rgb(&frame["rgb"]), BLUE_RGB, 20), "{frame}");
    assert_eq!(
        browser.eval("return window.peerPage.session.offerer;", vec![]),
        json!(true),
        "the page made the offer"
    );
    let _ = producer.set_state(gst::State::Null);
}

#[test]
fn peersrc_offers_to_a_browser_that_publishes_its_camera() {
    init();
    let server = TestServer::start();
    let browser = Browser::start(&[]);
    browser.goto(&format!(
        "http://127.0.0.1:{}/publish?room=cams&id=phone&width=640&height=360&fps=30&autostart=1",
        server.port()
    ));
    browser.wait_for(
        "window.peerPage.state === 'publishing'",
        Duration::from_secs(20),
    );
    let receiver = Receiver::start(&format!(
        "uri={}?viewer-offer=true producer=phone",
        server.room_uri("cams")
    ));
    // The browser may start below the asked size and climb as its
    // bandwidth estimate grows (see docs/benchmarks/ingest.md).
    let received = receiver.wait(Duration::from_secs(40), "the camera at 640x360", |r| {
        r.video_frames >= 20 && (r.width, r.height) == (640, 360)
    });
    assert_eq!((received.width, received.height), (640, 360));
    let signaller = receiver
        .peersrc
        .dynamic_cast_ref::<gst::ChildProxy>()
        .unwrap()
        .child_by_name("signaller")
        .unwrap();
    assert_eq!(
        signaller.property::<Option<String>>("protocol").as_deref(),
        Some("native")
    );
}

/// A real offer to receive VP8 and Opus, as a WHEP player makes it.
fn player_offer() -> String {
    let webrtcbin = gst::ElementFactory::make("webrtcbin")
        .property_from_str("bundle-policy", "max-bundle")
        .build()
        .unwrap();
    // webrtcbin runs its operations once playing.
    let pipeline = gst::Pipeline::new();
    pipeline.add(&webrtcbin).unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    for caps in [
        "application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000",
        "application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000,encoding-params=(string)2",
    ] {
        let caps = gst::Caps::from_str(caps).unwrap();
        webrtcbin.emit_by_name::<gst_webrtc::WebRTCRTPTransceiver>(
            "add-transceiver",
            &[&gst_webrtc::WebRTCRTPTransceiverDirection::Recvonly, &caps],
        );
    }
    let promise = gst::Promise::new();
    webrtcbin.emit_by_name::<()>("create-offer", &[&None::<gst::Structure>, &promise]);
    promise.wait();
    let offer = promise
        .get_reply()
        .unwrap()
        .get::<gst_webrtc::WebRTCSessionDescription>("offer")
        .unwrap();
    let text = offer.sdp().as_text().unwrap();
    pipeline.set_state(gst::State::Null).unwrap();
    text
}

use std::str::FromStr;

/// Path, request headers, body, expected status, a word the reply holds.
type PostCase<'a> = (&'a str, Vec<(&'a str, &'a str)>, String, u16, &'a str);

const SDP: (&str, &str) = ("Content-Type", "application/sdp");
const FRAG: (&str, &str) = ("Content-Type", "application/trickle-ice-sdpfrag");
const AUTH: (&str, &str) = ("Authorization", "Bearer watch-me");

/// Every WHEP status over real sockets, with peersink answering; the
/// server and the /ws protocol keep working throughout.
#[test]
fn whep_over_http_statuses_and_the_server_keeps_running() {
    init();
    let server = TestServer::start_with(ServerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        whep: WishConfig {
            token: Some("watch-me".into()),
            ..WishConfig::default()
        },
        ..ServerConfig::default()
    });
    let port = server.port();
    let offer = player_offer();
    // A viewer in the room that is not a producer.
    let url = server.ws_url();
    let mut bystander = RUNTIME.block_on(async {
        let mut peer = RawPeer::connect(&url).await;
        peer.join("bystander", "live", false).await;
        peer
    });

    let nothing = RUNTIME.block_on(request(
        port,
        "POST",
        "/whep/live",
        &[SDP, AUTH],
        offer.as_bytes(),
    ));
    assert_eq!(nothing.status, 409, "{nothing:?}");
    assert_eq!(nothing.header("retry-after"), Some("5"));
    assert!(
        nothing.body.contains("nothing is published"),
        "{}",
        nothing.body
    );

    let producer = broadcast(&server, "live");
    let cases: Vec<PostCase> = vec![
        ("/whep/live", vec![SDP], offer.clone(), 401, "Bearer"),
        (
            "/whep/live",
            vec![SDP, ("Authorization", "Bearer nope")],
            offer.clone(),
            401,
            "not valid",
        ),
        (
            "/whep/live",
            vec![("Content-Type", "text/plain"), AUTH],
            offer.clone(),
            415,
            "application/sdp",
        ),
        ("/whep/live", vec![SDP, AUTH], "hello".into(), 400, "v=0"),
        (
            "/whep/live",
            vec![SDP, AUTH],
            offer.replace("recvonly", "sendonly"),
            400,
            "receives no media",
        ),
        (
            "/whep/live",
            vec![SDP, AUTH],
            "v=0\r\n".repeat(20_000),
            413,
            "limit",
        ),
        (
            "/whep/live/bystander",
            vec![SDP, AUTH],
            offer.clone(),
            404,
            "publishes nothing",
        ),
        (
            "/whep/live/ghost",
            vec![SDP, AUTH],
            offer.clone(),
            409,
            "\"ghost\"",
        ),
        (
            "/whep/bad%20room",
            vec![SDP, AUTH],
            offer.clone(),
            400,
            "room",
        ),
    ];
    for (path, headers, body, status, needle) in cases {
        let response = RUNTIME.block_on(request(port, "POST", path, &headers, body.as_bytes()));
        assert_eq!(response.status, status, "POST {path}: {response:?}");
        assert!(
            response.body.contains(needle),
            "POST {path}: {}",
            response.body
        );
    }
    let options = RUNTIME.block_on(request(port, "OPTIONS", "/whep/live", &[], b""));
    assert_eq!(
        options.header("accept-post"),
        Some("application/sdp"),
        "{options:?}"
    );

    let started = Instant::now();
    let created = RUNTIME.block_on(request(
        port,
        "POST",
        "/whep/live",
        &[SDP, AUTH],
        offer.as_bytes(),
    ));
    assert_eq!(created.status, 201, "{created:?}");
    eprintln!(
        "WHEP: POST -> 201 in {:.0} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );
    assert_eq!(created.header("content-type"), Some("application/sdp"));
    assert!(
        created.body.contains("a=candidate:"),
        "the answer carries candidates: {}",
        created.body
    );
    assert!(created.body.contains("a=sendonly"), "{}", created.body);
    let location = created.header("location").unwrap().to_owned();
    let etag = created.header("etag").unwrap().to_owned();
    assert!(location.starts_with("/whep/live/"), "{location}");
    assert_eq!(viewers(&producer), 1);
    // The room sees an unrelated id.
    let joined = RUNTIME.block_on(async {
        loop {
            let joined = bystander.recv_type("peer-joined").await;
            if joined["peer"]["id"].as_str().unwrap().starts_with("whep-") {
                return joined;
            }
        }
    });
    let peer_id = joined["peer"]["id"].as_str().unwrap();
    let resource = location.rsplit('/').next().unwrap();
    assert!(
        peer_id.starts_with("whep-") && !peer_id.contains(resource),
        "{joined}"
    );

    let candidate =
        "a=mid:0\r\na=candidate:1 1 UDP 2015363327 127.0.0.1 9 typ host\r\na=end-of-candidates\r\n";
    let trickle = RUNTIME.block_on(request(
        port,
        "PATCH",
        &location,
        &[FRAG, AUTH, ("If-Match", &etag)],
        candidate.as_bytes(),
    ));
    assert_eq!(trickle.status, 204, "{trickle:?}");
    let stale = RUNTIME.block_on(request(
        port,
        "PATCH",
        &location,
        &[FRAG, AUTH, ("If-Match", "\"stale\"")],
        candidate.as_bytes(),
    ));
    assert_eq!(stale.status, 412, "{stale:?}");
    let wrong_type = RUNTIME.block_on(request(
        port,
        "PATCH",
        &location,
        &[SDP, AUTH],
        candidate.as_bytes(),
    ));
    assert_eq!(wrong_type.status, 415, "{wrong_type:?}");

    // Nobody but the holder of the resource URL (and the token) ends it.
    let stranger = RUNTIME.block_on(request(
        port,
        "DELETE",
        &format!("/whep/live/{peer_id}"),
        &[AUTH],
        b"",
    ));
    assert_eq!(stranger.status, 404, "{stranger:?}");
    let guessed = RUNTIME.block_on(request(
        port,
        "DELETE",
        "/whep/live/aaaaaaaaaaaaaaaaaaaaaaaaaa",
        &[AUTH],
        b"",
    ));
    assert_eq!(guessed.status, 404);
    let no_token = RUNTIME.block_on(request(port, "DELETE", &location, &[], b""));
    assert_eq!(no_token.status, 401);
    assert_eq!(
        viewers(&producer),
        1,
        "still watching after the refused requests"
    );
    let deleted = RUNTIME.block_on(request(port, "DELETE", &location, &[AUTH], b""));
    assert_eq!(deleted.status, 200);
    wait_until(Duration::from_secs(10), "the viewer to be removed", || {
        (viewers(&producer) == 0).then_some(())
    });
    let again = RUNTIME.block_on(request(port, "DELETE", &location, &[AUTH], b""));
    assert_eq!(again.status, 404);

    // Our own protocol still works on the same server.
    RUNTIME.block_on(async {
        let mut peer = RawPeer::connect(&url).await;
        peer.join("after", "live", false).await;
    });
    let _ = producer.set_state(gst::State::Null);
}
