//! The room core driven by arbitrary sequences of connections, frames,
//! disconnections and clock ticks from up to 8 clients. Frames are built
//! from the protocol's messages with names from a small set (so peers meet
//! in rooms and sessions are really started), or are raw text; frames go
//! in as text or decoded beforehand (as the transport does, outside the
//! lock). Joins with and without presence, oversized meta, resumes after a
//! lost socket, URL tokens, adapters' vouching and the rate limit (small
//! here) are all reached.
//!
//! Invariants after every input: no panic; state bounded by the limits
//! (connections, peers, rooms, sessions); every error sent names its code
//! and says something; every close has a reason; nothing is sent to a
//! connection the core does not know.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use peer_protocol::ServerMessage;
use peer_signalling::auth::Grants;
use peer_signalling::core::{Action, Input, Limits, SignallingCore, decode_frame};
use serde_json::{Value, json};

const CLIENTS: u64 = 8;
const NAMES: [&str; 4] = ["a", "b", "cam", "rec"];
const ROOMS: [&str; 3] = ["r", "s", "t"];

#[derive(Arbitrary, Debug)]
enum Step {
    Connect(u8),
    Disconnect(u8),
    Alive(u8),
    Binary(u8),
    Tick(u8),
    Raw(u8, String),
    Frame(u8, Frame),
    /// The same frames decoded by the transport outside the lock
    /// (`decode_frame`, then `Input::Frame`), as `peer serve` does.
    Predecoded(u8, Frame),
    TooLarge(u8),
    /// The socket went without a close: the peer waits for a resume.
    Lost(u8),
    /// A `/ws?token=` token (garbage: the core has no access configured).
    Credential(u8),
    /// An adapter vouching for a connection (a static WHIP token).
    Vouch(u8, u8, u8),
}

#[derive(Arbitrary, Debug)]
enum Frame {
    Hello {
        name: Option<u8>,
        meta: bool,
        /// A token, though the core requires none (it must not matter).
        token: bool,
        /// One of the `resume` secrets of earlier welcomes.
        resume: Option<u8>,
    },
    Join {
        room: u8,
        publish: bool,
        /// `"presence": false`: a member the others are not told about.
        presence: bool,
        meta: Option<u8>,
    },
    Update {
        publish: Option<bool>,
        meta: Option<u8>,
    },
    Leave,
    List {
        room: Option<u8>,
    },
    ListRooms,
    StartSession {
        peer: u8,
        wait: bool,
        offer: bool,
    },
    Sdp {
        session: u8,
        answer: bool,
    },
    Ice {
        session: u8,
        end: bool,
    },
    EndSession {
        session: u8,
        reason: bool,
    },
    Message {
        to: Option<u8>,
        data: u8,
    },
    Ping,
}

fn name(n: u8) -> &'static str {
    NAMES[n as usize % NAMES.len()]
}

/// Sessions the core announced, so frames can name real ones.
fn session(sessions: &[String], n: u8) -> String {
    if sessions.is_empty() {
        format!("s{n}")
    } else {
        sessions[n as usize % sessions.len()].clone()
    }
}

fn frame_text(frame: &Frame, sessions: &[String], secrets: &[String]) -> String {
    let streams = json!([{"kind": "video", "codec": "VP8"}]);
    let value = match frame {
        Frame::Hello {
            name: n,
            meta,
            token,
            resume,
        } => {
            let mut v = json!({"type": "hello"});
            if *token {
                v["token"] = "e30.e30.x".into();
            }
            if let (Some(r), false) = (resume, secrets.is_empty()) {
                v["resume"] = secrets[*r as usize % secrets.len()].clone().into();
            }
            if let Some(n) = n {
                v["id"] = name(*n).into();
            }
            if *meta {
                v["meta"] = json!({"x": 1});
            }
            v
        }
        Frame::Join {
            room,
            publish,
            presence,
            meta,
        } => {
            let mut v = json!({"type": "join", "room": ROOMS[*room as usize % ROOMS.len()]});
            if *publish {
                v["streams"] = streams;
            }
            if !*presence {
                v["presence"] = false.into();
            }
            if let Some(m) = meta {
                // Big enough, now and then, to pass the meta limit below.
                v["meta"] = json!({ "m": "x".repeat(usize::from(*m) * 4) });
            }
            v
        }
        Frame::Update { publish, meta } => {
            let mut v = json!({"type": "update"});
            if let Some(p) = publish {
                v["streams"] = if *p { streams } else { json!([]) };
            }
            if let Some(m) = meta {
                v["meta"] = json!({ "m": m });
            }
            v
        }
        Frame::Leave => json!({"type": "leave"}),
        Frame::List { room } => match room {
            Some(r) => json!({"type": "list", "room": ROOMS[*r as usize % ROOMS.len()]}),
            None => json!({"type": "list"}),
        },
        Frame::ListRooms => json!({"type": "list-rooms"}),
        Frame::StartSession { peer, wait, offer } => {
            let mut v = json!({"type": "start-session", "peer": name(*peer), "wait": wait});
            if *offer {
                v["offer"] = json!({"type": "offer", "sdp": "v=0\r\n"});
            }
            v
        }
        Frame::Sdp { session: s, answer } => json!({
            "type": "sdp", "session": session(sessions, *s),
            "sdp": {"type": if *answer { "answer" } else { "offer" }, "sdp": "v=0\r\n"}
        }),
        Frame::Ice { session: s, end } => json!({
            "type": "ice", "session": session(sessions, *s),
            "candidate": if *end { Value::Null } else {
                json!({"candidate": "candidate:1 1 UDP 1 127.0.0.1 9 typ host", "sdpMLineIndex": 0})
            }
        }),
        Frame::EndSession { session: s, reason } => {
            let mut v = json!({"type": "end-session", "session": session(sessions, *s)});
            if *reason {
                v["reason"] = "done".into();
            }
            v
        }
        Frame::Message { to, data } => match to {
            Some(t) => json!({"type": "message", "to": name(*t), "data": data}),
            None => json!({"type": "message", "data": {"d": data}}),
        },
        Frame::Ping => json!({"type": "ping"}),
    };
    value.to_string()
}

fn main() {
    let limits = Limits {
        max_message_bytes: 4096,
        max_peers: 6,
        max_rooms: 2,
        max_peers_per_room: 4,
        max_sessions_per_peer: 3,
        max_meta_bytes: 512,
        // Small enough that a sequence of 200 steps meets the rate limit.
        message_rate: 5.0,
        message_burst: 20.0,
        ..Limits::default()
    };
    afl::fuzz!(|steps: Vec<Step>| {
        let mut core = SignallingCore::new(limits.clone(), 1);
        let mut now = Instant::now();
        let mut open: HashSet<u64> = HashSet::new();
        let mut sessions: Vec<String> = Vec::new();
        let mut secrets: Vec<String> = Vec::new();
        let mut out = Vec::new();
        // A transport never reuses a connection id; a lost socket's id
        // stays with the core (its peer held for a resume), so the slot
        // gets a new one.
        let mut generation = [0u64; CLIENTS as usize];
        // Connections whose socket was lost: the core may hold them until
        // their resume window ends.
        let mut lost: HashSet<u64> = HashSet::new();
        for step in steps.iter().take(200) {
            let conn = |c: &u8| {
                let slot = u64::from(*c) % CLIENTS;
                slot + CLIENTS * generation[slot as usize]
            };
            let text;
            let decoded;
            let input = match step {
                Step::Connect(c) => {
                    if !open.insert(conn(c)) {
                        continue; // a transport never reuses a live id
                    }
                    Input::Connected { conn: conn(c) }
                }
                Step::Disconnect(c) => {
                    open.remove(&conn(c));
                    Input::Disconnected { conn: conn(c) }
                }
                Step::Alive(c) => Input::Alive { conn: conn(c) },
                Step::Binary(c) => Input::Binary { conn: conn(c) },
                Step::Tick(seconds) => {
                    now += Duration::from_secs(u64::from(*seconds));
                    Input::Tick
                }
                Step::Raw(c, raw) => Input::Text {
                    conn: conn(c),
                    text: raw,
                    len: raw.len(),
                },
                Step::Frame(c, frame) => {
                    text = frame_text(frame, &sessions, &secrets);
                    Input::Text {
                        conn: conn(c),
                        text: &text,
                        len: text.len(),
                    }
                }
                Step::Predecoded(c, frame) => {
                    decoded = frame_text(frame, &sessions, &secrets);
                    Input::Frame {
                        conn: conn(c),
                        frame: decode_frame(&limits, &decoded, decoded.len()),
                    }
                }
                Step::TooLarge(c) => Input::Text {
                    conn: conn(c),
                    text: "",
                    len: 1 << 20,
                },
                Step::Lost(c) => {
                    // The transport forgets the socket; the core may hold
                    // the peer, but must not send to the connection again.
                    let gone = conn(c);
                    open.remove(&gone);
                    lost.insert(gone);
                    generation[(u64::from(*c) % CLIENTS) as usize] += 1;
                    Input::SocketLost { conn: gone }
                }
                Step::Credential(c) => Input::Credential {
                    conn: conn(c),
                    token: "e30.e30.x".into(),
                },
                Step::Vouch(c, grants, room) => Input::Vouch {
                    conn: conn(c),
                    grants: Grants {
                        publish: grants & 1 != 0,
                        subscribe: grants & 2 != 0,
                        data: grants & 4 != 0,
                        record: grants & 8 != 0,
                        admin: grants & 16 != 0,
                    },
                    room: ROOMS[*room as usize % ROOMS.len()].into(),
                },
            };
            core.handle(now, input, &mut out);
            for action in out.drain(..) {
                match action {
                    Action::Send { to, message } => {
                        // A peer held for resume is still in its room and
                        // sessions: what is sent to it the transport drops.
                        for c in &to {
                            assert!(
                                open.contains(c) || lost.contains(c),
                                "sent {message:?} to unknown {c}"
                            );
                        }
                        match &*message {
                            ServerMessage::Error { code, message, .. } => {
                                assert!(!code.as_str().is_empty());
                                assert!(!message.is_empty(), "error {code} says nothing");
                            }
                            ServerMessage::Welcome {
                                resume: Some(secret),
                                ..
                            } => {
                                if secrets.len() < 8 {
                                    secrets.push(secret.clone());
                                }
                            }
                            ServerMessage::SessionStarted { session, .. }
                            | ServerMessage::SessionRequested { session, .. } => {
                                if sessions.len() < 16 && !sessions.contains(session) {
                                    sessions.push(session.clone());
                                }
                            }
                            _ => {}
                        }
                    }
                    Action::SendText { to, text } => {
                        for c in &to {
                            assert!(
                                open.contains(c) || lost.contains(c),
                                "sent {text} to unknown {c}"
                            );
                        }
                    }
                    Action::Ping { conn } => assert!(open.contains(&conn)),
                    Action::Close { conn, reason, .. } => {
                        assert!(!reason.is_empty(), "close of {conn} without a reason");
                        open.remove(&conn);
                    }
                }
            }
            assert!(core.connection_count() <= open.len() + lost.len());
            assert!(
                core.session_count() <= limits.max_peers * limits.max_sessions_per_peer,
                "{} sessions",
                core.session_count()
            );
            let summaries = core.room_summaries();
            assert!(summaries.len() <= limits.max_rooms, "{summaries:?}");
            for room in &summaries {
                assert!(core.peer_ids_in(&room.room).len() <= limits.max_peers_per_room);
            }
        }
    });
}
