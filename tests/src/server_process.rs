//! A signalling server in a process of its own (`peer serve`, another
//! build of it, or another PeerServer), for the attack suite and the
//! signalling benchmarks: its memory and CPU time are its own to measure.

use std::ffi::OsStr;
use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

use crate::process::ChildProcess;

/// How long a server may take to print that it listens.
const STARTUP_DEADLINE: Duration = Duration::from_secs(20);

pub struct ServerProcess {
    pub process: ChildProcess,
    pub port: u16,
}

impl ServerProcess {
    /// Starts `binary serve --port PORT ARGS` on a free loopback port, its
    /// log at `warn`, and waits for it to print `ready` (a line it logs
    /// once it listens).
    pub fn serve(
        binary: impl AsRef<OsStr>,
        args: impl IntoIterator<Item = impl AsRef<OsStr>>,
        ready: &str,
    ) -> ServerProcess {
        let port = free_port();
        let mut command = Command::new(binary);
        command
            .args(["serve", "--port", &port.to_string()])
            .args(args)
            .env("PEER_LOG", "warn");
        let mut process = ChildProcess::spawn(&mut command);
        process.wait_line(ready, STARTUP_DEADLINE);
        ServerProcess { process, port }
    }

    /// Resident memory now, in KiB.
    pub fn rss_kib(&self) -> u64 {
        memory_kib(self.process.id()).0
    }

    /// Peak resident memory so far, in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        memory_kib(self.process.id()).1
    }
}

/// A loopback port free now (a server started next can take it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

/// Resident memory of process `pid` and its peak, in KiB.
pub fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Lifts this process's open-file limit (which the servers it starts
/// inherit) to `wanted`, raising the hard limit too where that is allowed
/// (as root); where not, to the hard limit. Returns the limit now: many
/// sockets on both sides need more than the usual 1024.
pub fn raise_file_limit(wanted: u64) -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the structs given; a
    // failure leaves the old limit, which is then returned.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        let raised = libc::rlimit {
            rlim_cur: wanted,
            rlim_max: limit.rlim_max.max(wanted),
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) != 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
    }
    limit.rlim_cur
}
