//! gst-peer signalling: the sans-IO room/peer state machine and the
//! protocol adapters beside it (WHIP, WHEP, PeerJS), the thin transports around
//! them (the axum server, with the `server` feature) and the WebSocket
//! client used by the elements. The protocol types are the `peer-protocol`
//! crate, re-exported as [`protocol`].

pub mod adapter;
pub mod auth;
pub mod client;
pub mod core;
pub mod peerjs;
pub mod request_rate;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "server")]
pub mod tls;
pub mod turn;
#[cfg(feature = "server")]
pub mod web;
pub mod wish;

/// The protocol types live in their own crate so clients need not link the server.
pub use peer_protocol as protocol;
