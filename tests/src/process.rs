//! Child processes for tests: killed when the test ends however it ends,
//! with their output readable line by line against a deadline.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub struct ChildProcess {
    child: Child,
    lines: mpsc::Receiver<String>,
    pub seen: Vec<String>,
    /// Lines of `seen` already returned by `wait_line`.
    taken: Vec<bool>,
}

impl ChildProcess {
    /// Starts `command` with stdout and stderr merged into one line stream.
    pub fn spawn(command: &mut Command) -> ChildProcess {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {command:?}: {err}"));
        let (sender, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        for stream in [
            Box::new(stdout) as Box<dyn std::io::Read + Send>,
            Box::new(stderr),
        ] {
            let sender = sender.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if sender.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        ChildProcess {
            child,
            lines,
            seen: Vec::new(),
            taken: Vec::new(),
        }
    }

    /// Waits for a line containing `needle` (one seen earlier but not yet
    /// returned counts); panics with everything seen.
    pub fn wait_line(&mut self, needle: &str, timeout: Duration) -> String {
        if let Some(index) =
            (0..self.seen.len()).find(|&i| !self.taken[i] && self.seen[i].contains(needle))
        {
            self.taken[index] = true;
            return self.seen[index].clone();
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let matches = line.contains(needle);
                    self.seen.push(line.clone());
                    self.taken.push(matches);
                    if matches {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no line containing {needle:?} within {timeout:?}; output was:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Waits for a line containing `needle` printed from now on: earlier
    /// ones are passed over (a progress line that is current).
    pub fn wait_fresh_line(&mut self, needle: &str, timeout: Duration) -> String {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
            self.taken.push(false);
        }
        self.taken.iter_mut().for_each(|taken| *taken = true);
        self.wait_line(needle, timeout)
    }

    /// Waits up to `timeout` for the process to exit, collecting its
    /// output; whether it exited.
    pub fn wait_exit(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            while let Ok(line) = self.lines.try_recv() {
                self.seen.push(line);
                self.taken.push(false);
            }
            if let Ok(Some(_)) = self.child.try_wait() {
                // Output still in the pipes arrives once the readers see EOF.
                while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(500)) {
                    self.seen.push(line);
                    self.taken.push(false);
                }
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Lines of a child's output shown when the test fails.
const TAIL_ON_FAILURE: usize = 80;

impl Drop for ChildProcess {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            // The test failed: what the child said last is often why
            // (shown with the test's captured output).
            // gst-launch's `-m` state changes (hundreds at teardown) left out.
            self.seen.extend(self.lines.try_iter());
            let telling: Vec<&String> = self
                .seen
                .iter()
                .filter(|l| !l.contains("(state-changed)") && !l.contains("(stream-status)"))
                .collect();
            let from = telling.len().saturating_sub(TAIL_ON_FAILURE);
            eprintln!(
                "--- last {} lines of process {} ---",
                telling.len() - from,
                self.child.id()
            );
            for line in &telling[from..] {
                eprintln!("{line}");
            }
        }
    }
}

/// An X server of our own (Xvfb) for sinks that open windows.
pub struct VirtualDisplay {
    process: Child,
    /// Kept open: Xvfb dies of SIGPIPE if it writes to a closed stdout.
    _stdout: BufReader<std::process::ChildStdout>,
    pub display: String,
}

impl VirtualDisplay {
    pub fn start(width: u32, height: u32) -> VirtualDisplay {
        let mut process = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-noreset",
                "-nolisten",
                "tcp",
                "-screen",
                "0",
            ])
            .arg(format!("{width}x{height}x24"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb starts (Debian package xvfb)");
        // Xvfb writes the display number it chose once it accepts clients.
        let mut line = String::new();
        let mut stdout = BufReader::new(process.stdout.take().unwrap());
        stdout
            .read_line(&mut line)
            .expect("Xvfb reports its display");
        let display = format!(":{}", line.trim());
        VirtualDisplay {
            process,
            _stdout: stdout,
            display,
        }
    }
}

impl Drop for VirtualDisplay {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// CPU time (user + system) a process has used, in seconds.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which may itself hold spaces.
    let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: f64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}
