//! `peer token`: access tokens for a server that requires them
//! (docs/security.md). Mint one (`--room`, `--id`, `--grant`, `--ttl`), as a
//! join link when `--link` is given; make a new secret; inspect a token.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use base64::Engine;
use peer_signalling::auth::{self, Authority, Claims, Grants};

use crate::access::read_secret;

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    action: Option<Action>,
    #[command(flatten)]
    mint: MintArgs,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Print a new random HS256 secret (for --auth-secret-file and
    /// --secret-file): `peer token new-secret > /etc/gst-peer/secret`.
    NewSecret,
    /// Decode a token, check it with the server's key and print its claims.
    Inspect(InspectArgs),
}

#[derive(clap::Args)]
struct KeyArgs {
    /// The HS256 secret the server checks tokens with.
    #[arg(long, value_name = "FILE")]
    secret_file: Option<PathBuf>,
    /// For ES256/RS256: the PEM private key (minting) or public key
    /// (inspecting), with --alg.
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,
    /// ES256 or RS256, with --key-file.
    #[arg(long, value_name = "ALG")]
    alg: Option<String>,
}

#[derive(clap::Args)]
struct MintArgs {
    #[command(flatten)]
    key: KeyArgs,
    /// The room it may enter, or a prefix ending in `*`.
    #[arg(long)]
    room: Option<String>,
    /// The peer id its holder registers under (nobody else can take it).
    /// Leave it out for a recorder or anything that registers several peers.
    #[arg(long)]
    id: Option<String>,
    /// What it allows, comma-separated: publish, subscribe, data, record, admin.
    #[arg(long, default_value = "publish,subscribe,data")]
    grant: String,
    /// How long it is valid (`90s`, `2h`, `7days`).
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    ttl: Duration,
    /// Also print a join link on this server (`https://rec.example:8080`):
    /// the publish page when it grants publish, else the watch page.
    #[arg(long, value_name = "URL")]
    link: Option<String>,
}

#[derive(clap::Args)]
struct InspectArgs {
    token: String,
    #[command(flatten)]
    key: KeyArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    match args.action {
        Some(Action::NewSecret) => {
            let bytes: [u8; 32] = rand::random();
            println!(
                "{}",
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
            );
            Ok(())
        }
        Some(Action::Inspect(inspect)) => run_inspect(inspect),
        None => run_mint(args.mint),
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The signing key and algorithm the options name.
fn signing_key(key: &KeyArgs) -> anyhow::Result<(&'static str, Vec<u8>)> {
    match (&key.secret_file, &key.key_file) {
        (Some(path), None) => Ok(("HS256", read_secret(path)?)),
        (None, Some(path)) => {
            let alg = match key.alg.as_deref().map(str::to_ascii_uppercase).as_deref() {
                Some("ES256") => "ES256",
                Some("RS256") => "RS256",
                _ => bail!("--key-file needs --alg ES256 or --alg RS256"),
            };
            let pem =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            Ok((alg, pem))
        }
        _ => {
            bail!("give the key: --secret-file FILE (HS256), or --key-file FILE --alg ES256|RS256")
        }
    }
}

fn run_mint(args: MintArgs) -> anyhow::Result<()> {
    let room = args
        .room
        .clone()
        .context("--room is required: the room (or a prefix ending in *) it may enter")?;
    let grants = Grants::parse(&args.grant).map_err(anyhow::Error::msg)?;
    let (alg, key) = signing_key(&args.key)?;
    if alg == "HS256" {
        // The server would refuse a short secret: fail here, not there.
        Authority::hs256(&key).map_err(anyhow::Error::msg)?;
    }
    let now = unix_now();
    let claims = Claims {
        sub: args.id.clone(),
        room: room.clone(),
        grants: grants.names().into_iter().map(str::to_owned).collect(),
        exp: now + args.ttl.as_secs(),
        nbf: None,
        iat: Some(now),
    };
    let token = auth::mint(&claims, alg, &key).map_err(anyhow::Error::msg)?;
    println!("{token}");
    if let Some(base) = &args.link {
        let base = base.trim_end_matches('/');
        let page = if grants.publish { "publish" } else { "watch" };
        let mut link = format!("{base}/{page}?room={}", encode(&room));
        if let Some(id) = &args.id {
            link.push_str(&format!("&id={}", encode(id)));
        }
        link.push_str(&format!("&token={token}"));
        println!("{link}");
    }
    Ok(())
}

fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

fn run_inspect(args: InspectArgs) -> anyhow::Result<()> {
    let authority = match (&args.key.secret_file, &args.key.key_file) {
        (Some(path), None) => Authority::hs256(&read_secret(path)?).map_err(anyhow::Error::msg)?,
        (None, Some(path)) => {
            let pem =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            Authority::public_key(args.key.alg.as_deref().unwrap_or_default(), &pem)
                .map_err(anyhow::Error::msg)?
        }
        _ => bail!(
            "give the key: --secret-file FILE (HS256), or --key-file PUBLIC.pem --alg ES256|RS256"
        ),
    };
    let now = unix_now();
    let identity = authority
        .verify(&args.token, now)
        .map_err(|err| anyhow::anyhow!("refused: {err}"))?;
    println!("valid");
    println!(
        "peer id:  {}",
        identity.sub.as_deref().unwrap_or("(any: a random one)")
    );
    println!("room:     {}", identity.room);
    println!("grants:   {}", identity.grants.names().join(", "));
    let left = identity.exp.saturating_sub(now);
    println!(
        "expires:  in {}",
        humantime::format_duration(Duration::from_secs(left))
    );
    Ok(())
}

/// A token for `peer serve --demo`'s own broadcast (HS256 only).
pub fn mint_for_demo(secret_file: &PathBuf) -> anyhow::Result<String> {
    let now = unix_now();
    let claims = Claims {
        sub: Some("demo".into()),
        room: "demo".into(),
        grants: vec!["publish".into(), "data".into()],
        // As long as the server runs, in practice.
        exp: now + 10 * 365 * 24 * 3600,
        nbf: None,
        iat: Some(now),
    };
    auth::mint(&claims, "HS256", &read_secret(secret_file)?).map_err(anyhow::Error::msg)
}
