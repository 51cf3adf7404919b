//! What peersink does with its signaller: the events it reports (viewers
//! asking for a session, their descriptions and candidates, the server
//! coming and going) and the commands it sends back.

use gst::prelude::*;
use gst::subclass::prelude::*;

use super::{CAT, PeerSink, PendingViewer};
use crate::common;
use crate::signaller::{Negotiation, SignallerCommand, SignallerEvent};

impl PeerSink {
    pub(super) fn on_signaller_event(&self, event: SignallerEvent) {
        let Some(event) = common::announce_signaller_event(self.obj().upcast_ref(), event) else {
            return;
        };
        match event {
            SignallerEvent::SessionStarted {
                session,
                peer,
                negotiation,
                ice_servers,
                data_channels,
            } => {
                let offer = match negotiation {
                    Negotiation::Offer => None,
                    Negotiation::Answer(offer) => Some(offer),
                    Negotiation::AwaitOffer => {
                        self.signaller_send(SignallerCommand::EndSession {
                            session,
                            reason: "peersink sends: it makes the offer, or answers one carried \
                                     in the session request"
                                .into(),
                        });
                        return;
                    }
                };
                self.on_session_started(PendingViewer {
                    session,
                    peer,
                    offer,
                    ice_servers,
                    data_channels,
                })
            }
            SignallerEvent::RemoteDescription {
                session,
                description,
            } => {
                let viewer_session = self.viewer_session(&session);
                match viewer_session.map(|s| s.handle_remote_description(description)) {
                    Some(Ok(())) => {}
                    Some(Err(reason)) => self.end_viewer(&session, &reason, true),
                    None => {
                        gst::debug!(CAT, imp = self, "description for unknown session {session}")
                    }
                }
            }
            SignallerEvent::RemoteCandidate { session, candidate } => {
                if let Some(viewer_session) = self.viewer_session(&session) {
                    viewer_session.add_remote_candidate(candidate);
                }
            }
            SignallerEvent::SessionEnded { session, reason } => {
                self.end_viewer(&session, &reason, false)
            }
            // The others were reported above.
            _ => {}
        }
    }

    /// `send-message`: an application message through the signalling
    /// server, to `peer` or the whole room.
    pub(super) fn send_message(&self, peer: Option<&str>, json: &str) -> bool {
        common::send_message(self.obj().upcast_ref(), peer, json, |command| {
            self.signaller_send(command)
        })
    }

    /// Sends `command` if the element runs; whether it did.
    pub(super) fn signaller_send(&self, command: SignallerCommand) -> bool {
        let state = self.state.lock().unwrap();
        let running = state.running.as_ref();
        running
            .map(|running| running.link.signaller.send(command))
            .is_some()
    }
}
