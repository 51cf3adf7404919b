//! The PeerServer front end over real sockets, as the `peerjs` client and
//! the reference server (npm `peer` 1.0.2) speak it: every frame a client
//! would see, with deadlines.

use std::time::Duration;

use peer_signalling::peerjs::{
    CONNECTION_LIMIT_EXCEED, ID_TAKEN, INVALID_KEY, INVALID_WS_PARAMETERS, PeerJsConfig,
};
use peer_signalling::server::ServerConfig;
use peer_tests::http::request;
use peer_tests::ws::{RawPeer, Received};
use peer_tests::{RUNTIME, TestServer, require_loopback_only};
use serde_json::{Value, json};

fn server(peerjs: PeerJsConfig) -> TestServer {
    require_loopback_only();
    TestServer::start_with(ServerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        peerjs,
        ..ServerConfig::default()
    })
}

fn url(server: &TestServer, query: &str) -> String {
    format!("ws://127.0.0.1:{}/peerjs?{query}", server.port())
}

/// A PeerJS client that got OPEN.
async fn client(server: &TestServer, id: &str, token: &str) -> RawPeer {
    let mut peer = RawPeer::connect(&url(
        server,
        &format!("key=peerjs&id={id}&token={token}&version=1.5.5"),
    ))
    .await;
    assert_eq!(peer.recv().await, json!({"type": "OPEN"}), "{id}");
    peer
}

/// The refusal a client sees: one message, then the close.
async fn refused(peer: &mut RawPeer) -> Value {
    let message = peer.recv().await;
    assert!(
        matches!(peer.next().await, Received::Closed(_)),
        "closed after {message}"
    );
    message
}

fn offer(dst: &str, connection_id: &str) -> Value {
    json!({"type": "OFFER", "dst": dst, "payload": {
        "sdp": {"type": "offer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"},
        "type": "data", "connectionId": connection_id, "label": "chat",
        "reliable": true, "serialization": "json", "metadata": null}})
}

#[test]
fn open_relay_with_src_set_by_the_server_and_cors_ids() {
    let server = server(PeerJsConfig::default());
    RUNTIME.block_on(async {
        // A stock client first asks for an id, from any origin.
        let id = request(
            server.port(),
            "GET",
            "/peerjs/id?ts=1&version=1.5.5",
            &[("Origin", "http://app.example")],
            b"",
        )
        .await;
        assert_eq!(id.status, 200);
        assert_eq!(id.header("access-control-allow-origin"), Some("*"));
        assert_eq!(id.body.len(), 36, "{}", id.body);
        let mut alice = client(&server, &id.body, "t1").await;
        let mut bob = client(&server, "bob", "t2").await;
        let mut sent = offer("bob", "dc_1");
        sent["src"] = json!("mallory");
        alice.send(sent).await;
        let got = bob.recv().await;
        assert_eq!(got["type"], "OFFER");
        assert_eq!(got["src"], json!(id.body), "the server sets src");
        assert_eq!(got["payload"]["label"], "chat");
        assert_eq!(got["payload"]["serialization"], "json");
        bob.send(json!({"type": "ANSWER", "dst": id.body, "payload": {
            "sdp": {"type": "answer", "sdp": "v=0\r\n"}, "type": "data", "connectionId": "dc_1"}}))
            .await;
        let answer = alice.recv().await;
        assert_eq!(
            (answer["type"].as_str(), answer["src"].as_str()),
            (Some("ANSWER"), Some("bob"))
        );
        // Discovery is off, as on the reference server.
        let peers = request(server.port(), "GET", "/peerjs/peers", &[], b"").await;
        assert_eq!(peers.status, 401);
        let preflight = request(server.port(), "OPTIONS", "/peerjs/id", &[], b"").await;
        assert_eq!(preflight.status, 204);
        assert_eq!(preflight.header("access-control-allow-origin"), Some("*"));
    });
}

#[test]
fn bad_key_missing_token_and_a_taken_id_are_refused() {
    let server = server(PeerJsConfig::default());
    RUNTIME.block_on(async {
        let mut bad_key =
            RawPeer::connect(&url(&server, "key=nope&id=a&token=t&version=1.5.5")).await;
        assert_eq!(
            refused(&mut bad_key).await,
            json!({"type": "ERROR", "payload": {"msg": INVALID_KEY}})
        );
        let mut no_token = RawPeer::connect(&url(&server, "key=peerjs&id=a&version=1.5.5")).await;
        assert_eq!(
            refused(&mut no_token).await,
            json!({"type": "ERROR", "payload": {"msg": INVALID_WS_PARAMETERS}})
        );
        let mut alice = client(&server, "alice", "mine").await;
        let mut thief = RawPeer::connect(&url(
            &server,
            "key=peerjs&id=alice&token=guess&version=1.5.5",
        ))
        .await;
        assert_eq!(
            refused(&mut thief).await,
            json!({"type": "ID-TAKEN", "payload": {"msg": ID_TAKEN}})
        );
        // alice keeps her id and her socket.
        let mut bob = client(&server, "bob", "t").await;
        bob.send(offer("alice", "dc_9")).await;
        assert_eq!(alice.recv().await["src"], "bob");
    });
}

#[test]
fn a_peer_that_never_comes_expires_after_five_seconds() {
    let server = server(PeerJsConfig::default());
    RUNTIME.block_on(async {
        let mut alice = client(&server, "alice", "t").await;
        let sent = std::time::Instant::now();
        alice.send(offer("ghost", "dc_1")).await;
        let expire = loop {
            // Heartbeats as a client sends them; nothing else comes first.
            alice.send(json!({"type": "HEARTBEAT"})).await;
            match tokio::time::timeout(Duration::from_secs(1), alice.recv()).await {
                Ok(message) => break message,
                Err(_) => assert!(sent.elapsed() < Duration::from_secs(8), "no EXPIRE"),
            }
        };
        assert_eq!(
            expire,
            json!({"type": "EXPIRE", "src": "ghost", "dst": "alice"})
        );
        let waited = sent.elapsed();
        assert!(
            waited >= Duration::from_secs(5) && waited < Duration::from_secs(7),
            "EXPIRE after {waited:?}"
        );
    });
}

#[test]
fn a_message_waits_for_its_peer_to_connect() {
    let server = server(PeerJsConfig::default());
    RUNTIME.block_on(async {
        let mut alice = client(&server, "alice", "t").await;
        alice.send(offer("late", "dc_1")).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut late = client(&server, "late", "t").await;
        let got = late.recv().await;
        assert_eq!(
            (got["type"].as_str(), got["src"].as_str()),
            (Some("OFFER"), Some("alice"))
        );
    });
}

#[test]
fn a_silent_socket_is_closed_after_the_alive_timeout() {
    let server = server(PeerJsConfig {
        alive_timeout: Duration::from_secs(2),
        ..PeerJsConfig::default()
    });
    RUNTIME.block_on(async {
        let started = std::time::Instant::now();
        let mut silent = client(&server, "silent", "t").await;
        let mut chatty = client(&server, "chatty", "t").await;
        let closed = async {
            loop {
                if let Received::Closed(_) = silent.next_within(Duration::from_secs(6)).await {
                    return started.elapsed();
                }
            }
        };
        let beating = async {
            loop {
                chatty.send(json!({"type": "HEARTBEAT"})).await;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        };
        let after = tokio::select! {
            after = closed => after,
            _ = beating => unreachable!(),
        };
        assert!(
            after >= Duration::from_secs(2) && after < Duration::from_secs(5),
            "closed after {after:?}"
        );
        // The heartbeating one is still there, and the silent id is free.
        chatty.send(offer("silent", "dc_1")).await;
        let mut again = client(&server, "silent", "other-token").await;
        assert_eq!(again.recv().await["src"], "chatty");
    });
}

#[test]
fn the_same_id_and_token_reattach_and_the_old_socket_is_closed() {
    let server = server(PeerJsConfig::default());
    RUNTIME.block_on(async {
        let mut first = client(&server, "alice", "secret").await;
        let mut second = RawPeer::connect(&url(
            &server,
            "key=peerjs&id=alice&token=secret&version=1.5.5",
        ))
        .await;
        assert!(matches!(first.next().await, Received::Closed(_)));
        let mut bob = client(&server, "bob", "t").await;
        bob.send(offer("alice", "dc_2")).await;
        // No OPEN on re-attach: the first frame is bob's offer.
        let got = second.recv().await;
        assert_eq!(
            (got["type"].as_str(), got["src"].as_str()),
            (Some("OFFER"), Some("bob"))
        );
    });
}

#[test]
fn the_concurrent_limit_refuses_with_error() {
    let server = server(PeerJsConfig {
        concurrent_limit: 1,
        ..PeerJsConfig::default()
    });
    RUNTIME.block_on(async {
        let _first = client(&server, "one", "t").await;
        let mut second =
            RawPeer::connect(&url(&server, "key=peerjs&id=two&token=t&version=1.5.5")).await;
        assert_eq!(
            refused(&mut second).await,
            json!({"type": "ERROR", "payload": {"msg": CONNECTION_LIMIT_EXCEED}})
        );
    });
}

#[test]
fn peerjs_clients_are_peers_of_the_keys_room() {
    let server = server(PeerJsConfig::default());
    RUNTIME.block_on(async {
        let mut native = RawPeer::connect(&server.ws_url()).await;
        native.join("watcher", "peerjs", false).await;
        let _alice = client(&server, "alice", "t").await;
        let joined = native.recv_type("peer-joined").await;
        assert_eq!(joined["peer"]["id"], "alice");
        assert_eq!(joined["peer"]["meta"]["via"], "peerjs");
        let rooms = request(server.port(), "GET", "/api/rooms", &[], b"").await;
        assert!(rooms.body.contains("\"room\":\"peerjs\""), "{}", rooms.body);
    });
}
