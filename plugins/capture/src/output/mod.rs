//! A private source element without a thread of its own: the thread that
//! grabs (ximagesrc's, inside screencapsrc) pushes through it, once per
//! frame tick, either the frame it just grabbed or the previous one again.
//!
//! The pacer (`crate::pacer`) does the same from a streaming thread of its
//! own, which PipeWire needs (frames arrive only on change). On X11 the
//! grabbing thread wakes at every tick anyway, to ask the server whether
//! anything changed; letting it push too saves a second thread waking at
//! every tick, and a hand-over between the two, on every frame.

mod imp;

use std::sync::atomic::{AtomicU64, Ordering};

use gst::glib;
use gst::subclass::prelude::*;

use crate::ticker::FrameRate;

glib::wrapper! {
    pub struct FrameOutput(ObjectSubclass<imp::FrameOutput>)
        @extends gst::Element, gst::Object;
}

/// Frames grabbed and pushed since start, readable from any thread.
#[derive(Default, Debug)]
pub struct FrameCounters {
    grabbed: AtomicU64,
    pushed: AtomicU64,
}

impl FrameCounters {
    pub fn count_grab(&self) {
        self.grabbed.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_push(&self) {
        self.pushed.fetch_add(1, Ordering::Relaxed);
    }

    pub fn grabbed(&self) -> u64 {
        self.grabbed.load(Ordering::Relaxed)
    }

    pub fn pushed(&self) -> u64 {
        self.pushed.load(Ordering::Relaxed)
    }
}

impl FrameOutput {
    pub fn new(
        name: &str,
        framerate: gst::Fraction,
        counters: std::sync::Arc<FrameCounters>,
    ) -> Self {
        let output: Self = glib::Object::builder().property("name", name).build();
        output.imp().configure(framerate, counters);
        output
    }

    /// Negotiates for frames of `caps` when needed (first frame, new size,
    /// downstream asking to reconfigure) and returns the frame rate to
    /// push at.
    pub fn prepare(&self, caps: &gst::Caps) -> Result<FrameRate, gst::FlowError> {
        self.imp().prepare(caps)
    }

    /// Pushes a newly grabbed frame as frame `frame_no` and keeps it for
    /// repeats.
    pub fn push_new(
        &self,
        buffer: gst::Buffer,
        frame_no: u64,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        self.imp().push_new(buffer, frame_no)
    }

    /// Pushes the last frame again, as frame `frame_no`; no copy.
    pub fn push_repeat(&self, frame_no: u64) -> Result<gst::FlowSuccess, gst::FlowError> {
        self.imp().push_repeat(frame_no)
    }

    /// Ends the stream.
    pub fn push_eos(&self) {
        self.imp().push_eos();
    }

    /// The rate last negotiated.
    pub fn rate(&self) -> Option<FrameRate> {
        self.imp().rate()
    }
}
