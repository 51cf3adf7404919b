//! Shared helpers: run a pipeline to EOS and collect the element messages.
#![allow(dead_code)]

use std::sync::Once;
use std::time::{Duration, Instant};

use gst::prelude::*;

pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().unwrap();
        gstaudiotap::plugin_register_static().expect("register audiotap");
    });
}

/// Element messages posted while a pipeline ran to EOS.
pub struct Run {
    pub audiotap: Vec<gst::Structure>,
    pub level: Vec<gst::Structure>,
}

pub fn launch(description: &str) -> gst::Element {
    init();
    gst::parse::launch(description).expect("pipeline description")
}

/// Plays `description` until EOS, failing on an error or after `deadline`.
pub fn run_to_eos(description: &str, deadline: Duration) -> Run {
    let pipeline = launch(description);
    run_pipeline_to_eos(&pipeline, deadline)
}

pub fn run_pipeline_to_eos(pipeline: &gst::Element, deadline: Duration) -> Run {
    init();
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).expect("playing");
    let end = Instant::now() + deadline;
    let mut run = Run {
        audiotap: Vec::new(),
        level: Vec::new(),
    };
    loop {
        let remaining = end.saturating_duration_since(Instant::now());
        assert!(!remaining.is_zero(), "no EOS within {deadline:?}");
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_nseconds(remaining.as_nanos() as u64))
        else {
            continue;
        };
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(err) => {
                pipeline.set_state(gst::State::Null).unwrap();
                panic!("pipeline error: {} ({:?})", err.error(), err.debug());
            }
            gst::MessageView::Element(element) => {
                let Some(s) = element.structure() else {
                    continue;
                };
                match s.name().as_str() {
                    "audiotap" => run.audiotap.push(s.to_owned()),
                    "level" => run.level.push(s.to_owned()),
                    _ => (),
                }
            }
            _ => (),
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    run
}

/// A `gst::Array` field of doubles.
pub fn doubles(s: &gst::StructureRef, field: &str) -> Vec<f64> {
    s.get::<gst::Array>(field)
        .unwrap_or_else(|_| panic!("{field} in {s}"))
        .iter()
        .map(|v| v.get::<f64>().unwrap())
        .collect()
}

pub fn floats(s: &gst::StructureRef, field: &str) -> Vec<f32> {
    s.get::<gst::Array>(field)
        .unwrap_or_else(|_| panic!("{field} in {s}"))
        .iter()
        .map(|v| v.get::<f32>().unwrap())
        .collect()
}

pub fn double(s: &gst::StructureRef, field: &str) -> f64 {
    s.get::<f64>(field)
        .unwrap_or_else(|_| panic!("{field} in {s}"))
}

/// Buffers of 1024 frames for `seconds` at `rate`.
pub fn buffers_for(seconds: f64, rate: u32) -> u64 {
    (seconds * rate as f64 / 1024.0).ceil() as u64
}
