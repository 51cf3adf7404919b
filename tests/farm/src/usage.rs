//! What a process costs, read from /proc: CPU time, resident memory,
//! threads. Used by the farm on itself and by benchmarks on the sender.

/// CPU time (user + system) of process `pid` (`None`: this process), in
/// seconds; 0 when it cannot be read.
pub fn cpu_seconds(pid: Option<u32>) -> f64 {
    let stat = std::fs::read_to_string(proc_path(pid, "stat")).unwrap_or_default();
    // Fields after the command name, which may itself hold spaces.
    let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<f64>().ok())
        .sum();
    // SAFETY: sysconf has no preconditions.
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

/// A `/proc/PID/status` field's first number (`VmRSS:` in kB, `Threads:`).
pub fn status_field(pid: Option<u32>, field: &str) -> u64 {
    std::fs::read_to_string(proc_path(pid, "status"))
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

pub fn rss_kb(pid: Option<u32>) -> u64 {
    status_field(pid, "VmRSS:")
}

pub fn threads(pid: Option<u32>) -> u64 {
    status_field(pid, "Threads:")
}

fn proc_path(pid: Option<u32>, file: &str) -> String {
    match pid {
        Some(pid) => format!("/proc/{pid}/{file}"),
        None => format!("/proc/self/{file}"),
    }
}
