//! `viewer-farm`: many WebRTC viewers of one broadcast in one process.
//! Example, inside a loopback-only namespace, with a peersink producing
//! as `cam` in room `demo` of `peer serve` on port 8080:
//!   viewer-farm --uri ws://127.0.0.1:8080/demo --producer cam --viewers 50

use clap::Parser;
use peer_farm::cli::{FarmArgs, run};

#[derive(Parser)]
#[command(
    version,
    about = "Many real WebRTC viewers (str0m) of one broadcast, counting frames"
)]
struct Cli {
    #[command(flatten)]
    farm: FarmArgs,
}

fn main() {
    let cli = Cli::parse();
    std::process::exit(run(&cli.farm));
}
