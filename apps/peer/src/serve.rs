//! `peer serve`: the signalling server on its own.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use peer_signalling::core::Limits;
use peer_signalling::peerjs::PeerJsConfig;
use peer_signalling::request_rate::RateLimit;
use peer_signalling::tls;
use peer_signalling::wish::WishConfig;

use crate::demo;
use peer_signalling::server::{self, ConnectionLimits, ServerConfig};

#[derive(clap::Args)]
pub struct Args {
    /// Address to listen on. Use 0.0.0.0 to accept other machines.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Port to listen on (0 picks a free one).
    #[arg(long, short, default_value_t = server::DEFAULT_PORT)]
    port: u16,
    /// Largest protocol message accepted, in bytes.
    #[arg(long, default_value_t = Limits::default().max_message_bytes)]
    max_message_bytes: usize,
    /// Most peers in one room.
    #[arg(long, default_value_t = Limits::default().max_peers_per_room)]
    max_peers_per_room: usize,
    /// Most peers connected at once.
    #[arg(long, default_value_t = Limits::default().max_peers)]
    max_peers: usize,
    /// Seconds of silence after which a peer is pinged; three times this and it is dropped.
    #[arg(long, default_value_t = 10)]
    heartbeat: u64,
    /// Seconds a new connection has to say hello before it is closed.
    #[arg(long, default_value_t = Limits::default().hello_timeout.as_secs())]
    hello_timeout: u64,
    /// Messages per second one connection may send (bursts of twice as
    /// many); beyond, they are dropped with a `rate-limited` error.
    #[arg(long, default_value_t = Limits::default().message_rate)]
    message_rate: f64,
    /// Largest `meta` of a peer, in bytes of JSON.
    #[arg(long, default_value_t = Limits::default().max_meta_bytes)]
    max_meta_bytes: usize,
    /// Most open connections (HTTP and WebSocket) at once.
    #[arg(long, default_value_t = ConnectionLimits::default().max_connections)]
    max_connections: usize,
    /// Most open connections from one IP address.
    #[arg(long, default_value_t = ConnectionLimits::default().max_connections_per_ip)]
    max_connections_per_ip: usize,
    /// New WHIP/WHEP sessions (POSTs) one IP address may start per second,
    /// in bursts of four times as many; beyond, 429 with Retry-After. 0: no limit.
    #[arg(long, default_value_t = RateLimit::default().per_second)]
    session_rate: f64,
    /// Also broadcast a demo (moving test pattern and a tone) as producer
    /// "demo" in room "demo", to watch from the page.
    #[arg(long)]
    demo: bool,
    /// Serve HTTPS and WSS (browsers allow camera and microphone only on
    /// localhost or HTTPS). Without --cert/--key, a self-signed certificate
    /// is made at start and its fingerprint printed.
    #[arg(long)]
    tls: bool,
    /// PEM certificate chain for --tls.
    #[arg(long, requires = "key")]
    cert: Option<String>,
    /// PEM private key for --tls.
    #[arg(long, requires = "cert")]
    key: Option<String>,
    /// Require `Authorization: Bearer <TOKEN>` on WHIP requests
    /// (`POST /whip/{room}`, PATCH, DELETE).
    #[arg(long)]
    whip_token: Option<String>,
    /// Most a WHIP publisher may send, audio and video together, in bit/s
    /// (`300k`, `1.5M`): announced in the SDP answer it gets (b=TIAS,
    /// b=AS). The receiver in the room enforces a cap of its own with
    /// feedback (`peer record --max-bitrate`, peersrc `max-bitrate`).
    #[arg(long, value_parser = crate::record::parse_bitrate)]
    max_bitrate: Option<u32>,
    /// Require `Authorization: Bearer <TOKEN>` on WHEP requests
    /// (`POST /whep/{room}[/{producer}]`, PATCH, DELETE).
    #[arg(long)]
    whep_token: Option<String>,
    #[command(flatten)]
    access: crate::access::AccessArgs,
    /// PeerServer: the path its routes are under (`path` in `new Peer`).
    #[arg(long, default_value = "/")]
    peerjs_path: String,
    /// PeerServer: a key clients may use (`key` in `new Peer`); each key is
    /// a room. Repeat for several [default: peerjs]
    #[arg(long = "peerjs-key", value_name = "KEY")]
    peerjs_keys: Vec<String>,
    /// PeerServer: milliseconds a message for a peer not connected is held
    /// before its sender gets EXPIRE.
    #[arg(long, default_value_t = 5000)]
    peerjs_expire_timeout: u64,
    /// PeerServer: milliseconds of silence after which a client's socket is closed.
    #[arg(long, default_value_t = 90_000)]
    peerjs_alive_timeout: u64,
    /// PeerServer: most PeerJS clients at once.
    #[arg(long, default_value_t = 5000)]
    peerjs_concurrent_limit: usize,
    /// PeerServer: answer `GET /{key}/peers` with the key's peer ids.
    #[arg(long)]
    peerjs_discovery: bool,
    /// PeerServer: bytes of messages from one client held for peers not
    /// connected; beyond, it gets ERROR `held-budget-exceeded` and is closed.
    #[arg(long, default_value_t = 1 << 20)]
    peerjs_held_bytes_per_sender: usize,
    /// PeerServer: bytes of messages held for peers not connected, from
    /// all clients; beyond, a sender gets EXPIRE for its message.
    #[arg(long, default_value_t = 64 << 20)]
    peerjs_held_bytes: usize,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let access = args.access.access(args.host)?;
    let requires_tokens = access.authority.is_some();
    // The demo publishes into this server: with tokens, it needs one.
    let demo_token = match (&args.access.auth_secret_file, requires_tokens && args.demo) {
        (_, false) => None,
        (Some(path), true) => Some(crate::token::mint_for_demo(path)?),
        (None, true) => anyhow::bail!(
            "--demo with --auth-public-key-file: the demo cannot mint its own token; \
             run it without --demo and publish with a token"
        ),
    };
    let limits = Limits {
        max_message_bytes: args.max_message_bytes,
        max_peers_per_room: args.max_peers_per_room,
        max_peers: args.max_peers,
        heartbeat_interval: Duration::from_secs(args.heartbeat),
        heartbeat_timeout: Duration::from_secs(args.heartbeat * 3),
        hello_timeout: Duration::from_secs(args.hello_timeout),
        message_rate: args.message_rate,
        message_burst: args.message_rate * 2.0,
        max_meta_bytes: args.max_meta_bytes,
        ..Limits::default()
    };
    let connections = ConnectionLimits {
        max_connections: args.max_connections,
        max_connections_per_ip: args.max_connections_per_ip,
        ..ConnectionLimits::default()
    };
    raise_file_limit(args.max_connections);
    let tls = if args.tls || args.cert.is_some() {
        let identity = match (&args.cert, &args.key) {
            (Some(cert), Some(key)) => tls::load(cert, key)?,
            _ => tls::self_signed(&certificate_names(args.host))?,
        };
        if identity.self_signed {
            println!(
                "self-signed certificate, SHA-256 fingerprint {}",
                identity.fingerprint
            );
            if let Some(spki) = &identity.spki_sha256 {
                println!(
                    "(Chromium can be told to trust it: --ignore-certificate-errors-spki-list={spki})"
                );
            }
        } else {
            println!("certificate SHA-256 fingerprint {}", identity.fingerprint);
        }
        Some(identity)
    } else {
        None
    };
    let demo_trust = tls
        .as_ref()
        .map(|identity| identity.certificate_pem.clone());
    let session_rate = RateLimit {
        per_second: args.session_rate,
        burst: args.session_rate * 4.0,
    };
    let config = ServerConfig {
        bind: SocketAddr::new(args.host, args.port),
        limits,
        tls: tls.map(|identity| identity.config),
        whip: WishConfig {
            token: args.whip_token.clone(),
            session_requests: session_rate,
            max_bitrate: args.max_bitrate,
            ..WishConfig::default()
        },
        whep: WishConfig {
            token: args.whep_token.clone(),
            session_requests: session_rate,
            ..WishConfig::default()
        },
        access,
        peerjs: peerjs_config(&args)?,
        connections,
        ..ServerConfig::default()
    };
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let server = server::start(config).await?;
        let _demo = if args.demo {
            Some(demo::start(
                server.local_addr().port(),
                demo_trust,
                demo_token,
            )?)
        } else {
            None
        };
        println!(
            "gst-peer signalling on {} — open {}",
            server.ws_url(),
            server.http_url()
        );
        if requires_tokens {
            println!("tokens required (docs/security.md): `peer token --help` mints them");
        }
        println!(
            "WHIP ingest at {}whip/<room>{}",
            server.http_url(),
            if args.whip_token.is_some() {
                " (Bearer token required)"
            } else {
                ""
            }
        );
        println!(
            "WHEP playback at {}whep/<room>[/<producer>]{}",
            server.http_url(),
            if args.whep_token.is_some() {
                " (Bearer token required)"
            } else {
                ""
            }
        );
        let peerjs = peerjs_config(&args)?;
        let url = server.http_url();
        let (scheme, authority) = url
            .trim_end_matches('/')
            .split_once("://")
            .unwrap_or(("http", ""));
        let (host, port) = authority.rsplit_once(':').unwrap_or((authority, ""));
        println!(
            "PeerJS clients: new Peer(id, {{host: '{host}', port: {port}, path: '{}'{}{}}}) \
             (key {}); calling page {url}call",
            peerjs.normalized_path(),
            if peerjs.keys.first().is_some_and(|k| k != "peerjs") {
                format!(", key: '{}'", peerjs.keys[0])
            } else {
                String::new()
            },
            if scheme == "https" {
                ", secure: true"
            } else {
                ""
            },
            peerjs.keys.join(", "),
        );
        tokio::select! {
            _ = shutdown_signal() => {
                tracing::info!("stopping");
                server.stop().await;
            }
        }
        anyhow::Ok(())
    })
}

fn peerjs_config(args: &Args) -> anyhow::Result<PeerJsConfig> {
    let keys = if args.peerjs_keys.is_empty() {
        vec!["peerjs".to_owned()]
    } else {
        args.peerjs_keys.clone()
    };
    if let Some(bad) = keys
        .iter()
        .find(|k| !peer_signalling::protocol::is_valid_name(k))
    {
        anyhow::bail!("--peerjs-key {bad}: keys are rooms, 1-64 characters of A-Z a-z 0-9 . _ -");
    }
    Ok(PeerJsConfig {
        path: args.peerjs_path.clone(),
        keys,
        expire_timeout: Duration::from_millis(args.peerjs_expire_timeout),
        alive_timeout: Duration::from_millis(args.peerjs_alive_timeout),
        concurrent_limit: args.peerjs_concurrent_limit,
        allow_discovery: args.peerjs_discovery,
        max_held_bytes_per_sender: args.peerjs_held_bytes_per_sender,
        max_held_bytes: args.peerjs_held_bytes,
        ..PeerJsConfig::default()
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

/// Names a self-signed certificate is valid for: loopback, the bound
/// address and this machine's host name.
fn certificate_names(host: IpAddr) -> Vec<String> {
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if !host.is_unspecified() && !names.contains(&host.to_string()) {
        names.push(host.to_string());
    }
    if let Ok(hostname) = std::fs::read_to_string("/etc/hostname") {
        let hostname = hostname.trim();
        if !hostname.is_empty() {
            names.push(hostname.to_owned());
            names.push(format!("{hostname}.local"));
        }
    }
    names
}

/// Each connection is a file descriptor: lift the soft limit towards the
/// hard one (as servers do), and say so when even that is below the
/// connection cap.
fn raise_file_limit(max_connections: usize) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return;
        }
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
    let wanted = max_connections as u64 + 100;
    if (limit.rlim_cur as u64) < wanted {
        eprintln!(
            "warning: open files are limited to {} (ulimit -n), below --max-connections {max_connections}; \
             connections beyond it are refused until others close",
            limit.rlim_cur
        );
    }
}
