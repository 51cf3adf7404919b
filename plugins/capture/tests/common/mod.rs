//! Helpers shared by the integration tests: a private Xvfb per test, a
//! pipeline runner that pulls frames with deadlines, and pixel checks.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use gst::prelude::*;
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{
    AtomEnum, ConfigureWindowAux, ConnectionExt as _, CreateWindowAux, EventMask, PropMode,
    WindowClass,
};
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;

pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().unwrap();
        gstpeercapture::plugin_register_static().unwrap();
    });
}

trait DieWithParent {
    fn die_with_parent(&mut self) -> &mut Self;
}

impl DieWithParent for Command {
    /// A test killed half-way (a timeout, ^C) must not leave its X server
    /// behind: the kernel kills it when the spawning thread goes.
    fn die_with_parent(&mut self) -> &mut Self {
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl is async-signal-safe and touches no memory of ours.
        unsafe {
            self.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            })
        }
    }
}

/// An Xvfb server of its own, on a display number it picked itself, killed
/// on drop.
pub struct Xvfb {
    child: Child,
    pub display: String,
    pub width: u32,
    pub height: u32,
}

impl Xvfb {
    /// Starts Xvfb and returns once it accepts connections: `-displayfd`
    /// makes it choose a free display and write the number when it is
    /// ready, so there is nothing to guess or poll.
    pub fn start(width: u32, height: u32) -> Xvfb {
        Self::start_with(width, height, &[])
    }

    /// Same, with more server options (e.g. `-extension MIT-SHM` to turn
    /// shared memory off).
    pub fn start_with(width: u32, height: u32, options: &[&str]) -> Xvfb {
        let mut child = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                &format!("{width}x{height}x24"),
                "-nolisten",
                "tcp",
                "-noreset",
            ])
            .args(options)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .die_with_parent()
            .spawn()
            .expect("Xvfb not found (Debian package xvfb)");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("Xvfb did not report a display within 20 s");
        let number: u32 = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("Xvfb wrote {line:?} instead of a display number"));
        let display = format!(":{number}");
        // Belt and braces: the server must take a connection now.
        x11rb::connect(Some(&display)).expect("Xvfb is not accepting connections");
        Xvfb {
            child,
            display,
            width,
            height,
        }
    }

    /// Runs an X client program on this display and waits for it to finish.
    pub fn run(&self, program: &str, args: &[&str]) {
        let status = Command::new(program)
            .args(args)
            .env("DISPLAY", &self.display)
            .status()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        assert!(status.success(), "{program} {args:?} failed: {status}");
    }

    pub fn set_root_color(&self, color: &str) {
        self.run("xsetroot", &["-display", &self.display, "-solid", color]);
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running pipeline ending in an appsink called `sink`.
pub struct Running {
    pub pipeline: gst::Pipeline,
    pub sink: gst_app::AppSink,
}

impl Running {
    pub fn launch(description: &str) -> Running {
        init();
        let pipeline = gst::parse::launch(description)
            .unwrap_or_else(|e| panic!("cannot build {description}: {e}"))
            .downcast::<gst::Pipeline>()
            .unwrap();
        let sink = pipeline
            .by_name("sink")
            .expect("pipeline needs an appsink named sink")
            .downcast::<gst_app::AppSink>()
            .unwrap();
        pipeline.set_state(gst::State::Playing).unwrap_or_else(|e| {
            panic!(
                "{description} failed to start: {e}: {:?}",
                bus_errors(&pipeline)
            )
        });
        Running { pipeline, sink }
    }

    pub fn element(&self, name: &str) -> gst::Element {
        self.pipeline.by_name(name).unwrap()
    }

    /// The next frame, failing the test (with any bus error) after `within`.
    pub fn next_frame(&self, within: Duration) -> Frame {
        match self
            .sink
            .try_pull_sample(gst::ClockTime::from_nseconds(within.as_nanos() as u64))
        {
            Some(sample) => Frame::from_sample(&sample),
            None => panic!(
                "no frame within {within:?}; bus errors: {:?}",
                bus_errors(&self.pipeline)
            ),
        }
    }

    /// Pulls frames until one satisfies `test`, up to `deadline` from now.
    pub fn frame_where(&self, within: Duration, test: impl Fn(&Frame) -> bool) -> Frame {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no matching frame within {within:?}");
            let frame = self.next_frame(left);
            if test(&frame) {
                return frame;
            }
        }
    }

    /// Pulls (and discards) frames until the stream ends; false if it does
    /// not end within `within`. appsink only lets EOS through once its
    /// queue is empty, so draining is part of waiting for it.
    pub fn drain_until_eos(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.sink.is_eos() {
                return true;
            }
            let _ = self
                .sink
                .try_pull_sample(gst::ClockTime::from_mseconds(100));
        }
        self.sink.is_eos()
    }

    /// Every frame until the stream ends, failing the test when it has not
    /// ended `within` from now.
    pub fn frames_until_eos(&self, within: Duration) -> Vec<Frame> {
        let deadline = Instant::now() + within;
        let mut frames = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "the stream did not end within {within:?} ({} frames came); bus: {:?}",
                frames.len(),
                bus_errors(&self.pipeline)
            );
            let wait = left.min(Duration::from_millis(100));
            match self
                .sink
                .try_pull_sample(gst::ClockTime::from_nseconds(wait.as_nanos() as u64))
            {
                Some(sample) => frames.push(Frame::from_sample(&sample)),
                None if self.sink.is_eos() => return frames,
                None => {}
            }
        }
    }

    /// Waits for a bus message of one of `types`, up to `within`.
    pub fn message(&self, within: Duration, types: &[gst::MessageType]) -> Option<gst::Message> {
        self.pipeline.bus().unwrap().timed_pop_filtered(
            gst::ClockTime::from_nseconds(within.as_nanos() as u64),
            types,
        )
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

pub fn bus_errors(pipeline: &gst::Pipeline) -> Vec<String> {
    let bus = pipeline.bus().unwrap();
    let mut errors = Vec::new();
    while let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error, gst::MessageType::Warning]) {
        match msg.view() {
            gst::MessageView::Error(e) => {
                errors.push(format!("error: {} ({:?})", e.error(), e.debug()))
            }
            gst::MessageView::Warning(w) => {
                errors.push(format!("warning: {} ({:?})", w.error(), w.debug()))
            }
            _ => {}
        }
    }
    errors
}

/// Checks that frames come at a constant rate of `fps`: every timestamp
/// on the 1/fps grid, and consecutive ones a single frame apart except for
/// at most `skips` frames a loaded machine made the source skip (a live
/// source drops late frames instead of bunching them).
pub fn assert_constant_framerate(frames: &[Frame], fps: u64, skips: usize) {
    let step = 1_000_000_000 / fps;
    let mut skipped = 0;
    for pair in frames.windows(2) {
        let (a, b) = (
            pair[0].pts.unwrap().nseconds(),
            pair[1].pts.unwrap().nseconds(),
        );
        let frames_apart = ((b - a) as f64 / step as f64).round() as u64;
        assert!(frames_apart >= 1, "timestamps not increasing: {a} then {b}");
        let index = (a as u128 * fps as u128 + 500_000_000) / 1_000_000_000;
        let expected = (index + frames_apart as u128) * 1_000_000_000 / fps as u128;
        assert!(
            (b as i128 - expected as i128).abs() <= 1,
            "timestamp {b} is off the 1/{fps} s grid"
        );
        skipped += (frames_apart - 1) as usize;
    }
    assert!(skipped <= skips, "{skipped} frames skipped");
}

/// One decoded frame in a packed 4-byte format (BGRx, RGBx, RGBA, ...).
pub struct Frame {
    pub width: u32,
    pub height: u32,
    pub format: String,
    pub stride: usize,
    pub data: Vec<u8>,
    pub pts: Option<gst::ClockTime>,
}

impl Frame {
    pub fn from_sample(sample: &gst::Sample) -> Frame {
        let caps = sample.caps().unwrap();
        let info = gst_video::VideoInfo::from_caps(caps).unwrap();
        let buffer = sample.buffer().unwrap();
        let map = buffer.map_readable().unwrap();
        Frame {
            width: info.width(),
            height: info.height(),
            format: info.format().to_str().to_string(),
            stride: info.stride()[0] as usize,
            data: map.as_slice().to_vec(),
            pts: buffer.pts(),
        }
    }

    /// The pixel as (r, g, b).
    pub fn rgb(&self, x: u32, y: u32) -> (u8, u8, u8) {
        let i = y as usize * self.stride + x as usize * 4;
        let p = &self.data[i..i + 4];
        match self.format.as_str() {
            "BGRx" | "BGRA" => (p[2], p[1], p[0]),
            "RGBx" | "RGBA" => (p[0], p[1], p[2]),
            "xRGB" | "ARGB" => (p[1], p[2], p[3]),
            "xBGR" | "ABGR" => (p[3], p[2], p[1]),
            other => panic!("unexpected format {other}"),
        }
    }

    /// Share of pixels in the rectangle whose colour is within `tolerance`
    /// of `rgb` on every channel.
    pub fn share_of(
        &self,
        rgb: (u8, u8, u8),
        x: u32,
        y: u32,
        w: u32,
        h: u32,
        tolerance: u8,
    ) -> f64 {
        let mut matching = 0u64;
        for yy in y..y + h {
            for xx in x..x + w {
                let p = self.rgb(xx, yy);
                if p.0.abs_diff(rgb.0) <= tolerance
                    && p.1.abs_diff(rgb.1) <= tolerance
                    && p.2.abs_diff(rgb.2) <= tolerance
                {
                    matching += 1;
                }
            }
        }
        matching as f64 / (w as u64 * h as u64) as f64
    }

    pub fn all_of(&self, rgb: (u8, u8, u8)) -> f64 {
        self.share_of(rgb, 0, 0, self.width, self.height, 2)
    }
}

/// A plain window filled with one colour, mapped and drawn.
pub struct TestWindow {
    pub conn: RustConnection,
    pub id: u32,
}

impl TestWindow {
    pub fn open(xvfb: &Xvfb, title: &str, rgb: u32, x: i16, y: i16, w: u16, h: u16) -> TestWindow {
        let (conn, screen_num) = x11rb::connect(Some(&xvfb.display)).unwrap();
        let root = conn.setup().roots[screen_num].root;
        let id = conn.generate_id().unwrap();
        conn.create_window(
            x11rb::COPY_DEPTH_FROM_PARENT,
            id,
            root,
            x,
            y,
            w,
            h,
            0,
            WindowClass::INPUT_OUTPUT,
            x11rb::COPY_FROM_PARENT,
            &CreateWindowAux::new()
                .background_pixel(rgb)
                .event_mask(EventMask::EXPOSURE | EventMask::STRUCTURE_NOTIFY),
        )
        .unwrap();
        conn.change_property8(
            PropMode::REPLACE,
            id,
            AtomEnum::WM_NAME,
            AtomEnum::STRING,
            title.as_bytes(),
        )
        .unwrap();
        conn.map_window(id).unwrap();
        conn.flush().unwrap();
        // Mapped and painted once the server sends the first Expose.
        loop {
            if let x11rb::protocol::Event::Expose(_) = conn.wait_for_event().unwrap() {
                break;
            }
        }
        TestWindow { conn, id }
    }

    pub fn configure(&self, aux: &ConfigureWindowAux) {
        self.conn.configure_window(self.id, aux).unwrap();
        self.conn.sync().unwrap();
    }
}
