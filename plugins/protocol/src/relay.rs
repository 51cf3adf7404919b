//! The fast path for relayed application messages (`message`), the bulk of
//! a busy server's traffic: the frame is scanned, not turned into a value
//! tree, and the `data` payload is relayed as the text it arrived as
//! (a [`RawValue`]), inside an envelope written straight into the outgoing
//! frame.
//!
//! Acceptance is exactly that of [`decode_client_message`]: the payload is
//! checked as thoroughly as building a `serde_json::Value` would (numbers in
//! range, valid escapes, nesting depth), only without allocating, and any
//! frame this path is not sure of (another type, a duplicate field, a
//! `null` payload, deep nesting...) is left to the full decoder, which
//! accepts it or names what is wrong.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::{ClientMessage, DecodeError, decode_client_message};

/// A client frame, decoded.
#[derive(Debug)]
pub enum Inbound<'a> {
    /// A `message`, its payload still text borrowed from the frame.
    Relay(RelayRequest<'a>),
    /// Anything else, fully decoded.
    Client(ClientMessage),
}

/// `{"type":"message","to"?:…,"data":…}` with `data` kept as received.
#[derive(Debug)]
pub struct RelayRequest<'a> {
    pub to: Option<Cow<'a, str>>,
    pub data: &'a RawValue,
}

impl Inbound<'_> {
    pub fn type_name(&self) -> &'static str {
        match self {
            Inbound::Relay(_) => "message",
            Inbound::Client(message) => message.type_name(),
        }
    }
}

/// Decodes one text frame, taking the fast path for `message` frames.
pub fn decode_inbound(text: &str) -> Result<Inbound<'_>, DecodeError> {
    match fast_relay(text) {
        Some(request) => Ok(Inbound::Relay(request)),
        None => decode_client_message(text).map(Inbound::Client),
    }
}

/// Nesting beyond this in a payload is left to the full decoder, whose
/// recursion limit (128 levels, the envelope included) then decides.
const MAX_FAST_DEPTH: usize = 100;

fn fast_relay(text: &str) -> Option<RelayRequest<'_>> {
    let envelope: Envelope<'_> = serde_json::from_str(text).ok()?;
    if envelope.kind.as_deref() != Some("message") {
        return None;
    }
    let data = envelope.data?;
    // `null` is a valid payload, but `Option` cannot tell it from a
    // missing one here: the full decoder handles it.
    if data.get() == "null" {
        return None;
    }
    // Check the payload as a value tree would be checked, without building it.
    let mut checker = serde_json::Deserializer::from_str(data.get());
    Checked { depth: 0 }.deserialize(&mut checker).ok()?;
    Some(RelayRequest {
        to: envelope.to.map(|to| to.0),
        data,
    })
}

/// The fields the fast path looks at; any other field is skipped unread,
/// as the full decoder ignores unknown fields.
struct Envelope<'a> {
    kind: Option<Cow<'a, str>>,
    to: Option<Str<'a>>,
    data: Option<&'a RawValue>,
}

impl<'de> Deserialize<'de> for Envelope<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // A map only: the full decoder refuses anything else.
        deserializer.deserialize_map(EnvelopeVisitor)
    }
}

struct EnvelopeVisitor;

impl<'de> Visitor<'de> for EnvelopeVisitor {
    type Value = Envelope<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a message object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut envelope = Envelope {
            kind: None,
            to: None,
            data: None,
        };
        let mut seen_to = false;
        while let Some(Str(key)) = map.next_key()? {
            match &*key {
                "type" if envelope.kind.is_none() => {
                    envelope.kind = Some(map.next_value::<Str<'de>>()?.0)
                }
                "to" if !seen_to => {
                    seen_to = true;
                    envelope.to = map.next_value()?;
                }
                "data" if envelope.data.is_none() => envelope.data = Some(map.next_value()?),
                "type" | "to" | "data" => return Err(de::Error::custom("duplicate field")),
                // Skipped, but checked: the full decoder would refuse
                // an unknown field that is not valid JSON.
                _ => map.next_value_seed(Checked { depth: 1 })?,
            }
        }
        Ok(envelope)
    }
}

/// A string borrowed from the frame when it has no escapes.
struct Str<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Str<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StrVisitor;
        impl<'de> Visitor<'de> for StrVisitor {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(StrVisitor)
    }
}

/// Walks a JSON value as `serde_json::Value` would be built from it
/// (numbers parsed, string escapes decoded) and throws it away.
struct Checked {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Checked {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        if self.depth > MAX_FAST_DEPTH {
            return Err(de::Error::custom("nested too deeply for the fast path"));
        }
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Checked {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let depth = self.depth + 1;
        while seq.next_element_seed(Checked { depth })?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let depth = self.depth + 1;
        while map.next_key_seed(Checked { depth })?.is_some() {
            map.next_value_seed(Checked { depth })?;
        }
        Ok(())
    }
}

/// The `message` a recipient gets, written around the payload as received;
/// the same JSON as [`super::ServerMessage::Message`] would give.
pub fn encode_relayed_message(from: &str, room: &str, to: Option<&str>, data: &RawValue) -> String {
    let envelope = 48 + from.len() + room.len() + to.map_or(0, |to| 8 + to.len());
    let mut frame = String::with_capacity(envelope + data.get().len());
    frame.push_str(r#"{"type":"message","from":"#);
    push_json_string(&mut frame, from);
    frame.push_str(r#","room":"#);
    push_json_string(&mut frame, room);
    if let Some(to) = to {
        frame.push_str(r#","to":"#);
        push_json_string(&mut frame, to);
    }
    frame.push_str(r#","data":"#);
    frame.push_str(data.get());
    frame.push('}');
    frame
}

/// Peer and room names are plain (see [`super::is_valid_name`]) and need no
/// escaping; anything else goes through serde_json.
fn push_json_string(frame: &mut String, text: &str) {
    if super::is_valid_name(text) {
        frame.push('"');
        frame.push_str(text);
        frame.push('"');
    } else {
        frame.push_str(&serde_json::to_string(text).expect("strings serialize"));
    }
}

#[cfg(test)]
mod tests {
    use super::super::{ErrorCode, ServerMessage, encode_server_message};
    use super::*;
    use serde_json::Value;

    fn relayed(frame: &str) -> RelayRequest<'_> {
        match decode_inbound(frame) {
            Ok(Inbound::Relay(request)) => request,
            other => panic!("{frame}: not relayed raw: {other:?}"),
        }
    }

    #[test]
    fn payload_is_kept_as_received() {
        let frame = r#"{"to":"b","data":{ "t" : 1.50, "pad":"\u00e9x" },"type":"message","x":[1]}"#;
        let request = relayed(frame);
        assert_eq!(request.to.as_deref(), Some("b"));
        assert_eq!(request.data.get(), r#"{ "t" : 1.50, "pad":"\u00e9x" }"#);
        let request = relayed(r#"{"type":"message","to":null,"data":[1,2]}"#);
        assert_eq!((request.to, request.data.get()), (None, "[1,2]"));
        // An escaped recipient is unescaped, as the full decoder would.
        let request = relayed(r#"{"type":"message","to":"\u0062","data":0}"#);
        assert_eq!(request.to.as_deref(), Some("b"));
    }

    #[test]
    fn relayed_frame_is_what_the_typed_message_gives() {
        // Keys in order: a value tree sorts them, the raw text keeps them.
        let data =
            RawValue::from_string(r#"{"n":[1,2.5,null],"text":"hi \"you\""}"#.into()).unwrap();
        for (from, to) in [("a", None), ("a", Some("c")), ("\"odd\" é", Some("x y"))] {
            let typed = ServerMessage::Message {
                from: from.into(),
                room: "demo".into(),
                to: to.map(str::to_owned),
                data: serde_json::from_str(data.get()).unwrap(),
            };
            assert_eq!(
                encode_relayed_message(from, "demo", to, &data),
                encode_server_message(&typed)
            );
        }
    }

    /// Every frame is accepted or refused exactly as the full decoder does,
    /// and an accepted one relays the same JSON.
    #[test]
    fn fast_path_agrees_with_the_full_decoder() {
        let deep = |levels: usize| {
            format!(
                r#"{{"type":"message","data":{}1{}}}"#,
                "[".repeat(levels),
                "]".repeat(levels)
            )
        };
        let frames = [
            r#"{"type":"message","data":{"a":1}}"#.to_owned(),
            r#"{"type":"message","data":null}"#.to_owned(),
            r#"{"type":"message","to":"b","data":"x"}"#.to_owned(),
            r#"{"type":"message"}"#.to_owned(),
            r#"{"type":"message","to":5,"data":1}"#.to_owned(),
            r#"{"type":"message","data":1,"data":2}"#.to_owned(),
            r#"{"type":"message","type":"message","data":1}"#.to_owned(),
            r#"{"type":"message","data":"\ud800"}"#.to_owned(),
            r#"{"type":"message","data":"\ud83d\ude00"}"#.to_owned(),
            r#"{"type":"message","data":{"\ud800":1}}"#.to_owned(),
            r#"{"type":"message","data":1e400}"#.to_owned(),
            r#"{"type":"message","data":-1e-400}"#.to_owned(),
            r#"{"type":"message","data":18446744073709551616}"#.to_owned(),
            r#"{"type":"message","extra":1e400,"data":1}"#.to_owned(),
            r#"{"type":"message","extra":"\udc00","data":1}"#.to_owned(),
            r#"{"type":"message","data":{"a":}}"#.to_owned(),
            r#"{"type":"message","data":[1,]}"#.to_owned(),
            r#"{"type":"message","data":"tab	inside"}"#.to_owned(),
            r#"{"type":"message","data":1} x"#.to_owned(),
            r#"{"type":"message","data":1}  "#.to_owned(),
            r#"["message",null,1]"#.to_owned(),
            r#"{"type":"mess\u0061ge","data":1}"#.to_owned(),
            r#"{"type":"ping","data":1}"#.to_owned(),
            r#"{"data":1}"#.to_owned(),
            deep(90),
            deep(120),
            deep(126),
            deep(127),
            deep(200),
        ];
        for frame in &frames {
            let full = decode_client_message(frame);
            match (decode_inbound(frame), full) {
                (Ok(Inbound::Relay(request)), Ok(ClientMessage::Message { to, data })) => {
                    assert_eq!(request.to.as_deref(), to.as_deref(), "{frame}");
                    let raw: Value = serde_json::from_str(request.data.get()).unwrap();
                    assert_eq!(raw, data, "{frame}");
                }
                (Ok(Inbound::Client(fast)), Ok(full)) => assert_eq!(fast, full, "{frame}"),
                (Err(fast), Err(full)) => assert_eq!(fast, full, "{frame}"),
                (fast, full) => panic!("{frame}: fast path {fast:?}, full decoder {full:?}"),
            }
        }
        assert!(matches!(decode_inbound(&deep(90)), Ok(Inbound::Relay(_))));
        assert_eq!(
            decode_inbound(&deep(200)).unwrap_err().code,
            ErrorCode::MalformedJson
        );
    }
}
