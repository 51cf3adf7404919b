//! Benchmark of one broadcast watched by many: peersink against
//! gst-plugins-rs's webrtcsink, side by side in one run, interleaved in
//! rounds. The viewers are a farm of real WebRTC sessions in one process
//! (peer-farm: str0m, counting decodable VP8 frames per viewer without
//! decoding), so hundreds of them cost the two cores little and their cost
//! is reported too. Per point: the sender alone (baseline), then with N
//! viewers; per-viewer frame rate (min, p5, median over viewers), sender
//! CPU / memory / threads in total and per viewer (total/N and marginal
//! over the baseline), and join → first frame per viewer. Then
//! glass-to-glass latency and join → first decoded frame with each
//! sender's own receiving element. A point where not every viewer
//! receives is a FAILED run: reported, never a measurement, and the exit
//! status is 1.
//!
//! Run in a loopback-only namespace, release build (docs/benchmarks/broadcast.md).

mod decoding;
mod infra;
mod latency_trace;
mod memory;
mod point;
mod psnr;
mod report;
mod sender;
mod trace;

use clap::{Parser, Subcommand};
use peer_farm::cli::FarmArgs;

use crate::infra::LoopbackVeth;
use crate::point::PointOptions;
use crate::sender::Broadcast;

#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub enum Kind {
    #[value(name = "peersink")]
    PeerSink,
    /// peersink with `data-channels=""`: no data channel, like
    /// webrtcsink's default (peersink opens "chat" unless told otherwise).
    #[value(name = "peersink-nodc")]
    PeerSinkNoDataChannel,
    /// peersink as webrtcsink is run here: no data channel and
    /// `transport-cc=false` (webrtcsink with `congestion-control=disabled`
    /// adds no transport-cc extension, so its viewers send no feedback).
    #[value(name = "peersink-bare")]
    PeerSinkBare,
    #[value(name = "webrtcsink")]
    WebRtcSink,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::PeerSink => "peersink",
            Kind::PeerSinkNoDataChannel => "peersink-nodc",
            Kind::PeerSinkBare => "peersink-bare",
            Kind::WebRtcSink => "webrtcsink",
        }
    }

    /// peersink, with or without its data channel: our signalling and
    /// receiver.
    pub fn is_peersink(self) -> bool {
        self != Kind::WebRtcSink
    }

    fn parse(text: &str) -> Kind {
        <Kind as clap::ValueEnum>::from_str(text, false).expect("peersink or webrtcsink")
    }

    pub fn receiver(self) -> &'static str {
        match self {
            Kind::PeerSink | Kind::PeerSinkNoDataChannel | Kind::PeerSinkBare => "peersrc",
            Kind::WebRtcSink => "webrtcsrc",
        }
    }
}

#[derive(Parser)]
#[command(
    about = "One broadcast, many viewers: peersink against webrtcsink, side by side",
    long_about = "One broadcast, many viewers: peersink against webrtcsink, side by side, \
        interleaved in rounds.\n\nRun inside a loopback-only namespace, e.g.\n  \
        unshare -n sh -c 'ip link set lo up && target/release/broadcast_bench'\n\
        webrtcsink is measured when GST_PLUGIN_PATH holds gst-plugins-rs's webrtc plugin and \
        --webrtc-server (or WEBRTC_SIGNALLING_SERVER) names gst-webrtc-signalling-server; \
        scripts/reference-peers.sh builds both.\n\nExit status 1 when any point failed \
        (not every viewer received)."
)]
struct Cli {
    #[command(subcommand)]
    internal: Option<Internal>,
    #[command(flatten)]
    options: Options,
}

#[derive(clap::Args, Clone)]
struct Options {
    /// Viewer counts, comma separated
    #[arg(long, value_delimiter = ',', default_value = "10,50,100,200")]
    viewers: Vec<usize>,
    /// Senders to compare, comma separated (peersink-nodc: peersink without
    /// its default data channel; peersink-bare: without it and without
    /// transport-cc, as webrtcsink is run here)
    #[arg(long, value_delimiter = ',', default_value = "peersink,webrtcsink")]
    kinds: Vec<Kind>,
    /// Rounds: each runs every point, the senders interleaved
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Seconds measured with viewers, per point
    #[arg(long, default_value_t = 15)]
    seconds: u64,
    /// Seconds of the same sender with no viewer, just before
    #[arg(long, default_value_t = 5)]
    baseline_seconds: u64,
    /// webrtcsink is not run past this many viewers (one encoder each)
    #[arg(long, default_value_t = 10)]
    webrtcsink_max: usize,
    /// gst-webrtc-signalling-server, for webrtcsink
    #[arg(long, env = "WEBRTC_SIGNALLING_SERVER")]
    webrtc_server: Option<String>,
    /// Seconds of glass-to-glass latency per sender and round (0: skip)
    #[arg(long, default_value_t = 30)]
    latency_seconds: u64,
    /// Warm joins per sender and round, after one cold (0: skip)
    #[arg(long, default_value_t = 5)]
    joins: usize,
    /// Worker threads of the viewer farm
    #[arg(long, default_value_t = 2)]
    farm_threads: usize,
    /// Milliseconds between two farm viewers' starts
    #[arg(long, default_value_t = 20)]
    ramp_ms: u64,
    #[arg(long, default_value_t = 1280)]
    width: u32,
    #[arg(long, default_value_t = 720)]
    height: u32,
    /// Video bitrate, bit/s
    #[arg(long, default_value_t = 2_000_000)]
    bitrate: u32,
}

#[derive(Subcommand)]
enum Internal {
    /// (internal) the sending process
    #[command(hide = true)]
    Sender {
        kind: Kind,
        uri: String,
        width: u32,
        height: u32,
        bitrate: u32,
    },
    /// (internal) a decoding viewer: `latency` or `join:N`
    #[command(hide = true)]
    Viewer {
        kind: String,
        uri: String,
        producer: String,
        mode: String,
    },
    /// (internal) the viewer farm
    #[command(hide = true)]
    Farm(FarmArgs),
    /// Where a warm join's time goes: peersink and peersrc viewers in one
    /// process, every step of both sides on one clock
    JoinTrace {
        /// Warm joins after the first
        #[arg(long, default_value_t = 5)]
        joins: usize,
        #[arg(long, default_value_t = 1280)]
        width: u32,
        #[arg(long, default_value_t = 720)]
        height: u32,
        #[arg(long, default_value_t = 2_000_000)]
        bitrate: u32,
    },
    /// Where a frame's glass-to-glass time goes: each sender and its own
    /// receiving element in one process, every step of both sides timed
    LatencyTrace {
        /// Senders, comma separated (their order in each round)
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "peersink-bare,webrtcsink"
        )]
        kinds: Vec<Kind>,
        /// Seconds measured per sender and round
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        #[arg(long, default_value_t = 2)]
        rounds: usize,
        /// gst-webrtc-signalling-server, for webrtcsink
        #[arg(long, env = "WEBRTC_SIGNALLING_SERVER")]
        webrtc_server: Option<String>,
        #[arg(long, default_value_t = 1280)]
        width: u32,
        #[arg(long, default_value_t = 720)]
        height: u32,
        #[arg(long, default_value_t = 2_000_000)]
        bitrate: u32,
    },
}

fn main() {
    let cli = Cli::parse();
    match cli.internal {
        Some(Internal::Sender {
            kind,
            uri,
            width,
            height,
            bitrate,
        }) => sender::run(
            kind,
            &uri,
            Broadcast {
                width,
                height,
                bitrate,
            },
        ),
        Some(Internal::Viewer {
            kind,
            uri,
            producer,
            mode,
        }) => decoding::viewer(Kind::parse(&kind), &uri, &producer, &mode),
        Some(Internal::Farm(args)) => std::process::exit(peer_farm::cli::run(&args)),
        Some(Internal::JoinTrace {
            joins,
            width,
            height,
            bitrate,
        }) => std::process::exit(trace::run(
            Broadcast {
                width,
                height,
                bitrate,
            },
            joins,
        )),
        Some(Internal::LatencyTrace {
            kinds,
            seconds,
            rounds,
            webrtc_server,
            width,
            height,
            bitrate,
        }) => std::process::exit(latency_trace::run(
            &kinds,
            webrtc_server.as_deref(),
            Broadcast {
                width,
                height,
                bitrate,
            },
            seconds,
            rounds,
        )),
        None => std::process::exit(orchestrate(cli.options)),
    }
}

fn orchestrate(mut options: Options) -> i32 {
    gst::init().expect("GStreamer initializes");
    let have_webrtcsink = gst::ElementFactory::find("webrtcsink").is_some();
    if options.kinds.contains(&Kind::WebRtcSink)
        && (!have_webrtcsink || options.webrtc_server.is_none())
    {
        eprintln!(
            "webrtcsink not measured: needs its plugin on GST_PLUGIN_PATH and --webrtc-server \
             (bash scripts/reference-peers.sh builds both)"
        );
        options.kinds.retain(|kind| kind.is_peersink());
    }
    options.viewers.retain(|&n| n > 0);
    if options.latency_seconds > 0 && (options.width as usize) < sender::STAMP_BITS * sender::BLOCK
    {
        // The stamps are a row of STAMP_BITS blocks: narrower, no latency.
        eprintln!(
            "glass-to-glass latency and PSNR not measured: the picture must be at least {} wide",
            sender::STAMP_BITS * sender::BLOCK
        );
        options.latency_seconds = 0;
    }
    let _veth = match LoopbackVeth::for_kinds(&options.kinds) {
        Ok(veth) => veth,
        Err(err) => {
            eprintln!("{err}");
            return 2;
        }
    };
    let broadcast = Broadcast {
        width: options.width,
        height: options.height,
        bitrate: options.bitrate,
    };
    let point_options = PointOptions {
        broadcast,
        webrtc_server: options.webrtc_server.clone(),
        seconds: options.seconds,
        baseline_seconds: options.baseline_seconds,
        farm_threads: options.farm_threads,
        ramp_ms: options.ramp_ms,
    };
    let mut report = report::Report::new(broadcast, &options.kinds, options.webrtcsink_max);
    report.header(&point_options, options.rounds);
    for round in 1..=options.rounds {
        for &count in &options.viewers {
            // Interleaved: every sender at this count before the next count.
            for &kind in &options.kinds {
                if kind == Kind::WebRtcSink && count > options.webrtcsink_max {
                    continue;
                }
                let result = point::measure(kind, count, &point_options);
                report.point(round, kind, count, result);
            }
        }
        for &kind in &options.kinds {
            if options.latency_seconds > 0 {
                let result = decoding::latency(
                    kind,
                    options.webrtc_server.as_deref(),
                    broadcast,
                    options.latency_seconds,
                );
                report.latency(round, kind, result);
            }
            if options.joins > 0 {
                let result = decoding::joins(
                    kind,
                    options.webrtc_server.as_deref(),
                    broadcast,
                    options.joins,
                );
                report.join(round, kind, result);
            }
        }
    }
    report.summary()
}
