//! Every binary of the workspace answers `--help` with its options and
//! exits, instead of starting its work (a benchmark ignoring `--help`
//! once ran for minutes).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use peer_tests::process::ChildProcess;
use peer_tests::target_dir;

/// `--help` of `binary args...`: its output, failing unless it exits at
/// once with success.
fn help(binary: PathBuf, args: &[&str]) -> String {
    assert!(
        binary.exists(),
        "{} is missing: build with --all-targets",
        binary.display()
    );
    let mut process = ChildProcess::spawn(Command::new(&binary).args(args).arg("--help"));
    assert!(
        process.wait_exit(Duration::from_secs(10)),
        "{} {args:?} --help is still running after 10 s: {:?}",
        binary.display(),
        process.seen
    );
    process.seen.join("\n")
}

#[test]
fn every_binary_prints_its_usage_and_options() {
    let target = target_dir();
    let cases: Vec<(PathBuf, Vec<&str>, &[&str])> = vec![
        (target.join("peer"), vec![], &["serve", "record"]),
        (target.join("peer"), vec!["serve"], &["--port"]),
        (target.join("peer"), vec!["send"], &["--server"]),
        (target.join("peer"), vec!["receive"], &["--server"]),
        (
            target.join("peer"),
            vec!["devices"],
            &["Usage: peer devices"],
        ),
        (
            target.join("peer"),
            vec!["record"],
            &["--whip-token", "repair"],
        ),
        (
            target.join("peer"),
            vec!["record", "repair"],
            &["<FILE>..."],
        ),
        (target.join("record_bench"), vec![], &["[PUBLISHERS]..."]),
        (
            target.join("broadcast_bench"),
            vec![],
            &["--viewers", "--kinds", "--webrtc-server"],
        ),
        (
            target.join("viewer-farm"),
            vec![],
            &["--viewers", "--producer"],
        ),
        (
            target.join("signalling_bench"),
            vec![],
            &["idle", "relay", "saturate"],
        ),
        (target.join("signalling_bench"), vec!["relay"], &["[RATE]"]),
        (
            target.join("examples/serve"),
            vec![],
            &["--port", "--max-peers-per-room"],
        ),
        (
            target.join("examples/capture_bench"),
            vec![],
            &["screen", "canvas", "profile"],
        ),
        (
            target.join("examples/capture_bench"),
            vec!["profile"],
            &["idle", "moving", "changing"],
        ),
        (
            target.join("examples/audiotap-bench"),
            vec![],
            &["--pure-only", "[SECONDS]"],
        ),
    ];
    for (binary, args, expected) in cases {
        let text = help(binary.clone(), &args);
        assert!(
            text.contains("Usage:"),
            "{} {args:?}: {text}",
            binary.display()
        );
        for word in expected {
            assert!(
                text.contains(word),
                "{} {args:?} --help does not mention {word}: {text}",
                binary.display()
            );
        }
    }
}
