//! The PeerJS adapter (plugins/signalling/src/peerjs) with the real core,
//! driven by arbitrary sequences from up to 6 PeerJS sockets and one native
//! peer: connects with good and bad queries, frames built from PeerJS's
//! messages (OFFER, ANSWER, CANDIDATE, LEAVE, HEARTBEAT) with ids from a
//! small set (so calls meet, and some go to absent peers and are held) and
//! sizes up to the frame limit, raw text, closed sockets and clock ticks.
//! Small budgets (4 held messages per id, 20 KB per sender, 50 KB in all),
//! so the fuzzer reaches them.
//!
//! Invariants after every step: no panic; held messages within both byte
//! budgets; clients within the concurrent limit; every `ERROR` names its
//! problem (`payload.msg` not empty); every close has a reason; nothing
//! written to a socket the shell does not have open.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use peer_protocol::{ClientMessage, ServerMessage};
use peer_signalling::adapter::{Adapter, AdapterAction, SocketId};
use peer_signalling::core::{Action, ConnId, Input, Limits, SignallingCore};
use peer_signalling::peerjs::{Connect, PeerJsAdapter, PeerJsConfig, decode};
use rand::SeedableRng;
use serde_json::{Value, json};

const SOCKETS: u8 = 6;
const IDS: [&str; 4] = ["alice", "bob", "studio", "ghost"];
/// The native peer of room `peerjs`.
const NATIVE: ConnId = 1;

#[derive(Arbitrary, Debug)]
enum Step {
    /// Socket slot, id, a good key, a token.
    Connect(u8, u8, bool, bool),
    Close(u8),
    Frame(u8, Frame),
    Raw(u8, String),
    Tick(u8),
    /// The native peer joins or leaves room `peerjs` as `studio`.
    Native(bool),
}

#[derive(Arbitrary, Debug)]
enum Frame {
    Offer {
        dst: u8,
        connection: u8,
        pad: u16,
        media: bool,
    },
    Answer {
        dst: u8,
        connection: u8,
    },
    Candidate {
        dst: u8,
        connection: u8,
    },
    Leave {
        dst: Option<u8>,
    },
    Heartbeat,
}

fn id(n: u8) -> &'static str {
    IDS[n as usize % IDS.len()]
}

fn frame_text(frame: &Frame) -> String {
    let sdp = |kind: &str, pad: usize| json!({"type": kind, "sdp": format!("v=0\r\na=x:{}", "p".repeat(pad))});
    match frame {
        Frame::Offer { dst, connection, pad, media } => json!({"type": "OFFER", "dst": id(*dst),
            "payload": {"type": if *media { "media" } else { "data" }, "connectionId": format!("c{connection}"),
                "sdp": sdp("offer", usize::from(*pad) % 70_000), "label": "x"}}),
        Frame::Answer { dst, connection } => json!({"type": "ANSWER", "dst": id(*dst),
            "payload": {"connectionId": format!("c{connection}"), "sdp": sdp("answer", 0)}}),
        Frame::Candidate { dst, connection } => json!({"type": "CANDIDATE", "dst": id(*dst),
            "payload": {"connectionId": format!("c{connection}"),
                "candidate": {"candidate": "candidate:1 1 UDP 1 127.0.0.1 9 typ host", "sdpMLineIndex": 0}}}),
        Frame::Leave { dst: Some(d) } => json!({"type": "LEAVE", "dst": id(*d)}),
        Frame::Leave { dst: None } => json!({"type": "LEAVE"}),
        Frame::Heartbeat => json!({"type": "HEARTBEAT"}),
    }
    .to_string()
}

struct Hub {
    core: SignallingCore,
    adapter: PeerJsAdapter,
    now: Instant,
    /// Sockets the shell has open (slot → socket id).
    sockets: [Option<SocketId>; SOCKETS as usize],
    next: u64,
}

impl Hub {
    /// Carries out actions as the hub does, checking each.
    fn run(&mut self, mut actions: Vec<AdapterAction>) {
        let open: HashSet<SocketId> = self.sockets.iter().flatten().copied().collect();
        while !actions.is_empty() {
            let mut core_out = Vec::new();
            for action in actions.drain(..) {
                let now = self.now;
                match action {
                    AdapterAction::Connect { conn } => {
                        self.core
                            .handle(now, Input::Connected { conn }, &mut core_out)
                    }
                    AdapterAction::ToCore { conn, message } => {
                        self.core
                            .handle(now, Input::Message { conn, message }, &mut core_out)
                    }
                    AdapterAction::Disconnect { conn } => {
                        self.core
                            .handle(now, Input::Disconnected { conn }, &mut core_out)
                    }
                    AdapterAction::Vouch { conn, grants, room } => {
                        self.core
                            .handle(now, Input::Vouch { conn, grants, room }, &mut core_out)
                    }
                    AdapterAction::Write { socket, text } => {
                        assert!(open.contains(&socket), "write to {socket}, not open");
                        let value: Value = serde_json::from_str(&text).expect("JSON frames");
                        if value["type"] == "ERROR" {
                            let msg = value["payload"]["msg"].as_str().unwrap_or_default();
                            assert!(!msg.is_empty(), "an ERROR that says nothing: {text}");
                        }
                    }
                    AdapterAction::CloseSocket { socket, reason, .. } => {
                        assert!(open.contains(&socket), "close of {socket}, not open");
                        assert!(!reason.is_empty(), "a close without a reason");
                    }
                    AdapterAction::Respond { .. } => panic!("no HTTP requests here"),
                }
            }
            for action in core_out {
                match action {
                    Action::Send { to, message } => {
                        for conn in to {
                            if self.adapter.owns(conn) {
                                self.adapter
                                    .core_sent(self.now, conn, &message, &mut actions);
                            } else if let ServerMessage::Error { code, message, .. } = &*message {
                                assert!(!message.is_empty(), "error {code} says nothing");
                            }
                        }
                    }
                    Action::Close { conn, reason, .. } => {
                        assert!(!reason.is_empty());
                        if self.adapter.owns(conn) {
                            self.adapter.closed(self.now, conn, &mut actions);
                        }
                    }
                    Action::Ping { conn } if self.adapter.owns(conn) => {
                        let mut ignored = Vec::new();
                        self.core
                            .handle(self.now, Input::Alive { conn }, &mut ignored);
                    }
                    _ => {}
                }
            }
        }
    }
}

fn main() {
    let config = PeerJsConfig {
        max_held_per_peer: 4,
        max_held_peers: 3,
        max_held_bytes_per_sender: 20_000,
        max_held_bytes: 50_000,
        concurrent_limit: 4,
        ..PeerJsConfig::default()
    };
    afl::fuzz!(|steps: Vec<Step>| {
        let mut hub = Hub {
            core: SignallingCore::new(Limits::default(), 1),
            adapter: PeerJsAdapter::new(config.clone(), rand::rngs::StdRng::seed_from_u64(7)),
            now: Instant::now(),
            sockets: [None; SOCKETS as usize],
            next: 100,
        };
        let mut native_in = false;
        let mut out = Vec::new();
        hub.core
            .handle(hub.now, Input::Connected { conn: NATIVE }, &mut Vec::new());
        let hello = ClientMessage::Hello {
            id: Some("studio".into()),
            meta: Value::Null,
            token: None,
            resume: None,
        };
        hub.core.handle(
            hub.now,
            Input::Message {
                conn: NATIVE,
                message: hello,
            },
            &mut Vec::new(),
        );
        for step in steps.iter().take(100) {
            let slot = |s: &u8| (*s % SOCKETS) as usize;
            match step {
                Step::Connect(s, n, good_key, token) => {
                    if hub.sockets[slot(s)].is_some() {
                        continue;
                    }
                    hub.next += 2;
                    let (socket, conn) = (hub.next, hub.next + 1);
                    hub.sockets[slot(s)] = Some(socket);
                    let query = Connect {
                        key: Some(if *good_key { "peerjs" } else { "nope" }),
                        id: Some(id(*n)),
                        token: token.then_some("t"),
                    };
                    hub.adapter
                        .connect(hub.now, &hub.core, socket, query, conn, &mut out);
                }
                Step::Close(s) => {
                    if let Some(socket) = hub.sockets[slot(s)].take() {
                        hub.adapter.socket_closed(socket, &mut out);
                    }
                }
                Step::Frame(s, frame) => {
                    if let Some(socket) = hub.sockets[slot(s)] {
                        let text = frame_text(frame);
                        let inbound = decode(config.max_message_bytes, &text);
                        hub.adapter
                            .frame(hub.now, &hub.core, socket, inbound, &mut out);
                    }
                }
                Step::Raw(s, text) => {
                    if let Some(socket) = hub.sockets[slot(s)] {
                        let inbound = decode(config.max_message_bytes, text);
                        hub.adapter
                            .frame(hub.now, &hub.core, socket, inbound, &mut out);
                    }
                }
                Step::Tick(seconds) => {
                    hub.now += Duration::from_millis(u64::from(*seconds) * 100);
                    let mut core_out = Vec::new();
                    hub.core.handle(hub.now, Input::Tick, &mut core_out);
                    hub.adapter.tick(hub.now, &mut out);
                }
                Step::Native(join) => {
                    if *join == native_in {
                        continue;
                    }
                    native_in = *join;
                    let message = if *join {
                        ClientMessage::Join {
                            room: "peerjs".into(),
                            streams: Vec::new(),
                            meta: Value::Null,
                            presence: true,
                        }
                    } else {
                        ClientMessage::Leave {}
                    };
                    let mut core_out = Vec::new();
                    hub.core.handle(
                        hub.now,
                        Input::Message {
                            conn: NATIVE,
                            message,
                        },
                        &mut core_out,
                    );
                    for action in core_out {
                        if let Action::Send { to, message } = action {
                            for conn in to {
                                if hub.adapter.owns(conn) {
                                    hub.adapter.core_sent(hub.now, conn, &message, &mut out);
                                }
                            }
                        }
                    }
                }
            }
            hub.run(std::mem::take(&mut out));
            assert!(hub.adapter.held_bytes(None) <= config.max_held_bytes);
            for conn in 0..=hub.next + 1 {
                assert!(hub.adapter.held_bytes(Some(conn)) <= config.max_held_bytes_per_sender);
            }
            assert!(hub.adapter.client_count() <= config.concurrent_limit);
        }
    });
}
