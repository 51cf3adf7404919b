//! A viewer farm: many real WebRTC viewers of one broadcast in one light
//! process, for benchmarks. Each viewer is a str0m session (ICE,
//! DTLS-SRTP, RTCP receiver reports, NACK, PLI) with its own UDP socket
//! and signalling connection; it counts complete and decodable VP8 frames
//! without decoding them, so hundreds of viewers cost the machine little.
//! The farm samples its own CPU and memory so a benchmark can report them.

pub mod cli;
pub mod farm;
pub mod frames;
pub mod freeze;
pub mod signal;
pub mod unsignalled;
pub mod usage;
pub mod viewer;

pub use farm::{Farm, FarmConfig, Snapshot, ViewerSnapshot};
pub use signal::Target;

#[derive(Debug, thiserror::Error)]
pub enum FarmError {
    #[error("signalling: {0}")]
    Signalling(String),
    #[error("the session ended: {0}")]
    SessionEnded(String),
    #[error("cannot answer the offer: {0}")]
    Offer(String),
    #[error("WebRTC: {0}")]
    Rtc(#[from] str0m::RtcError),
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("no {0} within {1:?}")]
    Timeout(&'static str, std::time::Duration),
    #[error("ICE disconnected")]
    Disconnected,
    #[error("cannot make a DTLS certificate: {0}")]
    Certificate(String),
}
