//! What peersrc does with its signaller: the events it reports (a
//! producer's session starting and ending, its descriptions and
//! candidates, the server coming and going) and the commands it sends
//! back.

use gst::prelude::*;
use gst::subclass::prelude::*;

use super::PeerSrc;
use crate::common;
use crate::signaller::{SignallerCommand, SignallerEvent};

impl PeerSrc {
    /// `send-message`: an application message through the signalling
    /// server, to `peer` or the whole room.
    pub(super) fn send_message(&self, peer: Option<&str>, json: &str) -> bool {
        common::send_message(self.obj().upcast_ref(), peer, json, |command| {
            self.signaller_send(command)
        })
    }

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
            // The others were reported above.
            _ => {}
        }
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
