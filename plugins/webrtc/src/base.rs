//! What peersink and peersrc share beyond their properties (`common.rs`):
//! the pad templates' caps, and the [`Link`] each holds while running — its
//! signaller and the one thread that handles its events and ticks.

use std::time::Duration;

use crate::error::ElementError;
use crate::events::{Event, EventLoop, EventSender};
use crate::signaller::{self, SignallerConfig, SignallerHandle};

/// Raw or encoded video, as both elements take or give it.
pub fn video_caps() -> gst::Caps {
    gst::Caps::builder_full()
        .structure(gst::Structure::new_empty("video/x-raw"))
        .structure(gst::Structure::new_empty("video/x-vp8"))
        .structure(gst::Structure::new_empty("video/x-vp9"))
        .structure(gst::Structure::new_empty("video/x-h264"))
        .build()
}

/// Raw or encoded audio, as both elements take or give it.
pub fn audio_caps() -> gst::Caps {
    gst::Caps::builder_full()
        .structure(gst::Structure::new_empty("audio/x-raw"))
        .structure(gst::Structure::new_empty("audio/x-opus"))
        .build()
}

/// `video_%u` and `audio_%u` templates in `direction`.
pub fn pad_templates(
    direction: gst::PadDirection,
    presence: gst::PadPresence,
) -> Vec<gst::PadTemplate> {
    vec![
        gst::PadTemplate::new("video_%u", direction, presence, &video_caps())
            .expect("valid template"),
        gst::PadTemplate::new("audio_%u", direction, presence, &audio_caps())
            .expect("valid template"),
    ]
}

/// An element's connection to the signalling world while it runs
/// (READY→PAUSED to PAUSED→READY).
pub struct Link {
    pub signaller: SignallerHandle,
    pub events: EventSender,
    event_loop: EventLoop,
}

impl Link {
    /// Starts the signaller and the element's event thread, named after it.
    /// The thread handles nothing until [`Link::release_events`].
    pub fn start(
        element: &gst::Element,
        config: SignallerConfig,
        tick: Duration,
        handler: impl Fn(Event) + Send + 'static,
    ) -> Result<Link, ElementError> {
        use gst::prelude::*;
        warm_dtls_certificate();
        let (signaller, signaller_events) = signaller::spawn(config)?;
        let event_loop = EventLoop::start(
            format!("{}-events", element.name()),
            signaller_events,
            tick,
            handler,
        )
        .map_err(|err| ElementError::Resource(format!("cannot start the event thread: {err}")))?;
        Ok(Link {
            signaller,
            events: event_loop.sender(),
            event_loop,
        })
    }

    /// Lets the event thread handle events: call once the link is stored
    /// where the handler looks for it.
    pub fn release_events(&mut self) {
        self.event_loop.release();
    }

    /// Stops the event thread; dropping the link then stops the signaller
    /// (and any embedded server). Never call with the element's state
    /// lock held: the thread may be waiting for it.
    pub fn stop_events(&mut self) {
        self.event_loop.stop();
    }
}

/// GStreamer's DTLS elements make their certificate (a 2048-bit RSA key,
/// ~340 ms here) once per process, when the first of them is created:
/// that is the first session's offer or answer, so the first viewer of a
/// new process waited for it. Made in the background as soon as an
/// element starts instead, while the signaller connects.
fn warm_dtls_certificate() {
    static WARMING: std::sync::Once = std::sync::Once::new();
    WARMING.call_once(|| {
        crate::runtime::RUNTIME.spawn_blocking(|| {
            // dtlsdec's instance init makes (or reuses) the certificate.
            let _ = gst::ElementFactory::make("dtlsdec").build();
        });
    });
}
