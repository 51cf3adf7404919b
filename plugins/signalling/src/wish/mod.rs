//! WHIP (RFC 9725) and WHEP (draft-ietf-wish-whep) as pure state machines,
//! no sockets, no clock: two [`Adapter`]s of one kind, [`WishAdapter`].
//!
//! Each WHIP or WHEP session becomes an ordinary peer of a room: the
//! adapter owns a connection of the [`SignallingCore`] per session and
//! speaks the native protocol on it.
//! - A **WHIP publisher** joins with the offer's tracks as streams;
//!   receivers (`peersrc`, `peer record`) see it join as they would a
//!   browser, ask it for a session and get the POSTed offer.
//! - A **WHEP player** joins as a viewer and asks a producer (a peersink)
//!   for a session with its offer in `start-session`; the producer answers
//!   it as it would a browser that offers, sharing its encoders.
//!
//! Either way the answer, with the candidates gathered in the next
//! moments, becomes the `201 Created` body. PATCH trickles candidates into
//! the core session or restarts ICE (a new offer in the same session,
//! answered with an sdpfrag and a new ETag); DELETE leaves the room.
//!
//! Resource ids (the `Location`) grant PATCH and DELETE: they come from a
//! CSPRNG, 130 bits, and are never shown to anyone but the client that
//! POSTed; the room sees an unrelated random peer id.
//!
//! The HTTP shell (`http.rs`) turns requests into calls here and writes
//! the [`HttpResponse`]s out; the hub feeds what the core sends to the
//! adapter's connections.

// An error here is the HTTP response itself, built once per request:
// boxing it would buy nothing.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::time::Instant;

use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::json;

use crate::adapter::{Adapter, AdapterAction, HttpResponse, RequestId};
use crate::auth::Grants;
use crate::core::{ConnId, ProducerLookup, SignallingCore};
use crate::protocol::sdp::{self, Direction};
use crate::protocol::{
    self, ClientMessage, ErrorCode, IceCandidate, SdpKind, ServerMessage, SessionDescription,
    SessionId,
};

mod access;
mod config;
#[cfg(feature = "server")]
pub mod http;

use access::{Credential, bearer, credential_is_static, random_id, turn_links};
pub use config::{Endpoint, IceServer, Kind, Request, WishConfig};

#[cfg(test)]
mod tests;
#[cfg(test)]
mod whep_tests;

#[derive(Debug)]
enum Stage {
    /// WHIP: joined the room; waiting for a receiver to ask for a session.
    AwaitingPeer,
    /// The offer went to the core session; waiting for the answer.
    AwaitingAnswer,
    /// Answer in; collecting the answerer's candidates until
    /// end-of-candidates or `until`.
    Gathering { answer: String, until: Instant },
    /// 201 sent; PATCH and DELETE accepted.
    Established,
}

/// The request waiting for this session's answer.
#[derive(Debug, Clone, Copy)]
enum Waiting {
    Post(RequestId),
    Restart(RequestId),
}

impl Waiting {
    fn request(self) -> RequestId {
        match self {
            Waiting::Post(request) | Waiting::Restart(request) => request,
        }
    }
}

struct WishSession {
    room: String,
    conn: ConnId,
    offer: sdp::Offer,
    /// The client's current offer (after an ICE restart, with its new
    /// credentials).
    offer_sdp: String,
    waiting: Option<Waiting>,
    /// The core session with the answering peer once there is one.
    core_session: Option<SessionId>,
    candidates: Vec<IceCandidate>,
    stage: Stage,
    deadline: Instant,
    etag: String,
    /// `Link` headers of the 201: ICE servers, TURN credentials.
    links: Vec<String>,
}

pub struct WishAdapter {
    kind: Kind,
    config: WishConfig,
    sessions: HashMap<String, WishSession>,
    by_conn: HashMap<ConnId, String>,
    /// A CSPRNG (ChaCha): resource ids grant control of a session.
    rng: StdRng,
}

impl WishAdapter {
    /// `rng` must be seeded from the operating system outside tests.
    pub fn new(kind: Kind, config: WishConfig, rng: StdRng) -> Self {
        WishAdapter {
            kind,
            config,
            sessions: HashMap::new(),
            by_conn: HashMap::new(),
            rng,
        }
    }

    pub fn with_os_seed(kind: Kind, config: WishConfig) -> Self {
        Self::new(kind, config, StdRng::from_os_rng())
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    pub fn config(&self) -> &WishConfig {
        &self.config
    }

    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// `POST /whip/{room}` or `POST /whep/{room}[/{producer}]`. `conn` is a
    /// free connection id for the adapter's peer.
    pub fn post(
        &mut self,
        now: Instant,
        core: &SignallingCore,
        request: Request<'_>,
        endpoint: Endpoint<'_>,
        conn: ConnId,
        out: &mut Vec<AdapterAction>,
    ) {
        if let Err(response) = self.try_post(now, core, request, endpoint, conn, out) {
            respond(out, request.id, response);
        }
    }

    fn try_post(
        &mut self,
        now: Instant,
        core: &SignallingCore,
        request: Request<'_>,
        Endpoint { room, producer }: Endpoint<'_>,
        conn: ConnId,
        out: &mut Vec<AdapterAction>,
    ) -> Result<(), HttpResponse> {
        let credential = self.authorize(now, core, &request)?;
        check_content_type(request.content_type, "application/sdp")?;
        if !protocol::is_valid_name(room) {
            return Err(HttpResponse::text(
                400,
                format!("room \"{room}\" is not 1-64 characters of A-Z a-z 0-9 . _ -"),
            ));
        }
        let direction = match self.kind {
            Kind::Whip => Direction::Sending,
            Kind::Whep => Direction::Receiving,
        };
        let offer =
            sdp::parse_offer(request.body, direction).map_err(|e| HttpResponse::text(400, e))?;
        // Who answers: refused now rather than after a timeout.
        let target = match self.kind {
            Kind::Whip => {
                if core.receivers_in(room) == 0 {
                    return Err(HttpResponse::text(
                        503,
                        format!(
                            "room \"{room}\" has no receiver to answer (start `peer record` or a peersrc there)"
                        ),
                    ));
                }
                None
            }
            Kind::Whep => Some(self.producer_to_play(core, room, producer)?),
        };

        let id = loop {
            let id = random_id(&mut self.rng, 26);
            if !self.sessions.contains_key(&id) {
                break id;
            }
        };
        let (peer_id, token) = match credential {
            // A token names its own peer id (its `sub`), or none.
            Credential::Token(token) => (None, Some(token)),
            _ => (
                Some(format!(
                    "{}-{}",
                    self.kind.path(),
                    random_id(&mut self.rng, 10)
                )),
                None,
            ),
        };
        out.push(AdapterAction::Connect { conn });
        if credential_is_static(&self.config, &request) {
            // The static token stands for exactly this: publish (WHIP) or
            // play (WHEP) in this room.
            let grants = match self.kind {
                Kind::Whip => Grants {
                    publish: true,
                    ..Grants::default()
                },
                Kind::Whep => Grants {
                    subscribe: true,
                    ..Grants::default()
                },
            };
            out.push(AdapterAction::Vouch {
                conn,
                grants,
                room: room.to_owned(),
            });
        }
        out.push(AdapterAction::ToCore {
            conn,
            message: ClientMessage::Hello {
                id: peer_id.clone(),
                meta: json!({"via": self.kind.path()}),
                token,
                resume: None,
            },
        });
        let streams = match self.kind {
            Kind::Whip => offer.streams(),
            Kind::Whep => Vec::new(),
        };
        out.push(AdapterAction::ToCore {
            conn,
            message: ClientMessage::Join {
                room: room.to_owned(),
                streams,
                meta: serde_json::Value::Null,
                // Nothing here reads the roster: a WHIP or WHEP session
                // joining a big room costs it nothing per member.
                presence: false,
            },
        });
        let stage = match target {
            None => Stage::AwaitingPeer,
            Some(producer) => {
                out.push(AdapterAction::ToCore {
                    conn,
                    message: ClientMessage::StartSession {
                        peer: producer,
                        wait: false,
                        offer: Some(SessionDescription {
                            kind: SdpKind::Offer,
                            sdp: request.body.to_owned(),
                        }),
                    },
                });
                Stage::AwaitingAnswer
            }
        };
        let etag = format!("\"{}\"", random_id(&mut self.rng, 12));
        // TURN credentials go to this client only, in its 201.
        let mut links = self.links();
        // Named after the room's peer id, never the resource id: TURN
        // usernames cross the network in clear and fill coturn's logs.
        let turn_name = peer_id
            .clone()
            .unwrap_or_else(|| self.kind.path().to_owned());
        if let Some(turn) = core.turn_credentials(now, &turn_name) {
            links.extend(turn_links(&turn));
        }
        self.by_conn.insert(conn, id.clone());
        self.sessions.insert(
            id,
            WishSession {
                room: room.to_owned(),
                conn,
                offer,
                offer_sdp: request.body.to_owned(),
                waiting: Some(Waiting::Post(request.id)),
                core_session: None,
                candidates: Vec::new(),
                stage,
                deadline: now + self.config.answer_timeout,
                etag,
                links,
            },
        );
        Ok(())
    }

    fn producer_to_play(
        &self,
        core: &SignallingCore,
        room: &str,
        producer: Option<&str>,
    ) -> Result<String, HttpResponse> {
        let conflict = |text: String| HttpResponse {
            retry_after: Some(self.config.retry_after_secs),
            ..HttpResponse::text(409, text)
        };
        match core.producer_in(room, producer) {
            ProducerLookup::Found(id) => Ok(id),
            ProducerLookup::NotAProducer => Err(HttpResponse::text(
                404,
                format!(
                    "\"{}\" in room \"{room}\" publishes nothing to play",
                    producer.unwrap_or_default()
                ),
            )),
            ProducerLookup::Absent => Err(conflict(match producer {
                Some(producer) => {
                    format!("producer \"{producer}\" is not in room \"{room}\" (yet)")
                }
                None => format!("nothing is published in room \"{room}\" (yet)"),
            })),
        }
    }

    /// `PATCH` of a session resource: trickle, or an ICE restart when the
    /// fragment carries new credentials.
    pub fn patch(
        &mut self,
        now: Instant,
        core: &SignallingCore,
        request: Request<'_>,
        room: &str,
        resource: &str,
        out: &mut Vec<AdapterAction>,
    ) {
        if let Err(response) = self.authorize(now, core, &request) {
            return respond(out, request.id, response);
        }
        match self.try_patch(now, request, room, resource, out) {
            Ok(Some(response)) | Err(response) => respond(out, request.id, response),
            // An ICE restart: answered once the answerer has.
            Ok(None) => {}
        }
    }

    fn try_patch(
        &mut self,
        now: Instant,
        request: Request<'_>,
        room: &str,
        resource: &str,
        out: &mut Vec<AdapterAction>,
    ) -> Result<Option<HttpResponse>, HttpResponse> {
        let found = self.find(room, resource)?;
        check_content_type(request.content_type, "application/trickle-ice-sdpfrag")?;
        let fragment = sdp::parse_fragment(request.body).map_err(|e| HttpResponse::text(400, e))?;
        // `*` matches any: RFC 9725's examples quote it ("*"), RFC 9110
        // does not; both are taken.
        if let Some(if_match) = request.if_match
            && !matches!(if_match.trim(), "*" | "\"*\"")
            && if_match.trim() != found.etag
        {
            return Err(HttpResponse::text(
                412,
                format!(
                    "If-Match {if_match} does not match the session's ETag {}",
                    found.etag
                ),
            ));
        }
        let (conn, Some(core_session)) = (found.conn, found.core_session.clone()) else {
            return Err(HttpResponse::text(404, "the session has no peer any more"));
        };
        let restart = match (&fragment.ufrag, &fragment.pwd) {
            (Some(ufrag), pwd) if Some(ufrag.as_str()) != sdp::ufrag(&found.offer_sdp) => {
                let pwd = pwd.clone().ok_or_else(|| {
                    HttpResponse::text(
                        400,
                        "a new a=ice-ufrag (an ICE restart) needs its a=ice-pwd too",
                    )
                })?;
                Some((ufrag.clone(), pwd))
            }
            _ => None,
        };
        if let Some((ufrag, pwd)) = restart {
            // The same offer with the new credentials and the fragment's
            // candidates: a renegotiation the answerer treats as an ICE
            // restart, in the same core session.
            let offer = sdp::with_ice_credentials(&found.offer_sdp, &ufrag, &pwd);
            let candidates: Vec<IceCandidate> = fragment
                .candidates
                .iter()
                .map(|(mid, candidate)| IceCandidate {
                    candidate: candidate.clone(),
                    sdp_m_line_index: mid.as_deref().and_then(|m| found.offer.index_of_mid(m)),
                    sdp_mid: mid.clone(),
                })
                .collect();
            let offer =
                sdp::answer_with_candidates(&offer, &candidates, fragment.end_of_candidates);
            let session = self.sessions.get_mut(resource).expect("found");
            session.offer_sdp = offer.clone();
            session.waiting = Some(Waiting::Restart(request.id));
            session.stage = Stage::AwaitingAnswer;
            session.deadline = now + self.config.answer_timeout;
            session.candidates.clear();
            out.push(AdapterAction::ToCore {
                conn,
                message: ClientMessage::Sdp {
                    session: core_session,
                    sdp: SessionDescription {
                        kind: SdpKind::Offer,
                        sdp: offer,
                    },
                },
            });
            return Ok(None);
        }
        for (mid, candidate) in fragment.candidates {
            // The mid maps to the offer's sections; without one, the first
            // (BUNDLE makes every section share its transport).
            let index = mid
                .as_deref()
                .and_then(|m| found.offer.index_of_mid(m))
                .unwrap_or(0);
            out.push(AdapterAction::ToCore {
                conn,
                message: ClientMessage::Ice {
                    session: core_session.clone(),
                    candidate: Some(IceCandidate {
                        candidate,
                        sdp_m_line_index: Some(index),
                        sdp_mid: mid,
                    }),
                },
            });
        }
        if fragment.end_of_candidates {
            out.push(AdapterAction::ToCore {
                conn,
                message: ClientMessage::Ice {
                    session: core_session,
                    candidate: None,
                },
            });
        }
        Ok(Some(HttpResponse::empty(204)))
    }

    /// `DELETE` of a session resource.
    pub fn delete(
        &mut self,
        now: Instant,
        core: &SignallingCore,
        request: Request<'_>,
        room: &str,
        resource: &str,
        out: &mut Vec<AdapterAction>,
    ) {
        let response = match self
            .authorize(now, core, &request)
            .and_then(|_| self.find(room, resource).map(|s| s.conn))
        {
            Ok(conn) => {
                // Leave first, so the room hears "peer-left" (a peer that
                // said goodbye: a recorder finalizes its file).
                out.push(AdapterAction::ToCore {
                    conn,
                    message: ClientMessage::Leave {},
                });
                self.end(resource, out);
                HttpResponse::empty(200)
            }
            Err(response) => response,
        };
        respond(out, request.id, response);
    }

    /// ICE servers for an OPTIONS response.
    pub fn links(&self) -> Vec<String> {
        self.config
            .ice_servers
            .iter()
            .map(IceServer::link)
            .collect()
    }

    /// Who is asking: the static token (`--whip-token`, `--whep-token`),
    /// an access token (checked here for PATCH and DELETE, by the core for
    /// the POST's peer, which grants decide), or nobody on an open server.
    fn authorize(
        &self,
        now: Instant,
        core: &SignallingCore,
        request: &Request<'_>,
    ) -> Result<Credential, HttpResponse> {
        let given = bearer(request);
        if credential_is_static(&self.config, request) {
            return Ok(Credential::Static);
        }
        if core.requires_tokens() {
            let token = given.ok_or_else(|| {
                HttpResponse::text(
                    401,
                    "this server needs \"Authorization: Bearer <token>\" (an access token)",
                )
            })?;
            // Signature and times now; grants once its peer acts.
            core.check_token(now, Some(token))
                .map_err(|(_, why)| HttpResponse::text(401, why))?;
            return Ok(Credential::Token(token.to_owned()));
        }
        match (&self.config.token, given) {
            (None, _) => Ok(Credential::Open),
            (Some(_), Some(_)) => Err(HttpResponse::text(401, "the bearer token is not valid")),
            (Some(_), None) => Err(HttpResponse::text(
                401,
                "this server needs \"Authorization: Bearer <token>\"",
            )),
        }
    }

    fn find(&self, room: &str, resource: &str) -> Result<&WishSession, HttpResponse> {
        match self.sessions.get(resource) {
            Some(found) if found.room == room && found.waiting.is_none() => Ok(found),
            Some(found) if found.room == room => Err(HttpResponse::text(
                409,
                "the session is still being negotiated; retry once it has answered",
            )),
            _ => Err(HttpResponse::text(
                404,
                format!(
                    "no {} session \"{resource}\" in room \"{room}\"",
                    self.kind.name()
                ),
            )),
        }
    }

    fn on_core_message(
        &mut self,
        now: Instant,
        conn: ConnId,
        message: &ServerMessage,
        out: &mut Vec<AdapterAction>,
    ) {
        let Some(id) = self.by_conn.get(&conn).cloned() else {
            return;
        };
        let kind = self.kind;
        let session = self.sessions.get_mut(&id).expect("indexed");
        match message {
            // WHIP: a receiver asks the publisher for its media.
            ServerMessage::SessionRequested {
                session: core_session,
                peer,
                ..
            } => {
                if kind == Kind::Whip && matches!(session.stage, Stage::AwaitingPeer) {
                    session.core_session = Some(core_session.clone());
                    session.stage = Stage::AwaitingAnswer;
                    out.push(AdapterAction::ToCore {
                        conn,
                        message: ClientMessage::Sdp {
                            session: core_session.clone(),
                            sdp: SessionDescription {
                                kind: SdpKind::Offer,
                                sdp: session.offer_sdp.clone(),
                            },
                        },
                    });
                } else {
                    // One offer, one answer: a WHIP publisher has one
                    // receiver, a WHEP player receives from one producer.
                    let reason = format!(
                        "a {} client has one session; \"{peer}\" asked after another",
                        kind.name()
                    );
                    out.push(AdapterAction::ToCore {
                        conn,
                        message: ClientMessage::EndSession {
                            session: core_session.clone(),
                            reason: Some(reason),
                        },
                    });
                }
            }
            // WHEP: the producer was asked; this is the session's id.
            ServerMessage::SessionStarted {
                session: core_session,
                ..
            } if kind == Kind::Whep && session.core_session.is_none() => {
                session.core_session = Some(core_session.clone());
            }
            ServerMessage::Sdp {
                session: core_session,
                sdp,
                ..
            } if session.core_session.as_ref() == Some(core_session) => {
                if !matches!(session.stage, Stage::AwaitingAnswer) {
                    return;
                }
                if sdp.kind != SdpKind::Answer {
                    self.fail(&id, 502, "the peer sent an offer instead of an answer", out);
                    return;
                }
                session.stage = Stage::Gathering {
                    answer: sdp.sdp.clone(),
                    until: now + self.config.gather_timeout,
                };
                // Candidates written into the answer itself count too.
                session.candidates.extend(sdp::candidates(&sdp.sdp));
            }
            ServerMessage::Ice {
                session: core_session,
                candidate,
                ..
            } if session.core_session.as_ref() == Some(core_session) => match candidate {
                Some(candidate) if !candidate.candidate.is_empty() => {
                    // Candidates after the response have nowhere to go: the
                    // protocols have no server-to-client trickle.
                    if !matches!(session.stage, Stage::Established) {
                        session.candidates.push(candidate.clone());
                    }
                }
                _ => {
                    if matches!(session.stage, Stage::Gathering { .. }) {
                        self.answer(&id, true, out);
                    }
                }
            },
            ServerMessage::SessionEnded {
                session: core_session,
                reason,
            } if session.core_session.as_ref() == Some(core_session) => {
                // The peer is gone, or refused the offer (no common codec,
                // too many viewers): nothing keeps this session alive.
                // The core's reasons when a peer goes away; anything else
                // before the answer is the peer refusing this offer.
                let departed = matches!(reason.as_str(), "peer-left" | "peer-disconnected");
                let status = match session.stage {
                    Stage::AwaitingAnswer if !departed => 422,
                    _ => 502,
                };
                let text = format!("the peer ended the session: {reason}");
                self.fail(&id, status, &text, out);
            }
            ServerMessage::Error { code, message, .. } if session.waiting.is_some() => {
                // A refused hello/join/start-session: a token that does
                // not allow it, or the room or server full, or the
                // producer gone.
                let status = match code {
                    ErrorCode::Unauthorized => 401,
                    ErrorCode::Forbidden => 403,
                    _ => 503,
                };
                let text = format!("the signalling server refused: {message}");
                self.fail(&id, status, &text, out);
            }
            _ => {}
        }
    }

    /// Sends the 201 (or, after an ICE restart, the 200) with the answer
    /// and the candidates gathered so far.
    fn answer(&mut self, id: &str, complete: bool, out: &mut Vec<AdapterAction>) {
        let kind = self.kind;
        let etag = format!("\"{}\"", random_id(&mut self.rng, 12));
        let Some(session) = self.sessions.get_mut(id) else {
            return;
        };
        let Stage::Gathering { answer, .. } =
            std::mem::replace(&mut session.stage, Stage::Established)
        else {
            return;
        };
        let candidates = std::mem::take(&mut session.candidates);
        let answer = match (kind, self.config.max_bitrate) {
            (Kind::Whip, Some(cap)) => sdp::with_bitrate_cap(&answer, cap),
            _ => answer,
        };
        let response = match session.waiting.take() {
            Some(Waiting::Post(request)) => Some((
                request,
                HttpResponse {
                    status: 201,
                    content_type: Some("application/sdp"),
                    location: Some(format!("/{}/{}/{id}", kind.path(), session.room)),
                    etag: Some(session.etag.clone()),
                    links: session.links.clone(),
                    accept_patch: true,
                    body: sdp::answer_with_candidates(&answer, &candidates, complete),
                    ..HttpResponse::default()
                },
            )),
            Some(Waiting::Restart(request)) => {
                session.etag = etag;
                let credentials = sdp::ufrag(&answer).zip(sdp::pwd(&answer));
                Some((
                    request,
                    HttpResponse {
                        status: 200,
                        content_type: Some("application/trickle-ice-sdpfrag"),
                        etag: Some(session.etag.clone()),
                        body: sdp::fragment(credentials, &answer, &candidates, complete),
                        ..HttpResponse::default()
                    },
                ))
            }
            None => None,
        };
        if let Some((request, response)) = response {
            respond(out, request, response);
        }
    }

    /// Ends session `id`, answering its waiting request with `status`.
    fn fail(&mut self, id: &str, status: u16, text: &str, out: &mut Vec<AdapterAction>) {
        if let Some(waiting) = self.sessions.get_mut(id).and_then(|s| s.waiting.take()) {
            respond(out, waiting.request(), HttpResponse::text(status, text));
        }
        self.end(id, out);
    }

    fn end(&mut self, id: &str, out: &mut Vec<AdapterAction>) {
        if let Some(session) = self.sessions.remove(id) {
            self.by_conn.remove(&session.conn);
            out.push(AdapterAction::Disconnect { conn: session.conn });
        }
    }
}

impl Adapter for WishAdapter {
    fn owns(&self, conn: ConnId) -> bool {
        self.by_conn.contains_key(&conn)
    }

    fn is_idle(&self) -> bool {
        self.by_conn.is_empty()
    }

    fn core_sent(
        &mut self,
        now: Instant,
        conn: ConnId,
        message: &ServerMessage,
        out: &mut Vec<AdapterAction>,
    ) {
        self.on_core_message(now, conn, message, out)
    }

    fn closed(&mut self, _now: Instant, conn: ConnId, out: &mut Vec<AdapterAction>) {
        if let Some(id) = self.by_conn.get(&conn).cloned() {
            self.fail(
                &id,
                502,
                "the signalling server dropped the session's peer",
                out,
            );
        }
    }

    fn abandoned(&mut self, _now: Instant, request: RequestId, out: &mut Vec<AdapterAction>) {
        let waiting = self
            .sessions
            .iter()
            .find(|(_, s)| matches!(s.waiting, Some(Waiting::Post(r)) if r == request))
            .map(|(id, _)| id.clone());
        if let Some(id) = waiting {
            self.end(&id, out);
        }
    }

    fn tick(&mut self, now: Instant, out: &mut Vec<AdapterAction>) {
        let mut late = Vec::new();
        let mut gathered = Vec::new();
        for (id, session) in &self.sessions {
            match &session.stage {
                Stage::AwaitingPeer | Stage::AwaitingAnswer if now >= session.deadline => {
                    late.push(id.clone())
                }
                Stage::Gathering { until, .. } if now >= *until => gathered.push(id.clone()),
                _ => {}
            }
        }
        for id in gathered {
            self.answer(&id, false, out);
        }
        for id in late {
            let text = format!("no answer within {:?}", self.config.answer_timeout);
            self.fail(&id, 504, &text, out);
        }
    }
}

fn respond(out: &mut Vec<AdapterAction>, request: RequestId, response: HttpResponse) {
    out.push(AdapterAction::Respond { request, response });
}

fn check_content_type(given: Option<&str>, expected: &str) -> Result<(), HttpResponse> {
    let essence = given
        .and_then(|value| value.split(';').next())
        .map(|value| value.trim().to_ascii_lowercase());
    match essence {
        Some(essence) if essence == expected => Ok(()),
        Some(essence) => Err(HttpResponse::text(
            415,
            format!("Content-Type must be {expected}, not {essence}"),
        )),
        None => Err(HttpResponse::text(
            415,
            format!("Content-Type must be {expected}; none was given"),
        )),
    }
}
