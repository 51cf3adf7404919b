//! `peer record --composite FILE`: one mixed file of the room, in addition
//! to the per-publisher files. Each recording decodes its tracks into
//! inter{video,audio}sink channels; this pipeline lays the publishers out
//! in a grid (compositor) and mixes their sound (audiomixer), encoding once.
//! A black picture and silence underneath keep the clock running while
//! nobody publishes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use gst::prelude::*;

use crate::pipeline::quote;

pub struct Composite {
    pipeline: gst::Pipeline,
    compositor: gst::Element,
    mixer: gst::Element,
    width: u32,
    height: u32,
    slots: Vec<Slot>,
    path: PathBuf,
}

struct Slot {
    publisher: String,
    video: Option<Branch>,
    audio: Option<Branch>,
}

struct Branch {
    elements: Vec<gst::Element>,
    target: gst::Pad,
}

/// The inter-element channel names a recording feeds for `publisher`.
pub fn channel_names(recorder_id: &str, publisher: &str, generation: u64) -> (String, String) {
    let base = format!("{recorder_id}-{publisher}-{generation}");
    (format!("{base}-video"), format!("{base}-audio"))
}

impl Composite {
    pub fn start(path: &Path, width: u32, height: u32) -> anyhow::Result<Composite> {
        let webm = path.extension().is_some_and(|e| e == "webm");
        let (muxer, video_encoder) = if webm {
            (
                "webmmux",
                "vp8enc deadline=1 cpu-used=8 end-usage=cbr target-bitrate=2000000 keyframe-max-dist=60 threads=2",
            )
        } else {
            (
                "matroskamux",
                "x264enc tune=zerolatency speed-preset=veryfast bitrate=2000 key-int-max=60",
            )
        };
        let description = format!(
            "compositor name=grid background=black ! video/x-raw,width={width},height={height},framerate=30/1 \
               ! videoconvert ! queue ! {video_encoder} ! queue ! mux. \
             audiomixer name=mix ! audio/x-raw,rate=48000,channels=2 ! audioconvert ! queue ! opusenc ! queue ! mux. \
             {muxer} name=mux max-cluster-duration=1000000000 ! filesink location={} sync=false \
             videotestsrc is-live=true pattern=black ! video/x-raw,width={width},height={height},framerate=30/1 ! grid. \
             audiotestsrc is-live=true wave=silence ! audio/x-raw,rate=48000,channels=2 ! mix.",
            quote(&path.to_string_lossy())
        );
        let pipeline = crate::pipeline::launch(&description)?;
        let compositor = pipeline.by_name("grid").expect("named grid");
        let mixer = pipeline.by_name("mix").expect("named mix");
        pipeline
            .set_state(gst::State::Playing)
            .context("cannot start the composite")?;
        println!("composite of the room → {}", path.display());
        Ok(Composite {
            pipeline,
            compositor,
            mixer,
            width,
            height,
            slots: Vec::new(),
            path: path.to_owned(),
        })
    }

    /// Gives `publisher` a cell (and a voice in the mix), fed from the
    /// channels its recording decodes into.
    pub fn add(
        &mut self,
        publisher: &str,
        video_channel: &str,
        audio_channel: &str,
    ) -> anyhow::Result<()> {
        self.remove(publisher);
        let video = self.branch(
            &format!(
                "intervideosrc channel={} timeout=1000000000 ! videoconvert ! videoscale",
                quote(video_channel)
            ),
            &self.compositor.clone(),
        )?;
        let audio = self.branch(
            &format!(
                "interaudiosrc channel={} ! audioconvert ! audioresample",
                quote(audio_channel)
            ),
            &self.mixer.clone(),
        )?;
        self.slots.push(Slot {
            publisher: publisher.to_owned(),
            video: Some(video),
            audio: Some(audio),
        });
        self.layout();
        Ok(())
    }

    fn branch(&self, description: &str, into: &gst::Element) -> anyhow::Result<Branch> {
        let bin = gst::parse::bin_from_description(description, true)?;
        let element: gst::Element = bin.upcast();
        self.pipeline.add(&element)?;
        let target = into
            .request_pad_simple("sink_%u")
            .context("the mixer refused a pad")?;
        element
            .static_pad("src")
            .expect("ghost src")
            .link(&target)?;
        element.sync_state_with_parent()?;
        Ok(Branch {
            elements: vec![element],
            target,
        })
    }

    pub fn remove(&mut self, publisher: &str) {
        let Some(index) = self.slots.iter().position(|s| s.publisher == publisher) else {
            return;
        };
        let slot = self.slots.remove(index);
        for (branch, owner) in [(slot.video, &self.compositor), (slot.audio, &self.mixer)] {
            if let Some(branch) = branch {
                for element in &branch.elements {
                    let _ = element.set_state(gst::State::Null);
                    let _ = self.pipeline.remove(element);
                }
                owner.release_request_pad(&branch.target);
            }
        }
        self.layout();
    }

    /// A grid as square as possible, publishers in order of arrival.
    fn layout(&self) {
        let count = self.slots.len() as u32;
        if count == 0 {
            return;
        }
        let columns = (count as f64).sqrt().ceil() as u32;
        let rows = count.div_ceil(columns);
        let (cell_width, cell_height) = (self.width / columns, self.height / rows);
        for (index, slot) in self.slots.iter().enumerate() {
            let Some(video) = &slot.video else { continue };
            let (column, row) = (index as u32 % columns, index as u32 / columns);
            video
                .target
                .set_property("xpos", (column * cell_width) as i32);
            video
                .target
                .set_property("ypos", (row * cell_height) as i32);
            video.target.set_property("width", cell_width as i32);
            video.target.set_property("height", cell_height as i32);
            video.target.set_property("zorder", 1u32 + index as u32);
        }
    }

    /// Ends the mixed file cleanly (EOS through the encoders and muxer).
    pub fn finish(self) -> String {
        self.pipeline.send_event(gst::event::Eos::new());
        let bus = self.pipeline.bus().expect("bus");
        let finished = bus
            .timed_pop_filtered(
                gst::ClockTime::from_nseconds(Duration::from_secs(3).as_nanos() as u64),
                &[gst::MessageType::Eos, gst::MessageType::Error],
            )
            .is_some_and(|m| matches!(m.view(), gst::MessageView::Eos(_)));
        let _ = self.pipeline.set_state(gst::State::Null);
        let bytes = std::fs::metadata(&self.path).map_or(0, |m| m.len());
        format!(
            "finished the composite: {} → {}{}",
            super::recording::human_bytes(bytes),
            self.path.display(),
            if finished {
                ""
            } else {
                " (not finalized in time)"
            }
        )
    }
}
