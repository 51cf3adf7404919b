//! What peersrc does on its event thread's tick, and the `stats` it
//! reports: the media watchdog of `eos-on-leave`, each session's ICE
//! restart policy, and per-track figures.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gst::prelude::*;

use super::PeerSrc;
use crate::codec::MediaKind;
use crate::events::Event;
use crate::session::{SessionNotice, WebRtcSession};

/// With eos-on-leave, a producer that has sent media and then sends
/// nothing for this long is treated as gone. Its media connection may
/// never be reported failed: GStreamer 1.22's libnice agent runs no
/// consent-freshness checks, so a WHIP encoder or a browser that vanishes
/// without a word would otherwise hold its recording open forever.
const MEDIA_TIMEOUT: Duration = Duration::from_secs(10);

/// When the current session's media last arrived, for the watchdog.
pub(super) struct MediaClock {
    epoch: Instant,
    /// Milliseconds since `epoch` of the last buffer; 0 before the first.
    last_ms: AtomicU64,
}

impl MediaClock {
    pub(super) fn new() -> Self {
        MediaClock {
            epoch: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    pub(super) fn touch(&self) {
        let ms = self.epoch.elapsed().as_millis() as u64;
        self.last_ms.store(ms.max(1), Ordering::Relaxed);
    }

    /// How long since the last buffer; None before the first.
    fn silent_for(&self) -> Option<Duration> {
        match self.last_ms.load(Ordering::Relaxed) {
            0 => None,
            last => Some(
                self.epoch
                    .elapsed()
                    .saturating_sub(Duration::from_millis(last)),
            ),
        }
    }
}

impl PeerSrc {
    /// Every `TICK`: the media watchdog (see [`MEDIA_TIMEOUT`]), each
    /// session's ICE restart policy, and fresh statistics for the `stats`
    /// property.
    pub(super) fn tick(&self) {
        let (watched, events) = {
            let state = self.state.lock().unwrap();
            let Some(running) = state.running.as_ref() else {
                return;
            };
            let now = Instant::now();
            for output in running.sessions.iter().flat_map(|r| r.outputs.iter()) {
                output.meter.tick(now);
            }
            let watched: Vec<(Arc<WebRtcSession>, Option<Arc<MediaClock>>)> = running
                .sessions
                .iter()
                .filter(|r| !r.ended)
                .map(|r| (r.session.clone(), r.media.clone()))
                .collect();
            (watched, running.link.events.clone())
        };
        for (session, clock) in watched {
            session.refresh_stats();
            session.tick_recovery();
            if clock
                .and_then(|clock| clock.silent_for())
                .is_some_and(|silent| silent >= MEDIA_TIMEOUT)
            {
                let reason = format!(
                    "no media from the producer for {} s",
                    MEDIA_TIMEOUT.as_secs()
                );
                events.send(Event::Session(
                    session.id.clone(),
                    SessionNotice::Failed(reason),
                ));
            }
        }
    }

    /// The first session (the producer's, on our protocol and WHEP).
    fn current_session(&self) -> Option<Arc<WebRtcSession>> {
        let state = self.state.lock().unwrap();
        Some(state.running.as_ref()?.sessions.first()?.session.clone())
    }

    pub(super) fn stats(&self) -> gst::Structure {
        let mut builder = gst::Structure::builder("peersrc-stats");
        if let Some(session) = self.current_session() {
            builder = builder
                .field("producer", &session.peer)
                .field("session", &session.id)
                .field("tracks", self.track_stats());
            if let Some(stats) = session.stats() {
                builder = builder.field("webrtc", stats);
            }
        }
        builder.build()
    }

    /// Per output pad (`video_0`, ...), what arrives: picture size, frame
    /// rate and encoded bitrate over the last tick, totals.
    fn track_stats(&self) -> gst::Structure {
        let state = self.state.lock().unwrap();
        let mut tracks = gst::Structure::builder("peersrc-tracks");
        let outputs = state
            .running
            .iter()
            .flat_map(|running| running.sessions.iter())
            .flat_map(|r| r.outputs.iter());
        for output in outputs {
            let figures = output.meter.figures();
            let mut track = gst::Structure::builder("peersrc-track")
                .field("kind", figures.kind.as_str())
                .field("codec", figures.codec.encoding_name())
                .field("bitrate", figures.bitrate.round() as u64)
                .field("bytes", figures.bytes);
            if figures.kind == MediaKind::Video {
                track = track
                    .field("width", figures.width.unwrap_or(0))
                    .field("height", figures.height.unwrap_or(0))
                    .field("framerate", figures.frames_per_second)
                    .field("frames", figures.frames)
                    .field("keyframe-requests", figures.keyframe_requests);
            }
            tracks = tracks.field(output.ghost.name().as_str(), track.build());
        }
        tracks.build()
    }
}
