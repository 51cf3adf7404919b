//! The protocol decoder: any text frame. The fast path for relayed
//! `message` frames and the full decoder must accept and refuse exactly the
//! same frames, with the same error, and relay the same JSON; a decoded
//! message must encode and decode back to itself; every refusal is named.

use peer_protocol::{ClientMessage, decode_client_message, encode_client_message};
use peer_protocol::{Inbound, decode_inbound};
use serde_json::Value;

fn check(text: &str) {
    let full = decode_client_message(text);
    match (decode_inbound(text), &full) {
        (Ok(Inbound::Relay(request)), Ok(ClientMessage::Message { to, data })) => {
            assert_eq!(request.to.as_deref(), to.as_deref(), "{text}");
            let relayed: Value =
                serde_json::from_str(request.data.get()).expect("relayed data is JSON");
            assert_eq!(&relayed, data, "{text}");
        }
        (Ok(Inbound::Client(fast)), Ok(full)) => assert_eq!(&fast, full, "{text}"),
        (Err(fast), Err(full)) => assert_eq!(&fast, full, "{text}"),
        (fast, full) => panic!("{text:?}: fast path {fast:?}, full decoder {full:?}"),
    }
    match full {
        Ok(message) => {
            let again = decode_client_message(&encode_client_message(&message))
                .expect("an encoded message decodes");
            // serde_json parses floats to within an ulp, not exactly
            // (no float_roundtrip): numbers may move in their last bit.
            let (a, b) = (
                serde_json::to_value(&again).unwrap(),
                serde_json::to_value(&message).unwrap(),
            );
            assert!(same(&a, &b), "{text}: {a} != {b}");
        }
        Err(err) => {
            assert!(!err.message.is_empty(), "unnamed refusal of {text:?}");
            assert!(!err.code.as_str().is_empty());
        }
    }
    let _ = peer_protocol::decode_server_message(text);
}

/// Equal, numbers within a relative 1e-15.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            _ if x == y => true,
            (Some(x), Some(y)) => (x - y).abs() <= 1e-15 * x.abs().max(y.abs()),
            _ => false,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

fn main() {
    afl::fuzz!(|data: &[u8]| {
        if let Ok(text) = std::str::from_utf8(data) {
            check(text);
        }
    });
}
