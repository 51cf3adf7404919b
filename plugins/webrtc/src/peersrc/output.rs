//! One incoming track of peersrc: webrtcbin's RTP pad → depayloader →
//! (parser) → (decoder) → a `video_%u` / `audio_%u` ghost pad, measured
//! on the way (`meter.rs`).

use std::sync::Arc;
use std::time::Instant;

use gst::prelude::*;

use super::meter::TrackMeter;
use crate::codec::{Codec, MediaKind};
use crate::session::discard;

pub struct Output {
    pub ghost: gst::GhostPad,
    pub codec: Codec,
    pub meter: Arc<TrackMeter>,
    elements: Vec<gst::Element>,
}

/// Builds the chain for `rtp_pad`; `pad_name` is the ghost pad's name.
pub fn build(
    bin: &gst::Bin,
    rtp_pad: &gst::Pad,
    decode: bool,
    next_name: impl FnOnce(MediaKind) -> String,
) -> Result<Output, String> {
    let caps = rtp_pad
        .current_caps()
        .unwrap_or_else(|| rtp_pad.query_caps(None));
    let structure = caps.structure(0).ok_or("the incoming track has no caps")?;
    let encoding = structure.get::<&str>("encoding-name").unwrap_or("unknown");
    let codec = Codec::from_encoding_name(encoding).ok_or_else(|| {
        format!("cannot receive {encoding}: peersrc knows VP8, VP9, H.264 and Opus")
    })?;

    let mut factories = vec![codec.depayloader()];
    if let Some(parser) = codec.parser()
        && (!decode || codec == Codec::H264)
    {
        factories.push(parser);
    }
    if decode {
        factories.push(codec.decoder());
    }
    let mut elements = Vec::new();
    for factory in factories {
        let element = gst::ElementFactory::make(factory)
            .build()
            .map_err(|_| format!("element {factory} is missing"))?;
        if factory == "rtph264depay" || factory == "h264parse" {
            // Recorders and decoders want whole access units.
            let _ = element
                .find_property("config-interval")
                .map(|_| element.set_property("config-interval", -1i32));
        }
        if factory == codec.depayloader() {
            // Ask the sender for a keyframe (PLI) when packets are lost:
            // otherwise a lost keyframe spoils the picture until the
            // sender's next periodic one, seconds later.
            if element.find_property("request-keyframe").is_some() {
                element.set_property("request-keyframe", true);
            }
        }
        elements.push(element);
    }
    bin.add_many(&elements).map_err(|e| e.to_string())?;
    gst::Element::link_many(&elements)
        .map_err(|err| format!("cannot link the {encoding} chain: {err}"))?;
    for element in &elements {
        element
            .sync_state_with_parent()
            .map_err(|e| e.to_string())?;
    }
    let meter = Arc::new(TrackMeter::new(codec));
    let first = elements.first().expect("a depayloader at least");
    measure(first, elements.last().expect("non-empty"), &meter);
    rtp_pad
        .link(
            &first
                .static_pad("sink")
                .expect("depayloaders have a sink pad"),
        )
        .map_err(|err| format!("cannot link webrtcbin to {}: {err:?}", codec.depayloader()))?;

    let last_src = elements
        .last()
        .expect("non-empty")
        .static_pad("src")
        .expect("has a src pad");
    let name = next_name(codec.kind());
    let ghost = gst::GhostPad::builder_with_target(&last_src)
        .map_err(|e| e.to_string())?
        .name(name.as_str())
        .build();
    // An output nobody linked (the audio of `peersrc ! videoconvert ! ...`)
    // must not stop the stream with not-linked: its data is dropped.
    let weak_ghost = ghost.downgrade();
    last_src.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
        move |_, _| match weak_ghost.upgrade() {
            // Handled: the buffer is freed by gstreamer-rs (see
            // peersink's skip_when_unwatched for why not Drop).
            Some(ghost) if !ghost.is_linked() => gst::PadProbeReturn::Handled,
            _ => gst::PadProbeReturn::Ok,
        },
    );
    if codec.kind() == MediaKind::Video {
        // A keyframe at once, so that what is shown or recorded starts
        // now rather than at the sender's next periodic keyframe.
        request_keyframe(first);
    }
    Ok(Output {
        ghost,
        codec,
        meter,
        elements,
    })
}

/// Counts what goes through the chain from `depayloader` to `last`, and
/// holds its keyframe requests (the depayloader's, on loss, and ours on
/// join) to one per [`super::meter::MIN_KEYFRAME_REQUEST_INTERVAL`].
fn measure(depayloader: &gst::Element, last: &gst::Element, meter: &Arc<TrackMeter>) {
    let encoded = meter.clone();
    depayloader
        .static_pad("src")
        .expect("depayloaders have a src pad")
        .add_probe(
            gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
            move |_, info| {
                let count = |buffer: &gst::BufferRef| {
                    if let Ok(map) = buffer.map_readable() {
                        encoded.encoded(map.as_slice());
                    }
                };
                match info.data.as_ref() {
                    Some(gst::PadProbeData::Buffer(buffer)) => count(buffer),
                    Some(gst::PadProbeData::BufferList(list)) => list.iter().for_each(count),
                    _ => {}
                }
                gst::PadProbeReturn::Ok
            },
        );
    let output = meter.clone();
    last.static_pad("src").expect("has a src pad").add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
        move |_, info| {
            match info.data.as_ref() {
                Some(gst::PadProbeData::Buffer(_)) => output.frame(),
                Some(gst::PadProbeData::Event(event)) => {
                    if let gst::EventView::Caps(caps) = event.view()
                        && let Some(structure) = caps.caps().structure(0)
                    {
                        output.caps(structure);
                    }
                }
                _ => {}
            }
            gst::PadProbeReturn::Ok
        },
    );
    let limiter = meter.clone();
    depayloader
        .static_pad("sink")
        .expect("depayloaders have a sink pad")
        .add_probe(gst::PadProbeType::EVENT_UPSTREAM, move |_, info| {
            let is_request = info
                .event()
                .is_some_and(|event| gst_video::ForceKeyUnitEvent::is(event));
            if is_request && !limiter.allow_keyframe_request(Instant::now()) {
                // Taken rather than dropped: a dropped upstream event
                // makes GStreamer 1.22 log a CRITICAL (docs/status.md).
                info.data.take();
                return gst::PadProbeReturn::Handled;
            }
            gst::PadProbeReturn::Ok
        });
}

/// Asks the sender for a keyframe (an RTCP PLI, through the limiter).
fn request_keyframe(depayloader: &gst::Element) {
    let event = gst_video::UpstreamForceKeyUnitEvent::builder()
        .all_headers(false)
        .build();
    if let Some(pad) = depayloader.static_pad("sink") {
        let _ = pad.push_event(event);
    }
}

impl Output {
    /// Where data enters this output's chain (the depayloader's sink pad).
    pub fn entry_pad(&self) -> Option<gst::Pad> {
        self.elements.first()?.static_pad("sink")
    }

    pub fn remove(self, element: &gst::Element) {
        let _ = self.ghost.set_active(false);
        let _ = element.remove_pad(&self.ghost);
        let bin = element
            .downcast_ref::<gst::Bin>()
            .expect("peersrc is a bin");
        for child in self.elements {
            discard(bin, &child);
        }
    }
}
