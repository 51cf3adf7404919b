//! The hub: the core and the adapters under one short lock, and where
//! each connection's outgoing messages go. Every input is handled and its
//! resulting messages queued to the recipients' outboxes without waiting,
//! so a slow or vanished peer never holds up anyone else.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::ws::Utf8Bytes;

use tokio::sync::oneshot;

use super::socket::{Outbound, Outbox, OutboxBudget};
use crate::adapter::{self, Adapter, AdapterAction, HttpResponse, RequestId, SocketId};
use crate::core::{Access, Action, ConnId, Input, Limits, SignallingCore};
use crate::protocol::{self, ErrorCode, ServerMessage};

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
    budget: OutboxBudget,
}

impl Hub {
    /// A hub with no protocol but the native one.
    pub fn new(limits: Limits, budget: OutboxBudget) -> Arc<Self> {
        Self::with_adapters(limits, budget, Vec::new())
    }

    pub fn with_adapters(
        limits: Limits,
        budget: OutboxBudget,
        adapters: Vec<Box<dyn Adapter>>,
    ) -> Arc<Self> {
        Self::with_access(limits, budget, adapters, Access::default())
    }

    pub fn with_access(
        limits: Limits,
        budget: OutboxBudget,
        adapters: Vec<Box<dyn Adapter>>,
        access: Access,
    ) -> Arc<Self> {
        let mut core = SignallingCore::new(limits, rand::random());
        core.set_access(access);
        core.seed_secrets(rand::random());
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
            budget,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HubState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn input(&self, input: Input<'_>) {
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
                            && !outbox.push(Outbound::Text(text.into()), self.budget)
                        {
                            // Too slow to read: closed, and its shell tells
                            // the adapter when the socket's task ends.
                            tracing::warn!(socket, "closing a socket whose outgoing queue is full");
                            outbox.close_now(ErrorCode::SlowConsumer, "too slow to read".into());
                            sockets.remove(&socket);
                        }
                    }
                    AdapterAction::CloseSocket {
                        socket,
                        code,
                        reason,
                    } => {
                        if let Some(outbox) = sockets.remove(&socket) {
                            outbox.close_after(Outbound::CloseWith(code, reason));
                        }
                    }
                }
            }
            let slow = dispatch(scratch, writers, self.budget, adapters, &mut inbox);
            // A peer that cannot keep up is dropped rather than buffered
            // without bound; the others are told as if it had disconnected.
            for conn in slow {
                if let Some(writer) = writers.remove(&conn) {
                    tracing::warn!(conn, "dropping a peer whose outgoing queue is full");
                    writer.close_now(ErrorCode::SlowConsumer, "too slow to read".into());
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
    pub(crate) fn close_all(&self, reason: &str) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let HubState {
            writers, sockets, ..
        } = &mut *state;
        for (_, writer) in writers.drain().chain(sockets.drain()) {
            writer.close_now(ErrorCode::ServerShutdown, reason.to_owned());
        }
    }

    pub(crate) fn register(&self, writer: Arc<Outbox>, token: Option<String>) -> ConnId {
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

    /// The connection's socket ended: `lost` when without a close frame
    /// (its peer then waits for a resume).
    pub(crate) fn unregister(&self, conn: ConnId, lost: bool) {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .writers
            .remove(&conn);
        if lost {
            self.input(Input::SocketLost { conn });
        } else {
            self.input(Input::Disconnected { conn });
        }
    }

    pub(crate) fn tick(&self) {
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
    capacity: OutboxBudget,
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
                    writer.close_now(code, reason);
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
    capacity: OutboxBudget,
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
