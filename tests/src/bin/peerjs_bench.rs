//! Benchmark of the PeerServer front end of `peer serve` against the
//! reference PeerServer (npm `peer` 1.0.2, run by node), side by side in
//! one run: memory of many idle PeerJS clients, relay latency of ~1 KB
//! CANDIDATE messages at a given rate (every message must arrive, or the
//! run fails), and the rate at which relaying saturates.
//!
//!   cargo build --release --locked -p peer --bin peer -p peer-tests --bin peerjs_bench
//!   unshare -n sh -c 'ip link set lo up && target/release/peerjs_bench'
//!
//! Clients connect from 127.0.0.2 and up (200 clients per address), so
//! neither ephemeral ports nor per-address limits bound them. `peer serve`
//! runs with its per-connection message rate limit, connection caps and
//! heartbeat raised out of the way (the reference server has none of
//! those); otherwise both run with their defaults. The reference server
//! is found in the npm cache scripts/install-deps.sh fills
//! (GST_PEER_NPM_DIR, default ~/.cache/gst-peer/npm). Results:
//! docs/benchmarks/peerjs.md.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_tungstenite::tokio::client_async;
use async_tungstenite::tungstenite::Message;
use futures::{SinkExt, StreamExt};
use peer_tests::process::{ChildProcess, cpu_seconds};
use peer_tests::server_process::{ServerProcess, free_port, raise_file_limit};
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// PeerServers side by side: idle clients' memory, relay latency at a
/// rate, saturation. With no phase, runs all three with their defaults.
/// Run it in a loopback-only network namespace.
#[derive(clap::Parser)]
struct Cli {
    #[command(subcommand)]
    phase: Option<Phase>,
    /// Only this server: `peer` or `reference`.
    #[arg(long, global = true)]
    only: Option<String>,
}

#[derive(clap::Subcommand, Clone, Copy)]
enum Phase {
    /// Server memory (RSS) with CLIENTS idle PeerJS clients.
    Idle {
        #[arg(default_value_t = 10_000)]
        clients: usize,
    },
    /// Relay latency (p50, p99) of ~1 KB CANDIDATEs sent at RATE per second.
    Relay {
        #[arg(default_value_t = 10_000)]
        rate: u64,
        #[arg(default_value_t = 10)]
        seconds: u64,
    },
    /// CANDIDATEs per second relayed when senders go as fast as they can.
    Saturate {
        #[arg(default_value_t = 10)]
        seconds: u64,
    },
}

#[derive(Clone, Copy, PartialEq)]
enum Which {
    Peer,
    Reference,
}

impl Which {
    fn name(self) -> &'static str {
        match self {
            Which::Peer => "peer serve",
            Which::Reference => "npm peer 1.0.2",
        }
    }
}

fn main() {
    let cli = <Cli as clap::Parser>::parse();
    peer_tests::require_loopback_only();
    // A socket per client here, and one per client in the server (which
    // inherits the limit): 10,000 clients need more than the usual 1024.
    println!("open files allowed: {}", raise_file_limit(200_000));
    let servers: Vec<Which> = match cli.only.as_deref() {
        Some("peer") => vec![Which::Peer],
        Some("reference") => vec![Which::Reference],
        _ => vec![Which::Peer, Which::Reference],
    };
    let phases = match cli.phase {
        Some(phase) => vec![phase],
        None => vec![
            Phase::Idle { clients: 10_000 },
            Phase::Relay {
                rate: 10_000,
                seconds: 10,
            },
            Phase::Saturate { seconds: 10 },
        ],
    };
    println!("{}", machine());
    let mut failures = Vec::new();
    for phase in phases {
        for &which in &servers {
            // A runtime per run: dropping it ends the tasks it spawned.
            let outcome = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap()
                .block_on(async move {
                    match phase {
                        Phase::Idle { clients } => idle(which, clients).await,
                        Phase::Relay { rate, seconds } => relay(which, rate, seconds).await,
                        Phase::Saturate { seconds } => saturate(which, seconds).await,
                    }
                });
            if let Err(failure) = outcome {
                println!("FAILED [{}]: {failure}", which.name());
                failures.push(failure);
            }
        }
    }
    if !failures.is_empty() {
        std::process::exit(1);
    }
}

/// The machine, for the record: CPU model and count, memory, kernel, node.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .map(|m| m.trim().to_owned())
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let node = Command::new("node")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    format!(
        "machine: {model}, {cpus} CPUs available, {memory} RAM, Linux {}, node {node}",
        kernel.trim()
    )
}

fn npm_dir() -> PathBuf {
    std::env::var_os("GST_PEER_NPM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/gst-peer/npm")
        })
}

fn start(which: Which) -> ServerProcess {
    // Both with room for every client, and no heartbeat needed while
    // clients connect.
    match which {
        Which::Peer => ServerProcess::serve(
            peer_tests::peer_binary(),
            [
                "--max-peers-per-room",
                "100000",
                "--max-peers",
                "200000",
                "--peerjs-concurrent-limit",
                "100000",
                "--max-connections",
                "200000",
                "--max-connections-per-ip",
                "200000",
                "--message-rate",
                "1000000000",
                "--peerjs-alive-timeout",
                "600000",
                "--heartbeat",
                "600",
            ],
            "PeerJS clients",
        ),
        Which::Reference => {
            let script = npm_dir().join("node_modules/peer/dist/bin/peerjs.js");
            assert!(
                script.exists(),
                "{}: run scripts/install-deps.sh",
                script.display()
            );
            let port = free_port();
            let process = ChildProcess::spawn(
                Command::new("node")
                    .arg(script)
                    .args(["--port", &port.to_string(), "--host", "127.0.0.1"])
                    .args(["--concurrent_limit", "100000", "--alive_timeout", "600000"]),
            );
            let deadline = Instant::now() + Duration::from_secs(20);
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(
                    Instant::now() < deadline,
                    "the reference server did not listen"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
            ServerProcess { process, port }
        }
    }
}

type Socket = async_tungstenite::WebSocketStream<
    async_tungstenite::tokio::TokioAdapter<tokio::net::TcpStream>,
>;

/// Clients per source address (127.0.0.2 and up).
const CLIENTS_PER_ADDRESS: usize = 200;

static NEXT_CLIENT: AtomicU64 = AtomicU64::new(0);

/// A PeerJS client with `id`, once it got OPEN.
async fn open(port: u16, id: &str) -> Socket {
    let n = NEXT_CLIENT.fetch_add(1, Ordering::Relaxed) as usize;
    let source = Ipv4Addr::new(
        127,
        0,
        (2 + n / CLIENTS_PER_ADDRESS / 250) as u8,
        (2 + n / CLIENTS_PER_ADDRESS % 250) as u8,
    );
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket
        .bind(SocketAddr::from((source, 0)))
        .unwrap_or_else(|err| panic!("bind {source}: {err}"));
    let tcp = socket
        .connect(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .expect("connect");
    tcp.set_nodelay(true).expect("TCP_NODELAY");
    let url = format!("ws://127.0.0.1:{port}/peerjs?key=peerjs&id={id}&token=t{id}&version=1.5.5");
    let (mut socket, _) = client_async(url, tcp).await.expect("WebSocket handshake");
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) if text.as_str().contains("OPEN") => return socket,
            Some(Ok(Message::Text(text))) => panic!("{id}: {}", text.as_str()),
            Some(Ok(_)) => continue,
            other => panic!("{id}: {other:?}"),
        }
    }
}

/// Connections opened at once while the idle clients connect.
const OPENING_AT_ONCE: usize = 64;

async fn idle(which: Which, count: usize) -> Result<(), String> {
    let server = start(which);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = server.rss_kib();
    let started = Instant::now();
    let port = server.port;
    let sockets: Vec<Socket> = futures::stream::iter(0..count)
        .map(|i| async move { open(port, &format!("idle{i}")).await })
        .buffer_unordered(OPENING_AT_ONCE)
        .collect()
        .await;
    let connect_time = started.elapsed();
    // Settled: RSS taken 5 s after the last OPEN (node's heap grows and
    // is collected meanwhile), and every client still connected.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = server.rss_kib();
    println!(
        "idle [{}]: {count} clients got OPEN in {:.1} s; server RSS {:.1} MB before, {:.1} MB with them: {:.1} MB for the clients, {:.2} KB per client",
        which.name(),
        connect_time.as_secs_f64(),
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        after.saturating_sub(before) as f64 / 1024.0,
        after.saturating_sub(before) as f64 / count as f64,
    );
    if sockets.len() != count {
        return Err(format!("{} of {count} clients connected", sockets.len()));
    }
    Ok(())
}

const PAIRS: usize = 50;

/// Sender and receiver of each pair, the receiver having got the sender's
/// OFFER (so both servers relay within a connection).
async fn pairs(port: u16) -> Vec<(Socket, Socket)> {
    let mut pairs = Vec::new();
    for pair in 0..PAIRS {
        let mut receiver = open(port, &format!("rx{pair}")).await;
        let mut sender = open(port, &format!("tx{pair}")).await;
        let offer = json!({"type": "OFFER", "dst": format!("rx{pair}"), "payload": {
            "sdp": {"type": "offer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"},
            "type": "data", "connectionId": "dc_bench", "label": "bench",
            "reliable": true, "serialization": "binary"}});
        sender
            .send(Message::Text(offer.to_string().into()))
            .await
            .unwrap();
        loop {
            match receiver.next().await {
                Some(Ok(Message::Text(text))) if text.as_str().contains("OFFER") => break,
                Some(Ok(_)) => continue,
                other => panic!("no OFFER: {other:?}"),
            }
        }
        pairs.push((sender, receiver));
    }
    pairs
}

/// A ~1 KB CANDIDATE carrying `t` (ms) in its candidate line.
fn candidate(pair: usize, t: f64, padding: &str) -> String {
    json!({"type": "CANDIDATE", "dst": format!("rx{pair}"), "payload": {
        "candidate": {"candidate": format!("candidate:{t} 1 udp 2122260223 127.0.0.1 50000 typ host {padding}"),
                      "sdpMid": "0", "sdpMLineIndex": 0},
        "type": "data", "connectionId": "dc_bench"}})
    .to_string()
}

fn sent_time(text: &str) -> Option<f64> {
    let value: Value = serde_json::from_str(text).ok()?;
    let line = value["payload"]["candidate"]["candidate"].as_str()?;
    line.strip_prefix("candidate:")?
        .split(' ')
        .next()?
        .parse()
        .ok()
}

/// How long the last messages of a relay run may take to arrive.
const DRAIN_WAIT: Duration = Duration::from_secs(10);

async fn relay(which: Which, rate: u64, seconds: u64) -> Result<(), String> {
    let server = start(which);
    let closed = Arc::new(AtomicBool::new(false));
    let origin = Instant::now();
    let (latencies_tx, mut latencies_rx) = mpsc::unbounded_channel::<f64>();
    let mut senders = Vec::new();
    for (sender, mut receiver) in pairs(server.port).await {
        let tx = latencies_tx.clone();
        let closed = closed.clone();
        tokio::spawn(async move {
            while let Some(frame) = receiver.next().await {
                let text = match frame {
                    Ok(Message::Text(text)) => text,
                    Ok(_) => continue,
                    Err(_) => break,
                };
                if let Some(sent) = sent_time(text.as_str()) {
                    let _ = tx.send(origin.elapsed().as_secs_f64() * 1000.0 - sent);
                }
            }
            closed.store(true, Ordering::Relaxed);
        });
        senders.push(sender);
    }
    let per_sender = rate as f64 / PAIRS as f64;
    let padding = "x".repeat(850);
    let total = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for (pair, mut sender) in senders.into_iter().enumerate() {
        let padding = padding.clone();
        let total = total.clone();
        tasks.push(tokio::spawn(async move {
            let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / per_sender));
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let end = Instant::now() + Duration::from_secs(seconds);
            let mut last_heartbeat = Instant::now();
            while Instant::now() < end {
                ticker.tick().await;
                let t = origin.elapsed().as_secs_f64() * 1000.0;
                let text = candidate(pair, t, &padding);
                if sender.send(Message::Text(text.into())).await.is_err() {
                    break;
                }
                total.fetch_add(1, Ordering::Relaxed);
                if last_heartbeat.elapsed() > Duration::from_secs(5) {
                    last_heartbeat = Instant::now();
                    let _ = sender
                        .send(Message::Text(r#"{"type":"HEARTBEAT"}"#.into()))
                        .await;
                }
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
    let sent = total.load(Ordering::Relaxed);
    // Every message must arrive: wait for the last ones, then count.
    let mut latencies = Vec::with_capacity(sent as usize);
    let drained_by = tokio::time::Instant::now() + DRAIN_WAIT;
    while (latencies.len() as u64) < sent {
        match tokio::time::timeout_at(drained_by, latencies_rx.recv()).await {
            Ok(Some(latency)) => latencies.push(latency),
            _ => break,
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = (cpu_seconds(server.process.id()) - cpu_before) / elapsed;
    latencies.sort_by(f64::total_cmp);
    let pick = |q: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    println!(
        "relay [{}]: {sent} CANDIDATEs of ~1 KB at {:.0}/s sent, {} delivered; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; server CPU {:.0}% of a core ({:.1} µs per message)",
        which.name(),
        sent as f64 / seconds as f64,
        latencies.len(),
        pick(0.5),
        pick(0.99),
        latencies.last().copied().unwrap_or(f64::NAN),
        cpu * 100.0,
        cpu * elapsed * 1e6 / latencies.len().max(1) as f64
    );
    let delivered = latencies.len() as u64;
    if delivered != sent || closed.load(Ordering::Relaxed) {
        return Err(format!(
            "relay at {rate}/s lost {} of {sent} messages{}",
            sent.saturating_sub(delivered),
            if closed.load(Ordering::Relaxed) {
                " (the server closed a receiver)"
            } else {
                ""
            }
        ));
    }
    Ok(())
}

async fn saturate(which: Which, seconds: u64) -> Result<(), String> {
    let server = start(which);
    let delivered = Arc::new(AtomicU64::new(0));
    let closed = Arc::new(AtomicU64::new(0));
    let mut senders = Vec::new();
    for (sender, mut receiver) in pairs(server.port).await {
        let delivered = delivered.clone();
        let closed = closed.clone();
        tokio::spawn(async move {
            while let Some(Ok(message)) = receiver.next().await {
                if message.is_text() {
                    delivered.fetch_add(1, Ordering::Relaxed);
                }
            }
            closed.fetch_add(1, Ordering::Relaxed);
        });
        senders.push(sender);
    }
    let padding = "x".repeat(850);
    let end = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for (pair, mut sender) in senders.into_iter().enumerate() {
        let text = candidate(pair, 0.0, &padding);
        tasks.push(tokio::spawn(async move {
            while Instant::now() < end {
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
    let closed = closed.load(Ordering::Relaxed);
    println!(
        "saturate [{}]: {:.0} CANDIDATEs/s delivered over {seconds} s; server CPU {:.0}% of a core ({:.1} µs per message); {closed} of {PAIRS} receivers closed by the server",
        which.name(),
        count as f64 / elapsed,
        cpu * 100.0,
        cpu * elapsed * 1e6 / count.max(1) as f64
    );
    Ok(())
}
