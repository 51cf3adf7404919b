//! The signalling server over real sockets: every kind of bad input gets an
//! error naming the problem, and nobody else notices.

use std::time::Duration;

use peer_signalling::core::Limits;
use peer_signalling::server::{self, ServerConfig};
use peer_tests::ws::{RawPeer, Received};
use serde_json::json;

async fn start() -> peer_signalling::server::RunningServer {
    peer_tests::require_loopback_only();
    server::start(ServerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        ..ServerConfig::default()
    })
    .await
    .expect("server starts")
}

#[tokio::test]
async fn bad_input_gets_named_errors_and_harms_nobody() {
    let server = start().await;
    let url = server.ws_url();

    // Two well-behaved peers with a session between them.
    let mut cam = RawPeer::connect(&url).await;
    cam.join("cam", "demo", true).await;
    let mut viewer = RawPeer::connect(&url).await;
    viewer.join("viewer", "demo", false).await;
    viewer
        .send(json!({"type": "start-session", "peer": "cam"}))
        .await;
    let session = viewer.recv_type("session-started").await["session"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        cam.recv_type("session-requested").await["session"],
        session.as_str()
    );

    let mut rogue = RawPeer::connect(&url).await;
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "malformed-json",
            "{\"type\": \"join\", ".into(),
            "not valid JSON",
        ),
        ("malformed-json", "[1, 2, 3]".into(), "JSON object"),
        ("missing-type", "{\"room\": \"demo\"}".into(), "\"type\""),
        (
            "unknown-type",
            json!({"type": "teleport"}).to_string(),
            "teleport",
        ),
        (
            "invalid-message",
            json!({"type": "join"}).to_string(),
            "room",
        ),
        (
            "invalid-message",
            json!({"type": "start-session", "peer": 7}).to_string(),
            "invalid type",
        ),
        (
            "name-taken",
            json!({"type": "hello", "id": "cam"}).to_string(),
            "cam",
        ),
        (
            "invalid-name",
            json!({"type": "hello", "id": "no spaces please"}).to_string(),
            "no spaces please",
        ),
        (
            "invalid-room",
            json!({"type": "join", "room": "../etc"}).to_string(),
            "../etc",
        ),
        (
            "unknown-session",
            json!({"type": "sdp", "session": "s-nope", "sdp": {"type": "offer", "sdp": "v=0\r\n"}})
                .to_string(),
            "s-nope",
        ),
        (
            "not-in-session",
            json!({"type": "ice", "session": session, "candidate": null}).to_string(),
            &session,
        ),
        (
            "not-in-room",
            json!({"type": "message", "data": "hi"}).to_string(),
            "room",
        ),
    ];
    for (code, frame, mentions) in &cases {
        rogue.send_text(frame.clone()).await;
        let mut reply = rogue.recv().await;
        if reply["type"] == "welcome" {
            // The first message that is not hello registers the peer under a random id.
            reply = rogue.recv().await;
        }
        assert_eq!(reply["type"], "error", "{frame} → {reply}");
        assert_eq!(reply["code"], *code, "{frame} → {reply}");
        let message = reply["message"].as_str().unwrap();
        assert!(
            message.contains(mentions),
            "{frame}: error message \"{message}\" should mention {mentions}"
        );
    }
    rogue.send_binary(vec![1, 2, 3]).await;
    assert_eq!(rogue.recv().await["code"], "binary-not-supported");
    let oversized = json!({"type": "message", "data": "x".repeat(100_000)}).to_string();
    rogue.send_text(oversized).await;
    let reply = rogue.recv().await;
    assert_eq!(reply["code"], "message-too-large");
    assert!(reply["message"].as_str().unwrap().contains("65536"));

    // The rogue connection is still usable after all that.
    rogue.send(json!({"type": "ping"})).await;
    assert_eq!(rogue.recv().await["type"], "pong");

    // The good peers' session still relays, in both directions.
    cam.send(json!({"type": "sdp", "session": session, "sdp": {"type": "offer", "sdp": "v=0\r\nfrom-cam\r\n"}})).await;
    let offer = viewer.recv_type("sdp").await;
    assert_eq!(offer["from"], "cam");
    assert!(offer["sdp"]["sdp"].as_str().unwrap().contains("from-cam"));
    viewer
        .send(json!({"type": "message", "to": "cam", "data": {"hello": [1, 2, 3]}}))
        .await;
    assert_eq!(
        cam.recv_type("message").await["data"],
        json!({"hello": [1, 2, 3]})
    );
    server.stop().await;
}

#[tokio::test]
async fn a_frame_beyond_the_hard_cap_closes_only_that_connection() {
    let server = start().await;
    let url = server.ws_url();
    let mut good = RawPeer::connect(&url).await;
    good.join("good", "demo", false).await;
    let mut huge = RawPeer::connect(&url).await;
    huge.join("huge", "demo", false).await;
    assert_eq!(good.recv_type("peer-joined").await["peer"]["id"], "huge");
    // The server may reset the connection before the frame is even sent.
    huge.try_send_text("x".repeat(8 << 20)).await;
    assert!(matches!(huge.next().await, Received::Closed(_)));
    // The others are told it left and carry on.
    assert_eq!(good.recv_type("peer-left").await["id"], "huge");
    good.send(json!({"type": "list"})).await;
    let peers = good.recv_type("peers").await;
    assert_eq!(peers["peers"], json!([]));
    server.stop().await;
}

#[tokio::test]
async fn a_peer_that_vanishes_is_held_for_its_resume_window_then_its_sessions_end() {
    peer_tests::require_loopback_only();
    let server = server::start(ServerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        limits: Limits {
            resume_window: Duration::from_secs(2),
            ..Limits::default()
        },
        ..ServerConfig::default()
    })
    .await
    .unwrap();
    let url = server.ws_url();
    let mut cam = RawPeer::connect(&url).await;
    cam.join("cam", "demo", true).await;
    let mut viewer = RawPeer::connect(&url).await;
    viewer.join("viewer", "demo", false).await;
    viewer
        .send(json!({"type": "start-session", "peer": "cam"}))
        .await;
    let session = viewer.recv_type("session-started").await["session"].clone();
    cam.recv_type("session-requested").await;
    // Gone without a close frame: the socket just ends.
    let vanished = std::time::Instant::now();
    drop(viewer);
    let ended = cam.recv_type("session-ended").await;
    let held = vanished.elapsed();
    assert_eq!(ended["session"], session);
    assert_eq!(ended["reason"], "peer-disconnected");
    assert!(
        held >= Duration::from_secs(2) && held < Duration::from_secs(4),
        "ended after {held:?}, with a resume window of 2 s"
    );
    assert_eq!(cam.recv_type("peer-left").await["id"], "viewer");
    server.stop().await;
}

#[tokio::test]
async fn a_lost_peer_resumes_with_its_secret_and_its_session_goes_on() {
    let server = start().await;
    let url = server.ws_url();
    let mut cam = RawPeer::connect(&url).await;
    cam.join("cam", "demo", true).await;
    let mut viewer = RawPeer::connect(&url).await;
    viewer.send(json!({"type": "hello", "id": "viewer"})).await;
    let welcome = viewer.recv_type("welcome").await;
    let secret = welcome["resume"]
        .as_str()
        .expect("a resume secret")
        .to_owned();
    assert!(secret.len() >= 22, "{secret}");
    viewer.send(json!({"type": "join", "room": "demo"})).await;
    viewer.recv_type("joined").await;
    viewer
        .send(json!({"type": "start-session", "peer": "cam"}))
        .await;
    let session = viewer.recv_type("session-started").await["session"].clone();
    cam.recv_type("session-requested").await;
    drop(viewer);

    // Without the secret the id stays taken; a wrong one too.
    let mut stranger = RawPeer::connect(&url).await;
    for resume in [None, Some("wrong")] {
        stranger
            .send(json!({"type": "hello", "id": "viewer", "resume": resume}))
            .await;
        assert_eq!(stranger.recv_type("error").await["code"], "name-taken");
    }
    // With it: the same id, room and session, and nobody was told a thing.
    let mut back = RawPeer::connect(&url).await;
    back.send(json!({"type": "hello", "id": "viewer", "resume": secret}))
        .await;
    let welcome = back.recv_type("welcome").await;
    assert_eq!(welcome["id"], "viewer");
    assert_eq!(welcome["resumed"]["room"], "demo", "{welcome}");
    assert_eq!(welcome["resumed"]["sessions"], json!([session]));
    assert_ne!(welcome["resume"], secret, "a fresh secret each time");
    cam.send(
        json!({"type": "sdp", "session": session, "sdp": {"type": "offer", "sdp": "v=0\r\n"}}),
    )
    .await;
    let sdp = back.recv_type("sdp").await;
    assert_eq!(sdp["session"], session);
    back.send(json!({"type": "list"})).await;
    let peers = back.recv_type("peers").await;
    assert_eq!(peers["peers"][0]["id"], "cam");
    // The camera saw no leave and no end, only its offer go through.
    cam.send(json!({"type": "ping"})).await;
    let next = cam.recv().await;
    assert_eq!(next["type"], "pong", "the camera was told {next}");
    server.stop().await;
}

#[tokio::test]
async fn room_limit_is_enforced_with_a_clear_error() {
    peer_tests::require_loopback_only();
    let limits = Limits {
        max_peers_per_room: 2,
        ..Limits::default()
    };
    let server = server::start(ServerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        limits,
        ..ServerConfig::default()
    })
    .await
    .unwrap();
    let url = server.ws_url();
    let mut a = RawPeer::connect(&url).await;
    a.join("a", "small", false).await;
    let mut b = RawPeer::connect(&url).await;
    b.join("b", "small", false).await;
    let mut c = RawPeer::connect(&url).await;
    c.send(json!({"type": "join", "room": "small"})).await;
    let welcome = c.recv().await;
    assert_eq!(welcome["type"], "welcome");
    let reply = c.recv().await;
    assert_eq!(reply["code"], "room-full");
    assert!(reply["message"].as_str().unwrap().contains("small"));
    server.stop().await;
}

#[tokio::test]
async fn rooms_are_listed_over_http() {
    let server = start().await;
    let mut cam = RawPeer::connect(&server.ws_url()).await;
    cam.join("cam", "studio", true).await;
    let body = http_get(server.local_addr(), "/api/rooms").await;
    let rooms: serde_json::Value =
        serde_json::from_str(body.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(rooms["rooms"][0]["room"], "studio");
    assert_eq!(rooms["rooms"][0]["producers"][0]["id"], "cam");
    server.stop().await;
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut body = String::new();
    stream.read_to_string(&mut body).await.unwrap();
    body
}
