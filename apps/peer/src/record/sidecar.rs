//! The JSON file next to each recording: who, when, what, how it ended.
//! Written when the recording starts (so a recorder killed mid-way leaves
//! `"ended_cleanly": false` behind) and rewritten when it ends.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct TrackInfo {
    pub kind: String,
    pub codec: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub framerate: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channels: Option<i32>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Sidecar {
    pub room: String,
    pub publisher: String,
    pub file: String,
    pub container: String,
    pub started_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
    pub duration_seconds: f64,
    pub bytes: u64,
    pub tracks: Vec<TrackInfo>,
    pub ended_cleanly: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_reason: Option<String>,
    pub recorder: String,
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
