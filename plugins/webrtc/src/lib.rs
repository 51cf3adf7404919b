//! gst-peer: WebRTC for GStreamer with the signalling built in.
//!
//! Elements `peersink` and `peersrc` wrap webrtcbin and talk to a gst-peer
//! signalling server (or run one inside themselves).

mod base;
mod codec;
mod common;
mod datachannel;
mod error;
mod events;
pub mod ice;
mod ice_restart;
pub mod keyframe;
pub mod peersink;
pub mod peersrc;
mod receive;
mod runtime;
mod session;
mod signaller;

pub use codec::VideoCodec;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), gst::glib::BoolError> {
    use gst::prelude::*;
    signaller::settings::SignallerSettings::static_type()
        .mark_as_plugin_api(gst::PluginAPIFlags::empty());
    peersink::register(plugin)?;
    peersrc::register(plugin)?;
    Ok(())
}

gst::plugin_define!(
    peer,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MPL",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_REPOSITORY"),
    env!("BUILD_REL_DATE")
);
