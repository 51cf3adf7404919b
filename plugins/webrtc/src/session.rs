//! One WebRTC session with one remote peer: a webrtcbin, its negotiation
//! (offer or answer, whichever side the signaller says offers) and its
//! ICE, wired to the signaller. Shared by peersink and peersrc.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use peer_signalling::protocol::sdp as protocol_sdp;
use peer_signalling::protocol::{IceCandidate, SdpKind, SessionDescription};

use crate::codec::{Codec, MediaKind};
use crate::datachannel::{self, ChannelSpec, Channels, Payload};
use crate::ice;
use crate::ice_restart::{self, Action, IceHealth, RestartPolicy};
use crate::receive::{self, ReceivePolicy};
use crate::signaller::{SignallerCommand, SignallerHandle};

mod recovery;
use recovery::ArrivalClock;
pub use recovery::announce_restart;

/// Stands for end-of-candidates among held (m-line, candidate) pairs.
const END_OF_CANDIDATES: u32 = u32::MAX;

/// ICE and jitter settings common to every session of an element.
#[derive(Debug, Clone, Default)]
pub struct SessionConfig {
    pub data_channels: Vec<ChannelSpec>,
    pub stun_server: Option<String>,
    pub turn_servers: Vec<String>,
    /// Local addresses ICE may use; empty means libnice's own choice.
    pub ice_addresses: Vec<IpAddr>,
    pub latency_ms: u32,
    /// Only relayed candidate pairs (through TURN).
    pub relay_only: bool,
    /// What may start an ICE restart (by the signalling protocol).
    pub ice_restarts: ice_restart::Triggers,
}

/// What a session reports to its element.
#[derive(Debug, Clone)]
pub enum SessionNotice {
    Connected,
    /// The session cannot work; the element should end it.
    Failed(String),
    /// A message arrived on a data channel.
    Message {
        label: String,
        payload: Payload,
    },
    /// Healing the media path by ICE restart (`ice_restart.rs`).
    IceRestart(RestartNotice),
}

/// What the element posts on the bus about an ICE restart.
#[derive(Debug, Clone, PartialEq)]
pub enum RestartNotice {
    /// `by_peer`: the peer's offer restarted ICE; we answered it.
    Started {
        attempt: u32,
        reason: String,
        by_peer: bool,
    },
    Succeeded {
        attempts: u32,
        after: Duration,
    },
    /// The session is ended right after (a `Failed` notice follows).
    Failed {
        attempts: u32,
        reason: String,
    },
}

pub type NoticeHandler = Arc<dyn Fn(&str, SessionNotice) + Send + Sync>;

pub struct WebRtcSession {
    pub id: String,
    pub peer: String,
    pub webrtcbin: gst::Element,
    signaller: SignallerHandle,
    on_notice: NoticeHandler,
    /// Remote candidates that arrived before the remote description; `None`
    /// once it is set and candidates can be added directly.
    early_candidates: Mutex<Option<Vec<(u32, String)>>>,
    /// Our candidates gathered before our first description went out
    /// (they must not reach the peer ahead of it); `None` once it has.
    unsent_candidates: Mutex<Option<Vec<(u32, String)>>>,
    pub channels: Channels,
    /// Whether answering turns NACK on (done once).
    nack_requested: AtomicBool,
    /// webrtcbin's statistics as last fetched (see `refresh_stats`).
    stats: Mutex<Option<gst::Structure>>,
    /// An ICE restart under way: the credentials and candidates our next
    /// local description must carry (webrtcbin would reuse its old ones).
    restart: Mutex<Option<ice::Restarted>>,
    /// We made the offer of this session (so a restart is ours to make).
    offered: AtomicBool,
    /// When to restart ICE, and when to give up (`ice_restart.rs`).
    recovery: Mutex<RestartPolicy>,
    /// When something last arrived from the peer (any packet past ICE:
    /// media, RTCP, DTLS, SCTP), for `recovery`.
    arrivals: Arc<ArrivalClock>,
    /// The probe feeding `arrivals` is on webrtcbin's nicesrc.
    arrivals_watched: AtomicBool,
    /// Set when this session receives media: what our descriptions ask
    /// of the sender (congestion feedback, a bitrate cap).
    receiving: Mutex<Option<ReceivePolicy>>,
    /// `ice-transport-policy=relay`, and whether a relay candidate came.
    relay_only: bool,
    relayed: AtomicBool,
    /// The TURN servers in use, without credentials, for messages.
    turn_servers: String,
}

impl WebRtcSession {
    /// `ice_servers` are the ones the signalling protocol handed out for
    /// this session (`stun://`, `turn(s)://user:pass@...`), besides the
    /// element's own.
    pub fn new(
        id: &str,
        peer: &str,
        config: &SessionConfig,
        ice_servers: &[String],
        signaller: SignallerHandle,
        on_notice: NoticeHandler,
    ) -> Result<Arc<Self>, String> {
        let webrtcbin = gst::ElementFactory::make("webrtcbin")
            .name(format!("session-{id}"))
            .property_from_str("bundle-policy", "max-bundle")
            .property("latency", config.latency_ms)
            .build()
            .map_err(|_| {
                "the webrtcbin element is missing (gstreamer1.0-plugins-bad, gstreamer1.0-nice)"
                    .to_owned()
            })?;
        if let Some(stun) = &config.stun_server {
            webrtcbin.set_property("stun-server", stun);
        }
        if config.relay_only {
            webrtcbin.set_property(
                "ice-transport-policy",
                gst_webrtc::WebRTCICETransportPolicy::Relay,
            );
        }
        for server in ice_servers {
            if server.starts_with("stun://") && config.stun_server.is_none() {
                webrtcbin.set_property("stun-server", server);
            }
        }
        let announced = ice_servers.iter().filter(|s| !s.starts_with("stun://"));
        for turn in config.turn_servers.iter().chain(announced) {
            if !webrtcbin.emit_by_name::<bool>("add-turn-server", &[turn]) {
                return Err(format!("webrtcbin rejected TURN server \"{turn}\""));
            }
        }
        ice::configure_agent(&webrtcbin, &config.ice_addresses)?;
        keep_sctpenc_stopping(&webrtcbin);

        let session = Arc::new(WebRtcSession {
            id: id.to_owned(),
            peer: peer.to_owned(),
            webrtcbin: webrtcbin.clone(),
            signaller,
            on_notice,
            early_candidates: Mutex::new(Some(Vec::new())),
            unsent_candidates: Mutex::new(Some(Vec::new())),
            channels: Channels::default(),
            nack_requested: Default::default(),
            stats: Mutex::new(None),
            restart: Mutex::new(None),
            offered: AtomicBool::new(false),
            recovery: Mutex::new(RestartPolicy::new(
                Instant::now(),
                false,
                ice_restart::Config {
                    triggers: config.ice_restarts,
                    ..ice_restart::Config::default()
                },
            )),
            arrivals: Arc::new(ArrivalClock::new()),
            arrivals_watched: AtomicBool::new(false),
            receiving: Mutex::new(None),
            relay_only: config.relay_only,
            relayed: AtomicBool::new(false),
            turn_servers: turn_hosts(&config.turn_servers, ice_servers),
        });

        let weak = Arc::downgrade(&session);
        webrtcbin.connect("on-ice-candidate", false, move |values| {
            let mline = values[1].get::<u32>().ok()?;
            let candidate = values[2].get::<String>().ok()?;
            let session = weak.upgrade()?;
            if candidate.contains(" typ relay") {
                session.relayed.store(true, Ordering::Release);
            }
            let mut unsent = session.unsent_candidates.lock().unwrap();
            match unsent.as_mut() {
                Some(held) => held.push((mline, candidate)),
                None => session.send_candidate(mline, candidate),
            }
            None
        });

        // End of gathering goes out as a null candidate, after the
        // candidates (webrtcbin reports both from its one operation
        // queue): a WHIP client's answer is sent as soon as it is complete
        // instead of after a deadline.
        let weak = Arc::downgrade(&session);
        webrtcbin.connect_notify(Some("ice-gathering-state"), move |bin, _| {
            let state = bin.property::<gst_webrtc::WebRTCICEGatheringState>("ice-gathering-state");
            if state != gst_webrtc::WebRTCICEGatheringState::Complete {
                return;
            }
            let Some(session) = weak.upgrade() else {
                return;
            };
            // Relay only, and no relay: nothing can ever connect. Say why
            // now instead of letting the connection fail unexplained.
            if session.relay_only && !session.relayed.load(Ordering::Acquire) {
                session.notify(SessionNotice::Failed(format!(
                    "no relayed candidate was gathered with ice-transport-policy=relay: the TURN \
                     server ({}) refused the credentials or cannot be reached",
                    session.turn_servers
                )));
                return;
            }
            let mut unsent = session.unsent_candidates.lock().unwrap();
            match unsent.as_mut() {
                Some(held) => held.push((END_OF_CANDIDATES, String::new())),
                None => session.send_candidate(END_OF_CANDIDATES, String::new()),
            }
        });

        // Channels the peer opens.
        let weak = Arc::downgrade(&session);
        webrtcbin.connect("on-data-channel", false, move |values| {
            let channel = values[1].get::<gst_webrtc::WebRTCDataChannel>().ok()?;
            let session = weak.upgrade()?;
            session.channels.adopt(&channel);
            session.watch_channel(&channel);
            None
        });

        let weak = Arc::downgrade(&session);
        webrtcbin.connect_notify(Some("ice-connection-state"), move |bin, _| {
            let Some(session) = weak.upgrade() else {
                return;
            };
            use gst_webrtc::WebRTCICEConnectionState as State;
            let health = match bin.property::<State>("ice-connection-state") {
                State::Connected | State::Completed => IceHealth::Connected,
                State::Disconnected => IceHealth::Disconnected,
                State::Failed => IceHealth::Failed,
                State::New | State::Checking => IceHealth::Checking,
                _ => return,
            };
            session
                .recovery
                .lock()
                .unwrap()
                .on_ice(Instant::now(), health);
        });

        let weak = Arc::downgrade(&session);
        webrtcbin.connect_notify(Some("connection-state"), move |bin, _| {
            let Some(session) = weak.upgrade() else {
                return;
            };
            let state = bin.property::<gst_webrtc::WebRTCPeerConnectionState>("connection-state");
            match state {
                gst_webrtc::WebRTCPeerConnectionState::Connected => {
                    session.watch_arrivals();
                    session.notify(SessionNotice::Connected)
                }
                gst_webrtc::WebRTCPeerConnectionState::Failed => {
                    // Once connected, a failure is the path's, and the
                    // recovery policy heals it by ICE restart (or ends the
                    // session when it cannot); before, the negotiation
                    // failed and there is nothing to heal.
                    if session.recovery.lock().unwrap().tolerates_failure() {
                        gst::info!(
                            gst::CAT_DEFAULT,
                            "session {}: connection failed; ICE restart under way or due",
                            session.id
                        );
                        return;
                    }
                    session.notify(SessionNotice::Failed(
                        "the connection failed (ICE or DTLS)".into(),
                    ))
                }
                _ => {}
            }
        });
        Ok(session)
    }

    /// This session receives media (peersrc): our descriptions ask the
    /// sender for transport-cc feedback and announce `policy`'s cap, and
    /// the RTP session enforces it. Call before negotiating.
    pub fn receive_with(&self, policy: ReceivePolicy) {
        *self.receiving.lock().unwrap() = Some(policy);
        receive::configure(&self.webrtcbin, policy);
    }

    /// Our description as the receiving side wants it (see
    /// [`Self::receive_with`]); unchanged for a session that only sends.
    fn shaped(
        &self,
        description: gst_webrtc::WebRTCSessionDescription,
    ) -> gst_webrtc::WebRTCSessionDescription {
        let Some(policy) = *self.receiving.lock().unwrap() else {
            return description;
        };
        let mut sdp = description.sdp().to_owned();
        match description.type_() {
            gst_webrtc::WebRTCSDPType::Answer => {
                let offer = self
                    .webrtcbin
                    .property::<Option<gst_webrtc::WebRTCSessionDescription>>("remote-description");
                let Some(offer) = offer else {
                    return description;
                };
                receive::shape_answer(&mut sdp, offer.sdp(), &policy);
            }
            gst_webrtc::WebRTCSDPType::Offer => receive::shape_offer(&mut sdp, &policy),
            _ => return description,
        }
        gst_webrtc::WebRTCSessionDescription::new(description.type_(), sdp)
    }

    /// Opens the element's own data channels; call before the offer.
    pub fn create_data_channels(self: &Arc<Self>, specs: &[ChannelSpec]) {
        for channel in self.channels.create(&self.webrtcbin, specs) {
            self.watch_channel(&channel);
        }
    }

    fn watch_channel(self: &Arc<Self>, channel: &gst_webrtc::WebRTCDataChannel) {
        let weak = Arc::downgrade(self);
        let framing = self.channels.framing();
        datachannel::watch(channel, move |label, payload| {
            let Some(session) = weak.upgrade() else {
                return;
            };
            // The protocol's framing, when it has one, makes whole
            // messages of what arrives (chunks wait for their siblings).
            let payload = match &framing {
                None => Some(payload),
                Some(framing) => framing.decode(payload).unwrap_or_else(|err| {
                    gst::warning!(
                        gst::CAT_DEFAULT,
                        "unreadable {} message on \"{label}\" from {}: {err}",
                        framing.name(),
                        session.peer
                    );
                    None
                }),
            };
            if let Some(payload) = payload {
                session.notify(SessionNotice::Message { label, payload });
            }
        });
    }

    fn notify(&self, notice: SessionNotice) {
        (self.on_notice)(&self.id, notice);
    }

    fn fail(&self, reason: String) {
        self.notify(SessionNotice::Failed(reason));
    }

    /// Offerer: creates the offer, sends it, then applies it locally.
    pub fn create_offer(self: &Arc<Self>) {
        self.offered.store(true, Ordering::Release);
        self.recovery.lock().unwrap().set_offerer(true);
        let weak = Arc::downgrade(self);
        let promise = gst::Promise::with_change_func(move |reply| {
            let Some(session) = weak.upgrade() else {
                return;
            };
            match description_from_reply(reply, "offer") {
                Ok(offer) => session.send_and_apply_local(offer, SdpKind::Offer),
                Err(err) => session.fail(format!("cannot create an offer: {err}")),
            }
        });
        self.webrtcbin
            .emit_by_name::<()>("create-offer", &[&None::<gst::Structure>, &promise]);
    }

    fn send_and_apply_local(
        &self,
        description: gst_webrtc::WebRTCSessionDescription,
        kind: SdpKind,
    ) {
        let description = self.shaped(description);
        let mut sdp = match description.sdp().as_text() {
            Ok(text) => text,
            Err(err) => return self.fail(format!("cannot serialize the local description: {err}")),
        };
        let mut description = description;
        if let Some(restarted) = self.restart.lock().unwrap().take() {
            // The restarted stream's credentials, and its candidates again
            // (libnice does not gather anew, so webrtcbin will not tell
            // them a second time).
            let candidates: Vec<IceCandidate> = restarted
                .candidates
                .iter()
                .map(|candidate| IceCandidate {
                    candidate: candidate.clone(),
                    sdp_m_line_index: Some(0),
                    sdp_mid: None,
                })
                .collect();
            sdp = protocol_sdp::answer_with_candidates(
                &protocol_sdp::with_ice_credentials(&sdp, &restarted.ufrag, &restarted.pwd),
                &candidates,
                true,
            );
            match gst_sdp::SDPMessage::parse_buffer(sdp.as_bytes()) {
                Ok(message) => {
                    description =
                        gst_webrtc::WebRTCSessionDescription::new(description.type_(), message)
                }
                Err(_) => {
                    return self.fail("cannot rewrite the description for an ICE restart".into());
                }
            }
        }
        // Applied (queued in webrtcbin) before it is sent: a quick peer's
        // answer must find our offer in place. Candidates gathered
        // meanwhile wait until the description has gone.
        self.webrtcbin.emit_by_name::<()>(
            "set-local-description",
            &[&description, &None::<gst::Promise>],
        );
        let mut unsent = self.unsent_candidates.lock().unwrap();
        self.signaller.send(SignallerCommand::Description {
            session: self.id.clone(),
            description: SessionDescription { kind, sdp },
        });
        for (mline, candidate) in unsent.take().unwrap_or_default() {
            self.send_candidate(mline, candidate);
        }
    }

    fn send_candidate(&self, mline: u32, candidate: String) {
        let candidate = (mline != END_OF_CANDIDATES).then_some(IceCandidate {
            candidate,
            sdp_m_line_index: Some(mline),
            sdp_mid: None,
        });
        self.signaller.send(SignallerCommand::Candidate {
            session: self.id.clone(),
            candidate,
        });
    }

    /// Applies the peer's description; an offer is answered.
    pub fn handle_remote_description(
        self: &Arc<Self>,
        description: SessionDescription,
    ) -> Result<(), String> {
        let sdp = gst_sdp::SDPMessage::parse_buffer(description.sdp.as_bytes())
            .map_err(|_| "the remote SDP cannot be parsed".to_owned())?;
        if sdp.medias_len() == 0 {
            return Err("the remote SDP has no media sections".into());
        }
        let sdp_type = match description.kind {
            SdpKind::Offer => gst_webrtc::WebRTCSDPType::Offer,
            SdpKind::Answer => gst_webrtc::WebRTCSDPType::Answer,
        };
        let remote = gst_webrtc::WebRTCSessionDescription::new(sdp_type, sdp);
        let weak = Arc::downgrade(self);
        let is_offer = description.kind == SdpKind::Offer;
        if is_offer && self.remote_credentials_change(&description.sdp) {
            // The peer restarts ICE (new credentials in a new offer, the
            // same session): restart ours, so the answer carries new ones.
            let restarted = ice::restart(&self.webrtcbin)
                .map_err(|err| format!("cannot restart ICE: {err}"))?;
            *self.restart.lock().unwrap() = Some(restarted);
            let started = self
                .recovery
                .lock()
                .unwrap()
                .on_remote_restart(Instant::now());
            if let Some(Action::Restart { attempt, trigger }) = started {
                self.notify(SessionNotice::IceRestart(RestartNotice::Started {
                    attempt,
                    reason: trigger.to_string(),
                    by_peer: true,
                }));
            }
        }
        if is_offer {
            self.request_retransmissions();
        }
        let promise = gst::Promise::with_change_func(move |reply| {
            let Some(session) = weak.upgrade() else {
                return;
            };
            if let Err(err) = check_reply(reply) {
                return session.fail(format!("the remote description was refused: {err}"));
            }
            session.flush_early_candidates();
            if is_offer {
                session.create_answer();
            }
        });
        self.webrtcbin
            .emit_by_name::<()>("set-remote-description", &[&remote, &promise]);
        Ok(())
    }

    /// Whether `sdp` has other ICE credentials than the remote description
    /// in force: an ICE restart.
    fn remote_credentials_change(&self, sdp: &str) -> bool {
        let current = self
            .webrtcbin
            .property::<Option<gst_webrtc::WebRTCSessionDescription>>("current-remote-description");
        let Some(current) = current.and_then(|d| d.sdp().as_text().ok()) else {
            return false;
        };
        protocol_sdp::ufrag(&current) != protocol_sdp::ufrag(sdp)
    }

    /// Offerer: restarts ICE and makes a new offer with the new
    /// credentials, in the same session (the peer answers it as usual).
    pub fn restart_ice(self: &Arc<Self>) -> Result<(), String> {
        let restarted = ice::restart(&self.webrtcbin)?;
        *self.restart.lock().unwrap() = Some(restarted);
        self.create_offer();
        Ok(())
    }

    /// Answerer: ask for lost video packets again (NACK, with RTX in the
    /// answer), so that loss is repaired and the sender learns of it at
    /// once rather than at the next receiver report. The transceivers of
    /// an answer are created while answering, hence the signal. Not for
    /// audio: no sender retransmits it (browsers and peersink alike), so
    /// NACKs for it are only traffic (seen: ~25 a second for a minute
    /// after a lossy spell).
    fn request_retransmissions(&self) {
        if self.nack_requested.swap(true, Ordering::AcqRel) {
            return;
        }
        self.webrtcbin
            .connect("on-new-transceiver", false, |values| {
                let transceiver = values[1].get::<gst_webrtc::WebRTCRTPTransceiver>().ok()?;
                let kind = transceiver.property::<gst_webrtc::WebRTCKind>("kind");
                if kind != gst_webrtc::WebRTCKind::Audio {
                    transceiver.set_property("do-nack", true);
                }
                None
            });
    }

    fn create_answer(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let promise = gst::Promise::with_change_func(move |reply| {
            let Some(session) = weak.upgrade() else {
                return;
            };
            match description_from_reply(reply, "answer") {
                Ok(answer) => session.send_and_apply_local(answer, SdpKind::Answer),
                Err(err) => session.fail(format!("cannot create an answer: {err}")),
            }
        });
        self.webrtcbin
            .emit_by_name::<()>("create-answer", &[&None::<gst::Structure>, &promise]);
    }

    /// Adds a remote candidate, holding it until the remote description is
    /// set (webrtcbin refuses candidates before that).
    pub fn add_remote_candidate(&self, candidate: Option<IceCandidate>) {
        // End-of-candidates needs no action: libnice keeps checking the pairs it has.
        let Some(candidate) = candidate else { return };
        if candidate.candidate.is_empty() {
            return;
        }
        let mline = candidate.sdp_m_line_index.unwrap_or(0);
        let mut early = self.early_candidates.lock().unwrap();
        match early.as_mut() {
            Some(held) => held.push((mline, candidate.candidate)),
            None => {
                drop(early);
                self.webrtcbin
                    .emit_by_name::<()>("add-ice-candidate", &[&mline, &candidate.candidate]);
            }
        }
    }

    fn flush_early_candidates(&self) {
        let held = self
            .early_candidates
            .lock()
            .unwrap()
            .take()
            .unwrap_or_default();
        for (mline, candidate) in held {
            self.webrtcbin
                .emit_by_name::<()>("add-ice-candidate", &[&mline, &candidate]);
        }
    }

    /// Receiver side of a session we offer in: one recvonly transceiver
    /// per kind, listing every codec we can depayload, decode or record
    /// (the WHEP player's offer, peersrc with viewer-offer).
    pub fn add_receive_transceivers(&self) {
        for kind in [MediaKind::Video, MediaKind::Audio] {
            let caps = Codec::receivable(kind);
            let transceiver = self
                .webrtcbin
                .emit_by_name::<gst_webrtc::WebRTCRTPTransceiver>(
                    "add-transceiver",
                    &[&gst_webrtc::WebRTCRTPTransceiverDirection::Recvonly, &caps],
                );
            if kind == MediaKind::Video {
                transceiver.set_property("do-nack", true);
            }
        }
    }

    /// webrtcbin's statistics (the W3C stats dictionary as a structure) as
    /// last fetched: never waits for webrtcbin, whose operation queue may
    /// be busy negotiating.
    pub fn stats(&self) -> Option<gst::Structure> {
        self.stats.lock().unwrap().clone()
    }

    /// Asks webrtcbin for fresh statistics; they land in `stats()`.
    pub fn refresh_stats(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let promise = gst::Promise::with_change_func(move |reply| {
            if let (Some(session), Ok(Some(reply))) = (weak.upgrade(), reply) {
                *session.stats.lock().unwrap() = Some(reply.to_owned());
            }
        });
        self.webrtcbin
            .emit_by_name::<()>("get-stats", &[&None::<gst::Pad>, &promise]);
    }
}

/// `turn://user:pass@host:port` → `host:port`, listed: what a message may
/// show of the TURN servers (never their credentials).
fn turn_hosts(configured: &[String], announced: &[String]) -> String {
    let hosts: Vec<&str> = configured
        .iter()
        .chain(announced)
        .filter(|s| s.starts_with("turn"))
        .map(|s| {
            let rest = s.split_once("://").map_or(s.as_str(), |(_, rest)| rest);
            rest.rsplit_once('@').map_or(rest, |(_, host)| host)
        })
        .collect();
    if hosts.is_empty() {
        "none configured".into()
    } else {
        hosts.join(", ")
    }
}

fn check_reply(reply: Result<Option<&gst::StructureRef>, gst::PromiseError>) -> Result<(), String> {
    match reply {
        Ok(Some(reply)) => match reply.get::<glib::Error>("error") {
            Ok(err) => Err(err.to_string()),
            Err(_) => Ok(()),
        },
        Ok(None) => Ok(()),
        Err(err) => Err(format!("{err:?}")),
    }
}

fn description_from_reply(
    reply: Result<Option<&gst::StructureRef>, gst::PromiseError>,
    field: &str,
) -> Result<gst_webrtc::WebRTCSessionDescription, String> {
    check_reply(reply)?;
    let reply = reply.ok().flatten().ok_or("webrtcbin gave no reply")?;
    reply
        .get::<gst_webrtc::WebRTCSessionDescription>(field)
        .map_err(|err| err.to_string())
}

/// Takes `element` out of `bin` while the bin may be changing state on
/// another thread. Its state is locked first: otherwise the bin, still
/// iterating its children, could set it back to PAUSED between our NULL
/// and the removal, and it would be disposed while running ("Trying to
/// dispose element ... in PAUSED", seen when a viewer left while the
/// pipeline stopped).
pub fn discard(bin: &gst::Bin, element: &gst::Element) {
    element.set_locked_state(true);
    let _ = element.set_state(gst::State::Null);
    let _ = bin.remove(element);
}

/// GStreamer 1.22's `sctpenc` restarts its src task on a RECONFIGURE
/// event and unflushes its queue; one arriving while the element stops
/// leaves that task waiting in its queue with nothing to wake it, and the
/// state change joining it hangs for ever (seen once in ~65 publisher
/// teardowns with data channels). Nothing is reconfigured on the way
/// down; running, a RECONFIGURE does what sctpenc means it to.
fn keep_sctpenc_stopping(webrtcbin: &gst::Element) {
    let Some(bin) = webrtcbin.downcast_ref::<gst::Bin>() else {
        return;
    };
    bin.connect_deep_element_added(|_, _, element| {
        let is_sctpenc = crate::common::is_made_by(element, "sctpenc");
        let Some(src) = is_sctpenc.then(|| element.static_pad("src")).flatten() else {
            return;
        };
        let sctpenc = element.downgrade();
        src.add_probe(gst::PadProbeType::EVENT_UPSTREAM, move |_, info| {
            let reconfigure = info
                .event()
                .is_some_and(|event| event.type_() == gst::EventType::Reconfigure);
            let stopping = sctpenc.upgrade().is_none_or(|sctpenc| {
                matches!(
                    sctpenc.pending_state(),
                    gst::State::Ready | gst::State::Null
                ) || sctpenc.current_state() <= gst::State::Ready
            });
            if reconfigure && stopping {
                // Handled: gstreamer-rs frees the event.
                gst::PadProbeReturn::Handled
            } else {
                gst::PadProbeReturn::Ok
            }
        });
    });
}

/// True when `element` is `ancestor` or inside it, to tell which session a
/// bus message comes from.
pub fn is_inside(element: &gst::Object, ancestor: &gst::Element) -> bool {
    let mut current = Some(element.clone());
    while let Some(object) = current {
        if object == *ancestor.upcast_ref::<gst::Object>() {
            return true;
        }
        current = object.parent();
    }
    false
}
