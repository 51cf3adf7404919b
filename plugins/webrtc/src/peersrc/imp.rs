use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::output::Output;
use super::settings::{self, Settings};
use crate::base::{self, Link};
use crate::common;
use crate::error::ElementError;
use crate::events::Event;
use crate::ice_restart::Triggers;
use crate::session::{SessionConfig, SessionNotice, WebRtcSession, announce_restart, is_inside};
use crate::signaller::settings::SignallerSettings;
use crate::signaller::{Role, SignallerCommand, SignallerConfig};

mod periodic;
mod sessions;
mod signalling;
mod tracks;

use periodic::MediaClock;

pub static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "peersrc",
        gst::DebugColorFlags::empty(),
        Some("gst-peer WebRTC source"),
    )
});

/// How often the event thread ticks: the media watchdog and statistics.
const TICK: Duration = Duration::from_secs(1);

/// One session peersrc receives: the producer's on our protocol and WHEP,
/// each caller's with PeerJS.
struct Receiving {
    session: Arc<WebRtcSession>,
    /// Whether we made the offer of this session.
    offered: bool,
    /// With eos-on-leave, when this session's media last arrived.
    media: Option<Arc<MediaClock>>,
    /// Its tracks, as pads of the element.
    outputs: Vec<Output>,
    /// Its streams got their EOS (it left, or its connection died): once only.
    ended: bool,
}

struct Running {
    link: Link,
    session_config: SessionConfig,
    /// In the order they started. A new session with the same peer
    /// replaces its old one; with another peer (PeerJS callers) it is
    /// added, with pads of its own.
    sessions: Vec<Receiving>,
}

impl Running {
    fn receiving(&mut self, session: &str) -> Option<&mut Receiving> {
        self.sessions.iter_mut().find(|r| r.session.id == session)
    }
}

#[derive(Default)]
struct State {
    running: Option<Running>,
    next_video: u32,
    next_audio: u32,
}

#[derive(Default)]
pub struct PeerSrc {
    settings: Mutex<Settings>,
    state: Mutex<State>,
    signaller: SignallerSettings,
}

#[glib::object_subclass]
impl ObjectSubclass for PeerSrc {
    const NAME: &'static str = "GstPeerSrc";
    type Type = super::PeerSrc;
    type ParentType = gst::Bin;
    type Interfaces = (gst::ChildProxy,);
}

impl ObjectImpl for PeerSrc {
    fn properties() -> &'static [glib::ParamSpec] {
        settings::properties()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        if !self.settings.lock().unwrap().set(pspec.name(), value) {
            unreachable!("unknown property {}", pspec.name());
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        match pspec.name() {
            "stats" => self.stats().to_value(),
            "signaller" => self.signaller.to_value(),
            name => self
                .settings
                .lock()
                .unwrap()
                .get(name)
                .unwrap_or_else(|| unreachable!("unknown property {name}")),
        }
    }

    fn signals() -> &'static [glib::subclass::Signal] {
        static SIGNALS: LazyLock<Vec<glib::subclass::Signal>> = LazyLock::new(|| {
            let mut signals = common::data_channel_signals(|element, label, peer, payload| {
                let element = element.downcast_ref::<super::PeerSrc>().expect("a peersrc");
                element.imp().send_on_channels(label, peer, &payload)
            });
            signals.extend(common::message_signals(|element, peer, json| {
                let element = element.downcast_ref::<super::PeerSrc>().expect("a peersrc");
                element.imp().send_message(peer, json)
            }));
            signals
        });
        SIGNALS.as_ref()
    }

    fn constructed(&self) {
        self.parent_constructed();
        self.obj()
            .set_suppressed_flags(gst::ElementFlags::SINK | gst::ElementFlags::SOURCE);
        self.obj().set_element_flags(gst::ElementFlags::SOURCE);
    }
}

impl GstObjectImpl for PeerSrc {}

/// The `signaller` child, so `signaller::token=...` works in gst-launch
/// lines; the bin's elements stay reachable by name as before.
impl ChildProxyImpl for PeerSrc {
    fn child_by_index(&self, _index: u32) -> Option<glib::Object> {
        None
    }

    fn children_count(&self) -> u32 {
        0
    }

    fn child_by_name(&self, name: &str) -> Option<glib::Object> {
        match name {
            "signaller" => Some(self.signaller.clone().upcast()),
            _ => self.obj().by_name(name).map(|e| e.upcast()),
        }
    }
}

impl ElementImpl for PeerSrc {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "WebRTC source with built-in signalling",
                "Source/Network/WebRTC",
                "Receives a producer's audio and video over WebRTC (a pipeline's peersink or a browser), \
                 decoded or as encoded streams; one pad per track",
                "gst-peer developers",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            base::pad_templates(gst::PadDirection::Src, gst::PadPresence::Sometimes)
        });
        TEMPLATES.as_ref()
    }

    fn send_event(&self, event: gst::Event) -> bool {
        // EOS sent to the pipeline (gst-launch -e, an application stopping)
        // must end every output, so recordings finalize.
        if let gst::EventView::Eos(_) = event.view() {
            for pad in self.output_entry_pads() {
                pad.send_event(gst::event::Eos::new());
            }
            return true;
        }
        self.parent_send_event(event)
    }

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        if transition == gst::StateChange::ReadyToPaused
            && let Err(err) = self.start()
        {
            err.post_error(self.obj().upcast_ref());
            return Err(gst::StateChangeError);
        }
        let result = self.parent_change_state(transition);
        if transition == gst::StateChange::PausedToReady {
            self.stop();
        }
        // Live: nothing to preroll until the producer's media arrives.
        match (transition, result) {
            (gst::StateChange::ReadyToPaused | gst::StateChange::PlayingToPaused, Ok(_)) => {
                Ok(gst::StateChangeSuccess::NoPreroll)
            }
            (_, result) => result,
        }
    }
}

impl BinImpl for PeerSrc {
    fn handle_message(&self, message: gst::Message) {
        // Errors deep inside webrtcbin are rephrased with the producer's name.
        if let gst::MessageView::Error(error) = message.view()
            && let Some(source) = message.src()
        {
            let session = {
                let state = self.state.lock().unwrap();
                state.running.as_ref().and_then(|running| {
                    running
                        .sessions
                        .iter()
                        .find(|r| is_inside(source, &r.session.webrtcbin))
                        .map(|r| (r.session.clone(), running.link.events.clone()))
                })
            };
            if let Some((session, events)) = session {
                let reason = format!("{} ({})", error.error(), source.name());
                events.send(Event::Session(
                    session.id.clone(),
                    SessionNotice::Failed(reason),
                ));
                return;
            }
        }
        self.parent_handle_message(message)
    }
}

impl PeerSrc {
    fn start(&self) -> Result<(), ElementError> {
        let settings = self.settings.lock().unwrap().clone();
        let validated = settings
            .common
            .validate(settings.latency_ms)
            .map_err(ElementError::Settings)?;
        self.signaller.reset_status();
        let config = SignallerConfig {
            uri: settings.common.uri.clone(),
            peer_id: settings.common.peer_id.clone(),
            meta: validated.meta,
            role: Role::Consumer {
                producer: settings.producer.clone(),
                producer_timeout: settings.producer_timeout,
            },
            embedded_port: settings.common.port,
            tls_ca_pem: validated.tls_ca_pem,
            protocol: self.signaller.snapshot(),
            token: settings.common.token.clone(),
            status: self.signaller.status(),
        };
        let element = self.obj().downgrade();
        let link = Link::start(self.obj().upcast_ref(), config, TICK, move |event| {
            if let Some(element) = element.upgrade() {
                element.imp().on_event(event);
            }
        })?;
        let mut state = self.state.lock().unwrap();
        state.running = Some(Running {
            link,
            session_config: SessionConfig {
                ice_restarts: Triggers::for_uri(settings.common.uri.as_deref()),
                ..validated.session
            },
            sessions: Vec::new(),
        });
        if let Some(running) = state.running.as_mut() {
            running.link.release_events();
        }
        Ok(())
    }

    fn stop(&self) {
        let running = self.state.lock().unwrap().running.take();
        let Some(mut running) = running else { return };
        running.link.stop_events();
        for receiving in running.sessions.drain(..) {
            running.link.signaller.send(SignallerCommand::EndSession {
                session: receiving.session.id.clone(),
                reason: "the receiver stopped".into(),
            });
            self.remove_session(receiving);
        }
    }

    /// The peer of `session` and whether its streams ended already.
    fn session_peer(&self, session: &str) -> Option<(String, bool)> {
        let mut state = self.state.lock().unwrap();
        let receiving = state.running.as_mut()?.receiving(session)?;
        Some((receiving.session.peer.clone(), receiving.ended))
    }

    fn find_session(&self, session: &str) -> Option<Arc<WebRtcSession>> {
        let mut state = self.state.lock().unwrap();
        Some(state.running.as_mut()?.receiving(session)?.session.clone())
    }

    fn on_event(&self, event: Event) {
        match event {
            Event::Signaller(event) => self.on_signaller_event(event),
            Event::Session(_, SessionNotice::Connected) => {
                gst::info!(CAT, imp = self, "connected to the producer");
            }
            Event::Session(session, SessionNotice::Failed(reason)) => {
                let Some((producer, ended)) = self.session_peer(&session) else {
                    return;
                };
                if ended {
                    // It said goodbye first; its connection closing after
                    // that is no news.
                    return;
                }
                match Some(producer) {
                    // A producer whose connection dies has left as surely
                    // as one that says goodbye (and a browser closing its
                    // connection often says so over UDP before the
                    // goodbye arrives through the server): files are
                    // finalized either way.
                    Some(producer) if self.settings.lock().unwrap().eos_on_leave => {
                        ElementError::Session(format!(
                            "the connection with producer \"{producer}\" ended: {reason}"
                        ))
                        .post_warning(self.obj().upcast_ref());
                        self.signaller_send(SignallerCommand::EndSession {
                            session: session.clone(),
                            reason: reason.clone(),
                        });
                        self.end_streams(&session, &producer, &reason);
                    }
                    _ => self.fail(
                        &session,
                        &format!("the session with the producer failed: {reason}"),
                        true,
                    ),
                }
            }
            Event::Session(session, SessionNotice::IceRestart(notice)) => {
                if let Some(found) = self.find_session(&session) {
                    announce_restart(self.obj().upcast_ref(), &session, &found.peer, &notice);
                }
            }
            Event::Session(session, SessionNotice::Message { label, payload }) => {
                if let Some(session) = self.find_session(&session) {
                    common::announce_message(
                        self.obj().upcast_ref(),
                        &session.peer,
                        &label,
                        &payload,
                    );
                }
            }
            Event::Tick => self.tick(),
            Event::InputReady => {}
        }
    }

    /// The session cannot go on: the receiver's one job failed, so the
    /// pipeline is told with an error naming why.
    fn fail(&self, session: &str, reason: &str, tell_peer: bool) {
        if tell_peer {
            self.signaller_send(SignallerCommand::EndSession {
                session: session.to_owned(),
                reason: reason.to_owned(),
            });
        }
        ElementError::Session(reason.to_owned()).post_error(self.obj().upcast_ref());
    }
}
