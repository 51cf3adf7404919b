//! Resuming a peer after its connection was lost.

use super::tests::Harness;
use super::*;
use serde_json::json;

/// `cam` (1) and `viewer` (2) in `demo` with a session; the viewer's secret.
fn pair(h: &mut Harness) -> (String, String) {
    h.run(Input::Connected { conn: 1 });
    h.text(1, json!({"type": "hello", "id": "cam"}));
    h.join(1, "demo", true);
    h.run(Input::Connected { conn: 2 });
    let effects = h.text(2, json!({"type": "hello", "id": "viewer"}));
    let ServerMessage::Welcome {
        resume: Some(secret),
        ..
    } = effects.only_to(2)
    else {
        panic!("{effects:?}")
    };
    let secret = secret.clone();
    h.join(2, "demo", false);
    let effects = h.text(2, json!({"type": "start-session", "peer": "cam"}));
    let ServerMessage::SessionStarted { session, .. } = effects.only_to(2) else {
        panic!("{effects:?}")
    };
    (session.clone(), secret)
}

#[test]
fn a_lost_socket_holds_the_peer_for_the_window_then_forgets_it() {
    let mut h = Harness::new();
    let (session, _) = pair(&mut h);
    let effects = h.run(Input::SocketLost { conn: 2 });
    assert!(effects.sent.is_empty(), "nobody is told yet: {effects:?}");
    let window = h.core.limits().resume_window;
    h.now += window - Duration::from_millis(1);
    h.run(Input::Alive { conn: 1 });
    assert!(h.run(Input::Tick).sent.is_empty());
    h.now += Duration::from_millis(1);
    let effects = h.run(Input::Tick);
    assert!(effects.to(1).iter().any(|m| matches!(m, ServerMessage::SessionEnded { session: s, reason } if *s == session && reason == "peer-disconnected")));
    assert!(
        effects
            .to(1)
            .iter()
            .any(|m| matches!(m, ServerMessage::PeerLeft { id, .. } if id == "viewer"))
    );
    assert!(!h.core.has_peer("viewer"));
}

#[test]
fn a_clean_close_forgets_at_once() {
    let mut h = Harness::new();
    pair(&mut h);
    let effects = h.run(Input::Disconnected { conn: 2 });
    assert!(
        effects
            .to(1)
            .iter()
            .any(|m| matches!(m, ServerMessage::PeerLeft { .. }))
    );
}

#[test]
fn the_secret_takes_the_peer_back_with_room_and_sessions() {
    let mut h = Harness::new();
    let (session, secret) = pair(&mut h);
    h.run(Input::SocketLost { conn: 2 });
    h.run(Input::Connected { conn: 3 });
    let wrong = h.text(
        3,
        json!({"type": "hello", "id": "viewer", "resume": "x".repeat(26)}),
    );
    assert_eq!(wrong.error_to(3).0, ErrorCode::NameTaken);
    let effects = h.text(
        3,
        json!({"type": "hello", "id": "viewer", "resume": secret}),
    );
    let ServerMessage::Welcome {
        resumed: Some(resumed),
        resume: Some(fresh),
        ..
    } = effects.only_to(3)
    else {
        panic!("{effects:?}")
    };
    assert_eq!(resumed.room.as_deref(), Some("demo"));
    assert_eq!(resumed.sessions, vec![session.clone()]);
    assert_ne!(*fresh, secret);
    assert!(effects.to(1).is_empty(), "the camera is told nothing");
    // The session relays to the new connection, both ways.
    let sdp =
        json!({"type": "sdp", "session": session, "sdp": {"type": "offer", "sdp": "v=0\r\n"}});
    assert!(matches!(
        h.text(1, sdp).only_to(3),
        ServerMessage::Sdp { .. }
    ));
    let answer =
        json!({"type": "sdp", "session": session, "sdp": {"type": "answer", "sdp": "v=0\r\n"}});
    assert!(matches!(
        h.text(3, answer).only_to(1),
        ServerMessage::Sdp { .. }
    ));
    // The window passing now changes nothing.
    h.now += h.core.limits().resume_window * 2;
    h.run(Input::Alive { conn: 1 });
    h.run(Input::Alive { conn: 3 });
    assert!(h.run(Input::Tick).closed.is_empty());
    assert_eq!(h.core.session_count(), 1);
}

#[test]
fn resuming_over_a_live_connection_closes_it_as_replaced() {
    let mut h = Harness::new();
    let (_, secret) = pair(&mut h);
    h.run(Input::Connected { conn: 3 });
    let effects = h.text(
        3,
        json!({"type": "hello", "id": "viewer", "resume": secret}),
    );
    assert_eq!(effects.closed, vec![(2, ErrorCode::Replaced)]);
    assert!(matches!(
        effects.only_to(3),
        ServerMessage::Welcome {
            resumed: Some(_),
            ..
        }
    ));
    // The old connection's late goodbye does not touch the resumed peer.
    let effects = h.run(Input::Disconnected { conn: 2 });
    assert!(effects.sent.is_empty());
    assert!(h.core.has_peer_in("demo", "viewer"));
}

#[test]
fn secrets_differ_between_peers_and_a_zero_window_disables_resume() {
    let mut h = Harness::new();
    let (_, secret) = pair(&mut h);
    h.run(Input::Connected { conn: 5 });
    let effects = h.text(5, json!({"type": "hello", "id": "other"}));
    let ServerMessage::Welcome {
        resume: Some(other),
        ..
    } = effects.only_to(5)
    else {
        panic!()
    };
    assert_ne!(*other, secret);

    let mut h = Harness::with_limits(Limits {
        resume_window: Duration::ZERO,
        ..Limits::default()
    });
    let (_, secret) = pair(&mut h);
    let effects = h.run(Input::SocketLost { conn: 2 });
    assert!(
        effects
            .to(1)
            .iter()
            .any(|m| matches!(m, ServerMessage::PeerLeft { .. }))
    );
    h.run(Input::Connected { conn: 3 });
    let effects = h.text(
        3,
        json!({"type": "hello", "id": "viewer", "resume": secret}),
    );
    assert!(matches!(
        effects.only_to(3),
        ServerMessage::Welcome { resumed: None, .. }
    ));
}
