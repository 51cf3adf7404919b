//! Who may do what, over real sockets (docs/security.md): every way a
//! token can be wrong, every grant missing, on our protocol, WHIP, WHEP and
//! /api/rooms, each refused with its named error, while a legitimate
//! publisher and viewer on the same server keep their media flowing. And
//! the join link `peer token --link` makes, opened in Chromium, and
//! `peer serve` refusing to listen beyond loopback without tokens.

use std::process::Command;
use std::time::Duration;

use base64::Engine;
use gst::prelude::*;
use peer_signalling::auth::{Authority, Claims, mint};
use peer_signalling::core::Access;
use peer_signalling::server::ServerConfig;
use peer_tests::browser::Browser;
use peer_tests::http::request;
use peer_tests::ws::RawPeer;
use peer_tests::{RUNTIME, Receiver, TestServer, init, play, sender};
use serde_json::{Value, json};

const SECRET: &str = "test-secret-of-at-least-thirty-two-bytes";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn token_with(
    sub: Option<&str>,
    room: &str,
    grants: &[&str],
    exp: u64,
    nbf: Option<u64>,
) -> String {
    let claims = Claims {
        sub: sub.map(str::to_owned),
        room: room.into(),
        grants: grants.iter().map(|g| g.to_string()).collect(),
        exp,
        nbf,
        iat: None,
    };
    mint(&claims, "HS256", SECRET.as_bytes()).unwrap()
}

fn token(sub: Option<&str>, room: &str, grants: &[&str]) -> String {
    token_with(sub, room, grants, now() + 3600, None)
}

fn secured_server() -> TestServer {
    TestServer::start_with(ServerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        access: Access {
            authority: Some(Authority::hs256(SECRET.as_bytes()).unwrap()),
            turn: None,
        },
        ..ServerConfig::default()
    })
}

/// Connects, says hello with `hello`, and returns the answer.
async fn hello(url: &str, hello: Value) -> (RawPeer, Value) {
    let mut peer = RawPeer::connect(url).await;
    peer.send(hello).await;
    let answer = peer.recv().await;
    (peer, answer)
}

fn assert_error(answer: &Value, code: &str, words: &str) {
    assert_eq!(answer["type"], "error", "{answer}");
    assert_eq!(answer["code"], code, "{answer}");
    assert!(
        answer["message"].as_str().unwrap().contains(words),
        "expected {words:?} in {answer}"
    );
}

#[test]
fn every_refusal_is_named_and_a_legitimate_pair_keeps_playing() {
    init();
    let server = secured_server();
    let port = server.port();
    let url = server.ws_url();
    // The legitimate pair: a pipeline publishing, another watching.
    let producer = sender(
        &format!(
            "uri={} peer-id=cam token={}",
            server.room_uri("studio"),
            token(Some("cam"), "studio", &["publish"])
        ),
        320,
        240,
        0xff2050d0,
        440.0,
    );
    play(&producer);
    let viewer = Receiver::start(&format!(
        "uri={} producer=cam token={}",
        server.room_uri("studio"),
        token(Some("watcher"), "studio", &["subscribe"])
    ));
    viewer.wait(Duration::from_secs(30), "the pair's frames", |r| {
        r.video_frames >= 10
    });

    RUNTIME.block_on(async {
        // Tokens that are wrong in themselves.
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let alg_none = format!(
            "{}.{}.",
            b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
            b64.encode(format!(r#"{{"room":"studio","grants":["admin"],"exp":{}}}"#, now() + 60))
        );
        let forged = mint(
            &Claims {
                sub: None,
                room: "studio".into(),
                grants: vec!["admin".into()],
                exp: now() + 60,
                nbf: None,
                iat: None,
            },
            "HS256",
            b"some other secret, long enough to sign",
        )
        .unwrap();
        for (hello_message, words) in [
            (json!({"type": "hello"}), "token is required"),
            (json!({"type": "hello", "token": token_with(None, "studio", &["subscribe"], now() - 3600, None)}), "expired"),
            (json!({"type": "hello", "token": token_with(None, "studio", &["subscribe"], now() + 7200, Some(now() + 3600))}), "not valid for another"),
            (json!({"type": "hello", "token": forged}), "signature"),
            (json!({"type": "hello", "token": alg_none}), "token"),
        ] {
            let (_peer, answer) = hello(&url, hello_message.clone()).await;
            assert_error(&answer, "unauthorized", words);
        }

        // Another peer's id, and a token for room A used in room B.
        let (_peer, answer) = hello(&url, json!({"type": "hello", "id": "cam", "token": token(Some("intruder"), "studio", &["publish"])})).await;
        assert_error(&answer, "forbidden", "\"intruder\"");
        let (_peer, answer) = hello(&url, json!({"type": "hello", "id": "cam", "token": token(None, "studio", &["publish"])})).await;
        assert_error(&answer, "forbidden", "names no peer id");
        let (mut peer, answer) = hello(&url, json!({"type": "hello", "token": token(None, "room-a", &["publish", "subscribe", "data"])})).await;
        assert_eq!(answer["type"], "welcome", "{answer}");
        peer.send(json!({"type": "join", "room": "studio"})).await;
        assert_error(&peer.recv().await, "unauthorized", "not \"studio\"");

        // Each grant missing, in the right room.
        let (mut viewer_only, _) = hello(&url, json!({"type": "hello", "token": token(None, "studio", &["subscribe"])})).await;
        viewer_only.send(json!({"type": "join", "room": "studio", "streams": [{"kind": "video"}]})).await;
        assert_error(&viewer_only.recv().await, "forbidden", "does not allow publish in room studio");
        viewer_only.send(json!({"type": "join", "room": "studio"})).await;
        assert_eq!(viewer_only.recv_type("joined").await["room"], "studio");
        viewer_only.send(json!({"type": "message", "data": {"hi": 1}})).await;
        assert_error(&viewer_only.recv_type("error").await, "forbidden", "does not allow data");
        viewer_only.send(json!({"type": "list-rooms"})).await;
        assert_error(&viewer_only.recv_type("error").await, "forbidden", "admin");
        let (mut publisher_only, _) = hello(&url, json!({"type": "hello", "token": token(None, "studio", &["publish"])})).await;
        publisher_only.send(json!({"type": "join", "room": "studio"})).await;
        publisher_only.recv_type("joined").await;
        publisher_only.send(json!({"type": "start-session", "peer": "cam"})).await;
        assert_error(&publisher_only.recv_type("error").await, "forbidden", "does not allow subscribe");

        // /api/rooms: admins only.
        let anonymous = request(port, "GET", "/api/rooms", &[], b"").await;
        assert_eq!(anonymous.status, 401, "{anonymous:?}");
        let viewer_token = format!("Bearer {}", token(None, "studio", &["subscribe"]));
        let not_admin = request(port, "GET", "/api/rooms", &[("Authorization", &viewer_token)], b"").await;
        assert_eq!(not_admin.status, 403, "{not_admin:?}");
        let admin_token = token(None, "*", &["admin"]);
        let admin = request(port, "GET", &format!("/api/rooms?token={admin_token}"), &[], b"").await;
        assert_eq!(admin.status, 200, "{admin:?}");
        assert!(admin.body.contains("\"cam\""), "{}", admin.body);

        // A stranger cannot end the pair's session; an admin could.
        let (mut stranger, _) = hello(&url, json!({"type": "hello", "token": token(None, "studio", &["subscribe", "data"])})).await;
        stranger.send(json!({"type": "join", "room": "studio"})).await;
        stranger.recv_type("joined").await;
        stranger.send(json!({"type": "end-session", "session": "s-guess"})).await;
        assert_error(&stranger.recv_type("error").await, "unknown-session", "s-guess");
    });

    // WHIP and WHEP: no Bearer, a bad one, and one without the grant.
    let offer = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=ice-ufrag:abcd\r\n\
        a=ice-pwd:0123456789012345678901\r\na=fingerprint:sha-256 AA:BB\r\na=setup:actpass\r\n\
        a=sendonly\r\na=rtpmap:96 VP8/90000\r\n";
    let sdp = ("Content-Type", "application/sdp");
    RUNTIME.block_on(async {
        for path in ["/whip/studio", "/whep/studio/cam"] {
            let body = if path.starts_with("/whep") {
                offer.replace("a=sendonly", "a=recvonly")
            } else {
                offer.to_owned()
            };
            let none = request(port, "POST", path, &[sdp], body.as_bytes()).await;
            assert_eq!(none.status, 401, "{path}: {none:?}");
            assert_eq!(none.header("www-authenticate"), Some("Bearer"));
            let bad = request(
                port,
                "POST",
                path,
                &[sdp, ("Authorization", "Bearer nonsense")],
                body.as_bytes(),
            )
            .await;
            assert_eq!(bad.status, 401, "{path}: {bad:?}");
            assert!(bad.body.contains("malformed"), "{path}: {}", bad.body);
        }
        // A viewer's token cannot publish over WHIP; a publisher's cannot play.
        let viewer = format!("Bearer {}", token(None, "studio", &["subscribe"]));
        let whip = request(
            port,
            "POST",
            "/whip/studio",
            &[sdp, ("Authorization", &viewer)],
            offer.as_bytes(),
        )
        .await;
        assert_eq!(whip.status, 403, "{whip:?}");
        assert!(
            whip.body.contains("does not allow publish"),
            "{}",
            whip.body
        );
        let publisher = format!("Bearer {}", token(None, "studio", &["publish"]));
        let player_offer = offer.replace("a=sendonly", "a=recvonly");
        let whep = request(
            port,
            "POST",
            "/whep/studio/cam",
            &[sdp, ("Authorization", &publisher)],
            player_offer.as_bytes(),
        )
        .await;
        assert_eq!(whep.status, 403, "{whep:?}");
        assert!(
            whep.body.contains("does not allow subscribe"),
            "{}",
            whep.body
        );
    });

    // The non-recorder and the WHIP publisher: a publisher's token cannot
    // ask anyone for media, so it cannot take ingest meant for a recorder.
    // (Checked above on /ws: "does not allow subscribe".)

    // Throughout, the legitimate pair kept playing.
    let before = viewer.frames();
    viewer.wait(Duration::from_secs(10), "the pair still playing", |r| {
        r.video_frames >= before + 30
    });
    let _ = producer.set_state(gst::State::Null);
}

#[test]
fn a_join_link_opened_in_chromium_publishes_and_without_its_token_is_refused_in_words() {
    init();
    let dir = std::env::temp_dir().join(format!("gst-peer-access-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let secret_file = dir.join("secret");
    let secret = Command::new(peer_tests::peer_binary())
        .args(["token", "new-secret"])
        .output()
        .unwrap();
    assert!(secret.status.success());
    std::fs::write(&secret_file, &secret.stdout).unwrap();
    let server = TestServer::start_with(ServerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        access: Access {
            authority: Some(
                Authority::hs256(String::from_utf8_lossy(&secret.stdout).trim().as_bytes())
                    .unwrap(),
            ),
            turn: None,
        },
        ..ServerConfig::default()
    });
    let base = format!("http://127.0.0.1:{}", server.port());
    let minted = Command::new(peer_tests::peer_binary())
        .args(["token", "--secret-file"])
        .arg(&secret_file)
        .args([
            "--room",
            "interviews",
            "--id",
            "guest-1",
            "--grant",
            "publish,data",
        ])
        .args(["--ttl", "10m", "--link", &base])
        .output()
        .unwrap();
    assert!(
        minted.status.success(),
        "{}",
        String::from_utf8_lossy(&minted.stderr)
    );
    let printed = String::from_utf8(minted.stdout).unwrap();
    let link = printed.lines().nth(1).expect("a link line").to_owned();
    assert!(
        link.starts_with(&format!("{base}/publish?room=interviews&id=guest-1&token=")),
        "{link}"
    );
    let recorder_token = Command::new(peer_tests::peer_binary())
        .args(["token", "--secret-file"])
        .arg(&secret_file)
        .args(["--room", "interviews", "--grant", "subscribe"])
        .output()
        .unwrap();
    let recorder_token = String::from_utf8(recorder_token.stdout).unwrap();

    let browser = Browser::start(&[]);
    browser.goto(&format!("{link}&autostart=1"));
    browser.wait_for(
        "window.peerPage.state === 'publishing'",
        Duration::from_secs(20),
    );
    let address = browser.eval("return location.href;", vec![]);
    assert!(
        !address.as_str().unwrap().contains("token="),
        "the token left the address bar: {address}"
    );
    let receiver = Receiver::start(&format!(
        "uri={} producer=guest-1 token={}",
        server.room_uri("interviews"),
        recorder_token.trim()
    ));
    let received = receiver.wait(Duration::from_secs(30), "the guest's camera", |r| {
        r.video_frames >= 10
    });
    assert!(received.width > 0);

    // The same page without the token, in a fresh browser (no tab storage).
    let stranger = Browser::start(&[]);
    stranger.goto(&format!(
        "{base}/publish?room=interviews&id=guest-1&autostart=1"
    ));
    let refused = stranger.wait_for("window.peerPage.error", Duration::from_secs(20));
    let refused = refused.as_str().unwrap();
    assert!(
        refused.contains("refused") && refused.contains("token"),
        "{refused}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn peer_serve_refuses_a_public_address_without_tokens_naming_the_options() {
    // 198.18.x.y: reserved for tests; it need not even exist here, the
    // refusal comes before binding.
    let output = Command::new(peer_tests::peer_binary())
        .args(["serve", "--host", "198.18.0.1", "--port", "0"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let text = String::from_utf8_lossy(&output.stderr);
    for words in [
        "refusing to serve on 198.18.0.1",
        "--auth-secret-file",
        "--open",
    ] {
        assert!(text.contains(words), "{words:?} in {text}");
    }
}
