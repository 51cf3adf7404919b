//! The signalling server: axum over HTTP/1.1 and WebSocket, a thin shell
//! around [`SignallingCore`] and the protocol [`Adapter`]s beside it. One
//! task serves each WebSocket, reading frames and writing what its outbox
//! holds; every input goes through the core under one short lock, and the
//! resulting messages are queued to the recipients' outboxes without
//! waiting, so a slow or vanished peer never holds up anyone else.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use axum::serve::ListenerExt;
use futures::SinkExt;
use tokio::net::TcpListener;
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

use crate::adapter::{self, Adapter, AdapterAction, HttpResponse, RequestId, SocketId};
use crate::core::{Access, Action, ConnId, Input, Limits, SignallingCore};
use crate::peerjs::{self, PeerJsAdapter, PeerJsConfig};
use crate::protocol::{self, ErrorCode, ServerMessage};
use crate::wish::{self, Kind, WishAdapter, WishConfig};

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub bind: SocketAddr,
    pub limits: Limits,
    /// Messages queued for one peer before it is dropped as too slow.
    pub outbound_queue: usize,
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
            outbound_queue: 1024,
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

/// Frames above the protocol limit but below this still get a polite
/// `message-too-large` error; beyond it the WebSocket layer closes the
/// connection (code 1009) without reading the whole frame into memory.
pub(crate) fn hard_frame_cap(limits: &Limits) -> usize {
    (limits.max_message_bytes * 4).max(1 << 20)
}

pub(crate) enum Outbound {
    Text(Utf8Bytes),
    Ping,
    Close(ErrorCode, String),
    /// A close with a code of the socket's own protocol (an adapter's).
    CloseWith(u16, String),
}

/// What is waiting to be written to one connection. Unlike a channel it
/// holds no memory while empty, which matters with 10k idle peers.
#[derive(Default)]
pub(crate) struct Outbox {
    messages: Mutex<VecDeque<Outbound>>,
    pub(crate) ready: Notify,
}

impl Outbox {
    /// Queues `message`; false when `capacity` messages are already waiting.
    pub(crate) fn push(&self, message: Outbound, capacity: usize) -> bool {
        let mut messages = self.messages.lock().unwrap_or_else(|p| p.into_inner());
        if messages.len() >= capacity {
            return false;
        }
        messages.push_back(message);
        drop(messages);
        self.ready.notify_one();
        true
    }

    /// Queues a close regardless of how full the outbox is.
    fn close(&self, code: ErrorCode, reason: String) {
        self.close_with(Outbound::Close(code, reason));
    }

    fn close_with(&self, close: Outbound) {
        self.messages
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(close);
        self.ready.notify_one();
    }

    pub(crate) fn take(&self) -> VecDeque<Outbound> {
        std::mem::take(&mut *self.messages.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

struct HubState {
    core: SignallingCore,
    writers: HashMap<ConnId, Arc<Outbox>>,
    scratch: Vec<Action>,
    /// The other protocols, each speaking for some of the core's peers.
    adapters: Vec<Box<dyn Adapter>>,
    adapter_actions: Vec<AdapterAction>,
    /// HTTP requests waiting for an adapter's response.
    pending: HashMap<RequestId, oneshot::Sender<HttpResponse>>,
    /// Sockets the adapters' shells attached, written by their adapters.
    sockets: HashMap<SocketId, Arc<Outbox>>,
}

/// What the core sent to the adapters' connections, to feed them.
#[derive(Default)]
struct AdapterInbox {
    /// (adapter index, connection, message)
    messages: Vec<(usize, ConnId, Arc<ServerMessage>)>,
    closed: Vec<(usize, ConnId)>,
    /// Pinged by the heartbeat: they answer at once, as a live peer would
    /// (an adapter's peers live until their protocol ends them).
    pinged: Vec<ConnId>,
}

/// Shared by every connection task: the core and where each connection's
/// outgoing messages go.
pub struct Hub {
    state: Mutex<HubState>,
    next_conn: AtomicU64,
    next_request: AtomicU64,
    outbound_queue: usize,
}

impl Hub {
    /// A hub with no protocol but the native one.
    pub fn new(limits: Limits, outbound_queue: usize) -> Arc<Self> {
        Self::with_adapters(limits, outbound_queue, Vec::new())
    }

    pub fn with_adapters(
        limits: Limits,
        outbound_queue: usize,
        adapters: Vec<Box<dyn Adapter>>,
    ) -> Arc<Self> {
        Self::with_access(limits, outbound_queue, adapters, Access::default())
    }

    pub fn with_access(
        limits: Limits,
        outbound_queue: usize,
        adapters: Vec<Box<dyn Adapter>>,
        access: Access,
    ) -> Arc<Self> {
        let mut core = SignallingCore::new(limits, rand::random());
        core.set_access(access);
        // The core reads no clock: it learns once what Unix time an
        // instant was, to check token times.
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        core.set_clock_base(Instant::now(), unix);
        Arc::new(Hub {
            state: Mutex::new(HubState {
                core,
                writers: HashMap::new(),
                scratch: Vec::new(),
                adapters,
                adapter_actions: Vec::new(),
                pending: HashMap::new(),
                sockets: HashMap::new(),
            }),
            next_conn: AtomicU64::new(1),
            next_request: AtomicU64::new(1),
            outbound_queue,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HubState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn input(&self, input: Input<'_>) {
        let mut state = self.lock();
        let now = Instant::now();
        let HubState { core, scratch, .. } = &mut *state;
        core.handle(now, input, scratch);
        self.pump(&mut state, now);
    }

    /// Carries out the core's and the adapters' actions until none has
    /// anything left: each may answer the other (a WHIP publisher's offer
    /// goes to the core, the core relays it to a receiver, whose answer
    /// comes back to the adapter through here).
    fn pump(&self, state: &mut HubState, now: Instant) {
        let HubState {
            core,
            writers,
            scratch,
            adapters,
            adapter_actions,
            pending,
            sockets,
        } = state;
        let mut inbox = AdapterInbox::default();
        loop {
            for action in adapter_actions.drain(..) {
                match action {
                    AdapterAction::Respond { request, response } => {
                        if let Some(waiting) = pending.remove(&request) {
                            let _ = waiting.send(response);
                        }
                    }
                    AdapterAction::Connect { conn } => {
                        core.handle(now, Input::Connected { conn }, scratch)
                    }
                    AdapterAction::ToCore { conn, message } => {
                        core.handle(now, Input::Message { conn, message }, scratch)
                    }
                    AdapterAction::Disconnect { conn } => {
                        core.handle(now, Input::Disconnected { conn }, scratch)
                    }
                    AdapterAction::Vouch { conn, grants, room } => {
                        core.handle(now, Input::Vouch { conn, grants, room }, scratch)
                    }
                    AdapterAction::Write { socket, text } => {
                        if let Some(outbox) = sockets.get(&socket)
                            && !outbox.push(Outbound::Text(text.into()), self.outbound_queue)
                        {
                            // Too slow to read: closed, and its shell tells
                            // the adapter when the socket's task ends.
                            tracing::warn!(socket, "closing a socket whose outgoing queue is full");
                            outbox.close(ErrorCode::SlowConsumer, "too slow to read".into());
                            sockets.remove(&socket);
                        }
                    }
                    AdapterAction::CloseSocket {
                        socket,
                        code,
                        reason,
                    } => {
                        if let Some(outbox) = sockets.remove(&socket) {
                            outbox.close_with(Outbound::CloseWith(code, reason));
                        }
                    }
                }
            }
            let slow = dispatch(scratch, writers, self.outbound_queue, adapters, &mut inbox);
            // A peer that cannot keep up is dropped rather than buffered
            // without bound; the others are told as if it had disconnected.
            for conn in slow {
                if let Some(writer) = writers.remove(&conn) {
                    tracing::warn!(conn, "dropping a peer whose outgoing queue is full");
                    writer.close(ErrorCode::SlowConsumer, "too slow to read".into());
                    core.handle(now, Input::Disconnected { conn }, scratch);
                }
            }
            for (index, conn, message) in inbox.messages.drain(..) {
                adapters[index].core_sent(now, conn, &message, adapter_actions);
            }
            for conn in inbox.pinged.drain(..) {
                core.handle(now, Input::Alive { conn }, scratch);
            }
            for (index, conn) in inbox.closed.drain(..) {
                adapters[index].closed(now, conn, adapter_actions);
            }
            if scratch.is_empty() && adapter_actions.is_empty() {
                break;
            }
        }
    }

    /// Runs one request of adapter `A`'s protocol: `call` gets the adapter,
    /// the core (to look things up), the request id, a free connection id
    /// and where to put its actions. The receiver gets the response, at
    /// once or when the protocol has one (an answer arrived).
    /// `which` picks among several adapters of type `A`.
    pub fn request<A: Adapter>(
        &self,
        which: impl Fn(&A) -> bool,
        call: impl FnOnce(&mut A, &SignallingCore, RequestId, ConnId, &mut Vec<AdapterAction>),
    ) -> (RequestId, oneshot::Receiver<HttpResponse>) {
        let request = self.next_request.fetch_add(1, Ordering::Relaxed);
        let conn = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let (sender, receiver) = oneshot::channel();
        let mut state = self.lock();
        let now = Instant::now();
        state.pending.insert(request, sender);
        let HubState {
            core,
            adapters,
            adapter_actions,
            ..
        } = &mut *state;
        match adapters
            .iter_mut()
            .filter_map(|a| adapter::downcast_mut::<A>(a.as_mut()))
            .find(|a| which(a))
        {
            Some(adapter) => call(adapter, core, request, conn, adapter_actions),
            None => adapter_actions.push(AdapterAction::Respond {
                request,
                response: HttpResponse::text(404, "this protocol is not enabled on this server"),
            }),
        }
        self.pump(&mut state, now);
        (request, receiver)
    }

    /// Runs `call` on the adapter of type `A` that `which` picks, outside
    /// any HTTP request (a frame from a socket of its shell, say): with the
    /// core to look things up and a free connection id for a new peer.
    /// None when no such adapter is registered.
    pub fn call<A: Adapter, R>(
        &self,
        which: impl Fn(&A) -> bool,
        call: impl FnOnce(&mut A, &SignallingCore, ConnId, &mut Vec<AdapterAction>) -> R,
    ) -> Option<R> {
        let conn = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let mut state = self.lock();
        let now = Instant::now();
        let HubState {
            core,
            adapters,
            adapter_actions,
            ..
        } = &mut *state;
        let result = adapters
            .iter_mut()
            .filter_map(|a| adapter::downcast_mut::<A>(a.as_mut()))
            .find(|a| which(a))
            .map(|adapter| call(adapter, core, conn, adapter_actions));
        self.pump(&mut state, now);
        result
    }

    /// Attaches a socket an adapter's shell accepted, so that its adapter
    /// can write to it ([`AdapterAction::Write`]).
    pub(crate) fn attach_socket(&self, outbox: Arc<Outbox>) -> SocketId {
        let socket = self.next_conn.fetch_add(1, Ordering::Relaxed);
        self.lock().sockets.insert(socket, outbox);
        socket
    }

    /// The socket's task ended.
    pub(crate) fn detach_socket(&self, socket: SocketId) {
        self.lock().sockets.remove(&socket);
    }

    /// Reads the adapter of type `A` that `which` picks (its configuration, say).
    pub fn with_adapter<A: Adapter, R>(
        &self,
        which: impl Fn(&A) -> bool,
        read: impl FnOnce(Option<&A>) -> R,
    ) -> R {
        let mut state = self.lock();
        let found = state
            .adapters
            .iter_mut()
            .filter_map(|a| adapter::downcast_mut::<A>(a.as_mut()))
            .find(|a| which(a));
        read(found.map(|a| &*a))
    }

    /// The client of a waiting request went away.
    pub fn abandoned(&self, request: RequestId) {
        let mut state = self.lock();
        let now = Instant::now();
        if state.pending.remove(&request).is_none() {
            return;
        }
        let HubState {
            adapters,
            adapter_actions,
            ..
        } = &mut *state;
        for adapter in adapters.iter_mut() {
            adapter.abandoned(now, request, adapter_actions);
        }
        self.pump(&mut state, now);
    }

    /// Closes every connection, for a server that is stopping.
    fn close_all(&self, reason: &str) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let HubState {
            writers, sockets, ..
        } = &mut *state;
        for (_, writer) in writers.drain().chain(sockets.drain()) {
            writer.close(ErrorCode::ServerShutdown, reason.to_owned());
        }
    }

    fn register(&self, writer: Arc<Outbox>, token: Option<String>) -> ConnId {
        let conn = self.next_conn.fetch_add(1, Ordering::Relaxed);
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .writers
            .insert(conn, writer);
        self.input(Input::Connected { conn });
        if let Some(token) = token {
            self.input(Input::Credential { conn, token });
        }
        conn
    }

    /// Whether `token` (a Bearer or `?token=`) may list every room: any
    /// request on an open server, an admin token otherwise.
    pub fn may_list_rooms(&self, token: Option<&str>) -> Result<(), (ErrorCode, String)> {
        let state = self.lock();
        let allowed = state.core.check_token(Instant::now(), token)?;
        if allowed.grants.admin {
            Ok(())
        } else {
            Err((
                ErrorCode::Forbidden,
                "listing every room needs the admin grant".into(),
            ))
        }
    }

    fn unregister(&self, conn: ConnId) {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .writers
            .remove(&conn);
        self.input(Input::Disconnected { conn });
    }

    fn tick(&self) {
        let mut state = self.lock();
        let now = Instant::now();
        let HubState {
            core,
            scratch,
            adapters,
            adapter_actions,
            ..
        } = &mut *state;
        core.handle(now, Input::Tick, scratch);
        for adapter in adapters.iter_mut() {
            adapter.tick(now, adapter_actions);
        }
        self.pump(&mut state, now);
    }

    pub fn room_summaries(&self) -> Vec<protocol::RoomSummary> {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .core
            .room_summaries()
    }

    pub fn connection_count(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .core
            .connection_count()
    }

    pub(crate) fn limits(&self) -> Limits {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .core
            .limits()
            .clone()
    }
}

/// The adapter owning `conn`, if any.
fn owner(adapters: &[Box<dyn Adapter>], conn: ConnId) -> Option<usize> {
    adapters
        .iter()
        .position(|adapter| !adapter.is_idle() && adapter.owns(conn))
}

/// Queues each action to its connections' writers; returns those whose
/// queue was full. What is meant for an adapter's connections goes to
/// `inbox` instead.
fn dispatch(
    actions: &mut Vec<Action>,
    writers: &mut HashMap<ConnId, Arc<Outbox>>,
    capacity: usize,
    adapters: &[Box<dyn Adapter>],
    inbox: &mut AdapterInbox,
) -> Vec<ConnId> {
    let mut slow = Vec::new();
    let any_adapter_peer = adapters.iter().any(|adapter| !adapter.is_idle());
    for action in actions.drain(..) {
        match action {
            Action::Send { mut to, message } => {
                if any_adapter_peer {
                    to.retain(|conn| match owner(adapters, *conn) {
                        Some(index) => {
                            inbox.messages.push((index, *conn, message.clone()));
                            false
                        }
                        None => true,
                    });
                }
                if to.is_empty() {
                    continue;
                }
                // Serialized once, shared by every recipient.
                let text = protocol::encode_server_message(&message);
                queue_text(&to, text.into(), writers, capacity, &mut slow);
            }
            // Relayed application messages: the adapters' peers (WHIP,
            // WHEP) have no use for them, and they are not in `writers`,
            // so they go nowhere.
            Action::SendText { to, text } => {
                queue_text(&to, text.into(), writers, capacity, &mut slow)
            }
            Action::Ping { conn } => {
                if let Some(writer) = writers.get(&conn) {
                    writer.push(Outbound::Ping, capacity);
                } else if owner(adapters, conn).is_some() {
                    inbox.pinged.push(conn);
                }
            }
            Action::Close { conn, code, reason } => {
                if let Some(writer) = writers.remove(&conn) {
                    writer.close(code, reason);
                } else if let Some(index) = owner(adapters, conn) {
                    inbox.closed.push((index, conn));
                }
            }
        }
    }
    slow
}

fn queue_text(
    to: &[ConnId],
    text: Utf8Bytes,
    writers: &HashMap<ConnId, Arc<Outbox>>,
    capacity: usize,
    slow: &mut Vec<ConnId>,
) {
    for conn in to {
        if let Some(writer) = writers.get(conn)
            && !writer.push(Outbound::Text(text.clone()), capacity)
        {
            slow.push(*conn);
        }
    }
}

/// Bytes of frames gathered before a write to the socket. A busy
/// connection's buffer grows to about this, an idle one's stays empty.
const WRITE_BATCH_BYTES: usize = 16 * 1024;

#[derive(serde::Deserialize)]
struct WsQuery {
    /// An access token: browsers cannot set headers on a WebSocket.
    token: Option<String>,
}

async fn websocket(
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
    // One task reads and writes: half the tasks of a reader/writer pair,
    // for peers that are idle most of the time.
    let outbox = Arc::new(Outbox::default());
    let conn = hub.register(outbox.clone(), token);
    loop {
        tokio::select! {
            frame = socket.recv() => match frame {
                Some(Ok(Message::Text(text))) => hub.input(Input::Text { conn, text: text.as_str(), len: text.len() }),
                Some(Ok(Message::Binary(_))) => hub.input(Input::Binary { conn }),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => hub.input(Input::Alive { conn }),
                Some(Ok(Message::Close(_))) | None => break,
                Some(Err(err)) => {
                    tracing::debug!(conn, %err, "connection error");
                    break;
                }
            },
            _ = outbox.ready.notified() => {
                if !write_batch(&mut socket, outbox.take()).await {
                    break;
                }
            }
        }
    }
    hub.unregister(conn);
    let _ = socket.close().await;
}

/// Writes everything queued with one flush; false when the connection is
/// done (closed by us, or failing).
pub(crate) async fn write_batch(socket: &mut WebSocket, batch: VecDeque<Outbound>) -> bool {
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
        ErrorCode::Unauthorized => 4001,
        ErrorCode::Forbidden => 4003,
        ErrorCode::ServerShutdown => 1001,
        _ => 4000,
    }
}

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
        .route("/ws", get(websocket))
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
        config.outbound_queue,
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
        let served = match config.tls {
            Some(tls) => {
                crate::tls::serve(listener, tls, app, shutdown).await;
                Ok(())
            }
            None => {
                // Relayed messages are small and latency-bound: no Nagle.
                let listener = listener.tap_io(|tcp| {
                    let _ = tcp.set_nodelay(true);
                });
                axum::serve(listener, app)
                    .with_graceful_shutdown(shutdown)
                    .await
            }
        };
        if let Err(err) = served {
            tracing::error!(%err, "signalling server stopped");
        }
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
