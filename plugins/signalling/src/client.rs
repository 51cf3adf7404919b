//! The WebSocket client the elements and apps use: a thin shell that turns
//! the socket into a sender of [`ClientMessage`]s and a stream of
//! [`ClientEvent`]s.

use std::time::Duration;

use async_tungstenite::tokio::connect_async_with_tls_connector_and_config;
use async_tungstenite::tungstenite::Message;
use async_tungstenite::tungstenite::protocol::WebSocketConfig;
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

/// How long opening the connection (TCP, TLS, the WebSocket upgrade) may
/// take: a server that does not answer (a dropped SYN, a half-open
/// proxy) must not hold the elements' reconnect loop for the kernel's
/// two-minute TCP timeout.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest message or frame accepted from the server. Our server sends
/// nothing near this (its own limit is 64 KiB a message, `list` replies
/// being the largest); a server that sends more is broken or hostile and
/// the connection ends rather than the element buffering it.
pub const MAX_MESSAGE_BYTES: usize = 4 << 20;

/// Waits between attempts to reach a server that went away: from 250 ms,
/// doubling up to 2 s (a restarted server is found within 2.5 s of
/// coming back), each with ±25% jitter so that every peer of a
/// restarted server does not knock at once.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Backoff {
    pub const FIRST: Duration = Duration::from_millis(250);
    pub const MAX: Duration = Duration::from_secs(2);

    /// The wait before the next attempt (and the one after grows).
    pub fn next_wait(&mut self) -> Duration {
        use rand::Rng;
        let wait = self.next.mul_f64(rand::rng().random_range(0.75..1.25));
        self.next = (self.next * 2).min(Self::MAX);
        wait
    }

    /// Back to the first wait, once connected and registered again.
    pub fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: Self::FIRST }
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
    let (outgoing, events_rx) = open(
        url,
        extra_roots_pem,
        |text: &str| match protocol::decode_server_message(text) {
            Ok(message) => ClientEvent::Message(message),
            Err(err) => ClientEvent::Undecodable(format!("{err}: {text}")),
        },
        |why| ClientEvent::Closed(format!("signalling {why}")),
    )
    .await?;
    // Encoding happens on the caller's side of the channel, so the
    // socket's writer is the same for every dialect.
    let (typed, mut typed_rx) = mpsc::unbounded_channel::<ClientMessage>();
    tokio::spawn(async move {
        while let Some(message) = typed_rx.recv().await {
            if outgoing
                .send(protocol::encode_client_message(&message))
                .is_err()
            {
                return;
            }
        }
    });
    Ok((ClientSender { outgoing: typed }, events_rx))
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
    open(
        url,
        extra_roots_pem,
        |text: &str| TextEvent::Text(text.to_owned()),
        TextEvent::Closed,
    )
    .await
}

/// Opens the WebSocket (within [`CONNECT_TIMEOUT`], frames bounded by
/// [`MAX_MESSAGE_BYTES`]) and starts its writer and reader tasks: text
/// sent on the returned sender is written in order (dropping it closes the
/// connection); each text frame read becomes `event(text)`, and the end of
/// the connection `closed(why)`, once.
async fn open<E: Send + 'static>(
    url: &str,
    extra_roots_pem: Option<&[u8]>,
    event: impl Fn(&str) -> E + Send + 'static,
    closed: impl FnOnce(String) -> E + Send + 'static,
) -> Result<(mpsc::UnboundedSender<String>, mpsc::UnboundedReceiver<E>), ClientError> {
    let connect_error = |reason: String| ClientError::Connect {
        url: url.to_owned(),
        reason,
    };
    let connector = match extra_roots_pem {
        Some(pem) => Some(tls_connector(pem).map_err(connect_error)?),
        None => None,
    };
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE_BYTES))
        .max_frame_size(Some(MAX_MESSAGE_BYTES));
    let opening = connect_async_with_tls_connector_and_config(url, connector, Some(config));
    let (socket, _response) = tokio::time::timeout(CONNECT_TIMEOUT, opening)
        .await
        .map_err(|_| connect_error(format!("no answer within {} s", CONNECT_TIMEOUT.as_secs())))?
        .map_err(|err| connect_error(err.to_string()))?;
    let (mut sink, mut stream) = socket.split();
    let (outgoing, mut outgoing_rx) = mpsc::unbounded_channel::<String>();
    let (events, events_rx) = mpsc::unbounded_channel::<E>();
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
                    if events.send(event(text.as_str())).is_err() {
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
        let _ = events.send(closed(reason));
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

#[cfg(test)]
mod connection_tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A server that takes the TCP connection and then says nothing.
    #[tokio::test(start_paused = true)]
    async fn a_server_that_never_answers_fails_the_connect_at_the_deadline() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/ws", listener.local_addr().unwrap());
        let _held = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            std::future::pending::<()>().await;
            drop(socket);
        });
        let started = tokio::time::Instant::now();
        let err = connect(&url).await.expect_err("no answer, no connection");
        assert_eq!(started.elapsed(), CONNECT_TIMEOUT);
        assert!(err.to_string().contains("no answer within 10 s"), "{err}");
    }

    #[test]
    fn backoff_doubles_to_its_cap_with_jitter_and_resets() {
        let mut backoff = Backoff::default();
        for base_ms in [250.0, 500.0, 1000.0, 2000.0, 2000.0, 2000.0] {
            let wait = backoff.next_wait().as_secs_f64() * 1000.0;
            assert!(
                (base_ms * 0.75..=base_ms * 1.25).contains(&wait),
                "{wait} ms for {base_ms}"
            );
        }
        backoff.reset();
        assert!(backoff.next_wait() <= Backoff::FIRST.mul_f64(1.25));
    }

    /// A server that sends more than any message of ours could be.
    #[tokio::test]
    async fn an_oversized_message_from_the_server_ends_the_connection_saying_why() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/ws", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            let mut ws = async_tungstenite::tokio::accept_async(socket)
                .await
                .unwrap();
            let huge = "x".repeat(MAX_MESSAGE_BYTES + 1);
            let _ = ws.send(Message::Text(huge.into())).await;
            let _ = ws.send(Message::Text("after".into())).await;
            std::future::pending::<()>().await;
        });
        let (_sender, mut events) = connect(&url).await.unwrap();
        match events.recv().await {
            Some(ClientEvent::Closed(why)) => {
                assert!(why.contains("too long") || why.contains("too big"), "{why}")
            }
            other => panic!("expected the connection to end, got {other:?}"),
        }
    }
}
