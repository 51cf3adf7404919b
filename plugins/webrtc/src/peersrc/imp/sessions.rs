//! The sessions peersrc receives: starting one (its webrtcbin, receive
//! policy and negotiation, replacing an older session with the same
//! peer), sending on its data channels, and removing it.

use std::sync::Arc;

use gst::prelude::*;
use gst::subclass::prelude::*;

use super::periodic::MediaClock;
use super::{CAT, PeerSrc, Receiving};
use crate::datachannel::Payload;
use crate::events::Event;
use crate::receive::ReceivePolicy;
use crate::session::{NoticeHandler, WebRtcSession, discard};
use crate::signaller::{DataChannelPlan, Negotiation};

impl PeerSrc {
    pub(super) fn start_session(
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

    pub(super) fn remove_session(&self, receiving: Receiving) {
        discard(self.obj().upcast_ref(), &receiving.session.webrtcbin);
        for output in receiving.outputs {
            output.remove(self.obj().upcast_ref());
        }
    }

    /// Sends on data channel `label` to the producer (`peer`, when given,
    /// must name it; with PeerJS, one of the callers).
    pub(super) fn send_on_channels(
        &self,
        label: &str,
        peer: Option<&str>,
        payload: &Payload,
    ) -> bool {
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
}
