//! What peersink does with its signaller: the events it reports (viewers
//! asking for a session, their descriptions and candidates, the server
//! coming and going) and the commands it sends back.

use gst::prelude::*;
use gst::subclass::prelude::*;

use super::{CAT, PeerSink, PendingViewer};
use crate::common;
use crate::error::ElementError;
use crate::signaller::{Negotiation, SignallerCommand, SignallerEvent};

impl PeerSink {
    pub(super) fn on_signaller_event(&self, event: SignallerEvent) {
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

    /// `send-message`: an application message through the signalling
    /// server, to `peer` or the whole room.
    pub(super) fn send_message(&self, peer: Option<&str>, json: &str) -> bool {
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

    pub(super) fn signaller_send(&self, command: SignallerCommand) {
        if let Some(running) = &self.state.lock().unwrap().running {
            running.link.signaller.send(command);
        }
    }
}
