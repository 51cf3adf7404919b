use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::output::{self, Output};
use super::settings::{self, Settings};
use crate::base::{self, Link};
use crate::codec::MediaKind;
use crate::common;
use crate::datachannel::Payload;
use crate::error::ElementError;
use crate::events::Event;
use crate::ice_restart::Triggers;
use crate::receive::ReceivePolicy;
use crate::session::{
    NoticeHandler, SessionConfig, SessionNotice, WebRtcSession, announce_restart, discard,
    is_inside,
};
use crate::signaller::settings::SignallerSettings;
use crate::signaller::{
    DataChannelPlan, Negotiation, Role, SignallerCommand, SignallerConfig, SignallerEvent,
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

    fn remove_session(&self, receiving: Receiving) {
        discard(self.obj().upcast_ref(), &receiving.session.webrtcbin);
        for output in receiving.outputs {
            output.remove(self.obj().upcast_ref());
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

    /// Every `TICK`: the media watchdog (see [`MEDIA_TIMEOUT`]), each
    /// session's ICE restart policy, and fresh statistics for the `stats`
    /// property.
    fn tick(&self) {
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

    /// `send-message`: an application message through the signalling
    /// server, to `peer` or the whole room.
    fn send_message(&self, peer: Option<&str>, json: &str) -> bool {
        let data = match common::parse_message(json) {
            Ok(data) => data,
            Err(err) => {
                ElementError::Settings(err).post_warning(self.obj().upcast_ref());
                return false;
            }
        };
        let state = self.state.lock().unwrap();
        let Some(running) = state.running.as_ref() else {
            return false;
        };
        running.link.signaller.send(SignallerCommand::Message {
            to: peer.map(str::to_owned),
            data,
        });
        true
    }

    /// Sends on data channel `label` to the producer (`peer`, when given,
    /// must name it; with PeerJS, one of the callers).
    fn send_on_channels(&self, label: &str, peer: Option<&str>, payload: &Payload) -> bool {
        let sessions: Vec<Arc<WebRtcSession>> = {
            let state = self.state.lock().unwrap();
            let Some(running) = state.running.as_ref() else {
                return false;
            };
            running
                .sessions
                .iter()
                .filter(|r| peer.is_none_or(|peer| r.session.peer == peer))
                .map(|r| r.session.clone())
                .collect()
        };
        let mut sent = false;
        for session in sessions {
            sent |= session.channels.send(label, payload);
        }
        sent
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
            SignallerEvent::SessionStarted {
                session,
                peer,
                negotiation,
                ice_servers,
                data_channels,
            } => self.start_session(session, peer, negotiation, &ice_servers, data_channels),
            SignallerEvent::RemoteDescription {
                session,
                description,
            } => {
                let found = {
                    let mut state = self.state.lock().unwrap();
                    state
                        .running
                        .as_mut()
                        .and_then(|running| running.receiving(&session))
                        .map(|r| (r.session.clone(), r.offered))
                };
                let Some((current, offered)) = found else {
                    return;
                };
                let expected = if offered {
                    peer_signalling::protocol::SdpKind::Answer
                } else {
                    peer_signalling::protocol::SdpKind::Offer
                };
                if description.kind != expected {
                    self.fail(
                        &session,
                        &format!(
                            "the producer sent an {:?} where an {expected:?} was expected",
                            description.kind
                        ),
                        true,
                    );
                    return;
                }
                if let Err(reason) = current.handle_remote_description(description) {
                    self.fail(
                        &session,
                        &format!("the producer's description is unusable: {reason}"),
                        true,
                    );
                }
            }
            SignallerEvent::RemoteCandidate { session, candidate } => {
                if let Some(current) = self.find_session(&session) {
                    current.add_remote_candidate(candidate);
                }
            }
            SignallerEvent::SessionEnded { session, reason } => {
                let Some((producer, _)) = self.session_peer(&session) else {
                    return;
                };
                if self.settings.lock().unwrap().eos_on_leave {
                    self.end_streams(&session, &producer, &reason);
                } else {
                    self.fail(
                        &session,
                        &format!("producer \"{producer}\" ended the session: {reason}"),
                        false,
                    );
                }
            }
            SignallerEvent::Message { from, data } => {
                common::announce_signalling_message(self.obj().upcast_ref(), &from, &data);
            }
            SignallerEvent::SignallingLost { reason } => {
                common::announce_signalling_lost(self.obj().upcast_ref(), &reason);
            }
            SignallerEvent::SignallingRestored { after } => {
                common::announce_signalling_restored(self.obj().upcast_ref(), after);
            }
            SignallerEvent::Warning(error) => {
                ElementError::from(error).post_warning(self.obj().upcast_ref());
            }
            SignallerEvent::Error(error) => {
                ElementError::from(error).post_error(self.obj().upcast_ref());
            }
        }
    }

    fn signaller_send(&self, command: SignallerCommand) {
        if let Some(running) = &self.state.lock().unwrap().running {
            running.link.signaller.send(command);
        }
    }

    /// The first session (the producer's, on our protocol and WHEP).
    fn current_session(&self) -> Option<Arc<WebRtcSession>> {
        let state = self.state.lock().unwrap();
        Some(state.running.as_ref()?.sessions.first()?.session.clone())
    }

    fn start_session(
        &self,
        session_id: String,
        producer: String,
        negotiation: Negotiation,
        ice_servers: &[String],
        data_channels: Option<DataChannelPlan>,
    ) {
        // A session that replaces one with the same peer (a WHEP server's
        // counter-offer starts the session again, a PeerJS caller calls
        // again): the old one goes quietly.
        let replaced: Vec<Receiving> = {
            let mut state = self.state.lock().unwrap();
            match state.running.as_mut() {
                Some(running) => {
                    let (old, kept) = std::mem::take(&mut running.sessions)
                        .into_iter()
                        .partition(|r| r.session.peer == producer);
                    running.sessions = kept;
                    old
                }
                None => Vec::new(),
            }
        };
        for old in replaced {
            self.remove_session(old);
        }
        let (config, signaller, events) = {
            let state = self.state.lock().unwrap();
            let Some(running) = state.running.as_ref() else {
                return;
            };
            (
                running.session_config.clone(),
                running.link.signaller.clone(),
                running.link.events.clone(),
            )
        };
        let on_notice: NoticeHandler = Arc::new(move |session: &str, notice| {
            events.send(Event::Session(session.to_owned(), notice));
        });
        let session = match WebRtcSession::new(
            &session_id,
            &producer,
            &config,
            ice_servers,
            signaller,
            on_notice,
        ) {
            Ok(session) => session,
            Err(err) => return self.fail(&session_id, &err, true),
        };
        let clock = Arc::new(MediaClock::new());
        let element = self.obj().downgrade();
        let probe_clock = clock.clone();
        let id = session_id.clone();
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
                element.imp().add_output(&id, pad);
            }
        });
        if let Err(err) = self.obj().add(&session.webrtcbin) {
            return self.fail(&session_id, &err.to_string(), true);
        }
        let _ = session.webrtcbin.sync_state_with_parent();
        let (eos_on_leave, max_bitrate) = {
            let settings = self.settings.lock().unwrap();
            (settings.eos_on_leave, settings.max_bitrate)
        };
        session.receive_with(ReceivePolicy {
            max_bitrate: (max_bitrate > 0).then_some(max_bitrate),
        });
        if let Some(running) = self.state.lock().unwrap().running.as_mut() {
            running.sessions.push(Receiving {
                session: session.clone(),
                offered: negotiation == Negotiation::Offer,
                media: eos_on_leave.then_some(clock),
                outputs: Vec::new(),
                ended: false,
            });
        }
        if let Some(framing) = data_channels.as_ref().and_then(|plan| plan.framing.clone()) {
            session.channels.set_framing(framing);
        }
        let channels = match data_channels {
            Some(plan) => plan.open,
            None => config.data_channels.clone(),
        };
        match negotiation {
            Negotiation::AwaitOffer => {}
            Negotiation::Offer => {
                session.add_receive_transceivers();
                session.create_data_channels(&channels);
                session.create_offer();
            }
            Negotiation::Answer(offer) => {
                if let Err(reason) = session.handle_remote_description(offer) {
                    return self.fail(
                        &session_id,
                        &format!("the producer's offer is unusable: {reason}"),
                        true,
                    );
                }
            }
        }
        gst::info!(
            CAT,
            imp = self,
            "receiving producer {producer} (session {session_id})"
        );
    }

    /// A track arrived (streaming thread): expose it as a pad.
    fn add_output(&self, session: &str, rtp_pad: &gst::Pad) {
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
                {
                    let mut state = self.state.lock().unwrap();
                    match state.running.as_mut().and_then(|r| r.receiving(session)) {
                        Some(receiving) => receiving.outputs.push(output),
                        // The session ended meanwhile: nothing to expose.
                        None => {
                            drop(state);
                            output.remove(self.obj().upcast_ref());
                            return;
                        }
                    }
                }
                let _ = ghost.set_active(true);
                // Posted before the pad appears, so a bus sync handler
                // knows whose track a `pad-added` pad is (PeerJS callers
                // share the element) and how many tracks to wait for.
                self.announce_track(session, ghost.upcast_ref());
                let _ = self.obj().add_pad(&ghost);
            }
            Err(err) => {
                ElementError::MissingElement(err.to_string()).post_warning(self.obj().upcast_ref());
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

    /// `peer-producer-track` (fields `producer`, `session`, `pad`,
    /// `tracks`: the audio and video tracks the producer's description
    /// sends, so a recorder knows when it has them all).
    fn announce_track(&self, session: &str, pad: &gst::Pad) {
        let Some(receiving) = self.find_session(session) else {
            return;
        };
        let sent_tracks = receiving
            .webrtcbin
            .property::<Option<gst_webrtc::WebRTCSessionDescription>>("remote-description")
            .map_or(0, |description| sent_media_count(description.sdp()));
        let structure = gst::Structure::builder("peer-producer-track")
            .field("producer", receiving.peer.as_str())
            .field("session", session)
            .field("pad", pad.name().as_str())
            .field("tracks", sent_tracks)
            .build();
        let _ = self.obj().post_message(
            gst::message::Element::builder(structure)
                .src(&*self.obj())
                .build(),
        );
    }

    fn output_entry_pads(&self) -> Vec<gst::Pad> {
        let state = self.state.lock().unwrap();
        state
            .running
            .iter()
            .flat_map(|running| running.sessions.iter())
            .flat_map(|r| r.outputs.iter())
            .filter_map(|output| output.entry_pad())
            .collect()
    }

    /// A producer (caller) left and its streams end here: EOS down each of
    /// its outputs (so muxers finalize their files) and a message saying
    /// who left.
    fn end_streams(&self, session: &str, producer: &str, reason: &str) {
        let pads: Vec<gst::Pad> = {
            let mut state = self.state.lock().unwrap();
            let Some(receiving) = state.running.as_mut().and_then(|r| r.receiving(session)) else {
                return;
            };
            if std::mem::replace(&mut receiving.ended, true) {
                return;
            }
            receiving
                .outputs
                .iter()
                .filter_map(|output| output.entry_pad())
                .collect()
        };
        for pad in pads {
            pad.send_event(gst::event::Eos::new());
        }
        let structure = gst::Structure::builder("peer-producer-left")
            .field("producer", producer)
            .field("session", session)
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
        ElementError::Session(reason.to_owned()).post_error(self.obj().upcast_ref());
    }

    fn stats(&self) -> gst::Structure {
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

/// Audio and video sections a remote description sends on (not
/// `recvonly` or `inactive`, not rejected with port 0).
fn sent_media_count(sdp: &gst_sdp::SDPMessageRef) -> u32 {
    sdp.medias()
        .filter(|media| matches!(media.media(), Some("audio" | "video")) && media.port() != 0)
        .filter(|media| {
            !media
                .attributes()
                .any(|a| matches!(a.key(), "recvonly" | "inactive"))
        })
        .count() as u32
}
