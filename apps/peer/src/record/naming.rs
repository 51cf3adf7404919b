//! Where a recording goes: the file-name template, keeping every file inside
//! `--dir`, and never overwriting.
//!
//! Names come from the network (peer and room ids), so they are sanitized,
//! and the template comes from the command line, so it is checked: it must
//! be relative, without `..`. A new file is created with `create_new`
//! (`O_EXCL`): if the name is taken, even by a file that appeared a moment
//! ago, the next suffix (`-1`, `-2`, ...) is tried; nothing is ever
//! truncated. The directory the file lands in is checked after it exists
//! (canonically, so a symbolic link inside `--dir` cannot lead out of it).
//!
//! Self-contained (std, humantime, thiserror): the fuzz target
//! `record_template` builds this file as it is.

use std::fs::File;
use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};
use std::time::SystemTime;

/// The default template. Fields: `{room}`, `{publisher}`, `{start}` (UTC,
/// `20261122T093015Z`), `{tracks}` (`av`, `video` or `audio`), `{ext}`
/// (`webm` for VP8/VP9/Opus, `mkv` otherwise).
pub const DEFAULT_TEMPLATE: &str = "{room}_{publisher}_{start}_{tracks}.{ext}";

const FIELDS: [&str; 5] = ["room", "publisher", "start", "tracks", "ext"];

/// How many suffixes are tried before giving up on a name.
const MAX_SUFFIX: u32 = 10_000;

pub struct NameFields<'a> {
    pub room: &'a str,
    pub publisher: &'a str,
    pub start: SystemTime,
    pub has_video: bool,
    pub has_audio: bool,
    pub extension: &'a str,
}

#[derive(Debug, thiserror::Error)]
pub enum NamingError {
    #[error("template {template:?}: unclosed {{")]
    Unclosed { template: String },
    #[error(
        "template {template:?}: unknown field {{{field}}} (known: room, publisher, start, tracks, ext)"
    )]
    UnknownField { template: String, field: String },
    #[error(
        "template {template:?} must contain {{publisher}} and {{start}}, or files would collide"
    )]
    MissingFields { template: String },
    #[error("template {template:?} is an absolute path; it must be relative to --dir")]
    Absolute { template: String },
    #[error("template {template:?} contains \"..\"; recordings stay inside --dir")]
    ParentDirectory { template: String },
    #[error("template {template:?} names a directory, not a file (it ends with /)")]
    NoFileName { template: String },
    #[error("{} is outside {}: recordings stay inside --dir", path.display(), dir.display())]
    Outside { path: PathBuf, dir: PathBuf },
    #[error("cannot create {}: {source}", path.display())]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot lock {}: {source}", path.display())]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no free name for {} after {MAX_SUFFIX} suffixes", path.display())]
    NoFreeName { path: PathBuf },
}

pub fn compact_utc(time: SystemTime) -> String {
    // 2026-11-22T09:30:15Z → 20261122T093015Z
    humantime::format_rfc3339_seconds(time)
        .to_string()
        .replace(['-', ':'], "")
}

/// Checks a template before any recording starts.
pub fn validate(template: &str) -> Result<(), NamingError> {
    let owned = || template.to_owned();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| NamingError::Unclosed { template: owned() })?;
        let field = &rest[open + 1..open + close];
        if !FIELDS.contains(&field) {
            return Err(NamingError::UnknownField {
                template: owned(),
                field: field.to_owned(),
            });
        }
        rest = &rest[open + close + 1..];
    }
    if !template.contains("{publisher}") || !template.contains("{start}") {
        return Err(NamingError::MissingFields { template: owned() });
    }
    let path = Path::new(template);
    if path.is_absolute() || template.starts_with(['/', '\\']) {
        return Err(NamingError::Absolute { template: owned() });
    }
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(NamingError::ParentDirectory { template: owned() });
    }
    if template.ends_with(['/', '\\']) {
        return Err(NamingError::NoFileName { template: owned() });
    }
    Ok(())
}

/// The file's path relative to `--dir`, before any suffix: fields filled
/// in and sanitized. Always relative, with no `..` and a file name.
pub fn render_name(template: &str, fields: &NameFields) -> Result<PathBuf, NamingError> {
    validate(template)?;
    let tracks = match (fields.has_video, fields.has_audio) {
        (true, true) => "av",
        (true, false) => "video",
        _ => "audio",
    };
    // One pass over the template, so a value that looks like a field
    // (a room named "{publisher}") is never substituted again.
    let mut name = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        name.push_str(&rest[..open]);
        let close = open + rest[open..].find('}').expect("validated");
        name.push_str(&match &rest[open + 1..close] {
            "room" => sanitize(fields.room),
            "publisher" => sanitize(fields.publisher),
            "start" => compact_utc(fields.start),
            "tracks" => tracks.to_owned(),
            _ => sanitize(fields.extension),
        });
        rest = &rest[close + 1..];
    }
    name.push_str(rest);
    let path = PathBuf::from(name);
    // Sanitized values hold no separator and never start with a dot, so
    // the checks of the template hold for the name; checked again anyway.
    let inside = path
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if !inside || path.file_name().is_none() {
        return Err(NamingError::Outside {
            path,
            dir: PathBuf::from("--dir"),
        });
    }
    Ok(path)
}

/// Creates, locks and returns a new recording file under `dir`. A name
/// that is taken gets the first free suffix (`-1`, `-2`, ...), decided by
/// the filesystem at creation (`create_new`), so nothing is overwritten
/// even when another process creates the same name at the same moment.
pub fn create_recording(
    dir: &Path,
    template: &str,
    fields: &NameFields,
) -> Result<(PathBuf, File), NamingError> {
    let relative = render_name(template, fields)?;
    let first = dir.join(&relative);
    let parent = first.parent().unwrap_or(dir).to_owned();
    std::fs::create_dir_all(&parent).map_err(|source| NamingError::Create {
        path: parent.clone(),
        source,
    })?;
    let canonical = |path: &Path| {
        path.canonicalize().map_err(|source| NamingError::Create {
            path: path.to_owned(),
            source,
        })
    };
    let (root, real_parent) = (canonical(dir)?, canonical(&parent)?);
    if !real_parent.starts_with(&root) {
        return Err(NamingError::Outside {
            path: first,
            dir: dir.to_owned(),
        });
    }
    let file_name = first
        .file_name()
        .expect("render_name gives a file name")
        .to_string_lossy()
        .into_owned();
    let (stem, extension) = split_extension(&file_name);
    for n in 0..=MAX_SUFFIX {
        let path = match n {
            0 => first.clone(),
            n => parent.join(format!("{stem}-{n}{extension}")),
        };
        match File::options().write(true).create_new(true).open(&path) {
            Ok(file) => {
                file.try_lock().map_err(|err| NamingError::Lock {
                    path: path.clone(),
                    source: err.into(),
                })?;
                return Ok((path, file));
            }
            Err(err) if err.kind() == ErrorKind::AlreadyExists => continue,
            Err(source) => return Err(NamingError::Create { path, source }),
        }
    }
    Err(NamingError::NoFreeName { path: first })
}

/// `cam.webm` → (`cam`, `.webm`); a leading dot is part of the stem.
fn split_extension(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(dot) if dot > 0 => (&name[..dot], &name[dot..]),
        _ => (name, ""),
    }
}

/// Peer and room ids are already restricted by the protocol; this keeps a
/// custom server's names from escaping the directory or hiding the file:
/// only ASCII letters, digits, `.`, `_`, `-`; never a leading dot (so never
/// `.` or `..`), never empty.
pub fn sanitize(text: &str) -> String {
    let clean: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let trimmed = clean.trim_start_matches('.');
    if trimmed.is_empty() {
        // "", "." and "..." stay recognisable and never empty.
        "_".repeat(clean.len().clamp(1, 8))
    } else if trimmed.len() < clean.len() {
        format!("_{trimmed}")
    } else {
        clean
    }
}

#[cfg(test)]
#[path = "naming_tests.rs"]
mod tests;
