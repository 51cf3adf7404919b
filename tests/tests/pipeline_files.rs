//! Every description in pipelines/ runs as a user would run it
//! (scripts/run-pipeline.sh, i.e. gst-launch-1.0 with our plugin), and does
//! what its `# test:` line says: a sender is received with the stated
//! size, a receiver negotiates the stated caps in its real sinks.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use gst::prelude::*;
use peer_signalling::server::ServerConfig;
use peer_tests::process::{ChildProcess, VirtualDisplay};
use peer_tests::{Receiver, TestServer, init, play, sender};

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn run_file(file: &Path, extra: &[&str], display: Option<&str>) -> ChildProcess {
    run_file_in(file, extra, display, None)
}

/// Runs a pipeline file as a user would, in `directory` when given.
fn run_file_in(
    file: &Path,
    extra: &[&str],
    display: Option<&str>,
    directory: Option<&Path>,
) -> ChildProcess {
    let mut command = Command::new(repository().join("scripts/run-pipeline.sh"));
    command
        .arg(file)
        .args(extra)
        .env("GST_PLUGIN_PATH", peer_tests::target_dir());
    if let Some(directory) = directory {
        command.current_dir(directory);
    }
    if let Some(display) = display {
        command.env("DISPLAY", display);
    }
    ChildProcess::spawn(&mut command)
}

struct TestLine {
    role: String,
    values: HashMap<String, String>,
}

fn test_line(file: &Path) -> TestLine {
    let text = std::fs::read_to_string(file).unwrap();
    let line = text
        .lines()
        .find_map(|line| line.strip_prefix("# test:"))
        .unwrap_or_else(|| {
            panic!(
                "{} has no \"# test:\" line saying how to check it",
                file.display()
            )
        });
    let mut words = line.split_whitespace();
    let role = words.next().expect("a role").to_owned();
    let values = words
        .filter_map(|word| word.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    TestLine { role, values }
}

#[test]
fn every_pipeline_file_works() {
    init();
    // The files name the documented default address.
    let _server = TestServer::start_with(ServerConfig {
        bind: "127.0.0.1:8080".parse().unwrap(),
        ..ServerConfig::default()
    });
    let display = VirtualDisplay::start(1280, 720);
    let mut files: Vec<PathBuf> = std::fs::read_dir(repository().join("pipelines"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "pipeline"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "pipelines/ holds the documented examples");
    for file in &files {
        let test = test_line(file);
        let name = file.file_name().unwrap().to_string_lossy();
        eprintln!("pipeline {name}: {}", test.role);
        let get = |key: &str| {
            test.values
                .get(key)
                .unwrap_or_else(|| panic!("{name}: test line needs {key}="))
                .clone()
        };
        match test.role.as_str() {
            "sender" => {
                let _running = run_file(file, &[], None);
                let receiver = Receiver::start(&format!(
                    "uri=ws://127.0.0.1:8080/{} producer={}",
                    get("room"),
                    get("producer")
                ));
                let received = receiver.wait(
                    Duration::from_secs(30),
                    &format!("frames from {name}"),
                    |r| r.video_frames >= 5,
                );
                assert_eq!(received.width.to_string(), get("width"), "{name}");
                assert_eq!(received.height.to_string(), get("height"), "{name}");
            }
            "receiver" => {
                let producer = sender(
                    &format!(
                        "uri=ws://127.0.0.1:8080/{} peer-id={}",
                        get("room"),
                        get("producer")
                    ),
                    1280,
                    720,
                    0xff2040c0,
                    440.0,
                );
                play(&producer);
                let mut running = run_file(file, &["-v"], Some(&display.display));
                let expected = get("expect");
                let line = running.wait_line(&expected, Duration::from_secs(30));
                assert!(line.contains("caps ="), "{name}: {line}");
                let _ = producer.set_state(gst::State::Null);
            }
            "embedded" => {
                let mut running = run_file(file, &[], None);
                let line = running.wait_line("open http://127.0.0.1:", Duration::from_secs(20));
                let url = line.split("open ").nth(1).unwrap().trim();
                let port = url["http://127.0.0.1:".len()..].split('/').next().unwrap();
                let producer = url
                    .split("producer=")
                    .nth(1)
                    .expect("the page names the producer");
                let receiver = Receiver::start(&format!(
                    "uri=ws://127.0.0.1:{port}/default producer={producer}"
                ));
                let received = receiver.wait(
                    Duration::from_secs(30),
                    &format!("frames from {name}"),
                    |r| r.video_frames >= 5,
                );
                assert_eq!(received.width.to_string(), get("width"), "{name}");
                assert_eq!(received.height.to_string(), get("height"), "{name}");
            }
            "recorder" => {
                let producer = sender(
                    &format!(
                        "uri=ws://127.0.0.1:8080/{} peer-id={}",
                        get("room"),
                        get("producer")
                    ),
                    640,
                    360,
                    0xff2040c0,
                    440.0,
                );
                play(&producer);
                let directory =
                    std::env::temp_dir().join(format!("gst-peer-pipeline-{}", std::process::id()));
                std::fs::create_dir_all(&directory).unwrap();
                let output = directory.join(get("file"));
                let mut running = run_file_in(file, &[], None, Some(&directory));
                peer_tests::wait_until(Duration::from_secs(30), "the recording to grow", || {
                    (std::fs::metadata(&output).map_or(0, |m| m.len()) > 50_000).then_some(())
                });
                // Ctrl-C, as a user stops it: -e turns it into EOS, finalizing the file.
                let _ = Command::new("kill")
                    .args(["-INT", &running.id().to_string()])
                    .status();
                assert!(
                    running.wait_exit(Duration::from_secs(10)),
                    "{name} exits on Ctrl-C"
                );
                let decoded = peer_tests::media::decode_file(&output);
                assert_eq!((decoded.width, decoded.height), (640, 360), "{name}");
                assert!(decoded.audio_buffers > 0, "{name}: the recording has sound");
                let _ = producer.set_state(gst::State::Null);
                let _ = std::fs::remove_dir_all(&directory);
            }
            other => panic!("{name}: unknown test role {other}"),
        }
    }
}
