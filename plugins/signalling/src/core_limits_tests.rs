//! The core's defences against one client costing everyone else: the
//! message rate limit, the hello deadline, meta sizes, and awaited sessions
//! found without scanning.

use super::tests::Harness;
use super::*;
use serde_json::json;

#[test]
fn a_flood_is_cut_to_the_rate_with_one_named_error_per_second() {
    let limits = Limits {
        message_rate: 10.0,
        message_burst: 20.0,
        ..Limits::default()
    };
    let mut h = Harness::with_limits(limits);
    h.connect(1, "flooder");
    h.join(1, "demo", false);
    h.connect(2, "bystander");
    h.join(2, "demo", false);
    // The hello and join above took two of the burst of 20.
    let mut relayed = 0;
    let mut limited = Vec::new();
    for i in 0..100 {
        let effects = h.text(1, json!({"type": "message", "to": "bystander", "data": i}));
        relayed += effects.to(2).len();
        for message in effects.to(1) {
            if let ServerMessage::Error { code, message, .. } = message {
                limited.push((*code, message.clone()));
            }
        }
    }
    assert_eq!(relayed, 18, "the burst passes, the rest is dropped");
    assert_eq!(limited.len(), 1, "told once, not per message: {limited:?}");
    assert_eq!(limited[0].0, ErrorCode::RateLimited);
    assert!(
        limited[0].1.contains("10 messages per second"),
        "{}",
        limited[0].1
    );
    // The bystander is not limited by the flooder.
    let effects = h.text(2, json!({"type": "message", "to": "flooder", "data": "hi"}));
    assert_eq!(effects.to(1).len(), 1);
    // Half a second refills five messages.
    h.now += Duration::from_millis(500);
    let passed = (0..10)
        .map(|i| h.text(1, json!({"type": "message", "to": "bystander", "data": i})))
        .filter(|effects| !effects.to(2).is_empty())
        .count();
    assert_eq!(passed, 5);
    // A second after the first error the flooder is told again.
    h.now += Duration::from_millis(600);
    let told_again = (0..30)
        .flat_map(|_| h.text(1, json!({"type": "ping"})).sent)
        .filter(|(_, m)| {
            matches!(
                m,
                ServerMessage::Error {
                    code: ErrorCode::RateLimited,
                    ..
                }
            )
        })
        .count();
    assert_eq!(told_again, 1);
}

#[test]
fn a_connection_that_never_says_hello_is_closed_even_if_it_pings() {
    let mut h = Harness::new();
    let limits = h.core.limits().clone();
    h.run(Input::Connected { conn: 1 });
    h.connect(2, "peer");
    h.now += limits.hello_timeout / 2;
    // Pongs and pings are signs of life, but not registration.
    h.run(Input::Alive { conn: 1 });
    h.text(1, json!({"type": "ping"}));
    h.run(Input::Alive { conn: 2 });
    assert!(h.run(Input::Tick).closed.is_empty());
    h.now += limits.hello_timeout / 2;
    let effects = h.run(Input::Tick);
    assert_eq!(effects.closed, vec![(1, ErrorCode::HelloTimeout)]);
    assert_eq!(h.core.connection_count(), 1, "the registered peer stays");
}

#[test]
fn meta_over_the_limit_is_refused_with_its_size_wherever_it_comes() {
    let mut h = Harness::new();
    let big = "x".repeat(h.core.limits().max_meta_bytes);
    h.run(Input::Connected { conn: 1 });
    let effects = h.text(
        1,
        json!({"type": "hello", "id": "a", "meta": {"name": big}}),
    );
    let (code, message) = effects.error_to(1);
    assert_eq!(code, ErrorCode::MessageTooLarge);
    assert!(message.contains("meta of 4107 bytes"), "{message}");
    // Still usable: a hello with small meta works.
    h.connect(1, "a");
    let effects = h.text(
        1,
        json!({"type": "join", "room": "r", "meta": {"name": big}}),
    );
    assert_eq!(effects.error_to(1).0, ErrorCode::MessageTooLarge);
    h.text(
        1,
        json!({"type": "join", "room": "r", "meta": {"name": "ok"}}),
    );
    let effects = h.text(1, json!({"type": "update", "meta": {"name": big}}));
    assert_eq!(effects.error_to(1).0, ErrorCode::MessageTooLarge);
    let small = "y".repeat(4000);
    let effects = h.text(1, json!({"type": "update", "meta": small}));
    assert!(effects.to(1).is_empty(), "{effects:?}");
}

#[test]
fn listing_a_room_that_does_not_exist_names_it() {
    let mut h = Harness::new();
    h.connect(1, "admin");
    let effects = h.text(1, json!({"type": "list", "room": "nowhere"}));
    let (code, message) = effects.error_to(1);
    assert_eq!(code, ErrorCode::UnknownRoom);
    assert!(message.contains("nowhere"));
}

#[test]
fn awaited_sessions_are_indexed_by_room_and_peer_and_cleaned_up() {
    let mut h = Harness::new();
    // 900 viewers each wait for a different camera.
    for viewer in 0..900u64 {
        let conn = 100 + viewer;
        h.connect(conn, &format!("viewer-{viewer}"));
        h.join(conn, "demo", false);
        h.text(
            conn,
            json!({"type": "start-session", "peer": format!("cam-{viewer}"), "wait": true}),
        );
    }
    assert_eq!(h.core.awaited.len(), 900);
    // cam-7 joins: only viewer-7's session starts.
    h.connect(1, "cam-7");
    let effects = h.join(1, "demo", true);
    let requested: Vec<_> = effects
        .to(1)
        .into_iter()
        .filter(|m| matches!(m, ServerMessage::SessionRequested { .. }))
        .collect();
    assert_eq!(requested.len(), 1);
    assert!(
        matches!(requested[0], ServerMessage::SessionRequested { peer, .. } if peer == "viewer-7")
    );
    assert_eq!(h.core.awaited.len(), 899);
    // A waiting viewer that goes away takes its entry with it.
    h.run(Input::Disconnected { conn: 100 });
    assert_eq!(h.core.awaited.len(), 898);
    // The rest expire; the started session does not.
    h.now += h.core.limits().session_wait_timeout;
    for viewer in 1..900u64 {
        h.run(Input::Alive { conn: 100 + viewer });
    }
    h.run(Input::Alive { conn: 1 });
    h.run(Input::Tick);
    assert!(h.core.awaited.is_empty());
    assert!(h.core.awaited_deadlines.is_empty());
    assert_eq!(h.core.session_count(), 1);
}

/// `presence: false`: the peer is told nothing of the room's comings and
/// goings, and its own join costs nothing per member; those who watch see
/// it as usual; `list` still answers it; a resumed peer keeps its choice.
#[test]
fn a_peer_without_presence_is_not_told_of_the_room_and_costs_no_roster() {
    let mut h = Harness::new();
    h.connect(1, "cam");
    h.join(1, "demo", true);
    h.connect(2, "quiet");
    let effects = h.text(
        2,
        json!({"type": "join", "room": "demo", "presence": false}),
    );
    let ServerMessage::Joined { peers, .. } = effects.only_to(2) else {
        panic!("{effects:?}")
    };
    assert!(peers.is_empty(), "no roster without presence: {peers:?}");
    // The watcher (cam) sees it join.
    assert!(
        matches!(effects.only_to(1), ServerMessage::PeerJoined { peer, .. } if peer.id == "quiet")
    );

    h.connect(3, "late");
    let effects = h.join(3, "demo", false);
    assert!(effects.to(2).is_empty(), "told of a join: {effects:?}");
    assert!(matches!(
        effects.only_to(1),
        ServerMessage::PeerJoined { .. }
    ));
    let ServerMessage::Joined { peers, .. } = effects.only_to(3) else {
        panic!()
    };
    // A watcher's roster lists everyone, the quiet peer included.
    let ids: Vec<_> = peers.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["cam", "quiet"]);

    let effects = h.text(1, json!({"type": "update", "meta": {"title": "x"}}));
    assert!(effects.to(2).is_empty(), "told of an update: {effects:?}");
    assert!(matches!(
        effects.only_to(3),
        ServerMessage::PeerUpdated { .. }
    ));

    let effects = h.text(2, json!({"type": "list"}));
    let ServerMessage::Peers { peers, .. } = effects.only_to(2) else {
        panic!("{effects:?}")
    };
    // Everyone else in the room.
    assert_eq!(peers.len(), 2);

    // Its own departure is told to those who watch.
    let effects = h.run(Input::Disconnected { conn: 2 });
    assert!(matches!(effects.only_to(1), ServerMessage::PeerLeft { id, .. } if id == "quiet"));
    assert!(matches!(effects.only_to(3), ServerMessage::PeerLeft { .. }));
    let effects = h.run(Input::Disconnected { conn: 3 });
    assert!(matches!(effects.only_to(1), ServerMessage::PeerLeft { id, .. } if id == "late"));
}

#[test]
fn presence_is_on_unless_said_otherwise_and_not_written_when_on() {
    let join: ClientMessage =
        protocol::decode_client_message(r#"{"type":"join","room":"r"}"#).unwrap();
    assert!(matches!(join, ClientMessage::Join { presence: true, .. }));
    assert_eq!(
        protocol::encode_client_message(&join),
        r#"{"type":"join","room":"r"}"#
    );
}
