//! `peer record`'s file names: any template (first line), publisher id
//! (second) and room (third). Invariants: a template either is refused
//! with a named error or gives a relative path with a file name, no `..`,
//! no root, whose publisher and room parts are never empty, never start
//! with a dot and hold only [A-Za-z0-9._-]; suffixes keep the extension.

#[path = "../../apps/peer/src/record/naming.rs"]
#[allow(dead_code)]
mod naming;

use std::path::Component;
use std::time::{Duration, SystemTime};

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        let mut lines = text.splitn(3, '\n');
        let template = lines.next().unwrap_or_default();
        let publisher = lines.next().unwrap_or_default();
        let room = lines.next().unwrap_or_default();
        for value in [publisher, room] {
            let clean = naming::sanitize(value);
            assert!(!clean.is_empty(), "{value:?} sanitized to nothing");
            assert!(!clean.starts_with('.'), "{value:?} → {clean:?}");
            assert!(
                clean
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)),
                "{value:?} → {clean:?}"
            );
        }
        let fields = naming::NameFields {
            room,
            publisher,
            start: SystemTime::UNIX_EPOCH
                + Duration::from_secs(u64::from(data.len() as u32) * 7919),
            has_video: data.len() % 2 == 0,
            has_audio: data.len() % 3 == 0,
            extension: "webm",
        };
        match naming::render_name(template, &fields) {
            Ok(path) => {
                assert!(naming::validate(template).is_ok());
                assert!(path.is_relative(), "{template:?} → {path:?}");
                assert!(path.file_name().is_some(), "{template:?} → {path:?}");
                for component in path.components() {
                    assert!(
                        matches!(component, Component::Normal(_) | Component::CurDir),
                        "{template:?} → {path:?}"
                    );
                }
            }
            Err(err) => {
                assert!(!err.to_string().is_empty());
                assert!(
                    naming::validate(template).is_err()
                        || matches!(err, naming::NamingError::Outside { .. })
                );
            }
        }
    });
}
