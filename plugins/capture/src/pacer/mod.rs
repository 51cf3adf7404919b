//! A private live source that turns frames arriving at irregular times (only
//! when something changed on screen) into a constant-framerate stream: at
//! every tick it pushes the newest frame, re-pushing the previous one when
//! nothing new arrived. The buffer is shared, not copied.

mod imp;

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use gst::glib;
use gst::subclass::prelude::*;

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

/// Why no more frames will come.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EndOfFrames {
    /// The captured window closed; the message says which.
    WindowClosed(String),
}

/// Hands frames from the capturing thread to the pacer.
#[derive(Default)]
pub struct FrameSlot {
    inner: Mutex<SlotInner>,
    changed: Condvar,
}

#[derive(Default)]
struct SlotInner {
    latest: Option<Frame>,
    /// A grab was started and its frame will arrive shortly: worth waiting
    /// a little for instead of repeating the previous frame.
    grab_in_flight: bool,
    ended: Option<EndOfFrames>,
    pacer_flushing: bool,
    capture_flushing: bool,
    grabbed_frames: u64,
    pushed_frames: u64,
}

/// A buffer whose memory may be shared by the repeats pushed downstream.
///
/// ximagesrc marks its XShm memory NO_SHARE (it recycles the images), which
/// would turn every repeat into an 8 MB copy at 1080p. Wrapping the mapped
/// buffer keeps the XShm image alive, unshared, until the last repeat is
/// released, and costs no copy.
fn shareable(buffer: gst::Buffer) -> gst::Buffer {
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
        inner.grab_in_flight = false;
        inner.grabbed_frames += 1;
        self.changed.notify_all();
    }

    pub fn grab_started(&self) {
        self.inner.lock().unwrap().grab_in_flight = true;
    }

    pub fn end(&self, reason: EndOfFrames) {
        let mut inner = self.inner.lock().unwrap();
        inner.ended = Some(reason);
        inner.grab_in_flight = false;
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

    pub fn capture_flushing(&self) -> bool {
        self.inner.lock().unwrap().capture_flushing
    }

    /// Blocks the capturing thread until shutdown: used once there is
    /// nothing left to capture, so the capturing element never touches a
    /// window that is gone.
    pub fn wait_for_capture_flushing(&self) {
        let mut inner = self.inner.lock().unwrap();
        while !inner.capture_flushing {
            inner = self.changed.wait(inner).unwrap();
        }
    }

    fn set_pacer_flushing(&self, flushing: bool) {
        let mut inner = self.inner.lock().unwrap();
        inner.pacer_flushing = flushing;
        self.changed.notify_all();
    }

    /// Frames grabbed from the screen so far.
    pub fn grabbed_frames(&self) -> u64 {
        self.inner.lock().unwrap().grabbed_frames
    }

    /// Frames pushed downstream so far (grabbed plus repeated).
    pub fn pushed_frames(&self) -> u64 {
        self.inner.lock().unwrap().pushed_frames
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
            if inner.latest.is_some() || inner.ended.is_some() {
                return Ok(());
            }
            inner = self.changed.wait(inner).unwrap();
        }
    }

    /// The frame to push at this tick, waiting up to `patience` for a grab
    /// that is under way.
    fn frame_for_tick(&self, patience: Duration) -> Result<Frame, Ending> {
        let mut inner = self.inner.lock().unwrap();
        if inner.grab_in_flight && !inner.pacer_flushing {
            inner = self
                .changed
                .wait_timeout_while(inner, patience, |i| i.grab_in_flight && !i.pacer_flushing)
                .unwrap()
                .0;
        }
        if inner.pacer_flushing {
            return Err(Ending::Flushing);
        }
        if let Some(reason) = &inner.ended {
            return Err(Ending::Ended(reason.clone()));
        }
        inner.pushed_frames += 1;
        inner.latest.clone().ok_or(Ending::Flushing)
    }
}

enum Ending {
    Flushing,
    Ended(EndOfFrames),
}
