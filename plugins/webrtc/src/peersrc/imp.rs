use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use tokio::sync::mpsc;

use super::output::{self, Output};
use crate::codec::MediaKind;
use crate::common::{self, CommonSettings, DEFAULT_LATENCY_MS, DEFAULT_PRODUCER_TIMEOUT};
use crate::datachannel::Payload;
use crate::events::{Event, EventLoop};
use crate::session::{
    NoticeHandler, SessionConfig, SessionNotice, WebRtcSession, discard, is_inside,
};
use crate::signaller::{
    self, Role, SignallerCommand, SignallerConfig, SignallerEvent, SignallerHandle,
};

pub static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "peersrc",
        gst::DebugColorFlags::empty(),
        Some("gst-peer WebRTC source"),
    )
});

/// With eos-on-leave, a producer that has sent media and then sends
/// nothing for this long is treated as gone. Its media connection may
/// never be reported failed: GStreamer 1.22's libnice agent runs no
/// consent-freshness checks, so a WHIP encoder or a browser that vanishes
/// without a word would otherwise hold its recording open forever.
const MEDIA_TIMEOUT: Duration = Duration::from_secs(10);

/// When the current session's media last arrived, for the watchdog.
struct MediaClock {
    epoch: Instant,
    /// Milliseconds since `epoch` of the last buffer; 0 before the first.
    last_ms: AtomicU64,
}

impl MediaClock {
    fn new() -> Self {
        MediaClock {
            epoch: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
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

#[derive(Debug, Clone)]
struct Settings {
    common: CommonSettings,
    producer: Option<String>,
    decode: bool,
    latency_ms: u32,
    producer_timeout: Duration,
    eos_on_leave: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            common: CommonSettings::default(),
            producer: None,
            decode: true,
            latency_ms: DEFAULT_LATENCY_MS,
            producer_timeout: DEFAULT_PRODUCER_TIMEOUT,
            eos_on_leave: false,
        }
    }
}

struct Running {
    signaller: SignallerHandle,
    events: mpsc::UnboundedSender<Event>,
    event_loop: EventLoop,
    session_config: SessionConfig,
    session: Option<Arc<WebRtcSession>>,
}

#[derive(Default)]
struct State {
    running: Option<Running>,
    outputs: Vec<Output>,
    next_video: u32,
    next_audio: u32,
    /// The producer's streams got their EOS (it left, or its connection
    /// died): once only.
    streams_ended: bool,
}

#[derive(Default)]
pub struct PeerSrc {
    settings: Mutex<Settings>,
    state: Mutex<State>,
}

#[glib::object_subclass]
impl ObjectSubclass for PeerSrc {
    const NAME: &'static str = "GstPeerSrc";
    type Type = super::PeerSrc;
    type ParentType = gst::Bin;
}

impl ObjectImpl for PeerSrc {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            let mut properties = common::properties();
            properties.extend([
                glib::ParamSpecString::builder("producer")
                    .nick("Producer")
                    .blurb("Peer id of the producer to receive; unset: the first producer in the room")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("producer-timeout")
                    .nick("Producer timeout")
                    .blurb("Seconds to wait for a named producer to join before failing (0: wait forever)")
                    .default_value(DEFAULT_PRODUCER_TIMEOUT.as_secs() as u32)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("eos-on-leave")
                    .nick("EOS on leave")
                    .blurb(
                        "When the producer leaves, its connection dies or its media stops for 10 s, end \
                         the streams (EOS, so files get finalized) and post a peer-producer-left element \
                         message, instead of posting an error",
                    )
                    .default_value(false)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("decode")
                    .nick("Decode")
                    .blurb("Output raw audio and video; false outputs the depayloaded encoded streams (for recording)")
                    .default_value(true)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("latency")
                    .nick("Latency")
                    .blurb("Jitter buffer length in milliseconds")
                    .default_value(DEFAULT_LATENCY_MS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                    .nick("Statistics")
                    .blurb("Producer id and webrtcbin statistics of the session (bitrate, loss, jitter, RTT)")
                    .read_only()
                    .build(),
            ]);
            properties
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut settings = self.settings.lock().unwrap();
        if settings.common.set(pspec.name(), value) {
            return;
        }
        match pspec.name() {
            "producer" => {
                settings.producer = value
                    .get::<Option<String>>()
                    .expect("type checked upstream")
                    .filter(|s| !s.is_empty())
            }
            "eos-on-leave" => settings.eos_on_leave = value.get().expect("type checked upstream"),
            "producer-timeout" => {
                settings.producer_timeout =
                    Duration::from_secs(value.get::<u32>().expect("type checked upstream") as u64)
            }
            "decode" => settings.decode = value.get().expect("type checked upstream"),
            "latency" => settings.latency_ms = value.get().expect("type checked upstream"),
            other => unreachable!("unknown property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        if pspec.name() == "stats" {
            return self.stats().to_value();
        }
        let settings = self.settings.lock().unwrap();
        if let Some(value) = settings.common.get(pspec.name()) {
            return value;
        }
        match pspec.name() {
            "producer" => settings.producer.to_value(),
            "producer-timeout" => (settings.producer_timeout.as_secs() as u32).to_value(),
            "eos-on-leave" => settings.eos_on_leave.to_value(),
            "decode" => settings.decode.to_value(),
            "latency" => settings.latency_ms.to_value(),
            other => unreachable!("unknown property {other}"),
        }
    }

    fn signals() -> &'static [glib::subclass::Signal] {
        static SIGNALS: LazyLock<Vec<glib::subclass::Signal>> = LazyLock::new(|| {
            common::data_channel_signals(|element, label, peer, payload| {
                let element = element.downcast_ref::<super::PeerSrc>().expect("a peersrc");
                element.imp().send_on_channels(label, peer, &payload)
            })
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
            let video = gst::Caps::builder_full()
                .structure(gst::Structure::new_empty("video/x-raw"))
                .structure(gst::Structure::new_empty("video/x-vp8"))
                .structure(gst::Structure::new_empty("video/x-vp9"))
                .structure(gst::Structure::new_empty("video/x-h264"))
                .build();
            let audio = gst::Caps::builder_full()
                .structure(gst::Structure::new_empty("audio/x-raw"))
                .structure(gst::Structure::new_empty("audio/x-opus"))
                .build();
            vec![
                gst::PadTemplate::new(
                    "video_%u",
                    gst::PadDirection::Src,
                    gst::PadPresence::Sometimes,
                    &video,
                )
                .expect("valid template"),
                gst::PadTemplate::new(
                    "audio_%u",
                    gst::PadDirection::Src,
                    gst::PadPresence::Sometimes,
                    &audio,
                )
                .expect("valid template"),
            ]
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
            gst::element_imp_error!(self, gst::ResourceError::Settings, ("{}", err));
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
                    running.session.clone().map(|s| (s, running.events.clone()))
                })
            };
            if let Some((session, events)) = session
                && is_inside(source, &session.webrtcbin)
            {
                let reason = format!("{} ({})", error.error(), source.name());
                let _ = events.send(Event::Session(
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
    fn start(&self) -> Result<(), String> {
        let settings = self.settings.lock().unwrap().clone();
        let validated = settings.common.validate(settings.latency_ms)?;
        let session_config = validated.session;
        let (signaller, signaller_events) = signaller::spawn(SignallerConfig {
            uri: settings.common.uri.clone(),
            peer_id: settings.common.peer_id.clone(),
            meta: validated.meta,
            role: Role::Consumer {
                producer: settings.producer.clone(),
                producer_timeout: settings.producer_timeout,
            },
            embedded_port: settings.common.port,
            tls_ca_pem: validated.tls_ca_pem,
        })?;
        // Held until `running` is set: the event thread may already have a
        // session to start, and must find it.
        let mut state = self.state.lock().unwrap();
        let element = self.obj().downgrade();
        let event_loop = EventLoop::start(
            format!("{}-events", self.obj().name()),
            signaller_events,
            move |event| {
                if let Some(element) = element.upgrade() {
                    element.imp().on_event(event);
                }
            },
        )?;
        let events = event_loop.sender.clone();
        state.running = Some(Running {
            signaller,
            events,
            event_loop,
            session_config,
            session: None,
        });
        Ok(())
    }

    fn stop(&self) {
        let (running, outputs) = {
            let mut state = self.state.lock().unwrap();
            state.streams_ended = false;
            (state.running.take(), std::mem::take(&mut state.outputs))
        };
        let Some(mut running) = running else { return };
        running.event_loop.stop();
        if let Some(session) = running.session.take() {
            running.signaller.send(SignallerCommand::EndSession {
                session: session.id.clone(),
                reason: "the receiver stopped".into(),
            });
            self.remove_session(&session, outputs);
        }
    }

    fn remove_session(&self, session: &Arc<WebRtcSession>, outputs: Vec<Output>) {
        discard(self.obj().upcast_ref(), &session.webrtcbin);
        for output in outputs {
            output.remove(self.obj().upcast_ref());
        }
    }

    fn on_event(&self, event: Event) {
        match event {
            Event::Signaller(event) => self.on_signaller_event(event),
            Event::Session(_, SessionNotice::Connected) => {
                gst::info!(CAT, imp = self, "connected to the producer");
            }
            Event::Session(session, SessionNotice::Failed(reason)) => {
                let producer = self
                    .current_session()
                    .filter(|s| s.id == session)
                    .map(|s| s.peer.clone());
                if self.state.lock().unwrap().streams_ended {
                    // It said goodbye first; its connection closing after
                    // that is no news.
                    return;
                }
                match producer {
                    // A producer whose connection dies has left as surely
                    // as one that says goodbye (and a browser closing its
                    // connection often says so over UDP before the
                    // goodbye arrives through the server): files are
                    // finalized either way.
                    Some(producer) if self.settings.lock().unwrap().eos_on_leave => {
                        gst::element_imp_warning!(
                            self,
                            gst::ResourceError::Read,
                            ("the connection with producer \"{producer}\" ended: {reason}")
                        );
                        self.signaller_send(SignallerCommand::EndSession {
                            session: session.clone(),
                            reason: reason.clone(),
                        });
                        self.end_streams(&producer, &reason);
                    }
                    _ => self.fail(
                        &session,
                        &format!("the session with the producer failed: {reason}"),
                        true,
                    ),
                }
            }
            Event::Session(_, SessionNotice::Message { label, payload }) => {
                if let Some(session) = self.current_session() {
                    common::announce_message(
                        self.obj().upcast_ref(),
                        &session.peer,
                        &label,
                        &payload,
                    );
                }
            }
            Event::InputReady | Event::Stop => {}
        }
    }

    /// Sends on data channel `label` to the producer (`peer`, when given,
    /// must name it).
    fn send_on_channels(&self, label: &str, peer: Option<&str>, payload: &Payload) -> bool {
        match self.current_session() {
            Some(session) if peer.is_none_or(|peer| session.peer == peer) => {
                session.channels.send(label, payload)
            }
            _ => false,
        }
    }

    fn on_signaller_event(&self, event: SignallerEvent) {
        match event {
            SignallerEvent::Ready {
                peer_id,
                room,
                watch_url,
                embedded,
            } => {
                common::announce_ready(
                    self.obj().upcast_ref(),
                    &peer_id,
                    &room,
                    watch_url.as_deref(),
                    embedded,
                );
            }
            SignallerEvent::SessionStarted { session, peer } => self.start_session(session, peer),
            SignallerEvent::SessionRequested { session, .. } => {
                self.signaller_send(SignallerCommand::EndSession {
                    session,
                    reason: "peersrc only receives".into(),
                });
            }
            SignallerEvent::RemoteDescription {
                session,
                description,
            } => {
                let Some(current) = self.current_session().filter(|s| s.id == session) else {
                    return;
                };
                if description.kind != peer_signalling::protocol::SdpKind::Offer {
                    self.fail(
                        &session,
                        "the producer sent an answer where an offer was expected",
                        true,
                    );
                    return;
                }
                if let Err(reason) = current.handle_remote_description(description) {
                    self.fail(
                        &session,
                        &format!("the producer's offer is unusable: {reason}"),
                        true,
                    );
                }
            }
            SignallerEvent::RemoteCandidate { session, candidate } => {
                if let Some(current) = self.current_session().filter(|s| s.id == session) {
                    current.add_remote_candidate(candidate);
                }
            }
            SignallerEvent::SessionEnded { session, reason } => {
                let producer = self
                    .current_session()
                    .filter(|s| s.id == session)
                    .map(|s| s.peer.clone());
                let Some(producer) = producer else { return };
                if self.settings.lock().unwrap().eos_on_leave {
                    self.end_streams(&producer, &reason);
                } else {
                    self.fail(
                        &session,
                        &format!("producer \"{producer}\" ended the session: {reason}"),
                        false,
                    );
                }
            }
            SignallerEvent::Message { from, data } => {
                gst::debug!(CAT, imp = self, "message from {from}: {data}");
            }
            SignallerEvent::Warning(text) => {
                gst::element_imp_warning!(self, gst::ResourceError::Failed, ("{}", text));
            }
            SignallerEvent::Error(text) => {
                gst::element_imp_error!(self, gst::ResourceError::OpenReadWrite, ("{}", text));
            }
        }
    }

    fn signaller_send(&self, command: SignallerCommand) {
        if let Some(running) = &self.state.lock().unwrap().running {
            running.signaller.send(command);
        }
    }

    fn current_session(&self) -> Option<Arc<WebRtcSession>> {
        self.state.lock().unwrap().running.as_ref()?.session.clone()
    }

    fn start_session(&self, session_id: String, producer: String) {
        let (config, signaller, events) = {
            let state = self.state.lock().unwrap();
            let Some(running) = state.running.as_ref() else {
                return;
            };
            (
                running.session_config.clone(),
                running.signaller.clone(),
                running.events.clone(),
            )
        };
        let on_notice: NoticeHandler = Arc::new(move |session: &str, notice| {
            let _ = events.send(Event::Session(session.to_owned(), notice));
        });
        let session =
            match WebRtcSession::new(&session_id, &producer, &config, signaller, on_notice) {
                Ok(session) => session,
                Err(err) => return self.fail(&session_id, &err, true),
            };
        let clock = Arc::new(MediaClock::new());
        let element = self.obj().downgrade();
        let probe_clock = clock.clone();
        session.webrtcbin.connect_pad_added(move |_, pad| {
            if pad.direction() != gst::PadDirection::Src {
                return;
            }
            let clock = probe_clock.clone();
            pad.add_probe(
                gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
                move |_, _| {
                    clock.touch();
                    gst::PadProbeReturn::Ok
                },
            );
            if let Some(element) = element.upgrade() {
                element.imp().add_output(pad);
            }
        });
        if self.settings.lock().unwrap().eos_on_leave {
            self.watch_media(&session_id, clock);
        }
        if let Err(err) = self.obj().add(&session.webrtcbin) {
            return self.fail(&session_id, &err.to_string(), true);
        }
        let _ = session.webrtcbin.sync_state_with_parent();
        if let Some(running) = self.state.lock().unwrap().running.as_mut() {
            running.session = Some(session);
        }
        gst::info!(
            CAT,
            imp = self,
            "receiving producer {producer} (session {session_id})"
        );
    }

    /// Ends the session as failed when its media stops for
    /// [`MEDIA_TIMEOUT`] (see there why); the thread ends with the session.
    fn watch_media(&self, session_id: &str, clock: Arc<MediaClock>) {
        let element = self.obj().downgrade();
        let session_id = session_id.to_owned();
        let spawned = std::thread::Builder::new()
            .name("peersrc-media-watch".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(Duration::from_secs(1));
                    let Some(element) = element.upgrade() else {
                        return;
                    };
                    let imp = element.imp();
                    let current = imp.current_session().is_some_and(|s| s.id == session_id);
                    if !current || imp.state.lock().unwrap().streams_ended {
                        return;
                    }
                    if clock
                        .silent_for()
                        .is_some_and(|silent| silent >= MEDIA_TIMEOUT)
                    {
                        let reason = format!(
                            "no media from the producer for {} s",
                            MEDIA_TIMEOUT.as_secs()
                        );
                        if let Some(running) = imp.state.lock().unwrap().running.as_ref() {
                            let _ = running.events.send(Event::Session(
                                session_id.clone(),
                                SessionNotice::Failed(reason),
                            ));
                        }
                        return;
                    }
                }
            });
        if let Err(err) = spawned {
            gst::warning!(CAT, imp = self, "no media watchdog: {err}");
        }
    }

    /// A track arrived (streaming thread): expose it as a pad.
    fn add_output(&self, rtp_pad: &gst::Pad) {
        let decode = self.settings.lock().unwrap().decode;
        let name_for = |kind: MediaKind| {
            let mut state = self.state.lock().unwrap();
            let counter = match kind {
                MediaKind::Video => &mut state.next_video,
                MediaKind::Audio => &mut state.next_audio,
            };
            *counter += 1;
            format!("{}_{}", kind.as_str(), *counter - 1)
        };
        match output::build(self.obj().upcast_ref(), rtp_pad, decode, name_for) {
            Ok(output) => {
                let ghost = output.ghost.clone();
                gst::info!(
                    CAT,
                    imp = self,
                    "track {} ({:?})",
                    ghost.name(),
                    output.codec
                );
                self.state.lock().unwrap().outputs.push(output);
                let _ = ghost.set_active(true);
                let _ = self.obj().add_pad(&ghost);
            }
            Err(err) => {
                gst::element_imp_warning!(self, gst::StreamError::CodecNotFound, ("{}", err));
                // Drain the unusable track so it does not stop the others.
                if let Ok(sink) = gst::ElementFactory::make("fakesink")
                    .property("async", false)
                    .build()
                {
                    let _ = self.obj().add(&sink);
                    let _ = sink.sync_state_with_parent();
                    let _ =
                        rtp_pad.link(&sink.static_pad("sink").expect("fakesink has a sink pad"));
                }
            }
        }
    }

    fn output_entry_pads(&self) -> Vec<gst::Pad> {
        let state = self.state.lock().unwrap();
        state
            .outputs
            .iter()
            .filter_map(|output| output.entry_pad())
            .collect()
    }

    /// The producer left and the streams end here: EOS down every output
    /// (so muxers finalize their files) and a message saying who left.
    fn end_streams(&self, producer: &str, reason: &str) {
        if std::mem::replace(&mut self.state.lock().unwrap().streams_ended, true) {
            return;
        }
        for pad in self.output_entry_pads() {
            pad.send_event(gst::event::Eos::new());
        }
        let structure = gst::Structure::builder("peer-producer-left")
            .field("producer", producer)
            .field("reason", reason)
            .build();
        let _ = self.obj().post_message(
            gst::message::Element::builder(structure)
                .src(&*self.obj())
                .build(),
        );
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
        gst::element_imp_error!(self, gst::ResourceError::Read, ("{}", reason));
    }

    fn stats(&self) -> gst::Structure {
        let mut builder = gst::Structure::builder("peersrc-stats");
        if let Some(session) = self.current_session() {
            builder = builder
                .field("producer", &session.peer)
                .field("session", &session.id);
            if let Some(stats) = session.stats() {
                builder = builder.field("webrtc", stats);
            }
        }
        builder.build()
    }
}
