//! `peer devices` lists what can be captured, and what it prints works as
//! a pipeline.

use std::process::{Command, Stdio};
use std::time::Duration;

use gst::prelude::*;
use peer_tests::process::VirtualDisplay;
use serde_json::Value;

fn list(display: &str) -> Value {
    let output = Command::new(peer_tests::peer_binary())
        .args(["devices", "--json"])
        .env("DISPLAY", display)
        .output()
        .expect("peer devices runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON output")
}

#[test]
fn screens_and_windows_are_listed_with_a_launch_line_that_captures_them() {
    peer_tests::init();
    let display = VirtualDisplay::start(1024, 768);
    let mut window = Command::new("xlogo")
        .args(["-geometry", "200x150+10+10"])
        .env("DISPLAY", &display.display)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("xlogo starts (Debian package x11-apps)");
    let devices = peer_tests::wait_until(
        Duration::from_secs(10),
        "the xlogo window to be listed",
        || {
            let listed = list(&display.display);
            let is_xlogo = |d: &Value| {
                d["kind"] == "window" && d["name"].as_str().is_some_and(|n| n.contains("xlogo"))
            };
            let has_window = listed["devices"].as_array()?.iter().any(is_xlogo);
            has_window.then_some(listed)
        },
    );
    let devices = devices["devices"].as_array().unwrap();
    let screen = devices
        .iter()
        .find(|d| d["kind"] == "screen")
        .expect("the screen is listed");
    assert_eq!(
        (screen["width"].as_u64(), screen["height"].as_u64()),
        (Some(1024), Some(768))
    );
    let xlogo = devices
        .iter()
        .find(|d| d["kind"] == "window" && d["name"].as_str().unwrap().contains("xlogo"))
        .unwrap();
    assert_eq!(
        (xlogo["width"].as_u64(), xlogo["height"].as_u64()),
        (Some(200), Some(150)),
        "{xlogo}"
    );

    // What it prints is a working source.
    let launch = xlogo["launch"].as_str().unwrap();
    let pipeline = peer_tests::launch(&format!(
        "{launch} ! videoconvert ! appsink name=out sync=false"
    ));
    let sink = pipeline
        .by_name("out")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let sample = sink
        .try_pull_sample(gst::ClockTime::from_seconds(10))
        .expect("a captured frame");
    let info = gst_video::VideoInfo::from_caps(sample.caps().unwrap()).unwrap();
    assert_eq!((info.width(), info.height()), (200, 150));
    let _ = pipeline.set_state(gst::State::Null);
    let _ = window.kill();
    let _ = window.wait();
}
