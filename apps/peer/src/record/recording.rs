//! One publisher's recording: its own pipeline (so one bad stream or
//! disconnect never touches another recording), `peersrc decode=false` →
//! queue per track → Matroska/WebM → file, without re-encoding.
//!
//! The muxer needs every track before it writes its header, and tracks
//! arrive one by one as their first packets do; so each track waits
//! (blocked) until all the tracks the publisher announced are there, or
//! [`TRACK_WAIT`] has passed.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use gst::prelude::*;
use tokio::sync::mpsc;

use super::composite;
use super::naming::{self, NameFields};
use super::sidecar::{self, Sidecar, TrackInfo};
use crate::pipeline::quote;

/// How long the first track waits for the others the publisher announced.
pub const TRACK_WAIT: Duration = Duration::from_secs(3);

#[derive(Debug, Clone)]
pub struct Settings {
    pub room: String,
    /// `ws://host:port/room` of the server.
    pub room_uri: String,
    pub dir: PathBuf,
    pub template: String,
    pub latency_ms: u32,
    /// Bits per second each publisher may send (peersrc `max-bitrate`).
    pub max_bitrate: Option<u32>,
    pub tls_ca_file: Option<String>,
    /// Also decode every track into the composite's channels.
    pub composite: bool,
    pub recorder_id: String,
    /// The recorder's access token, for each publisher's peersrc too.
    pub token: Option<String>,
}

impl Settings {
    /// peersrc properties every recording's source gets from the command
    /// line: trust, the publishers' bitrate cap, the access token.
    pub fn peersrc_options(&self) -> String {
        let mut options = String::new();
        if let Some(ca) = &self.tls_ca_file {
            options.push_str(&format!(" tls-ca-file={}", quote(ca)));
        }
        if let Some(max_bitrate) = self.max_bitrate {
            options.push_str(&format!(" max-bitrate={max_bitrate}"));
        }
        if let Some(token) = &self.token {
            options.push_str(&format!(" token={}", quote(token)));
        }
        options
    }
}

#[derive(Debug)]
pub enum Outcome {
    /// Every track reached the end (the publisher left or we stopped).
    Finished,
    Failed(String),
}

#[derive(Debug)]
pub struct RecorderEvent {
    pub publisher: String,
    pub generation: u64,
    pub outcome: Outcome,
}

struct Track {
    kind: String,
    /// From the track's caps, once they arrive.
    codec: Option<String>,
    caps: Option<gst::Caps>,
    queue: gst::Element,
    block: Option<gst::PadProbeId>,
    first_pts: Option<gst::ClockTime>,
    last_end: Option<gst::ClockTime>,
}

struct Output {
    path: PathBuf,
    container: &'static str,
    started_at: SystemTime,
    /// An exclusive lock on the file, held while it is written: repairs
    /// (`peer record repair`, another recorder starting on the same
    /// directory) leave a locked file alone. The kernel drops it when the
    /// recorder dies, however it dies.
    lock: Option<std::fs::File>,
}

struct Shared {
    settings: Settings,
    publisher: String,
    generation: u64,
    expected_tracks: usize,
    tracks: Mutex<Vec<Track>>,
    output: Mutex<Option<Output>>,
    first_track_at: Mutex<Option<Instant>>,
}

pub struct Recording {
    pub publisher: String,
    /// Distinguishes a publisher's successive recordings (rejoins).
    pub generation: u64,
    pipeline: gst::Pipeline,
    shared: Arc<Shared>,
    stop_requested: Option<Instant>,
}

impl Recording {
    pub fn start(
        settings: &Settings,
        publisher: &str,
        expected_tracks: usize,
        generation: u64,
        events: mpsc::UnboundedSender<RecorderEvent>,
    ) -> anyhow::Result<Recording> {
        let mut description = format!(
            "peersrc name=src uri={} producer={} decode=false eos-on-leave=true latency={} producer-timeout=5",
            quote(&settings.room_uri),
            quote(publisher),
            settings.latency_ms
        );
        description.push_str(&settings.peersrc_options());
        let pipeline = crate::pipeline::launch(&description)?;
        Self::run(
            pipeline,
            settings,
            publisher,
            expected_tracks,
            generation,
            events,
        )
    }

    /// A recording whose tracks come from elsewhere (a PeerJS caller's
    /// pads of a shared peersrc): the caller adds them as pads of
    /// [`Self::source_bin`], named `video_…` / `audio_…` as peersrc's.
    pub fn start_fed(
        settings: &Settings,
        publisher: &str,
        expected_tracks: usize,
        generation: u64,
        events: mpsc::UnboundedSender<RecorderEvent>,
    ) -> anyhow::Result<Recording> {
        let pipeline = gst::Pipeline::new();
        pipeline.add(&gst::Bin::with_name("src"))?;
        Self::run(
            pipeline,
            settings,
            publisher,
            expected_tracks,
            generation,
            events,
        )
    }

    /// The bin a fed recording's tracks are added to.
    pub fn source_bin(&self) -> Option<gst::Bin> {
        self.pipeline.by_name("src")?.downcast().ok()
    }

    fn run(
        pipeline: gst::Pipeline,
        settings: &Settings,
        publisher: &str,
        expected_tracks: usize,
        generation: u64,
        events: mpsc::UnboundedSender<RecorderEvent>,
    ) -> anyhow::Result<Recording> {
        let shared = Arc::new(Shared {
            settings: settings.clone(),
            publisher: publisher.to_owned(),
            generation,
            expected_tracks: expected_tracks.max(1),
            tracks: Mutex::new(Vec::new()),
            output: Mutex::new(None),
            first_track_at: Mutex::new(None),
        });

        let source = pipeline.by_name("src").expect("named src");
        let weak_pipeline = pipeline.downgrade();
        let track_shared = shared.clone();
        source.connect_pad_added(move |_, pad| {
            if let Some(pipeline) = weak_pipeline.upgrade()
                && let Err(err) = add_track(&pipeline, &track_shared, pad)
            {
                eprintln!(
                    "recording {}: cannot record {}: {err:#}",
                    track_shared.publisher,
                    pad.name()
                );
            }
        });

        let bus = pipeline.bus().expect("pipelines have a bus");
        let name = publisher.to_owned();
        let dir = settings.dir.clone();
        bus.set_sync_handler(move |_, message| {
            let outcome = match message.view() {
                gst::MessageView::Eos(_) => Some(Outcome::Finished),
                gst::MessageView::Error(err) => Some(Outcome::Failed(failure_text(&err, &dir))),
                _ => None,
            };
            if let Some(outcome) = outcome {
                let _ = events.send(RecorderEvent {
                    publisher: name.clone(),
                    generation,
                    outcome,
                });
            }
            gst::BusSyncReply::Drop
        });
        pipeline
            .set_state(gst::State::Playing)
            .context("cannot start the recording pipeline")?;
        Ok(Recording {
            publisher: publisher.to_owned(),
            generation,
            pipeline,
            shared,
            stop_requested: None,
        })
    }

    /// Starts writing with the tracks present once the wait for the others
    /// is over.
    pub fn check_waiting_tracks(&self) {
        let overdue = self
            .shared
            .first_track_at
            .lock()
            .unwrap()
            .is_some_and(|first| first.elapsed() >= TRACK_WAIT);
        if overdue && self.shared.output.lock().unwrap().is_none() {
            let present = self.shared.tracks.lock().unwrap().len();
            eprintln!(
                "recording {}: {} of {} announced tracks arrived; recording those",
                self.publisher, present, self.shared.expected_tracks
            );
            if let Err(err) = open_output(&self.pipeline, &self.shared) {
                could_not_open(&self.pipeline, &self.shared, &err);
            }
        }
    }

    /// Asks every track to end, so the file is finalized.
    pub fn request_stop(&mut self) {
        if self.stop_requested.is_none() {
            self.stop_requested = Some(Instant::now());
            self.pipeline.send_event(gst::event::Eos::new());
        }
    }

    pub fn stop_requested_for(&self) -> Option<Duration> {
        self.stop_requested.map(|at| at.elapsed())
    }

    pub fn bytes_written(&self) -> u64 {
        self.path()
            .and_then(|path| std::fs::metadata(path).ok())
            .map_or(0, |m| m.len())
    }

    pub fn path(&self) -> Option<PathBuf> {
        self.shared
            .output
            .lock()
            .unwrap()
            .as_ref()
            .map(|output| output.path.clone())
    }

    pub fn duration(&self) -> Duration {
        duration_of(&self.shared.tracks.lock().unwrap())
    }

    /// What arrives from the publisher now, per track, for the progress
    /// lines: `cam: video VP8 1280x720 30 fps 1450 kbit/s, audio OPUS 33 kbit/s`.
    pub fn progress(&self) -> Option<String> {
        let source = self.pipeline.by_name("src")?;
        // A fed recording's source is a plain bin: no figures of its own.
        source.find_property("stats")?;
        let stats = source.property::<gst::Structure>("stats");
        let tracks = stats.get::<gst::Structure>("tracks").ok()?;
        let described: Vec<String> = tracks
            .iter()
            .filter_map(|(_, value)| value.get::<gst::Structure>().ok())
            .map(|track| describe_track(&track))
            .collect();
        (!described.is_empty()).then(|| format!("{}: {}", self.publisher, described.join(", ")))
    }

    /// Stops the pipeline and writes the final sidecar; returns a line for people.
    pub fn finish(self, cleanly: bool, reason: &str) -> String {
        let _ = self.pipeline.set_state(gst::State::Null);
        let duration = self.duration();
        let bytes = self.bytes_written();
        let Some(path) = self.path() else {
            return format!("{}: nothing recorded ({reason})", self.publisher);
        };
        let sidecar = build_sidecar(&self.shared, cleanly, Some(reason));
        if let Err(err) = sidecar.write(&path) {
            eprintln!("cannot write {}: {err}", sidecar::path_for(&path).display());
        }
        if let Some(output) = self.shared.output.lock().unwrap().as_mut() {
            output.lock = None;
        }
        format!(
            "finished {}: {:.1} s, {} → {} ({reason})",
            self.publisher,
            duration.as_secs_f64(),
            human_bytes(bytes),
            path.display()
        )
    }
}

fn add_track(pipeline: &gst::Pipeline, shared: &Arc<Shared>, pad: &gst::Pad) -> anyhow::Result<()> {
    let kind = if pad.name().starts_with("video") {
        "video"
    } else {
        "audio"
    };
    if shared.output.lock().unwrap().is_some() {
        // The file's header is written; a late track cannot join it.
        eprintln!(
            "recording {}: track {} came too late and is dropped",
            shared.publisher,
            pad.name()
        );
        let sink = gst::ElementFactory::make("fakesink")
            .property("async", false)
            .build()?;
        pipeline.add(&sink)?;
        sink.sync_state_with_parent()?;
        pad.link(&sink.static_pad("sink").expect("sink pad"))?;
        return Ok(());
    }
    // Holds what arrives while the other tracks are awaited.
    let queue = gst::ElementFactory::make("queue")
        .property("max-size-buffers", 0u32)
        .property("max-size-bytes", 0u32)
        .property(
            "max-size-time",
            (TRACK_WAIT + Duration::from_secs(2)).as_nanos() as u64,
        )
        .build()?;
    pipeline.add(&queue)?;
    queue.sync_state_with_parent()?;
    let src = queue.static_pad("src").expect("queues have a src pad");
    let block = src.add_probe(gst::PadProbeType::BLOCK_DOWNSTREAM, |_, _| {
        gst::PadProbeReturn::Ok
    });
    // The track takes its place before anything can flow (tracks arrive
    // from several streaming threads at once); it is only ever appended,
    // so `index` stays its own.
    let index = {
        let mut tracks = shared.tracks.lock().unwrap();
        tracks.push(Track {
            kind: kind.to_owned(),
            codec: None,
            caps: None,
            queue: queue.clone(),
            block,
            first_pts: None,
            last_end: None,
        });
        tracks.len() - 1
    };
    let timing = Arc::downgrade(shared);
    src.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if let (Some(buffer), Some(shared)) = (info.buffer(), timing.upgrade())
            && let Some(pts) = buffer.pts()
        {
            let mut tracks = shared.tracks.lock().unwrap();
            if let Some(track) = tracks.get_mut(index) {
                track.first_pts.get_or_insert(pts);
                track.last_end = Some(pts + buffer.duration().unwrap_or(gst::ClockTime::ZERO));
            }
        }
        gst::PadProbeReturn::Ok
    });
    // The container depends on the codecs, known from each track's caps.
    let caps_shared = Arc::downgrade(shared);
    let caps_pipeline = pipeline.downgrade();
    queue
        .static_pad("sink")
        .expect("queues have a sink pad")
        .add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
            let Some(gst::EventView::Caps(caps)) = info.event().map(|e| e.view()) else {
                return gst::PadProbeReturn::Ok;
            };
            let (Some(shared), Some(pipeline)) = (caps_shared.upgrade(), caps_pipeline.upgrade())
            else {
                return gst::PadProbeReturn::Ok;
            };
            let codec = caps
                .caps()
                .structure(0)
                .map(|s| codec_name(s.name().as_str()));
            let ready = {
                let mut tracks = shared.tracks.lock().unwrap();
                if let Some(track) = tracks.get_mut(index) {
                    track.codec = codec;
                    track.caps = Some(caps.caps_owned());
                }
                tracks.len() >= shared.expected_tracks && tracks.iter().all(|t| t.codec.is_some())
            };
            if ready && let Err(err) = open_output(&pipeline, &shared) {
                could_not_open(&pipeline, &shared, &err);
            }
            gst::PadProbeReturn::Ok
        });
    pad.link(&queue.static_pad("sink").expect("queues have a sink pad"))?;
    shared
        .first_track_at
        .lock()
        .unwrap()
        .get_or_insert_with(Instant::now);
    Ok(())
}

/// A recording whose file could not be opened (or its sidecar written)
/// ends with the reason, rather than waiting with its tracks blocked.
fn could_not_open(pipeline: &gst::Pipeline, shared: &Shared, err: &anyhow::Error) {
    eprintln!("recording {}: {err:#}", shared.publisher);
    let full = err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::StorageFull)
    });
    let kind = if full {
        gst::ResourceError::NoSpaceLeft
    } else {
        gst::ResourceError::OpenWrite
    };
    let message = gst::message::Error::builder(kind, &format!("{err:#}")).build();
    let _ = pipeline.post_message(message);
}

/// Creates the muxer and file for the tracks present and lets them flow.
fn open_output(pipeline: &gst::Pipeline, shared: &Arc<Shared>) -> anyhow::Result<()> {
    let mut output_slot = shared.output.lock().unwrap();
    if output_slot.is_some() {
        return Ok(());
    }
    let mut tracks = shared.tracks.lock().unwrap();
    // A track whose caps never came cannot be muxed; it is drained instead.
    if tracks.iter().all(|t| t.codec.is_none()) {
        anyhow::bail!("no track could be recorded (no caps arrived)");
    }
    let webm = tracks
        .iter()
        .filter_map(|t| t.codec.as_deref())
        .all(|codec| matches!(codec, "VP8" | "VP9" | "OPUS"));
    let (muxer, container, extension) = if webm {
        ("webmmux", "webm", "webm")
    } else {
        ("matroskamux", "matroska", "mkv")
    };
    let started_at = SystemTime::now();
    let (path, lock) = naming::create_recording(
        &shared.settings.dir,
        &shared.settings.template,
        &NameFields {
            room: &shared.settings.room,
            publisher: &shared.publisher,
            start: started_at,
            has_video: tracks
                .iter()
                .any(|t| t.kind == "video" && t.codec.is_some()),
            has_audio: tracks
                .iter()
                .any(|t| t.kind == "audio" && t.codec.is_some()),
            extension,
        },
    )?;
    let mux = gst::ElementFactory::make(muxer)
        // A cluster at least every second: a killed recorder loses at most that.
        .property("max-cluster-duration", 1_000_000_000i64)
        .property("offset-to-zero", true)
        .property("writing-app", "gst-peer record")
        .build()?;
    let sink = gst::ElementFactory::make("filesink")
        .property("location", path.to_string_lossy().as_ref())
        .property("sync", false)
        .property("async", false)
        // Every block goes to the kernel as the muxer makes it: a killed
        // recorder loses nothing it had muxed (however low the bitrate),
        // and a full disk is seen at the block that does not fit.
        .property_from_str("buffer-mode", "unbuffered")
        .property("enable-last-sample", false)
        .build()?;
    pipeline.add_many([&mux, &sink])?;
    mux.link(&sink)?;
    sink.sync_state_with_parent()?;
    mux.sync_state_with_parent()?;
    for track in tracks.iter_mut() {
        let src = track
            .queue
            .static_pad("src")
            .expect("queues have a src pad");
        if let Some(codec) = &track.codec {
            let mux_pad = mux
                .request_pad_simple(&format!("{}_%u", track.kind))
                .with_context(|| format!("{muxer} refused a {} track", track.kind))?;
            if shared.settings.composite {
                let (video_channel, audio_channel) = composite::channel_names(
                    &shared.settings.recorder_id,
                    &shared.publisher,
                    shared.generation,
                );
                let channel = if track.kind == "video" {
                    video_channel
                } else {
                    audio_channel
                };
                let tee = gst::ElementFactory::make("tee").build()?;
                pipeline.add(&tee)?;
                tee.sync_state_with_parent()?;
                src.link(&tee.static_pad("sink").expect("tee sink"))?;
                tee.request_pad_simple("src_%u")
                    .expect("tee src")
                    .link(&mux_pad)?;
                let decoder = decoder_branch(codec, &track.kind, &channel)?;
                pipeline.add(&decoder)?;
                decoder.sync_state_with_parent()?;
                tee.request_pad_simple("src_%u")
                    .expect("tee src")
                    .link(&decoder.static_pad("sink").expect("ghost sink"))?;
            } else {
                src.link(&mux_pad)?;
            }
        } else {
            let drain = gst::ElementFactory::make("fakesink")
                .property("async", false)
                .build()?;
            pipeline.add(&drain)?;
            drain.sync_state_with_parent()?;
            src.link(&drain.static_pad("sink").expect("sink pad"))?;
        }
        if let Some(block) = track.block.take() {
            src.remove_probe(block);
        }
    }
    drop(tracks);
    *output_slot = Some(Output {
        path: path.clone(),
        container,
        started_at,
        lock: Some(lock),
    });
    drop(output_slot);
    let sidecar = build_sidecar(shared, false, None);
    sidecar
        .write(&path)
        .with_context(|| format!("cannot write the sidecar of {}", path.display()))?;
    println!("recording {} → {}", shared.publisher, path.display());
    Ok(())
}

/// The reason a recording failed, for its `finished` line and sidecar:
/// a full disk is named as such, with the directory to free space in.
fn failure_text(err: &gst::message::Error, dir: &std::path::Path) -> String {
    if err.error().matches(gst::ResourceError::NoSpaceLeft) {
        format!(
            "disk full: no space left in {}; the recording ends here, its file plays up to \
             this point, and new recordings start once there is space",
            dir.display()
        )
    } else {
        err.error().to_string()
    }
}

/// Decodes a track into the composite's inter-element channel; leaky, so
/// a slow composite never holds up the recording itself.
fn decoder_branch(codec: &str, kind: &str, channel: &str) -> anyhow::Result<gst::Element> {
    let decoder = match codec {
        "VP8" => "vp8dec",
        "VP9" => "vp9dec",
        "H264" => "avdec_h264",
        "OPUS" => "opusdec",
        other => anyhow::bail!("the composite cannot decode {other}"),
    };
    let tail = if kind == "video" {
        format!("videoconvert ! intervideosink channel={}", quote(channel))
    } else {
        format!(
            "audioconvert ! audioresample ! interaudiosink channel={}",
            quote(channel)
        )
    };
    let description = format!(
        "queue leaky=downstream max-size-time=500000000 max-size-bytes=0 max-size-buffers=0 ! {decoder} ! {tail}"
    );
    Ok(gst::parse::bin_from_description(&description, true)?.upcast())
}

/// One track of peersrc's `stats` for people.
fn describe_track(track: &gst::StructureRef) -> String {
    let text = |field: &str| track.get::<&str>(field).unwrap_or("?").to_owned();
    let kbits = track.get::<u64>("bitrate").unwrap_or(0) as f64 / 1000.0;
    match (track.get::<u32>("width"), track.get::<u32>("height")) {
        (Ok(width), Ok(height)) => format!(
            "{} {} {width}x{height} {:.0} fps {kbits:.0} kbit/s",
            text("kind"),
            text("codec"),
            track.get::<f64>("framerate").unwrap_or(0.0),
        ),
        _ => format!("{} {} {kbits:.0} kbit/s", text("kind"), text("codec")),
    }
}

fn codec_name(caps_name: &str) -> String {
    match caps_name {
        "video/x-vp8" => "VP8".into(),
        "video/x-vp9" => "VP9".into(),
        "video/x-h264" => "H264".into(),
        "audio/x-opus" => "OPUS".into(),
        other => other.to_owned(),
    }
}

fn track_info(track: &Track) -> TrackInfo {
    let structure = track.caps.as_ref().and_then(|c| c.structure(0));
    let int = |field: &str| structure.and_then(|s| s.get::<i32>(field).ok());
    let framerate = structure
        .and_then(|s| s.get::<gst::Fraction>("framerate").ok())
        .filter(|f| f.denom() != 0 && f.numer() != 0)
        .map(|f| f.numer() as f64 / f.denom() as f64);
    TrackInfo {
        kind: track.kind.clone(),
        codec: track.codec.clone().unwrap_or_default(),
        width: int("width"),
        height: int("height"),
        framerate,
        rate: int("rate"),
        channels: int("channels"),
    }
}

fn duration_of(tracks: &[Track]) -> Duration {
    let first = tracks.iter().filter_map(|t| t.first_pts).min();
    let last = tracks.iter().filter_map(|t| t.last_end).max();
    match (first, last) {
        (Some(first), Some(last)) if last > first => {
            Duration::from_nanos((last - first).nseconds())
        }
        _ => Duration::ZERO,
    }
}

fn build_sidecar(shared: &Shared, cleanly: bool, reason: Option<&str>) -> Sidecar {
    let output = shared.output.lock().unwrap();
    let output = output.as_ref().expect("the sidecar follows the file");
    let tracks = shared.tracks.lock().unwrap();
    Sidecar {
        room: shared.settings.room.clone(),
        publisher: shared.publisher.clone(),
        file: output
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        container: output.container.to_owned(),
        started_at: sidecar::rfc3339(output.started_at),
        ended_at: reason.map(|_| sidecar::rfc3339(SystemTime::now())),
        duration_seconds: (duration_of(&tracks).as_secs_f64() * 1000.0).round() / 1000.0,
        bytes: std::fs::metadata(&output.path).map_or(0, |m| m.len()),
        tracks: tracks
            .iter()
            .filter(|t| t.codec.is_some())
            .map(track_info)
            .collect(),
        ended_cleanly: cleanly,
        end_reason: reason.map(str::to_owned),
        recorder: format!("gst-peer {}", env!("CARGO_PKG_VERSION")),
        repaired_at: None,
        repair_error: None,
        other: Default::default(),
    }
}

pub fn human_bytes(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.2} GiB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.0} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}
