//! Where a recording goes: the file-name template and never overwriting.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The default template. Fields: `{room}`, `{publisher}`, `{start}` (UTC,
/// `20261122T093015Z`), `{tracks}` (`av`, `video` or `audio`), `{ext}`
/// (`webm` for VP8/VP9/Opus, `mkv` otherwise).
pub const DEFAULT_TEMPLATE: &str = "{room}_{publisher}_{start}_{tracks}.{ext}";

pub struct NameFields<'a> {
    pub room: &'a str,
    pub publisher: &'a str,
    pub start: SystemTime,
    pub has_video: bool,
    pub has_audio: bool,
    pub extension: &'a str,
}

pub fn compact_utc(time: SystemTime) -> String {
    // 2026-11-22T09:30:15Z → 20261122T093015Z
    humantime::format_rfc3339_seconds(time)
        .to_string()
        .replace(['-', ':'], "")
}

/// Checks a template before any recording starts.
pub fn validate(template: &str) -> Result<(), String> {
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| format!("template \"{template}\": unclosed {{"))?;
        let field = &rest[open + 1..open + close];
        if !["room", "publisher", "start", "tracks", "ext"].contains(&field) {
            return Err(format!(
                "template \"{template}\": unknown field {{{field}}} (known: room, publisher, start, tracks, ext)"
            ));
        }
        rest = &rest[open + close + 1..];
    }
    if !template.contains("{publisher}") || !template.contains("{start}") {
        return Err(format!(
            "template \"{template}\" must contain {{publisher}} and {{start}}, or files would collide"
        ));
    }
    Ok(())
}

/// The path for a new recording under `dir`; a suffix is added when the
/// name is taken, so nothing is ever overwritten.
pub fn recording_path(dir: &Path, template: &str, fields: &NameFields) -> PathBuf {
    let tracks = match (fields.has_video, fields.has_audio) {
        (true, true) => "av",
        (true, false) => "video",
        _ => "audio",
    };
    let name = template
        .replace("{room}", &sanitize(fields.room))
        .replace("{publisher}", &sanitize(fields.publisher))
        .replace("{start}", &compact_utc(fields.start))
        .replace("{tracks}", tracks)
        .replace("{ext}", fields.extension);
    let first = dir.join(&name);
    if !first.exists() {
        return first;
    }
    let (stem, extension) = match name.rsplit_once('.') {
        Some((stem, extension)) => (stem.to_owned(), format!(".{extension}")),
        None => (name.clone(), String::new()),
    };
    (1..)
        .map(|n| dir.join(format!("{stem}-{n}{extension}")))
        .find(|path| !path.exists())
        .expect("some suffix is free")
}

/// Peer and room ids are already restricted by the protocol; this keeps a
/// custom server's names from escaping the directory.
fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect::<String>()
        .trim_start_matches('.')
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(start: SystemTime) -> NameFields<'static> {
        NameFields {
            room: "interviews",
            publisher: "cam",
            start,
            has_video: true,
            has_audio: true,
            extension: "webm",
        }
    }

    #[test]
    fn default_template_names_everything() {
        let start = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_795_000_000);
        let path = recording_path(Path::new("/nonexistent"), DEFAULT_TEMPLATE, &fields(start));
        assert_eq!(
            path,
            Path::new("/nonexistent/interviews_cam_20261118T110640Z_av.webm")
        );
    }

    #[test]
    fn taken_names_get_a_suffix() {
        let dir = std::env::temp_dir().join(format!("naming-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let start = SystemTime::now();
        let first = recording_path(&dir, DEFAULT_TEMPLATE, &fields(start));
        std::fs::write(&first, b"x").unwrap();
        let second = recording_path(&dir, DEFAULT_TEMPLATE, &fields(start));
        assert_ne!(first, second);
        assert!(second.to_string_lossy().ends_with("-1.webm"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn templates_are_checked() {
        assert!(validate(DEFAULT_TEMPLATE).is_ok());
        assert!(
            validate("{publisher}-{start}-{colour}.{ext}")
                .unwrap_err()
                .contains("colour")
        );
        assert!(
            validate("{room}.{ext}")
                .unwrap_err()
                .contains("{publisher}")
        );
    }

    #[test]
    fn names_cannot_escape_the_directory() {
        assert_eq!(sanitize("../../etc"), "_.._etc");
    }
}
