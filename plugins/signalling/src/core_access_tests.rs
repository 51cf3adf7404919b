//! The access rules of the core, grant by grant: what a token allows, and
//! the named error for everything it does not.

use std::time::Duration;

use serde_json::json;

use super::tests::Harness;
use super::*;
use crate::auth::{self, Authority, Claims, mint};
use crate::turn::TurnConfig;

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
const UNIX_NOW: u64 = 1_800_000_000;

fn harness() -> Harness {
    let mut h = Harness::new();
    h.core.set_clock_base(h.now, UNIX_NOW);
    h.core.set_access(Access {
        authority: Some(Authority::hs256(SECRET).unwrap()),
        turn: Some(TurnConfig {
            urls: vec!["turn:198.18.0.1:3478?transport=udp".into()],
            secret: b"turn-secret".to_vec(),
            ttl: Duration::from_secs(600),
        }),
    });
    h
}

fn token(sub: Option<&str>, room: &str, grants: &str) -> String {
    let claims = Claims {
        sub: sub.map(str::to_owned),
        room: room.into(),
        grants: grants
            .split(',')
            .filter(|g| !g.is_empty())
            .map(str::to_owned)
            .collect(),
        exp: UNIX_NOW + 3600,
        nbf: None,
        iat: None,
    };
    mint(&claims, "HS256", SECRET).unwrap()
}

/// Connects `conn` with `token` in its hello; the welcome or the error.
fn hello(h: &mut Harness, conn: ConnId, id: Option<&str>, token: Option<&str>) -> ServerMessage {
    h.run(Input::Connected { conn });
    let effects = h.text(conn, json!({"type": "hello", "id": id, "token": token}));
    effects.only_to(conn).clone()
}

fn error_of(message: &ServerMessage) -> (ErrorCode, String) {
    match message {
        ServerMessage::Error { code, message, .. } => (*code, message.clone()),
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn no_token_bad_tokens_and_the_connection_stays_usable() {
    let mut h = harness();
    let (code, text) = error_of(&hello(&mut h, 1, None, None));
    assert_eq!(code, ErrorCode::Unauthorized);
    assert!(text.contains("token is required"), "{text}");
    let (code, text) = error_of(&hello(&mut h, 2, None, Some("not.a.jwt")));
    assert_eq!(code, ErrorCode::Unauthorized);
    assert!(text.contains("malformed"), "{text}");
    let forged = mint(
        &Claims {
            sub: None,
            room: "a".into(),
            grants: vec!["admin".into()],
            exp: UNIX_NOW + 60,
            nbf: None,
            iat: None,
        },
        "HS256",
        b"not the server's secret at all 32b!",
    )
    .unwrap();
    let (code, text) = error_of(&hello(&mut h, 3, None, Some(&forged)));
    assert_eq!(code, ErrorCode::Unauthorized);
    assert!(text.contains("signature"), "{text}");
    // The same connection registers once it brings a good token.
    let good = token(None, "a", "subscribe");
    let effects = h.text(1, json!({"type": "hello", "token": good}));
    assert!(matches!(effects.only_to(1), ServerMessage::Welcome { .. }));
    // Anything but hello first is refused the same way, not registered.
    h.run(Input::Connected { conn: 4 });
    let (code, _) = h.text(4, json!({"type": "join", "room": "a"})).error_to(4);
    assert_eq!(code, ErrorCode::Unauthorized);
}

#[test]
fn expired_and_early_tokens_name_the_time() {
    let mut h = harness();
    let expired = token(None, "a", "subscribe");
    h.now += Duration::from_secs(3600 + auth::LEEWAY_SECS + 5);
    let (code, text) = error_of(&hello(&mut h, 1, None, Some(&expired)));
    assert_eq!(code, ErrorCode::Unauthorized);
    assert!(text.contains("expired"), "{text}");
}

#[test]
fn the_token_sub_is_the_peer_id_and_nobody_else_takes_it() {
    let mut h = harness();
    let guest = token(Some("guest-1"), "interviews", "publish");
    let ServerMessage::Welcome { id, .. } = hello(&mut h, 1, None, Some(&guest)) else {
        panic!()
    };
    assert_eq!(id, "guest-1");
    // Another token cannot claim that id, nor can a token name another.
    let other = token(Some("guest-2"), "interviews", "publish");
    let (code, text) = error_of(&hello(&mut h, 2, Some("guest-1"), Some(&other)));
    assert_eq!(code, ErrorCode::Forbidden);
    assert!(text.contains("\"guest-2\""), "{text}");
    let anonymous = token(None, "interviews", "subscribe");
    let (code, _) = error_of(&hello(&mut h, 3, Some("guest-1"), Some(&anonymous)));
    assert_eq!(code, ErrorCode::Forbidden);
    // Without a sub: a random id.
    let ServerMessage::Welcome { id, .. } = hello(&mut h, 4, None, Some(&anonymous)) else {
        panic!()
    };
    assert!(id.starts_with("peer-"), "{id}");
}

#[test]
fn rooms_and_each_grant_are_enforced_with_named_errors() {
    let mut h = harness();
    // A viewer may not enter another room, nor publish.
    let viewer = token(Some("v"), "interviews", "subscribe");
    hello(&mut h, 1, None, Some(&viewer));
    let (code, text) = h
        .text(1, json!({"type": "join", "room": "other"}))
        .error_to(1);
    assert_eq!(code, ErrorCode::Unauthorized);
    assert!(
        text.contains("\"interviews\"") && text.contains("\"other\""),
        "{text}"
    );
    let (code, text) = h
        .text(
            1,
            json!({"type": "join", "room": "interviews", "streams": [{"kind": "video"}]}),
        )
        .error_to(1);
    assert_eq!(code, ErrorCode::Forbidden);
    assert_eq!(text, "this token does not allow publish in room interviews");
    h.join(1, "interviews", false);
    let (code, text) = h
        .text(1, json!({"type": "update", "streams": [{"kind": "video"}]}))
        .error_to(1);
    assert_eq!(
        (code, text.as_str()),
        (
            ErrorCode::Forbidden,
            "this token does not allow publish in room interviews"
        )
    );
    let (code, text) = h
        .text(1, json!({"type": "message", "data": "hi"}))
        .error_to(1);
    assert_eq!(
        (code, text.as_str()),
        (
            ErrorCode::Forbidden,
            "this token does not allow data in room interviews"
        )
    );

    // A publisher publishes in a prefixed room, but may not watch anyone.
    let publisher = token(Some("cam"), "inter*", "publish");
    hello(&mut h, 2, None, Some(&publisher));
    h.join(2, "interviews", true);
    let (code, text) = h
        .text(2, json!({"type": "start-session", "peer": "v"}))
        .error_to(2);
    assert_eq!(
        (code, text.as_str()),
        (
            ErrorCode::Forbidden,
            "this token does not allow subscribe in room interviews"
        )
    );

    // The viewer may; so may a recorder.
    let effects = h.text(1, json!({"type": "start-session", "peer": "cam"}));
    assert!(matches!(
        effects.only_to(1),
        ServerMessage::SessionStarted { .. }
    ));
    let recorder = token(None, "interviews", "record");
    hello(&mut h, 3, None, Some(&recorder));
    h.join(3, "interviews", false);
    let effects = h.text(3, json!({"type": "start-session", "peer": "cam"}));
    assert!(matches!(
        effects.to(3)[0],
        ServerMessage::SessionStarted { .. }
    ));

    // Listing: one's own room yes, others and every room only for admins.
    assert!(matches!(
        h.text(1, json!({"type": "list"})).only_to(1),
        ServerMessage::Peers { .. }
    ));
    let (code, _) = h
        .text(1, json!({"type": "list", "room": "secret"}))
        .error_to(1);
    assert_eq!(code, ErrorCode::Forbidden);
    let (code, text) = h.text(1, json!({"type": "list-rooms"})).error_to(1);
    assert_eq!(code, ErrorCode::Forbidden);
    assert!(text.contains("admin"), "{text}");
    let admin = token(None, "*", "admin");
    hello(&mut h, 4, None, Some(&admin));
    assert!(matches!(
        h.text(4, json!({"type": "list-rooms"})).only_to(4),
        ServerMessage::Rooms { .. }
    ));
    assert!(matches!(
        h.text(4, json!({"type": "list", "room": "interviews"}))
            .only_to(4),
        ServerMessage::Peers { .. }
    ));
}

#[test]
fn a_stranger_cannot_end_a_session_an_admin_can() {
    let mut h = harness();
    let cam = token(Some("cam"), "r", "publish");
    let viewer = token(Some("viewer"), "r", "subscribe");
    let stranger = token(Some("stranger"), "r", "subscribe,data");
    let admin = token(Some("ops"), "*", "admin");
    for (conn, t, producer) in [(1, &cam, true), (2, &viewer, false), (3, &stranger, false)] {
        hello(&mut h, conn, None, Some(t));
        h.join(conn, "r", producer);
    }
    hello(&mut h, 4, None, Some(&admin));
    let effects = h.text(2, json!({"type": "start-session", "peer": "cam"}));
    let ServerMessage::SessionStarted { session, .. } = effects.to(2)[0].clone() else {
        panic!()
    };
    let (code, _) = h
        .text(3, json!({"type": "end-session", "session": session}))
        .error_to(3);
    assert_eq!(code, ErrorCode::NotInSession);
    let effects = h.text(
        4,
        json!({"type": "end-session", "session": session, "reason": "ops"}),
    );
    assert!(matches!(
        effects.only_to(1),
        ServerMessage::SessionEnded { .. }
    ));
    assert!(matches!(
        effects.to(2)[0],
        ServerMessage::SessionEnded { .. }
    ));
}

#[test]
fn authenticated_peers_get_short_lived_turn_credentials() {
    let mut h = harness();
    let t = token(Some("cam"), "r", "publish");
    let ServerMessage::Welcome { ice_servers, .. } = hello(&mut h, 1, None, Some(&t)) else {
        panic!()
    };
    assert_eq!(ice_servers.len(), 1);
    let server = &ice_servers[0];
    assert_eq!(
        server.username.as_deref(),
        Some(format!("{}:cam", UNIX_NOW + 600).as_str())
    );
    assert_eq!(
        server.credential.as_deref(),
        Some(crate::turn::password(b"turn-secret", &format!("{}:cam", UNIX_NOW + 600)).as_str())
    );
    // A refused peer gets none.
    let refused = hello(&mut h, 2, None, None);
    assert!(matches!(refused, ServerMessage::Error { .. }));
}

#[test]
fn a_url_token_registers_a_hello_without_one_and_vouched_peers_need_none() {
    let mut h = harness();
    h.run(Input::Connected { conn: 1 });
    h.run(Input::Credential {
        conn: 1,
        token: token(Some("page"), "r", "subscribe"),
    });
    let effects = h.text(1, json!({"type": "hello"}));
    assert!(matches!(effects.only_to(1), ServerMessage::Welcome { id, .. } if id == "page"));
    // An adapter's peer that its protocol's credentials vouched for.
    h.run(Input::Connected { conn: 2 });
    h.run(Input::Vouch {
        conn: 2,
        grants: auth::Grants {
            publish: true,
            ..auth::Grants::default()
        },
        room: "r".into(),
    });
    let effects = h.text(2, json!({"type": "hello", "id": "whip-x"}));
    assert!(matches!(effects.only_to(2), ServerMessage::Welcome { .. }));
    h.join(2, "r", true);
    let (code, _) = h
        .text(2, json!({"type": "join", "room": "elsewhere"}))
        .error_to(2);
    assert_eq!(code, ErrorCode::AlreadyInRoom);
}
