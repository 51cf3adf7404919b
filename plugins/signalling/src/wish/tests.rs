//! The WHIP adapter without sockets: requests and core messages in,
//! responses and native-protocol messages out.

use super::*;
use crate::protocol::PeerInfo;
use std::time::Duration;

pub(super) const OFFER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
a=group:BUNDLE 0 1\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=ice-ufrag:abcd\r\n\
a=ice-pwd:0123456789012345678901\r\na=fingerprint:sha-256 AA:BB\r\na=setup:actpass\r\n\
a=sendonly\r\na=rtpmap:111 opus/48000/2\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=ice-ufrag:abcd\r\n\
a=ice-pwd:0123456789012345678901\r\na=fingerprint:sha-256 AA:BB\r\na=setup:actpass\r\n\
a=sendonly\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:97 rtx/90000\r\n";

pub(super) const ANSWER: &str = "v=0\r\no=- 3 4 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
a=group:BUNDLE 0 1\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=recvonly\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=recvonly\r\n";

pub(super) const CONN: ConnId = 1000;

/// A core with `receivers` peers that publish nothing in room "live" (and
/// a producer "cam" when `producer`): what the adapter looks at.
pub(super) fn core_with(receivers: usize, producer: bool) -> SignallingCore {
    use crate::core::Input;
    let mut core = SignallingCore::new(crate::core::Limits::default(), 1);
    let now = Instant::now();
    let mut out = Vec::new();
    let mut join = |conn: ConnId, id: String, streams: Vec<crate::protocol::StreamInfo>| {
        core.handle(now, Input::Connected { conn }, &mut out);
        for message in [
            ClientMessage::Hello {
                id: Some(id),
                meta: serde_json::Value::Null,
                token: None,
                resume: None,
            },
            ClientMessage::Join {
                room: "live".into(),
                streams,
                meta: serde_json::Value::Null,
                presence: true,
            },
        ] {
            core.handle(now, Input::Message { conn, message }, &mut out);
        }
    };
    for i in 0..receivers {
        join(i as ConnId + 1, format!("recorder-{}", i + 1), Vec::new());
    }
    if producer {
        let video = crate::protocol::StreamInfo {
            kind: "video".into(),
            codec: Some("VP8".into()),
            label: None,
            extra: Default::default(),
        };
        join(500, "cam".into(), vec![video]);
    }
    core
}

pub(super) struct Harness {
    pub adapter: WishAdapter,
    pub now: Instant,
    pub out: Vec<AdapterAction>,
    pub next_request: RequestId,
    pub core: SignallingCore,
}

impl Harness {
    pub fn new(token: Option<&str>) -> Harness {
        Harness::of(Kind::Whip, token, core_with(1, false))
    }

    pub fn of(kind: Kind, token: Option<&str>, core: SignallingCore) -> Harness {
        Harness {
            adapter: WishAdapter::new(
                kind,
                WishConfig {
                    token: token.map(str::to_owned),
                    ..WishConfig::default()
                },
                StdRng::seed_from_u64(7),
            ),
            now: Instant::now(),
            out: Vec::new(),
            next_request: 1,
            core,
        }
    }

    pub fn request<'a>(
        &mut self,
        content_type: &'a str,
        auth: Option<&'a str>,
        body: &'a str,
    ) -> Request<'a> {
        self.next_request += 1;
        Request {
            id: self.next_request,
            content_type: Some(content_type),
            authorization: auth,
            if_match: None,
            body,
        }
    }

    /// POST to room "live" (WHEP: to `producer`, or the first one).
    pub fn post_to(
        &mut self,
        content_type: &str,
        auth: Option<&str>,
        body: &str,
        producer: Option<&str>,
    ) -> Vec<AdapterAction> {
        let request = self.request(content_type, auth, body);
        let endpoint = Endpoint {
            room: "live",
            producer,
        };
        self.adapter
            .post(self.now, &self.core, request, endpoint, CONN, &mut self.out);
        std::mem::take(&mut self.out)
    }

    /// A WHIP POST with `receivers` receivers in the room.
    fn post(
        &mut self,
        content_type: &str,
        auth: Option<&str>,
        body: &str,
        receivers: usize,
    ) -> Vec<AdapterAction> {
        self.core = core_with(receivers, false);
        self.post_to(content_type, auth, body, None)
    }

    pub fn core(&mut self, message: ServerMessage) -> Vec<AdapterAction> {
        self.adapter
            .core_sent(self.now, CONN, &message, &mut self.out);
        std::mem::take(&mut self.out)
    }

    pub fn tick(&mut self, after: Duration) -> Vec<AdapterAction> {
        self.now += after;
        self.adapter.tick(self.now, &mut self.out);
        std::mem::take(&mut self.out)
    }

    pub fn patch_with(
        &mut self,
        session: &str,
        content_type: &str,
        body: &str,
        if_match: Option<&str>,
    ) -> Vec<AdapterAction> {
        let mut request = self.request(content_type, None, body);
        request.if_match = if_match;
        self.adapter.patch(
            self.now,
            &self.core,
            request,
            "live",
            session,
            &mut self.out,
        );
        std::mem::take(&mut self.out)
    }

    pub fn patch(&mut self, session: &str, content_type: &str, body: &str) -> Vec<AdapterAction> {
        self.patch_with(session, content_type, body, None)
    }

    pub fn delete(&mut self, session: &str, auth: Option<&str>) -> Vec<AdapterAction> {
        let request = self.request("", auth, "");
        self.adapter.delete(
            self.now,
            &self.core,
            request,
            "live",
            session,
            &mut self.out,
        );
        std::mem::take(&mut self.out)
    }

    /// POST, a receiver asks, answers and ends gathering: the 201.
    fn established(&mut self) -> (String, HttpResponse) {
        self.post("application/sdp", None, OFFER, 1);
        self.core(requested());
        self.core(answer());
        self.core(candidate(
            "candidate:1 1 UDP 2015363327 127.0.0.1 50301 typ host",
            0,
        ));
        let actions = self.core(end_of_candidates());
        let response = single_response(&actions);
        assert_eq!(response.status, 201, "{}", response.body);
        let location = response.location.clone().unwrap();
        let session = location.rsplit('/').next().unwrap().to_owned();
        (session, response)
    }
}

pub(super) fn requested() -> ServerMessage {
    ServerMessage::SessionRequested {
        session: "s-1".into(),
        peer: "recorder-1".into(),
        offer: None,
    }
}

pub(super) fn answer() -> ServerMessage {
    ServerMessage::Sdp {
        session: "s-1".into(),
        from: "recorder-1".into(),
        sdp: SessionDescription {
            kind: SdpKind::Answer,
            sdp: ANSWER.into(),
        },
    }
}

pub(super) fn candidate(text: &str, index: u32) -> ServerMessage {
    ServerMessage::Ice {
        session: "s-1".into(),
        from: "recorder-1".into(),
        candidate: Some(IceCandidate {
            candidate: text.into(),
            sdp_m_line_index: Some(index),
            sdp_mid: None,
        }),
    }
}

pub(super) fn end_of_candidates() -> ServerMessage {
    ServerMessage::Ice {
        session: "s-1".into(),
        from: "recorder-1".into(),
        candidate: None,
    }
}

pub(super) fn responses(actions: &[AdapterAction]) -> Vec<&HttpResponse> {
    actions
        .iter()
        .filter_map(|a| match a {
            AdapterAction::Respond { response, .. } => Some(response),
            _ => None,
        })
        .collect()
}

pub(super) fn single_response(actions: &[AdapterAction]) -> HttpResponse {
    let found = responses(actions);
    assert_eq!(found.len(), 1, "{actions:#?}");
    found[0].clone()
}

pub(super) fn to_core(actions: &[AdapterAction]) -> Vec<&ClientMessage> {
    actions
        .iter()
        .filter_map(|a| match a {
            AdapterAction::ToCore { message, .. } => Some(message),
            _ => None,
        })
        .collect()
}

#[test]
fn a_post_joins_the_room_as_a_publisher_of_the_offers_tracks() {
    let mut h = Harness::new(None);
    let actions = h.post("application/sdp; charset=utf-8", None, OFFER, 1);
    assert!(responses(&actions).is_empty(), "waits for a receiver");
    assert_eq!(actions[0], AdapterAction::Connect { conn: CONN });
    let messages = to_core(&actions);
    let ClientMessage::Hello { id: Some(id), .. } = messages[0] else {
        panic!("{messages:?}")
    };
    assert!(id.starts_with("whip-"), "{id}");
    let ClientMessage::Join { room, streams, .. } = messages[1] else {
        panic!("{messages:?}")
    };
    assert_eq!(room, "live");
    let info = PeerInfo {
        id: id.clone(),
        streams: streams.clone(),
        meta: serde_json::Value::Null,
    };
    assert!(info.is_producer());
    let kinds: Vec<_> = streams
        .iter()
        .map(|s| (s.kind.as_str(), s.codec.as_deref()))
        .collect();
    assert_eq!(kinds, [("audio", Some("OPUS")), ("video", Some("VP8"))]);
    assert!(h.adapter.owns(CONN));
}

#[test]
fn the_offer_goes_to_the_first_receiver_and_the_answer_carries_its_candidates() {
    let mut h = Harness::new(None);
    h.post("application/sdp", None, OFFER, 1);
    let actions = h.core(requested());
    let messages = to_core(&actions);
    assert!(
        matches!(messages[0], ClientMessage::Sdp { session, sdp } if session == "s-1" && sdp.kind == SdpKind::Offer && sdp.sdp == OFFER),
        "{messages:?}"
    );
    // A second receiver is turned away: one offer, one answer.
    let second = h.core(ServerMessage::SessionRequested {
        session: "s-2".into(),
        peer: "viewer".into(),
        offer: None,
    });
    assert!(
        matches!(to_core(&second)[0], ClientMessage::EndSession { session, .. } if session == "s-2")
    );

    assert!(h.core(answer()).is_empty(), "gathering");
    h.core(candidate(
        "candidate:1 1 UDP 2015363327 127.0.0.1 50301 typ host",
        0,
    ));
    h.core(candidate(
        "candidate:2 1 TCP 1015021823 127.0.0.1 9 typ host tcptype active",
        1,
    ));
    let response = single_response(&h.core(end_of_candidates()));
    assert_eq!(response.status, 201);
    assert_eq!(response.content_type, Some("application/sdp"));
    let location = response.location.unwrap();
    assert!(location.starts_with("/whip/live/"), "{location}");
    let body = response.body;
    let audio = body.find("m=audio").unwrap();
    let video = body.find("m=video").unwrap();
    let first = body.find("a=candidate:1 ").unwrap();
    let second = body.find("a=candidate:2 ").unwrap();
    assert!(audio < first && first < video && video < second, "{body}");
    assert_eq!(body.matches("a=end-of-candidates\r\n").count(), 2, "{body}");
    assert!(body.ends_with("\r\n"));
}

#[test]
fn without_end_of_candidates_the_answer_goes_after_the_gathering_deadline() {
    let mut h = Harness::new(None);
    h.post("application/sdp", None, OFFER, 1);
    h.core(requested());
    h.core(answer());
    h.core(candidate("candidate:1 1 UDP 1 127.0.0.1 5000 typ host", 0));
    assert!(h.tick(Duration::from_millis(100)).is_empty());
    let response = single_response(&h.tick(Duration::from_secs(1)));
    assert_eq!(response.status, 201);
    assert!(response.body.contains("a=candidate:1 1 UDP"));
    assert!(!response.body.contains("end-of-candidates"));
}

#[test]
fn bad_requests_are_refused_with_what_is_wrong() {
    let mut h = Harness::new(None);
    let wrong_type = single_response(&h.post("application/json", None, OFFER, 1));
    assert_eq!(wrong_type.status, 415);
    assert!(
        wrong_type.body.contains("application/sdp"),
        "{}",
        wrong_type.body
    );

    for (body, needle) in [
        ("", "empty"),
        ("hello", "v=0"),
        ("v=0\r\ns=-\r\n", "no m=audio or m=video"),
        (
            "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=fingerprint:x\r\n",
            "ice-ufrag",
        ),
        (
            "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=ice-ufrag:x\r\n",
            "fingerprint",
        ),
        (
            "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=ice-ufrag:x\r\na=fingerprint:x\r\na=recvonly\r\n",
            "sends no media",
        ),
    ] {
        let response = single_response(&h.post("application/sdp", None, body, 1));
        assert_eq!(response.status, 400, "{body:?}");
        assert!(
            response.body.contains(needle),
            "{body:?}: {}",
            response.body
        );
    }
    let nobody = single_response(&h.post("application/sdp", None, OFFER, 0));
    assert_eq!(nobody.status, 503);
    assert!(nobody.body.contains("no receiver"));
    assert!(!h.adapter.owns(CONN), "refused posts leave nothing behind");
    assert_eq!(h.adapter.session_count(), 0);
}

#[test]
fn the_token_is_required_when_configured() {
    let mut h = Harness::new(Some("s3cret"));
    let missing = single_response(&h.post("application/sdp", None, OFFER, 1));
    assert_eq!((missing.status, missing.challenge), (401, true));
    let wrong = single_response(&h.post("application/sdp", Some("Bearer nope"), OFFER, 1));
    assert_eq!(wrong.status, 401);
    let actions = h.post("application/sdp", Some("Bearer s3cret"), OFFER, 1);
    assert!(responses(&actions).is_empty());
    assert!(h.adapter.owns(CONN));
}

#[test]
fn no_answer_in_time_is_a_504_and_the_publisher_leaves() {
    let mut h = Harness::new(None);
    h.post("application/sdp", None, OFFER, 1);
    h.core(requested());
    let actions = h.tick(Duration::from_secs(16));
    assert_eq!(single_response(&actions).status, 504);
    assert!(actions.contains(&AdapterAction::Disconnect { conn: CONN }));
    assert_eq!(h.adapter.session_count(), 0);
}

#[test]
fn a_client_that_leaves_before_the_answer_leaves_nothing_behind() {
    let mut h = Harness::new(None);
    h.post("application/sdp", None, OFFER, 1);
    let request = h.next_request;
    h.adapter.abandoned(h.now, request, &mut h.out);
    assert_eq!(h.out, [AdapterAction::Disconnect { conn: CONN }]);
    assert_eq!(h.adapter.session_count(), 0);
}

#[test]
fn trickled_candidates_reach_the_receiver_with_their_section() {
    let mut h = Harness::new(None);
    let (session, _) = h.established();
    let fragment = "a=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:1\r\na=candidate:3 1 UDP 1 127.0.0.1 6000 typ host\r\na=end-of-candidates\r\n";
    let actions = h.patch(&session, "application/trickle-ice-sdpfrag", fragment);
    assert_eq!(single_response(&actions).status, 204);
    let messages = to_core(&actions);
    assert_eq!(
        messages[0],
        &ClientMessage::Ice {
            session: "s-1".into(),
            candidate: Some(IceCandidate {
                candidate: "candidate:3 1 UDP 1 127.0.0.1 6000 typ host".into(),
                sdp_m_line_index: Some(1),
                sdp_mid: Some("1".into()),
            }),
        }
    );
    assert_eq!(
        messages[1],
        &ClientMessage::Ice {
            session: "s-1".into(),
            candidate: None
        }
    );

    let wrong = h.patch(&session, "application/sdp", fragment);
    assert_eq!(single_response(&wrong).status, 415);
    let garbage = h.patch(&session, "application/trickle-ice-sdpfrag", "hello");
    assert_eq!(single_response(&garbage).status, 400);
    let half_restart = h.patch(
        &session,
        "application/trickle-ice-sdpfrag",
        "a=ice-ufrag:zzzz\r\na=candidate:3 1 UDP 1 127.0.0.1 6000 typ host\r\n",
    );
    let response = single_response(&half_restart);
    assert_eq!(response.status, 400);
    assert!(response.body.contains("ice-pwd"), "{}", response.body);
    let unknown = h.patch("nope", "application/trickle-ice-sdpfrag", fragment);
    assert_eq!(single_response(&unknown).status, 404);
}

#[test]
fn delete_leaves_the_room_then_the_session_is_gone() {
    let mut h = Harness::new(None);
    let (session, _) = h.established();
    let actions = h.delete(&session, None);
    assert_eq!(single_response(&actions).status, 200);
    assert_eq!(to_core(&actions), [&ClientMessage::Leave {}]);
    assert!(actions.contains(&AdapterAction::Disconnect { conn: CONN }));
    assert_eq!(single_response(&h.delete(&session, None)).status, 404);
    assert_eq!(single_response(&h.delete("nope", None)).status, 404);
}

#[test]
fn delete_needs_the_token_too() {
    let mut h = Harness::new(Some("t"));
    h.post("application/sdp", Some("Bearer t"), OFFER, 1);
    h.core(requested());
    h.core(answer());
    let created = single_response(&h.core(end_of_candidates()));
    let session = created
        .location
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(single_response(&h.delete(&session, None)).status, 401);
    assert_eq!(
        single_response(&h.delete(&session, Some("Bearer t"))).status,
        200
    );
}

#[test]
fn a_receiver_that_ends_the_session_ends_the_publisher() {
    let mut h = Harness::new(None);
    let (session, _) = h.established();
    let actions = h.core(ServerMessage::SessionEnded {
        session: "s-1".into(),
        reason: "ice failed".into(),
    });
    assert!(
        responses(&actions).is_empty(),
        "the POST was answered long ago"
    );
    assert_eq!(actions, [AdapterAction::Disconnect { conn: CONN }]);
    assert_eq!(single_response(&h.delete(&session, None)).status, 404);
}

#[test]
fn a_receiver_leaving_before_answering_fails_the_post() {
    let mut h = Harness::new(None);
    h.post("application/sdp", None, OFFER, 1);
    h.core(requested());
    let actions = h.core(ServerMessage::SessionEnded {
        session: "s-1".into(),
        reason: "peer-left".into(),
    });
    let response = single_response(&actions);
    assert_eq!(response.status, 502);
    assert!(response.body.contains("peer-left"));
}

#[test]
fn sdp_helpers_keep_line_endings_and_sections() {
    let answer = "v=0\nm=video 9 X 96\na=mid:v\n";
    let merged = sdp::answer_with_candidates(
        answer,
        &[IceCandidate {
            candidate: "candidate:1 1 UDP 1 127.0.0.1 1 typ host".into(),
            sdp_m_line_index: None,
            sdp_mid: Some("v".into()),
        }],
        false,
    );
    assert_eq!(
        merged,
        "v=0\nm=video 9 X 96\na=mid:v\na=candidate:1 1 UDP 1 127.0.0.1 1 typ host\n"
    );
    assert!(sdp::parse_fragment("a=mid:0\r\n").is_err());
}

#[test]
fn an_ice_restart_renegotiates_in_the_same_session_and_answers_with_new_credentials() {
    let mut h = Harness::new(None);
    let (session, created) = h.established();
    let etag = created.etag.clone().unwrap();
    let restart = "a=ice-ufrag:new1\r\na=ice-pwd:newpassword0123456789ab\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\na=candidate:9 1 UDP 1 127.0.0.1 7000 typ host\r\n";

    let stale = h.patch_with(
        &session,
        "application/trickle-ice-sdpfrag",
        restart,
        Some("\"old\""),
    );
    assert_eq!(
        single_response(&stale).status,
        412,
        "a stale ETag is refused"
    );

    let actions = h.patch_with(
        &session,
        "application/trickle-ice-sdpfrag",
        restart,
        Some(&etag),
    );
    assert!(
        responses(&actions).is_empty(),
        "answered once the peer answers"
    );
    let ClientMessage::Sdp {
        session: core_session,
        sdp,
    } = to_core(&actions)[0]
    else {
        panic!("{actions:?}")
    };
    assert_eq!(core_session, "s-1", "the same core session");
    assert_eq!(sdp.kind, SdpKind::Offer);
    assert_eq!(sdp::ufrag(&sdp.sdp), Some("new1"));
    assert_eq!(sdp::pwd(&sdp.sdp), Some("newpassword0123456789ab"));
    assert!(
        sdp.sdp
            .contains("a=candidate:9 1 UDP 1 127.0.0.1 7000 typ host")
    );
    assert!(!sdp.sdp.contains("abcd"), "no trace of the old credentials");

    let new_answer = ANSWER.to_string().replace(
        "a=mid:0\r\n",
        "a=mid:0\r\na=ice-ufrag:srv2\r\na=ice-pwd:serverpassword0123456789\r\n",
    );
    h.core(ServerMessage::Sdp {
        session: "s-1".into(),
        from: "recorder-1".into(),
        sdp: SessionDescription {
            kind: SdpKind::Answer,
            sdp: new_answer,
        },
    });
    h.core(candidate("candidate:4 1 UDP 5 127.0.0.1 7100 typ host", 0));
    let response = single_response(&h.core(end_of_candidates()));
    assert_eq!(response.status, 200);
    assert_eq!(
        response.content_type,
        Some("application/trickle-ice-sdpfrag")
    );
    assert!(
        response.body.contains("a=ice-ufrag:srv2\r\n"),
        "{}",
        response.body
    );
    assert!(
        response
            .body
            .contains("a=ice-pwd:serverpassword0123456789\r\n")
    );
    assert!(
        response
            .body
            .contains("a=mid:0\r\na=candidate:4 1 UDP 5 127.0.0.1 7100 typ host\r\n")
    );
    assert!(response.body.ends_with("a=end-of-candidates\r\n"));
    let new_etag = response.etag.unwrap();
    assert_ne!(new_etag, etag, "a new ETag");

    // Trickle with the new credentials is a trickle, not another restart.
    let trickle = "a=ice-ufrag:new1\r\na=ice-pwd:newpassword0123456789ab\r\na=candidate:10 1 UDP 1 127.0.0.1 7001 typ host\r\n";
    let actions = h.patch_with(
        &session,
        "application/trickle-ice-sdpfrag",
        trickle,
        Some(&new_etag),
    );
    assert_eq!(single_response(&actions).status, 204);
    assert_eq!(single_response(&h.delete(&session, None)).status, 200);
}

#[test]
fn the_room_sees_a_peer_id_unrelated_to_the_resource() {
    let mut h = Harness::new(None);
    let actions = h.post("application/sdp", None, OFFER, 1);
    let ClientMessage::Hello {
        id: Some(peer_id), ..
    } = to_core(&actions)[0]
    else {
        panic!()
    };
    h.core(requested());
    h.core(answer());
    let response = single_response(&h.core(end_of_candidates()));
    let resource = response
        .location
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(resource.len(), 26, "130 bits");
    let suffix = peer_id.trim_start_matches("whip-");
    assert!(
        !resource.contains(suffix) && !suffix.contains(&resource[..8]),
        "{peer_id} {resource}"
    );
}
