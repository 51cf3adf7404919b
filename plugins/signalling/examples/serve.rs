//! The signalling server alone, without GStreamer: what `peer serve` runs,
//! in a binary that builds in a minute, for profiling and benchmarking
//! changes to the server (`signalling_bench` runs it when
//! `SIGNALLING_BENCH_SERVER` names it).
//!
//!   cargo build --release -p peer-signalling --example serve
//!   target/release/examples/serve [--port N] [--max-peers-per-room N]

use peer_signalling::server::{self, ServerConfig};

fn main() {
    let mut config = ServerConfig::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || -> usize {
            args.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{arg} needs a number"))
        };
        match arg.as_str() {
            // As `peer serve`, which the benchmark's command line is written for.
            "serve" => {}
            "--port" => config.bind.set_port(value() as u16),
            "--max-peers-per-room" => config.limits.max_peers_per_room = value(),
            other => panic!("unknown argument {other}"),
        }
    }
    tokio::runtime::Runtime::new()
        .expect("tokio runtime")
        .block_on(async {
            let server = server::start(config).await.expect("server starts");
            println!("gst-peer signalling on {}", server.ws_url());
            server.wait().await;
        });
}
