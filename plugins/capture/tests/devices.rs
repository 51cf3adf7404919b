//! Listing screens and windows, as a library call and through
//! GstDeviceMonitor, and capturing what a device describes.

mod common;

use std::time::Duration;

use common::{Running, TestWindow, Xvfb};
use gst::prelude::*;
use gstpeercapture::devices::{CaptureKind, list_screens_and_windows};

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn screens_and_windows_are_listed_with_the_properties_that_select_them() {
    let xvfb = Xvfb::start(800, 600);
    xvfb.set_root_color("#000000");
    let window = TestWindow::open(&xvfb, "device test window", 0x0000ff, 30, 40, 160, 120);

    let devices = list_screens_and_windows(Some(&xvfb.display)).unwrap();
    let screen = devices
        .iter()
        .find(|d| d.kind == CaptureKind::Display)
        .unwrap();
    assert_eq!((screen.rect.width, screen.rect.height), (800, 600));
    assert_eq!(
        screen.launch_fragment(),
        format!("screencapsrc display-name={}", xvfb.display)
    );
    let listed = devices
        .iter()
        .find(|d| d.kind == CaptureKind::Window && d.display_name.contains("device test window"))
        .unwrap_or_else(|| panic!("window not listed: {devices:#?}"));
    assert_eq!((listed.rect.width, listed.rect.height), (160, 120));
    assert!(
        listed
            .properties
            .contains(&("window-id".to_owned(), format!("{:#x}", window.id)))
    );

    // What gst-launch-1.0 would be given captures that window.
    let run = Running::launch(&format!(
        "{} show-cursor=false ! appsink name=sink sync=false max-buffers=2 drop=true",
        listed.launch_fragment()
    ));
    let frame = run.next_frame(WAIT);
    assert_eq!((frame.width, frame.height), (160, 120));
    assert!(frame.all_of((0, 0, 255)) > 0.999);
    drop(run);

    // The device monitor sees the same, through $DISPLAY as any app would.
    // SAFETY: this binary's only test; no other thread reads the
    // environment concurrently.
    unsafe { std::env::set_var("DISPLAY", &xvfb.display) };
    common::init();
    let monitor = gst::DeviceMonitor::new();
    monitor.add_filter(Some("Video/Source"), None);
    monitor.start().unwrap();
    let devices = monitor.devices();
    monitor.stop();
    let device = devices
        .iter()
        .find(|d| {
            d.device_class() == "Video/Source/Window"
                && d.display_name().contains("device test window")
        })
        .unwrap_or_else(|| {
            panic!(
                "device monitor lists no such window: {:?}",
                devices.iter().map(|d| d.display_name()).collect::<Vec<_>>()
            )
        });
    let caps = device.caps().unwrap();
    let s = caps.structure(0).unwrap();
    assert_eq!(
        (
            s.get::<i32>("width").unwrap(),
            s.get::<i32>("height").unwrap()
        ),
        (160, 120)
    );
    assert!(
        devices
            .iter()
            .any(|d| d.device_class() == "Video/Source/Screen")
    );

    let element = device.create_element(Some("fromdevice")).unwrap();
    assert_eq!(element.property::<u64>("window-id"), window.id as u64);
    assert_eq!(
        element
            .property::<Option<String>>("display-name")
            .as_deref(),
        Some(xvfb.display.as_str())
    );
}
