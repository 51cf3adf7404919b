use std::sync::{Arc, LazyLock, Mutex};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::base_src::CreateSuccess;
use gst_base::subclass::prelude::*;

use super::{CAT, FrameSlot, negotiate_output, without_framerate};
use crate::ticker::{FrameRate, Tick, Ticker};

#[derive(Default)]
struct Config {
    slot: Option<Arc<FrameSlot>>,
    wanted_framerate: Option<gst::Fraction>,
}

#[derive(Default)]
struct State {
    rate: Option<FrameRate>,
    /// Caps of the captured frames (without framerate) we last negotiated for.
    source_caps: Option<gst::Caps>,
    last_frame: Option<u64>,
}

#[derive(Default)]
pub struct FramePacer {
    config: Mutex<Config>,
    state: Mutex<State>,
    ticker: Ticker,
}

impl FramePacer {
    pub(super) fn configure(&self, slot: Arc<FrameSlot>, framerate: gst::Fraction) {
        let mut config = self.config.lock().unwrap();
        config.slot = Some(slot);
        config.wanted_framerate = Some(framerate);
    }

    fn slot(&self) -> Arc<FrameSlot> {
        self.config
            .lock()
            .unwrap()
            .slot
            .clone()
            .expect("FramePacer used without a FrameSlot")
    }

    fn negotiate_for(&self, source_caps: &gst::Caps) -> Result<(), gst::LoggableError> {
        let wanted = self
            .config
            .lock()
            .unwrap()
            .wanted_framerate
            .unwrap_or(gst::Fraction::new(30, 1));
        let pad = self.obj().static_pad("src").unwrap();
        let (caps, rate) = negotiate_output(&pad, source_caps, wanted)?;
        gst::debug!(CAT, imp = self, "output caps {caps}");
        self.obj()
            .set_caps(&caps)
            .map_err(|err| gst::loggable_error!(CAT, "cannot set caps {caps}: {err}"))?;
        let mut state = self.state.lock().unwrap();
        state.rate = Some(rate);
        state.source_caps = Some(source_caps.clone());
        Ok(())
    }
}

impl FramePacer {
    fn ensure_negotiated(&self, frame_caps: &gst::Caps) -> Result<(), gst::FlowError> {
        let source_caps = without_framerate(frame_caps);
        if self.state.lock().unwrap().source_caps.as_ref() == Some(&source_caps) {
            return Ok(());
        }
        self.negotiate_for(&source_caps).map_err(|err| {
            err.log_with_imp(self);
            gst::FlowError::NotNegotiated
        })
    }
}

#[glib::object_subclass]
impl ObjectSubclass for FramePacer {
    const NAME: &'static str = "GstPeerFramePacer";
    type Type = super::FramePacer;
    type ParentType = gst_base::PushSrc;
}

impl ObjectImpl for FramePacer {
    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        obj.set_live(true);
        obj.set_format(gst::Format::Time);
    }
}

impl GstObjectImpl for FramePacer {}

impl ElementImpl for FramePacer {
    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
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

impl BaseSrcImpl for FramePacer {
    fn start(&self) -> Result<(), gst::ErrorMessage> {
        *self.state.lock().unwrap() = State::default();
        self.ticker.unlock_stop();
        self.slot().set_pacer_flushing(false);
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        *self.state.lock().unwrap() = State::default();
        Ok(())
    }

    fn negotiate(&self) -> Result<(), gst::LoggableError> {
        // Nothing to offer until the first frame is captured: create()
        // negotiates then, and again whenever the captured size changes.
        let caps = self.state.lock().unwrap().source_caps.clone();
        match caps {
            Some(caps) => self.negotiate_for(&caps),
            None => Ok(()),
        }
    }

    fn query(&self, query: &mut gst::QueryRef) -> bool {
        if let gst::QueryViewMut::Latency(q) = query.view_mut() {
            // A frame is stamped with its tick and pushed right then; half
            // a frame leaves room for a late wake-up.
            let rate = self.state.lock().unwrap().rate;
            let min = rate.map_or(gst::ClockTime::ZERO, |r| r.frame_duration(0) / 2);
            q.set(true, min, None);
            return true;
        }
        BaseSrcImplExt::parent_query(self, query)
    }

    fn unlock(&self) -> Result<(), gst::ErrorMessage> {
        self.ticker.unlock();
        self.slot().set_pacer_flushing(true);
        Ok(())
    }

    fn unlock_stop(&self) -> Result<(), gst::ErrorMessage> {
        self.ticker.unlock_stop();
        self.slot().set_pacer_flushing(false);
        Ok(())
    }
}

impl PushSrcImpl for FramePacer {
    fn create(
        &self,
        _buffer: Option<&mut gst::BufferRef>,
    ) -> Result<CreateSuccess, gst::FlowError> {
        let slot = self.slot();
        slot.wait_first_frame()?;
        if let Some(caps) = slot.latest_caps() {
            self.ensure_negotiated(&caps)?;
        }

        let (rate, previous) = {
            let state = self.state.lock().unwrap();
            (state.rate, state.last_frame)
        };
        let Some(rate) = rate else {
            // Not negotiated (cannot happen once a frame arrived).
            return Err(gst::FlowError::Eos);
        };
        let frame_no = Ticker::next_frame(&*self.obj(), rate, previous);
        if self
            .ticker
            .wait_until(&*self.obj(), rate.frame_start(frame_no))
            == Tick::Flushing
        {
            return Err(gst::FlowError::Flushing);
        }

        let frame = slot.frame_for_tick()?;
        // The captured size may have changed while we slept.
        self.ensure_negotiated(&frame.caps)?;
        self.state.lock().unwrap().last_frame = Some(frame_no);

        let mut buffer = frame.buffer.copy();
        {
            let buffer = buffer.get_mut().unwrap();
            buffer.set_pts(rate.frame_start(frame_no));
            buffer.set_dts(gst::ClockTime::NONE);
            buffer.set_duration(rate.frame_duration(frame_no));
            buffer.set_offset(frame_no);
            buffer.unset_flags(gst::BufferFlags::DISCONT);
        }
        Ok(CreateSuccess::NewBuffer(buffer))
    }
}
