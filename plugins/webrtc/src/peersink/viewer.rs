//! One viewer of peersink: its webrtcbin and, per input, a branch fed by
//! the shared encodings (feed → payloader → webrtcbin). The feed is where
//! the viewer's layer is chosen, and its bounded outbox, which the
//! element's send threads empty (send_pool.rs), is what keeps a slow or
//! dead viewer from holding up the encoder, hence everyone.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use gst::prelude::*;

use super::encoding::{Feed, Gate};
use super::feedback::Monitor;
use super::input::Input;
use super::send_pool::SendPool;
use crate::codec::{Codec, MediaKind};
use crate::session::{WebRtcSession, discard, is_inside};

/// Options every viewer is built with.
#[derive(Debug, Clone, Copy)]
pub struct ViewerOptions {
    /// Forward error correction (ULPFEC in RED) on video, percent; 0: off.
    pub fec_percentage: u32,
    /// Whether our offers ask for transport-cc (see `offer_transport_cc`).
    pub transport_cc: bool,
}

struct Branch {
    kind: MediaKind,
    feed: Arc<Feed>,
    payloader: gst::Element,
}

pub struct Viewer {
    pub session: Arc<WebRtcSession>,
    branches: Vec<Branch>,
    /// Feedback, adaptation and counters of this viewer.
    pub monitor: Arc<Monitor>,
    /// Set when anything of this viewer failed: the feeds then stop
    /// pushing, so the failure never reaches a shared encoder.
    failed: Arc<AtomicBool>,
    /// When its session started, for `viewer-timeout`.
    pub created: Instant,
    /// Set once the viewer connected (answer in, ICE and DTLS done).
    connected: AtomicBool,
}

impl Viewer {
    /// Adds the session's webrtcbin and one branch per input to `bin`.
    /// Every input must be ready (its RTP caps known).
    /// With `answering`, the viewer made the offer: each input goes to an
    /// m-section of its kind in it, with the payload type the viewer chose.
    pub fn build(
        bin: &gst::Bin,
        session: Arc<WebRtcSession>,
        inputs: &[Arc<Input>],
        pool: &Arc<SendPool>,
        options: ViewerOptions,
        answering: Option<&gst_sdp::SDPMessage>,
    ) -> Result<Viewer, String> {
        // An offer with no audio or video section at all (a data-only
        // connection, such as PeerJS's `connect()`) gets a session with
        // only its data channels.
        let inputs = match answering {
            Some(offer) if !offers_media(offer) => &[][..],
            _ => inputs,
        };
        // Which section of the offer each input answers, and how.
        let mut plans = Vec::with_capacity(inputs.len());
        let mut taken = Vec::new();
        for input in inputs {
            let plan = match answering {
                None => None,
                Some(offer) => Some(plan_answer(offer, input, &mut taken)?),
            };
            plans.push(plan);
        }
        let webrtcbin = session.webrtcbin.clone();
        bin.add(&webrtcbin).map_err(|e| e.to_string())?;
        webrtcbin
            .sync_state_with_parent()
            .map_err(|e| e.to_string())?;
        // Layers of the first video input drive adaptation.
        let bitrates = inputs
            .iter()
            .find(|input| input.kind == MediaKind::Video)
            .map(|input| {
                input
                    .encodings()
                    .iter()
                    .map(|e| e.spec.map_or(0, |spec| spec.bitrate))
                    .collect::<Vec<_>>()
            })
            .filter(|bitrates| !bitrates.is_empty())
            .unwrap_or_else(|| vec![0]);
        let mut viewer = Viewer {
            monitor: Monitor::new(&session, bitrates),
            session,
            branches: Vec::new(),
            failed: Arc::new(AtomicBool::new(false)),
            created: Instant::now(),
            connected: AtomicBool::new(false),
        };
        let options = ViewerOptions {
            // FEC would need payload types of the viewer's choosing too.
            fec_percentage: if answering.is_some() {
                0
            } else {
                options.fec_percentage
            },
            ..options
        };
        for (input, plan) in inputs.iter().zip(plans) {
            match viewer.add_branch(bin, input, pool, options, plan) {
                Ok(branch) => viewer.branches.push(branch),
                Err(err) => {
                    viewer.teardown(bin);
                    return Err(err);
                }
            }
        }
        Ok(viewer)
    }

    fn add_branch(
        &self,
        bin: &gst::Bin,
        input: &Arc<Input>,
        pool: &Arc<SendPool>,
        options: ViewerOptions,
        plan: Option<(u32, gst::Caps)>,
    ) -> Result<Branch, String> {
        let codec = input.codec().ok_or("input not ready")?;
        let offering = plan.is_none();
        let transport_cc = offering && options.transport_cc;
        let (payload_type, mut rtp_caps) = match plan {
            Some(planned) => planned,
            None => (
                codec.payload_type(),
                input.rtp_caps().ok_or("input not ready")?,
            ),
        };
        // The SSRC chosen here, for the payloader and for webrtcbin's SDP
        // alike: left to itself webrtcbin announces one of its own when the
        // payloader's caps have not reached it yet (video waits for the
        // connection), and a browser then drops the stream as unsignalled.
        let ssrc: u32 = rand::random();
        {
            let structure = rtp_caps.make_mut().structure_mut(0).expect("one structure");
            structure.set("ssrc", ssrc);
            if transport_cc {
                offer_transport_cc(structure);
            }
        }
        let prefix = format!("{}-{}", self.session.id, input.pad_name);

        let payloader = make_payloader(codec, payload_type, &format!("{prefix}-pay"))?;
        payloader.set_property("ssrc", ssrc);
        if transport_cc {
            self.monitor.watch_transport_cc(&payloader);
        }
        bin.add(&payloader).map_err(|e| e.to_string())?;

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
            // Retransmissions come from this viewer's own packet store.
            transceiver.set_property("do-nack", true);
            if options.fec_percentage > 0 {
                transceiver.set_property("fec-type", gst_webrtc::WebRTCFECType::UlpRed);
                transceiver.set_property("fec-percentage", options.fec_percentage);
            }
        }
        let pay_src = payloader
            .static_pad("src")
            .expect("payloaders have a src pad");
        pay_src
            .link(&webrtc_pad)
            .map_err(|err| format!("cannot link the payloader to webrtcbin: {err:?}"))?;
        if codec.kind() == MediaKind::Video {
            self.monitor.count_sent(&pay_src);
            if options.fec_percentage == 0 {
                keep_packet_lists(&pay_src);
            }
        }

        // Both wait for the connection (frames sent earlier are lost, and
        // webrtcbin holds its sink pads until negotiated), then video for a
        // keyframe: a decoder cannot start on a delta frame.
        let gate = Gate::Closed;
        let monitor = Arc::downgrade(&self.monitor);
        let on_switched: Box<dyn Fn(usize) + Send + Sync> = Box::new(move |layer| {
            if let Some(monitor) = monitor.upgrade() {
                monitor.switched(layer);
            }
        });
        let start_layer = match codec.kind() {
            MediaKind::Video => self.monitor.layer(),
            MediaKind::Audio => 0,
        };
        let pay_sink = payloader
            .static_pad("sink")
            .expect("payloaders have a sink pad");
        let feed = Feed::new(
            pay_sink.clone(),
            pool.clone(),
            &input.encodings(),
            start_layer.min(input.encodings().len().saturating_sub(1)),
            gate,
            self.failed.clone(),
            on_switched,
        );
        if codec.kind() == MediaKind::Video {
            self.monitor.add_video_feed(&feed);
        }

        // Keyframe requests from this viewer (PLI, FIR) go through the
        // shared policy of its layer instead of straight to the encoder
        // (the payloader's sink pad has no peer: the feed chains into it).
        let requester = Arc::downgrade(&feed);
        pay_sink.add_probe(gst::PadProbeType::EVENT_UPSTREAM, move |_, info| {
            let is_keyframe_request = info
                .event()
                .is_some_and(|event| gst_video::ForceKeyUnitEvent::is(event));
            if !is_keyframe_request {
                return gst::PadProbeReturn::Ok;
            }
            if let Some(feed) = requester.upgrade() {
                feed.request_keyframe();
            }
            // Taken and handled rather than dropped: dropped, each request
            // made GStreamer 1.22 log "gst_mini_object_unref: assertion
            // 'mini_object != NULL' failed" upstream of this pad (30 in the
            // loss test; none since).
            drop(info.take_event());
            gst::PadProbeReturn::Handled
        });
        payloader
            .sync_state_with_parent()
            .map_err(|e| e.to_string())?;
        feed.start();
        Ok(Branch {
            kind: codec.kind(),
            feed,
            payloader,
        })
    }

    /// Whether `object` is one of this viewer's elements (or inside one).
    pub fn contains(&self, object: &gst::Object) -> bool {
        is_inside(object, &self.session.webrtcbin)
            || self
                .branches
                .iter()
                .any(|b| is_inside(object, &b.payloader))
    }

    /// Cuts the viewer off the shared stream at once; teardown follows.
    pub fn mark_failed(&self) {
        self.failed.store(true, Ordering::Release);
    }

    /// The viewer is connected: start its video at the last keyframe if
    /// recent, else at the next, and listen to its feedback. Connected
    /// again (an ICE restart healed the path): a new keyframe, as after
    /// any loss — frames kept from before the outage would arrive stale.
    pub fn on_connected(&self) {
        let again = self.connected.swap(true, Ordering::Relaxed);
        self.monitor.listen(&self.session);
        for branch in &self.branches {
            match branch.kind {
                MediaKind::Audio => branch.feed.open(),
                MediaKind::Video if again => branch.feed.await_keyframe(),
                MediaKind::Video => branch.feed.start_video(),
            }
        }
    }

    /// Whether it has not connected `timeout` after its session started
    /// (a viewer that never answers holds a webrtcbin until then).
    pub fn timed_out(&self, now: Instant, timeout: Duration) -> bool {
        !self.connected.load(Ordering::Relaxed) && now.duration_since(self.created) >= timeout
    }

    /// Stops the feeds, then removes everything of this viewer. Not for a
    /// streaming thread.
    pub fn teardown(&mut self, bin: &gst::Bin) {
        self.mark_failed();
        for branch in &self.branches {
            branch.feed.detach();
        }
        // webrtcbin first: until its session is negotiated it blocks its
        // sink pads, and a send thread pushing there would hold the stream
        // lock that stopping the payloader needs (with a queue per viewer,
        // a viewer that left before connecting deadlocked its teardown).
        discard(bin, &self.session.webrtcbin);
        for branch in self.branches.drain(..) {
            discard(bin, &branch.payloader);
        }
    }
}

/// Keeps the payloader's buffer lists (one per frame) whole down to the
/// socket when the viewer has no FEC. GStreamer 1.22's webrtcbin puts a
/// FEC bin (rtpulpfecenc, then rtpredenc) between each sink pad's
/// clocksync and its rtpfunnel, FEC negotiated or not; neither element
/// has a list path, so each frame's list was split there into single
/// packets, and rtprtxsend, rtpsession, srtpenc and nicesink then ran
/// once per packet instead of once per frame (nicesink hands a list to
/// libnice in one call). Without FEC the bin only
/// passes packets through: it is unlinked (left in place, webrtcbin owns
/// it) and clocksync linked straight to the funnel. Done from the first
/// video data on the payloader's pad, once webrtcbin has built that path
/// (video flows only once connected), on the thread that pushes into it.
fn keep_packet_lists(pay_src: &gst::Pad) {
    let attempts = std::sync::atomic::AtomicU32::new(0);
    pay_src.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
        move |pad, _| {
            let attempt = attempts.fetch_add(1, Ordering::Relaxed);
            match bypass_fec_bin(pad) {
                Ok(()) => gst::PadProbeReturn::Remove,
                // Not built yet: try again with the next data, a while.
                Err(_) if attempt < 30 => gst::PadProbeReturn::Ok,
                Err(reason) => {
                    gst::debug!(super::imp::CAT, obj = pad, "FEC bin kept: {reason}");
                    gst::PadProbeReturn::Remove
                }
            }
        },
    );
}

/// Links webrtcbin's clocksync behind `pay_src` straight to the funnel
/// the FEC bin fed.
fn bypass_fec_bin(pay_src: &gst::Pad) -> Result<(), &'static str> {
    let ghost = pay_src
        .peer()
        .and_then(|pad| pad.downcast::<gst::GhostPad>().ok())
        .ok_or("no webrtcbin sink pad")?;
    let clocksync = ghost
        .target()
        .and_then(|pad| pad.parent_element())
        .ok_or("no element behind webrtcbin's sink pad")?;
    let clocksync_src = clocksync.static_pad("src").ok_or("no src pad")?;
    let fec_sink = clocksync_src.peer().ok_or("not linked yet")?;
    let fec_bin = fec_sink
        .parent_element()
        .and_then(|element| element.downcast::<gst::Bin>().ok())
        .ok_or("not followed by a bin")?;
    let is_fec = fec_bin.iterate_elements().into_iter().flatten().any(|e| {
        e.factory()
            .is_some_and(|f| matches!(f.name().as_str(), "rtpulpfecenc" | "rtpredenc"))
    });
    if !is_fec {
        return Err("not followed by the FEC bin");
    }
    let fec_src = fec_bin.static_pad("src").ok_or("FEC bin without src pad")?;
    let funnel_sink = fec_src.peer().ok_or("FEC bin not linked yet")?;
    clocksync_src
        .unlink(&fec_sink)
        .map_err(|_| "cannot unlink the FEC bin")?;
    fec_src
        .unlink(&funnel_sink)
        .map_err(|_| "cannot unlink the FEC bin")?;
    if clocksync_src.link(&funnel_sink).is_err() {
        // Put the path back as it was rather than leave it cut.
        let _ = clocksync_src.link(&fec_sink);
        let _ = fec_src.link(&funnel_sink);
        return Err("cannot link clocksync to the funnel");
    }
    gst::debug!(
        super::imp::CAT,
        obj = pay_src,
        "FEC bin bypassed: lists kept"
    );
    Ok(())
}

/// Whether `offer` has any audio or video section.
fn offers_media(offer: &gst_sdp::SDPMessage) -> bool {
    (0..offer.medias_len())
        .filter_map(|index| offer.media(index))
        .any(|media| matches!(media.media(), Some("audio" | "video")))
}

/// The m-section of `offer` that `input` answers (the first of its kind
/// not `taken`), its payload type and the caps to send with it.
fn plan_answer(
    offer: &gst_sdp::SDPMessage,
    input: &Input,
    taken: &mut Vec<u32>,
) -> Result<(u32, gst::Caps), String> {
    let codec = input.codec().ok_or("input not ready")?;
    let ours = input.rtp_caps().ok_or("input not ready")?;
    let kind = codec.kind().as_str();
    let mut offered = Vec::new();
    for index in 0..offer.medias_len() {
        let Some(media) = offer.media(index) else {
            continue;
        };
        if media.media() != Some(kind) || taken.contains(&index) {
            continue;
        }
        if let Some(planned) = codec.offered(offer, index, &ours) {
            taken.push(index);
            return Ok(planned);
        }
        offered.extend(
            media
                .attributes()
                .filter(|a| a.key() == "rtpmap")
                .filter_map(|a| a.value())
                .filter_map(|v| {
                    v.split_once(' ')
                        .map(|(_, enc)| enc.split('/').next().unwrap_or(enc).to_owned())
                }),
        );
    }
    if offered.is_empty() {
        return Err(format!(
            "the offer has no {kind} section for {} (this producer sends {kind})",
            input.pad_name
        ));
    }
    offered.dedup();
    Err(format!(
        "no codec in common for {}: the offer takes {}, this producer sends {}",
        input.pad_name,
        offered.join(", "),
        codec.encoding_name()
    ))
}

/// Asks, in our offer, for transport-wide congestion control feedback:
/// the header extension (`extmap-N`, which webrtcbin 1.22 turns into
/// `a=extmap`) and `a=rtcp-fb:PT transport-cc`. These caps are the
/// transceiver's codec preferences, which webrtcbin's sink pad answers
/// caps queries with: the payloader finds `extmap-N` there and adds the
/// header extension to every packet by itself (`auto-header-extension`),
/// the RTP session numbers those packets transport-wide and reads the
/// viewer's feedback on them (feedback.rs). When the viewer made the offer
/// we answer without it: webrtcbin 1.22 leaves header extensions out of
/// its answers.
fn offer_transport_cc(structure: &mut gst::StructureRef) {
    structure.set(
        format!("extmap-{}", crate::codec::OFFER_TWCC_ID).as_str(),
        crate::receive::TWCC_URI,
    );
    structure.set("rtcp-fb-transport-cc", true);
}

fn make_payloader(codec: Codec, payload_type: u32, name: &str) -> Result<gst::Element, String> {
    let mut builder = gst::ElementFactory::make(codec.payloader())
        .name(name)
        .property("pt", payload_type)
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
