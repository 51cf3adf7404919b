//! The WebSocket client the elements and apps use: a thin shell that turns
//! the socket into a sender of [`ClientMessage`]s and a stream of
//! [`ClientEvent`]s.

use async_tungstenite::tokio::connect_async_with_tls_connector;
use async_tungstenite::tungstenite::Message;
use futures::StreamExt;
use tokio::sync::mpsc;

use crate::protocol::{self, ClientMessage, ServerMessage};

#[derive(Debug)]
pub enum ClientEvent {
    Message(ServerMessage),
    /// The server sent something that is not a protocol message.
    Undecodable(String),
    /// The connection ended; the text says why.
    Closed(String),
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to signalling server {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("the signalling connection is closed")]
    Closed,
}

/// Sends messages to the server; cheap to clone. Dropping every clone
/// closes the connection.
#[derive(Clone, Debug)]
pub struct ClientSender {
    outgoing: mpsc::UnboundedSender<ClientMessage>,
}

impl ClientSender {
    pub fn send(&self, message: ClientMessage) -> Result<(), ClientError> {
        self.outgoing.send(message).map_err(|_| ClientError::Closed)
    }
}

/// Connects to `url` (`ws://host:port/ws`) and starts the reader and writer
/// tasks on the current tokio runtime.
pub async fn connect(
    url: &str,
) -> Result<(ClientSender, mpsc::UnboundedReceiver<ClientEvent>), ClientError> {
    connect_trusting(url, None).await
}

/// Like [`connect`], trusting for `wss://` the PEM certificates in
/// `extra_roots_pem` besides the public roots (a self-signed server).
pub async fn connect_trusting(
    url: &str,
    extra_roots_pem: Option<&[u8]>,
) -> Result<(ClientSender, mpsc::UnboundedReceiver<ClientEvent>), ClientError> {
    let connect_error = |reason: String| ClientError::Connect {
        url: url.to_owned(),
        reason,
    };
    let connector = match extra_roots_pem {
        Some(pem) => Some(tls_connector(pem).map_err(connect_error)?),
        None => None,
    };
    let (socket, _response) = connect_async_with_tls_connector(url, connector)
        .await
        .map_err(|err| connect_error(err.to_string()))?;
    let (mut sink, mut stream) = socket.split();
    let (outgoing, mut outgoing_rx) = mpsc::unbounded_channel::<ClientMessage>();
    let (events, events_rx) = mpsc::unbounded_channel::<ClientEvent>();

    tokio::spawn(async move {
        while let Some(message) = outgoing_rx.recv().await {
            let text = protocol::encode_client_message(&message);
            if sink.send(Message::Text(text.into())).await.is_err() {
                return;
            }
        }
        let _ = sink.close(None).await;
    });

    tokio::spawn(async move {
        let reason = loop {
            match stream.next().await {
                Some(Ok(Message::Text(text))) => {
                    let event = match protocol::decode_server_message(text.as_str()) {
                        Ok(message) => ClientEvent::Message(message),
                        Err(err) => ClientEvent::Undecodable(format!("{err}: {}", text.as_str())),
                    };
                    if events.send(event).is_err() {
                        return;
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    break match frame {
                        Some(frame) if !frame.reason.is_empty() => {
                            format!("server closed the connection: {}", frame.reason)
                        }
                        _ => "server closed the connection".to_owned(),
                    };
                }
                Some(Ok(_)) => {}
                Some(Err(err)) => break format!("signalling connection failed: {err}"),
                None => break "signalling connection ended".to_owned(),
            }
        };
        let _ = events.send(ClientEvent::Closed(reason));
    });

    Ok((ClientSender { outgoing }, events_rx))
}

/// What a WebSocket in another protocol's dialect says (see [`connect_text`]).
#[derive(Debug)]
pub enum TextEvent {
    Text(String),
    /// The connection ended; the text says why.
    Closed(String),
}

/// Connects a WebSocket whose frames are JSON text of a protocol other
/// than ours (the elements' PeerJS signaller): frames sent on the returned
/// sender are written in order; dropping it closes the connection.
pub async fn connect_text(
    url: &str,
    extra_roots_pem: Option<&[u8]>,
) -> Result<
    (
        mpsc::UnboundedSender<String>,
        mpsc::UnboundedReceiver<TextEvent>,
    ),
    ClientError,
> {
    let connect_error = |reason: String| ClientError::Connect {
        url: url.to_owned(),
        reason,
    };
    let connector = match extra_roots_pem {
        Some(pem) => Some(tls_connector(pem).map_err(connect_error)?),
        None => None,
    };
    let (socket, _response) = connect_async_with_tls_connector(url, connector)
        .await
        .map_err(|err| connect_error(err.to_string()))?;
    let (mut sink, mut stream) = socket.split();
    let (outgoing, mut outgoing_rx) = mpsc::unbounded_channel::<String>();
    let (events, events_rx) = mpsc::unbounded_channel::<TextEvent>();
    tokio::spawn(async move {
        while let Some(text) = outgoing_rx.recv().await {
            if sink.send(Message::Text(text.into())).await.is_err() {
                return;
            }
        }
        let _ = sink.close(None).await;
    });
    tokio::spawn(async move {
        let reason = loop {
            match stream.next().await {
                Some(Ok(Message::Text(text))) => {
                    if events
                        .send(TextEvent::Text(text.as_str().to_owned()))
                        .is_err()
                    {
                        return;
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    break match frame {
                        Some(frame) if !frame.reason.is_empty() => {
                            format!("server closed the connection: {}", frame.reason)
                        }
                        _ => "server closed the connection".to_owned(),
                    };
                }
                Some(Ok(_)) => {}
                Some(Err(err)) => break format!("connection failed: {err}"),
                None => break "connection ended".to_owned(),
            }
        };
        let _ = events.send(TextEvent::Closed(reason));
    });
    Ok((outgoing, events_rx))
}

fn tls_connector(pem: &[u8]) -> Result<tokio_rustls::TlsConnector, String> {
    let config = tls_client_config(Some(pem))?;
    Ok(tokio_rustls::TlsConnector::from(std::sync::Arc::new(
        config,
    )))
}

/// A TLS client configuration trusting the public roots and, when given,
/// the PEM certificates in `extra_roots_pem` (a self-signed `peer serve`).
/// Shared by the WebSocket client and the elements' WHIP/WHEP clients.
pub fn tls_client_config(extra_roots_pem: Option<&[u8]>) -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(pem) = extra_roots_pem {
        let mut added = 0;
        for certificate in CertificateDer::pem_slice_iter(pem) {
            let certificate =
                certificate.map_err(|err| format!("unreadable PEM certificate: {err}"))?;
            roots
                .add(certificate)
                .map_err(|err| format!("unusable certificate: {err}"))?;
            added += 1;
        }
        if added == 0 {
            return Err("no PEM certificate to trust in the given file".into());
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| err.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Where an element connects: the server's WebSocket address and the room,
/// from a user-facing URI such as `ws://127.0.0.1:8080/demo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomAddress {
    pub ws_url: String,
    pub room: String,
    /// `http(s)://host:port/` of the same server, for the pages.
    pub http_url: String,
}

impl RoomAddress {
    pub fn parse(uri: &str) -> Result<Self, String> {
        let url = url::Url::parse(uri).map_err(|err| format!("\"{uri}\" is not a URI: {err}"))?;
        let (http_scheme, ws_scheme) = match url.scheme() {
            "ws" | "http" => ("http", "ws"),
            "wss" | "https" => ("https", "wss"),
            other => {
                return Err(format!(
                    "\"{uri}\": scheme \"{other}\" is not ws, wss, http or https"
                ));
            }
        };
        let host = url
            .host_str()
            .ok_or_else(|| format!("\"{uri}\" has no host"))?;
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_owned()
        };
        let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
        let room = url.path().trim_matches('/');
        let room = match room {
            "" => "default".to_owned(),
            room if protocol::is_valid_name(room) => room.to_owned(),
            room => {
                return Err(format!(
                    "\"{uri}\": room \"{room}\" is not 1-64 characters of A-Z a-z 0-9 . _ -"
                ));
            }
        };
        Ok(RoomAddress {
            ws_url: format!("{ws_scheme}://{host}{port}/ws"),
            http_url: format!("{http_scheme}://{host}{port}/"),
            room,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_address_from_uri() {
        let address = RoomAddress::parse("ws://127.0.0.1:8080/demo").unwrap();
        assert_eq!(address.ws_url, "ws://127.0.0.1:8080/ws");
        assert_eq!(address.http_url, "http://127.0.0.1:8080/");
        assert_eq!(address.room, "demo");
        let address = RoomAddress::parse("wss://example.org/").unwrap();
        assert_eq!(
            (address.ws_url.as_str(), address.room.as_str()),
            ("wss://example.org/ws", "default")
        );
        assert!(RoomAddress::parse("ftp://x/y").unwrap_err().contains("ftp"));
        assert!(
            RoomAddress::parse("ws://x/a/b")
                .unwrap_err()
                .contains("a/b")
        );
    }
}
