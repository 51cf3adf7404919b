//! Shared helpers of the end-to-end tests: a signalling server on a free
//! port, sender and receiver pipelines, and checks of what arrived (frame
//! size and colour, audio frequency), all waiting on events with deadlines.

pub mod browser;
pub mod capture;
pub use peer_farm::freeze;
pub mod http;
pub mod matroska;
pub mod media;
pub mod netns;
pub mod pages;
pub mod process;
pub mod ramp;
pub mod rawws;
pub mod recorder;
pub mod server_process;
pub mod ws;

use std::path::PathBuf;
use std::sync::{LazyLock, Once};
use std::time::{Duration, Instant};

use gst::prelude::*;
use peer_signalling::server::{self, RunningServer, ServerConfig};

pub use media::{Receiver, dominant_frequency};

static INIT: Once = Once::new();

/// Initializes GStreamer with the gst-peer plugin registered, and refuses
/// to run where traffic could leave the machine.
pub fn init() {
    INIT.call_once(|| {
        require_loopback_only();
        // `PEER_LOG=debug` (an EnvFilter) shows the elements' and the
        // server's tracing on stderr, for diagnosing a stalled test.
        if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("PEER_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(std::io::stderr)
                .try_init();
        }
        gst::init().expect("GStreamer initializes");
        gstpeer::plugin_register_static().expect("the peer plugin registers");
        gstpeercapture::plugin_register_static().expect("the capture plugin registers");
        gstaudiotap::plugin_register_static().expect("the audiotap plugin registers");
    });
}

/// WebRTC tests run in a network namespace holding only `lo` (see
/// scripts/test.sh), so ICE uses 127.0.0.1 and nothing else is touched.
pub fn require_loopback_only() {
    let interfaces = if_addrs_names();
    let others: Vec<_> = interfaces
        .iter()
        .filter(|name| name.as_str() != "lo")
        .collect();
    assert!(
        others.is_empty(),
        "these tests must run in a loopback-only network namespace (scripts/test.sh does it: \
         unshare -rn); interfaces present: {others:?}"
    );
}

fn if_addrs_names() -> Vec<String> {
    // Asked of the kernel (netlink), not /sys, which shows the namespace
    // sysfs was mounted in rather than ours.
    let interfaces = if_addrs::get_if_addrs().expect("interfaces can be listed");
    let mut names: Vec<String> = interfaces
        .into_iter()
        .map(|interface| interface.name)
        .collect();
    names.sort();
    names.dedup();
    names
}

pub static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("test runtime")
});

/// A signalling server on a free port of 127.0.0.1, stopped on drop.
pub struct TestServer {
    pub running: Option<RunningServer>,
}

impl TestServer {
    pub fn start() -> Self {
        Self::start_with(ServerConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            ..ServerConfig::default()
        })
    }

    pub fn start_with(config: ServerConfig) -> Self {
        let running = RUNTIME
            .block_on(server::start(config))
            .expect("test server starts");
        TestServer {
            running: Some(running),
        }
    }

    pub fn port(&self) -> u16 {
        self.running.as_ref().unwrap().local_addr().port()
    }

    /// The `uri` an element uses to join `room` on this server.
    pub fn room_uri(&self, room: &str) -> String {
        format!("ws://127.0.0.1:{}/{room}", self.port())
    }

    pub fn ws_url(&self) -> String {
        self.running.as_ref().unwrap().ws_url()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            RUNTIME.block_on(running.stop());
        }
    }
}

/// A live sender: a solid `argb` colour at `width`x`height` and a sine at
/// `freq` Hz, through peersink.
pub fn sender(
    peersink_props: &str,
    width: u32,
    height: u32,
    argb: u32,
    freq: f64,
) -> gst::Pipeline {
    let description = format!(
        "peersink name=sink {peersink_props} \
         videotestsrc is-live=true pattern=solid-color foreground-color={argb:#010x} \
           ! video/x-raw,width={width},height={height},framerate=30/1 ! sink.video_0 \
         audiotestsrc is-live=true wave=sine freq={freq} volume=0.5 ! sink.audio_0"
    );
    launch(&description)
}

pub fn launch(description: &str) -> gst::Pipeline {
    let element = gst::parse::launch(description)
        .unwrap_or_else(|err| panic!("cannot build {description}: {err}"));
    // A description of one element parses to that element, not a pipeline.
    element
        .downcast::<gst::Pipeline>()
        .unwrap_or_else(|element| {
            let pipeline = gst::Pipeline::new();
            pipeline.add(&element).unwrap();
            pipeline
        })
}

/// Plays a pipeline, failing the test on a state-change failure.
pub fn play(pipeline: &gst::Pipeline) {
    pipeline.set_state(gst::State::Playing).unwrap_or_else(|_| {
        let error = first_error(pipeline, Duration::from_millis(200));
        panic!("pipeline refused to play: {error:?}")
    });
}

/// The first error on the bus within `timeout`, as text.
pub fn first_error(pipeline: &gst::Pipeline, timeout: Duration) -> Option<String> {
    let bus = pipeline.bus()?;
    let message = bus.timed_pop_filtered(
        gst::ClockTime::from_nseconds(timeout.as_nanos() as u64),
        &[gst::MessageType::Error],
    );
    let Some(message) = message else {
        dump_threads(&format!(
            "no error on the bus\n{}",
            element_states(pipeline)
        ));
        return None;
    };
    match message.view() {
        gst::MessageView::Error(err) => Some(format!("{} ({:?})", err.error(), err.debug())),
        _ => None,
    }
}

/// Every element of `pipeline` with its current and pending state, one per
/// line: an element stuck below its parent's state shows here.
pub fn element_states(pipeline: &gst::Pipeline) -> String {
    let mut lines = Vec::new();
    for element in pipeline.iterate_recurse().into_iter().flatten() {
        let (_, current, pending) = element.state(gst::ClockTime::ZERO);
        lines.push(format!(
            "{} {current:?} (pending {pending:?})",
            element.path_string()
        ));
    }
    lines.join("\n")
}

/// With `GST_PEER_DUMP_STACKS=DIR` set, writes every thread's stack of this
/// process to DIR (through gdb) when a wait times out: a stalled session
/// shows where it is stuck.
pub fn dump_threads(why: &str) {
    let Some(dir) = std::env::var_os("GST_PEER_DUMP_STACKS") else {
        return;
    };
    let pid = std::process::id();
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let file = PathBuf::from(dir).join(format!("stacks-{pid}-{stamp}.txt"));
    let _ = std::fs::write(&file, format!("{why}\n"));
    // gdb writes to the file itself: this thread is stopped while gdb
    // runs, so it could not drain a pipe.
    let Ok(out) = std::fs::OpenOptions::new().append(true).open(&file) else {
        return;
    };
    let _ = std::process::Command::new("gdb")
        .args([
            "-p",
            &pid.to_string(),
            "-batch",
            "-ex",
            "thread apply all bt",
        ])
        .stdout(out)
        .stderr(std::process::Stdio::null())
        .status();
    eprintln!("thread stacks in {}", file.display());
}

/// Waits for an element message named `name` on the bus.
pub fn wait_element_message(
    pipeline: &gst::Pipeline,
    name: &str,
    timeout: Duration,
) -> gst::Structure {
    let bus = pipeline.bus().expect("bus");
    let deadline = Instant::now() + timeout;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let Some(message) = bus.timed_pop_filtered(
            gst::ClockTime::from_nseconds(left.as_nanos() as u64),
            &[gst::MessageType::Element, gst::MessageType::Error],
        ) else {
            break;
        };
        match message.view() {
            gst::MessageView::Error(err) => {
                panic!("error while waiting for {name}: {}", err.error())
            }
            gst::MessageView::Element(element) => {
                if let Some(structure) = element.structure()
                    && structure.name() == name
                {
                    return structure.to_owned();
                }
            }
            _ => {}
        }
    }
    panic!("no {name} message within {timeout:?}");
}

/// Polls `check` until it returns `Some`, or panics with `what` at the deadline.
pub fn wait_until<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Where cargo put the workspace's binaries and plugins for this build.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> (tests) or target/<profile>/<bin> (tools)
    let directory = exe.parent().expect("target dir");
    if directory.file_name().is_some_and(|name| name == "deps") {
        directory.parent().expect("target dir").to_path_buf()
    } else {
        directory.to_path_buf()
    }
}

/// The `peer` binary of this build.
pub fn peer_binary() -> PathBuf {
    let path = target_dir().join("peer");
    assert!(
        path.exists(),
        "{} is missing: build the workspace first (cargo build)",
        path.display()
    );
    path
}

/// Audio and video encoders in `bin`, recursively (not DTLS/SRTP "encoders").
/// A peersink's `stats` entry for the viewer registered as `peer`.
pub fn viewer_stats(sink: &gst::Element, peer: &str) -> Option<gst::Structure> {
    let stats = sink.property::<gst::Structure>("stats");
    stats
        .iter()
        .filter_map(|(_, value)| value.get::<gst::Structure>().ok())
        .find(|viewer| viewer.get::<&str>("peer-id").ok() == Some(peer))
}

pub fn encoders_in(bin: &gst::Bin) -> Vec<String> {
    bin.iterate_recurse()
        .into_iter()
        .filter_map(|element| element.ok())
        .filter(|element| {
            element.factory().is_some_and(|factory| {
                let klass = factory
                    .metadata(gst::ELEMENT_METADATA_KLASS)
                    .unwrap_or_default();
                klass.contains("Encoder/Video") || klass.contains("Encoder/Audio")
            })
        })
        .map(|element| element.name().to_string())
        .collect()
}
