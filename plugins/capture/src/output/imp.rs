use std::sync::{Arc, LazyLock, Mutex};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::FrameCounters;
use crate::pacer::{MAX_FRAMERATE, negotiate_output, shareable, without_framerate};
use crate::ticker::FrameRate;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "frameoutput",
        gst::DebugColorFlags::empty(),
        Some("Constant-framerate output pushed by screencapsrc's grabbing thread"),
    )
});

struct Settings {
    wanted_framerate: gst::Fraction,
    counters: Arc<FrameCounters>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            wanted_framerate: gst::Fraction::new(30, 1),
            counters: Arc::default(),
        }
    }
}

/// One run's stream: reset when the element goes to PAUSED again.
#[derive(Default)]
struct State {
    stream_started: bool,
    /// Caps of the grabbed frames (without framerate) last negotiated for.
    source_caps: Option<gst::Caps>,
    rate: Option<FrameRate>,
    segment_sent: bool,
    /// The last frame pushed, for repeats; its memory is shared by them.
    last: Option<gst::Buffer>,
}

pub struct FrameOutput {
    settings: Mutex<Settings>,
    state: Mutex<State>,
    srcpad: gst::Pad,
}

impl FrameOutput {
    pub(super) fn configure(&self, framerate: gst::Fraction, counters: Arc<FrameCounters>) {
        let mut settings = self.settings.lock().unwrap();
        settings.wanted_framerate = framerate;
        settings.counters = counters;
    }

    pub(super) fn rate(&self) -> Option<FrameRate> {
        self.state.lock().unwrap().rate
    }

    pub(super) fn prepare(&self, caps: &gst::Caps) -> Result<FrameRate, gst::FlowError> {
        let source_caps = without_framerate(caps);
        let reconfigure = self.srcpad.check_reconfigure();
        let (started, negotiated, rate) = {
            let state = self.state.lock().unwrap();
            (
                state.stream_started,
                state.source_caps.as_ref() == Some(&source_caps),
                state.rate,
            )
        };
        if !started {
            let stream_id = self.srcpad.create_stream_id(&*self.obj(), None::<&str>);
            let _ = self.srcpad.push_event(
                gst::event::StreamStart::builder(stream_id.as_str())
                    .group_id(gst::GroupId::next())
                    .build(),
            );
            self.state.lock().unwrap().stream_started = true;
        }
        if let (true, false, Some(rate)) = (negotiated, reconfigure, rate) {
            return Ok(rate);
        }

        let wanted = self.settings.lock().unwrap().wanted_framerate;
        let (out_caps, rate) =
            negotiate_output(&self.srcpad, &source_caps, wanted).map_err(|err| {
                err.log_with_imp(self);
                // Asked again before the next push.
                self.srcpad.mark_reconfigure();
                gst::FlowError::NotNegotiated
            })?;
        gst::debug!(CAT, imp = self, "output caps {out_caps}");
        let _ = self.srcpad.push_event(gst::event::Caps::new(&out_caps));
        let segment_sent = {
            let mut state = self.state.lock().unwrap();
            state.source_caps = Some(source_caps);
            state.rate = Some(rate);
            std::mem::replace(&mut state.segment_sent, true)
        };
        if !segment_sent {
            // Buffers carry running times (their tick) from 0.
            let segment = gst::FormattedSegment::<gst::ClockTime>::new();
            let _ = self.srcpad.push_event(gst::event::Segment::new(&segment));
        }
        Ok(rate)
    }

    pub(super) fn push_new(
        &self,
        buffer: gst::Buffer,
        frame_no: u64,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let buffer = shareable(buffer);
        self.settings.lock().unwrap().counters.count_grab();
        self.state.lock().unwrap().last = Some(buffer.clone());
        self.push(buffer, frame_no)
    }

    pub(super) fn push_repeat(&self, frame_no: u64) -> Result<gst::FlowSuccess, gst::FlowError> {
        let last = self.state.lock().unwrap().last.clone();
        match last {
            Some(buffer) => self.push(buffer, frame_no),
            None => Err(gst::FlowError::Flushing),
        }
    }

    fn push(&self, frame: gst::Buffer, frame_no: u64) -> Result<gst::FlowSuccess, gst::FlowError> {
        let rate = self.state.lock().unwrap().rate.ok_or_else(|| {
            gst::error!(CAT, imp = self, "pushing before negotiating");
            gst::FlowError::NotNegotiated
        })?;
        // A new buffer sharing the frame's memory: repeats cost no copy.
        let mut buffer = frame.copy();
        {
            let buffer = buffer.get_mut().unwrap();
            buffer.set_pts(rate.frame_start(frame_no));
            buffer.set_dts(gst::ClockTime::NONE);
            buffer.set_duration(rate.frame_duration(frame_no));
            buffer.set_offset(frame_no);
            buffer.unset_flags(gst::BufferFlags::DISCONT);
        }
        self.settings.lock().unwrap().counters.count_push();
        self.srcpad.push(buffer)
    }

    pub(super) fn push_eos(&self) {
        let _ = self.srcpad.push_event(gst::event::Eos::new());
    }

    fn src_query(&self, pad: &gst::Pad, query: &mut gst::QueryRef) -> bool {
        match query.view_mut() {
            gst::QueryViewMut::Latency(q) => {
                // A frame is stamped with its tick and pushed once grabbed:
                // allow half a frame for the grab.
                let rate = self.state.lock().unwrap().rate;
                let min = rate.map_or(gst::ClockTime::ZERO, |r| r.frame_duration(0) / 2);
                q.set(true, min, None);
                true
            }
            gst::QueryViewMut::Caps(q) => {
                let caps = match self.state.lock().unwrap().source_caps.clone() {
                    Some(mut caps) => {
                        for s in caps.make_mut().iter_mut() {
                            s.set(
                                "framerate",
                                gst::FractionRange::new(
                                    gst::Fraction::new(1, 1),
                                    gst::Fraction::new(MAX_FRAMERATE, 1),
                                ),
                            );
                        }
                        caps
                    }
                    None => pad.pad_template_caps(),
                };
                let caps = match q.filter() {
                    Some(filter) => {
                        filter.intersect_with_mode(&caps, gst::CapsIntersectMode::First)
                    }
                    None => caps,
                };
                q.set_result(&caps);
                true
            }
            _ => gst::Pad::query_default(pad, Some(&*self.obj()), query),
        }
    }
}

#[glib::object_subclass]
impl ObjectSubclass for FrameOutput {
    const NAME: &'static str = "GstPeerFrameOutput";
    type Type = super::FrameOutput;
    type ParentType = gst::Element;

    fn with_class(klass: &Self::Class) -> Self {
        let templ = klass.pad_template("src").unwrap();
        let srcpad = gst::Pad::builder_from_template(&templ)
            .query_function(|pad, parent, query| {
                FrameOutput::catch_panic_pad_function(
                    parent,
                    || false,
                    |imp| imp.src_query(pad, query),
                )
            })
            .build();
        Self {
            settings: Mutex::default(),
            state: Mutex::default(),
            srcpad,
        }
    }
}

impl ObjectImpl for FrameOutput {
    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        obj.add_pad(&self.srcpad).unwrap();
        obj.set_element_flags(gst::ElementFlags::SOURCE);
    }
}

impl GstObjectImpl for FrameOutput {}

impl ElementImpl for FrameOutput {
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

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        if transition == gst::StateChange::ReadyToPaused {
            *self.state.lock().unwrap() = State::default();
        }
        let result = self.parent_change_state(transition);
        if transition == gst::StateChange::PausedToReady {
            // Let go of the grabber's last frame (its XShm image).
            *self.state.lock().unwrap() = State::default();
        }
        result
    }
}
