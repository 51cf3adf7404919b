//! GStreamer ↔ Chromium through the pages the server serves: what a person
//! would see and hear, checked in the page itself.

use std::time::Duration;

use gst::glib;
use gst::prelude::*;
use peer_tests::browser::Browser;
use peer_tests::media::close_colour;
use peer_tests::pages::{VIDEO_PIXEL, wait_playing};
use peer_tests::{Receiver, TestServer, init, play, sender};
use serde_json::{Value, json};

const BLUE: u32 = 0xff2050d0;
const BLUE_RGB: [u8; 3] = [0x20, 0x50, 0xd0];

fn rgb(value: &Value) -> [u8; 3] {
    let array = value.as_array().expect("an [r, g, b] array");
    [0, 1, 2].map(|i| array[i].as_u64().unwrap() as u8)
}

/// Centre pixel of the page's <video> (drawn into a canvas), and its size.
/// The loudest frequency of the watched audio, by an AnalyserNode.
const AUDIO_PEAK: &str = r#"
    const done = arguments[arguments.length - 1];
    const context = new AudioContext();
    const source = context.createMediaStreamSource(window.peerPage.session.stream);
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

#[test]
fn pipeline_to_the_watch_page_shows_the_colour_and_plays_the_tone() {
    init();
    let server = TestServer::start();
    let producer = sender(
        &format!("uri={} peer-id=cam", server.room_uri("show")),
        640,
        360,
        BLUE,
        440.0,
    );
    play(&producer);
    let browser = Browser::start(&[]);
    browser.goto(&format!(
        "http://127.0.0.1:{}/watch?room=show&producer=cam",
        server.port()
    ));
    let frame = wait_playing(&browser, Duration::from_secs(30));
    assert_eq!(
        (frame["width"].as_u64(), frame["height"].as_u64()),
        (Some(640), Some(360)),
        "{frame}"
    );
    assert!(
        close_colour(rgb(&frame["rgb"]), BLUE_RGB, 20),
        "centre pixel {frame}"
    );

    browser.wait_for(
        "window.peerPage.session.stats().then(s => window.peerPage.audioBytes = s.audioBytes) && window.peerPage.audioBytes > 1000",
        Duration::from_secs(10),
    );
    let peak = browser.eval_async(AUDIO_PEAK, vec![]);
    let frequency = peak["frequency"].as_f64().unwrap();
    assert!((frequency - 440.0).abs() < 6.0, "loudest frequency {peak}");

    // The stats panel plots what the page receives.
    browser.wait_for(
        "document.querySelector('.stat-resolution').dataset.width === '640'",
        Duration::from_secs(5),
    );
    let path = browser.screenshot("watch-page");
    assert!(
        std::fs::metadata(&path).unwrap().len() > 10_000,
        "screenshot {}",
        path.display()
    );
    let _ = producer.set_state(gst::State::Null);
}

#[test]
fn chromium_camera_and_microphone_reach_peersrc_at_the_asked_size() {
    init();
    let server = TestServer::start();
    let browser = Browser::start(&[]);
    browser.goto(&format!(
        "http://127.0.0.1:{}/publish?room=studio&id=browser&width=640&height=360&fps=30&autostart=1",
        server.port()
    ));
    browser.wait_for(
        "window.peerPage.state === 'publishing'",
        Duration::from_secs(20),
    );
    let receiver = Receiver::start(&format!(
        "uri={} producer=browser",
        server.room_uri("studio")
    ));
    let received = receiver.wait(
        Duration::from_secs(30),
        "camera frames and microphone audio",
        |r| r.video_frames >= 15 && r.audio_buffers >= 20,
    );
    assert_eq!((received.width, received.height), (640, 360));
    // Chromium's fake microphone beeps: there is sound, not just silence.
    let loudest = received.audio.iter().fold(0f32, |m, s| m.max(s.abs()));
    assert!(loudest > 0.01, "audio peak {loudest}");
}

#[test]
fn a_canvas_published_from_chromium_arrives_with_its_colour() {
    init();
    let server = TestServer::start();
    let browser = Browser::start(&[]);
    browser.goto(&format!(
        "http://127.0.0.1:{}/publish?room=art&id=painter&source=canvas&color=e03c28&width=640&height=360&autostart=1",
        server.port()
    ));
    browser.wait_for(
        "window.peerPage.state === 'publishing'",
        Duration::from_secs(20),
    );
    let receiver = Receiver::start(&format!("uri={} producer=painter", server.room_uri("art")));
    let received = receiver.wait(Duration::from_secs(30), "canvas frames", |r| {
        r.video_frames >= 10
    });
    assert_eq!((received.width, received.height), (640, 360));
    // The browser's RGB→YUV matrix and the decoder's need not agree (BT.601
    // vs BT.709), which shifts channels by up to ~30.
    assert!(
        close_colour(received.centre_rgb, [0xe0, 0x3c, 0x28], 32),
        "centre {:?}",
        received.centre_rgb
    );
    assert!(
        received.centre_rgb[0] > 2 * received.centre_rgb[1],
        "red dominates: {:?}",
        received.centre_rgb
    );
}

#[test]
fn data_channel_between_the_page_and_a_pipeline_carries_text_and_64k_binary() {
    init();
    let server = TestServer::start();
    let producer = sender(
        &format!("uri={} peer-id=cam", server.room_uri("talk")),
        320,
        240,
        BLUE,
        440.0,
    );
    play(&producer);
    let sink = producer.by_name("sink").unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<(Option<String>, Option<Vec<u8>>)>();
    let tx = std::sync::Mutex::new(tx);
    sink.connect("data-channel-message", false, move |values| {
        let text = values[3].get::<Option<String>>().unwrap();
        let bytes = values[4]
            .get::<Option<glib::Bytes>>()
            .unwrap()
            .map(|b| b.to_vec());
        let _ = tx.lock().unwrap().send((text, bytes));
        None
    });

    let browser = Browser::start(&[]);
    browser.goto(&format!(
        "http://127.0.0.1:{}/watch?room=talk&producer=cam",
        server.port()
    ));
    browser.wait_for("window.peerPage.session && window.peerPage.session.channels.get('chat') && window.peerPage.session.channels.get('chat').readyState === 'open'", Duration::from_secs(30));

    // Pipeline → page, text.
    assert!(sink.emit_by_name::<bool>(
        "send-string",
        &[&"chat", &None::<String>, &"hello browser ✓"]
    ));
    let text = browser.wait_for(
        "window.peerPage.messages.find(m => m.data === 'hello browser ✓')",
        Duration::from_secs(10),
    );
    assert_eq!(text["label"], "chat");
    // Pipeline → page, 64 KiB binary, checked byte by byte in the page.
    let big: Vec<u8> = (0..65_536u32).map(|i| (i * 31 % 253) as u8).collect();
    assert!(sink.emit_by_name::<bool>(
        "send-data",
        &[&"chat", &None::<String>, &glib::Bytes::from(&big)]
    ));
    let intact = browser.wait_for(
        "(() => { const m = window.peerPage.messages.find(m => m.data instanceof ArrayBuffer); if (!m) return null; \
           const a = new Uint8Array(m.data); if (a.length !== 65536) return 'length ' + a.length; \
           for (let i = 0; i < a.length; i++) if (a[i] !== (i * 31) % 253) return 'byte ' + i; return 'intact'; })()",
        Duration::from_secs(10),
    );
    assert_eq!(intact, json!("intact"));

    // Page → pipeline, text and 64 KiB binary.
    browser.eval(
        "return window.peerPage.session.send('chat', 'hi from the page');",
        vec![],
    );
    let (text, _) = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("text from the page");
    assert_eq!(text.as_deref(), Some("hi from the page"));
    browser.eval(
        "const a = new Uint8Array(65536); for (let i = 0; i < a.length; i++) a[i] = (i * 7) % 251; \
         return window.peerPage.session.send('chat', a.buffer);",
        vec![],
    );
    let (_, bytes) = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("bytes from the page");
    let expected: Vec<u8> = (0..65_536u32).map(|i| (i * 7 % 251) as u8).collect();
    assert!(
        bytes.as_deref() == Some(&expected[..]),
        "64 KiB from the page arrived altered"
    );
    let _ = producer.set_state(gst::State::Null);
}

#[test]
fn replacing_the_camera_while_live_keeps_the_same_session() {
    init();
    let server = TestServer::start();
    let browser = Browser::start(&[]);
    browser.goto(&format!(
        "http://127.0.0.1:{}/publish?room=switch&id=switcher&width=640&height=360&autostart=1",
        server.port()
    ));
    browser.wait_for(
        "window.peerPage.state === 'publishing'",
        Duration::from_secs(20),
    );
    let receiver = Receiver::start(&format!(
        "uri={} producer=switcher",
        server.room_uri("switch")
    ));
    receiver.wait(Duration::from_secs(30), "frames", |r| r.video_frames >= 10);
    let session_before = receiver
        .peersrc
        .property::<gst::Structure>("stats")
        .get::<String>("session")
        .unwrap();

    browser.eval_async(
        "const done = arguments[arguments.length - 1]; window.peerPage.switchCamera().then(() => done(window.peerPage.replacedTracks));",
        vec![],
    );
    assert_eq!(
        browser.eval("return window.peerPage.replacedTracks;", vec![]),
        json!(1)
    );
    let frames = receiver.frames();
    receiver.wait(Duration::from_secs(10), "frames after replaceTrack", |r| {
        r.video_frames >= frames + 30
    });
    let session_after = receiver
        .peersrc
        .property::<gst::Structure>("stats")
        .get::<String>("session")
        .unwrap();
    assert_eq!(
        session_before, session_after,
        "replaceTrack must not start a new session"
    );
    assert_eq!(receiver.snapshot().pads.len(), 2, "no new tracks either");
}

#[test]
fn the_page_loads_and_plays_over_tls_with_a_self_signed_certificate() {
    init();
    let identity =
        peer_signalling::tls::self_signed(&["127.0.0.1".into(), "localhost".into()]).unwrap();
    let certificate =
        std::env::temp_dir().join(format!("gst-peer-test-{}.pem", std::process::id()));
    std::fs::write(&certificate, &identity.certificate_pem).unwrap();
    let server = TestServer::start_with(peer_signalling::server::ServerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        tls: Some(identity.config.clone()),
        ..Default::default()
    });
    let producer = sender(
        &format!(
            "uri=wss://127.0.0.1:{}/secure peer-id=cam tls-ca-file={}",
            server.port(),
            certificate.display()
        ),
        320,
        240,
        BLUE,
        440.0,
    );
    play(&producer);
    let spki = identity.spki_sha256.clone().unwrap();
    let browser = Browser::start(&[format!("--ignore-certificate-errors-spki-list={spki}")]);
    browser.goto(&format!(
        "https://127.0.0.1:{}/watch?room=secure&producer=cam",
        server.port()
    ));
    browser.wait_for(
        "window.peerPage.state === 'playing' && document.querySelector('video').videoWidth === 320",
        Duration::from_secs(30),
    );
    assert_eq!(
        browser.eval("return window.isSecureContext;", vec![]),
        json!(true)
    );
    let frame = browser.eval(VIDEO_PIXEL, vec![]);
    assert!(close_colour(rgb(&frame["rgb"]), BLUE_RGB, 20), "{frame}");
    let _ = producer.set_state(gst::State::Null);
    let _ = std::fs::remove_file(certificate);
}

#[test]
fn the_page_says_when_the_server_is_unreachable_or_the_producer_left() {
    init();
    let server = TestServer::start();
    let producer = sender(
        &format!("uri={} peer-id=cam", server.room_uri("gone")),
        320,
        240,
        BLUE,
        440.0,
    );
    play(&producer);
    let browser = Browser::start(&[]);
    browser.goto(&format!(
        "http://127.0.0.1:{}/watch?room=gone&producer=cam",
        server.port()
    ));
    browser.wait_for(
        "window.peerPage.state === 'playing'",
        Duration::from_secs(30),
    );
    producer.set_state(gst::State::Null).unwrap();
    let error = browser.wait_for("window.peerPage.error", Duration::from_secs(10));
    assert!(error.as_str().unwrap().contains("\"cam\""), "{error}");

    // A server that is gone: the page (loaded from a live server) cannot
    // reach it and says so in words.
    let port = server.port();
    drop(server);
    let live = TestServer::start();
    browser.goto(&format!("http://127.0.0.1:{}/", live.port()));
    let message = browser.eval_async(
        &format!(
            "const done = arguments[arguments.length - 1]; \
             import('/peer.js').then(async ({{ PeerClient }}) => {{ \
               try {{ await new PeerClient({{ url: 'ws://127.0.0.1:{port}/ws' }}).connect(); done('connected?'); }} \
               catch (e) {{ done(e.code + ': ' + e.message); }} }});"
        ),
        vec![],
    );
    let message = message.as_str().unwrap();
    assert!(
        message.starts_with("unreachable") && message.contains(&port.to_string()),
        "{message}"
    );
}

#[test]
fn camera_permission_denied_is_explained_on_the_page() {
    init();
    let server = TestServer::start();
    // No automatic consent this time: the prompt is denied.
    let browser = Browser::start_denying_media();
    browser.goto(&format!(
        "http://127.0.0.1:{}/publish?room=x&autostart=1",
        server.port()
    ));
    let error = browser.wait_for("window.peerPage.error", Duration::from_secs(20));
    assert!(
        error
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("permission")
            || error.as_str().unwrap().contains("denied"),
        "{error}"
    );
}

#[test]
fn the_readme_demo_is_watchable_from_the_rooms_page() {
    init();
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let mut serve = peer_tests::process::ChildProcess::spawn(
        std::process::Command::new(peer_tests::peer_binary()).args([
            "serve",
            "--demo",
            "--port",
            &port.to_string(),
        ]),
    );
    serve.wait_line(
        &format!("open http://127.0.0.1:{port}/"),
        Duration::from_secs(20),
    );
    let browser = Browser::start(&[]);
    browser.goto(&format!("http://127.0.0.1:{port}/"));
    // The rooms page lists the demo; following its link plays it.
    let href = browser.wait_for(
        "[...document.querySelectorAll('#rooms a')].map(a => a.getAttribute('href')).find(h => h.startsWith('/watch'))",
        Duration::from_secs(20),
    );
    assert_eq!(href, json!("/watch?room=demo&producer=demo"));
    browser.eval(
        "document.querySelector('#rooms a[href^=\"/watch\"]').click(); return true;",
        vec![],
    );
    browser.wait_for("window.peerPage.state === 'playing' && document.querySelector('video').videoWidth === 1280", Duration::from_secs(30));
    assert_eq!(
        browser.eval(
            "return document.querySelector('video').videoHeight;",
            vec![]
        ),
        json!(720)
    );
    browser.screenshot("demo-watch-page");
}

#[test]
fn the_address_printed_by_an_embedded_server_opens_the_watch_page() {
    init();
    let producer = sender("port=0 peer-id=solo", 320, 240, BLUE, 440.0);
    play(&producer);
    let ready = peer_tests::wait_element_message(&producer, "peer-ready", Duration::from_secs(10));
    let url = ready.get::<String>("url").unwrap();
    let browser = Browser::start(&[]);
    browser.goto(&url);
    browser.wait_for(
        "window.peerPage.state === 'playing' && document.querySelector('video').videoWidth === 320",
        Duration::from_secs(30),
    );
    let frame = browser.eval(VIDEO_PIXEL, vec![]);
    assert!(close_colour(rgb(&frame["rgb"]), BLUE_RGB, 20), "{frame}");
    let _ = producer.set_state(gst::State::Null);
}

#[test]
fn audiotap_reports_reach_the_watch_page_at_the_configured_interval() {
    init();
    let server = TestServer::start();
    let producer = peer_tests::launch(&format!(
        "peersink name=sink uri={} peer-id=tone \
         videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 ! sink.video_0 \
         audiotestsrc is-live=true wave=sine freq=440 volume=0.5 ! audiotap interval=100000000 ! sink.audio_0",
        server.room_uri("meters")
    ));
    play(&producer);
    let browser = Browser::start(&[]);
    browser.goto(&format!(
        "http://127.0.0.1:{}/watch?room=meters&producer=tone",
        server.port()
    ));
    browser.wait_for(
        "window.peerPage.analysis.length >= 20",
        Duration::from_secs(30),
    );
    let reports = browser.eval("return window.peerPage.analysis.slice(-20);", vec![]);
    let reports = reports.as_array().unwrap();
    let times: Vec<f64> = reports
        .iter()
        .map(|r| r["time"].as_f64().unwrap())
        .collect();
    for pair in times.windows(2) {
        // Unordered, unreliable: a report may be lost, but none is late or doubled.
        let step = pair[1] - pair[0];
        assert!(
            (step - 0.1).abs() < 0.005 || (step - 0.2).abs() < 0.005,
            "report times {times:?}"
        );
    }
    let last = reports.last().unwrap();
    assert!(
        (last["pitch"].as_f64().unwrap() - 440.0).abs() < 4.4,
        "{last}"
    );
    let rms = last["rms"][0].as_f64().unwrap();
    assert!(
        (rms - -9.03).abs() < 0.2,
        "a 0.5 sine is -9.03 dBFS RMS: {last}"
    );
    // The page draws the meters.
    assert_eq!(
        browser.eval("return document.getElementById('analysis').hidden;", vec![]),
        json!(false)
    );
    browser.screenshot("watch-page-audiotap");
    let _ = producer.set_state(gst::State::Null);
}

#[test]
fn a_canvassrc_broadcast_shows_its_colours_and_draws_viewers_cursors() {
    init();
    let server = TestServer::start();
    let scene = r##"{"background":"#203040","nodes":[{"id":"box","type":"rect","x":40,"y":40,"width":120,"height":80,"fill":"#e02020"}]}"##;
    let producer = peer_tests::launch(&format!(
        "peersink name=s uri={} peer-id=canvas data-channels=\"chat,canvas\" \
         canvassrc patch-source=s scene=\"{}\" ! video/x-raw,width=640,height=360,framerate=30/1 ! videoconvert ! s.video_0",
        server.room_uri("draw"),
        scene.replace('"', "\\\"")
    ));
    play(&producer);
    let browser = Browser::start(&[]);
    browser.goto(&format!(
        "http://127.0.0.1:{}/cursors?room=draw&producer=canvas",
        server.port()
    ));
    browser.wait_for(
        "window.peerPage.state === 'playing' && window.peerPage.cursor && window.peerPage.session.channels.get('canvas') \
         && window.peerPage.session.channels.get('canvas').readyState === 'open'",
        Duration::from_secs(30),
    );
    let pixel_at = |x: u32, y: u32| {
        let value = browser.eval(
            "const [x, y] = arguments; const video = document.querySelector('video'); \
             const canvas = document.createElement('canvas'); canvas.width = video.videoWidth; canvas.height = video.videoHeight; \
             const context = canvas.getContext('2d'); context.drawImage(video, 0, 0); \
             const p = context.getImageData(x, y, 1, 1).data; return [p[0], p[1], p[2]];",
            vec![json!(x), json!(y)],
        );
        rgb(&value)
    };
    // The scene's colours: background in the middle, the red box at its place.
    assert!(
        close_colour(pixel_at(320, 180), [0x20, 0x30, 0x40], 20),
        "background {:?}",
        pixel_at(320, 180)
    );
    assert!(
        close_colour(pixel_at(100, 80), [0xe0, 0x20, 0x20], 24),
        "box {:?}",
        pixel_at(100, 80)
    );

    // The viewer's pointer over the picture's centre is drawn into the broadcast.
    let colour = browser.eval_async(
        "const done = arguments[arguments.length - 1]; \
         import('/cursors.js').then(({ cursorPatch }) => { \
           const video = document.querySelector('video'); const box = video.getBoundingClientRect(); \
           video.dispatchEvent(new PointerEvent('pointermove', { clientX: box.left + box.width / 2, clientY: box.top + box.height / 2, bubbles: true })); \
           done(cursorPatch(window.peerPage.client.id, 0, 0)[0].node.fill); });",
        vec![],
    );
    let hex = colour.as_str().unwrap().trim_start_matches('#');
    let expected = [0, 2, 4].map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap());
    let drawn = peer_tests::wait_until(
        Duration::from_secs(10),
        "the cursor to appear in the video",
        || {
            let centre = pixel_at(320, 180);
            close_colour(centre, expected, 32).then_some(centre)
        },
    );
    assert!(!close_colour(drawn, [0x20, 0x30, 0x40], 20));
    let _ = producer.set_state(gst::State::Null);
}
