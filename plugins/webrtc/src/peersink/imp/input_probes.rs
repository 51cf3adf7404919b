//! The probes peersink puts on each input's entry queue: the caps build
//! the input's encoder chain (once, when they first leave the queue), and
//! reports of an `audiotap` upstream go out on the `audiotap` data channel.

use std::sync::Arc;

use gst::prelude::*;
use gst::subclass::prelude::*;

use super::super::input::Input;
use super::{AUDIOTAP_LABEL, CAT, PeerSink};
use crate::datachannel::Payload;
use crate::error::ElementError;

impl PeerSink {
    pub(super) fn watch_input_caps(&self, input: &Arc<Input>) {
        // Build the encoder chain when the caps are about to leave the entry queue.
        let element = self.obj().downgrade();
        let weak_input = Arc::downgrade(input);
        input
            .entry
            .static_pad("src")
            .expect("queues have a src pad")
            .add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
                let Some(gst::EventView::Caps(caps)) = info.event().map(|e| e.view()) else {
                    return gst::PadProbeReturn::Ok;
                };
                let (Some(element), Some(input)) = (element.upgrade(), weak_input.upgrade()) else {
                    return gst::PadProbeReturn::Ok;
                };
                if input.codec().is_some() {
                    return gst::PadProbeReturn::Ok;
                }
                let settings = element.imp().settings.lock().unwrap().encoder();
                let built = settings.and_then(|settings| {
                    input.build_chain(element.upcast_ref(), caps.caps(), &settings)
                });
                match built {
                    Ok((codec, warning)) => {
                        gst::info!(CAT, obj = element, "{} sends {:?}", input.pad_name, codec);
                        if let Some(warning) = warning {
                            ElementError::Format(warning).post_warning(element.upcast_ref());
                        }
                        gst::PadProbeReturn::Ok
                    }
                    Err(err) => {
                        ElementError::Format(err).post_error(element.upcast_ref());
                        // Handled: freed by gstreamer-rs (see input.rs).
                        gst::PadProbeReturn::Handled
                    }
                }
            });
    }

    /// An `audiotap` upstream sends its reports as custom events; they go
    /// to every viewer on the `audiotap` data channel.
    pub(super) fn forward_audio_analysis(&self, input: &Arc<Input>) {
        let element = self.obj().downgrade();
        let pad = input
            .entry
            .static_pad("sink")
            .expect("queues have a sink pad");
        pad.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
            let report = info
                .event()
                .filter(|event| event.type_() == gst::EventType::CustomDownstream)
                .and_then(|event| event.structure())
                .filter(|structure| structure.name() == AUDIOTAP_LABEL)
                .and_then(|structure| structure.get::<String>("json").ok());
            if let (Some(json), Some(element)) = (report, element.upgrade()) {
                element
                    .imp()
                    .send_on_channels(AUDIOTAP_LABEL, None, &Payload::Text(json));
            }
            gst::PadProbeReturn::Ok
        });
    }
}
