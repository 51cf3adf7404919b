use std::sync::{Arc, Mutex};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::base_src::CreateSuccess;
use gst_base::subclass::prelude::*;

use super::{CAT, Capture, OnClosed};
use crate::counters::FrameCounters;
use crate::pacer::MAX_FRAMERATE;
use crate::screencapsrc::gate::Change;
use crate::ticker::{FrameRate, Tick, Ticker};
use crate::x11::X11Error;

/// Set once, before the element leaves NULL.
#[derive(Default)]
struct Setup {
    framerate: Option<gst::Fraction>,
    counters: Arc<FrameCounters>,
    on_closed: Option<OnClosed>,
}

#[derive(Default)]
struct State {
    /// Size and format of the frames grabbed now.
    size: Option<(u32, u32)>,
    format: Option<gst_video::VideoFormat>,
    /// The rate negotiated, and the last frame produced at it.
    rate: Option<FrameRate>,
    tick: Option<(FrameRate, u64)>,
    /// The last frame, for repeats (they share its memory).
    last: Option<gst::Buffer>,
}

#[derive(Default)]
pub struct X11Grab {
    setup: Mutex<Setup>,
    /// Used by the streaming thread only, apart from set-up.
    capture: Mutex<Option<Capture>>,
    state: Mutex<State>,
    ticker: Ticker,
}

impl X11Grab {
    pub(super) fn configure(
        &self,
        capture: Capture,
        framerate: gst::Fraction,
        counters: Arc<FrameCounters>,
        on_closed: OnClosed,
    ) {
        {
            let mut state = self.state.lock().unwrap();
            let area = capture.gate.area();
            state.size = Some((area.width, area.height));
            state.format = Some(capture.format);
        }
        gst::debug!(CAT, imp = self, "capturing {}", capture.describe());
        *self.capture.lock().unwrap() = Some(capture);
        *self.setup.lock().unwrap() = Setup {
            framerate: Some(framerate),
            counters,
            on_closed: Some(on_closed),
        };
    }

    fn counters(&self) -> Arc<FrameCounters> {
        self.setup.lock().unwrap().counters.clone()
    }

    /// Waits for the next tick; `Err(Flushing)` when unlocked.
    fn wait_tick(&self) -> Result<(FrameRate, u64), gst::FlowError> {
        let obj = self.obj();
        let (rate, previous) = {
            let state = self.state.lock().unwrap();
            let rate = state.rate.ok_or(gst::FlowError::NotNegotiated)?;
            let previous = state.tick.filter(|(at, _)| *at == rate).map(|(_, n)| n);
            (rate, previous)
        };
        let frame = Ticker::next_frame(&*obj, rate, previous);
        if self.ticker.wait_until(&*obj, rate.frame_start(frame)) == Tick::Flushing {
            return Err(gst::FlowError::Flushing);
        }
        self.state.lock().unwrap().tick = Some((rate, frame));
        Ok((rate, frame))
    }

    fn stamp(buffer: &mut gst::BufferRef, rate: FrameRate, frame: u64) {
        buffer.set_pts(rate.frame_start(frame));
        buffer.set_dts(gst::ClockTime::NONE);
        buffer.set_duration(rate.frame_duration(frame));
        buffer.set_offset(frame);
    }

    fn lost_display(&self, err: impl std::fmt::Display) -> gst::FlowError {
        gst::element_imp_error!(
            self,
            gst::ResourceError::Read,
            ("Lost the X display: {err}")
        );
        gst::FlowError::Error
    }
}

#[glib::object_subclass]
impl ObjectSubclass for X11Grab {
    const NAME: &'static str = "GstPeerX11Grab";
    type Type = super::X11Grab;
    type ParentType = gst_base::PushSrc;
}

impl ObjectImpl for X11Grab {
    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        obj.set_live(true);
        obj.set_format(gst::Format::Time);
    }
}

impl GstObjectImpl for X11Grab {}

impl ElementImpl for X11Grab {
    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: std::sync::LazyLock<Vec<gst::PadTemplate>> =
            std::sync::LazyLock::new(|| {
                vec![
                    gst::PadTemplate::new(
                        "src",
                        gst::PadDirection::Src,
                        gst::PadPresence::Always,
                        &gst::Caps::new_empty_simple("video/x-raw"),
                    )
                    .unwrap(),
                ]
            });
        TEMPLATES.as_ref()
    }
}

impl BaseSrcImpl for X11Grab {
    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let mut state = self.state.lock().unwrap();
        state.rate = None;
        state.tick = None;
        state.last = None;
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        // Let go of the last frame (its shared memory segment).
        self.state.lock().unwrap().last = None;
        Ok(())
    }

    fn is_seekable(&self) -> bool {
        false
    }

    fn caps(&self, filter: Option<&gst::Caps>) -> Option<gst::Caps> {
        let caps = {
            let state = self.state.lock().unwrap();
            match (state.size, state.format) {
                (Some((width, height)), Some(format)) => gst_video::VideoCapsBuilder::new()
                    .format(format)
                    .width(width as i32)
                    .height(height as i32)
                    .framerate_range(
                        gst::Fraction::new(1, 1)..=gst::Fraction::new(MAX_FRAMERATE, 1),
                    )
                    .pixel_aspect_ratio(gst::Fraction::new(1, 1))
                    .build(),
                _ => self.obj().src_pad().pad_template_caps(),
            }
        };
        Some(match filter {
            Some(filter) => filter.intersect_with_mode(&caps, gst::CapsIntersectMode::First),
            None => caps,
        })
    }

    fn fixate(&self, mut caps: gst::Caps) -> gst::Caps {
        let wanted = self
            .setup
            .lock()
            .unwrap()
            .framerate
            .unwrap_or(gst::Fraction::new(30, 1));
        caps.truncate();
        if let Some(s) = caps.make_mut().structure_mut(0) {
            s.fixate_field_nearest_fraction("framerate", wanted);
        }
        self.parent_fixate(caps)
    }

    fn set_caps(&self, caps: &gst::Caps) -> Result<(), gst::LoggableError> {
        let info = gst_video::VideoInfo::from_caps(caps)
            .map_err(|_| gst::loggable_error!(CAT, "unusable caps {caps}"))?;
        let rate = FrameRate::new(info.fps())
            .ok_or_else(|| gst::loggable_error!(CAT, "no usable framerate in {caps}"))?;
        gst::debug!(CAT, imp = self, "output caps {caps}");
        self.state.lock().unwrap().rate = Some(rate);
        Ok(())
    }

    fn query(&self, query: &mut gst::QueryRef) -> bool {
        if let gst::QueryViewMut::Latency(q) = query.view_mut() {
            // A frame is stamped with its tick and pushed once grabbed:
            // allow half a frame for the grab.
            let rate = self.state.lock().unwrap().rate;
            let min = rate.map_or(gst::ClockTime::ZERO, |r| r.frame_duration(0) / 2);
            q.set(true, min, None);
            return true;
        }
        BaseSrcImplExt::parent_query(self, query)
    }

    fn unlock(&self) -> Result<(), gst::ErrorMessage> {
        self.ticker.unlock();
        Ok(())
    }

    fn unlock_stop(&self) -> Result<(), gst::ErrorMessage> {
        self.ticker.unlock_stop();
        Ok(())
    }
}

impl PushSrcImpl for X11Grab {
    /// One frame per tick: grabbed when the gate says something changed
    /// (always the first), else the previous one again.
    fn create(
        &self,
        _buffer: Option<&mut gst::BufferRef>,
    ) -> Result<CreateSuccess, gst::FlowError> {
        let counters = self.counters();
        loop {
            let (rate, frame) = self.wait_tick()?;
            let last = self.state.lock().unwrap().last.clone();
            let mut guard = self.capture.lock().unwrap();
            let capture = guard.as_mut().ok_or(gst::FlowError::Flushing)?;
            let change = capture.gate.check().map_err(|err| self.lost_display(err))?;
            let area = match change {
                Change::None | Change::Hidden if last.is_some() => {
                    // Nothing new: the previous frame again, sharing its memory.
                    let mut buffer = last.unwrap().copy();
                    Self::stamp(buffer.get_mut().unwrap(), rate, frame);
                    counters.count_push();
                    return Ok(CreateSuccess::NewBuffer(buffer));
                }
                Change::Closed(reason) => {
                    drop(guard);
                    gst::info!(CAT, imp = self, "{reason}");
                    if let Some(on_closed) = &self.setup.lock().unwrap().on_closed {
                        on_closed(&reason);
                    }
                    return Err(gst::FlowError::Eos);
                }
                Change::Moved(area) => area,
                _ => capture.gate.area(),
            };
            let size = Some((area.width, area.height));
            if self.state.lock().unwrap().size != size {
                // The window changed size: new caps before its frames.
                self.state.lock().unwrap().size = size;
                drop(guard);
                if !self.obj().negotiate() {
                    return Err(gst::FlowError::NotNegotiated);
                }
                guard = self.capture.lock().unwrap();
            }
            let capture = guard.as_mut().ok_or(gst::FlowError::Flushing)?;
            let mut buffer = match capture.grab(area) {
                Ok(buffer) => buffer,
                Err(super::ShmError::X11(X11Error::Reply(err))) => {
                    // Refused, e.g. an area past a screen that just shrank:
                    // the gate sees the change at the next tick.
                    gst::warning!(CAT, imp = self, "grab of {area:?} refused: {err}");
                    // No repeat of a frame of another size until a grab.
                    self.state.lock().unwrap().last = None;
                    continue;
                }
                Err(err) => return Err(self.lost_display(err)),
            };
            drop(guard);
            Self::stamp(buffer.get_mut().unwrap(), rate, frame);
            counters.count_grab();
            counters.count_push();
            self.state.lock().unwrap().last = Some(buffer.clone());
            return Ok(CreateSuccess::NewBuffer(buffer));
        }
    }
}
