//! The PeerServer's sockets and HTTP routes: axum handlers that hand every
//! socket, frame and request to the [`PeerJsAdapter`] in the hub. The hub
//! writes what the adapter decides to the sockets attached here. Every
//! rule lives in the state machine.
//!
//! Routes, with `{path}` the configured prefix (`/` by default, as the
//! reference server):
//! - `GET {path}peerjs?key=K&id=ID&token=T&version=V`: the WebSocket;
//! - `GET {path}{key}/id`: a fresh random id, as text;
//! - `GET {path}{key}/peers`: the key's peer ids (JSON), 401 unless
//!   discovery is on;
//! - `OPTIONS` on the last two: CORS preflight.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::ws::{WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use futures::SinkExt;

use super::{Connect, PeerJsAdapter};
use crate::core::{Limits, RateBucket, RateVerdict};
use crate::server::{
    Hub, Incoming, Outbound, Outbox, OutboxBudget, SocketEnd, hard_frame_cap, run_socket,
};

pub fn router(hub: Arc<Hub>) -> Router {
    let path = hub.with_adapter::<PeerJsAdapter, _>(
        |_| true,
        |adapter| adapter.map(|a| a.config().normalized_path()),
    );
    let Some(path) = path else {
        return Router::new();
    };
    Router::new()
        .route(&format!("{path}peerjs"), get(socket))
        .route(&format!("{path}{{key}}/id"), get(new_id).options(preflight))
        .route(
            &format!("{path}{{key}}/peers"),
            get(peers).options(preflight),
        )
        .with_state(hub)
}

async fn socket(
    State(hub): State<Arc<Hub>>,
    Query(query): Query<HashMap<String, String>>,
    upgrade: WebSocketUpgrade,
) -> impl IntoResponse {
    let cap = hard_frame_cap(&hub.limits());
    upgrade
        // Small buffers: most PeerJS clients only send a heartbeat every 5 s.
        .read_buffer_size(1024)
        .write_buffer_size(16 * 1024)
        .max_message_size(cap)
        .max_frame_size(cap)
        .on_upgrade(move |ws| serve(hub, ws, query))
}

/// One task per socket, reading frames and writing what the adapter
/// queued for it.
async fn serve(hub: Arc<Hub>, mut ws: WebSocket, query: HashMap<String, String>) {
    let outbox = Arc::new(Outbox::default());
    let socket = hub.attach_socket(outbox.clone());
    let connect = Connect {
        key: query.get("key").map(String::as_str),
        id: query.get("id").map(String::as_str),
        token: query.get("token").map(String::as_str),
    };
    let max_bytes = hub.call::<PeerJsAdapter, _>(
        |_| true,
        |adapter, core, conn, out| {
            adapter.connect(Instant::now(), core, socket, connect, conn, out);
            adapter.config().max_message_bytes
        },
    );
    drop(query);
    let mut rate = SocketRate::new(hub.limits());
    let end = run_socket(&mut ws, &outbox, |frame| match frame {
        Incoming::Text(text) => {
            if !rate.allows(&outbox) {
                return;
            }
            // Decoded here, not under the hub's lock.
            let inbound = super::decode(max_bytes.unwrap_or(0), text);
            hub.call::<PeerJsAdapter, _>(
                |_| true,
                |adapter, core, _, out| adapter.frame(Instant::now(), core, socket, inbound, out),
            );
        }
        // Not part of the protocol (pings are answered by the WebSocket
        // layer), but they cost: counted all the same.
        Incoming::Binary | Incoming::Alive => {
            rate.allows(&outbox);
        }
    })
    .await;
    if matches!(end, SocketEnd::Refused | SocketEnd::ReadFailed) {
        tracing::debug!(socket, "PeerJS socket error");
    }
    hub.call::<PeerJsAdapter, _>(
        |_| true,
        |adapter, _, _, out| adapter.socket_closed(socket, out),
    );
    hub.detach_socket(socket);
    let _ = ws.close().await;
}

/// Every frame of a PeerJS socket is counted against the core's message
/// rate ([`RateBucket`]) before anything else is done with it: heartbeats,
/// unreadable frames and messages held for absent peers never reach the
/// core's own count. Over the rate, frames are dropped and the client gets
/// `ERROR` `rate-limited: ...`; PeerJS clients end themselves on `ERROR`,
/// so one still over the rate a second later is closed (1008).
struct SocketRate {
    limits: Limits,
    bucket: RateBucket,
    told: bool,
}

impl SocketRate {
    fn new(limits: Limits) -> Self {
        let bucket = RateBucket::new(&limits, Instant::now());
        SocketRate {
            limits,
            bucket,
            told: false,
        }
    }

    /// Whether the frame that just arrived may be used.
    fn allows(&mut self, outbox: &Outbox) -> bool {
        match self.bucket.take(&self.limits, Instant::now()) {
            RateVerdict::Allowed => return true,
            RateVerdict::Dropped => return false,
            RateVerdict::Tell => {}
        }
        if self.told {
            outbox.close_after(Outbound::CloseWith(
                CLOSE_POLICY_VIOLATION,
                "rate-limited: still over the message rate after ERROR".into(),
            ));
        } else {
            self.told = true;
            let error = super::rate_limited_error(&self.limits);
            outbox.push(Outbound::Text(error.into()), OutboxBudget::default());
        }
        false
    }
}

/// RFC 6455 7.4.1: a message that violates the endpoint's policy.
const CLOSE_POLICY_VIOLATION: u16 = 1008;

async fn new_id(State(hub): State<Arc<Hub>>, Path(_key): Path<String>) -> Response {
    let id = hub.call::<PeerJsAdapter, _>(|_| true, |adapter, core, _, _| adapter.new_id(core));
    let mut response = match id {
        // text/html, as the reference server answers.
        Some(id) => ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], id).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    };
    cors(response.headers_mut());
    response
}

async fn peers(State(hub): State<Arc<Hub>>, Path(key): Path<String>) -> Response {
    let listed = hub
        .call::<PeerJsAdapter, _>(|_| true, |adapter, core, _, _| adapter.peers(core, &key))
        .flatten();
    let mut response = match listed {
        Some(ids) => Json(ids).into_response(),
        None => (
            StatusCode::UNAUTHORIZED,
            "peer discovery is off on this server (peer serve --peerjs-discovery)\n",
        )
            .into_response(),
    };
    cors(response.headers_mut());
    response
}

async fn preflight() -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    cors(headers);
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, OPTIONS"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    response
}

/// Apps served from any origin may use the server, as with the reference
/// server (`cors({origin: true})`); nothing here rides on cookies.
fn cors(headers: &mut HeaderMap) {
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
}
