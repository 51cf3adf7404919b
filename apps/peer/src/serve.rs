//! `peer serve`: the signalling server on its own.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use peer_signalling::core::Limits;
use peer_signalling::tls;
use peer_signalling::wish::WishConfig;

use crate::demo;
use peer_signalling::server::{self, ServerConfig};

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
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let limits = Limits {
        max_message_bytes: args.max_message_bytes,
        max_peers_per_room: args.max_peers_per_room,
        max_peers: args.max_peers,
        heartbeat_interval: Duration::from_secs(args.heartbeat),
        heartbeat_timeout: Duration::from_secs(args.heartbeat * 3),
        ..Limits::default()
    };
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
    let config = ServerConfig {
        bind: SocketAddr::new(args.host, args.port),
        limits,
        tls: tls.map(|identity| identity.config),
        whip: WishConfig {
            token: args.whip_token.clone(),
            max_bitrate: args.max_bitrate,
            ..WishConfig::default()
        },
        whep: WishConfig {
            token: args.whep_token.clone(),
            ..WishConfig::default()
        },
        ..ServerConfig::default()
    };
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let server = server::start(config).await?;
        let _demo = if args.demo {
            Some(demo::start(server.local_addr().port(), demo_trust)?)
        } else {
            None
        };
        println!(
            "gst-peer signalling on {} — open {}",
            server.ws_url(),
            server.http_url()
        );
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
        tokio::select! {
            _ = shutdown_signal() => {
                tracing::info!("stopping");
                server.stop().await;
            }
        }
        anyhow::Ok(())
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
