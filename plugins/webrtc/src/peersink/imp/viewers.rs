//! The viewers peersink serves, from the signaller's session request to
//! their end: admission (`max-viewers`, waiting for every input to be
//! ready), building each one (`viewer.rs` builds its branches), its data
//! channels, and removing it. The tick ends viewers that never connect
//! (`periodic.rs`).

use std::sync::Arc;

use gst::prelude::*;
use gst::subclass::prelude::*;

use super::super::input::Input;
use super::super::viewer::Viewer;
use super::{AUDIOTAP_LABEL, CAT, PeerSink, PendingViewer, TOO_MANY_VIEWERS};
use crate::codec::MediaKind;
use crate::datachannel::{ChannelSpec, Payload};
use crate::events::Event;
use crate::session::{NoticeHandler, WebRtcSession};
use crate::signaller::SignallerCommand;

impl PeerSink {
    pub(super) fn viewer_session(&self, session: &str) -> Option<Arc<WebRtcSession>> {
        let state = self.state.lock().unwrap();
        state
            .running
            .as_ref()?
            .viewers
            .get(session)
            .map(|v| v.session.clone())
    }

    pub(super) fn on_session_started(&self, pending: PendingViewer) {
        let max_viewers = self.settings.lock().unwrap().max_viewers;
        let mut state = self.state.lock().unwrap();
        let all_ready = state.inputs.iter().all(|input| input.is_ready());
        let Some(running) = state.running.as_mut() else {
            return;
        };
        let count = running.viewers.len() + running.waiting.len();
        if max_viewers > 0 && count >= max_viewers as usize {
            gst::info!(
                CAT,
                imp = self,
                "refusing viewer {}: {max_viewers} viewers already",
                pending.peer
            );
            running.link.signaller.send(SignallerCommand::EndSession {
                session: pending.session,
                reason: format!(
                    "{TOO_MANY_VIEWERS}: this producer accepts at most {max_viewers} viewers \
                     and has that many (max-viewers)"
                ),
            });
            return;
        }
        if !all_ready {
            running.waiting.push(pending);
            return;
        }
        drop(state);
        self.add_viewer(pending);
    }

    pub(super) fn start_waiting_sessions(&self) {
        let waiting = {
            let mut state = self.state.lock().unwrap();
            if !state.inputs.iter().all(|input| input.is_ready()) {
                return;
            }
            match state.running.as_mut() {
                Some(running) => std::mem::take(&mut running.waiting),
                None => return,
            }
        };
        for pending in waiting {
            self.add_viewer(pending);
        }
    }

    fn add_viewer(&self, pending: PendingViewer) {
        let PendingViewer {
            session: session_id,
            peer,
            offer,
            ice_servers,
            data_channels,
        } = pending;
        let (config, signaller, events, inputs, send_pool) = {
            let state = self.state.lock().unwrap();
            let Some(running) = state.running.as_ref() else {
                return;
            };
            (
                running.session_config.clone(),
                running.link.signaller.clone(),
                running.link.events.clone(),
                state.inputs.clone(),
                running.send_pool.clone(),
            )
        };
        let on_notice: NoticeHandler = Arc::new(move |session: &str, notice| {
            events.send(Event::Session(session.to_owned(), notice));
        });
        let options = self.settings.lock().unwrap().viewer_options();
        let parsed_offer = match &offer {
            Some(offer) => match gst_sdp::SDPMessage::parse_buffer(offer.sdp.as_bytes()) {
                Ok(parsed) => Some(parsed),
                Err(_) => {
                    signaller.send(SignallerCommand::EndSession {
                        session: session_id,
                        reason: "the viewer's offer is not SDP".into(),
                    });
                    return;
                }
            },
            None => None,
        };
        let built = WebRtcSession::new(
            &session_id,
            &peer,
            &config,
            &ice_servers,
            signaller.clone(),
            on_notice,
        )
        .and_then(|session| {
            Viewer::build(
                self.obj().upcast_ref(),
                session,
                &inputs,
                &send_pool,
                options,
                parsed_offer.as_ref(),
            )
        });
        let viewer = match built {
            Ok(viewer) => viewer,
            Err(err) => {
                gst::warning!(CAT, imp = self, "cannot serve viewer {peer}: {err}");
                signaller.send(SignallerCommand::EndSession {
                    session: session_id,
                    reason: err,
                });
                return;
            }
        };
        let session = viewer.session.clone();
        {
            let mut state = self.state.lock().unwrap();
            let Some(running) = state.running.as_mut() else {
                return;
            };
            running.viewers.insert(session_id.clone(), viewer);
        }
        if let Some(framing) = data_channels.as_ref().and_then(|plan| plan.framing.clone()) {
            session.channels.set_framing(framing);
        }
        let protocol_decides = data_channels.is_some();
        let mut channels = match data_channels {
            Some(plan) => plan.open,
            None => config.data_channels.clone(),
        };
        let fed = |input: &Arc<Input>| {
            self.obj()
                .static_pad(&input.pad_name)
                .is_some_and(|pad| fed_by_audiotap(&pad))
        };
        if !protocol_decides
            && inputs
                .iter()
                .any(|input| input.kind == MediaKind::Audio && fed(input))
            && !channels.iter().any(|c| c.label == AUDIOTAP_LABEL)
        {
            // Latest report wins: a late one is worth nothing.
            channels.push(ChannelSpec {
                label: AUDIOTAP_LABEL.to_owned(),
                ordered: false,
                max_retransmits: Some(0),
                max_packet_lifetime: None,
            });
        }
        match offer {
            None => {
                session.create_data_channels(&channels);
                session.create_offer();
            }
            Some(offer) => {
                // Channels are ours to open only when the offer has room
                // for them (an m=application section).
                if offer.sdp.contains("m=application") {
                    session.create_data_channels(&channels);
                }
                if let Err(reason) = session.handle_remote_description(offer) {
                    self.end_viewer(&session_id, &reason, true);
                    return;
                }
            }
        }
        gst::info!(
            CAT,
            imp = self,
            "viewer {peer} added (session {session_id})"
        );
        self.obj()
            .emit_by_name::<()>("viewer-added", &[&session_id, &peer]);
    }

    pub(super) fn end_viewer(&self, session: &str, reason: &str, tell_peer: bool) {
        let removed = {
            let mut state = self.state.lock().unwrap();
            let Some(running) = state.running.as_mut() else {
                return;
            };
            running.waiting.retain(|waiting| waiting.session != session);
            let viewer = running.viewers.remove(session);
            if tell_peer {
                running.link.signaller.send(SignallerCommand::EndSession {
                    session: session.to_owned(),
                    reason: reason.to_owned(),
                });
            }
            viewer
        };
        if let Some(mut viewer) = removed {
            let peer = viewer.session.peer.clone();
            viewer.teardown(self.obj().upcast_ref());
            gst::info!(
                CAT,
                imp = self,
                "viewer {peer} removed (session {session}): {reason}"
            );
            self.obj()
                .emit_by_name::<()>("viewer-removed", &[&session, &peer, &reason]);
        }
    }

    /// Sends on data channel `label` to `peer`, or to every viewer.
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
                .viewers
                .values()
                .filter(|viewer| peer.is_none_or(|peer| viewer.session.peer == peer))
                .map(|viewer| viewer.session.clone())
                .collect()
        };
        let mut sent = false;
        for session in sessions {
            sent |= session.channels.send(label, payload);
        }
        sent
    }
}

/// Whether an `audiotap` element feeds `pad`, a few hops upstream.
fn fed_by_audiotap(pad: &gst::Pad) -> bool {
    let mut pad = pad.clone();
    for _ in 0..16 {
        let Some(peer) = pad.peer() else { return false };
        // A bin's output is a ghost pad: its element is the bin itself.
        let element = peer.parent_element().or_else(|| {
            peer.parent()
                .and_then(|parent| parent.downcast::<gst::GhostPad>().ok())
                .and_then(|ghost| ghost.parent_element())
        });
        let Some(element) = element else { return false };
        if crate::common::is_made_by(&element, "audiotap") {
            return true;
        }
        let Some(next) = element.sink_pads().into_iter().next() else {
            return false;
        };
        pad = next;
    }
    false
}
