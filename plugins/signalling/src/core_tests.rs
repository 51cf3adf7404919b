use super::*;
use serde_json::json;

pub(super) struct Harness {
    pub(super) core: SignallingCore,
    pub(super) now: Instant,
}

/// What one input made the core do, flattened per recipient.
#[derive(Debug, Default)]
pub(super) struct Effects {
    pub(super) sent: Vec<(ConnId, ServerMessage)>,
    pub(super) pings: Vec<ConnId>,
    pub(super) closed: Vec<(ConnId, ErrorCode)>,
}

impl Effects {
    pub(super) fn to(&self, conn: ConnId) -> Vec<&ServerMessage> {
        self.sent
            .iter()
            .filter(|(c, _)| *c == conn)
            .map(|(_, m)| m)
            .collect()
    }

    pub(super) fn only_to(&self, conn: ConnId) -> &ServerMessage {
        let messages = self.to(conn);
        assert_eq!(
            messages.len(),
            1,
            "expected one message to {conn}, got {:?}",
            self.sent
        );
        messages[0]
    }

    pub(super) fn error_to(&self, conn: ConnId) -> (ErrorCode, String) {
        match self.only_to(conn) {
            ServerMessage::Error { code, message, .. } => (*code, message.clone()),
            other => panic!("expected an error, got {other:?}"),
        }
    }
}

impl Harness {
    pub(super) fn new() -> Self {
        Self::with_limits(Limits::default())
    }

    pub(super) fn with_limits(limits: Limits) -> Self {
        Harness {
            core: SignallingCore::new(limits, 7),
            now: Instant::now(),
        }
    }

    pub(super) fn run(&mut self, input: Input<'_>) -> Effects {
        let mut out = Vec::new();
        self.core.handle(self.now, input, &mut out);
        let mut effects = Effects::default();
        for action in out {
            match action {
                Action::Send { to, message } => {
                    for conn in to {
                        effects.sent.push((conn, (*message).clone()));
                    }
                }
                Action::SendText { to, text } => {
                    let message = protocol::decode_server_message(&text)
                        .unwrap_or_else(|err| panic!("{text}: {err}"));
                    for conn in to {
                        effects.sent.push((conn, message.clone()));
                    }
                }
                Action::Ping { conn } => effects.pings.push(conn),
                Action::Close { conn, code, .. } => effects.closed.push((conn, code)),
            }
        }
        effects
    }

    pub(super) fn text(&mut self, conn: ConnId, value: serde_json::Value) -> Effects {
        let text = value.to_string();
        self.run(Input::Text {
            conn,
            text: &text,
            len: text.len(),
        })
    }

    fn raw(&mut self, conn: ConnId, text: &str) -> Effects {
        self.run(Input::Text {
            conn,
            text,
            len: text.len(),
        })
    }

    pub(super) fn connect(&mut self, conn: ConnId, name: &str) {
        self.run(Input::Connected { conn });
        let effects = self.text(conn, json!({"type": "hello", "id": name}));
        assert!(matches!(effects.only_to(conn), ServerMessage::Welcome { id, .. } if id == name));
    }

    pub(super) fn join(&mut self, conn: ConnId, room: &str, producer: bool) -> Effects {
        let streams = if producer {
            json!([{"kind": "video", "codec": "VP8"}, {"kind": "audio", "codec": "OPUS"}])
        } else {
            json!([])
        };
        self.text(
            conn,
            json!({"type": "join", "room": room, "streams": streams}),
        )
    }

    /// Connects `cam` (1, producer) and `viewer` (2) in room `demo` and opens a session.
    fn session(&mut self) -> String {
        self.connect(1, "cam");
        self.join(1, "demo", true);
        self.connect(2, "viewer");
        self.join(2, "demo", false);
        let effects = self.text(2, json!({"type": "start-session", "peer": "cam"}));
        let ServerMessage::SessionRequested { session, peer, .. } = effects.only_to(1) else {
            panic!("{effects:?}")
        };
        assert_eq!(peer, "viewer");
        assert!(
            matches!(effects.only_to(2), ServerMessage::SessionStarted { session: s, peer } if s == session && peer == "cam")
        );
        session.clone()
    }
}

fn offer() -> serde_json::Value {
    json!({"type": "offer", "sdp": "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n"})
}

#[test]
fn hello_assigns_requested_name() {
    let mut h = Harness::new();
    h.connect(1, "cam");
}

#[test]
fn hello_without_name_gets_a_random_valid_id() {
    let mut h = Harness::new();
    h.run(Input::Connected { conn: 1 });
    h.run(Input::Connected { conn: 2 });
    let a = h.text(1, json!({"type": "hello"}));
    let b = h.text(2, json!({"type": "hello"}));
    let (ServerMessage::Welcome { id: a, .. }, ServerMessage::Welcome { id: b, .. }) =
        (a.only_to(1), b.only_to(2))
    else {
        panic!()
    };
    assert!(protocol::is_valid_name(a) && protocol::is_valid_name(b));
    assert_ne!(a, b);
}

#[test]
fn taken_and_invalid_names_are_refused_and_can_be_retried() {
    let mut h = Harness::new();
    h.connect(1, "cam");
    h.run(Input::Connected { conn: 2 });
    assert_eq!(
        h.text(2, json!({"type": "hello", "id": "cam"}))
            .error_to(2)
            .0,
        ErrorCode::NameTaken
    );
    assert_eq!(
        h.text(2, json!({"type": "hello", "id": "a b"}))
            .error_to(2)
            .0,
        ErrorCode::InvalidName
    );
    let ok = h.text(2, json!({"type": "hello", "id": "cam2"}));
    assert!(matches!(ok.only_to(2), ServerMessage::Welcome { .. }));
    assert_eq!(
        h.text(2, json!({"type": "hello"})).error_to(2).0,
        ErrorCode::AlreadyRegistered
    );
}

#[test]
fn name_is_freed_on_disconnect() {
    let mut h = Harness::new();
    h.connect(1, "cam");
    h.run(Input::Disconnected { conn: 1 });
    h.connect(2, "cam");
}

#[test]
fn join_without_hello_registers_implicitly() {
    let mut h = Harness::new();
    h.run(Input::Connected { conn: 1 });
    let effects = h.join(1, "demo", false);
    let messages = effects.to(1);
    assert!(matches!(messages[0], ServerMessage::Welcome { .. }));
    assert!(
        matches!(messages[1], ServerMessage::Joined { room, peers, .. } if room == "demo" && peers.is_empty())
    );
}

#[test]
fn join_lists_members_and_announces_to_them() {
    let mut h = Harness::new();
    h.connect(1, "cam");
    h.join(1, "demo", true);
    h.connect(2, "viewer");
    let effects = h.join(2, "demo", false);
    let ServerMessage::Joined { peers, id, .. } = effects.only_to(2) else {
        panic!()
    };
    assert_eq!(id, "viewer");
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].id, "cam");
    assert!(peers[0].is_producer());
    let ServerMessage::PeerJoined { peer, room } = effects.only_to(1) else {
        panic!()
    };
    assert_eq!((peer.id.as_str(), room.as_str()), ("viewer", "demo"));
}

#[test]
fn join_errors() {
    let mut h = Harness::with_limits(Limits {
        max_peers_per_room: 1,
        ..Limits::default()
    });
    h.connect(1, "a");
    assert_eq!(
        h.join(1, "bad room", false).error_to(1).0,
        ErrorCode::InvalidRoom
    );
    h.join(1, "demo", false);
    assert_eq!(
        h.join(1, "other", false).error_to(1).0,
        ErrorCode::AlreadyInRoom
    );
    h.connect(2, "b");
    let (code, message) = h.join(2, "demo", false).error_to(2);
    assert_eq!(code, ErrorCode::RoomFull);
    assert!(message.contains("demo"));
}

#[test]
fn update_is_announced_to_others() {
    let mut h = Harness::new();
    h.connect(1, "cam");
    h.join(1, "demo", false);
    h.connect(2, "viewer");
    h.join(2, "demo", false);
    let effects = h.text(
        1,
        json!({"type": "update", "streams": [{"kind": "video"}], "meta": {"title": "hi"}}),
    );
    assert!(effects.to(1).is_empty());
    let ServerMessage::PeerUpdated { peer, .. } = effects.only_to(2) else {
        panic!()
    };
    assert!(peer.is_producer());
    assert_eq!(peer.meta["title"], "hi");
}

#[test]
fn leave_announces_and_ends_sessions() {
    let mut h = Harness::new();
    let session = h.session();
    let effects = h.text(1, json!({"type": "leave"}));
    assert!(matches!(effects.only_to(1), ServerMessage::Left { room } if room == "demo"));
    let to_viewer = effects.to(2);
    assert!(to_viewer.iter().any(|m| matches!(m, ServerMessage::SessionEnded { session: s, reason } if *s == session && reason == "peer-left")));
    assert!(
        to_viewer
            .iter()
            .any(|m| matches!(m, ServerMessage::PeerLeft { id, .. } if id == "cam"))
    );
    assert_eq!(h.core.session_count(), 0);
    assert_eq!(
        h.text(1, json!({"type": "leave"})).error_to(1).0,
        ErrorCode::NotInRoom
    );
}

#[test]
fn disconnect_ends_sessions_and_empties_rooms() {
    let mut h = Harness::new();
    let session = h.session();
    let effects = h.run(Input::Disconnected { conn: 2 });
    assert!(effects.to(1).iter().any(|m| matches!(m, ServerMessage::SessionEnded { session: s, reason } if *s == session && reason == "peer-disconnected")));
    h.run(Input::Disconnected { conn: 1 });
    assert!(h.core.room_summaries().is_empty());
    assert_eq!(h.core.connection_count(), 0);
}

#[test]
fn list_and_list_rooms() {
    let mut h = Harness::new();
    h.connect(1, "cam");
    h.join(1, "demo", true);
    h.connect(2, "viewer");
    assert_eq!(
        h.text(2, json!({"type": "list"})).error_to(2).0,
        ErrorCode::NotInRoom
    );
    let effects = h.text(2, json!({"type": "list", "room": "demo"}));
    let ServerMessage::Peers { peers, .. } = effects.only_to(2) else {
        panic!()
    };
    assert_eq!(peers[0].id, "cam");
    let effects = h.text(2, json!({"type": "list-rooms"}));
    let ServerMessage::Rooms { rooms } = effects.only_to(2) else {
        panic!()
    };
    assert_eq!(rooms.len(), 1);
    assert_eq!(rooms[0].producers[0].id, "cam");
    assert_eq!(rooms[0].peers, 1);
}

#[test]
fn sdp_and_ice_are_relayed_to_the_other_party() {
    let mut h = Harness::new();
    let session = h.session();
    let effects = h.text(
        1,
        json!({"type": "sdp", "session": session, "sdp": offer()}),
    );
    let ServerMessage::Sdp { from, sdp, .. } = effects.only_to(2) else {
        panic!()
    };
    assert_eq!(from, "cam");
    assert_eq!(sdp.kind, protocol::SdpKind::Offer);
    let candidate =
        json!({"candidate": "candidate:1 1 UDP 1 127.0.0.1 5000 typ host", "sdpMLineIndex": 0});
    let effects = h.text(
        2,
        json!({"type": "ice", "session": session, "candidate": candidate}),
    );
    let ServerMessage::Ice {
        from,
        candidate: Some(c),
        ..
    } = effects.only_to(1)
    else {
        panic!()
    };
    assert_eq!(from, "viewer");
    assert_eq!(c.sdp_m_line_index, Some(0));
    let effects = h.text(
        2,
        json!({"type": "ice", "session": session, "candidate": null}),
    );
    assert!(matches!(
        effects.only_to(1),
        ServerMessage::Ice {
            candidate: None,
            ..
        }
    ));
}

/// Renegotiation (an ICE restart): a session that is up takes new offers
/// and answers, from either party, each relayed as the first ones were.
#[test]
fn an_established_session_relays_new_offers_and_answers_either_way() {
    let mut h = Harness::new();
    let session = h.session();
    let answer = json!({"type": "answer", "sdp": "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n"});
    let restart =
        json!({"type": "offer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\na=ice-ufrag:new\r\n"});
    let exchanges = [
        (1, 2, offer(), "cam"),
        (2, 1, answer.clone(), "viewer"),
        (1, 2, restart.clone(), "cam"),
        (2, 1, answer.clone(), "viewer"),
        (2, 1, restart, "viewer"),
        (1, 2, answer, "cam"),
    ];
    for (by, to, sdp, name) in exchanges {
        let effects = h.text(by, json!({"type": "sdp", "session": session, "sdp": sdp}));
        let ServerMessage::Sdp {
            session: relayed,
            from,
            sdp: relayed_sdp,
        } = effects.only_to(to)
        else {
            panic!("{effects:?}")
        };
        assert_eq!((relayed, from.as_str()), (&session, name));
        assert_eq!(relayed_sdp.sdp, sdp["sdp"].as_str().unwrap());
        assert!(
            effects.to(by).is_empty(),
            "no error to the sender: {effects:?}"
        );
    }
}

#[test]
fn session_errors_name_the_session() {
    let mut h = Harness::new();
    let session = h.session();
    h.connect(3, "stranger");
    h.join(3, "demo", false);
    let effects = h.text(
        3,
        json!({"type": "sdp", "session": session, "sdp": offer()}),
    );
    let ServerMessage::Error {
        code,
        session: s,
        request,
        ..
    } = effects.only_to(3)
    else {
        panic!()
    };
    assert_eq!(
        (*code, s.as_deref(), request.as_deref()),
        (ErrorCode::NotInSession, Some(session.as_str()), Some("sdp"))
    );
    let (code, message) = h
        .text(
            1,
            json!({"type": "ice", "session": "nope", "candidate": null}),
        )
        .error_to(1);
    assert_eq!(code, ErrorCode::UnknownSession);
    assert!(message.contains("nope"));
    let bad_sdp = json!({"type": "answer", "sdp": "hello"});
    let (code, message) = h
        .text(
            2,
            json!({"type": "sdp", "session": session, "sdp": bad_sdp}),
        )
        .error_to(2);
    assert_eq!(code, ErrorCode::InvalidMessage);
    assert!(message.contains("v=0"));
}

#[test]
fn start_session_errors() {
    let mut h = Harness::new();
    h.connect(1, "cam");
    assert_eq!(
        h.text(1, json!({"type": "start-session", "peer": "x"}))
            .error_to(1)
            .0,
        ErrorCode::NotInRoom
    );
    h.join(1, "demo", true);
    assert_eq!(
        h.text(1, json!({"type": "start-session", "peer": "cam"}))
            .error_to(1)
            .0,
        ErrorCode::SelfSession
    );
    let (code, message) = h
        .text(1, json!({"type": "start-session", "peer": "ghost"}))
        .error_to(1);
    assert_eq!(code, ErrorCode::UnknownPeer);
    assert!(message.contains("ghost") && message.contains("demo"));
    // A peer in another room is not reachable.
    h.connect(2, "elsewhere");
    h.join(2, "other", true);
    assert_eq!(
        h.text(1, json!({"type": "start-session", "peer": "elsewhere"}))
            .error_to(1)
            .0,
        ErrorCode::UnknownPeer
    );
}

#[test]
fn session_limit_per_peer() {
    let mut h = Harness::with_limits(Limits {
        max_sessions_per_peer: 1,
        ..Limits::default()
    });
    h.session();
    h.connect(3, "second");
    h.join(3, "demo", false);
    assert_eq!(
        h.text(3, json!({"type": "start-session", "peer": "cam"}))
            .error_to(3)
            .0,
        ErrorCode::TooManySessions
    );
}

#[test]
fn waited_session_is_held_until_the_peer_joins() {
    let mut h = Harness::new();
    h.connect(2, "viewer");
    h.join(2, "demo", false);
    let effects = h.text(
        2,
        json!({"type": "start-session", "peer": "cam", "wait": true}),
    );
    let ServerMessage::SessionStarted { session, .. } = effects.only_to(2) else {
        panic!()
    };
    let session = session.clone();
    // Not yet there: sdp cannot be relayed, and it says why.
    let (code, _) = h
        .text(
            2,
            json!({"type": "sdp", "session": session, "sdp": offer()}),
        )
        .error_to(2);
    assert_eq!(code, ErrorCode::UnknownPeer);
    h.connect(1, "cam");
    let effects = h.join(1, "demo", true);
    let requested = effects.to(1);
    assert!(requested.iter().any(|m| matches!(m, ServerMessage::SessionRequested { session: s, peer, .. } if *s == session && peer == "viewer")));
    let effects = h.text(
        1,
        json!({"type": "sdp", "session": session, "sdp": offer()}),
    );
    assert!(matches!(effects.only_to(2), ServerMessage::Sdp { .. }));
}

#[test]
fn a_viewer_that_offers_has_its_offer_carried_to_the_producer() {
    let mut h = Harness::new();
    h.connect(1, "cam");
    h.join(1, "demo", true);
    h.connect(2, "viewer");
    h.join(2, "demo", false);
    let effects = h.text(
        2,
        json!({"type": "start-session", "peer": "cam", "offer": offer()}),
    );
    let ServerMessage::SessionRequested {
        offer: Some(carried),
        peer,
        ..
    } = effects.only_to(1)
    else {
        panic!("{effects:?}")
    };
    assert_eq!(peer, "viewer");
    assert_eq!(carried.kind, SdpKind::Offer);
    assert!(carried.sdp.starts_with("v=0"));

    // Held with the session while the producer is awaited.
    h.connect(3, "late-viewer");
    h.join(3, "demo", false);
    h.text(
        3,
        json!({"type": "start-session", "peer": "cam2", "wait": true, "offer": offer()}),
    );
    h.connect(4, "cam2");
    let effects = h.join(4, "demo", true);
    assert!(effects.to(4).iter().any(|m| matches!(m, ServerMessage::SessionRequested { offer: Some(_), peer, .. } if peer == "late-viewer")));

    // An answer where an offer belongs is refused, naming the field.
    let answer = json!({"type": "answer", "sdp": "v=0\r\n"});
    let (code, text) = h
        .text(
            2,
            json!({"type": "start-session", "peer": "cam", "offer": answer}),
        )
        .error_to(2);
    assert_eq!(code, ErrorCode::InvalidMessage);
    assert!(text.contains("\"offer\""), "{text}");
}

#[test]
fn waited_session_times_out_with_a_reason() {
    let mut h = Harness::new();
    h.connect(2, "viewer");
    h.join(2, "demo", false);
    h.text(
        2,
        json!({"type": "start-session", "peer": "cam", "wait": true}),
    );
    h.now += h.core.limits().session_wait_timeout + Duration::from_millis(1);
    h.text(2, json!({"type": "ping"}));
    let effects = h.run(Input::Tick);
    let ServerMessage::SessionEnded { reason, .. } = effects.only_to(2) else {
        panic!("{effects:?}")
    };
    assert!(reason.contains("cam"));
    assert_eq!(h.core.session_count(), 0);
}

#[test]
fn end_session_tells_the_other_party_only() {
    let mut h = Harness::new();
    let session = h.session();
    let effects = h.text(
        2,
        json!({"type": "end-session", "session": session, "reason": "bye"}),
    );
    assert!(effects.to(2).is_empty());
    assert!(
        matches!(effects.only_to(1), ServerMessage::SessionEnded { reason, .. } if reason == "bye")
    );
    assert_eq!(
        h.text(2, json!({"type": "end-session", "session": session}))
            .error_to(2)
            .0,
        ErrorCode::UnknownSession
    );
}

#[test]
fn messages_go_to_one_peer_or_the_room() {
    let mut h = Harness::new();
    h.connect(1, "a");
    h.join(1, "demo", false);
    h.connect(2, "b");
    h.join(2, "demo", false);
    h.connect(3, "c");
    h.join(3, "demo", false);
    let effects = h.text(1, json!({"type": "message", "data": {"text": "hi all"}}));
    assert!(effects.to(1).is_empty());
    for conn in [2, 3] {
        let ServerMessage::Message { from, data, to, .. } = effects.only_to(conn) else {
            panic!()
        };
        assert_eq!(
            (from.as_str(), data["text"].as_str(), to),
            ("a", Some("hi all"), &None)
        );
    }
    let effects = h.text(1, json!({"type": "message", "to": "c", "data": [1, 2, 3]}));
    assert!(effects.to(2).is_empty());
    assert!(
        matches!(effects.only_to(3), ServerMessage::Message { data, .. } if *data == json!([1, 2, 3]))
    );
    assert_eq!(
        h.text(1, json!({"type": "message", "to": "zed", "data": 1}))
            .error_to(1)
            .0,
        ErrorCode::UnknownPeer
    );
}

#[test]
fn message_outside_a_room_is_refused() {
    let mut h = Harness::new();
    h.connect(1, "a");
    assert_eq!(
        h.text(1, json!({"type": "message", "data": 1}))
            .error_to(1)
            .0,
        ErrorCode::NotInRoom
    );
}

#[test]
fn ping_gets_pong_even_before_hello() {
    let mut h = Harness::new();
    h.run(Input::Connected { conn: 1 });
    assert!(matches!(
        h.text(1, json!({"type": "ping"})).only_to(1),
        ServerMessage::Pong {}
    ));
}

#[test]
fn bad_frames_get_errors_and_the_connection_stays() {
    let mut h = Harness::new();
    h.connect(1, "a");
    assert_eq!(h.raw(1, "not json").error_to(1).0, ErrorCode::MalformedJson);
    assert_eq!(
        h.raw(1, r#"{"no":"type"}"#).error_to(1).0,
        ErrorCode::MissingType
    );
    assert_eq!(
        h.raw(1, r#"{"type":"fly"}"#).error_to(1).0,
        ErrorCode::UnknownType
    );
    assert_eq!(
        h.raw(1, r#"{"type":"join"}"#).error_to(1).0,
        ErrorCode::InvalidMessage
    );
    assert_eq!(
        h.run(Input::Binary { conn: 1 }).error_to(1).0,
        ErrorCode::BinaryNotSupported
    );
    let (code, message) = h
        .run(Input::Text {
            conn: 1,
            text: "",
            len: 1 << 20,
        })
        .error_to(1);
    assert_eq!(code, ErrorCode::MessageTooLarge);
    assert!(
        message.contains("1048576") && message.contains("65536"),
        "{message}"
    );
    // Still registered and usable.
    assert!(matches!(
        h.join(1, "demo", false).only_to(1),
        ServerMessage::Joined { .. }
    ));
}

#[test]
fn server_full() {
    let mut h = Harness::with_limits(Limits {
        max_peers: 1,
        max_rooms: 1,
        ..Limits::default()
    });
    h.connect(1, "a");
    h.join(1, "one", false);
    h.run(Input::Connected { conn: 2 });
    assert_eq!(
        h.text(2, json!({"type": "hello"})).error_to(2).0,
        ErrorCode::ServerFull
    );
    let mut h = Harness::with_limits(Limits {
        max_rooms: 1,
        ..Limits::default()
    });
    h.connect(1, "a");
    h.join(1, "one", false);
    h.connect(2, "b");
    assert_eq!(h.join(2, "two", false).error_to(2).0, ErrorCode::ServerFull);
}

#[test]
fn heartbeat_pings_silent_peers_then_drops_dead_ones() {
    let mut h = Harness::new();
    let session = h.session();
    let limits = h.core.limits().clone();
    h.now += limits.heartbeat_interval;
    let effects = h.run(Input::Tick);
    assert_eq!(effects.pings.len(), 2);
    // Pinged once per silence, not on every tick.
    assert!(h.run(Input::Tick).pings.is_empty());
    // The viewer answers; the camera stays silent.
    h.run(Input::Alive { conn: 2 });
    h.now += limits.heartbeat_timeout - limits.heartbeat_interval;
    let effects = h.run(Input::Tick);
    assert_eq!(effects.closed, vec![(1, ErrorCode::HeartbeatTimeout)]);
    let to_viewer = effects.to(2);
    assert!(to_viewer.iter().any(|m| matches!(m, ServerMessage::SessionEnded { session: s, reason } if *s == session && reason == "peer-timed-out")));
    assert!(
        to_viewer
            .iter()
            .any(|m| matches!(m, ServerMessage::PeerLeft { id, .. } if id == "cam"))
    );
    assert_eq!(h.core.connection_count(), 1);
}

#[test]
fn unknown_connection_inputs_are_ignored() {
    let mut h = Harness::new();
    assert!(h.raw(42, "{}").sent.is_empty());
    assert!(h.run(Input::Disconnected { conn: 42 }).sent.is_empty());
}
