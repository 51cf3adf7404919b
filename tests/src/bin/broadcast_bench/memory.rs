//! Where the sender's resident memory is, from /proc/PID/smaps: glibc's
//! main heap, its per-thread arenas, thread stacks, other anonymous
//! mappings (large allocations glibc maps on their own) and files. Kept
//! when BROADCAST_BENCH_SMAPS_DIR is set, for attributing the cost of a
//! viewer (docs/benchmarks/broadcast.md, "Memory per viewer").

use std::fmt::Write as _;

use crate::Kind;

/// A directory where the sender's smaps and their summary are written at
/// the end of the baseline and of each point's window
/// (`KIND-VIEWERS-PID.smaps` and `.txt`), when set.
pub const SMAPS_DIR: &str = "BROADCAST_BENCH_SMAPS_DIR";

/// glibc's heaps of non-main arenas are reserved 64 MiB at a time
/// (HEAP_MAX_SIZE on 64-bit) and aligned to it.
const ARENA_HEAP: u64 = 64 << 20;
/// Threads' stacks: the default 8 MiB (ulimit -s), of which glibc makes
/// the lowest page a guard.
const STACK_KB: [u64; 2] = [8 << 10, (8 << 10) - 4];

#[derive(Debug, Default, Clone, Copy)]
pub struct Breakdown {
    pub main_heap_kb: u64,
    pub arenas_kb: u64,
    pub arena_heaps: u64,
    pub stacks_kb: u64,
    pub stacks: u64,
    pub other_anon_kb: u64,
    pub files_kb: u64,
}

/// Sorts each mapping's Rss into a kind.
pub fn breakdown(smaps: &str) -> Breakdown {
    let mut result = Breakdown::default();
    let mut current: Option<(u64, u64, bool, bool, String)> = None;
    for line in smaps.lines() {
        let mut words = line.split_whitespace();
        let Some(first) = words.next() else { continue };
        if let Some((start, end)) = first.split_once('-').and_then(|(s, e)| {
            Some((
                u64::from_str_radix(s, 16).ok()?,
                u64::from_str_radix(e, 16).ok()?,
            ))
        }) {
            let perms = words.next().unwrap_or("");
            let path = words.nth(3).unwrap_or("").to_owned();
            current = Some((start, end, perms.starts_with("rw"), path.is_empty(), path));
            continue;
        }
        if first != "Rss:" {
            continue;
        }
        let Some((start, end, writable, anonymous, path)) = current.take() else {
            continue;
        };
        let rss: u64 = words.next().and_then(|v| v.parse().ok()).unwrap_or(0);
        let size_kb = (end - start) / 1024;
        if path == "[heap]" {
            result.main_heap_kb += rss;
        } else if anonymous && writable && start % ARENA_HEAP == 0 && size_kb <= ARENA_HEAP / 1024 {
            result.arenas_kb += rss;
            result.arena_heaps += 1;
        } else if anonymous && writable && STACK_KB.contains(&size_kb) {
            result.stacks_kb += rss;
            result.stacks += 1;
        } else if anonymous || path.starts_with('[') {
            result.other_anon_kb += rss;
        } else {
            result.files_kb += rss;
        }
    }
    result
}

impl Breakdown {
    pub fn line(&self) -> String {
        let mb = |kb: u64| kb as f64 / 1024.0;
        let mut line = String::new();
        let _ = write!(
            line,
            "main heap {:.1} MB; arenas {:.1} MB ({} heaps); thread stacks {:.1} MB ({}); \
             other anonymous {:.1} MB; files {:.1} MB",
            mb(self.main_heap_kb),
            mb(self.arenas_kb),
            self.arena_heaps,
            mb(self.stacks_kb),
            self.stacks,
            mb(self.other_anon_kb),
            mb(self.files_kb),
        );
        line
    }
}

/// Copies the sender's smaps into SMAPS_DIR, with its breakdown beside it.
pub fn keep_smaps(pid: u32, kind: Kind, viewers: usize) {
    let Some(dir) = std::env::var_os(SMAPS_DIR) else {
        return;
    };
    let base = std::path::Path::new(&dir).join(format!("{}-{viewers}-{pid}", kind.name()));
    let smaps = match std::fs::read_to_string(format!("/proc/{pid}/smaps")) {
        Ok(smaps) => smaps,
        Err(err) => {
            eprintln!("cannot read the sender's smaps: {err}");
            return;
        }
    };
    let summary = breakdown(&smaps).line();
    for (extension, text) in [("smaps", smaps.as_str()), ("txt", summary.as_str())] {
        let path = base.with_extension(extension);
        if let Err(err) = std::fs::write(&path, text) {
            eprintln!("cannot write {}: {err}", path.display());
        }
    }
}
