//! A smoke run of the broadcast benchmark (tests/src/bin/broadcast_bench)
//! and its viewer farm: seconds long, a small broadcast from peersink and
//! one from gst-plugins-rs's webrtcsink (scripts/test.sh builds it and
//! passes its plugin directory in GST_PEER_REFERENCE_PLUGINS), each
//! watched by three farm viewers in the same run, and peersink again
//! without its data channel (`peersink-nodc`). It checks that the
//! benchmark runs end to end and reports, that every viewer of each
//! sender counted decodable frames, and that peersink-nodc runs fewer
//! threads; not the figures (a debug build on shared cores).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use peer_tests::process::ChildProcess;

const VIEWERS: &str = "3";

/// gst-plugins-rs's plugin directory and its signalling server.
fn reference() -> (PathBuf, PathBuf) {
    let dir = PathBuf::from(std::env::var("GST_PEER_REFERENCE_PLUGINS").unwrap_or_default());
    assert!(
        dir.join("libgstrswebrtc.so").exists(),
        "gst-plugins-rs's webrtc plugin is not built: run `bash scripts/reference-peers.sh` and \
         set GST_PEER_REFERENCE_PLUGINS to the directory it prints (scripts/test.sh does both); \
         got {dir:?}"
    );
    // reference-peers.sh: <prefix>/lib/gstreamer-1.0 and <prefix>/bin.
    let server = dir.join("../../bin/gst-webrtc-signalling-server");
    assert!(server.exists(), "no {server:?} beside the plugin");
    (dir, server)
}

/// Cell `index` of a point's row (0 is before the first `|`).
fn cell(row: &str, index: usize) -> &str {
    row.split('|').map(str::trim).nth(index).unwrap_or("")
}

/// The slowest viewer's frame rate in a point's row:
/// `| 1 | KIND | 3 | min / p5 / median | ...`.
fn slowest(row: &str) -> f64 {
    assert!(!row.contains("FAILED"), "the point failed: {row}");
    cell(row, 4)
        .split('/')
        .next()
        .and_then(|min| min.trim().parse().ok())
        .unwrap_or_else(|| panic!("no fps in {row}"))
}

/// The sender's threads with the viewers, from the row's
/// `threads 0 → N` cell.
fn sender_threads(row: &str) -> u64 {
    cell(row, 11)
        .rsplit('→')
        .next()
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no thread count in {row}"))
}

#[test]
fn every_farm_viewer_counts_frames_from_peersink_with_and_without_its_data_channel_and_webrtcsink()
{
    peer_tests::require_loopback_only();
    let (plugins, server) = reference();
    let path = std::env::var("GST_PLUGIN_PATH").unwrap_or_default();
    let plugin_path = std::env::join_paths(
        std::iter::once(plugins).chain(std::env::split_paths(&path).filter(|p| p != Path::new(""))),
    )
    .expect("plugin paths join");
    let mut bench = ChildProcess::spawn(
        Command::new(env!("CARGO_BIN_EXE_broadcast_bench"))
            .env("GST_PLUGIN_PATH", plugin_path)
            .arg("--webrtc-server")
            .arg(server)
            .args([
                "--kinds",
                "peersink,peersink-nodc,webrtcsink",
                "--viewers",
                VIEWERS,
                "--rounds",
                "1",
                "--seconds",
                "3",
                "--baseline-seconds",
                "1",
                "--latency-seconds",
                "0",
                "--joins",
                "0",
                "--width",
                "320",
                "--height",
                "240",
                "--bitrate",
                "300000",
            ]),
    );
    let mut threads = Vec::new();
    for kind in ["peersink", "peersink-nodc", "webrtcsink"] {
        let row = bench.wait_line(
            &format!("| 1 | {kind} | {VIEWERS} |"),
            Duration::from_secs(40),
        );
        let fps = slowest(&row);
        assert!(
            fps > 0.0,
            "every {kind} viewer counts decodable frames, the slowest got {fps} fps: {row}"
        );
        threads.push(sender_threads(&row));
    }
    // Without its data channel a viewer has no SCTP threads (sctpenc,
    // sctpdec, appsrc): proof that `data-channels=""` reached peersink.
    assert!(
        threads[1] < threads[0],
        "peersink-nodc runs fewer threads than peersink: {} against {}",
        threads[1],
        threads[0]
    );
    bench.wait_line("Every point reached every viewer.", Duration::from_secs(20));
    assert!(
        bench.wait_exit(Duration::from_secs(20)),
        "the benchmark ends"
    );
}

/// Cell `index` of a row of the latency trace's table, as a number.
fn number(row: &str, index: usize) -> f64 {
    cell(row, index)
        .parse()
        .unwrap_or_else(|_| panic!("no number in cell {index} of {row}"))
}

/// `broadcast_bench latency-trace` follows peersink's frames from the
/// source's stamp through every step to peersrc's decoder: each step of
/// both sides is seen for the frames decoded, and the steps' times are
/// plausible (none negative, the encode under a frame period).
#[test]
fn latency_trace_follows_each_frame_through_every_step_of_sender_and_viewer() {
    peer_tests::require_loopback_only();
    let mut trace =
        ChildProcess::spawn(Command::new(env!("CARGO_BIN_EXE_broadcast_bench")).args([
            "latency-trace",
            "--kinds",
            "peersink-bare",
            "--seconds",
            "3",
            "--rounds",
            "1",
            "--width",
            "640",
            "--height",
            "360",
            "--bitrate",
            "500000",
        ]));
    let header = trace.wait_line(
        "### Round 1, peersink-bare → peersrc: ",
        Duration::from_secs(60),
    );
    let decoded: usize = header
        .split(": ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no frame count in {header}"));
    assert!(
        decoded >= 60,
        "3 s at 30 fps, {decoded} frames followed: {header}"
    );
    for step in [
        "| encoder in |",
        "| encoder out |",
        "| payloader in |",
        "| payloader out (first packet) |",
        "| socket (last packet) |",
        "| jitter buffer in (last packet) |",
        "| jitter buffer out (last packet) |",
        "| depayloaded |",
        "| decoded |",
    ] {
        let row = trace.wait_line(step, Duration::from_secs(10));
        let frames = number(&row, 2) as usize;
        assert_eq!(
            frames, decoded,
            "every decoded frame was seen at {step}: {row}"
        );
        let (p50, p95) = (number(&row, 3), number(&row, 4));
        assert!(
            (0.0..=p95).contains(&p50),
            "{step}: p50 {p50} ms, p95 {p95} ms: {row}"
        );
        if step == "| encoder out |" {
            assert!(
                p50 < 33.3,
                "the encode takes less than a frame period: {row}"
            );
        }
    }
    assert!(trace.wait_exit(Duration::from_secs(20)), "the trace ends");
}
