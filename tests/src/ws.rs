//! A raw WebSocket peer for protocol tests: sends exactly what a test
//! says, malformed or not, and reads replies with deadlines.

use std::time::Duration;

use async_tungstenite::WebSocketStream;
use async_tungstenite::tokio::{ConnectStream, connect_async};
use async_tungstenite::tungstenite::Message;
use futures::StreamExt;
use serde_json::Value;

pub struct RawPeer {
    socket: WebSocketStream<ConnectStream>,
}

#[derive(Debug)]
pub enum Received {
    Json(Value),
    Closed(Option<String>),
}

impl RawPeer {
    pub async fn connect(url: &str) -> RawPeer {
        let (socket, _) = connect_async(url)
            .await
            .unwrap_or_else(|err| panic!("connect {url}: {err}"));
        RawPeer { socket }
    }

    pub async fn send_text(&mut self, text: impl Into<String>) {
        self.socket
            .send(Message::Text(text.into().into()))
            .await
            .expect("send");
    }

    /// Sends without insisting: the server may close the connection mid-frame.
    pub async fn try_send_text(&mut self, text: impl Into<String>) -> bool {
        self.socket
            .send(Message::Text(text.into().into()))
            .await
            .is_ok()
    }

    pub async fn send(&mut self, value: Value) {
        self.send_text(value.to_string()).await;
    }

    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        self.socket
            .send(Message::Binary(bytes.into()))
            .await
            .expect("send");
    }

    /// The next protocol message (or the close), within five seconds.
    pub async fn next(&mut self) -> Received {
        self.next_within(Duration::from_secs(5)).await
    }

    /// The next protocol message (or the close), within `timeout`.
    pub async fn next_within(&mut self, timeout: Duration) -> Received {
        loop {
            let frame = tokio::time::timeout(timeout, self.socket.next())
                .await
                .unwrap_or_else(|_| panic!("a reply within {timeout:?}"));
            match frame {
                Some(Ok(Message::Text(text))) => {
                    return Received::Json(
                        serde_json::from_str(text.as_str()).expect("server sends JSON"),
                    );
                }
                Some(Ok(Message::Close(frame))) => {
                    return Received::Closed(frame.map(|f| f.reason.to_string()));
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Received::Closed(None),
            }
        }
    }

    /// The next JSON message; panics on close.
    pub async fn recv(&mut self) -> Value {
        match self.next().await {
            Received::Json(value) => value,
            Received::Closed(reason) => panic!("connection closed: {reason:?}"),
        }
    }

    /// Skips messages until one of type `kind` arrives.
    pub async fn recv_type(&mut self, kind: &str) -> Value {
        loop {
            let value = self.recv().await;
            if value["type"] == kind {
                return value;
            }
        }
    }

    /// Sends hello and join; returns the joined message.
    pub async fn join(&mut self, id: &str, room: &str, producer: bool) -> Value {
        self.send(serde_json::json!({"type": "hello", "id": id}))
            .await;
        let welcome = self.recv().await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        let streams = if producer {
            serde_json::json!([{"kind": "video"}])
        } else {
            serde_json::json!([])
        };
        self.send(serde_json::json!({"type": "join", "room": room, "streams": streams}))
            .await;
        self.recv_type("joined").await
    }
}
