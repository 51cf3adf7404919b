//! `peer send`: test sources or devices to a room, through peersink.

use crate::pipeline::{self, quote};

#[derive(clap::Args)]
pub struct Args {
    /// Signalling server, e.g. ws://127.0.0.1:8080; unset: an embedded one.
    #[arg(long)]
    server: Option<String>,
    /// Room to publish in.
    #[arg(long, default_value = "default")]
    room: String,
    /// Peer id to publish as (random when unset).
    #[arg(long)]
    id: Option<String>,
    /// Video: "test" (moving pattern), a V4L2 device path, or "none".
    #[arg(long, default_value = "test")]
    video: String,
    /// Audio: "test" (a tone), "default" (the default microphone), or "none".
    #[arg(long, default_value = "test")]
    audio: String,
    #[arg(long, default_value_t = 1280)]
    width: u32,
    #[arg(long, default_value_t = 720)]
    height: u32,
    #[arg(long, default_value_t = 30)]
    fps: u32,
    /// Test pattern (videotestsrc pattern name).
    #[arg(long, default_value = "smpte")]
    pattern: String,
    /// Test tone frequency in Hz.
    #[arg(long, default_value_t = 440.0)]
    freq: f64,
    /// vp8, vp9 or h264.
    #[arg(long, default_value = "vp8")]
    codec: String,
    /// Video bitrate in bits per second.
    #[arg(long, default_value_t = 2_000_000)]
    bitrate: u32,
    /// Access token for a server that requires one (`peer token`).
    #[arg(long, env = "GST_PEER_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

pub fn description(args: &Args) -> anyhow::Result<String> {
    let mut sink = format!(
        "peersink name=sink video-codec={} video-bitrate={}",
        args.codec, args.bitrate
    );
    if let Some(server) = &args.server {
        let base = server.trim_end_matches('/').trim_end_matches("/ws");
        sink.push_str(&format!(" uri={}", quote(&format!("{base}/{}", args.room))));
    }
    if let Some(token) = &args.token {
        sink.push_str(&format!(" token={}", quote(token)));
    }
    if let Some(id) = &args.id {
        sink.push_str(&format!(" peer-id={}", quote(id)));
    }
    let raw_caps = format!(
        "video/x-raw,width={},height={},framerate={}/1",
        args.width, args.height, args.fps
    );
    let mut parts = vec![sink];
    match args.video.as_str() {
        "none" => {}
        "test" => parts.push(format!(
            "videotestsrc is-live=true pattern={} ! {raw_caps} ! sink.video_0",
            args.pattern
        )),
        device => {
            pipeline::ensure_element("v4l2src")?;
            parts.push(format!(
                "v4l2src device={} ! videoconvert ! videoscale ! {raw_caps} ! sink.video_0",
                quote(device)
            ))
        }
    }
    match args.audio.as_str() {
        "none" => {}
        "test" => parts.push(format!(
            "audiotestsrc is-live=true wave=sine freq={} ! sink.audio_0",
            args.freq
        )),
        "default" => parts.push("autoaudiosrc ! sink.audio_0".to_owned()),
        other => anyhow::bail!("--audio {other}: expected test, default or none"),
    }
    if parts.len() == 1 {
        anyhow::bail!("nothing to send: --video and --audio are both none");
    }
    Ok(parts.join("  "))
}

pub fn run(args: Args) -> anyhow::Result<()> {
    pipeline::init()?;
    let pipeline = pipeline::launch(&description(&args)?)?;
    pipeline::run(&pipeline, |structure| {
        if structure.name() == "peer-ready" {
            let url = structure.get::<&str>("url").unwrap_or_default();
            let id = structure.get::<&str>("peer-id").unwrap_or_default();
            println!("sending as \"{id}\"; watch at {url}");
        }
    })
}
