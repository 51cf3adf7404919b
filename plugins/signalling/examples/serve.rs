//! The signalling server alone, without GStreamer: what `peer serve` runs,
//! in a binary that builds in a minute, for profiling and benchmarking
//! changes to the server (`signalling_bench` runs it when
//! `SIGNALLING_BENCH_SERVER` names it).
//!
//!   cargo build --release -p peer-signalling --example serve
//!   target/release/examples/serve [--port N] [--max-peers-per-room N]
//!     [--max-connections N] [--max-connections-per-ip N] [--message-rate R]

use peer_signalling::server::{self, ServerConfig};

/// The gst-peer signalling server alone (what `peer serve` runs), for
/// profiling and benchmarking changes to the server.
#[derive(clap::Parser)]
struct Cli {
    /// Accepted and ignored, so that a command line written for `peer
    /// serve` (as `signalling_bench`'s) runs this binary unchanged.
    #[arg(value_parser = ["serve"], hide = true)]
    serve: Option<String>,
    /// Port to listen on (127.0.0.1).
    #[arg(long, default_value_t = server::DEFAULT_PORT)]
    port: u16,
    /// Peers a room may hold.
    #[arg(long)]
    max_peers_per_room: Option<usize>,
    /// Open connections at once (as `peer serve --max-connections`).
    #[arg(long)]
    max_connections: Option<usize>,
    /// Open connections from one address (as `peer serve`'s option).
    #[arg(long)]
    max_connections_per_ip: Option<usize>,
    /// Messages per second one connection may send, bursts of twice as
    /// many (as `peer serve --message-rate`).
    #[arg(long)]
    message_rate: Option<f64>,
}

fn main() {
    let cli = <Cli as clap::Parser>::parse();
    let mut config = ServerConfig::default();
    config.bind.set_port(cli.port);
    if let Some(max) = cli.max_peers_per_room {
        config.limits.max_peers_per_room = max;
    }
    if let Some(max) = cli.max_connections {
        config.connections.max_connections = max;
    }
    if let Some(max) = cli.max_connections_per_ip {
        config.connections.max_connections_per_ip = max;
    }
    if let Some(rate) = cli.message_rate {
        config.limits.message_rate = rate;
        config.limits.message_burst = rate * 2.0;
    }
    tokio::runtime::Runtime::new()
        .expect("tokio runtime")
        .block_on(async {
            let server = server::start(config).await.expect("server starts");
            println!("gst-peer signalling on {}", server.ws_url());
            server.wait().await;
        });
}
