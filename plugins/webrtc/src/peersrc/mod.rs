//! `peersrc`: receives a producer over WebRTC, with the signalling built in.
//!
//! One webrtcbin per session; each incoming track becomes a `video_%u` or
//! `audio_%u` pad, decoded by default or as a depayloaded encoded stream
//! with `decode=false`.

mod imp;
mod output;
mod settings;

use gst::glib;
use gst::prelude::*;

glib::wrapper! {
    pub struct PeerSrc(ObjectSubclass<imp::PeerSrc>) @extends gst::Bin, gst::Element, gst::Object, @implements gst::ChildProxy;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "peersrc",
        gst::Rank::NONE,
        PeerSrc::static_type(),
    )
}
