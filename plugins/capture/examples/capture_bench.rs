//! Benchmark of issue 7: process CPU of screencapsrc against plain ximagesrc
//! (use-damage true and false) at 1920x1080@30 under Xvfb, for an idle
//! screen, a small moving window and a fully changing screen; and canvassrc
//! milliseconds per frame at 1280x720 for 200 semi-transparent circles and
//! 50 rectangles, redrawn and unchanged.
//!
//! ```text
//! cargo run --release -p gst-plugin-peercapture --example capture_bench -- [seconds-per-run] [rounds]
//! cargo run --release -p gst-plugin-peercapture --example capture_bench -- screen [seconds-per-run] [rounds]
//! cargo run --release -p gst-plugin-peercapture --example capture_bench -- canvas
//! cargo run --release -p gst-plugin-peercapture --example capture_bench -- profile idle|moving|changing SECONDS [ELEMENT ...]
//! cargo run --release -p gst-plugin-peercapture --example capture_bench -- --help
//! ```
//!
//! Each capture pipeline runs in a child process of its own (this binary
//! again, with `child` as first argument) so that its CPU time is its own;
//! the X server's CPU over the same window is shown beside it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gst::prelude::*;
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{
    ChangeGCAux, ConfigureWindowAux, ConnectionExt as _, CreateGCAux, CreateWindowAux, Rectangle,
    WindowClass,
};

const WIDTH: u16 = 1920;
const HEIGHT: u16 = 1080;
const WARMUP: Duration = Duration::from_secs(2);

/// Process CPU of screencapsrc against ximagesrc (use-damage true and
/// false) at 1920x1080@30 under Xvfb, in three scenes, then canvassrc's
/// milliseconds per frame; prints Markdown tables.
#[derive(clap::Parser)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    part: Option<Part>,
    /// Seconds per screen-capture run.
    #[arg(default_value_t = 10.0)]
    seconds: f64,
    /// Rounds (the median counts).
    #[arg(default_value_t = 5, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    rounds: usize,
}

#[derive(clap::Subcommand)]
enum Part {
    /// The screen-capture part only.
    Screen {
        /// Seconds per run.
        #[arg(default_value_t = 10.0)]
        seconds: f64,
        /// Rounds (the median counts).
        #[arg(default_value_t = 5, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
        rounds: usize,
    },
    /// The canvassrc part only.
    Canvas,
    /// One run in this process (scene drawing included), for perf and
    /// quick comparisons.
    Profile {
        /// What the screen does meanwhile.
        scene: SceneName,
        /// How long to capture.
        seconds: f64,
        /// The element to profile, e.g. `ximagesrc use-damage=false`
        /// (default: screencapsrc).
        #[arg(trailing_var_arg = true)]
        element: Vec<String>,
    },
    /// (internal) One capture pipeline, measured by the parent process.
    #[command(hide = true)]
    Child { pipeline: String, seconds: f64 },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum SceneName {
    /// Nothing changes.
    Idle,
    /// A 200x200 window moves around.
    Moving,
    /// The whole screen changes every frame.
    Changing,
}

fn main() {
    let cli = <Cli as clap::Parser>::parse();
    if let Some(Part::Child { pipeline, seconds }) = &cli.part {
        child(pipeline, Duration::from_secs_f64(*seconds));
        return;
    }
    gst::init().unwrap();
    gstpeercapture::plugin_register_static().unwrap();
    match cli.part {
        Some(Part::Canvas) => canvas_bench(),
        Some(Part::Profile {
            scene,
            seconds,
            element,
        }) => {
            let scene = match scene {
                SceneName::Moving => Scene::SmallMovingWindow,
                SceneName::Changing => Scene::FullyChanging,
                SceneName::Idle => Scene::Idle,
            };
            let (mut xvfb, display) = start_xvfb();
            let driver = SceneDriver::start(&display, scene);
            let element = if element.is_empty() {
                format!("screencapsrc display-name={display} framerate=30/1")
            } else {
                format!(
                    "{} display-name={display} ! video/x-raw,framerate=30/1",
                    element.join(" ")
                )
            };
            child(&element, Duration::from_secs_f64(seconds));
            driver.stop();
            let _ = xvfb.kill();
        }
        Some(Part::Screen { seconds, rounds }) => screen_bench(seconds, rounds),
        Some(Part::Child { .. }) => unreachable!("handled above"),
        None => {
            screen_bench(cli.seconds, cli.rounds);
            canvas_bench();
        }
    }
}

/// Every candidate once per round, in an order rotated each round, so that
/// all see the same machine (it is shared; its load comes and goes); the
/// median over the rounds is shown, and ratios taken within each round.
fn screen_bench(seconds: f64, rounds: usize) {
    println!(
        "# screen capture, {WIDTH}x{HEIGHT}@30 under Xvfb, {rounds} rounds of {seconds} s per run after {WARMUP:?} warm-up"
    );
    let (mut xvfb, display) = start_xvfb();
    let xvfb_pid = xvfb.id();
    let candidates = [
        (
            "screencapsrc",
            format!("screencapsrc display-name={display} framerate=30/1"),
        ),
        (
            "ximagesrc use-damage=true",
            format!(
                "ximagesrc display-name={display} use-damage=true ! video/x-raw,framerate=30/1"
            ),
        ),
        (
            "ximagesrc use-damage=false",
            format!(
                "ximagesrc display-name={display} use-damage=false ! video/x-raw,framerate=30/1"
            ),
        ),
    ];
    let mut tables = Vec::new();
    for scene in [Scene::Idle, Scene::SmallMovingWindow, Scene::FullyChanging] {
        let driver = SceneDriver::start(&display, scene);
        // runs[candidate][round]
        let mut runs: Vec<Vec<Run>> = vec![Vec::new(); candidates.len()];
        for round in 0..rounds {
            for k in 0..candidates.len() {
                let c = (k + round) % candidates.len();
                let before = process_cpu_ticks(xvfb_pid);
                let result = run_child(&candidates[c].1, seconds);
                let xvfb = (process_cpu_ticks(xvfb_pid) - before) as f64
                    / clock_ticks() as f64
                    / (seconds + WARMUP.as_secs_f64())
                    * 100.0;
                eprintln!(
                    "{} round {round} {}: cpu {:.2} xvfb {xvfb:.1}",
                    scene.label(),
                    candidates[c].0,
                    result.cpu_percent
                );
                runs[c].push(Run { result, xvfb });
            }
        }
        driver.stop();
        tables.push((scene, runs));
    }
    let _ = xvfb.kill();
    let _ = xvfb.wait();

    println!(
        "| scene | element | process CPU (% of a core) | Xvfb CPU (%) | process + Xvfb | frames/s out | grabs/s |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (scene, runs) in &tables {
        for ((name, _), runs) in candidates.iter().zip(runs) {
            let process = median_of(runs.iter().map(|r| r.result.cpu_percent));
            let xvfb = median_of(runs.iter().map(|r| r.xvfb));
            let both = median_of(runs.iter().map(|r| r.result.cpu_percent + r.xvfb));
            let fps = median_of(runs.iter().map(|r| r.result.fps));
            let grabs = runs[0]
                .result
                .grabs_per_s
                .map(|_| median_of(runs.iter().filter_map(|r| r.result.grabs_per_s)));
            println!(
                "| {} | {name} | {process:.2} | {xvfb:.1} | {both:.1} | {fps:.1} | {} |",
                scene.label(),
                grabs.map_or("-".to_owned(), |g| format!("{g:.1}"))
            );
        }
    }
    println!();
    println!(
        "Ratios screencapsrc / ximagesrc, median over the rounds of the ratio within each round (range):"
    );
    println!();
    println!(
        "| scene | / use-damage=true, process | / use-damage=false, process | / use-damage=false, process + Xvfb |"
    );
    println!("|---|---|---|---|");
    for (scene, runs) in &tables {
        let ratio = |other: usize, with_xvfb: bool| {
            let mut r: Vec<f64> = runs[0]
                .iter()
                .zip(&runs[other])
                .map(|(ours, theirs)| {
                    let cost =
                        |run: &Run| run.result.cpu_percent + if with_xvfb { run.xvfb } else { 0.0 };
                    cost(ours) / cost(theirs)
                })
                .collect();
            r.sort_by(f64::total_cmp);
            format!("{:.2} ({:.2}–{:.2})", r[r.len() / 2], r[0], r[r.len() - 1])
        };
        println!(
            "| {} | {} | {} | {} |",
            scene.label(),
            ratio(1, false),
            ratio(2, false),
            ratio(2, true)
        );
    }
}

#[derive(Clone)]
struct Run {
    result: ChildResult,
    xvfb: f64,
}

fn median_of(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[derive(Clone, Copy)]
enum Scene {
    Idle,
    SmallMovingWindow,
    FullyChanging,
}

impl Scene {
    fn label(&self) -> &'static str {
        match self {
            Scene::Idle => "idle screen",
            Scene::SmallMovingWindow => "small moving window (200x200)",
            Scene::FullyChanging => "fully changing screen",
        }
    }
}

/// Draws the scene on the X server from a thread of the parent, at 30 Hz.
struct SceneDriver {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl SceneDriver {
    fn start(display: &str, scene: Scene) -> SceneDriver {
        let stop = Arc::new(AtomicBool::new(false));
        let display = display.to_owned();
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let (conn, screen_num) = x11rb::connect(Some(&display)).unwrap();
            let root = conn.setup().roots[screen_num].root;
            let (w, h) = match scene {
                Scene::Idle => return,
                Scene::SmallMovingWindow => (200, 200),
                Scene::FullyChanging => (WIDTH, HEIGHT),
            };
            let window = conn.generate_id().unwrap();
            conn.create_window(
                x11rb::COPY_DEPTH_FROM_PARENT,
                window,
                root,
                0,
                0,
                w,
                h,
                0,
                WindowClass::INPUT_OUTPUT,
                x11rb::COPY_FROM_PARENT,
                &CreateWindowAux::new()
                    .background_pixel(0x3080c0)
                    .override_redirect(1),
            )
            .unwrap();
            conn.map_window(window).unwrap();
            let gc = conn.generate_id().unwrap();
            conn.create_gc(gc, window, &CreateGCAux::new()).unwrap();
            conn.flush().unwrap();
            let mut tick = 0u32;
            let start = Instant::now();
            while !flag.load(Ordering::Relaxed) {
                tick += 1;
                match scene {
                    Scene::SmallMovingWindow => {
                        let x = (tick * 7) % (WIDTH as u32 - 200);
                        let y = (tick * 5) % (HEIGHT as u32 - 200);
                        conn.configure_window(
                            window,
                            &ConfigureWindowAux::new().x(x as i32).y(y as i32),
                        )
                        .unwrap();
                    }
                    Scene::FullyChanging => {
                        let color = if tick.is_multiple_of(2) {
                            0x204060
                        } else {
                            0xc08040
                        };
                        conn.change_gc(gc, &ChangeGCAux::new().foreground(color))
                            .unwrap();
                        conn.poly_fill_rectangle(
                            window,
                            gc,
                            &[Rectangle {
                                x: 0,
                                y: 0,
                                width: WIDTH,
                                height: HEIGHT,
                            }],
                        )
                        .unwrap();
                    }
                    Scene::Idle => {}
                }
                conn.flush().unwrap();
                let next = start + Duration::from_secs_f64(tick as f64 / 30.0);
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
            let _ = conn.destroy_window(window);
            let _ = conn.flush();
        });
        SceneDriver { stop, thread }
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap();
    }
}

#[derive(Clone)]
struct ChildResult {
    cpu_percent: f64,
    fps: f64,
    grabs_per_s: Option<f64>,
}

fn run_child(pipeline: &str, seconds: f64) -> ChildResult {
    let exe = std::env::current_exe().unwrap();
    let output = Command::new(exe)
        .args(["child", pipeline, &seconds.to_string()])
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    let field = |name: &str| -> Option<f64> {
        text.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
    };
    ChildResult {
        cpu_percent: field("cpu").unwrap_or_else(|| panic!("child printed {text:?}")),
        fps: field("fps").unwrap_or(0.0),
        grabs_per_s: field("grabs"),
    }
}

/// Runs one pipeline into a fakesink and prints its CPU use.
fn child(description: &str, measure: Duration) {
    gst::init().unwrap();
    if gst::ElementFactory::find("screencapsrc").is_none() {
        gstpeercapture::plugin_register_static().unwrap();
    }
    let pipeline = gst::parse::launch(&format!("{description} ! fakesink name=sink sync=false"))
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let frames = Arc::new(AtomicU64::new(0));
    let counter = frames.clone();
    let sink = pipeline.by_name("sink").unwrap();
    sink.static_pad("sink")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            counter.fetch_add(1, Ordering::Relaxed);
            gst::PadProbeReturn::Ok
        });
    pipeline.set_state(gst::State::Playing).unwrap();
    std::thread::sleep(WARMUP);
    let grabber = pipeline
        .iterate_elements()
        .into_iter()
        .flatten()
        .find(|e| e.factory().is_some_and(|f| f.name() == "screencapsrc"));
    let grabs_before = grabber
        .as_ref()
        .map(|g| g.property::<u64>("grabbed-frames"));
    let frames_before = frames.load(Ordering::Relaxed);
    let cpu_before = process_cpu_time();
    let wall = Instant::now();
    std::thread::sleep(measure);
    let cpu = process_cpu_time() - cpu_before;
    let elapsed = wall.elapsed().as_secs_f64();
    let fps = (frames.load(Ordering::Relaxed) - frames_before) as f64 / elapsed;
    let grabs = grabber
        .as_ref()
        .zip(grabs_before)
        .map(|(g, before)| (g.property::<u64>("grabbed-frames") - before) as f64 / elapsed);
    pipeline.set_state(gst::State::Null).unwrap();
    print!(
        "cpu={:.3} fps={fps:.2}",
        cpu.as_secs_f64() / elapsed * 100.0
    );
    if let Some(grabs) = grabs {
        print!(" grabs={grabs:.2}");
    }
    println!();
}

fn process_cpu_time() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// utime + stime of another process, in clock ticks.
fn process_cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the whole line.
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn clock_ticks() -> i64 {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) }
}

trait DieWithParent {
    fn die_with_parent(&mut self) -> &mut Self;
}

impl DieWithParent for Command {
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

fn start_xvfb() -> (std::process::Child, String) {
    let mut child = Command::new("Xvfb")
        .args([
            "-displayfd",
            "1",
            "-screen",
            "0",
            &format!("{WIDTH}x{HEIGHT}x24"),
            "-nolisten",
            "tcp",
            // Without it Xvfb resets (and forgets the root colour) whenever
            // its last client leaves, i.e. between two runs.
            "-noreset",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .die_with_parent()
        .spawn()
        .expect("Xvfb (Debian package xvfb)");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let display = format!(":{}", line.trim());
    Command::new("xsetroot")
        .args(["-display", &display, "-solid", "#405060"])
        .status()
        .unwrap();
    (child, display)
}

/// A deterministic scene: 50 rectangles under 200 circles, all half
/// transparent, in pseudo-random places, sizes and colours.
fn busy_scene() -> String {
    let mut seed = 0x2545_f491_u32;
    let mut next = move |range: u32| {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed % range
    };
    let mut nodes = Vec::new();
    for i in 0..50 {
        nodes.push(format!(
            r#"{{"id":"r{i}","type":"rect","x":{},"y":{},"width":{},"height":{},"fill":"rgba({},{},{},0.5)"}}"#,
            next(1180),
            next(620),
            40 + next(160),
            40 + next(120),
            next(256),
            next(256),
            next(256)
        ));
    }
    for i in 0..200 {
        nodes.push(format!(
            r#"{{"id":"c{i}","type":"circle","x":{},"y":{},"radius":{},"fill":"rgba({},{},{},0.5)"}}"#,
            next(1280),
            next(720),
            10 + next(50),
            next(256),
            next(256),
            next(256)
        ));
    }
    format!(
        r##"{{"background":"#101820","nodes":[{}]}}"##,
        nodes.join(",")
    )
}

fn canvas_bench() {
    use gstpeercapture::canvassrc::{render, scene, text};
    println!();
    println!("# canvassrc, 1280x720, 200 semi-transparent antialiased circles + 50 rectangles");
    println!(
        "(CPU ms = CPU time of the process per frame; wall ms depends on what else the machine runs)"
    );
    let json = busy_scene();
    let mut fonts = text::FontBook::default();
    let scene = scene::parse_scene(
        &json,
        &mut scene::Resources {
            fonts: &mut fonts,
            allow_files: false,
        },
    )
    .unwrap();
    // tiny-skia drawing the same shapes as paths (the issue's reference),
    // our renderer on one thread, and in bands on every core, alternating
    // in short rounds so that all see the same machine (it is shared:
    // other load comes and goes); the median round of each is shown.
    let paths: Vec<(tiny_skia::Path, tiny_skia::Paint)> = scene
        .nodes
        .iter()
        .filter_map(|node| {
            let scene::Shape::Path(path) = &node.shape else {
                return None;
            };
            let path = (**path)
                .clone()
                .transform(tiny_skia::Transform::from_translate(node.x, node.y))?;
            let mut paint = tiny_skia::Paint::default();
            paint.set_color(node.fill?);
            Some((path, paint))
        })
        .collect();
    let mut pixmap = tiny_skia::Pixmap::new(1280, 720).unwrap();
    let mut bands = gstpeercapture::canvassrc::bands::BandRenderer::default();
    let mut frame = vec![0u8; 1280 * 720 * 4];
    let layout = render::PixelLayout::Rgbx;
    let (rounds, per_round) = (15, 20);
    let (mut skia, mut single, mut banded) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        skia.push(time_frames(per_round, || {
            pixmap.fill(scene.background);
            for (path, paint) in &paths {
                pixmap.fill_path(
                    path,
                    paint,
                    tiny_skia::FillRule::Winding,
                    tiny_skia::Transform::identity(),
                    None,
                );
            }
        }));
        single.push(time_frames(per_round, || {
            render::render(&scene, &mut pixmap.as_mut())
        }));
        banded.push(time_frames(per_round, || {
            bands.render(&scene, &mut frame, (1280, 720), layout)
        }));
    }
    let (skia_cpu, skia_wall) = median(&mut skia);
    let (raw_cpu, raw_wall) = median(&mut single);
    let (band_cpu, band_wall) = median(&mut banded);

    println!("| what | CPU ms per frame | wall ms per frame |");
    println!("|---|---|---|");
    println!(
        "| tiny-skia alone, the same shapes as paths, one thread, full redraw | {skia_cpu:.2} | {skia_wall:.2} |"
    );
    println!("| render() alone, one thread, full redraw | {raw_cpu:.2} | {raw_wall:.2} |");
    println!(
        "| BandRenderer alone ({} cores), full redraw | {band_cpu:.2} | {band_wall:.2} |",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    for (label, patch) in [
        (
            "canvassrc element, background changed every frame (full redraw)",
            Some(PatchKind::Background),
        ),
        (
            "canvassrc element, one circle moved every frame (partial redraw)",
            Some(PatchKind::MoveCircle),
        ),
        ("canvassrc element, unchanged scene (frame repeated)", None),
    ] {
        let (cpu, wall) = element_ms_per_frame(&json, patch);
        println!("| {label} | {cpu:.3} | {wall:.3} |");
    }
}

/// CPU and wall milliseconds per call of `draw`, over `frames` calls.
fn time_frames(frames: u32, mut draw: impl FnMut()) -> (f64, f64) {
    let (cpu, wall) = (process_cpu_time(), Instant::now());
    for _ in 0..frames {
        draw();
    }
    (
        cpu_ms(process_cpu_time() - cpu, frames),
        wall.elapsed().as_secs_f64() * 1000.0 / frames as f64,
    )
}

/// The round with the median wall time.
fn median(rounds: &mut [(f64, f64)]) -> (f64, f64) {
    rounds.sort_by(|a, b| a.1.total_cmp(&b.1));
    rounds[rounds.len() / 2]
}

fn cpu_ms(cpu: Duration, frames: u32) -> f64 {
    cpu.as_secs_f64() * 1000.0 / frames as f64
}

#[derive(Clone, Copy)]
enum PatchKind {
    Background,
    MoveCircle,
}

/// CPU and wall time per frame of `canvassrc is-live=false ! fakesink`,
/// patched before every frame as `patch` says.
fn element_ms_per_frame(json: &str, patch: Option<PatchKind>) -> (f64, f64) {
    let frames = 200;
    let pipeline = gst::parse::launch(&format!(
        "canvassrc name=canvas is-live=false num-buffers={frames} ! video/x-raw,width=1280,height=720,format=RGBx ! fakesink sync=false"
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let canvas = pipeline.by_name("canvas").unwrap();
    canvas.set_property("scene", json);
    if let Some(kind) = patch {
        let target = canvas.clone();
        let n = AtomicU64::new(0);
        canvas
            .static_pad("src")
            .unwrap()
            .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                let i = n.fetch_add(1, Ordering::Relaxed);
                let patch = match kind {
                    PatchKind::Background => {
                        format!(r#"{{"op":"background","color":"rgb({},24,32)"}}"#, i % 256)
                    }
                    PatchKind::MoveCircle => {
                        format!(
                            r#"{{"op":"move","id":"c0","x":{},"y":100}}"#,
                            100 + i % 1000
                        )
                    }
                };
                gstpeercapture::canvassrc::apply_patch(&target, &patch).unwrap();
                gst::PadProbeReturn::Ok
            });
    }
    let (cpu, wall) = (process_cpu_time(), Instant::now());
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    let msg = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(120),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .expect("canvassrc benchmark did not finish");
    assert_eq!(msg.type_(), gst::MessageType::Eos, "{msg:?}");
    let result = (
        cpu_ms(process_cpu_time() - cpu, frames),
        wall.elapsed().as_secs_f64() * 1000.0 / frames as f64,
    );
    pipeline.set_state(gst::State::Null).unwrap();
    result
}
