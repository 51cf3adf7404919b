//! The demo broadcast of `peer serve --demo`: something moving and a tone,
//! sent through peersink into the server it runs beside.

use gst::prelude::*;

use crate::pipeline;

pub struct Demo {
    pipeline: gst::Pipeline,
}

pub fn start(port: u16) -> anyhow::Result<Demo> {
    pipeline::init()?;
    let description = format!(
        "peersink name=sink uri=ws://127.0.0.1:{port}/demo peer-id=demo \
           meta=\"{{\\\"title\\\":\\\"gst-peer demo\\\"}}\" \
         videotestsrc is-live=true pattern=ball animation-mode=running-time motion=sweep background-color=0xff203040 \
           ! video/x-raw,width=1280,height=720,framerate=30/1 \
           ! timeoverlay halignment=right valignment=bottom font-desc=\"Sans 24\" ! sink.video_0 \
         audiotestsrc is-live=true wave=sine freq=440 volume=0.2 ! sink.audio_0"
    );
    let pipeline = pipeline::launch(&description)?;
    pipeline.set_state(gst::State::Playing)?;
    let bus = pipeline.bus().expect("pipelines have a bus");
    std::thread::spawn(move || {
        for message in bus.iter_timed(gst::ClockTime::NONE) {
            if let gst::MessageView::Error(err) = message.view() {
                tracing::error!("demo broadcast: {}", err.error());
            }
        }
    });
    tracing::info!("demo broadcast in room \"demo\" as producer \"demo\"");
    Ok(Demo { pipeline })
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}
