//! Screen and canvas capture sources for gst-peer.
//!
//! Elements:
//! - `screencapsrc`: the desktop (whole display, a region or one window) as a
//!   live, damage-driven source, like the browser's `getDisplayMedia`.
//! - `canvassrc`: a 2D scene described in JSON, rendered live with tiny-skia,
//!   like `canvas.captureStream()`; changed at run time with JSON patches.
//!
//! Device provider `screencapdeviceprovider` lists screens and windows for
//! `GstDeviceMonitor`; [`devices::list_screens_and_windows`] gives the same
//! list without GStreamer.
//!
//! Element reference: `docs/capture.md` at the repository root.

pub mod canvassrc;
mod counters;
pub mod deviceprovider;
pub mod devices;
pub mod geometry;
mod pacer;
pub mod screencapsrc;
mod ticker;
mod x11;
mod x11grab;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), gst::glib::BoolError> {
    screencapsrc::register(plugin)?;
    canvassrc::register(plugin)?;
    deviceprovider::register(plugin)?;
    Ok(())
}

gst::plugin_define!(
    peercapture,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MPL",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_REPOSITORY"),
    env!("BUILD_REL_DATE")
);
