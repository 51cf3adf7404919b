//! Watching what a page served by `peer serve` does, from the tests:
//! frames its session decodes (getStats `framesDecoded`, sampled every
//! 50 ms in the page) with the longest gap between them, and the events
//! the pages record (`peerPage.signalling`, `peerPage.iceRestarts`).

use std::time::Duration;

use serde_json::Value;

use crate::browser::Browser;

/// Installs `window.frameMonitor` on the page's `peerPage.session`.
const FRAME_MONITOR: &str = r#"
    if (window.frameMonitor) return true;
    const monitor = (window.frameMonitor = { frames: 0, lastAt: null, longestGap: 0, iceStates: [], born: performance.now() });
    // ICE states with their times, for a test's report.
    const pc = window.peerPage.session.pc;
    monitor.log = (what) => monitor.iceStates.push(`${Math.round(performance.now() - monitor.born)} ms ${what}`);
    const logState = () => monitor.log(`${pc.iceConnectionState}/${pc.connectionState}`);
    pc.addEventListener('iceconnectionstatechange', logState);
    pc.addEventListener('connectionstatechange', logState);
    monitor.gapNow = () => Math.max(monitor.longestGap, monitor.lastAt === null ? 0 : performance.now() - monitor.lastAt);
    setInterval(async () => {
      const session = window.peerPage && window.peerPage.session;
      if (!session || session.ended) return;
      const report = await session.pc.getStats();
      let decoded = 0;
      report.forEach((entry) => {
        if (entry.type === 'inbound-rtp' && entry.kind === 'video') decoded += entry.framesDecoded || 0;
      });
      const now = performance.now();
      if (decoded > monitor.frames) {
        if (monitor.lastAt !== null) monitor.longestGap = Math.max(monitor.longestGap, now - monitor.lastAt);
        monitor.lastAt = now;
        monitor.frames = decoded;
      }
    }, 50);
    return true;
"#;

/// The page's `<video>`: its picture size, the colour at its centre and
/// its current time.
pub const VIDEO_PIXEL: &str = r#"
    const video = document.querySelector('video');
    const canvas = document.createElement('canvas');
    canvas.width = video.videoWidth; canvas.height = video.videoHeight;
    const context = canvas.getContext('2d');
    context.drawImage(video, 0, 0);
    const p = context.getImageData(canvas.width >> 1, canvas.height >> 1, 1, 1).data;
    return { width: video.videoWidth, height: video.videoHeight, rgb: [p[0], p[1], p[2]],
             time: video.currentTime };
"#;

/// Waits until a watch or play page says it plays and its video has a
/// picture, then returns [`VIDEO_PIXEL`] of it.
pub fn wait_playing(browser: &Browser, timeout: Duration) -> Value {
    browser.wait_for(
        "window.peerPage.state === 'playing' && document.querySelector('video').videoWidth > 0",
        timeout,
    );
    browser.eval(VIDEO_PIXEL, vec![])
}

/// What the page's frame monitor saw.
#[derive(Debug, Clone, Copy)]
pub struct PageFrames {
    pub decoded: u64,
    /// The longest time between two samples that saw new frames, or since
    /// the last one.
    pub longest_gap: Duration,
}

pub fn monitor_frames(browser: &Browser) {
    browser.eval(FRAME_MONITOR, vec![]);
}

pub fn frames(browser: &Browser) -> PageFrames {
    let value = browser.eval(
        "const m = window.frameMonitor; return { decoded: m.frames, gap: m.gapNow() };",
        vec![],
    );
    PageFrames {
        decoded: value["decoded"].as_u64().unwrap_or(0),
        longest_gap: Duration::from_secs_f64(value["gap"].as_f64().unwrap_or(0.0) / 1000.0),
    }
}

/// Forgets the gaps seen so far (the page's start, say).
pub fn reset_gaps(browser: &Browser) {
    browser.eval(
        "window.frameMonitor.longestGap = 0; window.frameMonitor.lastAt = performance.now(); return true;",
        vec![],
    );
}

/// Waits until the page decoded `more` frames beyond `from`; the count.
pub fn wait_frames(browser: &Browser, from: u64, more: u64, timeout: Duration) -> u64 {
    browser
        .wait_for(
            &format!(
                "window.frameMonitor.frames >= {} && window.frameMonitor.frames",
                from + more
            ),
            timeout,
        )
        .as_u64()
        .unwrap_or(0)
}

/// Marks `what` (the test's own doing) among the logged ICE states.
pub fn mark(browser: &Browser, what: &str) {
    browser.eval(
        "window.frameMonitor.log(arguments[0]); return true;",
        vec![Value::String(what.to_owned())],
    );
}

/// The session's ICE and connection states so far, with their times.
pub fn ice_states(browser: &Browser) -> Value {
    browser.eval("return window.frameMonitor.iceStates;", vec![])
}

/// `peerPage[list]` (the events a page recorded), as JSON values.
pub fn recorded(browser: &Browser, list: &str) -> Vec<Value> {
    browser
        .eval(&format!("return window.peerPage.{list} || [];"), vec![])
        .as_array()
        .cloned()
        .unwrap_or_default()
}
