//! `peer record` as a separate process, as a user runs it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::process::ChildProcess;

pub struct Recorder {
    pub process: ChildProcess,
    pub port: u16,
    pub dir: PathBuf,
    /// Whether the directory is this recorder's own, removed on drop.
    owns_dir: bool,
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if self.owns_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A port nobody listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A new empty directory for recordings, named after `what`.
pub fn fresh_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "gst-peer-{what}-{}-{}",
        std::process::id(),
        free_port()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

impl Recorder {
    /// Records `room` into a directory of its own, removed when dropped.
    pub fn start(room: &str) -> Recorder {
        Recorder::start_with(room, &[])
    }

    /// Records `room` with more options, into a directory of its own.
    pub fn start_with(room: &str, options: &[&str]) -> Recorder {
        let mut recorder = Recorder::start_in(room, &fresh_dir("rec"), options);
        recorder.owns_dir = true;
        recorder
    }

    /// Records `room` into `dir` (left there), with more options.
    pub fn start_in(room: &str, dir: &Path, options: &[&str]) -> Recorder {
        let port = free_port();
        let mut process = ChildProcess::spawn(
            Command::new(crate::peer_binary())
                .args([
                    "record",
                    "--room",
                    room,
                    "--port",
                    &port.to_string(),
                    "--summary-interval",
                    "1",
                ])
                .args(options)
                .arg("--dir")
                .arg(dir),
        );
        process.wait_line("publish at", Duration::from_secs(20));
        Recorder {
            process,
            port,
            dir: dir.to_owned(),
            owns_dir: false,
        }
    }

    /// A recorder whose process the caller starts (other options).
    pub fn adopt(process: ChildProcess, port: u16, dir: PathBuf) -> Recorder {
        Recorder {
            process,
            port,
            dir,
            owns_dir: true,
        }
    }

    pub fn room_uri(&self, room: &str) -> String {
        format!("ws://127.0.0.1:{}/{room}", self.port)
    }

    /// Waits for "recording <publisher> → <path>" and returns the path.
    pub fn started(&mut self, publisher: &str) -> PathBuf {
        let line = self.process.wait_line(
            &format!("recording {publisher} → "),
            Duration::from_secs(30),
        );
        PathBuf::from(line.split(" → ").nth(1).unwrap().trim())
    }

    pub fn finished(&mut self, publisher: &str) -> String {
        self.process
            .wait_line(&format!("finished {publisher}:"), Duration::from_secs(10))
    }

    /// SIGINT, as Ctrl-C would, and wait for the process to exit.
    pub fn interrupt(&mut self) -> Vec<String> {
        let _ = Command::new("kill")
            .args(["-INT", &self.process.id().to_string()])
            .status();
        assert!(
            self.process.wait_exit(Duration::from_secs(10)),
            "the recorder exits after SIGINT"
        );
        std::mem::take(&mut self.process.seen)
    }
}

/// The sidecar of a recording, parsed.
pub fn sidecar(path: &Path) -> Value {
    let text = std::fs::read_to_string(format!("{}.json", path.display()))
        .expect("a sidecar next to the file");
    serde_json::from_str(&text).unwrap()
}

impl Recorder {
    /// Records `room` into a tmpfs of `size_kib` KiB mounted on a fresh
    /// directory in a mount namespace of the recorder's own (`unshare -m`,
    /// as root or in the tests' user namespace): a disk that fills up,
    /// seen by nobody else. The test reaches the files through
    /// [`Recorder::seen_path`]; the tmpfs goes with the process.
    pub fn start_on_tmpfs(room: &str, size_kib: u64, options: &[&str]) -> Recorder {
        let dir = fresh_dir("tmpfs");
        std::fs::create_dir_all(&dir).unwrap();
        let port = free_port();
        let mut process = ChildProcess::spawn(
            Command::new("unshare")
                .args(["-m", "--", "sh", "-c"])
                .arg(format!(
                    "mount -t tmpfs -o size={size_kib}k gst-peer-test \"$0\" && exec \"$@\""
                ))
                .arg(&dir)
                .arg(crate::peer_binary())
                .args([
                    "record",
                    "--room",
                    room,
                    "--port",
                    &port.to_string(),
                    "--summary-interval",
                    "1",
                ])
                .args(options)
                .arg("--dir")
                .arg(&dir),
        );
        process.wait_line("publish at", Duration::from_secs(20));
        Recorder::adopt(process, port, dir)
    }

    /// `path` (in the recorder's directory) as this process reaches it
    /// when the recorder has a mount namespace of its own: through
    /// /proc/PID/root.
    pub fn seen_path(&self, path: &Path) -> PathBuf {
        let relative = path.strip_prefix("/").unwrap_or(path);
        PathBuf::from(format!("/proc/{}/root", self.process.id())).join(relative)
    }

    /// Whether the recorder process is still running.
    pub fn running(&mut self) -> bool {
        !self.process.wait_exit(Duration::ZERO)
    }
}
