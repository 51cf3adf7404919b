//! Audio analysis tap (level, loudness, spectrum, pitch, onsets, voice activity).
//!
//! The `audiotap` element lives in [`audiotap`]; the measurements themselves
//! are plain Rust in [`analysis`], usable without GStreamer.

pub mod analysis;
pub mod audiotap;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), gst::glib::BoolError> {
    audiotap::register(plugin)
}

gst::plugin_define!(
    audiotap,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MPL",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_REPOSITORY"),
    env!("BUILD_REL_DATE")
);
