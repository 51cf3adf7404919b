//! What the benchmark runs around the measurements: child processes read
//! line by line, the signalling server of each kind, and the veth pair
//! webrtcsink's libnice needs to gather 127.0.0.1.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use peer_signalling::server::{self, ServerConfig};

use crate::Kind;

/// A child process whose stdout lines arrive on a channel; stderr goes to
/// a log (webrtcsink's libnice complains loudly in a namespace without
/// multicast).
pub struct Process {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

pub fn log_path() -> std::path::PathBuf {
    std::env::temp_dir().join("broadcast_bench.log")
}

impl Process {
    pub fn spawn(command: &mut Command) -> Result<Process, String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path())
            .map_err(|err| format!("cannot open {}: {err}", log_path().display()))?;
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|err| format!("cannot start {command:?}: {err}"))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Process {
            stdin: child.stdin.take(),
            child,
            lines,
        })
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The next line starting with `prefix` (others are skipped), without
    /// the prefix.
    pub fn wait_line(&mut self, prefix: &str, timeout: Duration) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix(prefix) {
                        return Ok(rest.to_owned());
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(format!("no \"{prefix}\" line within {timeout:?}"));
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.child.try_wait().ok().flatten();
                    return Err(format!(
                        "the process ended ({status:?}) before a \"{prefix}\" line; see {}",
                        log_path().display()
                    ));
                }
            }
        }
    }

    /// Every line already printed.
    pub fn drain(&mut self) -> Vec<String> {
        self.lines.try_iter().collect()
    }

    /// Writes one command line, then waits for the next line of output.
    pub fn request(&mut self, command: &str, timeout: Duration) -> Result<String, String> {
        let stdin = self.stdin.as_mut().ok_or("no stdin")?;
        writeln!(stdin, "{command}")
            .and_then(|_| stdin.flush())
            .map_err(|err| format!("cannot write to the child: {err}"))?;
        self.wait_line("", timeout)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn self_command(args: &[&str]) -> Command {
    let mut command =
        Command::new(std::env::current_exe().expect("the benchmark knows its own path"));
    command.args(args);
    command
}

/// Signalling for one kind: our server in this process, or
/// gst-webrtc-signalling-server as a child.
pub enum Signalling {
    Ours(Option<server::RunningServer>, tokio::runtime::Runtime),
    Theirs(Child, u16),
}

impl Signalling {
    pub fn start(kind: Kind, webrtc_server: Option<&str>) -> Result<Signalling, String> {
        match kind {
            Kind::PeerSink | Kind::PeerSinkNoDataChannel | Kind::PeerSinkBare => {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                    .map_err(|err| err.to_string())?;
                let running = runtime
                    .block_on(server::start(ServerConfig {
                        bind: "127.0.0.1:0".parse().expect("an address"),
                        ..ServerConfig::default()
                    }))
                    .map_err(|err| err.to_string())?;
                Ok(Signalling::Ours(Some(running), runtime))
            }
            Kind::WebRtcSink => {
                let path = webrtc_server.ok_or("no gst-webrtc-signalling-server given")?;
                let port = free_port();
                let child = Command::new(path)
                    .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .map_err(|err| format!("cannot start {path}: {err}"))?;
                let signalling = Signalling::Theirs(child, port);
                let deadline = Instant::now() + Duration::from_secs(10);
                while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                    if Instant::now() > deadline {
                        return Err("gst-webrtc-signalling-server is not listening".into());
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                Ok(signalling)
            }
        }
    }

    /// The address senders and viewers are given.
    pub fn uri(&self) -> String {
        match self {
            Signalling::Ours(running, _) => format!(
                "ws://127.0.0.1:{}/bench",
                running.as_ref().expect("running").local_addr().port()
            ),
            Signalling::Theirs(_, port) => format!("ws://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Signalling {
    fn drop(&mut self) {
        match self {
            Signalling::Ours(running, runtime) => {
                if let Some(running) = running.take() {
                    runtime.block_on(running.stop());
                }
            }
            Signalling::Theirs(child, _) => {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port on 127.0.0.1")
}

/// libnice skips `lo`, and webrtcsink has no address option: a veth pair
/// holding 127.0.0.1 lets it gather 127.0.0.1 (WEBRTC-NOTES). Only made in
/// a namespace that holds nothing but `lo`.
pub struct LoopbackVeth;

impl LoopbackVeth {
    /// The veth when webrtcsink is among `kinds` (only it needs one).
    pub fn for_kinds(kinds: &[Kind]) -> Result<Option<LoopbackVeth>, String> {
        if kinds.contains(&Kind::WebRtcSink) {
            LoopbackVeth::create().map(Some)
        } else {
            Ok(None)
        }
    }

    pub fn create() -> Result<LoopbackVeth, String> {
        let interfaces = std::fs::read_to_string("/proc/net/dev").unwrap_or_default();
        let names: Vec<&str> = interfaces
            .lines()
            .skip(2)
            .filter_map(|line| line.split(':').next().map(str::trim))
            .collect();
        if names.iter().any(|name| *name != "lo") {
            return Err(format!(
                "run this benchmark in a loopback-only namespace (unshare -n); interfaces: {names:?}"
            ));
        }
        let run = |args: &[&str]| -> Result<(), String> {
            let status = Command::new(args[0])
                .args(&args[1..])
                .status()
                .map_err(|err| format!("{args:?}: {err}"))?;
            status
                .success()
                .then_some(())
                .ok_or_else(|| format!("{args:?} failed"))
        };
        run(&[
            "ip", "link", "add", "bbloop0", "type", "veth", "peer", "name", "bbloop1",
        ])?;
        let veth = LoopbackVeth;
        for name in ["bbloop0", "bbloop1"] {
            let _ = Command::new("sysctl")
                .args(["-qw", &format!("net.ipv6.conf.{name}.disable_ipv6=1")])
                .status();
            run(&["ip", "link", "set", name, "up"])?;
        }
        run(&["ip", "addr", "add", "127.0.0.1/32", "dev", "bbloop0"])?;
        Ok(veth)
    }
}

impl Drop for LoopbackVeth {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", "bbloop0"]).status();
    }
}
