//! One viewer: a str0m `Rtc` in RTP mode on its own UDP socket, driven by
//! one task. str0m does ICE, DTLS-SRTP, receiver reports and NACKs; the
//! task feeds it packets and timeouts, counts VP8 frames (frames.rs) and
//! sends a PLI when the counter asks for a keyframe.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use str0m::change::SdpOffer;
use str0m::config::DtlsCert;
use str0m::format::Codec;
use str0m::media::{KeyframeRequestKind, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::Ssrc;
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::watch;

use crate::FarmError;
use crate::frames::{FrameCounter, Packet};
use crate::freeze::FreezeMeter;
use crate::signal::{Signal, SignalEvent, Target};
use crate::unsignalled::Unsignalled;

/// Where a viewer is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    Signalling = 0,
    Connecting = 1,
    Connected = 2,
    /// At least one decodable frame.
    Receiving = 3,
    Failed = 4,
    Stopped = 5,
}

impl Phase {
    fn from_u8(value: u8) -> Phase {
        match value {
            0 => Phase::Signalling,
            1 => Phase::Connecting,
            2 => Phase::Connected,
            3 => Phase::Receiving,
            4 => Phase::Failed,
            _ => Phase::Stopped,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Phase::Signalling => "signalling",
            Phase::Connecting => "connecting",
            Phase::Connected => "connected",
            Phase::Receiving => "receiving",
            Phase::Failed => "failed",
            Phase::Stopped => "stopped",
        }
    }
}

/// Counters of one viewer, written by its task, read by the reporter.
#[derive(Debug, Default)]
pub struct ViewerStats {
    phase: AtomicU8,
    pub decodable: AtomicU64,
    pub complete: AtomicU64,
    pub keyframes: AtomicU64,
    pub incomplete: AtomicU64,
    pub skipped: AtomicU64,
    pub packets: AtomicU64,
    pub bytes: AtomicU64,
    pub nacks: AtomicU64,
    pub plis: AtomicU64,
    /// Start of the viewer → connected (ICE + DTLS), µs; 0 until then.
    pub connected_us: AtomicU64,
    /// Start of the viewer → first decodable frame, µs; 0 until then.
    pub first_frame_us: AtomicU64,
    /// 1 once the signalling connection was lost with the media flowing
    /// (a server restart): the viewer goes on watching without it.
    pub signalling_lost: AtomicU64,
    /// Freezes of the decodable frames' arrival (freeze.rs's definition),
    /// since the first frame: frozen µs, how many, the longest gap in µs.
    pub frozen_us: AtomicU64,
    pub freezes: AtomicU64,
    pub longest_gap_us: AtomicU64,
    pub error: Mutex<Option<String>>,
}

impl ViewerStats {
    pub fn phase(&self) -> Phase {
        Phase::from_u8(self.phase.load(Ordering::Acquire))
    }

    fn set_phase(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::Release);
    }

    fn fail(&self, error: &FarmError) {
        *self.error.lock().unwrap() = Some(error.to_string());
        self.set_phase(Phase::Failed);
    }
}

/// What every viewer of a farm shares.
#[derive(Clone)]
pub struct ViewerSetup {
    pub target: Target,
    pub bind: IpAddr,
    /// One certificate for all: generating one per viewer costs the farm
    /// CPU without changing anything the sender does.
    pub cert: DtlsCert,
    /// How long signalling plus connecting may take.
    pub connect_timeout: Duration,
}

/// Runs one viewer until `stop` turns true or it fails; failures are
/// recorded in `stats`.
pub async fn run(setup: ViewerSetup, stats: Arc<ViewerStats>, stop: watch::Receiver<bool>) {
    let started = Instant::now();
    match watch(&setup, &stats, stop, started).await {
        Ok(()) => stats.set_phase(Phase::Stopped),
        Err(err) => stats.fail(&err),
    }
}

async fn watch(
    setup: &ViewerSetup,
    stats: &ViewerStats,
    mut stop: watch::Receiver<bool>,
    started: Instant,
) -> Result<(), FarmError> {
    let deadline = tokio::time::Instant::from_std(started + setup.connect_timeout);
    let (mut signal, socket, mut rtc, unsignalled) =
        tokio::time::timeout_at(deadline, negotiate(setup, stats))
            .await
            .map_err(|_| FarmError::Timeout("an offer", setup.connect_timeout))??;
    stats.set_phase(Phase::Connecting);
    let local = socket.local_addr()?;
    let mut session = Session {
        rtc: &mut rtc,
        socket: &socket,
        local,
        stats,
        started,
        counter: FrameCounter::default(),
        freezes: FreezeMeter::default(),
        vp8: Vec::new(),
        video_ssrc: None,
        unsignalled,
    };
    session.drain()?;
    let mut buf = vec![0u8; 2048];
    // Media does not pass through the server: once connected, a lost
    // signalling connection (the server restarted) leaves the session as
    // it is, as it leaves a browser's.
    let mut signalling_up = true;
    loop {
        let timeout = session.drain()?;
        if session.stats.phase() == Phase::Connecting && tokio::time::Instant::now() > deadline {
            return Err(FarmError::Timeout("ICE and DTLS", setup.connect_timeout));
        }
        tokio::select! {
            ready = socket.readable() => {
                ready?;
                // Everything queued on the socket, one packet at a time
                // through str0m (each input must be drained before the next).
                loop {
                    match socket.try_recv_from(&mut buf) {
                        Ok((n, source)) => session.receive(source, &buf[..n])?,
                        Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(err) => return Err(err.into()),
                    }
                }
            }
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(timeout)) => {
                session.rtc.handle_input(Input::Timeout(Instant::now()))?;
            }
            event = signal.next(), if signalling_up => match event {
                Ok(SignalEvent::Candidate(line)) => session.add_remote_candidate(&line)?,
                Ok(SignalEvent::Offer(_)) => {
                    return Err(FarmError::Signalling("a second offer".into()));
                }
                Ok(SignalEvent::EndOfCandidates) => {}
                Ok(SignalEvent::Ended(reason)) => return Err(FarmError::SessionEnded(reason)),
                Err(FarmError::Signalling(_))
                    if matches!(session.stats.phase(), Phase::Connected | Phase::Receiving) =>
                {
                    signalling_up = false;
                    session.stats.signalling_lost.store(1, Ordering::Relaxed);
                }
                Err(err) => return Err(err),
            },
            _ = stop.changed() => {
                session.rtc.disconnect();
                // A WebSocket close, as a closing tab's (Farm::leave waits for it).
                signal.close(Duration::from_secs(2)).await;
                return Ok(());
            }
        }
    }
}

/// Signalling up to our answer: the socket is bound and its candidate
/// sent before anything else can arrive on it.
async fn negotiate(
    setup: &ViewerSetup,
    stats: &ViewerStats,
) -> Result<(Signal, UdpSocket, Rtc, Unsignalled), FarmError> {
    stats.set_phase(Phase::Signalling);
    let socket = UdpSocket::bind(SocketAddr::new(setup.bind, 0)).await?;
    let local = socket.local_addr()?;
    let mut rtc = Rtc::builder()
        .set_rtp_mode(true)
        .set_dtls_cert(setup.cert.clone())
        .set_stats_interval(Some(Duration::from_secs(1)))
        .build(Instant::now());
    let candidate = Candidate::host(local, "udp").map_err(|e| FarmError::Offer(e.to_string()))?;
    rtc.add_local_candidate(candidate.clone());
    let mut signal = Signal::start(&setup.target).await?;
    let mut early = Vec::new();
    let offer = loop {
        match signal.next().await? {
            SignalEvent::Offer(sdp) => break sdp,
            SignalEvent::Candidate(line) => early.push(line),
            SignalEvent::EndOfCandidates => {}
            SignalEvent::Ended(reason) => return Err(FarmError::SessionEnded(reason)),
        }
    };
    let unsignalled = Unsignalled::from_offer(&offer);
    let offer = SdpOffer::from_sdp_string(&offer).map_err(|e| FarmError::Offer(e.to_string()))?;
    let answer = rtc
        .sdp_api()
        .accept_offer(offer)
        .map_err(|e| FarmError::Offer(e.to_string()))?;
    signal.answer(answer.to_sdp_string()).await?;
    // The answer carries the candidate too; webrtcbin also gets it on its
    // own, as browsers trickle theirs.
    signal.candidate(candidate.to_sdp_string()).await?;
    for line in early {
        add_candidate(&mut rtc, &line)?;
    }
    Ok((signal, socket, rtc, unsignalled))
}

fn add_candidate(rtc: &mut Rtc, line: &str) -> Result<(), FarmError> {
    let line = line.trim();
    let line = line.strip_prefix("a=").unwrap_or(line);
    match Candidate::from_sdp_string(line) {
        Ok(candidate) => {
            rtc.add_remote_candidate(candidate);
            Ok(())
        }
        // TCP and other candidates str0m cannot use are skipped, as a
        // browser skips what it does not support.
        Err(_) => Ok(()),
    }
}

struct Session<'a> {
    rtc: &'a mut Rtc,
    socket: &'a UdpSocket,
    local: SocketAddr,
    stats: &'a ViewerStats,
    started: Instant,
    counter: FrameCounter,
    freezes: FreezeMeter,
    /// VP8 payload types of the session (found on first use).
    vp8: Vec<(Pt, bool)>,
    video_ssrc: Option<Ssrc>,
    unsignalled: Unsignalled,
}

impl Session<'_> {
    fn add_remote_candidate(&mut self, line: &str) -> Result<(), FarmError> {
        add_candidate(self.rtc, line)?;
        self.drain().map(|_| ())
    }

    fn receive(&mut self, source: SocketAddr, data: &[u8]) -> Result<(), FarmError> {
        let rtc = &mut *self.rtc;
        let declare = self.unsignalled.check(data, |ssrc| {
            rtc.direct_api().stream_rx(&Ssrc::from(ssrc)).is_some()
        });
        if let Some(declare) = declare {
            let mid = Mid::from(declare.mid.as_str());
            if self.rtc.media(mid).is_some() {
                self.rtc.direct_api().expect_stream_rx(
                    declare.ssrc.into(),
                    declare.rtx.map(Ssrc::from),
                    mid,
                    None,
                );
                self.drain()?;
            }
        }
        let Ok(receive) = Receive::new(Protocol::Udp, source, self.local, data) else {
            return Ok(()); // not STUN, DTLS or (S)RTP: not for us
        };
        self.rtc
            .handle_input(Input::Receive(Instant::now(), receive))?;
        self.drain().map(|_| ())
    }

    /// Polls str0m until it only has a timeout left: sends what it
    /// transmits, handles its events. Returns the timeout.
    fn drain(&mut self) -> Result<Instant, FarmError> {
        loop {
            match self.rtc.poll_output()? {
                Output::Timeout(at) => return Ok(at),
                Output::Transmit(transmit) => {
                    // A full socket buffer loses the packet, as UDP would.
                    let _ = self
                        .socket
                        .try_send_to(&transmit.contents, transmit.destination);
                }
                Output::Event(event) => self.on_event(event)?,
            }
        }
    }

    fn on_event(&mut self, event: Event) -> Result<(), FarmError> {
        match event {
            Event::Connected => {
                self.stats
                    .connected_us
                    .store(self.started.elapsed().as_micros() as u64, Ordering::Relaxed);
                self.stats.set_phase(Phase::Connected);
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                return Err(FarmError::Disconnected);
            }
            Event::RtpPacket(packet) => {
                if !self.is_vp8(packet.header.payload_type) {
                    return Ok(());
                }
                self.video_ssrc = Some(packet.header.ssrc);
                let stats = self.stats;
                stats.packets.fetch_add(1, Ordering::Relaxed);
                stats
                    .bytes
                    .fetch_add(packet.payload.len() as u64, Ordering::Relaxed);
                let now = Instant::now();
                let decoded = self.counter.push(
                    Packet {
                        seq: *packet.seq_no,
                        timestamp: packet.time.numer(),
                        marker: packet.header.marker,
                        payload: &packet.payload,
                    },
                    now,
                );
                if decoded > 0 && stats.first_frame_us.load(Ordering::Relaxed) == 0 {
                    stats
                        .first_frame_us
                        .store(self.started.elapsed().as_micros() as u64, Ordering::Relaxed);
                    stats.set_phase(Phase::Receiving);
                }
                if decoded > 0 {
                    for _ in 0..decoded {
                        self.freezes.frame(now.duration_since(self.started));
                    }
                    let freezes = &self.freezes;
                    stats
                        .frozen_us
                        .store(freezes.frozen.as_micros() as u64, Ordering::Relaxed);
                    stats.freezes.store(freezes.freeze_count, Ordering::Relaxed);
                    stats
                        .longest_gap_us
                        .store(freezes.longest_gap.as_micros() as u64, Ordering::Relaxed);
                }
                let counts = self.counter.counts();
                stats.decodable.store(counts.decodable, Ordering::Relaxed);
                stats.complete.store(counts.complete, Ordering::Relaxed);
                stats.keyframes.store(counts.keyframes, Ordering::Relaxed);
                stats.incomplete.store(counts.incomplete, Ordering::Relaxed);
                stats.skipped.store(counts.skipped, Ordering::Relaxed);
                self.maybe_request_keyframe(now);
            }
            // str0m counts the NACKs and PLIs it sent per stream.
            Event::MediaIngressStats(ingress)
                if self
                    .rtc
                    .media(ingress.mid)
                    .is_some_and(|media| media.kind().is_video()) =>
            {
                self.stats.nacks.store(ingress.nacks, Ordering::Relaxed);
                self.stats.plis.store(ingress.plis, Ordering::Relaxed);
            }
            _ => {}
        }
        Ok(())
    }

    fn is_vp8(&mut self, pt: Pt) -> bool {
        if let Some((_, vp8)) = self.vp8.iter().find(|(known, _)| *known == pt) {
            return *vp8;
        }
        let vp8 = self
            .rtc
            .codec_config()
            .find(|params| params.pt() == pt)
            .is_some_and(|params| params.spec().codec == Codec::Vp8);
        self.vp8.push((pt, vp8));
        vp8
    }

    fn maybe_request_keyframe(&mut self, now: Instant) {
        let Some(ssrc) = self.video_ssrc else {
            return;
        };
        if self.counter.wants_keyframe(now)
            && let Some(stream) = self.rtc.direct_api().stream_rx(&ssrc)
        {
            stream.request_keyframe(KeyframeRequestKind::Pli);
        }
    }
}
