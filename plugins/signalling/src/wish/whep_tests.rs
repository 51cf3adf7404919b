//! The WHEP adapter without sockets: a player's offer goes to a producer
//! in `start-session`, its answer comes back as the 201.

use super::tests::{
    ANSWER, CONN, Harness, answer, candidate, core_with, end_of_candidates, responses,
    single_response, to_core,
};
use super::*;

/// A player's offer: receive audio and video.
const PLAYER_OFFER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
a=group:BUNDLE 0 1\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=ice-ufrag:play\r\n\
a=ice-pwd:0123456789012345678901\r\na=fingerprint:sha-256 AA:BB\r\na=setup:actpass\r\n\
a=recvonly\r\na=rtpmap:111 opus/48000/2\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=ice-ufrag:play\r\n\
a=ice-pwd:0123456789012345678901\r\na=fingerprint:sha-256 AA:BB\r\na=setup:actpass\r\n\
a=recvonly\r\na=rtpmap:96 VP8/90000\r\n";

fn whep(producer: bool) -> Harness {
    Harness::of(Kind::Whep, None, core_with(1, producer))
}

fn started() -> ServerMessage {
    ServerMessage::SessionStarted {
        session: "s-1".into(),
        peer: "cam".into(),
    }
}

#[test]
fn a_player_joins_as_a_viewer_and_asks_the_producer_with_its_offer() {
    for producer in [None, Some("cam")] {
        let mut h = whep(true);
        let actions = h.post_to("application/sdp", None, PLAYER_OFFER, producer);
        assert!(responses(&actions).is_empty(), "waits for the answer");
        let messages = to_core(&actions);
        let ClientMessage::Hello { id: Some(id), .. } = messages[0] else {
            panic!("{messages:?}")
        };
        assert!(id.starts_with("whep-"), "{id}");
        let ClientMessage::Join { streams, .. } = messages[1] else {
            panic!("{messages:?}")
        };
        assert!(streams.is_empty(), "a viewer publishes nothing");
        let ClientMessage::StartSession { peer, offer, .. } = messages[2] else {
            panic!("{messages:?}")
        };
        assert_eq!(peer, "cam");
        let offer = offer.as_ref().unwrap();
        assert_eq!(
            (offer.kind, offer.sdp.as_str()),
            (SdpKind::Offer, PLAYER_OFFER)
        );
    }
}

#[test]
fn the_producers_answer_and_candidates_become_the_201() {
    let mut h = whep(true);
    h.post_to("application/sdp", None, PLAYER_OFFER, None);
    assert!(h.core(started()).is_empty());
    h.core(answer());
    h.core(candidate(
        "candidate:1 1 UDP 2015363327 127.0.0.1 50301 typ host",
        0,
    ));
    let response = single_response(&h.core(end_of_candidates()));
    assert_eq!(response.status, 201);
    assert_eq!(response.content_type, Some("application/sdp"));
    assert!(
        response
            .location
            .as_deref()
            .unwrap()
            .starts_with("/whep/live/")
    );
    assert!(response.etag.is_some() && response.accept_patch);
    assert!(response.body.starts_with(&ANSWER[..20]));
    assert!(response.body.contains("a=candidate:1 1 UDP"));

    // Trickle goes into the core session; DELETE leaves.
    let resource = response
        .location
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let fragment = "a=mid:0\r\na=candidate:3 1 UDP 1 127.0.0.1 6000 typ host\r\n";
    let actions = h.patch(&resource, "application/trickle-ice-sdpfrag", fragment);
    assert_eq!(single_response(&actions).status, 204);
    assert!(matches!(to_core(&actions)[0], ClientMessage::Ice { session, .. } if session == "s-1"));
    let actions = h.delete(&resource, None);
    assert_eq!(single_response(&actions).status, 200);
    assert!(actions.contains(&AdapterAction::Disconnect { conn: CONN }));
    assert_eq!(single_response(&h.delete(&resource, None)).status, 404);
}

#[test]
fn nothing_to_play_is_a_409_with_retry_after() {
    let mut h = whep(false);
    let response = single_response(&h.post_to("application/sdp", None, PLAYER_OFFER, None));
    assert_eq!(response.status, 409);
    assert_eq!(response.retry_after, Some(5));
    assert!(
        response
            .body
            .contains("nothing is published in room \"live\""),
        "{}",
        response.body
    );

    let mut h = whep(true);
    let absent = single_response(&h.post_to("application/sdp", None, PLAYER_OFFER, Some("other")));
    assert_eq!(absent.status, 409);
    assert!(absent.body.contains("\"other\""), "{}", absent.body);
    // A peer that is there but publishes nothing cannot be played.
    let viewer =
        single_response(&h.post_to("application/sdp", None, PLAYER_OFFER, Some("recorder-1")));
    assert_eq!(viewer.status, 404);
    assert_eq!(
        h.adapter.session_count(),
        0,
        "refused posts leave nothing behind"
    );
}

#[test]
fn offers_that_receive_nothing_or_are_not_sdp_are_refused() {
    let mut h = whep(true);
    let sending = PLAYER_OFFER.replace("a=recvonly", "a=sendonly");
    let response = single_response(&h.post_to("application/sdp", None, &sending, None));
    assert_eq!(response.status, 400);
    assert!(
        response.body.contains("receives no media"),
        "{}",
        response.body
    );
    let json = single_response(&h.post_to("application/json", None, PLAYER_OFFER, None));
    assert_eq!(json.status, 415);
}

#[test]
fn a_producer_refusing_the_offer_is_a_422_naming_why() {
    let mut h = whep(true);
    h.post_to("application/sdp", None, PLAYER_OFFER, None);
    h.core(started());
    let actions = h.core(ServerMessage::SessionEnded {
        session: "s-1".into(),
        reason: "no codec in common: the producer sends H264".into(),
    });
    let response = single_response(&actions);
    assert_eq!(response.status, 422);
    assert!(response.body.contains("no codec in common"));
    assert!(actions.contains(&AdapterAction::Disconnect { conn: CONN }));
}

#[test]
fn the_token_guards_every_method() {
    let mut h = Harness::of(Kind::Whep, Some("t"), core_with(0, true));
    let missing = single_response(&h.post_to("application/sdp", None, PLAYER_OFFER, None));
    assert_eq!((missing.status, missing.challenge), (401, true));
    h.post_to("application/sdp", Some("Bearer t"), PLAYER_OFFER, None);
    h.core(started());
    h.core(answer());
    let created = single_response(&h.core(end_of_candidates()));
    let resource = created
        .location
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(single_response(&h.delete(&resource, None)).status, 401);
    assert_eq!(
        single_response(&h.delete(&resource, Some("Bearer t"))).status,
        200
    );
}

#[test]
fn ice_servers_are_announced_as_links() {
    let mut h = whep(true);
    h.adapter.config.ice_servers = vec![
        IceServer {
            url: "stun:127.0.0.1:3478".into(),
            username: None,
            credential: None,
        },
        IceServer {
            url: "turn:127.0.0.1:3478?transport=udp".into(),
            username: Some("u".into()),
            credential: Some("p".into()),
        },
    ];
    h.post_to("application/sdp", None, PLAYER_OFFER, None);
    h.core(started());
    h.core(answer());
    let created = single_response(&h.core(end_of_candidates()));
    assert_eq!(
        created.links,
        [
            "<stun:127.0.0.1:3478>; rel=\"ice-server\"",
            "<turn:127.0.0.1:3478?transport=udp>; rel=\"ice-server\"; username=\"u\"; credential=\"p\"; credential-type=\"password\""
        ]
    );
}
