//! WHIP/WHEP SDP handling: the SDP helpers of peer-protocol and the WISH
//! adapter (POST offer, the answer from a room peer, trickle PATCH, ICE
//! restart, DELETE) driven with hostile SDP through a small hub around the
//! real core. The input is text: parts separated by lines `%%`: the
//! client's offer, the answering peer's answer, then PATCH bodies. An
//! offer of even length goes to WHIP, of odd length to WHEP.
//!
//! Invariants: no panic; every response is a known status, and every
//! 4xx/5xx says why in its body; a 201 has a Location; the adapter keeps
//! no session after DELETE.

use std::time::{Duration, Instant};

use peer_protocol::sdp::{self, Direction};
use peer_protocol::{ClientMessage, IceCandidate, SdpKind, ServerMessage, SessionDescription};
use peer_signalling::adapter::{Adapter, AdapterAction, HttpResponse};
use peer_signalling::core::{Action, ConnId, Input, Limits, SignallingCore};
use peer_signalling::wish::{Endpoint, Kind, Request, WishAdapter, WishConfig};
use rand::SeedableRng;
use serde_json::Value;

const ROOM_PEER: ConnId = 1;
const ADAPTER_CONN: ConnId = 1000;

struct Hub {
    core: SignallingCore,
    adapter: WishAdapter,
    now: Instant,
    answer: String,
    responses: Vec<HttpResponse>,
    next_request: u64,
}

impl Hub {
    fn new(kind: Kind, answer: &str) -> Hub {
        let mut hub = Hub {
            core: SignallingCore::new(Limits::default(), 1),
            adapter: WishAdapter::new(
                kind,
                WishConfig::default(),
                rand::rngs::StdRng::seed_from_u64(7),
            ),
            now: Instant::now(),
            answer: answer.to_owned(),
            responses: Vec::new(),
            next_request: 0,
        };
        let streams = match kind {
            Kind::Whip => Vec::new(),
            Kind::Whep => vec![peer_protocol::StreamInfo {
                kind: "video".into(),
                codec: Some("VP8".into()),
                label: None,
                extra: Default::default(),
            }],
        };
        let mut out = Vec::new();
        hub.core
            .handle(hub.now, Input::Connected { conn: ROOM_PEER }, &mut out);
        for message in [
            ClientMessage::Hello {
                id: Some("peer".into()),
                meta: Value::Null,
                token: None,
                resume: None,
            },
            ClientMessage::Join {
                room: "live".into(),
                streams,
                meta: Value::Null,
                presence: true,
            },
        ] {
            hub.core.handle(
                hub.now,
                Input::Message {
                    conn: ROOM_PEER,
                    message,
                },
                &mut out,
            );
        }
        hub
    }

    fn request<'a>(&mut self, body: &'a str, content_type: &'a str) -> Request<'a> {
        self.next_request += 1;
        Request {
            id: self.next_request,
            content_type: Some(content_type),
            authorization: None,
            if_match: None,
            body,
        }
    }

    /// Carries out adapter actions and what the core answers, until quiet.
    fn run(&mut self, mut pending: Vec<AdapterAction>) {
        for _ in 0..64 {
            if pending.is_empty() {
                return;
            }
            let mut core_out = Vec::new();
            for action in pending.drain(..) {
                match action {
                    AdapterAction::Respond { response, .. } => self.responses.push(response),
                    AdapterAction::Connect { conn } => {
                        self.core
                            .handle(self.now, Input::Connected { conn }, &mut core_out)
                    }
                    AdapterAction::ToCore { conn, message } => {
                        self.core
                            .handle(self.now, Input::Message { conn, message }, &mut core_out)
                    }
                    AdapterAction::Disconnect { conn } => {
                        self.core
                            .handle(self.now, Input::Disconnected { conn }, &mut core_out)
                    }
                    AdapterAction::Vouch { .. }
                    | AdapterAction::Write { .. }
                    | AdapterAction::CloseSocket { .. } => {}
                }
            }
            let mut peer_out = Vec::new();
            for action in core_out {
                let (to, message) = match action {
                    Action::Send { to, message } => (to, (*message).clone()),
                    Action::SendText { to, text } => {
                        match peer_protocol::decode_server_message(&text) {
                            Ok(message) => (to, message),
                            Err(_) => continue,
                        }
                    }
                    Action::Close { conn, .. } => {
                        if self.adapter.owns(conn) {
                            self.adapter.closed(self.now, conn, &mut pending);
                        }
                        continue;
                    }
                    Action::Ping { .. } => continue,
                };
                for conn in to {
                    if conn == ROOM_PEER {
                        self.room_peer(&message, &mut peer_out);
                    } else if self.adapter.owns(conn) {
                        self.adapter
                            .core_sent(self.now, conn, &message, &mut pending);
                    }
                }
            }
            for message in peer_out {
                let mut out = Vec::new();
                self.core.handle(
                    self.now,
                    Input::Message {
                        conn: ROOM_PEER,
                        message,
                    },
                    &mut out,
                );
                for action in out {
                    if let Action::Send { to, message } = action {
                        for conn in to {
                            if self.adapter.owns(conn) {
                                self.adapter
                                    .core_sent(self.now, conn, &message, &mut pending);
                            }
                        }
                    }
                }
            }
        }
    }

    /// The room's peer answers every offer with the fuzzed answer and its
    /// candidates, then ends gathering.
    fn room_peer(&self, message: &ServerMessage, out: &mut Vec<ClientMessage>) {
        let session = match message {
            ServerMessage::SessionRequested {
                session,
                offer: Some(_),
                ..
            } => session,
            ServerMessage::Sdp { session, sdp, .. } if sdp.kind == SdpKind::Offer => session,
            _ => return,
        };
        out.push(ClientMessage::Sdp {
            session: session.clone(),
            sdp: SessionDescription {
                kind: SdpKind::Answer,
                sdp: self.answer.clone(),
            },
        });
        for candidate in sdp::candidates(&self.answer).into_iter().take(4) {
            out.push(ClientMessage::Ice {
                session: session.clone(),
                candidate: Some(candidate),
            });
        }
        out.push(ClientMessage::Ice {
            session: session.clone(),
            candidate: None,
        });
    }
}

fn check_responses(responses: &[HttpResponse]) {
    for r in responses {
        assert!((200..600).contains(&r.status), "status {}", r.status);
        if r.status >= 400 {
            assert!(
                !r.body.trim().is_empty(),
                "a {} that says nothing",
                r.status
            );
        }
        if r.status == 201 {
            assert!(r.location.is_some(), "a 201 without Location");
        }
    }
}

fn helpers(parts: &[&str]) {
    for part in parts {
        for direction in [Direction::Sending, Direction::Receiving] {
            match sdp::parse_offer(part, direction) {
                Ok(offer) => {
                    let _ = offer.streams();
                    let _ = offer.index_of_mid("0");
                }
                Err(err) => assert!(!err.is_empty()),
            }
        }
        match sdp::parse_fragment(part) {
            Ok(_) => {}
            Err(err) => assert!(!err.is_empty()),
        }
        let candidates: Vec<IceCandidate> = sdp::candidates(part);
        let _ = (
            sdp::ufrag(part),
            sdp::pwd(part),
            sdp::attribute(part, "mid"),
        );
        let _ = sdp::with_ice_credentials(part, "ufrag", "pwd0123456789012345678");
        let _ = sdp::answer_with_candidates(part, &candidates, true);
        let _ = sdp::answer_with_candidates(part, &candidates, false);
    }
}

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        let parts: Vec<&str> = text.split("\n%%\n").take(6).collect();
        helpers(&parts);
        let offer = parts[0];
        let answer = parts.get(1).copied().unwrap_or("");
        // WHIP or WHEP: the offer's first line decides (both directions of
        // the parser are checked above either way).
        let kind = if offer.len() % 2 == 0 {
            Kind::Whip
        } else {
            Kind::Whep
        };
        {
            let mut hub = Hub::new(kind, answer);
            let mut out = Vec::new();
            let request = hub.request(offer, "application/sdp");
            let endpoint = Endpoint {
                room: "live",
                producer: None,
            };
            hub.adapter.post(
                hub.now,
                &hub.core,
                request,
                endpoint,
                ADAPTER_CONN,
                &mut out,
            );
            hub.run(out);
            hub.now += Duration::from_millis(1500);
            let mut out = Vec::new();
            hub.adapter.tick(hub.now, &mut out);
            hub.run(out);
            let resource = hub
                .responses
                .iter()
                .find_map(|r| r.location.clone())
                .and_then(|l| l.rsplit('/').next().map(str::to_owned));
            if let Some(resource) = resource {
                for body in parts.iter().skip(2) {
                    let mut out = Vec::new();
                    let request = hub.request(body, "application/trickle-ice-sdpfrag");
                    hub.adapter
                        .patch(hub.now, &hub.core, request, "live", &resource, &mut out);
                    hub.run(out);
                    hub.now += Duration::from_millis(1500);
                    let mut out = Vec::new();
                    hub.adapter.tick(hub.now, &mut out);
                    hub.run(out);
                }
                let mut out = Vec::new();
                let request = hub.request("", "");
                hub.adapter
                    .delete(hub.now, &hub.core, request, "live", &resource, &mut out);
                hub.run(out);
                assert_eq!(
                    hub.adapter.session_count(),
                    0,
                    "a session outlived its DELETE"
                );
            }
            hub.now += Duration::from_secs(60);
            let mut out = Vec::new();
            hub.adapter.tick(hub.now, &mut out);
            hub.run(out);
            check_responses(&hub.responses);
        }
    });
}
