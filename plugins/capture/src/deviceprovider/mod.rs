//! `screencapdeviceprovider`: screens and windows for `GstDeviceMonitor`
//! (`gst-device-monitor-1.0 Video/Source`). Each device's
//! `create_element()` gives a `screencapsrc` set up to capture it; its
//! `properties` structure names the same settings for other tools.
//!
//! Device classes: `Video/Source/Screen` for the display and monitors,
//! `Video/Source/Window` for application windows. The list is taken when
//! the monitor starts (windows opened later are not announced).

mod device;
mod imp;

use gst::glib;
use gst::prelude::*;

pub use device::ScreenCapDevice;

glib::wrapper! {
    pub struct ScreenCapDeviceProvider(ObjectSubclass<imp::ScreenCapDeviceProvider>)
        @extends gst::DeviceProvider, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::DeviceProvider::register(
        Some(plugin),
        "screencapdeviceprovider",
        gst::Rank::SECONDARY,
        ScreenCapDeviceProvider::static_type(),
    )
}
