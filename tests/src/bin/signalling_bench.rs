//! Benchmark of the signalling server (`peer serve`, a separate process):
//! memory for many idle peers, and relay latency and throughput of 1 KB
//! application messages.
//!
//!   cargo build --release -p peer -p peer-tests --bin signalling_bench
//!   unshare -n sh -c 'ip link set lo up && target/release/signalling_bench'
//!
//! Subcommands: `idle N [--per-room 10000,100] [--server BIN]...
//! [--rounds R]` (default 10000 peers, one room and rooms of 100), `relay RATE SECONDS` (default
//! 10000 msg/s for 10 s), `saturate SECONDS`; no argument runs all three.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_tungstenite::tokio::client_async;
use async_tungstenite::tungstenite::Message;
use futures::{SinkExt, StreamExt};
use peer_tests::process::cpu_seconds;
use peer_tests::server_process::{ServerProcess, raise_file_limit};
use serde_json::json;
use tokio::sync::mpsc;

/// Benchmark of the signalling server (`peer serve` in a process of its
/// own): memory of many idle peers, relay latency of 1 KB application
/// messages at a given rate, and the rate at which relaying saturates.
/// With no phase, runs all three with their defaults. Run it in a
/// loopback-only network namespace.
#[derive(clap::Parser)]
#[command(
    after_help = "Environment: SIGNALLING_BENCH_SERVER names another server \
    binary to measure (e.g. peer-signalling's example `serve`, or an older `peer`); \
    it is started as `BINARY serve --port N --max-peers-per-room 100000` with the connection caps and rate limit lifted."
)]
struct Cli {
    #[command(subcommand)]
    phase: Option<Phase>,
    /// Run the server with tokens required (`--auth-secret-file`), every
    /// peer saying hello with its own token: what checking them costs.
    #[arg(long, global = true)]
    auth: bool,
}

/// The HS256 secret of `--auth` runs (the server reads it from a file).
const BENCH_SECRET: &str = "signalling-bench-secret-of-32-bytes-or-more";

/// Set once from `--auth`, read where peers say hello.
static AUTH: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

fn auth() -> bool {
    *AUTH.get().unwrap_or(&false)
}

/// A token for peer `id`: every grant, in every room.
fn token_for(id: &str) -> String {
    peer_signalling::auth::mint(
        &peer_signalling::auth::Claims {
            sub: Some(id.to_owned()),
            room: "*".into(),
            grants: vec!["publish".into(), "subscribe".into(), "data".into()],
            exp: 4_000_000_000,
            nbf: None,
            iat: None,
        },
        "HS256",
        BENCH_SECRET.as_bytes(),
    )
    .unwrap()
}

#[derive(clap::Subcommand)]
enum Phase {
    /// Server memory (RSS) with PEERS idle WebSocket peers, for each room
    /// shape and each server, in rounds (a fresh server each time).
    Idle {
        /// Peers connected, each joined to a room.
        #[arg(default_value_t = 10_000)]
        peers: usize,
        /// Peers per room: the room shapes to measure (10000: one room of
        /// all of them; 100: rooms of 100). The server's per-room cap is
        /// lifted to 100 000 (`--max-peers-per-room`; its default is 1 000).
        #[arg(long = "per-room", value_delimiter = ',', default_values_t = [10_000, 100])]
        per_room: Vec<usize>,
        /// Server binaries to measure side by side (`peer`, or
        /// peer-signalling's example `serve`); by default
        /// SIGNALLING_BENCH_SERVER or the `peer` beside this benchmark.
        #[arg(long = "server")]
        servers: Vec<std::path::PathBuf>,
        /// Rounds over every shape and server.
        #[arg(long, default_value_t = 1)]
        rounds: usize,
    },
    /// Relay latency (p50, p99) of 1 KB messages sent at RATE per second.
    Relay {
        /// Messages per second, all senders together.
        #[arg(default_value_t = 10_000)]
        rate: u64,
        /// How long to send.
        #[arg(default_value_t = 10)]
        seconds: u64,
    },
    /// Messages per second relayed when senders go as fast as they can.
    Saturate {
        /// How long to send.
        #[arg(default_value_t = 10)]
        seconds: u64,
    },
}

fn main() {
    let cli = <Cli as clap::Parser>::parse();
    AUTH.set(cli.auth).unwrap();
    peer_tests::require_loopback_only();
    // Idle peers hold file descriptors on both sides.
    raise_file_limit(200_000);
    // A runtime per phase: dropping it ends the tasks the phase spawned
    // (readers of thousands of sockets), which would otherwise compete
    // with the next phase.
    let run = |phase: std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(phase)
    };
    match cli.phase {
        Some(Phase::Idle {
            peers,
            per_room,
            servers,
            rounds,
        }) => {
            let servers = if servers.is_empty() {
                vec![default_server()]
            } else {
                servers
            };
            for round in 1..=rounds {
                for &size in &per_room {
                    for server in &servers {
                        print!("round {round}, {}: ", server.display());
                        run(Box::pin(idle(server.clone(), peers, size)));
                    }
                }
            }
        }
        Some(Phase::Relay { rate, seconds }) => run(Box::pin(relay(rate, seconds))),
        Some(Phase::Saturate { seconds }) => run(Box::pin(saturate(seconds))),
        None => {
            for size in [10_000, 100] {
                run(Box::pin(idle(default_server(), 10_000, size)));
            }
            run(Box::pin(relay(10_000, 10)));
            run(Box::pin(saturate(10)));
        }
    }
}

/// The server measured unless told otherwise: SIGNALLING_BENCH_SERVER
/// (another build, e.g. peer-signalling's example `serve`), or `peer`.
fn default_server() -> std::path::PathBuf {
    std::env::var_os("SIGNALLING_BENCH_SERVER")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(peer_tests::peer_binary)
}

fn start_server() -> ServerProcess {
    start_server_binary(default_server())
}

fn start_server_binary(binary: std::path::PathBuf) -> ServerProcess {
    let mut args: Vec<std::ffi::OsString> = [
        "--max-peers-per-room",
        "100000",
        // The benchmark's clients all come from 127.0.0.1, and its few
        // senders go as fast as they can: lift the per-address cap and
        // the per-connection rate limit it would otherwise measure.
        "--max-connections",
        "30000",
        "--max-connections-per-ip",
        "30000",
        "--message-rate",
        "1000000",
    ]
    .map(Into::into)
    .into();
    if auth() {
        let secret = std::env::temp_dir().join(format!("signalling-bench-{}", std::process::id()));
        std::fs::write(&secret, BENCH_SECRET).unwrap();
        args.extend(["--auth-secret-file".into(), secret.into()]);
    }
    ServerProcess::serve(binary, args, "gst-peer signalling on")
}

type Socket = async_tungstenite::WebSocketStream<
    async_tungstenite::tokio::TokioAdapter<tokio::net::TcpStream>,
>;

async fn join(port: u16, id: &str, room: &str) -> Socket {
    // As a latency-minded client would: no Nagle on its own writes.
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    tcp.set_nodelay(true).expect("TCP_NODELAY");
    let (mut socket, _) = client_async(format!("ws://127.0.0.1:{port}/ws"), tcp)
        .await
        .expect("WebSocket handshake");
    socket
        .send(Message::Text(
            if auth() {
                json!({"type": "hello", "id": id, "token": token_for(id)})
            } else {
                json!({"type": "hello", "id": id})
            }
            .to_string()
            .into(),
        ))
        .await
        .unwrap();
    socket
        .send(Message::Text(
            json!({"type": "join", "room": room}).to_string().into(),
        ))
        .await
        .unwrap();
    // welcome, then joined
    for _ in 0..2 {
        let _ = socket.next().await;
    }
    socket
}

/// `count` peers in rooms of `per_room`, idle once joined. Each keeps
/// reading what the server sends it (as a real client would: in one big
/// room every join is announced to everyone, and a peer that stopped
/// reading would be closed as a slow consumer); all must still be
/// connected when the memory is read, or the run fails.
async fn idle(binary: std::path::PathBuf, count: usize, per_room: usize) {
    let server = start_server_binary(binary);
    let before = server.rss_kib();
    let closed = Arc::new(AtomicU64::new(0));
    let frames = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::with_capacity(count);
    let started = Instant::now();
    for i in 0..count {
        let mut socket = join(
            server.port,
            &format!("idle{i}"),
            &format!("room{}", i / per_room.max(1)),
        )
        .await;
        let (closed, frames) = (closed.clone(), frames.clone());
        readers.push(tokio::spawn(async move {
            // Text only: the heartbeat's pings keep coming.
            while let Some(Ok(frame)) = socket.next().await {
                if frame.is_text() {
                    frames.fetch_add(1, Ordering::Relaxed);
                }
            }
            closed.fetch_add(1, Ordering::Relaxed);
        }));
    }
    let connect_time = started.elapsed();
    // Let the server settle: announcements delivered (the frame count
    // stops moving), buffers freed.
    let mut seen = u64::MAX;
    while frames.load(Ordering::Relaxed) != seen {
        seen = frames.load(Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let after = server.rss_kib();
    let lost = closed.load(Ordering::Relaxed);
    assert_eq!(lost, 0, "{lost} of {count} idle peers were disconnected");
    let rooms = count.div_ceil(per_room.max(1));
    println!(
        "idle: {count} peers in {rooms} room(s) of {per_room} joined in {:.1} s ({seen} frames announced to them); server RSS {:.1} MB before, {:.1} MB with them: {:.2} KB per peer, {:.1} MB in all",
        connect_time.as_secs_f64(),
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        (after - before) as f64 / count as f64,
        after as f64 / 1024.0
    );
    for reader in readers {
        reader.abort();
    }
}

/// Pairs of peers; each sender sends 1 KB messages carrying the send time
/// to its receiver, together `rate` a second.
async fn relay(rate: u64, seconds: u64) {
    let server = start_server();
    const PAIRS: u64 = 50;
    let (latencies_tx, mut latencies_rx) = mpsc::unbounded_channel::<f64>();
    let origin = Instant::now();
    let mut senders = Vec::new();
    for pair in 0..PAIRS {
        let room = format!("relay{pair}");
        let mut receiver = join(server.port, &format!("rx{pair}"), &room).await;
        let sender = join(server.port, &format!("tx{pair}"), &room).await;
        let tx = latencies_tx.clone();
        tokio::spawn(async move {
            while let Some(frame) = receiver.next().await {
                // The server's heartbeat pings come in between: reading
                // stops only when the connection does.
                let text = match frame {
                    Ok(Message::Text(text)) => text,
                    Ok(Message::Ping(_) | Message::Pong(_)) => continue,
                    _ => break,
                };
                let value: serde_json::Value = serde_json::from_str(text.as_str()).unwrap();
                if let Some(sent) = value["data"]["t"].as_f64() {
                    let _ = tx.send(origin.elapsed().as_secs_f64() * 1000.0 - sent);
                }
            }
        });
        senders.push(sender);
    }
    let per_sender = rate as f64 / PAIRS as f64;
    let padding = "x".repeat(900);
    let total = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for (pair, mut sender) in senders.into_iter().enumerate() {
        let padding = padding.clone();
        let total = total.clone();
        tasks.push(tokio::spawn(async move {
            let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / per_sender));
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let end = Instant::now() + Duration::from_secs(seconds);
            while Instant::now() < end {
                ticker.tick().await;
                let t = origin.elapsed().as_secs_f64() * 1000.0;
                let message = json!({"type": "message", "to": format!("rx{pair}"), "data": {"t": t, "pad": padding}});
                if sender.send(Message::Text(message.to_string().into())).await.is_err() {
                    break;
                }
                total.fetch_add(1, Ordering::Relaxed);
            }
            sender
        }));
    }
    let cpu_before = cpu_seconds(server.process.id());
    let started = Instant::now();
    let mut _keep = Vec::new();
    for task in tasks {
        _keep.push(task.await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = (cpu_seconds(server.process.id()) - cpu_before) / elapsed;
    let mut latencies = Vec::new();
    while let Ok(latency) = latencies_rx.try_recv() {
        latencies.push(latency);
    }
    latencies.sort_by(f64::total_cmp);
    let pick = |q: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    let sent = total.load(Ordering::Relaxed);
    println!(
        "relay: {sent} messages of ~1 KB at {:.0}/s sent, {} delivered; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; server CPU {:.0}% of a core ({:.1} µs per message)",
        sent as f64 / seconds as f64,
        latencies.len(),
        pick(0.5),
        pick(0.99),
        latencies.last().copied().unwrap_or(f64::NAN),
        cpu * 100.0,
        cpu * elapsed * 1e6 / latencies.len().max(1) as f64
    );
}

/// As many 1 KB messages as the server takes, from 50 senders to 50 receivers.
async fn saturate(seconds: u64) {
    let server = start_server();
    const PAIRS: usize = 50;
    let delivered = Arc::new(AtomicU64::new(0));
    let mut senders = Vec::new();
    for pair in 0..PAIRS {
        let room = format!("flood{pair}");
        let mut receiver = join(server.port, &format!("rx{pair}"), &room).await;
        senders.push(join(server.port, &format!("tx{pair}"), &room).await);
        let delivered = delivered.clone();
        tokio::spawn(async move {
            while let Some(Ok(message)) = receiver.next().await {
                if message.is_text() {
                    delivered.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    let padding = "x".repeat(900);
    let end = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for (pair, mut sender) in senders.into_iter().enumerate() {
        let text = json!({"type": "message", "to": format!("rx{pair}"), "data": {"pad": padding}})
            .to_string();
        tasks.push(tokio::spawn(async move {
            while Instant::now() < end {
                // Batches keep the client from being the bottleneck.
                for _ in 0..32 {
                    if sender
                        .feed(Message::Text(text.clone().into()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                if sender.flush().await.is_err() {
                    return;
                }
            }
        }));
    }
    let cpu_before = cpu_seconds(server.process.id());
    let counted_from = delivered.load(Ordering::Relaxed);
    let started = Instant::now();
    for task in tasks {
        let _ = task.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let count = delivered.load(Ordering::Relaxed) - counted_from;
    let cpu = (cpu_seconds(server.process.id()) - cpu_before) / elapsed;
    println!(
        "saturate: {:.0} messages/s delivered over {seconds} s; server CPU {:.0}% of a core ({:.1} µs per message)",
        count as f64 / elapsed,
        cpu * 100.0,
        cpu * elapsed * 1e6 / count.max(1) as f64
    );
}
