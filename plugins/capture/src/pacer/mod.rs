//! A private live source that turns frames arriving at irregular times (only
//! when something changed on screen) into a constant-framerate stream: at
//! every tick it pushes the newest frame, re-pushing the previous one when
//! nothing new arrived. The buffer is shared, not copied.
//!
//! screencapsrc uses it behind `pipewiresrc`, whose frames come only on
//! change, so that something must wake at every tick. On X11 the grabbing
//! thread wakes at every tick anyway and pushes itself (`crate::output`).

mod imp;

use std::sync::{Arc, Condvar, Mutex};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use crate::counters::FrameCounters;
use crate::ticker::FrameRate;

/// Capture never runs faster than this, whatever downstream asks.
pub const MAX_FRAMERATE: i32 = 240;

glib::wrapper! {
    pub struct FramePacer(ObjectSubclass<imp::FramePacer>)
        @extends gst_base::PushSrc, gst_base::BaseSrc, gst::Element, gst::Object;
}

impl FramePacer {
    pub fn new(name: &str, slot: Arc<FrameSlot>, framerate: gst::Fraction) -> Self {
        let pacer: Self = glib::Object::builder().property("name", name).build();
        pacer.imp().configure(slot, framerate);
        pacer
    }
}

/// One captured frame and the caps it was captured with.
#[derive(Clone, Debug)]
pub struct Frame {
    pub caps: gst::Caps,
    pub buffer: gst::Buffer,
}

/// Hands frames from the capturing thread to the pacer.
#[derive(Default)]
pub struct FrameSlot {
    inner: Mutex<SlotInner>,
    changed: Condvar,
    counters: Arc<FrameCounters>,
}

#[derive(Default)]
struct SlotInner {
    latest: Option<Frame>,
    pacer_flushing: bool,
    capture_flushing: bool,
}

/// A buffer whose memory may be shared by the repeats pushed downstream.
///
/// ximagesrc marks its XShm memory NO_SHARE (it recycles the images), which
/// would turn every repeat into an 8 MB copy at 1080p. Wrapping the mapped
/// buffer keeps the XShm image alive, unshared, until the last repeat is
/// released, and costs no copy.
pub fn shareable(buffer: gst::Buffer) -> gst::Buffer {
    let unshareable = buffer
        .iter_memories()
        .any(|memory| memory.flags().contains(gst::MemoryFlags::NO_SHARE));
    if !unshareable {
        return buffer;
    }
    match buffer.into_mapped_buffer_readable() {
        Ok(mapped) => gst::Buffer::from_slice(mapped),
        Err(buffer) => buffer,
    }
}

impl FrameSlot {
    pub fn new(counters: Arc<FrameCounters>) -> Self {
        Self {
            counters,
            ..Self::default()
        }
    }

    pub fn publish(&self, frame: Frame) {
        let frame = Frame {
            caps: frame.caps,
            buffer: shareable(frame.buffer),
        };
        let mut inner = self.inner.lock().unwrap();
        if inner.capture_flushing {
            // Stopping: hold nothing of the grabber's past this point.
            return;
        }
        inner.latest = Some(frame);
        self.counters.count_grab();
        self.changed.notify_all();
    }

    /// Wakes and stops the capturing side (the element is shutting down)
    /// and lets go of the last frame.
    pub fn set_capture_flushing(&self, flushing: bool) {
        let mut inner = self.inner.lock().unwrap();
        inner.capture_flushing = flushing;
        if flushing {
            inner.latest = None;
        }
        self.changed.notify_all();
    }

    fn set_pacer_flushing(&self, flushing: bool) {
        let mut inner = self.inner.lock().unwrap();
        inner.pacer_flushing = flushing;
        self.changed.notify_all();
    }

    fn latest_caps(&self) -> Option<gst::Caps> {
        let inner = self.inner.lock().unwrap();
        inner.latest.as_ref().map(|frame| frame.caps.clone())
    }

    fn wait_first_frame(&self) -> Result<(), gst::FlowError> {
        let mut inner = self.inner.lock().unwrap();
        loop {
            if inner.pacer_flushing {
                return Err(gst::FlowError::Flushing);
            }
            if inner.latest.is_some() {
                return Ok(());
            }
            inner = self.changed.wait(inner).unwrap();
        }
    }

    /// The frame to push at this tick.
    fn frame_for_tick(&self) -> Result<Frame, gst::FlowError> {
        let inner = self.inner.lock().unwrap();
        if inner.pacer_flushing {
            return Err(gst::FlowError::Flushing);
        }
        self.counters.count_push();
        inner.latest.clone().ok_or(gst::FlowError::Flushing)
    }
}

pub fn without_framerate(caps: &gst::Caps) -> gst::Caps {
    let mut caps = caps.clone();
    for s in caps.make_mut().iter_mut() {
        s.remove_field("framerate");
    }
    caps
}

/// Offers downstream of `pad` frames of `source_caps` at any framerate up
/// to MAX_FRAMERATE and picks the caps downstream takes, at the rate
/// nearest to `wanted`.
pub fn negotiate_output(
    pad: &gst::Pad,
    source_caps: &gst::Caps,
    wanted: gst::Fraction,
) -> Result<(gst::Caps, FrameRate), gst::LoggableError> {
    let cat = *CAT;
    let mut offer = source_caps.clone();
    for s in offer.make_mut().iter_mut() {
        s.set(
            "framerate",
            gst::FractionRange::new(
                gst::Fraction::new(1, 1),
                gst::Fraction::new(MAX_FRAMERATE, 1),
            ),
        );
    }
    let mut caps = pad.peer_query_caps(Some(&offer));
    if caps.is_empty() {
        return Err(gst::loggable_error!(
            cat,
            "downstream accepts none of {offer}"
        ));
    }
    caps.truncate();
    {
        let caps = caps.make_mut();
        let s = caps.structure_mut(0).unwrap();
        s.fixate_field_nearest_fraction("framerate", wanted);
    }
    caps.fixate();
    let rate = caps
        .structure(0)
        .and_then(|s| s.get::<gst::Fraction>("framerate").ok())
        .and_then(FrameRate::new)
        .ok_or_else(|| gst::loggable_error!(cat, "no usable framerate in {caps}"))?;
    Ok((caps, rate))
}

static CAT: std::sync::LazyLock<gst::DebugCategory> = std::sync::LazyLock::new(|| {
    gst::DebugCategory::new(
        "framepacer",
        gst::DebugColorFlags::empty(),
        Some("Constant-framerate re-pusher inside screencapsrc"),
    )
});
