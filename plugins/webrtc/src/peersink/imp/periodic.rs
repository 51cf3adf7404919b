//! What peersink does on its event thread's tick: viewers that never
//! connected are ended, adaptation runs, statistics are gathered and
//! posted, and each session's ICE restart policy is run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use gst::prelude::*;
use gst::subclass::prelude::*;

use super::super::encoding::Encoding;
use super::super::feedback::Monitor;
use super::super::layers::LayerSpec;
use super::super::stats;
use super::{ADAPTATION_PERIOD, PeerSink, VIEWER_TIMEOUT, WEBRTC_STATS_KEPT_FRESH};
use crate::codec::MediaKind;
use crate::session::WebRtcSession;

impl PeerSink {
    /// Ends the sessions of viewers that did not connect within `timeout`
    /// (never answered, or never finished ICE), freeing their webrtcbins.
    pub(super) fn end_silent_viewers(&self, now: Instant, timeout: Duration) {
        let expired: Vec<String> = {
            let state = self.state.lock().unwrap();
            let Some(running) = state.running.as_ref() else {
                return;
            };
            running
                .viewers
                .iter()
                .filter(|(_, viewer)| viewer.timed_out(now, timeout))
                .map(|(session, _)| session.clone())
                .collect()
        };
        for session in expired {
            let reason = format!(
                "{VIEWER_TIMEOUT}: the viewer did not connect within {} s (viewer-timeout)",
                timeout.as_secs()
            );
            self.end_viewer(&session, &reason, true);
        }
    }

    /// Encodings (layers) of the first video input, best first.
    pub(super) fn video_encodings(&self) -> Vec<Arc<Encoding>> {
        let state = self.state.lock().unwrap();
        state
            .inputs
            .iter()
            .find(|input| input.kind == MediaKind::Video)
            .map(|input| input.encodings())
            .unwrap_or_default()
    }

    /// Every viewer's numbers; with webrtcbin's own statistics as last
    /// fetched when `with_webrtc` (asking for them keeps them fresh: they
    /// are fetched on the next ticks, without waiting on webrtcbin here).
    pub(super) fn stats(&self, with_webrtc: bool) -> gst::Structure {
        if with_webrtc && let Some(running) = self.state.lock().unwrap().running.as_mut() {
            running.webrtc_stats_until = Instant::now() + WEBRTC_STATS_KEPT_FRESH;
        }
        let viewers: Vec<(Arc<WebRtcSession>, Arc<Monitor>)> = {
            let state = self.state.lock().unwrap();
            state
                .running
                .as_ref()
                .map(|running| {
                    running
                        .viewers
                        .values()
                        .map(|v| (v.session.clone(), v.monitor.clone()))
                        .collect()
                })
                .unwrap_or_default()
        };
        let encodings = self.video_encodings();
        let layers: Vec<LayerSpec> = encodings.iter().filter_map(|e| e.spec).collect();
        let per_layer = gst::Array::new(encodings.iter().map(|e| e.viewer_count() as u32));
        let mut builder = gst::Structure::builder("peersink-stats")
            .field("viewers", viewers.len() as u32)
            .field("layers", layers.len().max(1) as u32)
            .field("layer-viewers", per_layer);
        for (session, monitor) in viewers {
            let mut viewer = stats::viewer_structure(&session.peer, &monitor.snapshot(), &layers);
            if with_webrtc && let Some(webrtc) = session.stats() {
                viewer = viewer.field("webrtc", webrtc);
            }
            builder = builder.field(session.id.as_str(), viewer.build());
        }
        builder.build()
    }

    /// Runs every `TICK` on the event thread: each viewer's ICE restart
    /// policy, adaptation of every viewer once a second, the stats message
    /// at `stats-interval`, and fresh webrtcbin statistics while someone
    /// reads them.
    pub(super) fn tick(&self) {
        let (interval, timeout) = {
            let settings = self.settings.lock().unwrap();
            (settings.stats_interval_ms, settings.viewer_timeout())
        };
        let now = Instant::now();
        if let Some(timeout) = timeout {
            self.end_silent_viewers(now, timeout);
        }
        let (monitors, post, fetch, sessions) = {
            let mut state = self.state.lock().unwrap();
            let Some(running) = state.running.as_mut() else {
                return;
            };
            let sessions: Vec<Arc<WebRtcSession>> = running
                .viewers
                .values()
                .map(|v| v.session.clone())
                .collect();
            let fetch: Vec<Arc<WebRtcSession>> = if now < running.webrtc_stats_until {
                running
                    .viewers
                    .values()
                    .map(|v| v.session.clone())
                    .collect()
            } else {
                Vec::new()
            };
            let adapt = now >= running.last_adaptation + ADAPTATION_PERIOD;
            let monitors: Vec<Arc<Monitor>> = if adapt {
                running.last_adaptation = now;
                running
                    .viewers
                    .values()
                    .map(|v| v.monitor.clone())
                    .collect()
            } else {
                Vec::new()
            };
            let post = interval > 0
                && now >= running.last_stats_message + Duration::from_millis(interval as u64);
            if post {
                running.last_stats_message = now;
            }
            (monitors, post, fetch, sessions)
        };
        for session in sessions {
            session.tick_recovery();
        }
        for session in fetch {
            session.refresh_stats();
        }
        for monitor in monitors {
            monitor.tick(now);
        }
        if post {
            let structure = self.stats(false);
            let _ = self.obj().post_message(
                gst::message::Element::builder(structure)
                    .src(&*self.obj())
                    .build(),
            );
        }
    }
}
