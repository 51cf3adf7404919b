//! A smoke run of the broadcast benchmark (tests/src/bin/broadcast_bench):
//! seconds long, a small peersink broadcast watched by three viewers of
//! the viewer farm. It checks that the benchmark runs end to end and
//! reports, and that every viewer counted decodable frames; not the
//! figures (a debug build on shared cores). It needs no reference build.

use std::process::Command;
use std::time::Duration;

use peer_tests::process::ChildProcess;

#[test]
fn the_broadcast_benchmark_runs_and_every_viewer_counts_frames() {
    peer_tests::require_loopback_only();
    let mut bench =
        ChildProcess::spawn(Command::new(env!("CARGO_BIN_EXE_broadcast_bench")).args([
            "--kinds",
            "peersink",
            "--viewers",
            "3",
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
        ]));
    // The row of the one point: | 1 | peersink | 3 | min / p5 / median | ...
    let row = bench.wait_line("| 1 | peersink | 3 |", Duration::from_secs(120));
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    assert!(!row.contains("FAILED"), "the point failed: {row}");
    let slowest: f64 = cells[4]
        .split('/')
        .next()
        .and_then(|min| min.trim().parse().ok())
        .unwrap_or_else(|| panic!("no fps in {row}"));
    assert!(
        slowest > 0.0,
        "every viewer counts decodable frames, the slowest got {slowest} fps: {row}"
    );
    bench.wait_line("Every point reached every viewer.", Duration::from_secs(30));
    assert!(
        bench.wait_exit(Duration::from_secs(30)),
        "the benchmark ends"
    );
}
