use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use peer_signalling::protocol::{SessionDescription, StreamInfo};

use super::input::Input;
use super::send_pool::SendPool;
use super::settings::{self, Settings};
use super::viewer::Viewer;
use crate::base::{self, Link};
use crate::codec::MediaKind;
use crate::common;
use crate::error::ElementError;
use crate::events::Event;
use crate::ice_restart::Triggers;
use crate::session::{SessionConfig, SessionNotice, announce_restart};
use crate::signaller::settings::SignallerSettings;
use crate::signaller::{DataChannelPlan, Role, SignallerCommand, SignallerConfig};

mod input_probes;
mod periodic;
mod signalling;
mod viewers;

pub static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "peersink",
        gst::DebugColorFlags::empty(),
        Some("gst-peer WebRTC sink"),
    )
});

/// Data channel (and event name) of audiotap reports.
const AUDIOTAP_LABEL: &str = "audiotap";
/// How often the event thread ticks: adaptation every `ADAPTATION_PERIOD`,
/// stats messages at `stats-interval`, both rounded to this.
const TICK: Duration = Duration::from_millis(250);
/// Reasons of the sessions peersink ends, first word of `session-ended`.
pub const TOO_MANY_VIEWERS: &str = "too-many-viewers";
pub const VIEWER_TIMEOUT: &str = "viewer-timeout";
const ADAPTATION_PERIOD: Duration = Duration::from_secs(1);
/// How long one read of `stats` keeps webrtcbin's statistics refreshed.
const WEBRTC_STATS_KEPT_FRESH: Duration = Duration::from_secs(10);

/// Exists from READY→PAUSED to PAUSED→READY.
struct Running {
    link: Link,
    /// The threads that carry frames into the viewers' sessions.
    send_pool: Arc<SendPool>,
    session_config: SessionConfig,
    viewers: HashMap<String, Viewer>,
    /// Sessions started before every input knew its caps.
    waiting: Vec<PendingViewer>,
    last_adaptation: Instant,
    last_stats_message: Instant,
    /// Until when someone reading `stats` wants webrtcbin's own numbers
    /// kept fresh (fetching them costs each webrtcbin a round trip).
    webrtc_stats_until: Instant,
}

/// A session to build once the inputs are ready.
struct PendingViewer {
    session: String,
    peer: String,
    offer: Option<SessionDescription>,
    ice_servers: Vec<String>,
    data_channels: Option<DataChannelPlan>,
}

#[derive(Default)]
struct State {
    inputs: Vec<Arc<Input>>,
    next_video: u32,
    next_audio: u32,
    running: Option<Running>,
}

#[derive(Default)]
pub struct PeerSink {
    settings: Mutex<Settings>,
    state: Mutex<State>,
    signaller: SignallerSettings,
}

#[glib::object_subclass]
impl ObjectSubclass for PeerSink {
    const NAME: &'static str = "GstPeerSink";
    type Type = super::PeerSink;
    type ParentType = gst::Bin;
    type Interfaces = (gst::ChildProxy,);
}

impl ObjectImpl for PeerSink {
    fn properties() -> &'static [glib::ParamSpec] {
        settings::properties()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut settings = self.settings.lock().unwrap();
        if !settings.set(pspec.name(), value) {
            unreachable!("unknown property {}", pspec.name());
        }
        if pspec.name() == "min-keyframe-interval" {
            let interval = settings.min_keyframe_interval();
            drop(settings);
            for input in &self.state.lock().unwrap().inputs {
                input.set_min_keyframe_interval(interval);
            }
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        if pspec.name() == "stats" {
            return self.stats(true).to_value();
        }
        if pspec.name() == "signaller" {
            return self.signaller.to_value();
        }
        if pspec.name() == "viewers" {
            let state = self.state.lock().unwrap();
            let count = state.running.as_ref().map_or(0, |r| r.viewers.len());
            return (count as u32).to_value();
        }
        let settings = self.settings.lock().unwrap();
        settings
            .get(pspec.name())
            .unwrap_or_else(|| unreachable!("unknown property {}", pspec.name()))
    }

    fn signals() -> &'static [glib::subclass::Signal] {
        static SIGNALS: LazyLock<Vec<glib::subclass::Signal>> = LazyLock::new(|| {
            let mut signals = common::data_channel_signals(|element, label, peer, payload| {
                let element = element
                    .downcast_ref::<super::PeerSink>()
                    .expect("a peersink");
                element.imp().send_on_channels(label, peer, &payload)
            });
            signals.extend(common::message_signals(|element, peer, json| {
                let element = element
                    .downcast_ref::<super::PeerSink>()
                    .expect("a peersink");
                element.imp().send_message(peer, json)
            }));
            signals.extend([
                glib::subclass::Signal::builder("viewer-added")
                    .param_types([String::static_type(), String::static_type()])
                    .run_last()
                    .build(),
                // (pad name, layer: 0 the best, the encoder element) ->
                // handled: once per encoder peersink makes, with its own
                // settings applied. Returns like webrtcsink's signal of the
                // same name: true stops the handlers after this one.
                glib::subclass::Signal::builder("encoder-setup")
                    .param_types([
                        String::static_type(),
                        u32::static_type(),
                        gst::Element::static_type(),
                    ])
                    .return_type::<bool>()
                    .accumulator(|_hint, _accumulated, handled| {
                        if handled.get::<bool>().unwrap_or(false) {
                            std::ops::ControlFlow::Break(handled.clone())
                        } else {
                            std::ops::ControlFlow::Continue(handled.clone())
                        }
                    })
                    .run_last()
                    .build(),
                glib::subclass::Signal::builder("viewer-removed")
                    .param_types([
                        String::static_type(),
                        String::static_type(),
                        String::static_type(),
                    ])
                    .run_last()
                    .build(),
            ]);
            signals
        });
        SIGNALS.as_ref()
    }

    fn constructed(&self) {
        self.parent_constructed();
        self.obj()
            .set_suppressed_flags(gst::ElementFlags::SINK | gst::ElementFlags::SOURCE);
        self.obj().set_element_flags(gst::ElementFlags::SINK);
    }
}

impl GstObjectImpl for PeerSink {}

/// The `signaller` child, so `signaller::token=...` works in gst-launch
/// lines; the bin's elements stay reachable by name as before.
impl ChildProxyImpl for PeerSink {
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

impl ElementImpl for PeerSink {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "WebRTC sink with built-in signalling",
                "Sink/Network/WebRTC",
                "Sends audio and video to every viewer over WebRTC, encoding each input once; \
                 signals through a gst-peer server, or an embedded one when no uri is set",
                "gst-peer developers",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            base::pad_templates(gst::PadDirection::Sink, gst::PadPresence::Request)
        });
        TEMPLATES.as_ref()
    }

    fn request_new_pad(
        &self,
        template: &gst::PadTemplate,
        _name: Option<&str>,
        _caps: Option<&gst::Caps>,
    ) -> Option<gst::Pad> {
        let kind = if template.name_template() == "video_%u" {
            MediaKind::Video
        } else {
            MediaKind::Audio
        };
        let mut state = self.state.lock().unwrap();
        let pad_name = match kind {
            MediaKind::Video => {
                state.next_video += 1;
                format!("video_{}", state.next_video - 1)
            }
            MediaKind::Audio => {
                state.next_audio += 1;
                format!("audio_{}", state.next_audio - 1)
            }
        };
        // Sessions wait for every input to be ready to offer; say when one is.
        let element = self.obj().downgrade();
        let on_ready = Box::new(move || {
            if let Some(element) = element.upgrade() {
                element.imp().send_event(Event::InputReady);
            }
        });
        let input = match Input::new(self.obj().upcast_ref(), &pad_name, kind, on_ready) {
            Ok(input) => input,
            Err(err) => {
                gst::error!(CAT, imp = self, "cannot add {pad_name}: {err}");
                return None;
            }
        };
        self.watch_input_caps(&input);
        if kind == MediaKind::Audio {
            self.forward_audio_analysis(&input);
        }
        let target = input
            .entry
            .static_pad("sink")
            .expect("queues have a sink pad");
        let ghost = gst::GhostPad::builder_from_template_with_target(template, &target)
            .ok()?
            .name(pad_name.as_str())
            .build();
        ghost.set_active(true).ok()?;
        self.obj().add_pad(&ghost).ok()?;
        state.inputs.push(input);
        Some(ghost.upcast())
    }

    fn release_pad(&self, pad: &gst::Pad) {
        let input = {
            let mut state = self.state.lock().unwrap();
            let position = state
                .inputs
                .iter()
                .position(|input| input.pad_name == pad.name());
            position.map(|index| state.inputs.remove(index))
        };
        let _ = pad.set_active(false);
        let _ = self.obj().remove_pad(pad);
        if let Some(input) = input {
            input.remove(self.obj().upcast_ref());
        }
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
        result
    }
}

impl BinImpl for PeerSink {
    fn handle_message(&self, message: gst::Message) {
        // An error inside one viewer's elements (a failed DTLS handshake,
        // a payloader that cannot negotiate) ends that viewer, not the
        // whole pipeline.
        if let gst::MessageView::Error(error) = message.view()
            && let Some(source) = message.src()
        {
            let failed = {
                let state = self.state.lock().unwrap();
                state.running.as_ref().and_then(|running| {
                    let (id, viewer) = running
                        .viewers
                        .iter()
                        .find(|(_, viewer)| viewer.contains(source))?;
                    viewer.mark_failed();
                    Some((id.clone(), running.link.events.clone()))
                })
            };
            if let Some((session, events)) = failed {
                let reason = format!("{} ({})", error.error(), source.name());
                events.send(Event::Session(session, SessionNotice::Failed(reason)));
                return;
            }
        }
        self.parent_handle_message(message)
    }
}

impl PeerSink {
    fn send_event(&self, event: Event) {
        if let Some(running) = &self.state.lock().unwrap().running {
            running.link.events.send(event);
        }
    }

    fn start(&self) -> Result<(), ElementError> {
        let settings = self.settings.lock().unwrap().clone();
        let validated = settings
            .common
            .validate(common::DEFAULT_LATENCY_MS)
            .map_err(ElementError::Settings)?;
        let mut session_config = validated.session;
        session_config.ice_restarts = Triggers::for_uri(settings.common.uri.as_deref());
        let mut state = self.state.lock().unwrap();
        if state.inputs.is_empty() {
            return Err(ElementError::Settings(
                "peersink has no inputs: link something to its video_%u or audio_%u pads".into(),
            ));
        }
        let encoder = settings.encoder().map_err(ElementError::Settings)?;
        let streams = state
            .inputs
            .iter()
            .map(|input| StreamInfo {
                kind: input.kind.as_str().to_owned(),
                codec: Some(input.announced_codec(&encoder).encoding_name().to_owned()),
                label: Some(input.pad_name.clone()),
                extra: Default::default(),
            })
            .collect();
        self.signaller.reset_status();
        let config = SignallerConfig {
            uri: settings.common.uri.clone(),
            peer_id: settings.common.peer_id.clone(),
            meta: validated.meta,
            role: Role::Producer { streams },
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
        let now = Instant::now();
        state.running = Some(Running {
            link,
            send_pool: SendPool::new(settings.send_threads as usize),
            session_config,
            viewers: HashMap::new(),
            waiting: Vec::new(),
            last_adaptation: now,
            last_stats_message: now,
            webrtc_stats_until: now,
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
        for (session, mut viewer) in running.viewers.drain() {
            running.link.signaller.send(SignallerCommand::EndSession {
                session: session.clone(),
                reason: "the producer stopped".into(),
            });
            viewer.teardown(self.obj().upcast_ref());
        }
        running.send_pool.stop();
        // Dropping the link stops the signaller (and any embedded server).
    }

    fn on_event(&self, event: Event) {
        match event {
            Event::Signaller(event) => self.on_signaller_event(event),
            Event::Session(session, SessionNotice::Connected) => {
                let state = self.state.lock().unwrap();
                if let Some(viewer) = state.running.as_ref().and_then(|r| r.viewers.get(&session)) {
                    gst::info!(
                        CAT,
                        imp = self,
                        "viewer {} connected (session {session})",
                        viewer.session.peer
                    );
                    viewer.on_connected();
                }
            }
            Event::Session(session, SessionNotice::Failed(reason)) => {
                self.end_viewer(&session, &reason, true)
            }
            Event::Session(session, SessionNotice::IceRestart(notice)) => {
                if let Some(viewer) = self.viewer_session(&session) {
                    announce_restart(self.obj().upcast_ref(), &session, &viewer.peer, &notice);
                }
            }
            Event::Session(session, SessionNotice::Message { label, payload }) => {
                if let Some(viewer_session) = self.viewer_session(&session) {
                    common::announce_message(
                        self.obj().upcast_ref(),
                        &viewer_session.peer,
                        &label,
                        &payload,
                    );
                }
            }
            Event::InputReady => self.start_waiting_sessions(),
            Event::Tick => self.tick(),
        }
    }

    /// Elements that encode, for tests and tools that check sharing.
    pub fn encoders(&self) -> Vec<gst::Element> {
        self.state
            .lock()
            .unwrap()
            .inputs
            .iter()
            .flat_map(|input| input.encoders())
            .collect()
    }
}
