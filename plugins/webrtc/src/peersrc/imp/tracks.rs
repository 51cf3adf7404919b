//! The tracks of peersrc's sessions: each one the producer sends becomes
//! a pad (announced first with `peer-producer-track`), and when the
//! producer leaves they all get their EOS and `peer-producer-left` says
//! so.

use gst::prelude::*;
use gst::subclass::prelude::*;

use super::super::output;
use super::{CAT, PeerSrc};
use crate::codec::MediaKind;
use crate::error::ElementError;

impl PeerSrc {
    /// A track arrived (streaming thread): expose it as a pad.
    pub(super) fn add_output(&self, session: &str, rtp_pad: &gst::Pad) {
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

    pub(super) fn output_entry_pads(&self) -> Vec<gst::Pad> {
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
    pub(super) fn end_streams(&self, session: &str, producer: &str, reason: &str) {
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
