//! The JSON file next to each recording: who, when, what, how it ended.
//! Written when the recording starts (so a recorder killed mid-way leaves
//! `"ended_cleanly": false` behind) and rewritten when it ends, and again
//! when a repair rewrites the file.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// `end_reason` of a recording whose recorder died before finalizing it,
/// written by the repair.
pub const END_UNFINISHED: &str = "recorder ended without finalizing";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrackInfo {
    pub kind: String,
    pub codec: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub framerate: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<i32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sidecar {
    pub room: String,
    pub publisher: String,
    pub file: String,
    pub container: String,
    pub started_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
    pub duration_seconds: f64,
    pub bytes: u64,
    pub tracks: Vec<TrackInfo>,
    pub ended_cleanly: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_reason: Option<String>,
    pub recorder: String,
    /// When a repair rewrote the file's duration and index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repaired_at: Option<String>,
    /// Why the last repair failed (start-up does not retry such files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repair_error: Option<String>,
    /// Fields this version does not know, kept as they are on rewrite.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

pub fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_millis(time).to_string()
}

pub fn path_for(recording: &Path) -> PathBuf {
    let mut name = recording.as_os_str().to_owned();
    name.push(".json");
    PathBuf::from(name)
}

impl Sidecar {
    /// The sidecar of `recording`; `None` when it has none or it is not
    /// a sidecar of ours.
    pub fn read(recording: &Path) -> std::io::Result<Option<Sidecar>> {
        match std::fs::read(path_for(recording)) {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Writes next to the recording, atomically (write then rename), so a
    /// crash never leaves half a sidecar.
    pub fn write(&self, recording: &Path) -> std::io::Result<()> {
        let path = path_for(recording);
        let temporary = path.with_extension("json.tmp");
        std::fs::write(
            &temporary,
            serde_json::to_vec_pretty(self).expect("serializes"),
        )?;
        std::fs::rename(temporary, path)
    }
}
