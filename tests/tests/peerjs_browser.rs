//! Unmodified `peerjs` 1.5.5 in Chromium against pipelines: calls both
//! ways, data connections in each serialization, and the same elements
//! against the reference PeerServer (npm `peer` 1.0.2, run by node).

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use peer_tests::browser::Browser;
use peer_tests::media::close_colour;
use peer_tests::process::ChildProcess;
use peer_tests::{
    Receiver, TestServer, encoders_in, init, play, sender, wait_element_message, wait_until,
};
use serde_json::{Value, json};

const BLUE: u32 = 0xff2050d0;
const BLUE_RGB: [u8; 3] = [0x20, 0x50, 0xd0];

/// Centre pixel and size of the page's remote <video>.
const REMOTE_PIXEL: &str = r#"
    const video = document.getElementById('remote');
    const canvas = document.createElement('canvas');
    canvas.width = video.videoWidth; canvas.height = video.videoHeight;
    const context = canvas.getContext('2d');
    context.drawImage(video, 0, 0);
    const p = context.getImageData(canvas.width >> 1, canvas.height >> 1, 1, 1).data;
    return { width: video.videoWidth, height: video.videoHeight, rgb: [p[0], p[1], p[2]] };
"#;

/// The loudest frequency of the call's remote audio.
const REMOTE_TONE: &str = r#"
    const done = arguments[arguments.length - 1];
    const context = new AudioContext();
    const source = context.createMediaStreamSource(window.callPage.remoteStream);
    const analyser = context.createAnalyser();
    analyser.fftSize = 16384;
    source.connect(analyser);
    setTimeout(() => {
      const bins = new Float32Array(analyser.frequencyBinCount);
      analyser.getFloatFrequencyData(bins);
      let best = 0;
      for (let i = 1; i < bins.length; i++) if (bins[i] > bins[best]) best = i;
      done({ frequency: best * context.sampleRate / analyser.fftSize, level: bins[best] });
    }, 1500);
"#;

fn rgb(value: &Value) -> [u8; 3] {
    let array = value.as_array().expect("an [r, g, b] array");
    [0, 1, 2].map(|i| array[i].as_u64().unwrap() as u8)
}

/// Waits until the element registered with the PeerServer.
fn registered(pipeline: &gst::Pipeline) {
    let ready = wait_element_message(pipeline, "peer-ready", Duration::from_secs(15));
    assert!(ready.get::<String>("peer-id").is_ok(), "{ready}");
}

/// The browser's call to `studio` shows the pipeline's picture and plays its tone.
fn check_call_from_browser(browser: &Browser) {
    browser.wait_for(
        "window.callPage.remoteStream && document.getElementById('remote').videoWidth > 0",
        Duration::from_secs(30),
    );
    let frame = browser.eval(REMOTE_PIXEL, vec![]);
    assert_eq!(
        (frame["width"].as_u64(), frame["height"].as_u64()),
        (Some(640), Some(360)),
        "{frame}"
    );
    assert!(
        close_colour(rgb(&frame["rgb"]), BLUE_RGB, 20),
        "centre pixel {frame}"
    );
    let peak = browser.eval_async(REMOTE_TONE, vec![]);
    let frequency = peak["frequency"].as_f64().unwrap();
    assert!((frequency - 440.0).abs() < 6.0, "loudest frequency {peak}");
}

#[test]
fn a_browser_calls_peersink_and_sees_and_hears_it() {
    init();
    let server = TestServer::start();
    let studio = sender(
        &format!("uri=peerjs://127.0.0.1:{}/studio", server.port()),
        640,
        360,
        BLUE,
        440.0,
    );
    play(&studio);
    registered(&studio);
    let browser = Browser::start(&[]);
    browser.goto(&format!(
        "http://127.0.0.1:{}/call?id=alice&peer=studio&call=1",
        server.port()
    ));
    check_call_from_browser(&browser);
    browser.screenshot("peerjs-call");
    // A second call (the same page calling again): another viewer on the
    // same encoders.
    let sink = studio.by_name("sink").unwrap();
    let encoders = encoders_in(sink.downcast_ref::<gst::Bin>().unwrap()).len();
    browser.eval(
        "window.second = window.callPage.peer.call('studio', document.getElementById('local').srcObject);",
        vec![],
    );
    wait_until(Duration::from_secs(20), "two callers", || {
        (sink.property::<u32>("viewers") == 2).then_some(())
    });
    browser.wait_for("window.second.remoteStream", Duration::from_secs(20));
    assert_eq!(
        encoders_in(sink.downcast_ref::<gst::Bin>().unwrap()).len(),
        encoders,
        "callers share the encoders"
    );
    let _ = studio.set_state(gst::State::Null);
}

#[test]
fn peersrc_takes_a_browsers_call_and_gives_out_its_camera() {
    init();
    let server = TestServer::start();
    let booth = Receiver::start(&format!("uri=peerjs://127.0.0.1:{}/booth", server.port()));
    let browser = Browser::start(&[]);
    browser.goto(&format!(
        "http://127.0.0.1:{}/call?id=caller&peer=booth&call=1",
        server.port()
    ));
    let received = booth.wait(
        Duration::from_secs(30),
        "the caller's camera and microphone",
        |r| r.video_frames >= 15 && r.audio_buffers >= 20,
    );
    // Chromium's fake camera, at getUserMedia's default size.
    assert_eq!((received.width, received.height), (640, 480));
    let loudest = received.audio.iter().fold(0f32, |m, s| m.max(s.abs()));
    assert!(loudest > 0.01, "audio peak {loudest}");
}

#[test]
fn two_callers_of_peersrc_get_a_set_of_pads_each() {
    init();
    let server = TestServer::start();
    let booth = Receiver::start(&format!("uri=peerjs://127.0.0.1:{}/booth", server.port()));
    let browser = Browser::start(&[]);
    browser.goto(&format!(
        "http://127.0.0.1:{}/call?id=first&peer=booth&call=1",
        server.port()
    ));
    booth.wait(Duration::from_secs(30), "the first caller", |r| {
        r.video_frames >= 10
    });
    // A second PeerJS peer in the same page calls too.
    browser.eval(
        r#"const second = new Peer('second', { host: location.hostname, port: Number(location.port),
             path: '/', key: 'peerjs', config: { iceServers: [] } });
           second.on('open', () => second.call('booth', document.getElementById('local').srcObject));"#,
        vec![],
    );
    let received = booth.wait(Duration::from_secs(30), "a second set of pads", |r| {
        r.pads.iter().any(|p| p == "video_1") && r.pads.iter().any(|p| p == "audio_1")
    });
    let frames = received.video_frames;
    booth.wait(Duration::from_secs(10), "frames of both callers", |r| {
        r.video_frames >= frames + 20
    });
    let stats = booth.peersrc.property::<gst::Structure>("stats");
    assert!(stats.get::<String>("producer").is_ok(), "{stats}");
}

#[test]
fn the_pipeline_calls_a_browser_that_answers_with_its_camera() {
    init();
    let server = TestServer::start();
    // Started first: alice is not there yet, so the call expires and is
    // placed again once she is.
    let caller = Receiver::start(&format!(
        "uri=\"peerjs://127.0.0.1:{}/pipeline?call=alice\"",
        server.port()
    ));
    let browser = Browser::start(&[]);
    browser.goto(&format!("http://127.0.0.1:{}/call?id=alice", server.port()));
    let received = caller.wait(Duration::from_secs(40), "alice's camera", |r| {
        r.video_frames >= 15
    });
    assert_eq!((received.width, received.height), (640, 480));
    browser.wait_for("window.callPage.calls.length === 1", Duration::from_secs(5));
}

/// Messages a peersink got on its data channels: (peer, label, text, bytes).
type Inbox = Arc<Mutex<Vec<(String, String, Option<String>, Option<Vec<u8>>)>>>;

fn collect_messages(sink: &gst::Element) -> Inbox {
    let inbox: Inbox = Arc::default();
    let stored = inbox.clone();
    sink.connect("data-channel-message", false, move |values| {
        let peer = values[1].get::<String>().unwrap();
        let label = values[2].get::<String>().unwrap();
        let text = values[3].get::<Option<String>>().unwrap();
        let bytes = values[4]
            .get::<Option<glib::Bytes>>()
            .unwrap()
            .map(|b| b.to_vec());
        stored.lock().unwrap().push((peer, label, text, bytes));
        None
    });
    inbox
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

const OPEN_CONNECTION: &str = r#"
    const [serialization] = arguments;
    window.got = [];
    window.conn = window.callPage.peer.connect('studio', { serialization, reliable: true });
    window.conn.on('data', (data) => window.got.push(data));
"#;

/// `raw` has no chunking: one message is bounded by webrtcbin 1.22's SCTP
/// (64 KiB: it announces `a=max-message-size:65536`, and refuses to send
/// more), so raw messages are 60 KiB both ways; `binary` chunks 100 KiB.
fn message_bytes(serialization: &str) -> usize {
    if serialization == "raw" {
        60 * 1024
    } else {
        100 * 1024
    }
}

const SEND_FROM_BROWSER: &str = r#"
    const [serialization, size] = arguments;
    window.maxMessageSize = conn.peerConnection.sctp && conn.peerConnection.sctp.maxMessageSize;
    const bytes = new Uint8Array(size);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31) % 251;
    const object = { text: 'héllo ✓', list: [1, 2.5, 'x'], nested: { ok: true } };
    conn.send('hello from the browser ✓');
    conn.send(serialization === 'raw' ? JSON.stringify(object) : object);
    if (serialization !== 'json') conn.send(bytes);
"#;

const CHECK_IN_BROWSER: &str = r#"
    const [serialization, size] = arguments;
    const parse = (v) => (typeof v === 'string' ? JSON.parse(v) : v);
    const bytes = new Uint8Array(got[2] || []);
    let intact = bytes.length === size;
    for (let i = 0; intact && i < bytes.length; i++) intact = bytes[i] === (i * 31) % 251;
    return { text: got[0], object: parse(got[1]), binary: intact, count: got.length };
"#;

#[test]
fn data_connections_carry_text_objects_and_100k_binary_both_ways() {
    init();
    let server = TestServer::start();
    let studio = sender(
        &format!("uri=peerjs://127.0.0.1:{}/studio", server.port()),
        320,
        240,
        BLUE,
        440.0,
    );
    play(&studio);
    registered(&studio);
    let sink = studio.by_name("sink").unwrap();
    let inbox = collect_messages(&sink);
    let browser = Browser::start(&[]);
    browser.goto(&format!("http://127.0.0.1:{}/call?id=alice", server.port()));
    browser.wait_for(
        "window.callPage.state.startsWith('connected')",
        Duration::from_secs(15),
    );
    let expected_object = json!({"text": "héllo ✓", "list": [1, 2.5, "x"], "nested": {"ok": true}});
    for serialization in ["binary", "json", "raw"] {
        inbox.lock().unwrap().clear();
        browser.eval(OPEN_CONNECTION, vec![json!(serialization)]);
        browser.wait_for("window.conn.open", Duration::from_secs(30));
        let label = browser.eval("return window.conn.label", vec![]);
        let size = message_bytes(serialization);
        browser.eval(SEND_FROM_BROWSER, vec![json!(serialization), json!(size)]);
        let wanted = if serialization == "json" { 2 } else { 3 };
        let deadline = Instant::now() + Duration::from_secs(20);
        let got = loop {
            let seen = inbox.lock().unwrap().clone();
            if seen.len() >= wanted {
                break seen;
            }
            let brief: Vec<_> = seen
                .iter()
                .map(|(p, l, t, b)| (p, l, t, b.as_ref().map(Vec::len)))
                .collect();
            if Instant::now() >= deadline {
                let max = browser.eval("return window.maxMessageSize", vec![]);
                panic!(
                    "{serialization}: {wanted} messages from the browser, got {brief:?} \
                     (max message size {max})"
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(
            got.iter()
                .all(|(peer, l, ..)| peer == "alice" && *l == label),
            "{got:?}"
        );
        assert_eq!(
            got[0].2.as_deref(),
            Some("hello from the browser ✓"),
            "{serialization}"
        );
        let object: Value = serde_json::from_str(got[1].2.as_deref().unwrap()).unwrap();
        assert_eq!(object, expected_object, "{serialization}");
        if serialization != "json" {
            assert_eq!(
                got[2].3.as_deref(),
                Some(pattern(size).as_slice()),
                "{serialization}"
            );
        }

        // And back, on the connection's channel (an empty label: the
        // channel the browser opened, whatever it named it).
        let alice = Some("alice");
        assert!(
            sink.emit_by_name::<bool>("send-string", &[&"", &alice, &"hello from the pipeline ✓"])
        );
        let object = r#"{"text":"héllo ✓","list":[1,2.5,"x"],"nested":{"ok":true}}"#;
        assert!(sink.emit_by_name::<bool>("send-string", &[&"", &alice, &object]));
        if serialization != "json" {
            let bytes = glib::Bytes::from_owned(pattern(size));
            assert!(sink.emit_by_name::<bool>("send-data", &[&"", &alice, &bytes]));
        }
        browser.wait_for(
            &format!("window.got.length >= {wanted}"),
            Duration::from_secs(20),
        );
        let checked = browser.eval(CHECK_IN_BROWSER, vec![json!(serialization), json!(size)]);
        assert_eq!(
            checked["text"], "hello from the pipeline ✓",
            "{serialization}: {checked}"
        );
        assert_eq!(
            checked["object"], expected_object,
            "{serialization}: {checked}"
        );
        if serialization != "json" {
            assert_eq!(checked["binary"], true, "{serialization}: {checked}");
        }
        browser.eval("window.conn.close()", vec![]);
    }
    let _ = studio.set_state(gst::State::Null);
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

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn the_elements_work_against_the_reference_peerserver() {
    init();
    let port = free_port();
    let mut command = Command::new("node");
    command
        .arg(reference_peerserver())
        .args(["--port", &port.to_string(), "--host", "127.0.0.1"]);
    let _reference = ChildProcess::spawn(&mut command);
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the reference PeerServer did not listen"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Our server only serves the page (and the peerjs bundle); PeerJS
    // talks to the reference server.
    let pages = TestServer::start();
    let studio = sender(
        &format!("uri=peerjs://127.0.0.1:{port}/studio"),
        640,
        360,
        BLUE,
        440.0,
    );
    play(&studio);
    registered(&studio);
    let browser = Browser::start(&[]);
    browser.goto(&format!(
        "http://127.0.0.1:{}/call?id=alice&peer=studio&call=1&port={port}",
        pages.port()
    ));
    check_call_from_browser(&browser);
    let _ = studio.set_state(gst::State::Null);
}
