use std::sync::LazyLock;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::ScreenCapDevice;
use crate::devices::list_screens_and_windows;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "screencapdeviceprovider",
        gst::DebugColorFlags::empty(),
        Some("Lists screens and windows for screencapsrc"),
    )
});

#[derive(Default)]
pub struct ScreenCapDeviceProvider;

#[glib::object_subclass]
impl ObjectSubclass for ScreenCapDeviceProvider {
    const NAME: &'static str = "GstScreenCapDeviceProvider";
    type Type = super::ScreenCapDeviceProvider;
    type ParentType = gst::DeviceProvider;
}

impl ObjectImpl for ScreenCapDeviceProvider {}

impl GstObjectImpl for ScreenCapDeviceProvider {}

impl DeviceProviderImpl for ScreenCapDeviceProvider {
    fn metadata() -> Option<&'static gst::subclass::DeviceProviderMetadata> {
        static METADATA: LazyLock<gst::subclass::DeviceProviderMetadata> = LazyLock::new(|| {
            gst::subclass::DeviceProviderMetadata::new(
                "Screen and window capture devices",
                "Source/Video",
                "Lists the X11 display, its monitors and its windows for screencapsrc",
                "gst-peer developers",
            )
        });
        Some(&*METADATA)
    }

    fn probe(&self) -> Vec<gst::Device> {
        match list_screens_and_windows(None) {
            Ok(devices) => devices
                .iter()
                .map(|d| ScreenCapDevice::new(d).upcast())
                .collect(),
            Err(err) => {
                // No display is a normal situation (a headless server).
                gst::debug!(CAT, imp = self, "no screens to list: {err}");
                Vec::new()
            }
        }
    }

    fn start(&self) -> Result<(), gst::LoggableError> {
        let provider = self.obj();
        for device in self.probe() {
            provider.device_add(&device);
        }
        Ok(())
    }

    // No stop(): GStreamer drops the device list itself, holding the
    // provider's lock, so touching the list here would deadlock.
}
