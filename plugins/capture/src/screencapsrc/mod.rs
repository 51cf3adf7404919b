//! `screencapsrc`: the desktop as a live source, like `getDisplayMedia`.
//!
//! ```text
//! gst-launch-1.0 screencapsrc framerate=30/1 ! videoconvert ! autovideosink
//! gst-launch-1.0 screencapsrc window-name=Terminal ! videoconvert ! autovideosink
//! gst-launch-1.0 screencapsrc x=0 y=0 width=1280 height=720 ! ...
//! ```
//!
//! A bin. On X11 a private live source (`crate::x11grab`) grabs through
//! MIT-SHM only when XDamage reports a change inside the captured area, and
//! at every tick pushes the new frame or repeats the previous one (the same
//! memory, no copy). On PipeWire, `pipewiresrc` feeds a private pacer.
//! See `docs/capture.md` for every property and message.

pub(crate) mod gate;
mod imp;

use gst::glib;
use gst::prelude::*;

pub use gate::{Decision, Observations, decide};

glib::wrapper! {
    pub struct ScreenCapSrc(ObjectSubclass<imp::ScreenCapSrc>)
        @extends gst::Bin, gst::Element, gst::Object,
        @implements gst::ChildProxy;
}

/// Name of the element message posted when the captured window closes;
/// the stream then ends (EOS) after the last frame.
pub const WINDOW_CLOSED_MESSAGE: &str = "screencapsrc-window-closed";

/// Where frames come from.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstScreenCapBackend")]
pub enum Backend {
    /// PipeWire when a PipeWire node was given, X11 otherwise.
    #[default]
    #[enum_value(
        name = "Auto: PipeWire if pipewire-path/pipewire-fd is set, else X11",
        nick = "auto"
    )]
    Auto,
    #[enum_value(name = "X11 (MIT-SHM grabs, driven by XDamage)", nick = "x11")]
    X11,
    #[enum_value(name = "PipeWire screen-cast node (pipewiresrc)", nick = "pipewire")]
    PipeWire,
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    Backend::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    gst::Element::register(
        Some(plugin),
        "screencapsrc",
        gst::Rank::NONE,
        ScreenCapSrc::static_type(),
    )
}
