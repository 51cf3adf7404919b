//! The PeerJS adapter without sockets: a small pump plays the hub, so each
//! test reads what every socket was sent and what native peers received.

use std::collections::HashMap;

use super::*;
use crate::core::{Action, Input, Limits};

const OFFER_SDP: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n";
const ANSWER_SDP: &str = "v=0\r\no=- 3 4 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n";

struct Harness {
    core: SignallingCore,
    adapter: PeerJsAdapter,
    now: Instant,
    /// What each socket was sent, as JSON.
    written: HashMap<SocketId, Vec<Value>>,
    closed: Vec<SocketId>,
    /// What native peers received.
    native: HashMap<ConnId, Vec<ServerMessage>>,
    next: u64,
}

impl Harness {
    fn new() -> Harness {
        Harness::with(PeerJsConfig::default())
    }

    fn with(config: PeerJsConfig) -> Harness {
        Harness {
            core: SignallingCore::new(Limits::default(), 1),
            adapter: PeerJsAdapter::new(config, StdRng::seed_from_u64(7)),
            now: Instant::now(),
            written: HashMap::new(),
            closed: Vec::new(),
            native: HashMap::new(),
            next: 100,
        }
    }

    fn fresh(&mut self) -> u64 {
        self.next += 1;
        self.next
    }

    /// Carries out actions as the hub does, until none is left.
    fn run(&mut self, mut actions: Vec<AdapterAction>) {
        loop {
            let mut core_out = Vec::new();
            for action in actions.drain(..) {
                let now = self.now;
                match action {
                    AdapterAction::Connect { conn } => {
                        self.core
                            .handle(now, Input::Connected { conn }, &mut core_out)
                    }
                    AdapterAction::ToCore { conn, message } => {
                        self.core
                            .handle(now, Input::Message { conn, message }, &mut core_out)
                    }
                    AdapterAction::Disconnect { conn } => {
                        self.core
                            .handle(now, Input::Disconnected { conn }, &mut core_out)
                    }
                    AdapterAction::Write { socket, text } => self
                        .written
                        .entry(socket)
                        .or_default()
                        .push(serde_json::from_str(&text).expect("JSON frames")),
                    AdapterAction::CloseSocket { socket, .. } => self.closed.push(socket),
                    AdapterAction::Vouch { conn, grants, room } => {
                        self.core
                            .handle(now, Input::Vouch { conn, grants, room }, &mut core_out)
                    }
                    AdapterAction::Respond { .. } => {}
                }
            }
            for action in core_out {
                match action {
                    Action::Send { to, message } => {
                        for conn in to {
                            if self.adapter.owns(conn) {
                                self.adapter
                                    .core_sent(self.now, conn, &message, &mut actions);
                            } else {
                                self.native
                                    .entry(conn)
                                    .or_default()
                                    .push((*message).clone());
                            }
                        }
                    }
                    Action::Close { conn, .. } if self.adapter.owns(conn) => {
                        self.adapter.closed(self.now, conn, &mut actions)
                    }
                    // The hub answers heartbeat pings for adapter peers.
                    Action::Ping { conn } if self.adapter.owns(conn) => {
                        let mut ignored = Vec::new();
                        self.core
                            .handle(self.now, Input::Alive { conn }, &mut ignored);
                    }
                    _ => {}
                }
            }
            if actions.is_empty() {
                return;
            }
        }
    }

    /// A PeerJS socket with this query; returns its socket id.
    fn open(&mut self, key: Option<&str>, id: Option<&str>, token: Option<&str>) -> SocketId {
        let socket = self.fresh();
        let conn = self.fresh();
        let mut out = Vec::new();
        self.adapter.connect(
            self.now,
            &self.core,
            socket,
            Connect { key, id, token },
            conn,
            &mut out,
        );
        self.run(out);
        socket
    }

    fn client(&mut self, id: &str) -> SocketId {
        let socket = self.open(Some("peerjs"), Some(id), Some("tok"));
        assert_eq!(self.types(socket), ["OPEN"], "{id}");
        socket
    }

    fn send(&mut self, socket: SocketId, frame: Value) {
        let mut out = Vec::new();
        self.adapter.frame(
            self.now,
            &self.core,
            socket,
            decode_text(&frame.to_string()),
            &mut out,
        );
        self.run(out);
    }

    /// Time passes, ticking every second as the hub does.
    fn tick(&mut self, after: Duration) {
        let end = self.now + after;
        while self.now < end {
            self.now = (self.now + Duration::from_secs(1)).min(end);
            let mut out = Vec::new();
            let mut core_out = Vec::new();
            self.core.handle(self.now, Input::Tick, &mut core_out);
            for action in core_out {
                if let Action::Ping { conn } = action
                    && self.adapter.owns(conn)
                {
                    let mut ignored = Vec::new();
                    self.core
                        .handle(self.now, Input::Alive { conn }, &mut ignored);
                }
            }
            self.adapter.tick(self.now, &mut out);
            self.run(out);
        }
    }

    fn frames(&mut self, socket: SocketId) -> Vec<Value> {
        self.written.remove(&socket).unwrap_or_default()
    }

    fn types(&mut self, socket: SocketId) -> Vec<String> {
        self.frames(socket)
            .iter()
            .map(|f| f["type"].as_str().unwrap().to_owned())
            .collect()
    }

    /// A native peer of room `room` (the core's own protocol).
    fn native_peer(&mut self, id: &str, room: &str) -> ConnId {
        let conn = self.fresh();
        let mut out = Vec::new();
        self.core
            .handle(self.now, Input::Connected { conn }, &mut out);
        for message in [
            ClientMessage::Hello {
                id: Some(id.into()),
                meta: Value::Null,
                token: None,
                resume: None,
            },
            ClientMessage::Join {
                room: room.into(),
                streams: Vec::new(),
                meta: Value::Null,
                presence: true,
            },
        ] {
            self.native_says(conn, message);
        }
        self.native.remove(&conn);
        conn
    }

    fn native_says(&mut self, conn: ConnId, message: ClientMessage) {
        self.run(vec![AdapterAction::ToCore { conn, message }]);
    }
}

fn offer(dst: &str, connection_id: &str) -> Value {
    json!({"type": "OFFER", "dst": dst, "src": "forged", "payload": {
        "sdp": {"type": "offer", "sdp": OFFER_SDP},
        "type": "data", "connectionId": connection_id, "label": "chat",
        "reliable": true, "serialization": "binary", "metadata": {"colour": "blue"},
    }})
}

#[test]
fn a_client_with_key_id_and_token_gets_open() {
    let mut h = Harness::new();
    let socket = h.open(Some("peerjs"), Some("alice"), Some("t1"));
    assert_eq!(h.frames(socket), vec![json!({"type": "OPEN"})]);
    assert!(h.core.has_peer_in("peerjs", "alice"));
    assert!(h.closed.is_empty());
}

#[test]
fn missing_parameters_and_a_bad_key_get_error_and_close() {
    let mut h = Harness::new();
    for (key, id, token, message) in [
        (Some("peerjs"), Some("a"), None, INVALID_WS_PARAMETERS),
        (Some("peerjs"), None, Some("t"), INVALID_WS_PARAMETERS),
        (None, Some("a"), Some("t"), INVALID_WS_PARAMETERS),
        (Some("peerjs"), Some("a"), Some(""), INVALID_WS_PARAMETERS),
        (Some("other"), Some("a"), Some("t"), INVALID_KEY),
    ] {
        let socket = h.open(key, id, token);
        assert_eq!(
            h.frames(socket),
            vec![json!({"type": "ERROR", "payload": {"msg": message}})]
        );
        assert!(h.closed.contains(&socket));
    }
    assert!(!h.core.has_peer("a"));
}

#[test]
fn an_id_in_use_with_another_token_is_taken_and_the_owner_keeps_it() {
    let mut h = Harness::new();
    let alice = h.client("alice");
    let intruder = h.open(Some("peerjs"), Some("alice"), Some("guess"));
    assert_eq!(
        h.frames(intruder),
        vec![json!({"type": "ID-TAKEN", "payload": {"msg": ID_TAKEN}})]
    );
    assert_eq!(h.closed, vec![intruder]);
    // A native peer's id is taken for PeerJS clients too.
    h.native_peer("studio", "peerjs");
    let other = h.open(Some("peerjs"), Some("studio"), Some("t"));
    assert_eq!(h.types(other), ["ID-TAKEN"]);
    // alice is untouched and still reachable.
    let bob = h.client("bob");
    h.send(bob, offer("alice", "dc_1"));
    assert_eq!(h.types(alice), ["OFFER"]);
}

#[test]
fn the_same_id_and_token_reattach_without_open() {
    let mut h = Harness::new();
    let old = h.client("alice");
    let new = h.open(Some("peerjs"), Some("alice"), Some("tok"));
    assert!(h.frames(new).is_empty(), "no OPEN on re-attach");
    assert_eq!(h.closed, vec![old]);
    // The old socket's end does not take the peer away.
    let mut out = Vec::new();
    h.adapter.socket_closed(old, &mut out);
    h.run(out);
    assert!(h.core.has_peer_in("peerjs", "alice"));
    let bob = h.client("bob");
    h.send(bob, offer("alice", "dc_1"));
    assert_eq!(h.types(new), ["OFFER"]);
    assert!(h.frames(old).is_empty());
}

#[test]
fn offer_answer_and_candidates_are_relayed_with_src_set_by_the_server() {
    let mut h = Harness::new();
    let alice = h.client("alice");
    let bob = h.client("bob");
    h.send(alice, offer("bob", "dc_abc"));
    let frames = h.frames(bob);
    assert_eq!(frames.len(), 1);
    let relayed = &frames[0];
    assert_eq!(relayed["type"], "OFFER");
    assert_eq!(relayed["src"], "alice", "the server sets src");
    assert_eq!(relayed["dst"], "bob");
    let payload = &relayed["payload"];
    assert_eq!(payload["sdp"]["type"], "offer");
    assert_eq!(payload["sdp"]["sdp"], OFFER_SDP);
    for (field, value) in [
        ("type", json!("data")),
        ("connectionId", json!("dc_abc")),
        ("label", json!("chat")),
        ("reliable", json!(true)),
        ("serialization", json!("binary")),
        ("metadata", json!({"colour": "blue"})),
    ] {
        assert_eq!(payload[field], value, "{field}");
    }

    h.send(
        bob,
        json!({"type": "ANSWER", "dst": "alice", "payload": {
            "sdp": {"type": "answer", "sdp": ANSWER_SDP}, "type": "data", "connectionId": "dc_abc"}}),
    );
    let candidate = json!({"candidate": "candidate:1 1 UDP 2122260223 127.0.0.1 50000 typ host",
        "sdpMid": "0", "sdpMLineIndex": 0, "usernameFragment": "u"});
    h.send(
        bob,
        json!({"type": "CANDIDATE", "dst": "alice", "payload": {
            "candidate": candidate, "type": "data", "connectionId": "dc_abc"}}),
    );
    let frames = h.frames(alice);
    assert_eq!(frames.len(), 2, "{frames:?}");
    assert_eq!(frames[0]["type"], "ANSWER");
    assert_eq!(frames[0]["src"], "bob");
    assert_eq!(frames[0]["payload"]["sdp"]["sdp"], ANSWER_SDP);
    assert_eq!(frames[0]["payload"]["connectionId"], "dc_abc");
    assert_eq!(frames[0]["payload"]["type"], "data");
    assert_eq!(frames[1]["type"], "CANDIDATE");
    assert_eq!(
        frames[1]["payload"]["candidate"]["candidate"],
        candidate["candidate"]
    );
    assert_eq!(frames[1]["payload"]["candidate"]["sdpMid"], "0");
    assert_eq!(frames[1]["payload"]["candidate"]["sdpMLineIndex"], 0);

    // Candidates the other way, for the same connection.
    h.send(
        alice,
        json!({"type": "CANDIDATE", "dst": "bob", "payload": {
            "candidate": candidate, "type": "data", "connectionId": "dc_abc"}}),
    );
    assert_eq!(h.types(bob), ["CANDIDATE"]);
}

#[test]
fn messages_for_a_peer_not_yet_connected_wait_for_it() {
    let mut h = Harness::new();
    let alice = h.client("alice");
    h.send(alice, offer("bob", "dc_1"));
    h.send(
        alice,
        json!({"type": "CANDIDATE", "dst": "bob", "payload": {
            "candidate": {"candidate": "candidate:1 1 UDP 1 127.0.0.1 5 typ host", "sdpMLineIndex": 0},
            "type": "data", "connectionId": "dc_1"}}),
    );
    assert!(h.frames(alice).is_empty());
    h.tick(Duration::from_secs(3));
    let bob = h.open(Some("peerjs"), Some("bob"), Some("t"));
    assert_eq!(h.types(bob), ["OPEN", "OFFER", "CANDIDATE"]);
    h.tick(Duration::from_secs(5));
    assert!(h.frames(alice).is_empty(), "delivered: no EXPIRE");
}

#[test]
fn a_peer_that_never_comes_expires_once_per_sender_after_five_seconds() {
    let mut h = Harness::new();
    let alice = h.client("alice");
    h.send(alice, offer("ghost", "dc_1"));
    h.send(alice, offer("ghost", "dc_2"));
    h.tick(Duration::from_millis(4000));
    assert!(h.frames(alice).is_empty());
    h.tick(Duration::from_millis(1000));
    assert_eq!(
        h.frames(alice),
        vec![json!({"type": "EXPIRE", "src": "ghost", "dst": "alice"})]
    );
    // Gone from the queue: a late ghost gets nothing.
    let ghost = h.open(Some("peerjs"), Some("ghost"), Some("t"));
    assert_eq!(h.types(ghost), ["OPEN"]);
}

#[test]
fn a_silent_client_is_dropped_after_the_alive_timeout() {
    let mut h = Harness::new();
    let alice = h.client("alice");
    let bob = h.client("bob");
    h.tick(Duration::from_secs(60));
    h.send(bob, json!({"type": "HEARTBEAT"}));
    h.tick(Duration::from_secs(30));
    assert_eq!(h.closed, vec![alice]);
    assert!(!h.core.has_peer("alice"));
    assert!(h.core.has_peer_in("peerjs", "bob"));
    // Its id is free again.
    h.client("alice");
}

#[test]
fn the_concurrent_limit_refuses_with_error() {
    let mut h = Harness::with(PeerJsConfig {
        concurrent_limit: 2,
        ..PeerJsConfig::default()
    });
    h.client("a");
    h.client("b");
    let third = h.open(Some("peerjs"), Some("c"), Some("t"));
    assert_eq!(
        h.frames(third),
        vec![json!({"type": "ERROR", "payload": {"msg": CONNECTION_LIMIT_EXCEED}})]
    );
}

#[test]
fn an_id_the_core_cannot_take_is_refused_saying_why() {
    let mut h = Harness::new();
    let socket = h.open(Some("peerjs"), Some("two words"), Some("t"));
    let frames = h.frames(socket);
    assert_eq!(frames[0]["type"], "ERROR");
    assert!(
        frames[0]["payload"]["msg"]
            .as_str()
            .unwrap()
            .contains("A-Z a-z 0-9"),
        "{frames:?}"
    );
}

#[test]
fn unreadable_frames_are_ignored_without_error() {
    let mut h = Harness::new();
    let alice = h.client("alice");
    let mut out = Vec::new();
    for text in [
        "not json",
        "{}",
        r#"{"type":"OFFER","dst":"bob"}"#,
        r#"{"type":"DANCE"}"#,
    ] {
        h.adapter
            .frame(h.now, &h.core, alice, decode_text(text), &mut out);
    }
    h.run(out);
    // An OFFER without a payload waits like any message, then expires;
    // nothing else is said, and no ERROR (it would cost the client its id).
    assert!(h.frames(alice).is_empty());
    assert!(h.closed.is_empty());
}

#[test]
fn a_native_peer_calls_a_peerjs_client_and_gets_its_answer() {
    let mut h = Harness::new();
    let alice = h.client("alice");
    let studio = h.native_peer("studio", "peerjs");
    h.native_says(
        studio,
        ClientMessage::StartSession {
            peer: "alice".into(),
            wait: false,
            offer: Some(SessionDescription {
                kind: SdpKind::Offer,
                sdp: OFFER_SDP.into(),
            }),
        },
    );
    let session = match h.native.remove(&studio).unwrap().as_slice() {
        [ServerMessage::SessionStarted { session, .. }] => session.clone(),
        other => panic!("{other:?}"),
    };
    let frames = h.frames(alice);
    assert_eq!(frames[0]["type"], "OFFER");
    assert_eq!(frames[0]["src"], "studio");
    assert_eq!(frames[0]["payload"]["type"], "media");
    let connection_id = frames[0]["payload"]["connectionId"].as_str().unwrap();
    assert!(connection_id.starts_with("mc_"), "{connection_id}");
    h.send(
        alice,
        json!({"type": "ANSWER", "dst": "studio", "payload": {
            "sdp": {"type": "answer", "sdp": ANSWER_SDP}, "type": "media", "connectionId": connection_id}}),
    );
    match h.native.remove(&studio).unwrap().as_slice() {
        [
            ServerMessage::Sdp {
                session: s,
                from,
                sdp,
            },
        ] => {
            assert_eq!((s, from.as_str()), (&session, "alice"));
            assert_eq!(sdp.kind, SdpKind::Answer);
        }
        other => panic!("{other:?}"),
    }
    h.native_says(
        studio,
        ClientMessage::Ice {
            session: session.clone(),
            candidate: Some(IceCandidate {
                candidate: "candidate:1 1 UDP 1 127.0.0.1 5 typ host".into(),
                sdp_m_line_index: Some(0),
                sdp_mid: None,
            }),
        },
    );
    let frames = h.frames(alice);
    assert_eq!(frames[0]["type"], "CANDIDATE");
    assert_eq!(frames[0]["payload"]["connectionId"], connection_id);
    // The pipeline ends the call: the client hears LEAVE.
    h.native_says(
        studio,
        ClientMessage::EndSession {
            session,
            reason: Some("stopped".into()),
        },
    );
    assert_eq!(
        h.frames(alice),
        vec![json!({"type": "LEAVE", "src": "studio", "dst": "alice"})]
    );
}

#[test]
fn a_peerjs_client_calls_a_native_peer() {
    let mut h = Harness::new();
    let booth = h.native_peer("booth", "peerjs");
    let alice = h.client("alice");
    h.native.remove(&booth);
    h.send(alice, offer("booth", "mc_x"));
    let session = match h.native.remove(&booth).unwrap().as_slice() {
        [
            ServerMessage::SessionRequested {
                session,
                peer,
                offer: Some(offer),
            },
        ] => {
            assert_eq!(peer, "alice");
            assert_eq!(offer.sdp, OFFER_SDP);
            session.clone()
        }
        other => panic!("{other:?}"),
    };
    h.native_says(
        booth,
        ClientMessage::Sdp {
            session,
            sdp: SessionDescription {
                kind: SdpKind::Answer,
                sdp: ANSWER_SDP.into(),
            },
        },
    );
    let frames = h.frames(alice);
    assert_eq!(frames[0]["type"], "ANSWER");
    assert_eq!(frames[0]["src"], "booth");
    assert_eq!(frames[0]["payload"]["connectionId"], "mc_x");
    // The caller leaves the server: the session ends for the callee,
    // the caller's own socket hears nothing more.
    let mut out = Vec::new();
    h.adapter.socket_closed(alice, &mut out);
    h.run(out);
    assert!(
        h.native[&booth]
            .iter()
            .any(|m| matches!(m, ServerMessage::SessionEnded { .. })),
        "{:?}",
        h.native[&booth]
    );
}

#[test]
fn a_native_peer_asking_for_an_offer_is_told_why_not() {
    let mut h = Harness::new();
    h.client("alice");
    let viewer = h.native_peer("viewer", "peerjs");
    h.native_says(
        viewer,
        ClientMessage::StartSession {
            peer: "alice".into(),
            wait: false,
            offer: None,
        },
    );
    let ended = h.native.remove(&viewer).unwrap();
    assert!(
        ended.iter().any(|m| matches!(m,
            ServerMessage::SessionEnded { reason, .. } if reason.contains("PeerJS"))),
        "{ended:?}"
    );
}

#[test]
fn peers_in_other_keys_are_not_reachable_and_expire() {
    let mut h = Harness::with(PeerJsConfig {
        keys: vec!["peerjs".into(), "other".into()],
        ..PeerJsConfig::default()
    });
    let alice = h.client("alice");
    let bob = h.open(Some("other"), Some("bob"), Some("t"));
    assert_eq!(h.types(bob), ["OPEN"]);
    h.send(alice, offer("bob", "dc_1"));
    assert!(h.frames(bob).is_empty());
    h.tick(Duration::from_secs(5));
    assert_eq!(h.types(alice), ["EXPIRE"]);
}

#[test]
fn leave_closes_the_connections_between_two_clients() {
    let mut h = Harness::new();
    let alice = h.client("alice");
    let bob = h.client("bob");
    h.send(alice, offer("bob", "dc_1"));
    h.frames(bob);
    h.send(alice, json!({"type": "LEAVE", "dst": "bob"}));
    assert_eq!(
        h.frames(bob),
        vec![json!({"type": "LEAVE", "src": "alice", "dst": "bob"})]
    );
    // A goodbye without dst leaves the server.
    h.send(alice, json!({"type": "LEAVE"}));
    assert!(!h.core.has_peer("alice"));
}

#[test]
fn ids_are_uuids_and_discovery_is_off_by_default() {
    let mut h = Harness::new();
    let id = h.adapter.new_id(&h.core);
    assert_eq!(id.len(), 36);
    assert_eq!(id.as_bytes()[14], b'4', "{id}");
    assert!(protocol::is_valid_name(&id));
    assert_ne!(h.adapter.new_id(&h.core), id);
    assert_eq!(h.adapter.peers(&h.core, "peerjs"), None);
    let mut h = Harness::with(PeerJsConfig {
        allow_discovery: true,
        ..PeerJsConfig::default()
    });
    h.client("alice");
    h.native_peer("studio", "peerjs");
    assert_eq!(
        h.adapter.peers(&h.core, "peerjs"),
        Some(vec!["alice".to_owned(), "studio".to_owned()])
    );
}

#[test]
fn with_tokens_required_the_peerjs_token_is_ours_and_a_bad_one_is_refused_in_words() {
    use crate::auth::{Authority, Claims, mint};
    use crate::core::Access;
    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const UNIX_NOW: u64 = 1_800_000_000;
    let mut h = Harness::new();
    h.core.set_clock_base(h.now, UNIX_NOW);
    h.core.set_access(Access {
        authority: Some(Authority::hs256(SECRET).unwrap()),
        turn: None,
    });
    let token = |sub: &str| {
        let claims = Claims {
            sub: Some(sub.into()),
            room: "peerjs".into(),
            grants: vec!["publish".into(), "subscribe".into(), "data".into()],
            exp: UNIX_NOW + 3600,
            nbf: None,
            iat: None,
        };
        mint(&claims, "HS256", SECRET).unwrap()
    };
    // Its own token: OPEN.
    let alice = h.open(Some("peerjs"), Some("alice"), Some(&token("alice")));
    assert_eq!(h.frames(alice), vec![json!({"type": "OPEN"})]);
    assert!(h.core.has_peer_in("peerjs", "alice"));
    // PeerJS's own random token, or someone else's: ERROR saying why, closed.
    for (id, bad) in [
        ("bob", "a-random-peerjs-token".to_owned()),
        ("mallory", token("alice")),
    ] {
        let socket = h.open(Some("peerjs"), Some(id), Some(&bad));
        let frames = h.frames(socket);
        assert_eq!(frames.len(), 1, "{frames:?}");
        assert_eq!(frames[0]["type"], "ERROR", "{frames:?}");
        let message = frames[0]["payload"]["msg"].as_str().unwrap();
        assert!(!message.is_empty(), "{frames:?}");
        assert!(h.closed.contains(&socket));
        assert!(!h.core.has_peer(id));
    }
}

/// Only one client per key watches the room (so 1 000 joins are not a
/// million announcements), and through it a message held for a native
/// peer that has not come yet still reaches it when it joins — also after
/// the first watcher left.
#[test]
fn one_watcher_per_key_sees_native_peers_come_for_held_messages() {
    let mut h = Harness::new();
    let first = h.client("first");
    let others: Vec<_> = (0..20).map(|i| h.client(&format!("c{i}"))).collect();
    let mut out = Vec::new();
    h.adapter.socket_closed(first, &mut out);
    h.run(out);
    // The next client to come watches in its place.
    let late = h.client("late");
    let alice = others[3];
    h.send(alice, offer("booth", "mc_1"));
    assert!(h.frames(alice).is_empty(), "held, not expired");
    // The native peer comes (as `native_peer` does, keeping what it gets).
    let booth = h.fresh();
    let mut out = Vec::new();
    h.core
        .handle(h.now, Input::Connected { conn: booth }, &mut out);
    h.native_says(
        booth,
        ClientMessage::Hello {
            id: Some("booth".into()),
            meta: Value::Null,
            token: None,
            resume: None,
        },
    );
    h.native_says(
        booth,
        ClientMessage::Join {
            room: "peerjs".into(),
            streams: Vec::new(),
            meta: Value::Null,
            presence: true,
        },
    );
    let requested = h
        .native
        .get(&booth)
        .into_iter()
        .flatten()
        .any(|m| matches!(m, ServerMessage::SessionRequested { peer, .. } if peer == "c3"));
    assert!(
        requested,
        "the held offer reached the native peer: {:?}",
        h.native
    );
    assert!(h.frames(late).is_empty());
}

/// A frame as the socket's task decodes it, with the default size limit.
fn decode_text(text: &str) -> Inbound {
    decode(PeerJsConfig::default().max_message_bytes, text)
}

/// An OFFER of about `bytes` bytes for `dst`.
fn big_offer(dst: &str, connection_id: &str, bytes: usize) -> Value {
    let sdp = format!("{OFFER_SDP}a=x-pad:{}", "x".repeat(bytes));
    json!({"type": "OFFER", "dst": dst, "payload": {
        "sdp": {"type": "offer", "sdp": sdp}, "type": "data", "connectionId": connection_id,
    }})
}

#[test]
fn a_sender_past_its_held_bytes_is_told_and_closed() {
    let mut h = Harness::with(PeerJsConfig {
        max_held_bytes_per_sender: 10_000,
        ..PeerJsConfig::default()
    });
    let alice = h.client("alice");
    for n in 0..3 {
        h.send(alice, big_offer(&format!("absent-{n}"), "dc_1", 3_000));
    }
    let said = h.frames(alice);
    assert!(said.is_empty(), "three held, nothing said yet: {said:?}");
    assert!(h.adapter.held_bytes(None) > 9_000);
    h.send(alice, big_offer("absent-9", "dc_1", 3_000));
    let frames = h.frames(alice);
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0]["type"], "ERROR");
    let msg = frames[0]["payload"]["msg"].as_str().unwrap();
    assert!(msg.starts_with("held-budget-exceeded: "), "{msg}");
    assert!(
        msg.contains("at most 10000 bytes") && msg.contains("\"absent-9\""),
        "{msg}"
    );
    assert_eq!(h.closed, [alice]);
    assert!(!h.core.has_peer("alice"));
    // What it held goes at the expiry, and the counts with it.
    h.tick(Duration::from_secs(6));
    assert_eq!(h.adapter.held_bytes(None), 0);
}

#[test]
fn past_the_overall_held_bytes_senders_get_expire_and_stay() {
    let mut h = Harness::with(PeerJsConfig {
        max_held_bytes: 10_000,
        ..PeerJsConfig::default()
    });
    let alice = h.client("alice");
    let bob = h.client("bob");
    for n in 0..3 {
        h.send(alice, big_offer(&format!("absent-{n}"), "dc_1", 3_000));
    }
    h.send(bob, big_offer("carol", "dc_2", 3_000));
    assert_eq!(
        h.frames(bob),
        vec![json!({"type": "EXPIRE", "src": "carol", "dst": "bob"})]
    );
    assert!(h.closed.is_empty());
    // Once the held messages expire, there is room again: carol, coming
    // in time, gets bob's offer.
    h.tick(Duration::from_secs(6));
    assert_eq!(h.types(alice), ["EXPIRE", "EXPIRE", "EXPIRE"]);
    h.send(bob, big_offer("carol", "dc_3", 3_000));
    assert!(h.frames(bob).is_empty(), "held");
    let carol = h.open(Some("peerjs"), Some("carol"), Some("tok"));
    assert_eq!(h.types(carol), ["OPEN", "OFFER"]);
    assert_eq!(h.adapter.held_bytes(None), 0);
    assert_eq!(h.adapter.held_bytes(Some(1)), 0);
}

#[test]
fn frames_are_decoded_with_their_size_and_unreadable_ones_named() {
    assert!(matches!(
        decode(100, &"x".repeat(101)),
        Inbound::TooLarge(101)
    ));
    assert!(matches!(decode(100, "{not json"), Inbound::Unreadable(_)));
    let text = r#"{"type":"HEARTBEAT"}"#;
    assert!(matches!(decode(100, text), Inbound::Frame(_, n) if n == text.len()));
    let error: Value = serde_json::from_str(&rate_limited_error(&Limits::default())).unwrap();
    assert_eq!(error["type"], "ERROR");
    let msg = error["payload"]["msg"].as_str().unwrap();
    assert!(
        msg.starts_with("rate-limited: more than 200 messages per second"),
        "{msg}"
    );
}
