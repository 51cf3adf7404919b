//! One capturable screen, monitor or window as a `GstDevice`.

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use crate::devices::{CaptureDevice, CaptureKind, ELEMENT_NAME};

glib::wrapper! {
    pub struct ScreenCapDevice(ObjectSubclass<imp::ScreenCapDevice>)
        @extends gst::Device, gst::Object;
}

impl ScreenCapDevice {
    pub fn new(capture: &CaptureDevice) -> Self {
        let class = match capture.kind {
            CaptureKind::Display | CaptureKind::Monitor => "Video/Source/Screen",
            CaptureKind::Window => "Video/Source/Window",
        };
        let caps = gst::Caps::builder("video/x-raw")
            .field("width", capture.rect.width as i32)
            .field("height", capture.rect.height as i32)
            .field(
                "framerate",
                gst::FractionRange::new(gst::Fraction::new(1, 1), gst::Fraction::new(240, 1)),
            )
            .build();
        let mut properties = gst::Structure::builder("screencapsrc-device")
            .field("device.api", "x11")
            .field("element", ELEMENT_NAME)
            .field("launch", capture.launch_fragment());
        for (name, value) in &capture.properties {
            properties = properties.field(format!("{ELEMENT_NAME}.{name}"), value);
        }
        let device: Self = glib::Object::builder()
            .property("display-name", &capture.display_name)
            .property("device-class", class)
            .property("caps", caps)
            .property("properties", properties.build())
            .build();
        device
            .imp()
            .element_properties
            .set(capture.properties.clone())
            .expect("set once");
        device
    }
}

mod imp {
    use std::sync::OnceLock;

    use super::*;

    #[derive(Default)]
    pub struct ScreenCapDevice {
        pub(super) element_properties: OnceLock<Vec<(String, String)>>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for ScreenCapDevice {
        const NAME: &'static str = "GstScreenCapDevice";
        type Type = super::ScreenCapDevice;
        type ParentType = gst::Device;
    }

    impl ObjectImpl for ScreenCapDevice {}

    impl GstObjectImpl for ScreenCapDevice {}

    impl DeviceImpl for ScreenCapDevice {
        fn create_element(&self, name: Option<&str>) -> Result<gst::Element, gst::LoggableError> {
            let mut builder = gst::ElementFactory::make(ELEMENT_NAME);
            if let Some(name) = name {
                builder = builder.name(name);
            }
            let element = builder.build().map_err(|err| {
                gst::loggable_error!(gst::CAT_RUST, "cannot make {ELEMENT_NAME}: {err}")
            })?;
            self.reconfigure_element(&element)?;
            Ok(element)
        }

        fn reconfigure_element(&self, element: &gst::Element) -> Result<(), gst::LoggableError> {
            for (name, value) in self.element_properties.get().into_iter().flatten() {
                element.set_property_from_str(name, value);
            }
            Ok(())
        }
    }
}
