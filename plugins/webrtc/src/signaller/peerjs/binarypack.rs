//! BinaryPack, the serialization of PeerJS's `binary` data connections
//! (npm `peerjs-js-binarypack` 2.x): MessagePack's layout with two
//! differences that make a MessagePack library the wrong tool — type
//! bytes 0xd8/0xd9 are *strings* with 16/32-bit lengths, 0xa0–0xaf and
//! 0xda/0xdb are *binary* (MessagePack's fixstr and str16/32), and strings
//! of up to 15 bytes are 0xb0–0xbf. Pure, no I/O.
//!
//! Also PeerJS's chunking: a packed message over [`CHUNK_MTU`] bytes travels
//! as maps `{__peerData: id, n, total, data: <bin>}`, reassembled by
//! [`Reassembler`].

use std::collections::HashMap;

/// Above this many packed bytes a message is sent in chunks (peerjs 1.5).
pub const CHUNK_MTU: usize = 16_300;

/// A BinaryPack value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bin(Vec<u8>),
    Array(Vec<Value>),
    /// In the order they were packed.
    Map(Vec<(Value, Value)>),
}

impl Value {
    /// The value of `key` in a map.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(entries) => entries
                .iter()
                .find(|(k, _)| matches!(k, Value::Str(s) if s == key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Float(f) if f.fract() == 0.0 => Some(*f as i64),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UnpackError {
    #[error("the message ends inside a value (at byte {0})")]
    Truncated(usize),
    #[error("a string is not UTF-8 (at byte {0})")]
    NotUtf8(usize),
    #[error("type byte {0:#04x} is not BinaryPack (at byte {1})")]
    UnknownType(u8, usize),
    #[error("values nested deeper than {0}")]
    TooDeep(usize),
    #[error("{0} bytes after the value")]
    Trailing(usize),
}

pub fn pack(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    pack_into(value, &mut out);
    out
}

fn pack_into(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Nil => out.push(0xc0),
        Value::Bool(false) => out.push(0xc2),
        Value::Bool(true) => out.push(0xc3),
        Value::Int(i) => pack_int(*i, out),
        Value::Float(f) => {
            out.push(0xcb);
            out.extend_from_slice(&f.to_bits().to_be_bytes());
        }
        Value::Str(s) => {
            header(out, s.len(), 0xb0, 0xd8, 0xd9);
            out.extend_from_slice(s.as_bytes());
        }
        Value::Bin(b) => {
            header(out, b.len(), 0xa0, 0xda, 0xdb);
            out.extend_from_slice(b);
        }
        Value::Array(items) => {
            header(out, items.len(), 0x90, 0xdc, 0xdd);
            for item in items {
                pack_into(item, out);
            }
        }
        Value::Map(entries) => {
            header(out, entries.len(), 0x80, 0xde, 0xdf);
            for (k, v) in entries {
                pack_into(k, out);
                pack_into(v, out);
            }
        }
    }
}

/// A length: in the type byte up to 15, else a 16- or 32-bit length.
fn header(out: &mut Vec<u8>, len: usize, fix: u8, with16: u8, with32: u8) {
    if len <= 0x0f {
        out.push(fix + len as u8);
    } else if len <= 0xffff {
        out.push(with16);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(with32);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

/// The narrowest form, in the order the JavaScript packer tries them.
fn pack_int(i: i64, out: &mut Vec<u8>) {
    if (-0x20..=0x7f).contains(&i) {
        out.push(i as u8);
    } else if (0..=0xff).contains(&i) {
        out.extend_from_slice(&[0xcc, i as u8]);
    } else if (-0x80..=0x7f).contains(&i) {
        out.extend_from_slice(&[0xd0, i as u8]);
    } else if (0..=0xffff).contains(&i) {
        out.push(0xcd);
        out.extend_from_slice(&(i as u16).to_be_bytes());
    } else if (-0x8000..=0x7fff).contains(&i) {
        out.push(0xd1);
        out.extend_from_slice(&(i as i16).to_be_bytes());
    } else if (0..=0xffff_ffff).contains(&i) {
        out.push(0xce);
        out.extend_from_slice(&(i as u32).to_be_bytes());
    } else if (-0x8000_0000..=0x7fff_ffff).contains(&i) {
        out.push(0xd2);
        out.extend_from_slice(&(i as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&i.to_be_bytes());
    }
}

/// Deep enough for any message a person writes, shallow enough that a
/// hostile one cannot exhaust the stack.
const MAX_DEPTH: usize = 64;

pub fn unpack(bytes: &[u8]) -> Result<Value, UnpackError> {
    let mut reader = Reader { bytes, at: 0 };
    let value = reader.value(0)?;
    match bytes.len() - reader.at {
        0 => Ok(value),
        extra => Err(UnpackError::Trailing(extra)),
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], UnpackError> {
        let end = self
            .at
            .checked_add(len)
            .filter(|end| *end <= self.bytes.len())
            .ok_or(UnpackError::Truncated(self.at))?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], UnpackError> {
        Ok(self.take(N)?.try_into().expect("N bytes"))
    }

    fn len16(&mut self) -> Result<usize, UnpackError> {
        Ok(u16::from_be_bytes(self.array()?) as usize)
    }

    fn len32(&mut self) -> Result<usize, UnpackError> {
        Ok(u32::from_be_bytes(self.array()?) as usize)
    }

    fn value(&mut self, depth: usize) -> Result<Value, UnpackError> {
        if depth > MAX_DEPTH {
            return Err(UnpackError::TooDeep(MAX_DEPTH));
        }
        let start = self.at;
        let kind = self.array::<1>()?[0];
        Ok(match kind {
            0x00..=0x7f => Value::Int(kind as i64),
            0xe0..=0xff => Value::Int(kind as i8 as i64),
            0xa0..=0xaf => self.bin((kind - 0xa0) as usize)?,
            0xb0..=0xbf => self.str((kind - 0xb0) as usize, start)?,
            0x90..=0x9f => self.items((kind - 0x90) as usize, depth)?,
            0x80..=0x8f => self.entries((kind - 0x80) as usize, depth)?,
            // undefined and the reserved 0xd4-0xd7 read as undefined: nil.
            0xc0 | 0xc1 | 0xd4..=0xd7 => Value::Nil,
            0xc2 => Value::Bool(false),
            0xc3 => Value::Bool(true),
            0xca => Value::Float(f32::from_be_bytes(self.array()?) as f64),
            0xcb => Value::Float(f64::from_be_bytes(self.array()?)),
            0xcc => Value::Int(self.array::<1>()?[0] as i64),
            0xcd => Value::Int(u16::from_be_bytes(self.array()?) as i64),
            0xce => Value::Int(u32::from_be_bytes(self.array()?) as i64),
            // Beyond i64 a JavaScript number is inexact anyway.
            0xcf => Value::Int(u64::from_be_bytes(self.array()?) as i64),
            0xd0 => Value::Int(i8::from_be_bytes(self.array()?) as i64),
            0xd1 => Value::Int(i16::from_be_bytes(self.array()?) as i64),
            0xd2 => Value::Int(i32::from_be_bytes(self.array()?) as i64),
            0xd3 => Value::Int(i64::from_be_bytes(self.array()?)),
            0xd8 => {
                let len = self.len16()?;
                self.str(len, start)?
            }
            0xd9 => {
                let len = self.len32()?;
                self.str(len, start)?
            }
            0xda => {
                let len = self.len16()?;
                self.bin(len)?
            }
            0xdb => {
                let len = self.len32()?;
                self.bin(len)?
            }
            0xdc => {
                let len = self.len16()?;
                self.items(len, depth)?
            }
            0xdd => {
                let len = self.len32()?;
                self.items(len, depth)?
            }
            0xde => {
                let len = self.len16()?;
                self.entries(len, depth)?
            }
            0xdf => {
                let len = self.len32()?;
                self.entries(len, depth)?
            }
            other => return Err(UnpackError::UnknownType(other, start)),
        })
    }

    fn bin(&mut self, len: usize) -> Result<Value, UnpackError> {
        Ok(Value::Bin(self.take(len)?.to_vec()))
    }

    fn str(&mut self, len: usize, start: usize) -> Result<Value, UnpackError> {
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec())
            .map(Value::Str)
            .map_err(|_| UnpackError::NotUtf8(start))
    }

    fn items(&mut self, len: usize, depth: usize) -> Result<Value, UnpackError> {
        // Each item takes at least a byte: a length beyond what is left is
        // a lie, not a reason to allocate.
        let mut items = Vec::with_capacity(len.min(self.bytes.len() - self.at));
        for _ in 0..len {
            items.push(self.value(depth + 1)?);
        }
        Ok(Value::Array(items))
    }

    fn entries(&mut self, len: usize, depth: usize) -> Result<Value, UnpackError> {
        let mut entries = Vec::with_capacity(len.min(self.bytes.len() - self.at));
        for _ in 0..len {
            let key = self.value(depth + 1)?;
            let value = self.value(depth + 1)?;
            entries.push((key, value));
        }
        Ok(Value::Map(entries))
    }
}

/// Splits packed messages over [`CHUNK_MTU`] into packed chunks, as
/// PeerJS's `BinaryPackChunker` does; each message gets its own id.
#[derive(Debug)]
pub struct Chunker {
    next_id: i64,
}

impl Default for Chunker {
    fn default() -> Self {
        // PeerJS counts from 1: an id of 0 would read as "not a chunk".
        Chunker { next_id: 1 }
    }
}

impl Chunker {
    /// `packed` as it goes on the channel: itself, or its chunks.
    pub fn split(&mut self, packed: Vec<u8>) -> Vec<Vec<u8>> {
        if packed.len() <= CHUNK_MTU {
            return vec![packed];
        }
        let id = self.next_id;
        self.next_id += 1;
        let total = packed.len().div_ceil(CHUNK_MTU);
        packed
            .chunks(CHUNK_MTU)
            .enumerate()
            .map(|(n, data)| {
                pack(&Value::Map(vec![
                    (Value::Str("__peerData".into()), Value::Int(id)),
                    (Value::Str("n".into()), Value::Int(n as i64)),
                    (Value::Str("data".into()), Value::Bin(data.to_vec())),
                    (Value::Str("total".into()), Value::Int(total as i64)),
                ]))
            })
            .collect()
    }
}

/// What one received message amounts to.
#[derive(Debug, Clone, PartialEq)]
pub enum Received {
    /// A whole message.
    Message(Value),
    /// A chunk of one still incomplete.
    Partial,
    /// The other side closed the connection (`{__peerData: {type: "close"}}`).
    Close,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReassemblyError {
    #[error(transparent)]
    Unpack(#[from] UnpackError),
    #[error("a chunk of message {0} does not fit: {1}")]
    BadChunk(i64, &'static str),
    #[error("more than {0} bytes of chunks are waiting; the oldest message was dropped")]
    TooMuchPending(usize),
}

#[derive(Debug, Default)]
struct Partial {
    parts: Vec<Option<Vec<u8>>>,
    received: usize,
    bytes: usize,
}

/// Puts chunked messages back together; bounded, so a peer that sends
/// chunks and never finishes costs at most `max_pending_bytes`.
#[derive(Debug)]
pub struct Reassembler {
    pending: HashMap<i64, Partial>,
    order: Vec<i64>,
    pending_bytes: usize,
    max_pending_bytes: usize,
}

impl Reassembler {
    pub fn new(max_pending_bytes: usize) -> Self {
        Reassembler {
            pending: HashMap::new(),
            order: Vec::new(),
            pending_bytes: 0,
            max_pending_bytes,
        }
    }

    pub fn accept(&mut self, bytes: &[u8]) -> Result<Received, ReassemblyError> {
        let value = unpack(bytes)?;
        let Some(marker) = value.get("__peerData") else {
            return Ok(Received::Message(value));
        };
        if matches!(marker.get("type"), Some(Value::Str(t)) if t == "close") {
            return Ok(Received::Close);
        }
        let id = marker
            .as_int()
            .ok_or(ReassemblyError::BadChunk(0, "its id is not a number"))?;
        let n = value.get("n").and_then(Value::as_int);
        let total = value.get("total").and_then(Value::as_int);
        let (Some(n), Some(total), Some(Value::Bin(data))) = (n, total, value.get("data")) else {
            return Err(ReassemblyError::BadChunk(id, "n, total or data is missing"));
        };
        // A message can be no larger than what a peer may have pending.
        let most = (self.max_pending_bytes / CHUNK_MTU + 1) as i64;
        if total < 1 || total > most || n < 0 || n >= total {
            return Err(ReassemblyError::BadChunk(id, "n or total out of range"));
        }
        let partial = self.pending.entry(id).or_insert_with(|| Partial {
            parts: vec![None; total as usize],
            ..Partial::default()
        });
        if !self.order.contains(&id) {
            self.order.push(id);
        }
        if partial.parts.len() != total as usize {
            return Err(ReassemblyError::BadChunk(
                id,
                "total changed between chunks",
            ));
        }
        let slot = &mut partial.parts[n as usize];
        if slot.is_none() {
            partial.received += 1;
            partial.bytes += data.len();
            self.pending_bytes += data.len();
            *slot = Some(data.clone());
        }
        if partial.received == partial.parts.len() {
            let partial = self.pending.remove(&id).expect("present");
            self.order.retain(|o| *o != id);
            self.pending_bytes -= partial.bytes;
            let whole: Vec<u8> = partial.parts.into_iter().flatten().flatten().collect();
            // The reassembled bytes are one packed message (never chunks
            // again: PeerJS chunks only whole messages).
            return Ok(Received::Message(unpack(&whole)?));
        }
        if self.pending_bytes > self.max_pending_bytes {
            let oldest = self.order.remove(0);
            if let Some(dropped) = self.pending.remove(&oldest) {
                self.pending_bytes -= dropped.bytes;
            }
            return Err(ReassemblyError::TooMuchPending(self.max_pending_bytes));
        }
        Ok(Received::Partial)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(value: Value) {
        assert_eq!(unpack(&pack(&value)).unwrap(), value, "{value:?}");
    }

    #[test]
    fn scalars_round_trip_in_their_narrowest_form() {
        for (value, bytes) in [
            (Value::Nil, vec![0xc0]),
            (Value::Bool(true), vec![0xc3]),
            (Value::Int(5), vec![0x05]),
            (Value::Int(-1), vec![0xff]),
            (Value::Int(200), vec![0xcc, 200]),
            (Value::Int(-100), vec![0xd0, 0x9c]),
            (Value::Int(1000), vec![0xcd, 0x03, 0xe8]),
            (Value::Int(-1000), vec![0xd1, 0xfc, 0x18]),
            (Value::Int(100_000), vec![0xce, 0, 1, 0x86, 0xa0]),
        ] {
            assert_eq!(pack(&value), bytes, "{value:?}");
            round_trip(value);
        }
        round_trip(Value::Int(-100_000));
        round_trip(Value::Int(1 << 40));
        round_trip(Value::Float(1.5));
        round_trip(Value::Float(-0.1));
    }

    #[test]
    fn strings_and_binary_use_binarypacks_own_type_bytes() {
        // Not MessagePack: short strings are 0xb0+len, binary 0xa0+len.
        assert_eq!(pack(&Value::Str("hi".into())), [0xb2, b'h', b'i']);
        assert_eq!(pack(&Value::Bin(vec![1, 2])), [0xa2, 1, 2]);
        let long = "é".repeat(20);
        let packed = pack(&Value::Str(long.clone()));
        assert_eq!(packed[..3], [0xd8, 0, 40]);
        round_trip(Value::Str(long));
        let big = vec![7u8; 70_000];
        assert_eq!(
            pack(&Value::Bin(big.clone()))[..5],
            [0xdb, 0, 1, 0x11, 0x70]
        );
        round_trip(Value::Bin(big));
        round_trip(Value::Str("héllo ✓ 🎥".into()));
    }

    #[test]
    fn what_peerjs_sends_for_an_object_unpacks() {
        // pack({text: "hi", n: [1, 2]}) by peerjs-js-binarypack 2.1.
        let bytes = [
            0x82, 0xb4, b't', b'e', b'x', b't', 0xb2, b'h', b'i', 0xb1, b'n', 0x92, 0x01, 0x02,
        ];
        let value = unpack(&bytes).unwrap();
        assert_eq!(value.get("text"), Some(&Value::Str("hi".into())));
        assert_eq!(
            value.get("n"),
            Some(&Value::Array(vec![Value::Int(1), Value::Int(2)]))
        );
        assert_eq!(pack(&value), bytes);
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert_eq!(unpack(&[]), Err(UnpackError::Truncated(0)));
        assert_eq!(
            unpack(&[0xdb, 0xff, 0xff, 0xff, 0xff]),
            Err(UnpackError::Truncated(5))
        );
        assert_eq!(unpack(&[0xb1, 0xff]), Err(UnpackError::NotUtf8(0)));
        assert_eq!(unpack(&[0xc4]), Err(UnpackError::UnknownType(0xc4, 0)));
        assert_eq!(unpack(&[0x01, 0x02]), Err(UnpackError::Trailing(1)));
        // A claimed billion-item array allocates nothing.
        assert!(unpack(&[0xdd, 0x40, 0, 0, 0]).is_err());
        let deep = [vec![0x91; 100], vec![0x01]].concat();
        assert_eq!(unpack(&deep), Err(UnpackError::TooDeep(MAX_DEPTH)));
    }

    #[test]
    fn messages_over_the_mtu_are_chunked_and_reassembled_in_any_order() {
        let payload: Vec<u8> = (0..100 * 1024).map(|i| (i * 7 % 251) as u8).collect();
        let packed = pack(&Value::Bin(payload.clone()));
        let mut chunker = Chunker::default();
        let mut chunks = chunker.split(packed);
        assert_eq!(chunks.len(), (100 * 1024 + 5usize).div_ceil(CHUNK_MTU));
        assert!(chunks.iter().all(|c| c.len() < CHUNK_MTU + 64));
        let first = unpack(&chunks[0]).unwrap();
        assert_eq!(first.get("__peerData"), Some(&Value::Int(1)));
        assert_eq!(first.get("n"), Some(&Value::Int(0)));
        chunks.reverse();
        let mut reassembler = Reassembler::new(1 << 20);
        let last = chunks.pop().unwrap();
        for chunk in &chunks {
            assert_eq!(reassembler.accept(chunk).unwrap(), Received::Partial);
        }
        assert_eq!(
            reassembler.accept(&last).unwrap(),
            Received::Message(Value::Bin(payload))
        );
        // Small ones go whole; the next big one gets the next id.
        assert_eq!(chunker.split(vec![0xc0]), vec![vec![0xc0]]);
        let again = chunker.split(vec![0u8; CHUNK_MTU + 1]);
        assert_eq!(
            unpack(&again[0]).unwrap().get("__peerData"),
            Some(&Value::Int(2))
        );
    }

    #[test]
    fn close_and_hostile_chunks_are_recognized() {
        let mut reassembler = Reassembler::new(40_000);
        let close = pack(&Value::Map(vec![(
            Value::Str("__peerData".into()),
            Value::Map(vec![(
                Value::Str("type".into()),
                Value::Str("close".into()),
            )]),
        )]));
        assert_eq!(reassembler.accept(&close).unwrap(), Received::Close);
        let chunk = |id: i64, n: i64, total: i64, len: usize| {
            pack(&Value::Map(vec![
                (Value::Str("__peerData".into()), Value::Int(id)),
                (Value::Str("n".into()), Value::Int(n)),
                (Value::Str("data".into()), Value::Bin(vec![0; len])),
                (Value::Str("total".into()), Value::Int(total)),
            ]))
        };
        assert!(reassembler.accept(&chunk(1, 5, 2, 10)).is_err());
        assert!(reassembler.accept(&chunk(1, 0, 1_000_000, 10)).is_err());
        // Never-finished messages are dropped past the bound.
        assert_eq!(
            reassembler.accept(&chunk(2, 0, 3, 16_000)).unwrap(),
            Received::Partial
        );
        assert_eq!(
            reassembler.accept(&chunk(3, 0, 3, 16_000)).unwrap(),
            Received::Partial
        );
        assert!(matches!(
            reassembler.accept(&chunk(4, 0, 3, 16_000)),
            Err(ReassemblyError::TooMuchPending(_))
        ));
        assert!(reassembler.pending_bytes <= 40_000);
    }
}
