//! gst-peer signalling: protocol v1 types, the sans-IO room/peer state
//! machine, and the thin transports around it (the axum server and the
//! WebSocket client used by the elements), and the WHIP ingest adapter.

pub mod client;
pub mod core;
pub mod protocol;
pub mod server;
pub mod tls;
pub mod web;
pub mod whip;
