//! `peersink`: sends its inputs to every viewer over WebRTC, with the
//! signalling built in.
//!
//! Each input (`video_%u`, `audio_%u`, raw or encoded) is encoded once per
//! quality layer and fanned out to every viewer; each viewer gets its own
//! webrtcbin, fed by a few send threads shared by all through a bounded
//! outbox per viewer, so viewers cost no encoding and cannot stall each
//! other, and each receives the layer its own feedback allows.

mod adaptation;
mod encoding;
mod feedback;
mod imp;
mod input;
mod layers;
mod loss_signals;
mod padding;
mod probe;
mod report_loss;
mod rtcp;
mod send_pool;
mod settings;
mod stats;
mod twcc;
mod viewer;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

pub use input::is_encoder;

glib::wrapper! {
    pub struct PeerSink(ObjectSubclass<imp::PeerSink>) @extends gst::Bin, gst::Element, gst::Object, @implements gst::ChildProxy;
}

impl PeerSink {
    /// The encoders currently in the element (one per input, however many viewers).
    pub fn encoders(&self) -> Vec<gst::Element> {
        self.imp().encoders()
    }
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    crate::codec::VideoCodec::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    crate::codec::VideoContentHint::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    gst::Element::register(
        Some(plugin),
        "peersink",
        gst::Rank::NONE,
        PeerSink::static_type(),
    )
}
