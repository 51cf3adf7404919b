//! The JSON results: in each message, in `last-json`, and in the downstream
//! events that an element such as peersink forwards to browsers.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use gst::prelude::*;

#[test]
fn json_matches_the_message_and_travels_downstream_as_events() {
    let pipeline = launch(
        "audiotestsrc num-buffers=47 volume=0.5 freq=440 \
         ! audio/x-raw,format=F32LE,rate=48000,channels=2 \
         ! audiotap name=tap spectrum-bands=16 ! fakesink name=sink",
    );
    let bin = pipeline.downcast_ref::<gst::Bin>().unwrap();
    let events: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink_events = events.clone();
    bin.by_name("sink")
        .unwrap()
        .static_pad("sink")
        .unwrap()
        .add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
            if let Some(gst::PadProbeData::Event(event)) = &info.data
                && let Some(json) = gstaudiotap::audiotap::json_from_event(event)
            {
                sink_events.lock().unwrap().push(json.to_owned());
            }
            gst::PadProbeReturn::Ok
        });
    let run = run_pipeline_to_eos(&pipeline, Duration::from_secs(60));
    let tap = bin.by_name("tap").unwrap();

    // 47 buffers of 1024 frames: 10 full intervals and a partial one at EOS.
    assert_eq!(run.audiotap.len(), 11);
    let events = events.lock().unwrap();
    assert_eq!(events.len(), run.audiotap.len());
    for (s, event_json) in run.audiotap.iter().zip(events.iter()) {
        let json = s.get::<&str>("json").unwrap();
        assert_eq!(json, event_json);
        let value: serde_json::Value = serde_json::from_str(json).expect("valid JSON");
        assert_eq!(value["type"], "audiotap");
        let rms = value["rms"].as_array().unwrap();
        assert_eq!(rms.len(), 2);
        assert!((rms[0].as_f64().unwrap() - doubles(s, "rms")[0]).abs() <= 0.005);
        assert_eq!(value["spectrum"].as_array().unwrap().len(), 16);
        assert!(value["time"].as_f64().is_some());
        for key in [
            "momentary",
            "short-term",
            "integrated",
            "true-peak",
            "waveform-min",
            "pitch",
            "clarity",
            "onsets",
            "bpm",
            "voice",
        ] {
            assert!(value.get(key).is_some(), "{key} missing from {json}");
        }
    }
    let last: Option<String> = tap.property("last-json");
    assert_eq!(last.as_deref(), Some(events.last().unwrap().as_str()));
    assert!(json_len_is_compact(events.last().unwrap()));
}

fn json_len_is_compact(json: &str) -> bool {
    !json.contains(' ') && json.len() < 2000
}

#[test]
fn disabled_analyses_leave_their_fields_out() {
    let run = run_to_eos(
        "audiotestsrc num-buffers=10 ! audio/x-raw,rate=48000,channels=1 \
         ! audiotap level=true loudness=false spectrum=false waveform=false pitch=false onsets=false voice=false send-events=false \
         ! fakesink",
        Duration::from_secs(30),
    );
    let s = &run.audiotap[0];
    assert!(s.has_field("rms") && !s.has_field("spectrum") && !s.has_field("momentary"));
    let value: serde_json::Value = serde_json::from_str(s.get::<&str>("json").unwrap()).unwrap();
    let keys: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys.len(), 6, "{keys:?}");
}
