//! Making recordings whole after their recorder died (SIGKILL, a crash,
//! power loss): `peer record repair FILE...`, and `peer record` at
//! start-up for every file in `--dir` whose sidecar says it did not end
//! cleanly.
//!
//! A Matroska/WebM file killed mid-write plays (its clusters close every
//! second), but has no Duration and no Cues: players report a fraction of
//! a second and cannot seek. The file is remuxed (`remux.rs`) into a
//! temporary file beside it, checked, and renamed over the original. No
//! frame is decoded or re-encoded.
//!
//! Why a remux and not an in-place fix of the EBML (writing the Duration,
//! appending Cues, patching the SeekHead and the sizes of the Segment and
//! of the last cluster): the remux has GStreamer's demuxer read whatever a
//! dying writer left (a cut block, a cluster of unknown size) the way
//! every GStreamer player reads it, and the file is then written by the
//! very muxer, with the very settings, that finalize a clean recording;
//! the original stays untouched until the new file is complete and holds
//! every frame the demuxer read, so a repair that fails or is itself
//! killed loses nothing. An in-place fixer would have to reproduce
//! matroskamux's layout by hand and would modify the only copy. The cost
//! is reading and writing the file once, and free space for one copy.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::remux::{self, RemuxError, Remuxed};
use super::sidecar::{self, Sidecar};

#[derive(Debug, thiserror::Error)]
pub enum RepairError {
    #[error("no such file")]
    Missing,
    #[error("a running recorder is writing it (it holds the file's lock)")]
    InUse,
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("not a Matroska or WebM file ({0})")]
    NotMatroska(&'static str),
    #[error("remuxing failed: {0}; the file is left as it was")]
    Remux(#[from] RemuxError),
}

/// A repaired file.
#[derive(Debug)]
pub struct Repaired {
    pub path: PathBuf,
    pub remuxed: Remuxed,
    pub bytes: u64,
    /// When the broken file was last written: about when its writer died.
    pub last_written: Option<SystemTime>,
}

impl Repaired {
    /// One line for people.
    pub fn summary(&self) -> String {
        let kinds: Vec<&str> = self
            .remuxed
            .tracks
            .iter()
            .map(|t| t.kind.as_str())
            .collect();
        format!(
            "repaired {}: {:.2} s, {} video frames, tracks {} (duration and index rewritten, nothing re-encoded)",
            self.path.display(),
            self.remuxed.span().as_secs_f64(),
            self.remuxed.frames("video"),
            kinds.join("+"),
        )
    }
}

/// The recording a command-line argument names: the file itself, or its
/// sidecar (`FILE.json`).
pub fn recording_named(argument: &Path) -> PathBuf {
    let text = argument.as_os_str().to_string_lossy();
    match text.strip_suffix(".json") {
        Some(recording) if Path::new(recording).is_file() => PathBuf::from(recording),
        _ => argument.to_owned(),
    }
}

/// Why `path` needs no repair, according to its sidecar: it ended
/// cleanly, or a repair rewrote it already. `None` without a sidecar.
pub fn already_whole(path: &Path) -> Option<String> {
    let sidecar = Sidecar::read(path).ok()??;
    if sidecar.ended_cleanly {
        return Some("its sidecar says it ended cleanly".to_owned());
    }
    let at = sidecar.repaired_at?;
    Some(format!("it was repaired at {at}"))
}

/// Rewrites `path`'s header and index in place (through a temporary
/// file), unless a running recorder holds its lock.
pub fn repair_file(path: &Path) -> Result<Repaired, RepairError> {
    let original = File::open(path).map_err(|err| match err.kind() {
        std::io::ErrorKind::NotFound => RepairError::Missing,
        _ => RepairError::Io(err),
    })?;
    // Held until the new file has replaced this one: no recorder is
    // writing it (each holds the lock of its file), no other repair either.
    match original.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return Err(RepairError::InUse),
        Err(std::fs::TryLockError::Error(err)) => return Err(err.into()),
    }
    let last_written = original.metadata()?.modified().ok();
    let muxer = match doc_type(&original)?.as_str() {
        "webm" => "webmmux",
        _ => "matroskamux",
    };
    let temporary = temporary_path(path);
    let remuxed =
        remux::remux(path, &temporary, muxer, "gst-peer record (repaired)").inspect_err(|_| {
            let _ = std::fs::remove_file(&temporary);
        })?;
    File::open(&temporary)?.sync_all()?;
    std::fs::rename(&temporary, path)?;
    let bytes = std::fs::metadata(path)?.len();
    drop(original);
    Ok(Repaired {
        path: path.to_owned(),
        remuxed,
        bytes,
        last_written,
    })
}

/// `.NAME.repairing` beside the file: same file system (the rename is
/// atomic), and no sidecar, so nothing mistakes it for a recording.
fn temporary_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.repairing"))
}

/// Records the repair in the sidecar: the real duration and size, and
/// when. `ended_cleanly` stays false: the recording did not end cleanly.
pub fn note_in_sidecar(repaired: &Repaired) -> std::io::Result<()> {
    let Some(mut sidecar) = Sidecar::read(&repaired.path)? else {
        return Ok(());
    };
    sidecar.duration_seconds = (repaired.remuxed.span().as_secs_f64() * 1000.0).round() / 1000.0;
    sidecar.bytes = repaired.bytes;
    if sidecar.ended_at.is_none() {
        sidecar.ended_at = repaired.last_written.map(sidecar::rfc3339);
    }
    sidecar
        .end_reason
        .get_or_insert_with(|| sidecar::END_UNFINISHED.to_owned());
    sidecar.repaired_at = Some(sidecar::rfc3339(SystemTime::now()));
    sidecar.repair_error = None;
    sidecar.write(&repaired.path)
}

/// Notes in the sidecar why the file could not be repaired, so that
/// start-up does not try again at every start (`peer record repair` does).
pub fn note_failure_in_sidecar(path: &Path, error: &RepairError) -> std::io::Result<()> {
    let Some(mut sidecar) = Sidecar::read(path)? else {
        return Ok(());
    };
    sidecar.repair_error = Some(error.to_string());
    sidecar.write(path)
}

/// The recordings under `dir` (and its subdirectories: templates may
/// make some) whose sidecar says they did not end cleanly and that no
/// repair has dealt with yet.
pub fn unfinished_recordings(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            // Not following symbolic links: no loops, nothing outside --dir.
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                pending.push(path);
                continue;
            }
            let Some(recording) = path
                .to_str()
                .and_then(|p| p.strip_suffix(".json"))
                .map(PathBuf::from)
            else {
                continue;
            };
            if !kind.is_file() || !recording.is_file() {
                continue;
            }
            if let Ok(Some(sidecar)) = Sidecar::read(&recording)
                && !sidecar.ended_cleanly
                && sidecar.repaired_at.is_none()
                && sidecar.repair_error.is_none()
            {
                found.push(recording);
            }
        }
    }
    found.sort();
    found
}

/// Repairs every unfinished recording under `dir`, one after the other,
/// printing a line for each. Runs on a thread of its own: a recorder that
/// restarts after a crash records again at once.
pub fn repair_unfinished_in_background(dir: &Path) {
    let unfinished = unfinished_recordings(dir);
    if unfinished.is_empty() {
        return;
    }
    println!(
        "{} unfinished recording(s) in {}: repairing them",
        unfinished.len(),
        dir.display()
    );
    let spawned = std::thread::Builder::new()
        .name("repair".into())
        .spawn(move || {
            for path in unfinished {
                match repair_file(&path) {
                    Ok(repaired) => {
                        if let Err(err) = note_in_sidecar(&repaired) {
                            eprintln!("cannot update the sidecar of {}: {err}", path.display());
                        }
                        println!("{}", repaired.summary());
                    }
                    Err(RepairError::InUse) => {
                        println!("left alone {}: {}", path.display(), RepairError::InUse)
                    }
                    Err(err) => {
                        println!("cannot repair {}: {err}", path.display());
                        if let Err(err) = note_failure_in_sidecar(&path, &err) {
                            eprintln!("cannot update the sidecar of {}: {err}", path.display());
                        }
                    }
                }
            }
        });
    if let Err(err) = spawned {
        eprintln!("cannot start repairing: {err}");
    }
}

/// The DocType of the EBML header at the start of the file: `webm` or
/// `matroska`.
fn doc_type(file: &File) -> Result<String, RepairError> {
    use std::io::Read;
    let mut head = Vec::with_capacity(256);
    file.take(256).read_to_end(&mut head)?;
    parse_doc_type(&head)
}

const EBML_HEADER_ID: u32 = 0x1A45_DFA3;
const DOC_TYPE_ID: u32 = 0x4282;

fn parse_doc_type(head: &[u8]) -> Result<String, RepairError> {
    let (id, rest) = read_id(head).ok_or(RepairError::NotMatroska("empty file"))?;
    if id != EBML_HEADER_ID {
        return Err(RepairError::NotMatroska("no EBML header"));
    }
    let (size, mut rest) = read_size(rest).ok_or(RepairError::NotMatroska("cut EBML header"))?;
    rest = &rest[..rest.len().min(size as usize)];
    while let Some((id, after_id)) = read_id(rest) {
        let (size, body) =
            read_size(after_id).ok_or(RepairError::NotMatroska("cut EBML header"))?;
        let size = size as usize;
        if size > body.len() {
            break;
        }
        if id == DOC_TYPE_ID {
            let text = String::from_utf8_lossy(&body[..size]);
            return match text.trim_end_matches('\0') {
                doc @ ("webm" | "matroska") => Ok(doc.to_owned()),
                _ => Err(RepairError::NotMatroska("another EBML document type")),
            };
        }
        rest = &body[size..];
    }
    Err(RepairError::NotMatroska("no DocType in the EBML header"))
}

/// An EBML variable-length integer: the length is 1 + the number of
/// leading zero bits of the first byte.
fn read_vint(data: &[u8], keep_marker: bool) -> Option<(u64, &[u8])> {
    let first = *data.first()?;
    let length = first.leading_zeros() as usize + 1;
    if length > 8 || data.len() < length {
        return None;
    }
    let mut value = if keep_marker {
        first as u64
    } else {
        (first as u64) & (0xFF >> length)
    };
    for byte in &data[1..length] {
        value = (value << 8) | *byte as u64;
    }
    Some((value, &data[length..]))
}

fn read_id(data: &[u8]) -> Option<(u32, &[u8])> {
    read_vint(data, true).and_then(|(id, rest)| Some((u32::try_from(id).ok()?, rest)))
}

fn read_size(data: &[u8]) -> Option<(u64, &[u8])> {
    read_vint(data, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The EBML header matroskamux writes for WebM.
    const WEBM_HEAD: &[u8] = &[
        0x1A, 0x45, 0xDF, 0xA3, 0x9F, 0x42, 0x86, 0x81, 0x01, 0x42, 0xF7, 0x81, 0x01, 0x42, 0xF2,
        0x81, 0x04, 0x42, 0xF3, 0x81, 0x08, 0x42, 0x82, 0x84, b'w', b'e', b'b', b'm', 0x42, 0x87,
        0x81, 0x04, 0x42, 0x85, 0x81, 0x02, 0x18, 0x53, 0x80, 0x67,
    ];

    #[test]
    fn doc_type_is_read_from_the_ebml_header() {
        assert_eq!(parse_doc_type(WEBM_HEAD).unwrap(), "webm");
        let mut matroska = WEBM_HEAD[..23].to_vec();
        matroska[4] = 0x80 | (18 + 1 + 8);
        matroska.extend([0x88]);
        matroska.extend(b"matroska");
        assert_eq!(parse_doc_type(&matroska).unwrap(), "matroska");
    }

    #[test]
    fn other_files_are_named_for_what_they_are_not() {
        let err = parse_doc_type(b"RIFF....WAVE").unwrap_err();
        assert_eq!(
            err.to_string(),
            "not a Matroska or WebM file (no EBML header)"
        );
        let err = parse_doc_type(&[]).unwrap_err();
        assert_eq!(err.to_string(), "not a Matroska or WebM file (empty file)");
        let err = parse_doc_type(&WEBM_HEAD[..10]).unwrap_err();
        assert!(err.to_string().contains("not a Matroska"), "{err}");
    }

    #[test]
    fn a_sidecar_argument_names_its_recording() {
        let dir = std::env::temp_dir().join(format!("peer-repair-args-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("a.webm");
        std::fs::write(&file, b"x").unwrap();
        assert_eq!(recording_named(&dir.join("a.webm.json")), file);
        assert_eq!(recording_named(&file), file);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
