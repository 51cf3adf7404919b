//! How a protocol other than our own plugs into the server: an
//! [`Adapter`] speaks for peers of the [`SignallingCore`] that have no
//! socket of ours (a WHIP publisher, a WHEP player) or a socket in another
//! dialect (PeerJS). It is a pure state machine like the core: the hub
//! feeds it what the core sends to its peers, its clock ticks and, through
//! the protocol's own shell (HTTP handlers), the protocol's requests; it
//! answers with [`AdapterAction`]s. The hub knows no protocol: it routes
//! core messages to whichever adapter owns the connection and carries out
//! the actions.

use std::any::Any;
use std::time::Instant;

use crate::auth::Grants;
use crate::core::ConnId;
use crate::protocol::{ClientMessage, ServerMessage};

/// Chosen by the hub, to match a response with the request waiting for it.
pub type RequestId = u64;

/// A socket a protocol's shell accepted and attached to the hub
/// (`Hub::attach_socket`): its adapter writes to it through the hub, so
/// frames leave in the order the adapter decided them, whatever thread
/// decided them.
pub type SocketId = u64;

/// A protocol plugged into the hub. Each adapter owns the core connections
/// it opened ([`AdapterAction::Connect`]) until it closes them.
pub trait Adapter: Any + Send {
    /// Whether `conn` is one of this adapter's connections.
    fn owns(&self, conn: ConnId) -> bool;
    /// True while it owns no connection: the hub then skips asking.
    fn is_idle(&self) -> bool;
    /// The core sent `message` to `conn`, one of this adapter's peers.
    fn core_sent(
        &mut self,
        now: Instant,
        conn: ConnId,
        message: &ServerMessage,
        out: &mut Vec<AdapterAction>,
    );
    /// The core dropped `conn` (slow, timed out, or a server shutdown).
    fn closed(&mut self, now: Instant, conn: ConnId, out: &mut Vec<AdapterAction>);
    /// The client of `request`, still waiting, went away.
    fn abandoned(&mut self, now: Instant, request: RequestId, out: &mut Vec<AdapterAction>);
    /// Once a second: deadlines.
    fn tick(&mut self, now: Instant, out: &mut Vec<AdapterAction>);
}

#[derive(Debug, Clone, PartialEq)]
pub enum AdapterAction {
    /// Answer the waiting HTTP request.
    Respond {
        request: RequestId,
        response: HttpResponse,
    },
    /// Open a core connection for a peer this adapter speaks for (before
    /// any message on it).
    Connect { conn: ConnId },
    /// A native-protocol message from one of the adapter's peers, typed
    /// (no JSON between the adapter and the core).
    ToCore {
        conn: ConnId,
        message: ClientMessage,
    },
    /// Close an adapter connection: the core forgets the peer, ending its
    /// sessions and telling its room it left.
    Disconnect { conn: ConnId },
    /// The adapter checked the credentials of its protocol (a static
    /// token): the connection's peer may do `grants` in `room`.
    Vouch {
        conn: ConnId,
        grants: Grants,
        room: String,
    },
    /// Write a text frame to a socket of the adapter's shell. A socket too
    /// slow to take it is closed (its shell then tells the adapter).
    Write { socket: SocketId, text: String },
    /// Close a socket of the adapter's shell after what was written to it,
    /// with a WebSocket close code and reason.
    CloseSocket {
        socket: SocketId,
        code: u16,
        reason: String,
    },
}

/// An HTTP response as an adapter decides it; the shell writes it out
/// (adding CORS headers).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HttpResponse {
    pub status: u16,
    pub content_type: Option<&'static str>,
    pub location: Option<String>,
    pub etag: Option<String>,
    /// `WWW-Authenticate: Bearer` (with a 401).
    pub challenge: bool,
    /// Seconds, for `Retry-After` (with a 409 or 503).
    pub retry_after: Option<u32>,
    /// `Link` header values (ICE servers).
    pub links: Vec<String>,
    /// `Accept-Patch`: the resource takes trickle and ICE restarts.
    pub accept_patch: bool,
    pub body: String,
}

impl HttpResponse {
    /// A plain-text response: the body says what went wrong, for people.
    pub fn text(status: u16, body: impl Into<String>) -> HttpResponse {
        let mut body = body.into();
        body.push('\n');
        HttpResponse {
            status,
            content_type: Some("text/plain; charset=utf-8"),
            challenge: status == 401,
            body,
            ..HttpResponse::default()
        }
    }

    pub fn empty(status: u16) -> HttpResponse {
        HttpResponse {
            status,
            ..HttpResponse::default()
        }
    }
}

/// Downcasts a registered adapter to its type, for its protocol's shell.
pub fn downcast_mut<A: Adapter>(adapter: &mut dyn Adapter) -> Option<&mut A> {
    (adapter as &mut dyn Any).downcast_mut::<A>()
}
