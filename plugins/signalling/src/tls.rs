//! HTTPS and WSS for the server. Browsers allow getUserMedia only on
//! localhost or over HTTPS, so a server reached from phones on a LAN needs
//! TLS; without a certificate given, a self-signed one is made at start.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};

/// A certificate ready to serve, and what to tell people about it.
pub struct TlsIdentity {
    pub config: Arc<rustls::ServerConfig>,
    /// SHA-256 of the certificate, `AB:CD:...`, to compare with what the
    /// browser shows.
    pub fingerprint: String,
    /// base64 SHA-256 of the public key, for Chromium's
    /// `--ignore-certificate-errors-spki-list` (self-signed only).
    pub spki_sha256: Option<String>,
    pub self_signed: bool,
    /// The certificate in PEM, for clients told to trust it.
    pub certificate_pem: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} holds no PEM certificate")]
    NoCertificate { path: String },
    #[error("{path} holds no PEM private key: {reason}")]
    NoKey { path: String, reason: String },
    #[error("the certificate and key do not go together: {0}")]
    Mismatch(String),
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(String),
}

/// Loads a PEM certificate chain and key.
pub fn load(cert_path: &str, key_path: &str) -> Result<TlsIdentity, TlsError> {
    let read = |path: &str| {
        std::fs::read(path).map_err(|source| TlsError::Read {
            path: path.to_owned(),
            source,
        })
    };
    let cert_pem = read(cert_path)?;
    let key_pem = read(key_path)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .filter_map(Result::ok)
        .collect();
    let leaf = chain
        .first()
        .cloned()
        .ok_or_else(|| TlsError::NoCertificate {
            path: cert_path.to_owned(),
        })?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|err| TlsError::NoKey {
        path: key_path.to_owned(),
        reason: err.to_string(),
    })?;
    let pem = String::from_utf8_lossy(&cert_pem).into_owned();
    identity(chain, key, &leaf, None, false, pem)
}

/// Makes a self-signed certificate for `names` (host names and addresses).
pub fn self_signed(names: &[String]) -> Result<TlsIdentity, TlsError> {
    let generated = rcgen::generate_simple_self_signed(names.to_vec())
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    let leaf = generated.cert.der().clone();
    let key = PrivateKeyDer::try_from(generated.signing_key.serialize_der())
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    let spki = rcgen::PublicKeyData::subject_public_key_info(&generated.signing_key);
    let pem = generated.cert.pem();
    identity(vec![leaf.clone()], key, &leaf, Some(&spki), true, pem)
}

fn identity(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    leaf: &CertificateDer<'static>,
    spki: Option<&[u8]>,
    self_signed: bool,
    certificate_pem: String,
) -> Result<TlsIdentity, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Mismatch(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Mismatch(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let fingerprint = ring::digest::digest(&ring::digest::SHA256, leaf)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    let spki_sha256 = spki.map(|spki| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .encode(ring::digest::digest(&ring::digest::SHA256, spki))
    });
    Ok(TlsIdentity {
        config: Arc::new(config),
        fingerprint,
        spki_sha256,
        self_signed,
        certificate_pem,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_identity_has_fingerprints() {
        let identity = self_signed(&["localhost".into(), "127.0.0.1".into()]).unwrap();
        assert_eq!(identity.fingerprint.len(), 32 * 3 - 1);
        assert_eq!(identity.spki_sha256.unwrap().len(), 44);
        assert!(identity.self_signed);
    }
}
