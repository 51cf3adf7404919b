//! The `audiotap` element: a passthrough that measures the audio flowing
//! through it and reports at every `interval`.
//!
//! Results reach applications three ways, all carrying the same values:
//! - an element message named [`MESSAGE_NAME`] on the bus (fields in
//!   docs/audiotap.md), including a compact JSON copy in its `json` field;
//! - the `last-json` property, the JSON of the latest interval;
//! - when `send-events` is on, a custom downstream event named
//!   [`EVENT_NAME`] that travels with the stream, so an element further down
//!   (such as `peersink`) can forward the JSON without access to the bus.
//!   [`json_from_event`] reads it.

use gst::glib;
use gst::prelude::*;

mod imp;

/// Name of the element messages' structure.
pub const MESSAGE_NAME: &str = "audiotap";
/// Name of the custom downstream events' structure.
pub const EVENT_NAME: &str = "audiotap";

glib::wrapper! {
    pub struct AudioTap(ObjectSubclass<imp::AudioTap>)
        @extends gst_base::BaseTransform, gst::Element, gst::Object;
}

/// How spectrum bands divide the frequency range.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum, Default)]
#[repr(u32)]
#[enum_type(name = "GstAudioTapBandScale")]
pub enum BandScale {
    #[default]
    #[enum_value(name = "Linear: bands of equal width in Hz", nick = "linear")]
    Linear = 0,
    #[enum_value(name = "Logarithmic: bands of equal width in octaves", nick = "log")]
    Log = 1,
}

/// Window applied before the spectrum FFT.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum, Default)]
#[repr(u32)]
#[enum_type(name = "GstAudioTapWindow")]
pub enum Window {
    #[default]
    #[enum_value(name = "Blackman (as the Web Audio AnalyserNode)", nick = "blackman")]
    Blackman = 0,
    #[enum_value(name = "Hann", nick = "hann")]
    Hann = 1,
    #[enum_value(name = "Hamming", nick = "hamming")]
    Hamming = 2,
    #[enum_value(name = "Rectangular (no window)", nick = "rectangular")]
    Rectangular = 3,
}

impl From<BandScale> for crate::analysis::spectrum::BandScale {
    fn from(scale: BandScale) -> Self {
        match scale {
            BandScale::Linear => Self::Linear,
            BandScale::Log => Self::Log,
        }
    }
}

impl From<Window> for crate::analysis::window::WindowKind {
    fn from(window: Window) -> Self {
        match window {
            Window::Blackman => Self::Blackman,
            Window::Hann => Self::Hann,
            Window::Hamming => Self::Hamming,
            Window::Rectangular => Self::Rectangular,
        }
    }
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "audiotap",
        gst::Rank::NONE,
        AudioTap::static_type(),
    )
}

/// The JSON of an `audiotap` element message, if `msg` is one.
pub fn json_from_message(msg: &gst::MessageRef) -> Option<&str> {
    match msg.view() {
        gst::MessageView::Element(element) => element
            .structure()
            .filter(|s| s.has_name(MESSAGE_NAME))
            .and_then(|s| s.get::<&str>("json").ok()),
        _ => None,
    }
}

/// The JSON of an `audiotap` downstream event, if `event` is one.
pub fn json_from_event(event: &gst::EventRef) -> Option<&str> {
    match event.view() {
        gst::EventView::CustomDownstream(custom) => custom
            .structure()
            .filter(|s| s.has_name(EVENT_NAME))
            .and_then(|s| s.get::<&str>("json").ok()),
        _ => None,
    }
}
