//! The signalling server: axum over HTTP/1.1 and WebSocket, a thin shell
//! around [`SignallingCore`] and the protocol [`Adapter`]s beside it. One
//! task serves each WebSocket, reading frames and writing what its outbox
//! holds; every input goes through the core under one short lock, and the
//! resulting messages are queued to the recipients' outboxes without
//! waiting, so a slow or vanished peer never holds up anyone else.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::adapter::Adapter;
use crate::core::{Access, Limits};
use crate::peerjs::{self, PeerJsAdapter, PeerJsConfig};
use crate::protocol::{ErrorCode, ServerMessage};
use crate::wish::{self, Kind, WishAdapter, WishConfig};

mod hub;
mod listen;
mod socket;

pub use hub::Hub;
pub use listen::ConnectionLimits;
pub use socket::OutboxBudget;
use socket::WsQuery;
pub(crate) use socket::{Incoming, Outbound, Outbox, SocketEnd, hard_frame_cap, run_socket};

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub bind: SocketAddr,
    pub limits: Limits,
    /// What may wait to be written to one peer before it is dropped as
    /// too slow.
    pub outbox: OutboxBudget,
    /// Connection caps and deadlines (docs/security.md).
    pub connections: ConnectionLimits,
    /// Serve the browser pages at `/` alongside the protocol.
    pub serve_web: bool,
    /// HTTPS and WSS instead of HTTP and WS.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// WHIP ingest at `/whip/{room}` (docs/protocol.md, "WHIP").
    pub whip: WishConfig,
    /// WHEP playback at `/whep/{room}[/{producer}]` (docs/protocol.md, "WHEP").
    pub whep: WishConfig,
    /// Tokens and TURN credentials (docs/security.md); the default is an
    /// open server.
    pub access: Access,
    /// The PeerServer protocol (docs/peerjs.md): `/peerjs` and `/{key}/id`.
    pub peerjs: PeerJsConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT)),
            limits: Limits::default(),
            outbox: OutboxBudget::default(),
            connections: ConnectionLimits::default(),
            serve_web: true,
            tls: None,
            whip: WishConfig::default(),
            whep: WishConfig::default(),
            access: Access::default(),
            peerjs: PeerJsConfig::default(),
        }
    }
}

pub const DEFAULT_PORT: u16 = 8080;

/// Every room with its producers and their meta: for admins (anyone on
/// an open server). The token comes as a Bearer or `?token=`.
async fn rooms(
    State(hub): State<Arc<Hub>>,
    Query(query): Query<WsQuery>,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    let bearer = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let token = bearer.or(query.token);
    match hub.may_list_rooms(token.as_deref()) {
        Ok(()) => Json(ServerMessage::Rooms {
            rooms: hub.room_summaries(),
        })
        .into_response(),
        Err((code, why)) => {
            let status = if code == ErrorCode::Forbidden {
                axum::http::StatusCode::FORBIDDEN
            } else {
                axum::http::StatusCode::UNAUTHORIZED
            };
            (status, Json(ServerMessage::error(code, why))).into_response()
        }
    }
}

async fn health() -> &'static str {
    "ok\n"
}

/// Routes of the signalling protocol; the web pages and other protocols
/// are merged in by the caller.
pub fn router(hub: Arc<Hub>) -> Router {
    Router::new()
        .route("/ws", get(socket::websocket))
        .route("/api/rooms", get(rooms))
        .route("/healthz", get(health))
        .with_state(hub.clone())
        .merge(wish::http::router(hub.clone(), Kind::Whip))
        .merge(wish::http::router(hub.clone(), Kind::Whep))
        .merge(peerjs::http::router(hub))
}

/// A server running in the background on the current tokio runtime.
pub struct RunningServer {
    local_addr: SocketAddr,
    tls: bool,
    hub: Arc<Hub>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl RunningServer {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// `ws://host:port/ws`-style base address for clients on this machine.
    pub fn ws_url(&self) -> String {
        let scheme = if self.tls { "wss" } else { "ws" };
        format!("{scheme}://{}/ws", self.local_addr)
    }

    pub fn http_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}/", self.local_addr)
    }

    pub async fn stop(mut self) {
        self.stop_now();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    fn stop_now(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            self.hub.close_all("the server is stopping");
            let _ = shutdown.send(());
        }
    }

    /// Waits until the server stops on its own (it only does on error).
    pub async fn wait(mut self) {
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.stop_now();
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Every protocol `peer serve` speaks besides its own: WHIP, WHEP and
/// PeerJS.
pub fn standard_adapters(config: &ServerConfig) -> Vec<Box<dyn Adapter>> {
    vec![
        Box::new(WishAdapter::with_os_seed(Kind::Whip, config.whip.clone())),
        Box::new(WishAdapter::with_os_seed(Kind::Whep, config.whep.clone())),
        Box::new(PeerJsAdapter::with_os_seed(config.peerjs.clone())),
    ]
}

/// Binds and starts serving; returns once the socket listens.
pub async fn start(config: ServerConfig) -> Result<RunningServer, ServerError> {
    let listener = TcpListener::bind(config.bind)
        .await
        .map_err(|source| ServerError::Bind {
            addr: config.bind,
            source,
        })?;
    let local_addr = listener.local_addr().map_err(|source| ServerError::Bind {
        addr: config.bind,
        source,
    })?;
    let hub = Hub::with_access(
        config.limits.clone(),
        config.outbox,
        standard_adapters(&config),
        config.access.clone(),
    );
    let mut app = router(hub.clone());
    if config.serve_web {
        app = app.merge(crate::web::router(hub.clone()));
    }
    let (shutdown, shutdown_rx) = oneshot::channel::<()>();

    let ticker_hub = hub.clone();
    let ticker = tokio::spawn(async move {
        let mut interval = tokio::time::interval(Duration::from_secs(1));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            ticker_hub.tick();
        }
    });
    let tls = config.tls.is_some();
    let task = tokio::spawn(async move {
        let shutdown = async move {
            let _ = shutdown_rx.await;
        };
        listen::serve(listener, config.tls, app, config.connections, shutdown).await;
        ticker.abort();
    });
    tracing::info!(%local_addr, "signalling server listening");
    Ok(RunningServer {
        local_addr,
        tls,
        hub,
        shutdown: Some(shutdown),
        task: Some(task),
    })
}
