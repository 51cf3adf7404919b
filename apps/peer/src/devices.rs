//! `peer devices`: what can be captured here — cameras and microphones
//! (GstDeviceMonitor), screens and windows — each with the element and
//! properties that select it, ready to paste into a pipeline.

use gst::prelude::*;
use gstpeercapture::devices::{self, CaptureKind};
use serde::Serialize;

use crate::pipeline;

#[derive(clap::Args)]
pub struct Args {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// X display for screens and windows (default: $DISPLAY).
    #[arg(long)]
    display: Option<String>,
}

#[derive(Serialize)]
struct Listed {
    kind: &'static str,
    name: String,
    /// `element prop=value ...`, for gst-launch-1.0.
    launch: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    height: Option<u32>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    pipeline::init()?;
    let mut listed = media_devices();
    let mut problems = Vec::new();
    match devices::list_screens_and_windows(args.display.as_deref()) {
        Ok(found) => listed.extend(found.into_iter().map(|device| Listed {
            kind: match device.kind {
                CaptureKind::Display | CaptureKind::Monitor => "screen",
                CaptureKind::Window => "window",
            },
            launch: device.launch_fragment(),
            name: device.display_name,
            width: Some(device.rect.width),
            height: Some(device.rect.height),
        })),
        Err(err) => problems.push(format!("screens and windows: {err}")),
    }
    if args.json {
        println!(
            "{}",
            serde_json::json!({ "devices": listed, "problems": problems })
        );
        return Ok(());
    }
    for (kind, title) in [
        ("camera", "Cameras"),
        ("microphone", "Microphones"),
        ("screen", "Screens"),
        ("window", "Windows"),
    ] {
        println!("{title}");
        let of_kind: Vec<&Listed> = listed.iter().filter(|d| d.kind == kind).collect();
        if of_kind.is_empty() {
            println!("  none found");
        }
        for device in of_kind {
            println!("  {}\n      {}", device.name, device.launch);
        }
    }
    for problem in problems {
        println!("note: {problem}");
    }
    Ok(())
}

fn media_devices() -> Vec<Listed> {
    let monitor = gst::DeviceMonitor::new();
    monitor.add_filter(Some("Video/Source"), None);
    monitor.add_filter(Some("Audio/Source"), None);
    if monitor.start().is_err() {
        return Vec::new();
    }
    let found = monitor
        .devices()
        .into_iter()
        // Screens and windows come from our own listing, with sizes.
        .filter(|device| {
            device
                .create_element(None)
                .ok()
                .and_then(|element| element.factory())
                .is_none_or(|factory| factory.name() != devices::ELEMENT_NAME)
        })
        .map(|device| {
            let class = device.device_class();
            Listed {
                kind: if class.starts_with("Video") {
                    "camera"
                } else {
                    "microphone"
                },
                name: device.display_name().to_string(),
                launch: launch_line(&device),
                width: None,
                height: None,
            }
        })
        .collect();
    monitor.stop();
    found
}

/// The element a device makes, with the properties that differ from a
/// fresh one (what gst-device-monitor-1.0 prints).
fn launch_line(device: &gst::Device) -> String {
    let Ok(element) = device.create_element(None) else {
        return String::new();
    };
    let Some(factory) = element.factory() else {
        return String::new();
    };
    let Ok(pristine) = factory.create().build() else {
        return factory.name().to_string();
    };
    let mut line = factory.name().to_string();
    for pspec in element.list_properties() {
        let flags = pspec.flags();
        if pspec.name() == "name" || !flags.contains(gst::glib::ParamFlags::READWRITE) {
            continue;
        }
        let value = element.property_value(pspec.name()).serialize();
        let default = pristine.property_value(pspec.name()).serialize();
        if let Ok(text) = value
            && default.as_ref().ok() != Some(&text)
        {
            line.push_str(&format!(" {}={}", pspec.name(), pipeline::quote(&text)));
        }
    }
    line
}
