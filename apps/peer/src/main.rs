//! `peer`: the gst-peer command line. Each subcommand is a small app in its
//! own module, composing the elements into a pipeline.

mod access;
mod demo;
mod devices;
mod pipeline;
mod receive;
mod record;
mod send;
mod serve;
mod token;

use clap::{CommandFactory, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "peer",
    version,
    about = "WebRTC for GStreamer, with the signalling built in"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the signalling server (WebSocket protocol and the browser pages).
    Serve(serve::Args),
    /// Send test sources or devices to a room.
    Send(send::Args),
    /// Receive a producer of a room and play it (or check it, headless).
    Receive(receive::Args),
    /// Record every publisher of a room to files, without re-encoding.
    Record(record::Args),
    /// List cameras, microphones, screens and windows, with the element
    /// and properties that select each.
    Devices(devices::Args),
    /// Mint access tokens (and join links), make a secret, inspect a token.
    Token(token::Args),
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PEER_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    if let Command::Record(args) = &cli.command
        && let Some(conflict) = args.conflict()
    {
        // The usage shown is `peer record`'s.
        let mut command = Cli::command();
        command.build();
        command
            .find_subcommand_mut("record")
            .expect("record is a subcommand")
            .error(clap::error::ErrorKind::ArgumentConflict, conflict)
            .exit();
    }
    match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Send(args) => send::run(args),
        Command::Receive(args) => receive::run(args),
        Command::Record(args) => record::run(args),
        Command::Devices(args) => devices::run(args),
        Command::Token(args) => token::run(args),
    }
}
