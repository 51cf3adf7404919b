//! Passthrough: the element hands on the very buffers it gets, unchanged,
//! in every accepted format and layout of channels.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use gst::prelude::*;

type Seen = Arc<Mutex<Vec<(usize, u64)>>>;

fn record(pad: &gst::Pad) -> Seen {
    let seen: Seen = Arc::default();
    let sink = seen.clone();
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if let Some(gst::PadProbeData::Buffer(buffer)) = &info.data {
            let map = buffer.map_readable().unwrap();
            let checksum = map.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
                (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
            });
            sink.lock()
                .unwrap()
                .push((buffer.as_ptr() as usize, checksum));
        }
        gst::PadProbeReturn::Ok
    });
    seen
}

#[test]
fn output_buffers_are_the_input_buffers_bit_exact() {
    for (format, channels, rate) in [
        ("S16LE", 2, 48000),
        ("S32LE", 1, 44100),
        ("F32LE", 6, 48000),
        ("F64LE", 2, 8000),
    ] {
        let pipeline = launch(&format!(
            "audiotestsrc num-buffers=40 wave=white-noise \
             ! audio/x-raw,format={format},channels={channels},rate={rate} \
             ! audiotap name=tap ! fakesink"
        ));
        let tap = pipeline
            .downcast_ref::<gst::Bin>()
            .unwrap()
            .by_name("tap")
            .unwrap();
        let incoming = record(&tap.static_pad("sink").unwrap());
        let outgoing = record(&tap.static_pad("src").unwrap());
        let run = run_pipeline_to_eos(&pipeline, Duration::from_secs(60));
        assert!(!run.audiotap.is_empty(), "{format}: no reports");
        let incoming = incoming.lock().unwrap();
        assert_eq!(incoming.len(), 40);
        assert_eq!(
            *incoming,
            *outgoing.lock().unwrap(),
            "{format}: buffers differ"
        );
    }
}
