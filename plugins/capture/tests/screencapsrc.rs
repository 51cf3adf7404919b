//! screencapsrc against a private Xvfb: what a user sees in the frames.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::Duration;

use common::{Running, TestWindow, Xvfb};
use gst::prelude::*;
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{
    ChangeGCAux, ConfigureWindowAux, ConnectionExt as _, CreateGCAux, Rectangle, SubwindowMode,
};
use x11rb::wrapper::ConnectionExt as _;

const FRAME_WAIT: Duration = Duration::from_secs(10);

fn capture(xvfb: &Xvfb, properties: &str) -> Running {
    Running::launch(&format!(
        "screencapsrc name=src display-name={} {properties} ! appsink name=sink sync=false max-buffers=2 drop=true",
        xvfb.display
    ))
}

#[test]
fn root_colour_is_captured_at_screen_size() {
    let xvfb = Xvfb::start(640, 480);
    xvfb.set_root_color("#3366cc");
    let run = capture(&xvfb, "show-cursor=false");
    let frame = run.next_frame(FRAME_WAIT);
    assert_eq!((frame.width, frame.height), (640, 480));
    assert!(
        frame.all_of((0x33, 0x66, 0xcc)) > 0.999,
        "frame is not #3366cc: corner {:?}, centre {:?}",
        frame.rgb(0, 0),
        frame.rgb(320, 240)
    );
}

/// Without MIT-SHM (as on a remote display) frames come over the socket.
#[test]
fn without_shared_memory_frames_still_come() {
    let xvfb = Xvfb::start_with(320, 240, &["-extension", "MIT-SHM"]);
    xvfb.set_root_color("#c03060");
    let run = capture(&xvfb, "show-cursor=false x=10 y=20 width=100 height=50");
    let frame = run.next_frame(FRAME_WAIT);
    assert_eq!((frame.width, frame.height), (100, 50));
    assert!(frame.all_of((0xc0, 0x30, 0x60)) > 0.999);
    xvfb.set_root_color("#30c060");
    run.frame_where(FRAME_WAIT, |f| f.all_of((0x30, 0xc0, 0x60)) > 0.999);
}

/// Pixels around (x, y) that are not the black background.
fn drawn_near(frame: &common::Frame, x: u32, y: u32) -> f64 {
    1.0 - frame.share_of(
        (0, 0, 0),
        x.saturating_sub(16),
        y.saturating_sub(16),
        32,
        32,
        8,
    )
}

#[test]
fn the_pointer_is_drawn_where_it_is_only_when_asked() {
    let xvfb = Xvfb::start(320, 240);
    xvfb.set_root_color("#000000");
    let (conn, screen_num) = x11rb::connect(Some(&xvfb.display)).unwrap();
    let root = conn.setup().roots[screen_num].root;
    let warp = |x: i16, y: i16| {
        conn.warp_pointer(x11rb::NONE, root, 0, 0, 0, 0, x, y)
            .unwrap();
        conn.sync().unwrap();
    };
    warp(100, 80);
    let run = capture(&xvfb, "show-cursor=true");
    let frame = run.next_frame(FRAME_WAIT);
    assert!(
        drawn_near(&frame, 100, 80) > 0.02,
        "no pointer drawn at (100, 80)"
    );
    assert_eq!(drawn_near(&frame, 250, 200), 0.0);
    // Moved: drawn at its new place, gone from the old one.
    warp(250, 200);
    run.frame_where(FRAME_WAIT, |f| {
        drawn_near(f, 250, 200) > 0.02 && drawn_near(f, 100, 80) == 0.0
    });
    drop(run);

    let run = capture(&xvfb, "show-cursor=false");
    assert!(run.next_frame(FRAME_WAIT).all_of((0, 0, 0)) > 0.9999);
}

#[test]
fn region_gives_the_region_size() {
    let xvfb = Xvfb::start(800, 600);
    xvfb.set_root_color("#10a040");
    let run = capture(&xvfb, "show-cursor=false x=100 y=50 width=320 height=200");
    let frame = run.next_frame(FRAME_WAIT);
    assert_eq!((frame.width, frame.height), (320, 200));
    assert!(frame.all_of((0x10, 0xa0, 0x40)) > 0.999);
}

#[test]
fn window_by_name_has_its_size_and_content_and_follows_it() {
    let xvfb = Xvfb::start(800, 600);
    xvfb.set_root_color("#000000");
    let window = TestWindow::open(&xvfb, "peer capture test", 0x00ff00, 50, 60, 200, 150);
    let run = capture(&xvfb, "show-cursor=false window-name=\"peer capture test\"");
    let frame = run.next_frame(FRAME_WAIT);
    assert_eq!((frame.width, frame.height), (200, 150));
    assert!(
        frame.all_of((0, 255, 0)) > 0.999,
        "window is not green: {:?}",
        frame.rgb(100, 75)
    );

    // Moved: same size, still the window's content.
    window.configure(&ConfigureWindowAux::new().x(300).y(200));
    window.configure(&ConfigureWindowAux::new().width(260).height(120));
    let frame = run.frame_where(FRAME_WAIT, |f| (f.width, f.height) == (260, 120));
    assert!(
        frame.all_of((0, 255, 0)) > 0.999,
        "resized window is not green"
    );
    assert!(run.element("src").property::<u64>("grabbed-frames") >= 2);
}

/// As with ximagesrc: `num-buffers=N` pushes N frames, then EOS; each run
/// counts afresh.
#[test]
fn num_buffers_ends_the_stream_after_that_many_frames_every_run() {
    let xvfb = Xvfb::start(320, 240);
    xvfb.set_root_color("#336699");
    let run = capture(&xvfb, "show-cursor=false num-buffers=12");
    let frames = run.frames_until_eos(FRAME_WAIT);
    assert_eq!(frames.len(), 12, "frames before EOS");
    assert!(frames.iter().all(|f| f.all_of((0x33, 0x66, 0x99)) > 0.999));
    assert_eq!(run.element("src").property::<i32>("num-buffers"), 12);

    run.pipeline.set_state(gst::State::Null).unwrap();
    run.pipeline.set_state(gst::State::Playing).unwrap();
    assert_eq!(run.frames_until_eos(FRAME_WAIT).len(), 12, "second run");
}

/// A live source, as documented: it does not preroll, and says so in the
/// latency query (half a frame).
#[test]
fn it_is_live_it_does_not_preroll() {
    let xvfb = Xvfb::start(160, 120);
    common::init();
    let pipeline = gst::parse::launch(&format!(
        "screencapsrc display-name={} framerate=20/1 ! appsink name=sink sync=false",
        xvfb.display
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    assert_eq!(
        pipeline.set_state(gst::State::Paused),
        Ok(gst::StateChangeSuccess::NoPreroll)
    );
    let sink = pipeline.by_name("sink").unwrap();
    let run = Running {
        pipeline,
        sink: sink.downcast().unwrap(),
    };
    run.pipeline.set_state(gst::State::Playing).unwrap();
    run.next_frame(FRAME_WAIT); // caps are negotiated: the latency is known
    // Asked of the source itself (a sink with sync=false answers "not
    // live" for everything upstream).
    let mut query = gst::query::Latency::new();
    assert!(run.sink.static_pad("sink").unwrap().peer_query(&mut query));
    let (live, min, _) = query.result();
    assert!(live, "the latency query says not live");
    assert_eq!(min, gst::ClockTime::from_mseconds(25));
}

#[test]
fn window_by_id_and_its_closing_ends_the_stream() {
    let xvfb = Xvfb::start(640, 480);
    xvfb.set_root_color("#000000");
    let window = TestWindow::open(&xvfb, "closing", 0xff0000, 10, 10, 120, 90);
    let run = capture(
        &xvfb,
        &format!("show-cursor=false window-id={:#x}", window.id),
    );
    let frame = run.next_frame(FRAME_WAIT);
    assert_eq!((frame.width, frame.height), (120, 90));
    assert!(frame.all_of((255, 0, 0)) > 0.999);

    window.conn.destroy_window(window.id).unwrap();
    window.conn.sync().unwrap();
    let message = run
        .message(FRAME_WAIT, &[gst::MessageType::Warning])
        .expect("no warning after the window closed");
    let gst::MessageView::Warning(warning) = message.view() else {
        unreachable!()
    };
    assert!(
        warning.error().to_string().contains("closed"),
        "unclear warning: {}",
        warning.error()
    );
    assert!(
        run.drain_until_eos(FRAME_WAIT),
        "the stream did not end after the window closed"
    );
}

#[test]
fn idle_screen_is_not_grabbed_yet_framerate_is_constant() {
    let xvfb = Xvfb::start(640, 480);
    xvfb.set_root_color("#808080");
    let run = Running::launch(&format!(
        "screencapsrc name=src display-name={} framerate=30/1 ! appsink name=sink sync=false",
        xvfb.display
    ));
    let frames: Vec<_> = (0..60).map(|_| run.next_frame(FRAME_WAIT)).collect();
    common::assert_constant_framerate(&frames, 30, 3);
    let src = run.element("src");
    let grabbed = src.property::<u64>("grabbed-frames");
    assert!(
        grabbed <= 3,
        "an idle screen was grabbed {grabbed} times in 60 frames"
    );

    // A change on screen is grabbed and shows up.
    xvfb.set_root_color("#ff8000");
    run.frame_where(FRAME_WAIT, |f| f.all_of((0xff, 0x80, 0x00)) > 0.99);
    assert!(src.property::<u64>("grabbed-frames") > grabbed);
}

#[test]
fn the_last_change_of_a_busy_screen_is_captured() {
    let xvfb = Xvfb::start(320, 240);
    xvfb.set_root_color("#000000");
    let run = capture(&xvfb, "show-cursor=false");
    run.next_frame(FRAME_WAIT);

    // Repaint the whole screen faster than the framerate for a while (the
    // element then stops waiting for the server before each grab), then
    // stop on one colour: that colour must be what stays on screen.
    let (conn, screen_num) = x11rb::connect(Some(&xvfb.display)).unwrap();
    let root = conn.setup().roots[screen_num].root;
    let gc = conn.generate_id().unwrap();
    conn.create_gc(
        gc,
        root,
        &CreateGCAux::new().subwindow_mode(SubwindowMode::INCLUDE_INFERIORS),
    )
    .unwrap();
    let fill = |pixel: u32| {
        conn.change_gc(gc, &ChangeGCAux::new().foreground(pixel))
            .unwrap();
        conn.poly_fill_rectangle(
            root,
            gc,
            &[Rectangle {
                x: 0,
                y: 0,
                width: 320,
                height: 240,
            }],
        )
        .unwrap();
        conn.sync().unwrap();
    };
    let deadline = std::time::Instant::now() + Duration::from_millis(600);
    let mut i = 0u32;
    while std::time::Instant::now() < deadline {
        fill(if i.is_multiple_of(2) {
            0x0000ff
        } else {
            0xffff00
        });
        i += 1;
        // Paced by the frames themselves: one repaint per frame or two.
        let _ = run.sink.try_pull_sample(gst::ClockTime::from_mseconds(20));
    }
    let busy_grabs = run.element("src").property::<u64>("grabbed-frames");
    assert!(
        busy_grabs >= 10,
        "only {busy_grabs} grabs while the screen kept changing"
    );
    fill(0x00ff00);
    let frame = run.frame_where(FRAME_WAIT, |f| f.all_of((0, 255, 0)) > 0.999);
    assert_eq!((frame.width, frame.height), (320, 240));
    // And it stays.
    for _ in 0..5 {
        assert!(run.next_frame(FRAME_WAIT).all_of((0, 255, 0)) > 0.999);
    }
}

#[test]
fn pausing_resuming_and_restarting_keep_capturing() {
    let xvfb = Xvfb::start(320, 240);
    xvfb.set_root_color("#ff00ff");
    let run = capture(&xvfb, "show-cursor=false");
    run.next_frame(FRAME_WAIT);
    run.pipeline.set_state(gst::State::Paused).unwrap();
    run.pipeline.set_state(gst::State::Playing).unwrap();
    run.frame_where(FRAME_WAIT, |f| f.all_of((255, 0, 255)) > 0.999);
    // Paused, nothing is pushed (at most a frame already under way).
    let src = run.element("src");
    run.pipeline.set_state(gst::State::Paused).unwrap();
    let pushed = src.property::<u64>("pushed-frames");
    let _ = run.message(Duration::from_millis(300), &[gst::MessageType::Error]);
    let later = src.property::<u64>("pushed-frames");
    assert!(
        later <= pushed + 1,
        "{} frames pushed while paused",
        later - pushed
    );
    run.pipeline.set_state(gst::State::Playing).unwrap();
    run.frame_where(FRAME_WAIT, |f| f.all_of((255, 0, 255)) > 0.999);
    // Down to READY (the grabber is parked in the gate) and up again.
    run.pipeline.set_state(gst::State::Ready).unwrap();
    xvfb.set_root_color("#00ffff");
    run.pipeline.set_state(gst::State::Playing).unwrap();
    run.frame_where(FRAME_WAIT, |f| f.all_of((0, 255, 255)) > 0.999);
}

/// On X11 the thread that grabs (the grabber's) also pushes every frame,
/// grabbed or repeated: no second thread wakes at each tick.
#[test]
fn one_streaming_thread_grabs_and_pushes() {
    common::init();
    let xvfb = Xvfb::start(320, 240);
    xvfb.set_root_color("#204060");
    let pipeline = gst::parse::launch(&format!(
        "screencapsrc name=src display-name={} show-cursor=false ! appsink name=sink sync=false max-buffers=2 drop=true",
        xvfb.display
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    // Streaming threads announce themselves from the thread itself.
    let entered: Arc<Mutex<Vec<(String, ThreadId)>>> = Arc::default();
    let record = entered.clone();
    pipeline.bus().unwrap().set_sync_handler(move |_, msg| {
        if let gst::MessageView::StreamStatus(status) = msg.view() {
            let (kind, owner) = status.get();
            if kind == gst::StreamStatusType::Enter {
                record
                    .lock()
                    .unwrap()
                    .push((owner.name().to_string(), std::thread::current().id()));
            }
        }
        gst::BusSyncReply::Pass
    });
    let pushers: Arc<Mutex<HashSet<ThreadId>>> = Arc::default();
    let record = pushers.clone();
    let src = pipeline.by_name("src").unwrap();
    src.static_pad("src")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            record.lock().unwrap().insert(std::thread::current().id());
            gst::PadProbeReturn::Ok
        });
    let sink = pipeline
        .by_name("sink")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let run = Running { pipeline, sink };

    // Repeats of an idle screen, a change (a grab), repeats again.
    for _ in 0..10 {
        run.next_frame(FRAME_WAIT);
    }
    xvfb.set_root_color("#ffffff");
    run.frame_where(FRAME_WAIT, |f| f.all_of((255, 255, 255)) > 0.99);
    for _ in 0..5 {
        run.next_frame(FRAME_WAIT);
    }
    assert!(src.property::<u64>("grabbed-frames") >= 2);

    let entered = entered.lock().unwrap().clone();
    let inside: Vec<_> = entered
        .iter()
        .filter(|(owner, _)| owner != "sink")
        .collect();
    assert_eq!(inside.len(), 1, "streaming threads started: {entered:?}");
    let (owner, grabbing) = inside[0];
    assert_eq!(owner, "grabber");
    let pushers = pushers.lock().unwrap().clone();
    assert_eq!(pushers, HashSet::from([*grabbing]));
}
