//! canvassrc as a user sees it: pixels in the frames it pushes.

mod common;

use std::time::Duration;

use common::{Frame, Running};
use gst::prelude::*;

const WAIT: Duration = Duration::from_secs(10);
const RED: (u8, u8, u8) = (255, 0, 0);
const BACKGROUND: (u8, u8, u8) = (0x20, 0x40, 0x60);

const SCENE: &str = r##"{"background": "#204060", "nodes": [
    {"id": "box", "type": "rect", "x": 40, "y": 30, "width": 60, "height": 50, "fill": "#ff0000"}
]}"##;

/// A canvas at 320x240; `live=false` makes the source wait for the test
/// (appsink holds one frame and blocks), so at most two frames drawn before
/// a patch can still arrive after it.
fn canvas(scene: &str, format: &str, live: bool) -> Running {
    common::init();
    let pipeline = gst::Pipeline::new();
    let src = gst::ElementFactory::make("canvassrc")
        .name("canvas")
        .property("scene", scene)
        .property("is-live", live)
        .build()
        .unwrap();
    let sink = gst_app::AppSink::builder()
        .name("sink")
        .caps(
            &gst::Caps::builder("video/x-raw")
                .field("format", format)
                .field("width", 320)
                .field("height", 240)
                .field("framerate", gst::Fraction::new(30, 1))
                .build(),
        )
        .max_buffers(1)
        .sync(false)
        .build();
    pipeline.add_many([&src, sink.upcast_ref()]).unwrap();
    src.link(&sink).unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    Running { pipeline, sink }
}

fn is_red_box_at(frame: &Frame, x: u32, y: u32) -> bool {
    frame.share_of(RED, x, y, 60, 50, 0) == 1.0
}

#[test]
fn red_rectangle_is_where_the_scene_puts_it() {
    let run = canvas(SCENE, "RGBx", false);
    let frame = run.next_frame(WAIT);
    assert_eq!((frame.width, frame.height), (320, 240));
    assert!(is_red_box_at(&frame, 40, 30));
    // Just outside each edge is background.
    for (x, y) in [(39, 50), (100, 50), (70, 29), (70, 80), (0, 0), (319, 239)] {
        assert_eq!(frame.rgb(x, y), BACKGROUND, "pixel {x},{y}");
    }
}

#[test]
fn other_formats_carry_the_same_colours() {
    for format in ["BGRx", "RGBA", "BGRA"] {
        let run = canvas(SCENE, format, false);
        let frame = run.next_frame(WAIT);
        assert!(is_red_box_at(&frame, 40, 30), "{format}");
        assert_eq!(frame.rgb(5, 5), BACKGROUND, "{format}");
    }
}

#[test]
fn move_patch_moves_the_pixels_on_the_next_frame() {
    let run = canvas(SCENE, "RGBx", false);
    assert!(is_red_box_at(&run.next_frame(WAIT), 40, 30));
    let canvas = run.element("canvas");
    let ok: bool = canvas.emit_by_name(
        "apply-patch",
        &[&r#"{"op": "move", "id": "box", "x": 200, "y": 150}"#],
    );
    assert!(ok);
    // At most the frame waiting in appsink and the one being pushed were
    // drawn before the patch; the next one shows it.
    let frames: Vec<Frame> = (0..3).map(|_| run.next_frame(WAIT)).collect();
    let moved = frames
        .iter()
        .position(|f| is_red_box_at(f, 200, 150))
        .expect("box never moved");
    assert!(moved <= 2);
    let after = &frames[moved];
    assert_eq!(
        after.share_of(BACKGROUND, 40, 30, 60, 50, 0),
        1.0,
        "old place not cleared"
    );
}

#[test]
fn text_renders_inside_its_box() {
    let scene = r##"{"background": "#000000", "nodes": [
        {"type": "text", "x": 20, "y": 100, "text": "Hello", "size": 48, "fill": "#ffffff"}]}"##;
    let run = canvas(scene, "RGBx", false);
    let frame = run.next_frame(WAIT);
    let lit = |x: u32, y: u32, w: u32, h: u32| 1.0 - frame.share_of((0, 0, 0), x, y, w, h, 0);
    // "Hello" at 48 px: about 130 px wide, capitals ~35 px above the baseline.
    assert!(
        lit(20, 60, 140, 42) > 0.15,
        "too few text pixels: {}",
        lit(20, 60, 140, 42)
    );
    assert_eq!(lit(0, 110, 320, 130), 0.0, "pixels lit below the text");
    assert_eq!(lit(180, 0, 140, 240), 0.0, "pixels lit right of the text");
}

fn expect_refusal(run: &Running, patch: &str, words: &str) {
    let canvas = run.element("canvas");
    let ok: bool = canvas.emit_by_name("apply-patch", &[&patch]);
    assert!(!ok, "{patch} was accepted");
    let message = run
        .message(WAIT, &[gst::MessageType::Warning])
        .expect("no warning for a bad patch");
    let gst::MessageView::Warning(warning) = message.view() else {
        unreachable!()
    };
    let text = warning.error().to_string();
    assert!(
        text.contains(words),
        "warning {text:?} does not say {words:?}"
    );
    let last_error: Option<String> = canvas.property("last-error");
    assert!(last_error.unwrap().contains(words));
}

#[test]
fn bad_patches_are_refused_clearly_and_the_stream_goes_on() {
    let run = canvas(SCENE, "RGBx", true);
    assert!(is_red_box_at(&run.next_frame(WAIT), 40, 30));
    expect_refusal(
        &run,
        "{\"op\": \"move\", \"id\": ",
        "invalid JSON at line 1 column",
    );
    expect_refusal(
        &run,
        r#"{"op": "add", "node": {"id": "t", "type": "triangle"}}"#,
        "unknown node type \"triangle\"",
    );
    expect_refusal(
        &run,
        r#"{"op": "remove", "id": "nope"}"#,
        "no node with id \"nope\"",
    );
    // Still streaming, still the last good scene.
    for _ in 0..5 {
        assert!(is_red_box_at(&run.next_frame(WAIT), 40, 30));
    }
    assert!(
        run.pipeline
            .bus()
            .unwrap()
            .pop_filtered(&[gst::MessageType::Error])
            .is_none()
    );
}

#[test]
fn unchanged_scene_is_drawn_once_at_a_constant_framerate() {
    let run = canvas(SCENE, "RGBx", true);
    let frames: Vec<Frame> = (0..20).map(|_| run.next_frame(WAIT)).collect();
    common::assert_constant_framerate(&frames, 30, 2);
    let rendered: u64 = run.element("canvas").property("rendered-frames");
    assert_eq!(rendered, 1);
}

#[test]
fn rust_api_reports_why_and_guards_files_from_remote_peers() {
    let run = canvas(SCENE, "RGBx", false);
    run.next_frame(WAIT);
    let canvas = run.element("canvas");
    gstpeercapture::canvassrc::apply_patch(
        &canvas,
        r#"{"op":"update","id":"box","set":{"fill":"lime"}}"#,
    )
    .unwrap();
    run.frame_where(WAIT, |f| f.share_of((0, 255, 0), 40, 30, 60, 50, 0) == 1.0);

    let err = gstpeercapture::canvassrc::apply_remote_patch(
        &canvas,
        r#"{"op":"add","node":{"type":"image","src":"/etc/hostname"}}"#,
    )
    .unwrap_err();
    assert!(err.to_string().contains("not allowed"), "{err}");

    let not_canvas = gst::ElementFactory::make("fakesrc").build().unwrap();
    assert!(gstpeercapture::canvassrc::apply_patch(&not_canvas, "{}").is_err());
}

#[test]
fn invalid_scene_stops_the_start_with_a_clear_error() {
    common::init();
    let pipeline =
        gst::parse::launch(r#"canvassrc scene="{\"nodes\": [{\"type\": \"rect\"}]}" ! fakesink"#)
            .unwrap();
    assert!(pipeline.set_state(gst::State::Playing).is_err());
    let errors = common::bus_errors(pipeline.downcast_ref().unwrap());
    assert!(
        errors
            .iter()
            .any(|e| e.contains("a rect needs a number \"width\"")),
        "{errors:?}"
    );
    pipeline.set_state(gst::State::Null).unwrap();
}

#[test]
fn pausing_and_resuming_goes_on_streaming() {
    let run = canvas(SCENE, "RGBx", true);
    run.next_frame(WAIT);
    run.pipeline.set_state(gst::State::Paused).unwrap();
    run.pipeline
        .state(gst::ClockTime::from_seconds(5))
        .0
        .unwrap();
    run.pipeline.set_state(gst::State::Playing).unwrap();
    for _ in 0..5 {
        assert!(is_red_box_at(&run.next_frame(WAIT), 40, 30));
    }
}

/// An empty canvas at 320x240@30 with GstBaseSrc's `num-buffers`.
fn counted_canvas(live: bool, frames: i32) -> Running {
    common::init();
    Running::launch(&format!(
        "canvassrc is-live={live} num-buffers={frames} \
         ! video/x-raw,width=320,height=240,framerate=30/1 ! appsink name=sink sync=false"
    ))
}

/// `num-buffers=N`, live or not: N frames, then EOS. Not live, they are
/// stamped one frame apart from zero; live, with their ticks.
#[test]
fn num_buffers_gives_that_many_frames_then_eos() {
    for live in [false, true] {
        let run = counted_canvas(live, 10);
        let frames = run.frames_until_eos(WAIT);
        assert_eq!(frames.len(), 10, "is-live={live}");
        let stamps: Vec<_> = frames.iter().map(|f| f.pts.unwrap()).collect();
        if live {
            assert!(stamps.windows(2).all(|p| p[1] > p[0]), "{stamps:?}");
        } else {
            let expected: Vec<_> = (0..10u64)
                .map(|n| gst::ClockTime::SECOND.mul_div_floor(n, 30).unwrap())
                .collect();
            assert_eq!(stamps, expected);
        }
    }
}

/// `is-live` decides, as documented, whether the source prerolls.
#[test]
fn is_live_decides_whether_it_prerolls() {
    common::init();
    for (live, expected) in [
        (true, gst::StateChangeSuccess::NoPreroll),
        (false, gst::StateChangeSuccess::Async),
    ] {
        let pipeline = gst::parse::launch(&format!("canvassrc is-live={live} ! fakesink"))
            .unwrap()
            .downcast::<gst::Pipeline>()
            .unwrap();
        assert_eq!(
            pipeline.set_state(gst::State::Paused),
            Ok(expected),
            "is-live={live}"
        );
        if !live {
            let (result, state, _) = pipeline.state(gst::ClockTime::from_seconds(10));
            assert_eq!(
                (result, state),
                (Ok(gst::StateChangeSuccess::Success), gst::State::Paused)
            );
        }
        pipeline.set_state(gst::State::Null).unwrap();
    }
}
