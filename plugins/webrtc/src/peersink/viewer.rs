//! One viewer of peersink: its webrtcbin and, per input, a branch from the
//! shared tee (leaky queue → payloader → webrtcbin). The leaky queue is
//! what keeps a slow or dead viewer from stalling the tee, hence everyone.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::Duration;

use gst::prelude::*;

use super::input::Input;
use crate::codec::{Codec, MediaKind};
use crate::session::{WebRtcSession, is_inside};

/// What a branch lets through to its viewer.
struct Gate(AtomicU8);

const CLOSED: u8 = 0;
const AWAITING_KEYFRAME: u8 = 1;
const OPEN: u8 = 2;

impl Gate {
    fn new(state: u8) -> Arc<Gate> {
        Arc::new(Gate(AtomicU8::new(state)))
    }

    fn set(&self, state: u8) {
        self.0.store(state, Ordering::Release);
    }

    /// Whether `buffer` may pass; a keyframe opens a gate waiting for one.
    fn admit(&self, buffer: &gst::BufferRef) -> bool {
        match self.0.load(Ordering::Acquire) {
            OPEN => true,
            AWAITING_KEYFRAME if !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT) => {
                self.set(OPEN);
                true
            }
            _ => false,
        }
    }
}

struct Branch {
    input: Arc<Input>,
    tee_pad: gst::Pad,
    queue: gst::Element,
    payloader: gst::Element,
    gate: Arc<Gate>,
}

pub struct Viewer {
    pub session: Arc<WebRtcSession>,
    branches: Vec<Branch>,
    /// Set when anything of this viewer failed: the tee then skips its
    /// branches, so the failure never reaches the shared encoder.
    failed: Arc<AtomicBool>,
}

/// How much a viewer may fall behind before its queue drops whole frames.
const VIEWER_QUEUE_TIME: Duration = Duration::from_millis(400);

impl Viewer {
    /// Adds the session's webrtcbin and one branch per input to `bin`.
    /// Every input must be ready (its RTP caps known).
    pub fn build(
        bin: &gst::Bin,
        session: Arc<WebRtcSession>,
        inputs: &[Arc<Input>],
    ) -> Result<Viewer, String> {
        let webrtcbin = session.webrtcbin.clone();
        bin.add(&webrtcbin).map_err(|e| e.to_string())?;
        webrtcbin
            .sync_state_with_parent()
            .map_err(|e| e.to_string())?;
        let mut viewer = Viewer {
            session,
            branches: Vec::new(),
            failed: Arc::new(AtomicBool::new(false)),
        };
        for input in inputs {
            match viewer.add_branch(bin, input) {
                Ok(branch) => viewer.branches.push(branch),
                Err(err) => {
                    viewer.teardown(bin);
                    return Err(err);
                }
            }
        }
        Ok(viewer)
    }

    fn add_branch(&self, bin: &gst::Bin, input: &Arc<Input>) -> Result<Branch, String> {
        let codec = input.codec().ok_or("input not ready")?;
        let rtp_caps = input.rtp_caps().ok_or("input not ready")?;
        let prefix = format!("{}-{}", self.session.id, input.pad_name);

        let queue = gst::ElementFactory::make("queue")
            .name(format!("{prefix}-queue"))
            .property_from_str("leaky", "downstream")
            .property("max-size-buffers", 0u32)
            .property("max-size-bytes", 0u32)
            .property("max-size-time", VIEWER_QUEUE_TIME.as_nanos() as u64)
            .build()
            .map_err(|e| e.to_string())?;
        let payloader = make_payloader(codec, &format!("{prefix}-pay"))?;
        bin.add_many([&queue, &payloader])
            .map_err(|e| e.to_string())?;
        queue.link(&payloader).map_err(|e| e.to_string())?;

        let template = self
            .session
            .webrtcbin
            .pad_template("sink_%u")
            .ok_or("webrtcbin has no sink_%u template")?;
        let webrtc_pad = self
            .session
            .webrtcbin
            .request_pad(&template, None, Some(&rtp_caps))
            .ok_or("webrtcbin refused a sink pad")?;
        let transceiver = webrtc_pad.property::<gst_webrtc::WebRTCRTPTransceiver>("transceiver");
        transceiver.set_property(
            "direction",
            gst_webrtc::WebRTCRTPTransceiverDirection::Sendonly,
        );
        transceiver.set_property("codec-preferences", &rtp_caps);
        if codec.kind() == MediaKind::Video {
            transceiver.set_property("do-nack", true);
        }
        payloader
            .static_pad("src")
            .expect("payloaders have a src pad")
            .link(&webrtc_pad)
            .map_err(|err| format!("cannot link the payloader to webrtcbin: {err:?}"))?;

        // Video waits for the connection, then for a keyframe: frames sent
        // earlier are lost, and a decoder cannot start on a delta frame.
        let gate = Gate::new(if codec.kind() == MediaKind::Video {
            CLOSED
        } else {
            OPEN
        });
        let queue_src = queue.static_pad("src").expect("queues have a src pad");
        let admit = gate.clone();
        queue_src.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            match info.buffer() {
                Some(buffer) if !admit.admit(buffer) => gst::PadProbeReturn::Drop,
                _ => gst::PadProbeReturn::Ok,
            }
        });
        // Keyframe requests from this viewer (PLI, FIR) go through the
        // shared policy instead of straight to the encoder.
        let requester = Arc::downgrade(input);
        queue_src.add_probe(gst::PadProbeType::EVENT_UPSTREAM, move |_, info| {
            let is_keyframe_request = info
                .event()
                .is_some_and(|event| gst_video::ForceKeyUnitEvent::is(event));
            if !is_keyframe_request {
                return gst::PadProbeReturn::Ok;
            }
            if let Some(input) = requester.upgrade() {
                input.request_keyframe();
            }
            gst::PadProbeReturn::Drop
        });
        // When the queue leaks, the viewer misses frames: resume at a keyframe.
        let resync_gate = gate.clone();
        let resync_input = Arc::downgrade(input);
        queue.connect("overrun", false, move |_| {
            if codec.kind() == MediaKind::Video && resync_gate.0.load(Ordering::Acquire) == OPEN {
                resync_gate.set(AWAITING_KEYFRAME);
                if let Some(input) = resync_input.upgrade() {
                    input.request_keyframe();
                }
            }
            None
        });

        for element in [&payloader, &queue] {
            element
                .sync_state_with_parent()
                .map_err(|e| e.to_string())?;
        }
        let tee_pad = input
            .tee
            .request_pad_simple("src_%u")
            .ok_or("the tee refused a pad")?;
        let failed = self.failed.clone();
        tee_pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            if failed.load(Ordering::Acquire) {
                gst::PadProbeReturn::Drop
            } else {
                gst::PadProbeReturn::Ok
            }
        });
        tee_pad
            .link(&queue.static_pad("sink").expect("queues have a sink pad"))
            .map_err(|err| format!("cannot link the tee: {err:?}"))?;
        Ok(Branch {
            input: input.clone(),
            tee_pad,
            queue,
            payloader,
            gate,
        })
    }

    /// Whether `object` is one of this viewer's elements (or inside one).
    pub fn contains(&self, object: &gst::Object) -> bool {
        is_inside(object, &self.session.webrtcbin)
            || self
                .branches
                .iter()
                .any(|b| is_inside(object, &b.queue) || is_inside(object, &b.payloader))
    }

    /// Cuts the viewer off the shared stream at once; teardown follows.
    pub fn mark_failed(&self) {
        self.failed.store(true, Ordering::Release);
    }

    /// The viewer is connected: start its video at the next keyframe.
    pub fn on_connected(&self) {
        for branch in &self.branches {
            if branch.input.kind == MediaKind::Video {
                branch.gate.set(AWAITING_KEYFRAME);
                branch.input.request_keyframe();
            }
        }
    }

    /// Detaches the branches from the tees without disturbing the stream,
    /// then removes everything of this viewer. Not for a streaming thread.
    pub fn teardown(&mut self, bin: &gst::Bin) {
        let (done, detached) = std::sync::mpsc::channel::<()>();
        let mut pending = 0;
        for branch in &self.branches {
            pending += 1;
            let done = done.clone();
            branch
                .tee_pad
                .add_probe(gst::PadProbeType::IDLE, move |pad, _| {
                    if let Some(peer) = pad.peer() {
                        let _ = pad.unlink(&peer);
                    }
                    let _ = done.send(());
                    gst::PadProbeReturn::Remove
                });
        }
        for _ in 0..pending {
            // A paused pipeline is idle at once; a blocked one must not hang us.
            if detached.recv_timeout(Duration::from_secs(2)).is_err() {
                break;
            }
        }
        for branch in self.branches.drain(..) {
            if let Some(peer) = branch.tee_pad.peer() {
                let _ = branch.tee_pad.unlink(&peer);
            }
            branch.input.tee.release_request_pad(&branch.tee_pad);
            for element in [&branch.queue, &branch.payloader] {
                let _ = element.set_state(gst::State::Null);
                let _ = bin.remove(element);
            }
        }
        let _ = self.session.webrtcbin.set_state(gst::State::Null);
        let _ = bin.remove(&self.session.webrtcbin);
    }
}

fn make_payloader(codec: Codec, name: &str) -> Result<gst::Element, String> {
    let mut builder = gst::ElementFactory::make(codec.payloader())
        .name(name)
        .property("pt", codec.payload_type())
        .property("mtu", 1200u32);
    match codec {
        Codec::Vp8 | Codec::Vp9 => builder = builder.property_from_str("picture-id-mode", "15-bit"),
        Codec::H264 => {
            builder = builder
                .property("config-interval", -1i32)
                .property_from_str("aggregate-mode", "zero-latency")
        }
        Codec::Opus => {}
    }
    builder
        .build()
        .map_err(|_| format!("element {} is missing", codec.payloader()))
}
