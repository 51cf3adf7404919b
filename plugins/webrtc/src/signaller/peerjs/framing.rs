//! PeerJS data connections' serializations as a [`Framing`]: what the
//! elements' data-channel signals carry, and what a PeerJS app's
//! `conn.send()` / `conn.on('data')` see.
//!
//! | element sends / receives | `binary` (default) | `json` | `raw` |
//! |---|---|---|---|
//! | text `hello` | the string `"hello"` | the string | a text message |
//! | text `{"a":1}` or `[1,2]` | that object or array | that object or array | a text message |
//! | bytes | an ArrayBuffer (chunked over 16,300 bytes) | refused: JSON carries no bytes | a binary message |
//!
//! Received: strings become text, binary becomes bytes, any other value
//! (object, array, number, boolean, null) the text of its JSON.

use std::sync::Mutex;

use gst::glib;

use super::binarypack::{self, Chunker, Reassembler, Received, Value};
use crate::datachannel::{Framing, Payload};

/// A peer may keep this many bytes of unfinished chunked messages waiting.
const MAX_PENDING_CHUNK_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Serialization {
    Binary,
    Json,
    Raw,
}

impl Serialization {
    /// The `serialization` of a PeerJS OFFER (`binary-utf8` was removed in
    /// 1.5 and is read as `binary`; unknown ones as `raw`).
    pub fn from_offer(name: Option<&str>) -> Serialization {
        match name {
            None | Some("binary" | "binary-utf8") => Serialization::Binary,
            Some("json") => Serialization::Json,
            Some(_) => Serialization::Raw,
        }
    }
}

pub struct PeerJsFraming {
    serialization: Serialization,
    chunker: Mutex<Chunker>,
    reassembler: Mutex<Reassembler>,
}

impl PeerJsFraming {
    pub fn new(serialization: Serialization) -> Self {
        PeerJsFraming {
            serialization,
            chunker: Mutex::new(Chunker::default()),
            reassembler: Mutex::new(Reassembler::new(MAX_PENDING_CHUNK_BYTES)),
        }
    }
}

impl Framing for PeerJsFraming {
    fn name(&self) -> &'static str {
        match self.serialization {
            Serialization::Binary => "PeerJS binary",
            Serialization::Json => "PeerJS json",
            Serialization::Raw => "PeerJS raw",
        }
    }

    fn encode(&self, message: &Payload) -> Result<Vec<Payload>, String> {
        match self.serialization {
            Serialization::Raw => Ok(vec![message.clone()]),
            Serialization::Json => {
                let Payload::Text(text) = message else {
                    return Err(
                        "a json connection carries no binary data (use binary or raw)".into(),
                    );
                };
                let encoded = serde_json::to_vec(&json_of_text(text)).expect("JSON values encode");
                // PeerJS's JSON connection has no chunking.
                if encoded.len() >= binarypack::CHUNK_MTU {
                    return Err(format!(
                        "a json message must be under {} bytes, this one is {}",
                        binarypack::CHUNK_MTU,
                        encoded.len()
                    ));
                }
                Ok(vec![Payload::Bytes(glib::Bytes::from_owned(encoded))])
            }
            Serialization::Binary => {
                let value = match message {
                    Payload::Text(text) => from_json(json_of_text(text)),
                    Payload::Bytes(bytes) => Value::Bin(bytes.to_vec()),
                };
                let packed = binarypack::pack(&value);
                let chunks = self.chunker.lock().unwrap().split(packed);
                Ok(chunks
                    .into_iter()
                    .map(|chunk| Payload::Bytes(glib::Bytes::from_owned(chunk)))
                    .collect())
            }
        }
    }

    fn decode(&self, message: Payload) -> Result<Option<Payload>, String> {
        match self.serialization {
            Serialization::Raw => Ok(Some(message)),
            Serialization::Json => {
                let value: serde_json::Value = match &message {
                    Payload::Text(text) => serde_json::from_str(text),
                    Payload::Bytes(bytes) => serde_json::from_slice(bytes),
                }
                .map_err(|err| format!("not JSON: {err}"))?;
                if is_close(&value) {
                    return Ok(None);
                }
                Ok(Some(payload_of_json(value)))
            }
            Serialization::Binary => {
                let bytes = match &message {
                    Payload::Bytes(bytes) => bytes.to_vec(),
                    Payload::Text(text) => text.as_bytes().to_vec(),
                };
                let received = self
                    .reassembler
                    .lock()
                    .unwrap()
                    .accept(&bytes)
                    .map_err(|err| err.to_string())?;
                Ok(match received {
                    Received::Message(Value::Bin(bytes)) => {
                        Some(Payload::Bytes(glib::Bytes::from_owned(bytes)))
                    }
                    Received::Message(value) => Some(payload_of_json(to_json(value))),
                    // The connection's own close message: its channel
                    // closing right after says the same to the element.
                    Received::Partial | Received::Close => None,
                })
            }
        }
    }
}

/// `{__peerData: {type: "close"}}`, PeerJS's goodbye on a connection.
fn is_close(value: &serde_json::Value) -> bool {
    value.pointer("/__peerData/type").and_then(|t| t.as_str()) == Some("close")
}

/// Text the element sends: an object or array when it is the JSON of
/// one, else a string.
fn json_of_text(text: &str) -> serde_json::Value {
    let trimmed = text.trim_start();
    if (trimmed.starts_with('{') || trimmed.starts_with('['))
        && let Ok(value) = serde_json::from_str::<serde_json::Value>(text)
    {
        return value;
    }
    serde_json::Value::String(text.to_owned())
}

fn payload_of_json(value: serde_json::Value) -> Payload {
    match value {
        serde_json::Value::String(text) => Payload::Text(text),
        other => Payload::Text(other.to_string()),
    }
}

fn from_json(value: serde_json::Value) -> Value {
    use serde_json::Value as Json;
    match value {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Bool(b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Value::Str(s),
        Json::Array(items) => Value::Array(items.into_iter().map(from_json).collect()),
        Json::Object(map) => Value::Map(
            map.into_iter()
                .map(|(k, v)| (Value::Str(k), from_json(v)))
                .collect(),
        ),
    }
}

/// Binary inside an object or array shows as an array of byte values.
fn to_json(value: Value) -> serde_json::Value {
    use serde_json::Value as Json;
    match value {
        Value::Nil => Json::Null,
        Value::Bool(b) => Json::Bool(b),
        Value::Int(i) => Json::from(i),
        Value::Float(f) => serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number),
        Value::Str(s) => Json::String(s),
        Value::Bin(bytes) => Json::Array(bytes.into_iter().map(Json::from).collect()),
        Value::Array(items) => Json::Array(items.into_iter().map(to_json).collect()),
        Value::Map(entries) => Json::Object(
            entries
                .into_iter()
                .map(|(k, v)| {
                    let key = match k {
                        Value::Str(s) => s,
                        other => to_json(other).to_string(),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(payload: &Payload) -> &str {
        match payload {
            Payload::Text(text) => text,
            Payload::Bytes(_) => panic!("bytes, not text"),
        }
    }

    /// What one framing sends, read back by another of the same kind (as
    /// the remote PeerJS client would).
    fn through(serialization: Serialization, message: Payload) -> Payload {
        let sender = PeerJsFraming::new(serialization);
        let receiver = PeerJsFraming::new(serialization);
        let mut out = None;
        for part in sender.encode(&message).unwrap() {
            if let Some(whole) = receiver.decode(part).unwrap() {
                assert!(out.is_none(), "one message");
                out = Some(whole);
            }
        }
        out.expect("a whole message")
    }

    #[test]
    fn text_objects_and_bytes_go_through_each_serialization() {
        for serialization in [Serialization::Binary, Serialization::Json] {
            assert_eq!(
                text(&through(serialization, Payload::Text("héllo".into()))),
                "héllo"
            );
            let object = through(
                serialization,
                Payload::Text(r#"{"a":[1,2.5,"x"],"b":null}"#.into()),
            );
            let parsed: serde_json::Value = serde_json::from_str(text(&object)).unwrap();
            assert_eq!(parsed, serde_json::json!({"a": [1, 2.5, "x"], "b": null}));
            // Text that only looks like JSON at first stays text.
            assert_eq!(
                text(&through(serialization, Payload::Text("[laughs".into()))),
                "[laughs"
            );
        }
        let big: Vec<u8> = (0..100 * 1024).map(|i| (i % 253) as u8).collect();
        let back = through(
            Serialization::Binary,
            Payload::Bytes(glib::Bytes::from(&big)),
        );
        assert!(matches!(back, Payload::Bytes(b) if b.to_vec() == big));
        let raw = through(Serialization::Raw, Payload::Bytes(glib::Bytes::from(&big)));
        assert!(matches!(raw, Payload::Bytes(b) if b.len() == big.len()));
        assert_eq!(
            text(&through(Serialization::Raw, Payload::Text("{x".into()))),
            "{x"
        );
    }

    #[test]
    fn json_sends_no_bytes_and_nothing_too_big() {
        let framing = PeerJsFraming::new(Serialization::Json);
        assert!(
            framing
                .encode(&Payload::Bytes(glib::Bytes::from_static(b"x")))
                .is_err()
        );
        let long = format!("\"{}\"", "x".repeat(20_000));
        assert!(
            framing
                .encode(&Payload::Text(long))
                .unwrap_err()
                .contains("under")
        );
    }

    #[test]
    fn what_a_peerjs_app_sends_reads_as_the_element_shows_it() {
        // conn.send({text: "hi"}) on a binary connection.
        let framing = PeerJsFraming::new(Serialization::Binary);
        let packed = binarypack::pack(&Value::Map(vec![(
            Value::Str("text".into()),
            Value::Str("hi".into()),
        )]));
        let got = framing
            .decode(Payload::Bytes(glib::Bytes::from_owned(packed)))
            .unwrap();
        assert_eq!(text(&got.unwrap()), r#"{"text":"hi"}"#);
        // The same on a json connection, and PeerJS's close message.
        let framing = PeerJsFraming::new(Serialization::Json);
        let got = framing
            .decode(Payload::Bytes(glib::Bytes::from_static(
                br#"{"text":"hi"}"#,
            )))
            .unwrap();
        assert_eq!(text(&got.unwrap()), r#"{"text":"hi"}"#);
        let close = br#"{"__peerData":{"type":"close"}}"#;
        assert!(
            framing
                .decode(Payload::Bytes(glib::Bytes::from_static(close)))
                .unwrap()
                .is_none()
        );
        assert!(
            framing
                .decode(Payload::Bytes(glib::Bytes::from_static(b"{nope")))
                .is_err()
        );
    }
}
