//! `peer record`: a headless recording server. Every publisher of a room
//! is recorded to its own file, without re-encoding, each in a pipeline of
//! its own; SIGINT/SIGTERM finalize every file before exiting.

mod composite;
mod naming;
mod peerjs;
mod recording;
mod remux;
mod repair;
mod sidecar;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use peer_signalling::client::{self, ClientEvent};
use peer_signalling::protocol::{ClientMessage, PeerInfo, ServerMessage};
use peer_signalling::server::{self, ServerConfig};
use peer_signalling::wish::WishConfig;
use tokio::sync::mpsc;

use crate::pipeline;
use composite::Composite;
use recording::{Outcome, RecorderEvent, Recording, Settings, human_bytes};

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    action: Option<Action>,
    #[command(flatten)]
    recorder: RecorderArgs,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Repair recordings left unfinished (their recorder was killed):
    /// duration and seek index rewritten, nothing re-encoded.
    ///
    /// Each file is remuxed into a temporary file beside it, which
    /// replaces it once complete; its sidecar gets the real duration and
    /// `repaired_at`. `peer record` does the same at start-up for every
    /// file in --dir whose sidecar says it did not end cleanly. A file a
    /// running recorder is writing is left alone.
    Repair(RepairArgs),
}

#[derive(clap::Args)]
struct RepairArgs {
    /// Recordings (.webm, .mkv) or their sidecars (.json).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Also rewrite files whose sidecar says they ended cleanly or were
    /// repaired already (by default they are skipped, so that
    /// `peer record repair DIR/*.webm` costs nothing for them).
    #[arg(long)]
    force: bool,
}

#[derive(clap::Args)]
struct RecorderArgs {
    /// Room whose publishers are recorded [default: default].
    #[arg(long)]
    room: Option<String>,
    /// Record every caller of this PeerJS id instead of a room's
    /// publishers: browser apps call it with `peer.call(ID, stream)`
    /// (docs/peerjs.md). The PeerServer is the one started here, or
    /// --server: `peer serve`'s address, `peerjs://HOST:PORT/?key=KEY`,
    /// or `http(s)://HOST:PORT/PATH` of any PeerServer (npm `peer`).
    #[arg(long, value_name = "ID")]
    peerjs: Option<String>,
    /// Directory the recordings go to (created if missing).
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// A running signalling server (ws://host:port) to join; unset: start
    /// one here, and publishers connect to it.
    #[arg(long)]
    server: Option<String>,
    /// Port of the server started here (when --server is not given)
    /// [default: 8080]
    #[arg(long)]
    port: Option<u16>,
    /// File names, with {room}, {publisher}, {start}, {tracks}, {ext}.
    #[arg(long, default_value = naming::DEFAULT_TEMPLATE)]
    template: String,
    /// Our peer id on the server.
    #[arg(long, default_value = "recorder")]
    id: String,
    /// Seconds between progress summaries (0: none).
    #[arg(long, default_value_t = 10)]
    summary_interval: u64,
    /// With --server: seconds to keep reconnecting to a server that went
    /// away (recordings go on meanwhile; 0: exit at once).
    #[arg(long, default_value_t = 60)]
    reconnect_timeout: u64,
    /// Jitter buffer of the recording sessions, in milliseconds: how long
    /// a late or lost packet is waited for (retransmissions included)
    /// before the file goes on without it. Recording is not live viewing:
    /// more is safe, at the cost of memory.
    #[arg(long, default_value_t = 200)]
    latency: u32,
    /// Most each publisher may send, audio and video together, in bit/s
    /// (`300k`, `1.5M` or a number): announced in the SDP answer (b=TIAS,
    /// b=AS, also to WHIP encoders) and enforced with REMB feedback.
    /// Unset: as much as the path carries.
    #[arg(long, value_parser = parse_bitrate)]
    max_bitrate: Option<u32>,
    /// PEM certificate to trust when the server is wss:// with a self-signed one.
    #[arg(long)]
    tls_ca_file: Option<String>,
    /// Also write one mixed file of the room (a grid of every publisher and
    /// their mixed sound, encoded once): .webm (VP8) or .mkv (H.264).
    /// Relative paths are under --dir.
    #[arg(long)]
    composite: Option<PathBuf>,
    /// Size of the composite picture.
    #[arg(long, default_value = "1280x720")]
    composite_size: String,
    /// With the server started here (not with --server): require
    /// `Authorization: Bearer <TOKEN>` from WHIP publishers.
    #[arg(long)]
    whip_token: Option<String>,
    /// Leave unfinished recordings found in --dir as they are (by default
    /// they are repaired at start-up, in the background).
    #[arg(long)]
    no_repair: bool,
    /// Access token for a server that requires one (`peer token ... --grant
    /// record`, without --id: each publisher is received by a peer of its own).
    #[arg(long, env = "GST_PEER_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

impl Args {
    /// Options that would be silently ignored together: the message
    /// says why, and what to do instead.
    pub fn conflict(&self) -> Option<String> {
        let recorder = &self.recorder;
        if let Some(id) = &recorder.peerjs
            && let Some(conflict) = recorder.peerjs_conflict(id)
        {
            return Some(conflict);
        }
        let server = recorder.server.as_deref()?;
        if recorder.whip_token.is_some() {
            return Some(format!(
                "--whip-token cannot be used with --server: it protects the WHIP endpoint of \
                 the server `peer record` starts itself. WHIP publishers of {server} post to \
                 that server: give it the token there (`peer serve --whip-token TOKEN`)"
            ));
        }
        if recorder.port.is_some() {
            return Some(format!(
                "--port cannot be used with --server: it is the port of the server \
                 `peer record` starts itself when it joins none ({server} is used instead)"
            ));
        }
        None
    }
}

impl RecorderArgs {
    fn room(&self) -> String {
        self.room.clone().unwrap_or_else(|| "default".to_owned())
    }

    /// Options that mean nothing with --peerjs.
    fn peerjs_conflict(&self, id: &str) -> Option<String> {
        if self.room.is_some() {
            return Some(format!(
                "--room cannot be used with --peerjs: PeerJS callers of \"{id}\" are not in a \
                 room of ours; their key is the room (in --server peerjs://HOST:PORT/?key=KEY, \
                 default peerjs)"
            ));
        }
        if self.id != "recorder" {
            return Some(format!(
                "--id cannot be used with --peerjs: the recorder's PeerJS id is \"{id}\" itself"
            ));
        }
        if self.composite.is_some() {
            return Some(
                "--composite cannot be used with --peerjs yet: PeerJS callers are recorded \
                 each to a file of their own only"
                    .to_owned(),
            );
        }
        if let Some(server) = &self.server
            && let Err(problem) = peerjs::peerjs_uri(server, id)
        {
            return Some(problem);
        }
        None
    }
}

/// How long a clean stop waits for files to finalize before closing anyway.
const FINALIZE_WAIT: Duration = Duration::from_secs(2);

pub fn run(args: Args) -> anyhow::Result<()> {
    pipeline::init()?;
    match args.action {
        Some(Action::Repair(repair)) => run_repair(&repair.files, repair.force),
        None => run_recorder(args.recorder),
    }
}

/// `peer record repair FILE...`: every file its sidecar (if any) does
/// not say is whole, or every file with `force`.
fn run_repair(files: &[PathBuf], force: bool) -> anyhow::Result<()> {
    let mut failed = 0;
    for argument in files {
        let path = repair::recording_named(argument);
        if !force && let Some(whole) = repair::already_whole(&path) {
            println!(
                "nothing to do for {}: {whole} (--force rewrites it anyway)",
                path.display()
            );
            continue;
        }
        match repair::repair_file(&path) {
            Ok(repaired) => {
                if let Err(err) = repair::note_in_sidecar(&repaired) {
                    eprintln!("cannot update the sidecar of {}: {err}", path.display());
                }
                println!("{}", repaired.summary());
            }
            Err(err) => {
                eprintln!("cannot repair {}: {err}", path.display());
                failed += 1;
                if !matches!(
                    err,
                    repair::RepairError::InUse | repair::RepairError::Missing
                ) && let Err(err) = repair::note_failure_in_sidecar(&path, &err)
                {
                    eprintln!("cannot update the sidecar of {}: {err}", path.display());
                }
            }
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} of {} file(s) could not be repaired", files.len());
    }
    Ok(())
}

fn run_recorder(args: RecorderArgs) -> anyhow::Result<()> {
    naming::validate(&args.template).map_err(anyhow::Error::msg)?;
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    // Before any new recording exists: the files found are a dead
    // recorder's (or a live one's in the same directory, which holds
    // their locks and is left alone).
    if !args.no_repair {
        repair::repair_unfinished_in_background(&args.dir);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    match args.peerjs.clone() {
        Some(id) => runtime.block_on(peerjs::record(args, id)),
        None => runtime.block_on(record(args)),
    }
}

struct Recorder {
    settings: Settings,
    composite: Option<Composite>,
    recordings: HashMap<String, Recording>,
    generations: u64,
    events: mpsc::UnboundedSender<RecorderEvent>,
    finished: u64,
}

impl Recorder {
    fn consider(&mut self, peer: &PeerInfo) {
        if !peer.is_producer() || self.recordings.contains_key(&peer.id) {
            return;
        }
        let tracks = peer
            .streams
            .iter()
            .filter(|s| s.kind == "video" || s.kind == "audio")
            .count();
        if tracks == 0 {
            return;
        }
        self.generations += 1;
        match Recording::start(
            &self.settings,
            &peer.id,
            tracks,
            self.generations,
            self.events.clone(),
        ) {
            Ok(recording) => {
                if let Some(composite) = &mut self.composite {
                    let (video, audio) = composite::channel_names(
                        &self.settings.recorder_id,
                        &peer.id,
                        self.generations,
                    );
                    if let Err(err) = composite.add(&peer.id, &video, &audio) {
                        eprintln!("composite: cannot add {}: {err:#}", peer.id);
                    }
                }
                self.recordings.insert(peer.id.clone(), recording);
            }
            Err(err) => eprintln!("cannot record {}: {err:#}", peer.id),
        }
    }

    fn on_event(&mut self, event: RecorderEvent) {
        let current = self.recordings.get(&event.publisher).map(|r| r.generation);
        if current != Some(event.generation) {
            return;
        }
        let recording = self.recordings.remove(&event.publisher).expect("present");
        if let Some(composite) = &mut self.composite {
            composite.remove(&event.publisher);
        }
        let stopping = recording.stop_requested_for().is_some();
        let line = match event.outcome {
            Outcome::Finished if stopping => recording.finish(true, "recorder stopped"),
            Outcome::Finished => recording.finish(true, "publisher left"),
            Outcome::Failed(error) => recording.finish(false, &format!("error: {error}")),
        };
        self.finished += 1;
        println!("{line}");
    }

    fn summary(&self) -> String {
        let bytes: u64 = self.recordings.values().map(Recording::bytes_written).sum();
        format!(
            "{} recording(s) running, {} written; {} finished",
            self.recordings.len(),
            human_bytes(bytes),
            self.finished
        )
    }
}

async fn record(args: RecorderArgs) -> anyhow::Result<()> {
    let room = args.room();
    let (embedded, base) = match &args.server {
        Some(server) => (
            None,
            server
                .trim_end_matches('/')
                .trim_end_matches("/ws")
                .to_owned(),
        ),
        None => {
            let config = embedded_server_config(&args);
            let running = server::start(config).await?;
            let base = format!("ws://{}", running.local_addr());
            println!("publish at {}publish?room={}", running.http_url(), room);
            println!(
                "WHIP publishers (OBS...): {}whip/{}",
                running.http_url(),
                room
            );
            (Some(running), base)
        }
    };
    let room_uri = format!("{base}/{room}");
    let address = client::RoomAddress::parse(&room_uri).map_err(anyhow::Error::msg)?;
    let trust = match &args.tls_ca_file {
        Some(path) => Some(std::fs::read(path).with_context(|| format!("cannot read {path}"))?),
        None => None,
    };
    let (mut signalling, mut incoming) =
        client::connect_trusting(&address.ws_url, trust.as_deref()).await?;
    let register = |signalling: &client::ClientSender, id: Option<String>, resume| {
        signalling.send(ClientMessage::Hello {
            // A token names its own peer (or none): our id is then its.
            id: args
                .token
                .is_none()
                .then(|| id.unwrap_or_else(|| args.id.clone())),
            meta: serde_json::json!({"role": "recorder"}),
            token: args.token.clone(),
            resume,
        })?;
        signalling.send(ClientMessage::Join {
            room: room.clone(),
            streams: Vec::new(),
            meta: serde_json::Value::Null,
            presence: true,
        })
    };
    register(&signalling, None, None)?;
    // Our id and resume secret from the last welcome: a server that only
    // lost the link takes us back; a restarted one gets a fresh join.
    let mut welcome: (Option<String>, Option<String>) = (None, None);
    // While the server is away: the attempts to get back, polled in the
    // loop below so that recordings keep being served meanwhile.
    let mut reconnecting: Option<Reconnecting> = None;
    let mut lost_reason = String::new();

    let (events, mut recorder_events) = mpsc::unbounded_channel();
    let mut recorder = Recorder {
        settings: Settings {
            room: room.clone(),
            room_uri,
            dir: args.dir.clone(),
            template: args.template.clone(),
            latency_ms: args.latency,
            max_bitrate: args.max_bitrate,
            tls_ca_file: args.tls_ca_file.clone(),
            composite: args.composite.is_some(),
            recorder_id: args.id.clone(),
            token: args.token.clone(),
        },
        composite: match &args.composite {
            Some(path) => {
                let (width, height) = parse_size(&args.composite_size)?;
                Some(Composite::start(&args.dir.join(path), width, height)?)
            }
            None => None,
        },
        recordings: HashMap::new(),
        generations: 0,
        events,
        finished: 0,
    };
    println!("recording room \"{room}\" into {}", args.dir.display());

    let mut ticker = tokio::time::interval(Duration::from_millis(250));
    let mut last_summary = Instant::now();
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    let mut outcome = Ok(());
    loop {
        tokio::select! {
            event = incoming.recv(), if reconnecting.is_none() => match event {
                Some(ClientEvent::Message(message)) => match message {
                    ServerMessage::Welcome { id, resume, .. } => welcome = (Some(id), resume),
                    ServerMessage::Joined { peers, .. } => peers.iter().for_each(|peer| recorder.consider(peer)),
                    ServerMessage::PeerJoined { peer, .. } | ServerMessage::PeerUpdated { peer, .. } => recorder.consider(&peer),
                    ServerMessage::Error { message, request, .. } => {
                        if matches!(request.as_deref(), Some("hello") | Some("join")) {
                            outcome = Err(anyhow::anyhow!("the signalling server refused the recorder: {message}"));
                            break;
                        }
                        eprintln!("signalling: {message}");
                    }
                    _ => {}
                },
                Some(ClientEvent::Undecodable(text)) => eprintln!("signalling: undecodable message {text}"),
                Some(ClientEvent::Closed(reason)) => {
                    // Recordings do not need the server: their media and
                    // their own signalling (which reconnects) go on.
                    let timeout = Duration::from_secs(args.reconnect_timeout);
                    if embedded.is_some() || timeout.is_zero() {
                        outcome = Err(anyhow::anyhow!("lost the signalling server: {reason}"));
                        break;
                    }
                    eprintln!("lost the signalling server ({reason}); reconnecting for up to {timeout:?}");
                    reconnecting = Some(Box::pin(reconnect(address.ws_url.clone(), trust.clone(), timeout)));
                    lost_reason = reason;
                }
                None => break,
            },
            connected = async { reconnecting.as_mut().expect("guarded").await }, if reconnecting.is_some() => {
                reconnecting = None;
                match connected {
                    Some((sender, receiver)) => {
                        (signalling, incoming) = (sender, receiver);
                        register(&signalling, welcome.0.clone(), welcome.1.take())?;
                        println!("back on the signalling server");
                    }
                    None => {
                        let timeout = Duration::from_secs(args.reconnect_timeout);
                        outcome = Err(anyhow::anyhow!(
                            "lost the signalling server: {lost_reason}; no server to reconnect to for {timeout:?}"
                        ));
                        break;
                    }
                }
            }
            Some(event) = recorder_events.recv() => recorder.on_event(event),
            _ = ticker.tick() => tick(&recorder, args.summary_interval, &mut last_summary),
            _ = &mut shutdown => break,
        }
    }
    stop_all(&mut recorder, &mut recorder_events).await;
    if let Some(server) = embedded {
        server.stop().await;
    }
    outcome
}

type Connected = (client::ClientSender, mpsc::UnboundedReceiver<ClientEvent>);
type Reconnecting = std::pin::Pin<Box<dyn std::future::Future<Output = Option<Connected>> + Send>>;

/// The server `peer record` runs itself without `--server`: on loopback
/// only (so open, like `peer serve` there), with its WHIP options.
fn embedded_server_config(args: &RecorderArgs) -> ServerConfig {
    ServerConfig {
        bind: SocketAddr::from(([127, 0, 0, 1], args.port.unwrap_or(server::DEFAULT_PORT))),
        whip: WishConfig {
            token: args.whip_token.clone(),
            max_bitrate: args.max_bitrate,
            ..WishConfig::default()
        },
        ..ServerConfig::default()
    }
}

/// Connects again, with backoff between attempts, for up to `timeout`.
async fn reconnect(url: String, trust: Option<Vec<u8>>, timeout: Duration) -> Option<Connected> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut backoff = client::Backoff::default();
    loop {
        tokio::time::sleep(backoff.next_wait()).await;
        if let Ok(connected) = client::connect_trusting(&url, trust.as_deref()).await {
            return Some(connected);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
    }
}

/// Every 250 ms: tracks waited for long enough start their file; every
/// `summary_interval` seconds, a summary.
fn tick(recorder: &Recorder, summary_interval: u64, last_summary: &mut Instant) {
    for recording in recorder.recordings.values() {
        recording.check_waiting_tracks();
    }
    if summary_interval > 0 && last_summary.elapsed() >= Duration::from_secs(summary_interval) {
        *last_summary = Instant::now();
        println!("{}", recorder.summary());
        for recording in recorder.recordings.values() {
            if let Some(line) = recording.progress() {
                println!("  {line}");
            }
        }
    }
}

/// Ends every recording cleanly: EOS down each, then each is closed when its
/// file is finalized, or after [`FINALIZE_WAIT`] whatever happened.
async fn stop_all(recorder: &mut Recorder, events: &mut mpsc::UnboundedReceiver<RecorderEvent>) {
    println!(
        "stopping: finalizing {} recording(s)",
        recorder.recordings.len()
    );
    // The mixed file ends first, while everyone is still in it.
    if let Some(composite) = recorder.composite.take() {
        println!("{}", composite.finish());
    }
    for recording in recorder.recordings.values_mut() {
        recording.request_stop();
    }
    let deadline = tokio::time::Instant::now() + FINALIZE_WAIT;
    while !recorder.recordings.is_empty() {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(event)) => recorder.on_event(event),
            _ => break,
        }
    }
    for (_, recording) in recorder.recordings.drain() {
        println!("{}", recording.finish(false, "did not finalize in time"));
    }
}

/// `300k`, `1.5M`, `2500000`: bits per second.
pub fn parse_bitrate(text: &str) -> Result<u32, String> {
    let trimmed = text.trim();
    let (number, unit) = match trimmed
        .char_indices()
        .find(|(_, c)| c.is_ascii_alphabetic())
    {
        Some((at, _)) => trimmed.split_at(at),
        None => (trimmed, ""),
    };
    let factor = match unit
        .to_ascii_lowercase()
        .trim_end_matches("bit/s")
        .trim_end_matches("bps")
    {
        "" => 1.0,
        "k" => 1e3,
        "m" => 1e6,
        _ => {
            return Err(format!(
                "{text}: expected bits per second, e.g. 300k, 1.5M or 2500000"
            ));
        }
    };
    let value = number
        .trim()
        .parse::<f64>()
        .map_err(|_| format!("{text}: expected bits per second, e.g. 300k, 1.5M or 2500000"))?
        * factor;
    if !(16_000.0..=u32::MAX as f64).contains(&value) {
        return Err(format!("{text}: must be at least 16k (and below 4G)"));
    }
    Ok(value.round() as u32)
}

fn parse_size(text: &str) -> anyhow::Result<(u32, u32)> {
    let parsed = text
        .split_once('x')
        .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)))
        .filter(|(w, h)| *w >= 16 && *h >= 16 && w % 2 == 0 && h % 2 == 0);
    parsed.ok_or_else(|| {
        anyhow::anyhow!(
            "--composite-size {text}: expected WIDTHxHEIGHT, even numbers, e.g. 1280x720"
        )
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}
