//! WHIP ingest (RFC 9725) as a pure state machine, no sockets, no clock.
//!
//! A WHIP publisher becomes an ordinary peer of the room: the adapter owns
//! a connection of the [`SignallingCore`](crate::core::SignallingCore) per
//! WHIP session and speaks the native protocol on it (hello, join with the
//! offer's tracks as streams, sdp, ice, leave). Receivers (`peersrc`,
//! `peer record`) therefore see a publisher join exactly as when a browser
//! publishes over `/ws`, ask it for a session, and get the POSTed offer
//! through the same relay. Their answer, with the candidates they gather in
//! the next moments, becomes the `201 Created` body.
//!
//! The HTTP shell (`http.rs`) turns requests into [`WhipInput`]s and
//! carries out the [`WhipAction`]s; the hub feeds it what the core sends to
//! the adapter's connections.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use crate::core::ConnId;
use crate::protocol::{
    self, ClientMessage, IceCandidate, SdpKind, ServerMessage, SessionDescription, SessionId,
};

pub mod http;
pub mod sdp;

#[cfg(test)]
mod tests;

#[derive(Debug, Clone)]
pub struct WhipConfig {
    /// `Authorization: Bearer <token>` required on every request when set.
    pub token: Option<String>,
    /// How long a POST waits for a receiver's answer before 504.
    pub answer_timeout: Duration,
    /// After the answer, how long its candidates are collected when the
    /// receiver does not signal the end of gathering.
    pub gather_timeout: Duration,
    /// Largest POST or PATCH body, in bytes (413 beyond).
    pub max_body_bytes: usize,
}

impl Default for WhipConfig {
    fn default() -> Self {
        WhipConfig {
            token: None,
            // peer record starts a pipeline per publisher before it asks:
            // generous, but bounded.
            answer_timeout: Duration::from_secs(15),
            gather_timeout: Duration::from_millis(1000),
            // Below the core's 64 KiB frame limit once wrapped in JSON.
            max_body_bytes: 60 * 1024,
        }
    }
}

/// Chosen by the shell, to match a response with its waiting request.
pub type RequestId = u64;

/// A request as the machine needs it: headers already picked out.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub id: RequestId,
    pub content_type: Option<&'a str>,
    pub authorization: Option<&'a str>,
    pub body: &'a str,
}

#[derive(Debug)]
pub enum WhipInput<'a> {
    /// `POST /whip/{room}`. `conn` is a free connection id for the adapter
    /// peer; `receivers` counts the room's peers that publish nothing.
    Post {
        request: Request<'a>,
        room: &'a str,
        conn: ConnId,
        receivers: usize,
    },
    Patch {
        request: Request<'a>,
        room: &'a str,
        session: &'a str,
    },
    Delete {
        request: Request<'a>,
        room: &'a str,
        session: &'a str,
    },
    /// The client of a POST still waiting went away.
    Abandoned {
        request: RequestId,
    },
    /// The core sent this to an adapter connection.
    FromCore {
        conn: ConnId,
        message: &'a ServerMessage,
    },
    /// The core dropped an adapter connection.
    Closed {
        conn: ConnId,
    },
    Tick,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    pub content_type: Option<&'static str>,
    pub location: Option<String>,
    pub etag: Option<String>,
    /// `WWW-Authenticate: Bearer` with a 401.
    pub challenge: bool,
    pub body: String,
}

impl Response {
    fn text(status: u16, body: impl Into<String>) -> Response {
        let mut body = body.into();
        body.push('\n');
        Response {
            status,
            content_type: Some("text/plain; charset=utf-8"),
            location: None,
            etag: None,
            challenge: status == 401,
            body,
        }
    }

    fn empty(status: u16) -> Response {
        Response {
            status,
            content_type: None,
            location: None,
            etag: None,
            challenge: false,
            body: String::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum WhipAction {
    Respond {
        request: RequestId,
        response: Response,
    },
    /// Open an adapter connection in the core (before messages on it).
    Connect { conn: ConnId },
    /// A native-protocol message from an adapter connection to the core.
    ToCore {
        conn: ConnId,
        message: ClientMessage,
    },
    /// Close an adapter connection: the core forgets the peer, ending its
    /// session and telling the room it left.
    Disconnect { conn: ConnId },
}

#[derive(Debug)]
enum Stage {
    /// Joined the room; waiting for a receiver to ask for a session.
    AwaitingReceiver,
    /// The offer went to `session`; waiting for the answer.
    AwaitingAnswer,
    /// Answer in; collecting the receiver's candidates until
    /// end-of-candidates or `until`.
    Gathering { answer: String, until: Instant },
    /// 201 sent; PATCH and DELETE accepted.
    Established,
}

struct WhipSession {
    room: String,
    conn: ConnId,
    offer: sdp::Offer,
    offer_sdp: String,
    /// The POST waiting for its answer (until 201 or a failure).
    post: Option<RequestId>,
    /// The core session with the receiver once one asked.
    core_session: Option<SessionId>,
    candidates: Vec<IceCandidate>,
    stage: Stage,
    answer_deadline: Instant,
}

pub struct WhipAdapter {
    config: WhipConfig,
    sessions: HashMap<String, WhipSession>,
    by_conn: HashMap<ConnId, String>,
    rng: SmallRng,
}

impl WhipAdapter {
    pub fn new(config: WhipConfig, seed: u64) -> Self {
        WhipAdapter {
            config,
            sessions: HashMap::new(),
            by_conn: HashMap::new(),
            rng: SmallRng::seed_from_u64(seed),
        }
    }

    pub fn config(&self) -> &WhipConfig {
        &self.config
    }

    /// Whether `conn` is one of the adapter's connections.
    pub fn owns(&self, conn: ConnId) -> bool {
        self.by_conn.contains_key(&conn)
    }

    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    pub fn handle(&mut self, now: Instant, input: WhipInput<'_>, out: &mut Vec<WhipAction>) {
        match input {
            WhipInput::Post {
                request,
                room,
                conn,
                receivers,
            } => {
                if let Err(response) = self.post(now, request, room, conn, receivers, out) {
                    respond(out, request.id, response);
                }
            }
            WhipInput::Patch {
                request,
                room,
                session,
            } => {
                let response = self.patch(request, room, session, out);
                respond(out, request.id, response);
            }
            WhipInput::Delete {
                request,
                room,
                session,
            } => {
                let response = match self.authorize(&request).and_then(|()| {
                    self.find(room, session)?;
                    Ok(())
                }) {
                    Ok(()) => {
                        // Leave first, so the receiver hears "peer-left" (a
                        // publisher that said goodbye) and finalizes.
                        let conn = self.sessions[session].conn;
                        out.push(WhipAction::ToCore {
                            conn,
                            message: ClientMessage::Leave {},
                        });
                        self.end(session, out);
                        Response::empty(200)
                    }
                    Err(response) => response,
                };
                respond(out, request.id, response);
            }
            WhipInput::Abandoned { request } => {
                let waiting = self
                    .sessions
                    .iter()
                    .find(|(_, s)| s.post == Some(request))
                    .map(|(id, _)| id.clone());
                if let Some(id) = waiting {
                    self.end(&id, out);
                }
            }
            WhipInput::FromCore { conn, message } => self.on_core_message(now, conn, message, out),
            WhipInput::Closed { conn } => {
                if let Some(id) = self.by_conn.get(&conn).cloned() {
                    self.fail(&id, 502, "the signalling server dropped the publisher", out);
                }
            }
            WhipInput::Tick => self.tick(now, out),
        }
    }

    fn authorize(&self, request: &Request<'_>) -> Result<(), Response> {
        let Some(token) = &self.config.token else {
            return Ok(());
        };
        let given = request
            .authorization
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim);
        match given {
            Some(given) if constant_time_eq(given.as_bytes(), token.as_bytes()) => Ok(()),
            Some(_) => Err(Response::text(401, "the bearer token is not valid")),
            None => Err(Response::text(
                401,
                "this server needs \"Authorization: Bearer <token>\"",
            )),
        }
    }

    fn find(&self, room: &str, session: &str) -> Result<&WhipSession, Response> {
        match self.sessions.get(session) {
            Some(found) if found.room == room && matches!(found.stage, Stage::Established) => {
                Ok(found)
            }
            _ => Err(Response::text(
                404,
                format!("no WHIP session \"{session}\" in room \"{room}\""),
            )),
        }
    }

    fn post(
        &mut self,
        now: Instant,
        request: Request<'_>,
        room: &str,
        conn: ConnId,
        receivers: usize,
        out: &mut Vec<WhipAction>,
    ) -> Result<(), Response> {
        self.authorize(&request)?;
        check_content_type(request.content_type, "application/sdp")?;
        if !protocol::is_valid_name(room) {
            return Err(Response::text(
                400,
                format!("room \"{room}\" is not 1-64 characters of A-Z a-z 0-9 . _ -"),
            ));
        }
        let offer = sdp::parse_offer(request.body).map_err(|e| Response::text(400, e))?;
        if receivers == 0 {
            // Nobody could answer: say so now rather than after a timeout.
            return Err(Response::text(
                503,
                format!(
                    "room \"{room}\" has no receiver to answer (start `peer record` or a peersrc there)"
                ),
            ));
        }
        let id = loop {
            // Long and random: knowing the Location is what allows PATCH and
            // DELETE when no token is configured.
            let id = random_id(&mut self.rng, 22);
            if !self.sessions.contains_key(&id) {
                break id;
            }
        };
        let streams = offer.streams();
        out.push(WhipAction::Connect { conn });
        out.push(WhipAction::ToCore {
            conn,
            message: ClientMessage::Hello {
                id: Some(peer_id(&id)),
                meta: json!({"via": "whip"}),
            },
        });
        out.push(WhipAction::ToCore {
            conn,
            message: ClientMessage::Join {
                room: room.to_owned(),
                streams,
                meta: serde_json::Value::Null,
            },
        });
        self.by_conn.insert(conn, id.clone());
        self.sessions.insert(
            id,
            WhipSession {
                room: room.to_owned(),
                conn,
                offer,
                offer_sdp: request.body.to_owned(),
                post: Some(request.id),
                core_session: None,
                candidates: Vec::new(),
                stage: Stage::AwaitingReceiver,
                answer_deadline: now + self.config.answer_timeout,
            },
        );
        Ok(())
    }

    fn patch(
        &mut self,
        request: Request<'_>,
        room: &str,
        session: &str,
        out: &mut Vec<WhipAction>,
    ) -> Response {
        let checked = self
            .authorize(&request)
            .and_then(|()| self.find(room, session))
            .and_then(|found| {
                check_content_type(request.content_type, "application/trickle-ice-sdpfrag")?;
                let fragment =
                    sdp::parse_fragment(request.body).map_err(|e| Response::text(400, e))?;
                if let Some(ufrag) = &fragment.ufrag
                    && Some(ufrag.as_str()) != sdp::ufrag(&found.offer_sdp)
                {
                    // RFC 9725 §4.4: a server without ICE restarts refuses them.
                    return Err(Response::text(
                        422,
                        "ICE restarts are not supported: the ufrag differs from the offer's",
                    ));
                }
                Ok((found, fragment))
            });
        let (found, fragment) = match checked {
            Ok(ok) => ok,
            Err(response) => return response,
        };
        let (conn, Some(core_session)) = (found.conn, found.core_session.clone()) else {
            return Response::text(404, "the session has no receiver any more");
        };
        for (mid, candidate) in fragment.candidates {
            // The mid maps to the offer's sections; without one, the first
            // (BUNDLE makes every section share its transport).
            let index = mid
                .as_deref()
                .and_then(|m| found.offer.index_of_mid(m))
                .unwrap_or(0);
            out.push(WhipAction::ToCore {
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
            out.push(WhipAction::ToCore {
                conn,
                message: ClientMessage::Ice {
                    session: core_session,
                    candidate: None,
                },
            });
        }
        Response::empty(204)
    }

    fn on_core_message(
        &mut self,
        now: Instant,
        conn: ConnId,
        message: &ServerMessage,
        out: &mut Vec<WhipAction>,
    ) {
        let Some(id) = self.by_conn.get(&conn).cloned() else {
            return;
        };
        let session = self.sessions.get_mut(&id).expect("indexed");
        match message {
            ServerMessage::SessionRequested {
                session: core_session,
                peer,
            } => {
                if matches!(session.stage, Stage::AwaitingReceiver) {
                    session.core_session = Some(core_session.clone());
                    session.stage = Stage::AwaitingAnswer;
                    out.push(WhipAction::ToCore {
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
                    // One offer, one answer: a WHIP publisher has one receiver.
                    let reason = format!(
                        "a WHIP publisher sends to one receiver; \"{peer}\" asked after another"
                    );
                    out.push(WhipAction::ToCore {
                        conn,
                        message: ClientMessage::EndSession {
                            session: core_session.clone(),
                            reason: Some(reason),
                        },
                    });
                }
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
                    self.fail(
                        &id,
                        502,
                        "the receiver sent an offer instead of an answer",
                        out,
                    );
                    return;
                }
                session.stage = Stage::Gathering {
                    answer: sdp.sdp.clone(),
                    until: now + self.config.gather_timeout,
                };
            }
            ServerMessage::Ice {
                session: core_session,
                candidate,
                ..
            } if session.core_session.as_ref() == Some(core_session) => match candidate {
                Some(candidate) if !candidate.candidate.is_empty() => {
                    // Candidates after the 201 have nowhere to go: WHIP has no
                    // server-to-client trickle. Gathering is over by then.
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
                // The receiver is gone (it left, or its media connection
                // failed): nothing keeps this publisher's session alive.
                let text = format!("the receiver ended the session: {reason}");
                self.fail(&id, 502, &text, out);
            }
            ServerMessage::Error { message, .. } if session.post.is_some() => {
                // A refused hello/join (room full, server full...) or relay.
                let text = format!("the signalling server refused the publisher: {message}");
                self.fail(&id, 503, &text, out);
            }
            _ => {}
        }
    }

    fn tick(&mut self, now: Instant, out: &mut Vec<WhipAction>) {
        let mut late = Vec::new();
        let mut gathered = Vec::new();
        for (id, session) in &self.sessions {
            match &session.stage {
                Stage::AwaitingReceiver | Stage::AwaitingAnswer
                    if now >= session.answer_deadline =>
                {
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
            let text = format!(
                "no receiver answered within {:?}",
                self.config.answer_timeout
            );
            self.fail(&id, 504, &text, out);
        }
    }

    /// Sends the 201 with the answer and the candidates gathered so far.
    fn answer(&mut self, id: &str, complete: bool, out: &mut Vec<WhipAction>) {
        let Some(session) = self.sessions.get_mut(id) else {
            return;
        };
        let Stage::Gathering { answer, .. } =
            std::mem::replace(&mut session.stage, Stage::Established)
        else {
            return;
        };
        let body = sdp::answer_with_candidates(&answer, &session.candidates, complete);
        session.candidates.clear();
        if let Some(request) = session.post.take() {
            respond(
                out,
                request,
                Response {
                    status: 201,
                    content_type: Some("application/sdp"),
                    location: Some(format!("/whip/{}/{id}", session.room)),
                    etag: Some(format!("\"{id}\"")),
                    challenge: false,
                    body,
                },
            );
        }
    }

    /// Ends session `id`, answering its POST with `status` if it still waits.
    fn fail(&mut self, id: &str, status: u16, text: &str, out: &mut Vec<WhipAction>) {
        if let Some(request) = self.sessions.get_mut(id).and_then(|s| s.post.take()) {
            respond(out, request, Response::text(status, text));
        }
        self.end(id, out);
    }

    fn end(&mut self, id: &str, out: &mut Vec<WhipAction>) {
        if let Some(session) = self.sessions.remove(id) {
            self.by_conn.remove(&session.conn);
            out.push(WhipAction::Disconnect { conn: session.conn });
        }
    }
}

/// The room sees the publisher as `whip-<session>`.
pub fn peer_id(session: &str) -> String {
    format!("whip-{session}")
}

fn respond(out: &mut Vec<WhipAction>, request: RequestId, response: Response) {
    out.push(WhipAction::Respond { request, response });
}

fn check_content_type(given: Option<&str>, expected: &str) -> Result<(), Response> {
    let essence = given
        .and_then(|value| value.split(';').next())
        .map(|value| value.trim().to_ascii_lowercase());
    match essence {
        Some(essence) if essence == expected => Ok(()),
        Some(essence) => Err(Response::text(
            415,
            format!("Content-Type must be {expected}, not {essence}"),
        )),
        None => Err(Response::text(
            415,
            format!("Content-Type must be {expected}; none was given"),
        )),
    }
}

fn random_id(rng: &mut SmallRng, len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Compares tokens without an early exit, so timing does not reveal how
/// much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
