//! Protocol v1: the JSON messages exchanged over the `/ws` WebSocket.
//!
//! Every message is a JSON object whose `type` field names it. The full
//! reference, with examples, is `docs/protocol.md`; keep the two in step.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

mod relay;
pub mod sdp;
pub use relay::{Inbound, RelayRequest, decode_inbound, encode_relayed_message};

pub const PROTOCOL_VERSION: u32 = 1;

pub type PeerId = String;
pub type RoomId = String;
pub type SessionId = String;

/// What a peer publishes, announced to the room so viewers can choose.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamInfo {
    /// `video`, `audio` or `data`.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codec: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Anything else the publisher wants to say (width, height, rate...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerInfo {
    pub id: PeerId,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub streams: Vec<StreamInfo>,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub meta: Value,
}

impl PeerInfo {
    /// A producer is a peer that publishes at least one stream.
    pub fn is_producer(&self) -> bool {
        !self.streams.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomSummary {
    pub room: RoomId,
    pub peers: usize,
    pub producers: Vec<PeerInfo>,
}

/// An SDP offer or answer, shaped like the browser's RTCSessionDescriptionInit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionDescription {
    #[serde(rename = "type")]
    pub kind: SdpKind,
    pub sdp: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SdpKind {
    Offer,
    Answer,
}

/// A STUN or TURN server, shaped like the browser's RTCIceServer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IceServerConfig {
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// An ICE candidate, shaped like the browser's RTCIceCandidateInit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IceCandidate {
    pub candidate: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp_m_line_index: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp_mid: Option<String>,
}

/// Messages a peer sends to the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ClientMessage {
    /// Register, optionally asking for a name. Optional: the first other
    /// message registers the peer under a random id.
    Hello {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<PeerId>,
        #[serde(default, skip_serializing_if = "Value::is_null")]
        meta: Value,
        /// An access token (JWT), when the server requires one (or give
        /// it as `?token=` on the WebSocket URL).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
        /// The `resume` secret of an earlier `welcome` for this id: takes
        /// the peer back, with its room and sessions, from a connection
        /// that was lost (or is about to be found dead).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume: Option<String>,
    },
    Join {
        room: RoomId,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        streams: Vec<StreamInfo>,
        #[serde(default, skip_serializing_if = "Value::is_null")]
        meta: Value,
        /// `false`: this peer is not told who joins, updates or leaves the
        /// room (no `peer-joined`, `peer-updated`, `peer-left`; `joined`
        /// lists nobody), so joining a big room costs O(1), not O(room).
        /// For audiences that need no roster, and for protocols without
        /// presence (PeerJS). `list` still answers. Others see it as usual.
        #[serde(default = "presence_default", skip_serializing_if = "is_true")]
        presence: bool,
    },
    /// Change what this peer publishes or its meta; the room is told.
    Update {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        streams: Option<Vec<StreamInfo>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        meta: Option<Value>,
    },
    Leave {},
    /// Peers of a room (the joined one when absent).
    List {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<RoomId>,
    },
    ListRooms {},
    /// Ask `peer` for a session. Without `offer` the peer asked makes the
    /// offer (a producer offering its streams); with one, it answers it (a
    /// viewer that offers, as WHEP players and PeerJS callers do). With
    /// `wait`, a peer not yet in the room is waited for instead of refused.
    StartSession {
        peer: PeerId,
        #[serde(default)]
        wait: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        offer: Option<SessionDescription>,
    },
    Sdp {
        session: SessionId,
        sdp: SessionDescription,
    },
    /// `candidate: null` marks the end of candidates.
    Ice {
        session: SessionId,
        candidate: Option<IceCandidate>,
    },
    EndSession {
        session: SessionId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// An application message to one peer (`to`) or to the whole room.
    Message {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<PeerId>,
        data: Value,
    },
    Ping {},
}

fn presence_default() -> bool {
    true
}

fn is_true(value: &bool) -> bool {
    *value
}

impl ClientMessage {
    pub fn type_name(&self) -> &'static str {
        match self {
            ClientMessage::Hello { .. } => "hello",
            ClientMessage::Join { .. } => "join",
            ClientMessage::Update { .. } => "update",
            ClientMessage::Leave {} => "leave",
            ClientMessage::List { .. } => "list",
            ClientMessage::ListRooms {} => "list-rooms",
            ClientMessage::StartSession { .. } => "start-session",
            ClientMessage::Sdp { .. } => "sdp",
            ClientMessage::Ice { .. } => "ice",
            ClientMessage::EndSession { .. } => "end-session",
            ClientMessage::Message { .. } => "message",
            ClientMessage::Ping {} => "ping",
        }
    }
}

pub const CLIENT_MESSAGE_TYPES: &[&str] = &[
    "hello",
    "join",
    "update",
    "leave",
    "list",
    "list-rooms",
    "start-session",
    "sdp",
    "ice",
    "end-session",
    "message",
    "ping",
];

/// Messages the server sends to a peer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ServerMessage {
    Welcome {
        id: PeerId,
        protocol: u32,
        heartbeat_ms: u64,
        max_message_bytes: usize,
        /// STUN/TURN servers to use, shaped like RTCIceServer (TURN with
        /// short-lived credentials for this peer).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        ice_servers: Vec<IceServerConfig>,
        /// A secret that lets this peer take its id, room and sessions
        /// back after losing its connection (`hello.resume`); never shown
        /// to anyone else.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume: Option<String>,
        /// This hello resumed the peer: it is in `room` again (if it was
        /// in one) with its sessions; no `join` is needed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resumed: Option<Resumed>,
    },
    Joined {
        room: RoomId,
        id: PeerId,
        peers: Vec<PeerInfo>,
    },
    PeerJoined {
        room: RoomId,
        peer: PeerInfo,
    },
    PeerUpdated {
        room: RoomId,
        peer: PeerInfo,
    },
    PeerLeft {
        room: RoomId,
        id: PeerId,
    },
    Left {
        room: RoomId,
    },
    Peers {
        room: RoomId,
        peers: Vec<PeerInfo>,
    },
    Rooms {
        rooms: Vec<RoomSummary>,
    },
    /// To the peer that asked: its session exists.
    SessionStarted {
        session: SessionId,
        peer: PeerId,
    },
    /// To the peer asked: `peer` wants a session with it. With `offer`,
    /// answer it; without, make the offer.
    SessionRequested {
        session: SessionId,
        peer: PeerId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        offer: Option<SessionDescription>,
    },
    Sdp {
        session: SessionId,
        from: PeerId,
        sdp: SessionDescription,
    },
    Ice {
        session: SessionId,
        from: PeerId,
        candidate: Option<IceCandidate>,
    },
    SessionEnded {
        session: SessionId,
        reason: String,
    },
    Message {
        from: PeerId,
        room: RoomId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<PeerId>,
        data: Value,
    },
    Pong {},
    Error {
        code: ErrorCode,
        message: String,
        /// The `type` of the message that caused it, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session: Option<SessionId>,
    },
}

impl ServerMessage {
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        ServerMessage::Error {
            code,
            message: message.into(),
            request: None,
            session: None,
        }
    }
}

/// What a resumed peer got back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resumed {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<RoomId>,
    /// Its sessions, still running.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sessions: Vec<SessionId>,
}

/// Every error the server reports. Clients match on these; the text is for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorCode {
    MalformedJson,
    MissingType,
    UnknownType,
    InvalidMessage,
    MessageTooLarge,
    BinaryNotSupported,
    AlreadyRegistered,
    NameTaken,
    InvalidName,
    InvalidRoom,
    NotInRoom,
    AlreadyInRoom,
    RoomFull,
    UnknownRoom,
    UnknownPeer,
    UnknownSession,
    NotInSession,
    SelfSession,
    TooManySessions,
    ServerFull,
    SlowConsumer,
    HeartbeatTimeout,
    ServerShutdown,
    /// No or a bad token (the message says why).
    Unauthorized,
    /// A good token that does not grant this.
    Forbidden,
    /// More messages than the server's rate limit; the message was dropped.
    RateLimited,
    /// The connection said no `hello` (or anything else) in time.
    HelloTimeout,
    /// The peer resumed on another connection; this one is closed.
    Replaced,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MalformedJson => "malformed-json",
            ErrorCode::MissingType => "missing-type",
            ErrorCode::UnknownType => "unknown-type",
            ErrorCode::InvalidMessage => "invalid-message",
            ErrorCode::MessageTooLarge => "message-too-large",
            ErrorCode::BinaryNotSupported => "binary-not-supported",
            ErrorCode::AlreadyRegistered => "already-registered",
            ErrorCode::NameTaken => "name-taken",
            ErrorCode::InvalidName => "invalid-name",
            ErrorCode::InvalidRoom => "invalid-room",
            ErrorCode::NotInRoom => "not-in-room",
            ErrorCode::AlreadyInRoom => "already-in-room",
            ErrorCode::RoomFull => "room-full",
            ErrorCode::UnknownRoom => "unknown-room",
            ErrorCode::UnknownPeer => "unknown-peer",
            ErrorCode::UnknownSession => "unknown-session",
            ErrorCode::NotInSession => "not-in-session",
            ErrorCode::SelfSession => "self-session",
            ErrorCode::TooManySessions => "too-many-sessions",
            ErrorCode::ServerFull => "server-full",
            ErrorCode::SlowConsumer => "slow-consumer",
            ErrorCode::HeartbeatTimeout => "heartbeat-timeout",
            ErrorCode::ServerShutdown => "server-shutdown",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::RateLimited => "rate-limited",
            ErrorCode::HelloTimeout => "hello-timeout",
            ErrorCode::Replaced => "replaced",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a text frame could not be turned into a [`ClientMessage`].
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeError {
    pub code: ErrorCode,
    pub message: String,
    pub request: Option<String>,
}

impl DecodeError {
    pub fn into_message(self) -> ServerMessage {
        ServerMessage::Error {
            code: self.code,
            message: self.message,
            request: self.request,
            session: None,
        }
    }
}

/// Parses one text frame. The fast path is a single typed parse; only a
/// frame that fails it is parsed again to say precisely what is wrong.
pub fn decode_client_message(text: &str) -> Result<ClientMessage, DecodeError> {
    match serde_json::from_str::<ClientMessage>(text) {
        Ok(message) => Ok(message),
        Err(_) => Err(diagnose(text)),
    }
}

fn diagnose(text: &str) -> DecodeError {
    let value: Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(err) => {
            return DecodeError {
                code: ErrorCode::MalformedJson,
                message: format!("not valid JSON: {err}"),
                request: None,
            };
        }
    };
    let Some(object) = value.as_object() else {
        return DecodeError {
            code: ErrorCode::MalformedJson,
            message: "a message must be a JSON object".into(),
            request: None,
        };
    };
    let Some(kind) = object.get("type") else {
        return DecodeError {
            code: ErrorCode::MissingType,
            message: "the message has no \"type\" field".into(),
            request: None,
        };
    };
    let Some(kind) = kind.as_str() else {
        return DecodeError {
            code: ErrorCode::MissingType,
            message: "\"type\" must be a string".into(),
            request: None,
        };
    };
    if !CLIENT_MESSAGE_TYPES.contains(&kind) {
        return DecodeError {
            code: ErrorCode::UnknownType,
            message: format!(
                "unknown message type \"{kind}\"; expected one of: {}",
                CLIENT_MESSAGE_TYPES.join(", ")
            ),
            request: Some(kind.to_owned()),
        };
    }
    let detail = match serde_json::from_value::<ClientMessage>(value.clone()) {
        Ok(_) => "could not be decoded".to_owned(),
        Err(err) => err.to_string(),
    };
    DecodeError {
        code: ErrorCode::InvalidMessage,
        message: format!("invalid \"{kind}\" message: {detail}"),
        request: Some(kind.to_owned()),
    }
}

pub fn encode_server_message(message: &ServerMessage) -> String {
    serde_json::to_string(message).expect("server messages always serialize")
}

pub fn encode_client_message(message: &ClientMessage) -> String {
    serde_json::to_string(message).expect("client messages always serialize")
}

pub fn decode_server_message(text: &str) -> Result<ServerMessage, serde_json::Error> {
    serde_json::from_str(text)
}

/// Names of peers and rooms: 1 to 64 characters, ASCII letters, digits, `.`, `_`, `-`.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_every_client_message_type() {
        let frames = [
            r#"{"type":"hello","id":"cam"}"#,
            r#"{"type":"join","room":"demo","streams":[{"kind":"video","codec":"VP8","width":1280}]}"#,
            r#"{"type":"update","meta":{"title":"x"}}"#,
            r#"{"type":"leave"}"#,
            r#"{"type":"list"}"#,
            r#"{"type":"list-rooms"}"#,
            r#"{"type":"start-session","peer":"cam"}"#,
            r#"{"type":"sdp","session":"s","sdp":{"type":"offer","sdp":"v=0"}}"#,
            r#"{"type":"ice","session":"s","candidate":{"candidate":"candidate:1","sdpMLineIndex":0}}"#,
            r#"{"type":"ice","session":"s","candidate":null}"#,
            r#"{"type":"end-session","session":"s"}"#,
            r#"{"type":"message","data":{"text":"hi"}}"#,
            r#"{"type":"ping"}"#,
        ];
        let mut seen = std::collections::HashSet::new();
        for frame in frames {
            let message = decode_client_message(frame).unwrap_or_else(|e| panic!("{frame}: {e:?}"));
            seen.insert(message.type_name());
            let again = decode_client_message(&encode_client_message(&message)).unwrap();
            assert_eq!(again, message);
        }
        assert_eq!(seen.len(), CLIENT_MESSAGE_TYPES.len());
    }

    #[test]
    fn stream_info_keeps_extra_fields() {
        let message = decode_client_message(
            r#"{"type":"join","room":"r","streams":[{"kind":"video","width":640,"height":360}]}"#,
        )
        .unwrap();
        let ClientMessage::Join { streams, .. } = message else {
            panic!()
        };
        assert_eq!(streams[0].extra["width"], 640);
    }

    #[test]
    fn malformed_json_is_named() {
        let err = decode_client_message("{\"type\":").unwrap_err();
        assert_eq!(err.code, ErrorCode::MalformedJson);
        assert!(err.message.contains("not valid JSON"), "{}", err.message);
        assert_eq!(
            decode_client_message("[1,2]").unwrap_err().code,
            ErrorCode::MalformedJson
        );
    }

    #[test]
    fn missing_and_unknown_type_are_named() {
        assert_eq!(
            decode_client_message("{}").unwrap_err().code,
            ErrorCode::MissingType
        );
        assert_eq!(
            decode_client_message(r#"{"type":3}"#).unwrap_err().code,
            ErrorCode::MissingType
        );
        let err = decode_client_message(r#"{"type":"dance"}"#).unwrap_err();
        assert_eq!(err.code, ErrorCode::UnknownType);
        assert!(err.message.contains("\"dance\""));
        assert!(err.message.contains("start-session"));
    }

    #[test]
    fn missing_field_names_the_field() {
        let err = decode_client_message(r#"{"type":"join"}"#).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidMessage);
        assert_eq!(err.request.as_deref(), Some("join"));
        assert!(err.message.contains("`room`"), "{}", err.message);
    }

    #[test]
    fn wrong_field_value_is_named() {
        let err = decode_client_message(
            r#"{"type":"sdp","session":"s","sdp":{"type":"pranswer","sdp":""}}"#,
        )
        .unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidMessage);
        assert!(err.message.contains("pranswer"), "{}", err.message);
        // Unknown fields are ignored so that newer clients work with older servers.
        assert!(decode_client_message(r#"{"type":"ping","colour":"blue"}"#).is_ok());
    }

    #[test]
    fn server_messages_round_trip() {
        let message = ServerMessage::Error {
            code: ErrorCode::NameTaken,
            message: "taken".into(),
            request: Some("hello".into()),
            session: None,
        };
        let text = encode_server_message(&message);
        assert!(text.contains(r#""code":"name-taken""#), "{text}");
        assert_eq!(decode_server_message(&text).unwrap(), message);
    }

    #[test]
    fn names_are_checked() {
        assert!(is_valid_name("cam-1.a_b"));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name("has space"));
        assert!(!is_valid_name(&"x".repeat(65)));
    }
}
