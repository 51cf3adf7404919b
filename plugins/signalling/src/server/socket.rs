//! One WebSocket of our protocol: a single task reads its frames and
//! writes what its [`Outbox`] holds, with budgets and deadlines so a peer
//! that stops reading costs only itself.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::IntoResponse;
use futures::SinkExt;
use tokio::sync::Notify;

use super::hub::Hub;
use crate::core::{self, Input, Limits};
use crate::protocol::ErrorCode;

/// Frames above the protocol limit but below this still get a polite
/// `message-too-large` error; beyond it the WebSocket layer stops reading
/// the frame and the connection is closed with code 1009.
pub(crate) fn hard_frame_cap(limits: &Limits) -> usize {
    (limits.max_message_bytes * 4).max(1 << 20)
}

/// A write (a batch and its flush) that takes longer than this means the
/// peer stopped reading: the connection is dropped.
pub(crate) const WRITE_DEADLINE: Duration = Duration::from_secs(10);

pub(crate) enum Outbound {
    Text(Utf8Bytes),
    Ping,
    Close(ErrorCode, String),
    /// A close with a code of the socket's own protocol (an adapter's).
    CloseWith(u16, String),
}

impl Outbound {
    fn bytes(&self) -> usize {
        match self {
            Outbound::Text(text) => text.len(),
            _ => 0,
        }
    }
}

/// How much may wait for one connection, in messages and in bytes (a
/// `list` of a big room is one message of megabytes).
#[derive(Debug, Clone, Copy)]
pub struct OutboxBudget {
    pub messages: usize,
    pub bytes: usize,
}

impl Default for OutboxBudget {
    fn default() -> Self {
        OutboxBudget {
            messages: 1024,
            bytes: 1 << 20,
        }
    }
}

#[derive(Default)]
struct Queue {
    messages: VecDeque<Outbound>,
    bytes: usize,
    /// A close is queued: nothing more goes in.
    closing: bool,
}

/// What is waiting to be written to one connection. Unlike a channel it
/// holds no memory while empty, which matters with 10k idle peers.
#[derive(Default)]
pub(crate) struct Outbox {
    queue: Mutex<Queue>,
    pub(crate) ready: Notify,
}

impl Outbox {
    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `message`; false when it would go over `budget` (the caller
    /// then drops the connection as too slow). A message alone bigger than
    /// the byte budget still goes into an empty outbox: the budget bounds
    /// a backlog, the frame size limits bound single messages.
    pub(crate) fn push(&self, message: Outbound, budget: OutboxBudget) -> bool {
        let mut queue = self.queue();
        if queue.closing {
            return true;
        }
        let bytes = message.bytes();
        let empty = queue.messages.is_empty();
        if !empty && (queue.messages.len() >= budget.messages || queue.bytes + bytes > budget.bytes)
        {
            return false;
        }
        queue.bytes += bytes;
        queue.messages.push_back(message);
        drop(queue);
        self.ready.notify_one();
        true
    }

    /// Drops what is queued and queues a close: a peer too slow to read
    /// gets its close at once, not behind the backlog that made it slow.
    pub(crate) fn close_now(&self, code: ErrorCode, reason: String) {
        let mut queue = self.queue();
        queue.messages.clear();
        queue.bytes = 0;
        queue.closing = true;
        queue.messages.push_back(Outbound::Close(code, reason));
        drop(queue);
        self.ready.notify_one();
    }

    /// Queues a close after what is already queued.
    pub(crate) fn close_after(&self, close: Outbound) {
        let mut queue = self.queue();
        queue.closing = true;
        queue.messages.push_back(close);
        drop(queue);
        self.ready.notify_one();
    }

    pub(crate) fn take(&self) -> VecDeque<Outbound> {
        let mut queue = self.queue();
        queue.bytes = 0;
        std::mem::take(&mut queue.messages)
    }
}

/// Bytes of frames gathered before a write to the socket. A busy
/// connection's buffer grows to about this, an idle one's stays empty.
const WRITE_BATCH_BYTES: usize = 16 * 1024;

#[derive(serde::Deserialize)]
pub(crate) struct WsQuery {
    /// An access token: browsers cannot set headers on a WebSocket.
    pub(crate) token: Option<String>,
}

pub(crate) async fn websocket(
    State(hub): State<Arc<Hub>>,
    Query(query): Query<WsQuery>,
    upgrade: WebSocketUpgrade,
) -> impl IntoResponse {
    let cap = hard_frame_cap(&hub.limits());
    upgrade
        // Small buffers: most peers are idle, and 10k of them must stay cheap.
        .read_buffer_size(1024)
        // Frames queued together go out in one write (see `write_batch`),
        // up to this many bytes at a time.
        .write_buffer_size(WRITE_BATCH_BYTES)
        .max_message_size(cap)
        .max_frame_size(cap)
        .on_upgrade(move |socket| serve_connection(hub, socket, query.token))
}

async fn serve_connection(hub: Arc<Hub>, mut socket: WebSocket, token: Option<String>) {
    let outbox = Arc::new(Outbox::default());
    let conn = hub.register(outbox.clone(), token);
    let limits = hub.limits();
    let end = run_socket(&mut socket, &outbox, |frame| match frame {
        Incoming::Text(text) => {
            // Decoded here, not under the hub's lock.
            let frame = core::decode_frame(&limits, text, text.len());
            hub.input(Input::Frame { conn, frame });
        }
        Incoming::Binary => hub.input(Input::Binary { conn }),
        Incoming::Alive => hub.input(Input::Alive { conn }),
    })
    .await;
    // Closed by the peer, or by us for what it sent: no resume for either.
    let lost = !matches!(end, SocketEnd::ClosedByPeer | SocketEnd::Refused);
    hub.unregister(conn, lost);
    let _ = tokio::time::timeout(Duration::from_secs(1), socket.close()).await;
}

/// What the peer sent on a socket, as [`run_socket`] hands it over.
pub(crate) enum Incoming<'a> {
    Text(&'a str),
    Binary,
    /// A ping or a pong (pings are answered by the WebSocket layer).
    Alive,
}

/// How [`run_socket`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SocketEnd {
    /// The peer sent a close frame.
    ClosedByPeer,
    /// The peer sent what the WebSocket layer refuses (see
    /// [`close_on_error`]) and was closed with the code that says why.
    Refused,
    /// Reading failed otherwise (the connection broke).
    ReadFailed,
    /// The connection ended without a close frame, or writing ended it
    /// (a close we queued, a failed write, a peer not reading).
    Ended,
}

/// The loop of one socket's task, shared by every protocol the server
/// speaks: hands each frame read to `incoming` and writes what `outbox`
/// holds as it fills, until either side ends the connection. One task
/// reads and writes: half the tasks of a reader/writer pair, for peers
/// that are idle most of the time.
pub(crate) async fn run_socket(
    socket: &mut WebSocket,
    outbox: &Outbox,
    mut incoming: impl FnMut(Incoming<'_>),
) -> SocketEnd {
    loop {
        tokio::select! {
            frame = socket.recv() => match frame {
                Some(Ok(Message::Text(text))) => incoming(Incoming::Text(text.as_str())),
                Some(Ok(Message::Binary(_))) => incoming(Incoming::Binary),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => incoming(Incoming::Alive),
                Some(Ok(Message::Close(_))) => return SocketEnd::ClosedByPeer,
                None => return SocketEnd::Ended,
                Some(Err(err)) => {
                    return if close_on_error(socket, err).await {
                        SocketEnd::Refused
                    } else {
                        SocketEnd::ReadFailed
                    };
                }
            },
            _ = outbox.ready.notified() => {
                if !write_batch(socket, outbox.take()).await {
                    return SocketEnd::Ended;
                }
            }
        }
    }
}

/// Closes a socket whose reading failed with the code that says why
/// (RFC 6455 7.4.1): 1009 for a frame over the size cap, 1007 for text
/// that is not UTF-8, 1002 for a protocol violation. Whether it was one
/// of those (rather than the connection failing).
async fn close_on_error(socket: &mut WebSocket, err: axum::Error) -> bool {
    use tungstenite::error::{Error as WsError, ProtocolError};
    let inner = std::error::Error::source(&err).and_then(|e| e.downcast_ref::<WsError>());
    let close = match inner {
        Some(WsError::Capacity(_)) => Some((1009, "frame too large")),
        Some(WsError::Utf8(_)) => Some((1007, "text frame is not valid UTF-8")),
        Some(WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake)) => None,
        Some(WsError::Protocol(_)) => Some((1002, "WebSocket protocol error")),
        _ => None,
    };
    tracing::debug!(%err, "WebSocket read failed");
    let Some((code, reason)) = close else {
        return false;
    };
    {
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        let _ = tokio::time::timeout(
            Duration::from_secs(1),
            socket.send(Message::Close(Some(frame))),
        )
        .await;
    }
    true
}

/// Writes everything queued with one flush, within [`WRITE_DEADLINE`];
/// false when the connection is done (closed by us, failing, or not
/// reading).
async fn write_batch(socket: &mut WebSocket, batch: VecDeque<Outbound>) -> bool {
    match tokio::time::timeout(WRITE_DEADLINE, write_all(socket, batch)).await {
        Ok(open) => open,
        Err(_) => {
            tracing::debug!("dropping a connection that has not read for {WRITE_DEADLINE:?}");
            false
        }
    }
}

async fn write_all(socket: &mut WebSocket, batch: VecDeque<Outbound>) -> bool {
    for message in batch {
        let fed = match message {
            Outbound::Text(text) => socket.feed(Message::Text(text)).await,
            Outbound::Ping => socket.feed(Message::Ping(Default::default())).await,
            Outbound::Close(code, reason) => {
                let frame = CloseFrame {
                    code: close_code(code),
                    reason: format!("{code}: {reason}").into(),
                };
                let _ = socket.send(Message::Close(Some(frame))).await;
                return false;
            }
            Outbound::CloseWith(code, reason) => {
                let frame = CloseFrame {
                    code,
                    reason: reason.into(),
                };
                let _ = socket.send(Message::Close(Some(frame))).await;
                return false;
            }
        };
        if fed.is_err() {
            return false;
        }
    }
    socket.flush().await.is_ok()
}

/// Application close codes (4000-4999) by error, so clients can tell why.
fn close_code(code: ErrorCode) -> u16 {
    match code {
        ErrorCode::HeartbeatTimeout => 4008,
        ErrorCode::SlowConsumer => 4009,
        ErrorCode::HelloTimeout => 4010,
        ErrorCode::Replaced => 4011,
        ErrorCode::Unauthorized => 4001,
        ErrorCode::Forbidden => 4003,
        ErrorCode::ServerShutdown => 1001,
        _ => 4000,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The codes docs/protocol.md promises, for the reasons a connection
    /// is closed.
    #[test]
    fn close_codes_are_the_documented_ones() {
        for (code, expected) in [
            (ErrorCode::HeartbeatTimeout, 4008),
            (ErrorCode::SlowConsumer, 4009),
            (ErrorCode::HelloTimeout, 4010),
            (ErrorCode::Replaced, 4011),
            (ErrorCode::Unauthorized, 4001),
            (ErrorCode::Forbidden, 4003),
            (ErrorCode::ServerShutdown, 1001),
        ] {
            assert_eq!(close_code(code), expected, "{code:?}");
        }
    }
}
