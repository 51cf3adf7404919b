//! A WebSocket client written by hand, for attack tests: it connects from
//! a chosen loopback address, sends frames no library would (invalid
//! UTF-8, a header announcing 100 MiB, half a request), may stop reading,
//! and reports the close code the server sent.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// A TCP connection to 127.0.0.1:`port` from `source` (any 127.x.y.z:
/// the whole block is loopback), with a small receive buffer when asked,
/// so that a client that stops reading fills up quickly.
pub async fn connect_from(source: Ipv4Addr, port: u16, receive_buffer: Option<u32>) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    if let Some(size) = receive_buffer {
        socket.set_recv_buffer_size(size).expect("SO_RCVBUF");
    }
    socket
        .bind(SocketAddr::from((source, 0)))
        .unwrap_or_else(|err| panic!("bind {source}: {err}"));
    socket
        .connect(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .unwrap_or_else(|err| panic!("connect from {source}: {err}"))
}

/// What came back from the server.
#[derive(Debug, PartialEq)]
pub enum Frame {
    Text(String),
    Close(Option<u16>),
    Ping,
    Other(u8),
    /// The connection ended without a close frame.
    Eof,
}

pub struct RawSocket {
    pub stream: TcpStream,
    buffer: Vec<u8>,
}

impl RawSocket {
    /// Upgrades `stream` to a WebSocket on `path`; None when the server
    /// answers anything but 101 (the status line is logged).
    pub async fn upgrade(mut stream: TcpStream, path: &str) -> Result<RawSocket, String> {
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            let read = stream.read(&mut byte).await.map_err(|e| e.to_string())?;
            if read == 0 {
                return Err(format!(
                    "closed during the handshake: {}",
                    String::from_utf8_lossy(&head)
                ));
            }
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        if !head.starts_with("HTTP/1.1 101") {
            return Err(head.lines().next().unwrap_or_default().to_owned());
        }
        Ok(RawSocket {
            stream,
            buffer: Vec::new(),
        })
    }

    /// Sends one masked frame with `opcode` and `payload`.
    pub async fn send_frame(&mut self, opcode: u8, payload: &[u8]) -> std::io::Result<()> {
        let mut frame = frame_header(opcode, payload.len() as u64);
        let mask = [0x12, 0x34, 0x56, 0x78];
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.stream.write_all(&frame).await
    }

    pub async fn send_text(&mut self, text: &str) -> std::io::Result<()> {
        self.send_frame(0x1, text.as_bytes()).await
    }

    /// The next frame, within `timeout` (None when nothing came).
    pub async fn next_within(&mut self, timeout: Duration) -> Option<Frame> {
        tokio::time::timeout(timeout, self.next()).await.ok()
    }

    pub async fn next(&mut self) -> Frame {
        loop {
            if let Some((frame, used)) = parse_server_frame(&self.buffer) {
                self.buffer.drain(..used);
                return frame;
            }
            let mut chunk = [0u8; 16 * 1024];
            match self.stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return Frame::Eof,
                Ok(read) => self.buffer.extend_from_slice(&chunk[..read]),
            }
        }
    }

    /// Skips frames until a close or the end; the close code, if any.
    pub async fn close_code_within(&mut self, timeout: Duration) -> Result<Option<u16>, String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.next()).await {
                Err(_) => return Err(format!("still open after {timeout:?}")),
                Ok(Frame::Close(code)) => return Ok(code),
                Ok(Frame::Eof) => return Ok(None),
                Ok(_) => continue,
            }
        }
    }
}

/// A client frame header (FIN set, masked) for `len` bytes of payload.
pub fn frame_header(opcode: u8, len: u64) -> Vec<u8> {
    let mut header = vec![0x80 | opcode];
    if len < 126 {
        header.push(0x80 | len as u8);
    } else if len <= u16::MAX as u64 {
        header.push(0x80 | 126);
        header.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        header.push(0x80 | 127);
        header.extend_from_slice(&len.to_be_bytes());
    }
    header
}

fn parse_server_frame(buffer: &[u8]) -> Option<(Frame, usize)> {
    if buffer.len() < 2 {
        return None;
    }
    let opcode = buffer[0] & 0x0f;
    let (len, mut at) = match buffer[1] & 0x7f {
        126 => (
            u16::from_be_bytes(buffer.get(2..4)?.try_into().ok()?) as usize,
            4,
        ),
        127 => (
            u64::from_be_bytes(buffer.get(2..10)?.try_into().ok()?) as usize,
            10,
        ),
        len => (len as usize, 2),
    };
    if buffer[1] & 0x80 != 0 {
        at += 4; // servers do not mask, but skip a mask if one is there
    }
    let payload = buffer.get(at..at + len)?;
    let frame = match opcode {
        0x1 => Frame::Text(String::from_utf8_lossy(payload).into_owned()),
        0x8 => Frame::Close(
            payload
                .get(..2)
                .map(|code| u16::from_be_bytes([code[0], code[1]])),
        ),
        0x9 => Frame::Ping,
        other => Frame::Other(other),
    };
    Some((frame, at + len))
}
