//! What one viewer tells us about its reception, turned into layer
//! decisions and statistics: RTCP from its webrtcbin's RTP session
//! (receiver reports, NACKs, REMB; rtcp.rs), packets we sent it, and
//! round-trip times the session computed, and transport-cc feedback
//! (twcc.rs). The decisions themselves are adaptation.rs's.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;

use super::adaptation::{Adaptation, Feedback};
use super::encoding::Feed;
use super::loss_signals::{LossSignals, TickCounts};
use super::padding::{Padder, RecentPackets};
use super::probe::{Probe, Verdict};
use super::report_loss::ReportLoss;
use super::rtcp;
use super::twcc::{PacketReport, TransportEstimator};
use crate::session::WebRtcSession;

pub struct Monitor {
    adaptation: Mutex<Adaptation>,
    video_feeds: Mutex<Vec<Weak<Feed>>>,
    packets_sent: AtomicU64,
    bytes_sent: AtomicU64,
    nacked: AtomicU64,
    keyframe_requests: AtomicU64,
    /// RTCP packets received from the viewer: whether it is still talking.
    rtcp_packets: AtomicU64,
    switches: AtomicU64,
    /// Our video SSRC towards this viewer, once known (0 before).
    video_ssrc: AtomicU32,
    /// Loss in receiver reports since the last tick.
    report_loss: Mutex<ReportLoss>,
    /// Loss over the latest tick's receiver reports about our video.
    reported_loss: Mutex<f64>,
    /// The viewer's webrtcbin once connected, to read round trips from
    /// its RTP session (a plain GObject, looked up when needed).
    webrtcbin: Mutex<Option<gst::Element>>,
    tick: Mutex<TickState>,
    /// Latest video packets sent, for padding.
    recent_packets: Arc<Mutex<RecentPackets>>,
    /// Sends padding for probes, once connected, if the viewer takes
    /// retransmissions.
    padder: Mutex<Option<Padder>>,
    /// The padding probe under way, if any.
    probe: Mutex<Option<Probe>>,
    probes: AtomicU64,
    probes_held: AtomicU64,
    /// The path as the viewer's transport-cc feedback shows it (viewers
    /// that send none leave it empty).
    transport: Mutex<TransportEstimator>,
    /// Set by the first [`Monitor::listen`]: a viewer connects again after
    /// each ICE restart (same RTP session), and listening again counted
    /// every report, NACK and PLI twice and reset the padder's history.
    listening: AtomicBool,
    /// Payloaders adding the transport-cc extension, until the viewer
    /// shows it reads it (or [`TRANSPORT_CC_GRACE`] shows it does not).
    transport_payloaders: Mutex<Vec<glib::WeakRef<gst::Element>>>,
    /// When the viewer connected (its RTCP is listened to since).
    connected_at: Mutex<Option<Instant>>,
}

/// How long a viewer that accepted transport-cc may send no feedback
/// before our packets stop carrying the extension.
const TRANSPORT_CC_GRACE: Duration = Duration::from_secs(10);

struct TickState {
    at: Instant,
    packets: u64,
    bytes: u64,
    nacked: u64,
    sent_bitrate: u64,
    last_rtt: Option<u32>,
    keyframe_requests: u64,
    rtcp_packets: u64,
    signals: LossSignals,
}

/// One viewer's numbers, for `stats` and the stats messages.
#[derive(Debug, Clone, Default)]
pub struct ViewerStats {
    /// Layer received now (0 is the best).
    pub layer: usize,
    /// Layer being moved to at its next keyframe, if any.
    pub target_layer: Option<usize>,
    pub estimated_bitrate: u64,
    pub sent_bitrate: u64,
    /// As the viewer's latest receiver report says.
    pub fraction_lost: f64,
    /// What adaptation last used: the higher of that and NACKed packets
    /// per packet sent.
    pub loss: f64,
    pub round_trip: Option<Duration>,
    pub remb: Option<u64>,
    pub packets_sent: u64,
    pub bytes_sent: u64,
    pub packets_nacked: u64,
    pub keyframe_requests: u64,
    pub layer_switches: u64,
    /// Padding probes run, and those the path carried.
    pub probes: u64,
    pub probes_held: u64,
    /// RTCP packets received from the viewer (reports, NACK, PLI,
    /// transport-cc feedback...): how often it speaks at all.
    pub rtcp_packets: u64,
    /// Transport-cc feedback messages taken (0: the viewer sends none).
    pub transport_cc_feedback: u64,
    /// Times transport-cc feedback showed the path overused.
    pub congestion_signals: u64,
    /// Queuing delay on the path, from transport-cc feedback.
    pub queuing_delay: Option<Duration>,
    /// What the viewer received, from transport-cc feedback, bits/s.
    pub received_bitrate: Option<u64>,
}

impl Monitor {
    /// `bitrates`: of the video layers, best first.
    pub fn new(_session: &Arc<WebRtcSession>, bitrates: Vec<u32>) -> Arc<Monitor> {
        let now = Instant::now();
        Arc::new(Monitor {
            adaptation: Mutex::new(Adaptation::new(bitrates, now)),
            video_feeds: Mutex::new(Vec::new()),
            packets_sent: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
            nacked: AtomicU64::new(0),
            keyframe_requests: AtomicU64::new(0),
            rtcp_packets: AtomicU64::new(0),
            switches: AtomicU64::new(0),
            video_ssrc: AtomicU32::new(0),
            report_loss: Mutex::new(ReportLoss::default()),
            reported_loss: Mutex::new(0.0),
            webrtcbin: Mutex::new(None),
            tick: Mutex::new(TickState {
                at: now,
                packets: 0,
                bytes: 0,
                nacked: 0,
                sent_bitrate: 0,
                last_rtt: None,
                keyframe_requests: 0,
                rtcp_packets: 0,
                signals: LossSignals::default(),
            }),
            recent_packets: Arc::new(Mutex::new(RecentPackets::default())),
            padder: Mutex::new(None),
            probe: Mutex::new(None),
            probes: AtomicU64::new(0),
            probes_held: AtomicU64::new(0),
            transport: Mutex::new(TransportEstimator::new()),
            listening: AtomicBool::new(false),
            transport_payloaders: Mutex::new(Vec::new()),
            connected_at: Mutex::new(None),
        })
    }

    /// The layer adaptation wants now.
    pub fn layer(&self) -> usize {
        self.adaptation.lock().unwrap().layer()
    }

    pub fn add_video_feed(&self, feed: &Arc<Feed>) {
        self.video_feeds.lock().unwrap().push(Arc::downgrade(feed));
    }

    /// Counts the RTP packets the payloader sends to this viewer, and
    /// learns their SSRC.
    pub fn count_sent(self: &Arc<Self>, pad: &gst::Pad) {
        let monitor = Arc::downgrade(self);
        pad.add_probe(
            gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
            move |pad, info| {
                let Some(monitor) = monitor.upgrade() else {
                    return gst::PadProbeReturn::Remove;
                };
                let (packets, bytes) = match &info.data {
                    Some(gst::PadProbeData::Buffer(buffer)) => (1, buffer.size() as u64),
                    Some(gst::PadProbeData::BufferList(list)) => (
                        list.len() as u64,
                        list.iter().map(|b| b.size() as u64).sum(),
                    ),
                    _ => (0, 0),
                };
                {
                    let mut recent = monitor.recent_packets.lock().unwrap();
                    let mut record = |buffer: &gst::BufferRef| recent.record_buffer(buffer);
                    match &info.data {
                        Some(gst::PadProbeData::Buffer(buffer)) => record(buffer),
                        Some(gst::PadProbeData::BufferList(list)) => list.iter().for_each(record),
                        _ => {}
                    }
                }
                monitor.packets_sent.fetch_add(packets, Ordering::Relaxed);
                monitor.bytes_sent.fetch_add(bytes, Ordering::Relaxed);
                if monitor.video_ssrc.load(Ordering::Relaxed) == 0
                    && let Some(ssrc) = pad
                        .current_caps()
                        .and_then(|caps| caps.structure(0)?.get::<u32>("ssrc").ok())
                {
                    monitor.video_ssrc.store(ssrc, Ordering::Relaxed);
                }
                gst::PadProbeReturn::Ok
            },
        );
    }

    /// Listens to the viewer's RTCP; call once connected, when the RTP
    /// session inside webrtcbin exists. Once: later calls do nothing.
    pub fn listen(self: &Arc<Self>, session: &WebRtcSession) {
        let Some(internal) = internal_rtp_session(&session.webrtcbin) else {
            gst::warning!(
                super::imp::CAT,
                "no RTP session found in {}: this viewer gets no adaptation",
                session.webrtcbin.name()
            );
            return;
        };
        if self.listening.swap(true, Ordering::Relaxed) {
            return;
        }
        if glib::subclass::signal::SignalId::lookup("on-receiving-rtcp", internal.type_()).is_some()
        {
            let monitor = Arc::downgrade(self);
            internal.connect("on-receiving-rtcp", false, move |values| {
                let buffer = values.get(1)?.get::<gst::Buffer>().ok()?;
                let monitor = monitor.upgrade()?;
                if let Ok(map) = buffer.map_readable() {
                    monitor.on_rtcp(&rtcp::parse(&map));
                }
                None
            });
        }
        *self.connected_at.lock().unwrap() = Some(Instant::now());
        self.listen_transport_cc(&session.webrtcbin);
        *self.webrtcbin.lock().unwrap() = Some(session.webrtcbin.clone());
        // Going up is probed with padding where the viewer takes
        // retransmissions (probe.rs); elsewhere by switching.
        if let Some(padder) = Padder::find(&session.webrtcbin, self.recent_packets.clone()) {
            *self.padder.lock().unwrap() = Some(padder);
            self.adaptation.lock().unwrap().set_padding_probes(true);
        }
    }

    /// Takes the transport-cc feedback the viewer's RTP session parsed.
    /// GStreamer 1.22's rtpsession matches each feedback message with the
    /// packets it sent and pushes the result upstream from its
    /// `send_rtp_sink` pad, as a custom event `RTPTWCCPackets` (what
    /// gst-plugins-rs's congestion control element reads): caught there,
    /// on the thread that received the RTCP.
    fn listen_transport_cc(self: &Arc<Self>, webrtcbin: &gst::Element) {
        let Some(rtpsession) = rtp_session_element(webrtcbin) else {
            return;
        };
        let monitor = Arc::downgrade(self);
        let attach = move |pad: &gst::Pad| {
            let monitor = monitor.clone();
            pad.add_probe(gst::PadProbeType::EVENT_UPSTREAM, move |_, info| {
                let Some(monitor) = monitor.upgrade() else {
                    return gst::PadProbeReturn::Remove;
                };
                let is_feedback = if let Some(event) = info.event()
                    && event.type_() == gst::EventType::CustomUpstream
                    && let Some(structure) = event.structure()
                    && structure.name() == "RTPTWCCPackets"
                {
                    monitor.on_transport_feedback(structure);
                    true
                } else {
                    false
                };
                if !is_feedback {
                    return gst::PadProbeReturn::Ok;
                }
                // Read: nothing upstream wants it. Let through, it
                // travelled up through rtpbin, the funnel, webrtcbin's pads
                // and the payloader, 20 times a second per viewer. Taken
                // and handled, not dropped: see the keyframe requests in
                // viewer.rs (GStreamer 1.22 logs a critical per dropped
                // upstream event).
                drop(info.take_event());
                gst::PadProbeReturn::Handled
            });
        };
        match rtpsession.static_pad("send_rtp_sink") {
            Some(pad) => attach(&pad),
            // Requested once webrtcbin links what it sends.
            None => {
                rtpsession.connect_pad_added(move |_, pad| {
                    if pad.name() == "send_rtp_sink" {
                        attach(pad);
                    }
                });
            }
        }
    }

    /// `payloader` adds the transport-cc extension to this viewer's
    /// packets (negotiated in our offer).
    pub fn watch_transport_cc(&self, payloader: &gst::Element) {
        self.transport_payloaders
            .lock()
            .unwrap()
            .push(payloader.downgrade());
    }

    /// GStreamer 1.22's rtpsession keeps every packet it numbers for
    /// transport-cc until feedback about it comes: for a viewer that
    /// accepted the extension but never sends feedback it would grow by
    /// every packet sent (~12 kB/s at 600 kbit/s), for the session's
    /// life. Such a viewer's payloaders stop adding the extension once
    /// [`TRANSPORT_CC_GRACE`] has passed without any.
    fn drop_unread_transport_cc(&self, now: Instant) {
        let Some(connected) = *self.connected_at.lock().unwrap() else {
            return;
        };
        let read = self.transport.lock().unwrap().reports() > 0;
        if !read && now.saturating_duration_since(connected) < TRANSPORT_CC_GRACE {
            return;
        }
        let payloaders = std::mem::take(&mut *self.transport_payloaders.lock().unwrap());
        if read {
            return;
        }
        for payloader in payloaders.iter().filter_map(|p| p.upgrade()) {
            gst::info!(
                super::imp::CAT,
                obj = payloader,
                "no transport-cc feedback from the viewer in {TRANSPORT_CC_GRACE:?}: \
                 the extension is dropped"
            );
            payloader.set_property("auto-header-extension", false);
            payloader.emit_by_name::<()>("clear-extensions", &[]);
        }
    }

    fn on_transport_feedback(&self, feedback: &gst::StructureRef) {
        let packets = packet_reports(feedback);
        let congestion = self.transport.lock().unwrap().on_feedback(&packets);
        let Some(congestion) = congestion else {
            return;
        };
        gst::debug!(
            super::imp::CAT,
            "transport-cc: path overused: {congestion:?}"
        );
        // A padding probe under way is what filled the queue: stop it now,
        // before the viewer's packets are late.
        if let Some(probe) = self.probe.lock().unwrap().as_mut() {
            probe.congested();
        }
        let decision = self
            .adaptation
            .lock()
            .unwrap()
            .feedback(Instant::now(), Feedback::Congestion(congestion.available));
        self.apply(decision);
    }

    fn on_rtcp(&self, feedback: &rtcp::Feedback) {
        self.rtcp_packets.fetch_add(1, Ordering::Relaxed);
        let ssrc = self.video_ssrc.load(Ordering::Relaxed);
        gst::trace!(
            super::imp::CAT,
            "RTCP for video SSRC {ssrc:#x}: {feedback:?}"
        );
        let nacked: u32 = feedback
            .nacked
            .iter()
            .filter(|(media, _)| ssrc == 0 || *media == ssrc)
            .map(|(_, lost)| lost)
            .sum();
        self.nacked.fetch_add(nacked as u64, Ordering::Relaxed);
        self.keyframe_requests
            .fetch_add(feedback.keyframe_requests as u64, Ordering::Relaxed);
        if let Some(probe) = self.probe.lock().unwrap().as_mut() {
            let now = Instant::now();
            if nacked > 0 {
                probe.nacked(now, nacked);
            }
            if feedback.keyframe_requests > 0 {
                probe.keyframe_requested();
            }
        }
        // At once: padding that the path does not carry is stopped now.
        self.judge_probe(Instant::now());
        if let Some(report) = feedback.reports.iter().find(|r| r.ssrc == ssrc) {
            self.report_loss.lock().unwrap().report(
                report.fraction_lost,
                report.cumulative_lost,
                report.highest_seq,
            );
        }
        if let Some(remb) = feedback.remb {
            let decision = self
                .adaptation
                .lock()
                .unwrap()
                .feedback(Instant::now(), Feedback::Remb(remb));
            self.apply(decision);
        }
        // Judged as it comes, not at the next tick: a viewer probing a
        // layer its path cannot carry sees a frozen picture meanwhile.
        if feedback.keyframe_requests > 0 {
            let decision = self
                .adaptation
                .lock()
                .unwrap()
                .feedback(Instant::now(), Feedback::KeyframeRequest);
            self.apply(decision);
        }
    }

    /// About once a second: loss from NACKs and reports, round trip,
    /// growth; switches layers when adaptation says so.
    pub fn tick(&self, now: Instant) {
        self.drop_unread_transport_cc(now);
        let packets = self.packets_sent.load(Ordering::Relaxed);
        let bytes = self.bytes_sent.load(Ordering::Relaxed);
        let nacked = self.nacked.load(Ordering::Relaxed);
        let keyframe_requests = self.keyframe_requests.load(Ordering::Relaxed);
        let rtcp_packets = self.rtcp_packets.load(Ordering::Relaxed);
        let round_trip = self.round_trip_raw();
        let (loss, new_rtt, report_of_tick) = {
            let mut tick = self.tick.lock().unwrap();
            let elapsed = now.saturating_duration_since(tick.at).as_secs_f64();
            if elapsed <= 0.0 {
                return;
            }
            tick.sent_bitrate = ((bytes.saturating_sub(tick.bytes)) as f64 * 8.0 / elapsed) as u64;
            let report = self.report_loss.lock().unwrap().tick();
            let counts = TickCounts {
                sent: packets.saturating_sub(tick.packets),
                nacked: nacked.saturating_sub(tick.nacked),
                keyframe_requests: keyframe_requests.saturating_sub(tick.keyframe_requests),
                rtcp_packets: rtcp_packets.saturating_sub(tick.rtcp_packets),
                report,
            };
            let reported_loss = {
                let mut latest = self.reported_loss.lock().unwrap();
                if let Some(report) = report {
                    *latest = report;
                }
                *latest
            };
            let loss = tick.signals.tick(counts, reported_loss);
            tick.at = now;
            tick.packets = packets;
            tick.bytes = bytes;
            tick.nacked = nacked;
            tick.keyframe_requests = keyframe_requests;
            tick.rtcp_packets = rtcp_packets;
            let new_rtt = round_trip.filter(|rtt| tick.last_rtt != Some(*rtt));
            if new_rtt.is_some() {
                tick.last_rtt = new_rtt;
            }
            (loss, new_rtt, report)
        };
        if let (Some(probe), Some(report)) = (self.probe.lock().unwrap().as_mut(), report_of_tick) {
            probe.loss(report);
        }
        self.judge_probe(now);
        if let Some(rtt) = new_rtt
            && let Some(padder) = self.padder.lock().unwrap().as_ref()
        {
            padder.keep_history_for(Duration::from_secs_f64(rtt as f64 / 65536.0));
        }
        let mut adaptation = self.adaptation.lock().unwrap();
        let mut decision = None;
        if let Some(loss) = loss {
            decision = adaptation.feedback(now, Feedback::Loss(loss)).or(decision);
        }
        if let Some(rtt) = new_rtt {
            let rtt = Duration::from_secs_f64(rtt as f64 / 65536.0);
            decision = adaptation
                .feedback(now, Feedback::RoundTrip(rtt))
                .or(decision);
        }
        decision = adaptation.tick(now).or(decision);
        // The last decision stands; the state machine's layer is the truth.
        let decision = decision.map(|_| adaptation.layer());
        let wanted = adaptation.take_probe_wanted();
        let layer = adaptation.layer();
        let rates = wanted.map(|up| (adaptation.bitrate(up), adaptation.bitrate(layer)));
        drop(adaptation);
        if decision.is_some() {
            // Moving: a probe from the layer left means nothing now.
            self.stop_probe();
        } else if let (Some(up), Some((target, current))) = (wanted, rates) {
            self.start_probe(now, up, target, current);
        }
        self.apply(decision);
    }

    /// Starts padding for a probe of layer `up`, unless one runs.
    fn start_probe(&self, now: Instant, up: usize, target: u32, current: u32) {
        let padder = self.padder.lock().unwrap();
        let ssrc = self.video_ssrc.load(Ordering::Relaxed);
        let mut probe = self.probe.lock().unwrap();
        let Some(padder) = padder.as_ref().filter(|_| probe.is_none() && ssrc != 0) else {
            return;
        };
        let started = Probe::start(now, up, target, current);
        gst::debug!(
            super::imp::CAT,
            "probing layer {up} with {} bit/s of padding",
            started.padding
        );
        padder.start(ssrc, started.padding, super::probe::RAMP);
        *probe = Some(started);
        self.probes.fetch_add(1, Ordering::Relaxed);
    }

    fn stop_probe(&self) {
        let stopped = self.probe.lock().unwrap().take().is_some();
        if stopped && let Some(padder) = self.padder.lock().unwrap().as_ref() {
            padder.stop();
        }
    }

    /// Ends the probe under way once judged, and tells the adaptation.
    fn judge_probe(&self, now: Instant) {
        let (layer, held) = {
            let mut probe = self.probe.lock().unwrap();
            let verdict = match probe.as_ref() {
                Some(running) => running.verdict(now),
                None => return,
            };
            let held = match verdict {
                Verdict::Running => return,
                Verdict::Held => true,
                Verdict::Failed(failure) => {
                    gst::debug!(super::imp::CAT, "padding probe failed: {failure:?}");
                    false
                }
            };
            let layer = probe.take().map_or(0, |probe| probe.layer);
            (layer, held)
        };
        if let Some(padder) = self.padder.lock().unwrap().as_ref() {
            padder.stop();
        }
        if held {
            self.probes_held.fetch_add(1, Ordering::Relaxed);
        }
        let decision = self
            .adaptation
            .lock()
            .unwrap()
            .probe_result(now, layer, held);
        self.apply(decision);
    }

    fn apply(&self, decision: Option<usize>) {
        let Some(layer) = decision else { return };
        for feed in self
            .video_feeds
            .lock()
            .unwrap()
            .iter()
            .filter_map(Weak::upgrade)
        {
            feed.switch_to(layer);
        }
    }

    /// A feed moved to `layer` (at a keyframe).
    pub fn switched(&self, _layer: usize) {
        self.switches.fetch_add(1, Ordering::Relaxed);
    }

    /// Round trip of our video stream as the RTP session computed it from
    /// the viewer's reports, in 1/65536 s.
    fn round_trip_raw(&self) -> Option<u32> {
        let webrtcbin = self.webrtcbin.lock().unwrap().clone()?;
        let session = internal_rtp_session(&webrtcbin)?;
        let stats = session.property::<gst::Structure>("stats");
        let sources = stats.get::<glib::ValueArray>("source-stats").ok()?;
        let ssrc = self.video_ssrc.load(Ordering::Relaxed);
        sources
            .iter()
            .filter_map(|value| value.get::<gst::Structure>().ok())
            .filter(|source| source.get::<bool>("internal").unwrap_or(false))
            .filter(|source| source.get::<u32>("ssrc").ok() == Some(ssrc))
            .filter(|source| source.get::<bool>("have-rb").unwrap_or(false))
            .find_map(|source| source.get::<u32>("rb-round-trip").ok())
            .filter(|rtt| *rtt > 0)
    }

    pub fn snapshot(&self) -> ViewerStats {
        let feed = self
            .video_feeds
            .lock()
            .unwrap()
            .iter()
            .find_map(Weak::upgrade);
        let adaptation = self.adaptation.lock().unwrap();
        let tick = self.tick.lock().unwrap();
        let transport = self.transport.lock().unwrap();
        ViewerStats {
            layer: feed
                .as_ref()
                .and_then(|f| f.current_layer())
                .unwrap_or(adaptation.layer()),
            target_layer: feed.as_ref().and_then(|f| f.pending_layer()),
            estimated_bitrate: adaptation.estimate(),
            sent_bitrate: tick.sent_bitrate,
            fraction_lost: *self.reported_loss.lock().unwrap(),
            loss: adaptation.loss(),
            round_trip: adaptation.round_trip(),
            remb: adaptation.remb(),
            packets_sent: self.packets_sent.load(Ordering::Relaxed),
            bytes_sent: self.bytes_sent.load(Ordering::Relaxed),
            packets_nacked: self.nacked.load(Ordering::Relaxed),
            keyframe_requests: self.keyframe_requests.load(Ordering::Relaxed),
            layer_switches: self.switches.load(Ordering::Relaxed),
            probes: self.probes.load(Ordering::Relaxed),
            probes_held: self.probes_held.load(Ordering::Relaxed),
            rtcp_packets: self.rtcp_packets.load(Ordering::Relaxed),
            transport_cc_feedback: transport.reports(),
            congestion_signals: transport.signals(),
            queuing_delay: transport.queuing_delay(),
            received_bitrate: transport.received_rate(),
        }
    }
}

/// What one `RTPTWCCPackets` event says of each packet: send time by our
/// clock, arrival time by the viewer's, or lost. Packets the session could
/// not match with one it sent (no send time) are left out.
fn packet_reports(feedback: &gst::StructureRef) -> Vec<PacketReport> {
    const NONE: u64 = u64::MAX; // GST_CLOCK_TIME_NONE
    // Borrowed, not copied: a copy of each packet's structure per
    // feedback message showed in the 40-viewer benchmark.
    let Ok(packets) = feedback.get::<&glib::ValueArray>("packets") else {
        return Vec::new();
    };
    packets
        .iter()
        .filter_map(|value| value.get::<&gst::StructureRef>().ok())
        .filter_map(|packet| {
            let sent = packet.get::<u64>("local-ts").ok().filter(|t| *t != NONE)?;
            let lost = packet.get::<bool>("lost").unwrap_or(true);
            let arrived = packet
                .get::<u64>("remote-ts")
                .ok()
                .filter(|t| !lost && *t != NONE);
            Some(PacketReport {
                sent: Duration::from_nanos(sent),
                arrived: arrived.map(Duration::from_nanos),
                size: packet.get::<u32>("size").unwrap_or(0),
            })
        })
        .collect()
}

/// The rtpsession element (session 0) of the rtpbin inside `webrtcbin`.
fn rtp_session_element(webrtcbin: &gst::Element) -> Option<gst::Element> {
    crate::common::child_made_by(&rtpbin_of(webrtcbin)?, "rtpsession", false)
}

fn rtpbin_of(webrtcbin: &gst::Element) -> Option<gst::Element> {
    crate::common::child_made_by(webrtcbin, "rtpbin", false)
}

/// The RTPSession object (session 0: everything is bundled) of the rtpbin
/// inside `webrtcbin`.
fn internal_rtp_session(webrtcbin: &gst::Element) -> Option<glib::Object> {
    let rtpbin = rtpbin_of(webrtcbin)?;
    rtpbin.emit_by_name::<Option<glib::Object>>("get-internal-session", &[&0u32])
}
