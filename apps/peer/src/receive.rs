//! `peer receive`: a producer of a room, played or checked headless.

use std::time::{Duration, Instant};

use gst::prelude::*;

use crate::pipeline::{self, quote};

#[derive(clap::Args)]
pub struct Args {
    /// Signalling server, e.g. ws://127.0.0.1:8080; unset: an embedded one
    /// (publishers then connect to this process).
    #[arg(long)]
    server: Option<String>,
    #[arg(long, default_value = "default")]
    room: String,
    /// Producer to receive (the first in the room when unset).
    #[arg(long)]
    producer: Option<String>,
    /// Our own peer id (random when unset).
    #[arg(long)]
    id: Option<String>,
    /// Do not play; print what arrives once a second.
    #[arg(long)]
    headless: bool,
    /// Jitter buffer in milliseconds.
    #[arg(long, default_value_t = 100)]
    latency: u32,
    /// Access token for a server that requires one (`peer token`).
    #[arg(long, env = "GST_PEER_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    pipeline::init()?;
    let mut source = format!("peersrc name=src latency={}", args.latency);
    if let Some(server) = &args.server {
        let base = server.trim_end_matches('/').trim_end_matches("/ws");
        source.push_str(&format!(" uri={}", quote(&format!("{base}/{}", args.room))));
    }
    if let Some(token) = &args.token {
        source.push_str(&format!(" token={}", quote(token)));
    }
    if let Some(producer) = &args.producer {
        source.push_str(&format!(" producer={}", quote(producer)));
    }
    if let Some(id) = &args.id {
        source.push_str(&format!(" peer-id={}", quote(id)));
    }
    let pipeline = pipeline::launch(&source)?;
    let src = pipeline.by_name("src").expect("named src");
    let headless = args.headless;
    let weak_pipeline = pipeline.downgrade();
    src.connect_pad_added(move |_, pad| {
        let Some(pipeline) = weak_pipeline.upgrade() else {
            return;
        };
        let video = pad.name().starts_with("video");
        let description = match (video, headless) {
            (_, true) => "fakesink sync=false".to_owned(),
            (true, false) => "queue ! videoconvert ! autovideosink".to_owned(),
            (false, false) => "queue ! audioconvert ! audioresample ! autoaudiosink".to_owned(),
        };
        let Ok(sink) = gst::parse::bin_from_description(&description, true) else {
            return;
        };
        if headless {
            count_frames(pad);
        }
        let _ = pipeline.add(&sink);
        let _ = sink.sync_state_with_parent();
        let _ = pad.link(&sink.static_pad("sink").expect("ghosted sink"));
        println!("receiving {}", pad.name());
    });
    pipeline::run(&pipeline, |structure| {
        if structure.name() == "peer-ready" {
            let url = structure.get::<&str>("url").unwrap_or_default();
            println!(
                "joined as \"{}\"; publish at {url}",
                structure.get::<&str>("peer-id").unwrap_or_default()
            );
        }
    })
}

/// Prints, once a second, how many buffers and bytes went through `pad`.
fn count_frames(pad: &gst::Pad) {
    let name = pad.name().to_string();
    let counters = std::sync::Mutex::new((Instant::now(), 0u64, 0u64));
    pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let mut counters = counters.lock().unwrap();
        counters.1 += 1;
        counters.2 += info.buffer().map_or(0, |b| b.size() as u64);
        if counters.0.elapsed() >= Duration::from_secs(1) {
            println!(
                "{name}: {} buffers/s, {} bytes/s, {}",
                counters.1,
                counters.2,
                describe_caps(pad)
            );
            *counters = (Instant::now(), 0, 0);
        }
        gst::PadProbeReturn::Ok
    });
}

/// "1280x720 I420" or "48000 Hz x2 S16LE", for people reading the output.
fn describe_caps(pad: &gst::Pad) -> String {
    let Some(caps) = pad.current_caps() else {
        return String::new();
    };
    let Some(s) = caps.structure(0) else {
        return String::new();
    };
    let format = s.get::<&str>("format").unwrap_or(s.name().as_str());
    match (
        s.get::<i32>("width"),
        s.get::<i32>("height"),
        s.get::<i32>("rate"),
        s.get::<i32>("channels"),
    ) {
        (Ok(w), Ok(h), _, _) => format!("{w}x{h} {format}"),
        (_, _, Ok(rate), Ok(channels)) => format!("{rate} Hz x{channels} {format}"),
        _ => s.name().to_string(),
    }
}
