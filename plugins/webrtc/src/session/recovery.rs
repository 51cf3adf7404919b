//! The glue between a session and its ICE restart policy
//! (`ice_restart.rs`): what arrives from the peer, the policy's ticks, and
//! the bus messages about restarts.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gst::prelude::*;

use super::{RestartNotice, SessionNotice, WebRtcSession};
use crate::ice_restart::Action;

impl WebRtcSession {
    /// Called on the element's tick: feeds the recovery policy what
    /// arrived and carries out what it decides (restart, announce, give up).
    pub fn tick_recovery(self: &Arc<Self>) {
        let now = Instant::now();
        let action = {
            let mut policy = self.recovery.lock().unwrap();
            if let Some(latest) = self.arrivals.latest() {
                policy.on_arrival(latest);
            }
            policy.tick(now)
        };
        match action {
            None => {}
            Some(Action::Restart { attempt, trigger }) => {
                gst::info!(
                    gst::CAT_DEFAULT,
                    "session {} with {}: ICE restart {attempt} ({trigger})",
                    self.id,
                    self.peer
                );
                self.notify(SessionNotice::IceRestart(RestartNotice::Started {
                    attempt,
                    reason: trigger.to_string(),
                    by_peer: false,
                }));
                // One that cannot even start counts as a failed attempt:
                // the policy tries again after its backoff.
                if let Err(err) = self.restart_ice() {
                    gst::warning!(
                        gst::CAT_DEFAULT,
                        "session {}: ICE restart {attempt} could not start: {err}",
                        self.id
                    );
                }
            }
            Some(Action::Healed { attempts, after }) => {
                gst::info!(
                    gst::CAT_DEFAULT,
                    "session {} with {}: healed after {attempts} ICE restart(s), {after:?}",
                    self.id,
                    self.peer
                );
                self.notify(SessionNotice::IceRestart(RestartNotice::Succeeded {
                    attempts,
                    after,
                }))
            }
            Some(Action::GiveUp { attempts, reason }) => {
                self.notify(SessionNotice::IceRestart(RestartNotice::Failed {
                    attempts,
                    reason: reason.clone(),
                }));
                self.notify(SessionNotice::Failed(reason));
            }
        }
    }

    /// Counts what arrives through webrtcbin's ICE source (media, RTCP,
    /// DTLS and SCTP; libnice keeps STUN to itself). Once connected: the
    /// transport exists by then.
    pub(super) fn watch_arrivals(&self) {
        if self.arrivals_watched.swap(true, Ordering::AcqRel) {
            return;
        }
        let Some(bin) = self.webrtcbin.downcast_ref::<gst::Bin>() else {
            return;
        };
        for element in bin
            .iterate_all_by_element_factory_name("nicesrc")
            .into_iter()
            .flatten()
        {
            let Some(pad) = element.static_pad("src") else {
                continue;
            };
            let clock = self.arrivals.clone();
            pad.add_probe(
                gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
                move |_, _| {
                    clock.touch();
                    gst::PadProbeReturn::Ok
                },
            );
        }
    }
}

/// When something last arrived from the peer: an atomic, touched from a
/// streaming thread per packet, read on the element's tick.
pub(super) struct ArrivalClock {
    epoch: Instant,
    /// Milliseconds since `epoch` of the last arrival; 0 before the first.
    last_ms: AtomicU64,
}

impl ArrivalClock {
    pub(super) fn new() -> Self {
        ArrivalClock {
            epoch: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    pub(super) fn touch(&self) {
        let ms = self.epoch.elapsed().as_millis() as u64;
        self.last_ms.store(ms.max(1), Ordering::Relaxed);
    }

    pub(super) fn latest(&self) -> Option<Instant> {
        match self.last_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(self.epoch + Duration::from_millis(ms)),
        }
    }
}

/// Posts an ICE restart notice of `session` (with `peer`) on the bus as
/// `peer-ice-restart-started`, `-succeeded` or `-failed`.
pub fn announce_restart(element: &gst::Element, session: &str, peer: &str, notice: &RestartNotice) {
    let structure = match notice {
        RestartNotice::Started {
            attempt,
            reason,
            by_peer,
        } => gst::Structure::builder("peer-ice-restart-started")
            .field("attempt", *attempt)
            .field("reason", reason.as_str())
            .field("by-peer", *by_peer),
        RestartNotice::Succeeded { attempts, after } => {
            gst::Structure::builder("peer-ice-restart-succeeded")
                .field("attempts", *attempts)
                .field("after-ms", after.as_millis() as u64)
        }
        RestartNotice::Failed { attempts, reason } => {
            gst::Structure::builder("peer-ice-restart-failed")
                .field("attempts", *attempts)
                .field("reason", reason.as_str())
        }
    }
    .field("session-id", session)
    .field("peer-id", peer)
    .build();
    gst::info!(gst::CAT_DEFAULT, obj = element, "{structure}");
    let _ = element.post_message(
        gst::message::Element::builder(structure)
            .src(element)
            .build(),
    );
}
