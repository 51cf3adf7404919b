//! Options that decide who may use a server `peer` starts (`peer serve`,
//! `peer record`'s own): tokens and TURN (docs/security.md). Open on
//! loopback, closed elsewhere: a server bound to any other address refuses
//! to start without a way to check tokens, unless `--open` says so.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use peer_signalling::auth::Authority;
use peer_signalling::core::Access;
use peer_signalling::turn::TurnConfig;

#[derive(clap::Args, Debug, Clone, Default)]
pub struct AccessArgs {
    /// File holding the HS256 secret tokens are signed with (`peer token
    /// new-secret` makes one). Peers then need a token.
    #[arg(long, value_name = "FILE", conflicts_with = "auth_public_key_file")]
    pub auth_secret_file: Option<PathBuf>,
    /// PEM public key tokens are signed for (with --auth-alg ES256 or RS256).
    #[arg(long, value_name = "FILE", requires = "auth_alg")]
    pub auth_public_key_file: Option<PathBuf>,
    /// ES256 or RS256, with --auth-public-key-file.
    #[arg(long, value_name = "ALG")]
    pub auth_alg: Option<String>,
    /// Serve without tokens on a non-loopback address: anyone who reaches
    /// the port may publish, watch and list rooms.
    #[arg(long)]
    pub open: bool,
    /// A TURN server handed to authenticated peers with short-lived
    /// credentials (repeatable): turn:host:port?transport=udp.
    #[arg(
        long = "turn-server",
        value_name = "URL",
        requires = "turn_secret_file"
    )]
    pub turn_servers: Vec<String>,
    /// File holding the TURN server's shared secret (coturn's
    /// static-auth-secret, with use-auth-secret).
    #[arg(long, value_name = "FILE")]
    pub turn_secret_file: Option<PathBuf>,
    /// How long handed-out TURN credentials stay valid.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub turn_ttl: Duration,
}

/// The secret in `path`, without the newline an editor adds.
pub fn read_secret(path: &PathBuf) -> anyhow::Result<Vec<u8>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let text = String::from_utf8_lossy(&bytes);
    Ok(text.trim_end_matches(['\r', '\n']).as_bytes().to_vec())
}

impl AccessArgs {
    /// The access configuration, or why the server must not start.
    pub fn access(&self, host: IpAddr) -> anyhow::Result<Access> {
        let authority = match (&self.auth_secret_file, &self.auth_public_key_file) {
            (Some(path), _) => Some(
                Authority::hs256(&read_secret(path)?)
                    .map_err(anyhow::Error::msg)
                    .with_context(|| format!("--auth-secret-file {}", path.display()))?,
            ),
            (None, Some(path)) => {
                let pem = std::fs::read(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                let alg = self.auth_alg.as_deref().unwrap_or_default();
                Some(
                    Authority::public_key(alg, &pem)
                        .map_err(anyhow::Error::msg)
                        .with_context(|| format!("--auth-public-key-file {}", path.display()))?,
                )
            }
            (None, None) => None,
        };
        if authority.is_none() && !self.open && !host.is_loopback() {
            bail!(
                "refusing to serve on {host} without tokens: anyone reaching it could publish, \
                 watch and list rooms. Give --auth-secret-file FILE (make one with `peer token \
                 new-secret > FILE`) or --auth-public-key-file FILE --auth-alg ES256, or --open \
                 if that is what you mean"
            );
        }
        let turn = match &self.turn_secret_file {
            Some(path) if !self.turn_servers.is_empty() => Some(TurnConfig {
                urls: self.turn_servers.clone(),
                secret: read_secret(path)?,
                ttl: self.turn_ttl,
            }),
            Some(_) => bail!("--turn-secret-file needs at least one --turn-server"),
            None => None,
        };
        Ok(Access { authority, turn })
    }
}
