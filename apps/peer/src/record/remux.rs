//! Rewriting a Matroska/WebM file through GStreamer's own demuxer and
//! muxer, copying every frame as it is: `filesrc ! matroskademux`, one
//! queue per track, `matroskamux` (or `webmmux`) `! filesink`.
//!
//! The muxer writes the Duration, the Cues (the index players seek with)
//! and the SeekHead only when it finalizes a file; this is how a file whose
//! writer died gets them, written by the same muxer, with the same
//! settings, as a recording that ended cleanly.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;

/// The muxer's settings, as a recording's (see `recording::open_output`).
const MAX_CLUSTER_DURATION: i64 = 1_000_000_000;
/// Per track, what may wait for the other tracks. matroskademux sends GAP
/// events for a track lagging 2 s behind, so queues stay short; the bound
/// only keeps a pathological file from taking the machine's memory.
const QUEUE_BYTES: u32 = 256 << 20;
/// A remux that moves no data for this long has stalled.
const STALL: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum RemuxError {
    #[error("GStreamer element {0} is missing; run scripts/install-deps.sh")]
    MissingElement(&'static str),
    #[error("{0}")]
    Pipeline(String),
    #[error("the demuxer found no track in it")]
    NoTracks,
    #[error("the muxer refused a {0} track")]
    TrackRefused(String),
    #[error("{track} track: {demuxed} frames read but {muxed} written")]
    LostFrames {
        track: String,
        demuxed: u64,
        muxed: u64,
    },
    #[error("no progress for {} s", STALL.as_secs())]
    Stalled,
}

/// What went through, per track.
#[derive(Debug, Clone, Default)]
pub struct TrackCount {
    /// `video` or `audio` (or another caps family).
    pub kind: String,
    pub demuxed: u64,
    pub muxed: u64,
    pub first_pts: Option<gst::ClockTime>,
    pub last_end: Option<gst::ClockTime>,
}

#[derive(Debug, Clone, Default)]
pub struct Remuxed {
    pub tracks: Vec<TrackCount>,
}

impl Remuxed {
    /// Frames of every track of `kind`.
    pub fn frames(&self, kind: &str) -> u64 {
        self.tracks
            .iter()
            .filter(|t| t.kind == kind)
            .map(|t| t.muxed)
            .sum()
    }

    /// From the earliest frame of any track to the end of the latest.
    pub fn span(&self) -> Duration {
        let first = self.tracks.iter().filter_map(|t| t.first_pts).min();
        let last = self.tracks.iter().filter_map(|t| t.last_end).max();
        match (first, last) {
            (Some(first), Some(last)) if last > first => {
                Duration::from_nanos((last - first).nseconds())
            }
            _ => Duration::ZERO,
        }
    }
}

/// Remuxes `input` into `output` with `muxer` (`matroskamux` or `webmmux`).
/// Fails rather than write a file missing any frame the demuxer read.
pub fn remux(
    input: &Path,
    output: &Path,
    muxer: &str,
    writing_app: &str,
) -> Result<Remuxed, RemuxError> {
    let make = |factory: &'static str| {
        gst::ElementFactory::make(factory)
            .build()
            .map_err(|_| RemuxError::MissingElement(factory))
    };
    let pipeline = gst::Pipeline::new();
    let source = make("filesrc")?;
    source.set_property("location", input.to_string_lossy().as_ref());
    let demux = make("matroskademux")?;
    let mux = match muxer {
        "webmmux" => make("webmmux")?,
        _ => make("matroskamux")?,
    };
    mux.set_property("max-cluster-duration", MAX_CLUSTER_DURATION);
    mux.set_property("offset-to-zero", true);
    mux.set_property("writing-app", writing_app);
    let sink = make("filesink")?;
    sink.set_property("location", output.to_string_lossy().as_ref());
    sink.set_property("sync", false);
    pipeline
        .add_many([&source, &demux, &mux, &sink])
        .map_err(pipeline_error)?;
    source.link(&demux).map_err(pipeline_error)?;
    mux.link(&sink).map_err(pipeline_error)?;

    let counts = Arc::new(Mutex::new(Vec::<TrackCount>::new()));
    let link_failure = Arc::new(Mutex::new(None::<RemuxError>));
    let weak_pipeline = pipeline.downgrade();
    let (pad_counts, pad_failure) = (counts.clone(), link_failure.clone());
    demux.connect_pad_added(move |_, pad| {
        let Some(pipeline) = weak_pipeline.upgrade() else {
            return;
        };
        if let Err(err) = add_track(&pipeline, &mux, pad, &pad_counts) {
            *pad_failure.lock().unwrap() = Some(err);
        }
    });

    let result = run_to_end(&pipeline, &counts);
    let _ = pipeline.set_state(gst::State::Null);
    if let Some(failure) = link_failure.lock().unwrap().take() {
        return Err(failure);
    }
    result?;
    let tracks = counts.lock().unwrap().clone();
    if tracks.is_empty() {
        return Err(RemuxError::NoTracks);
    }
    if let Some(track) = tracks.iter().find(|t| t.demuxed != t.muxed) {
        return Err(RemuxError::LostFrames {
            track: track.kind.clone(),
            demuxed: track.demuxed,
            muxed: track.muxed,
        });
    }
    Ok(Remuxed { tracks })
}

/// demuxer pad → queue → a new muxer pad, counting frames on both sides.
fn add_track(
    pipeline: &gst::Pipeline,
    mux: &gst::Element,
    pad: &gst::Pad,
    counts: &Arc<Mutex<Vec<TrackCount>>>,
) -> Result<(), RemuxError> {
    let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
    let kind = caps
        .structure(0)
        .map(|s| s.name().split('/').next().unwrap_or_default().to_owned())
        .unwrap_or_default();
    let template = match kind.as_str() {
        "video" => "video_%u",
        "audio" => "audio_%u",
        _ => "subtitle_%u",
    };
    let queue = gst::ElementFactory::make("queue")
        .property("max-size-buffers", 0u32)
        .property("max-size-time", 0u64)
        .property("max-size-bytes", QUEUE_BYTES)
        .build()
        .map_err(|_| RemuxError::MissingElement("queue"))?;
    pipeline.add(&queue).map_err(pipeline_error)?;
    queue.sync_state_with_parent().map_err(pipeline_error)?;
    let mux_pad = mux
        .request_pad_simple(template)
        .ok_or_else(|| RemuxError::TrackRefused(kind.clone()))?;
    queue
        .static_pad("src")
        .expect("queue src")
        .link(&mux_pad)
        .map_err(pipeline_error)?;

    let index = {
        let mut counts = counts.lock().unwrap();
        counts.push(TrackCount {
            kind,
            ..TrackCount::default()
        });
        counts.len() - 1
    };
    let demuxed = counts.clone();
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
        demuxed.lock().unwrap()[index].demuxed += 1;
        gst::PadProbeReturn::Ok
    });
    let muxed = counts.clone();
    mux_pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if let Some(buffer) = info.buffer() {
            let mut counts = muxed.lock().unwrap();
            let track = &mut counts[index];
            track.muxed += 1;
            if let Some(pts) = buffer.pts() {
                track.first_pts = Some(track.first_pts.map_or(pts, |first| first.min(pts)));
                let end = pts + buffer.duration().unwrap_or(gst::ClockTime::ZERO);
                track.last_end = Some(track.last_end.map_or(end, |last| last.max(end)));
            }
        }
        gst::PadProbeReturn::Ok
    });
    pad.link(&queue.static_pad("sink").expect("queue sink"))
        .map_err(pipeline_error)?;
    Ok(())
}

/// Plays the pipeline until EOS (the muxer has finalized the file), an
/// error, or [`STALL`] without a frame moving.
fn run_to_end(
    pipeline: &gst::Pipeline,
    counts: &Arc<Mutex<Vec<TrackCount>>>,
) -> Result<(), RemuxError> {
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|_| first_error(pipeline).unwrap_or_else(|| "cannot start".into()))
        .map_err(RemuxError::Pipeline)?;
    let bus = pipeline.bus().expect("pipelines have a bus");
    let moved = || counts.lock().unwrap().iter().map(|t| t.muxed).sum::<u64>();
    let (mut last_moved, mut last_progress) = (0, Instant::now());
    loop {
        let message = bus.timed_pop_filtered(
            gst::ClockTime::from_seconds(1),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        );
        match message.as_ref().map(|m| m.view()) {
            Some(gst::MessageView::Eos(_)) => return Ok(()),
            Some(gst::MessageView::Error(err)) => {
                return Err(RemuxError::Pipeline(err.error().to_string()));
            }
            _ => {}
        }
        let now_moved = moved();
        if now_moved != last_moved {
            (last_moved, last_progress) = (now_moved, Instant::now());
        } else if last_progress.elapsed() >= STALL {
            return Err(RemuxError::Stalled);
        }
    }
}

fn first_error(pipeline: &gst::Pipeline) -> Option<String> {
    let message = pipeline.bus()?.pop_filtered(&[gst::MessageType::Error])?;
    match message.view() {
        gst::MessageView::Error(err) => Some(err.error().to_string()),
        _ => None,
    }
}

fn pipeline_error(err: impl std::fmt::Display) -> RemuxError {
    RemuxError::Pipeline(err.to_string())
}
