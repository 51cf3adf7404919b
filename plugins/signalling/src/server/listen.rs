//! The accept loop, for HTTP and HTTPS alike: connection caps (total and
//! per address), a deadline on TLS handshakes and on request headers (a
//! client sending a request slowly, or nothing at all, is closed), and an
//! accept that backs off when the process is out of file descriptors
//! instead of spinning.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// How many connections the server takes, and how long it waits for them.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Open TCP connections at once, WebSockets included; beyond, new ones
    /// are refused (503) until some close.
    pub max_connections: usize,
    /// Open connections from one IP address at once.
    pub max_connections_per_ip: usize,
    /// A request's headers must have arrived this long after the
    /// connection opened (or the previous request ended).
    pub header_read_timeout: Duration,
    /// A TLS handshake must be done within this.
    pub tls_handshake_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 10_000,
            max_connections_per_ip: 1_000,
            header_read_timeout: Duration::from_secs(10),
            tls_handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// Open connections, in total and by address.
#[derive(Default)]
struct Census {
    total: usize,
    by_ip: HashMap<IpAddr, usize>,
}

/// One admitted connection; it is counted until this drops.
struct Admitted {
    census: Arc<Mutex<Census>>,
    ip: IpAddr,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut census = self.census.lock().unwrap_or_else(|p| p.into_inner());
        census.total -= 1;
        if let Some(count) = census.by_ip.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                census.by_ip.remove(&self.ip);
            }
        }
    }
}

/// Why a connection was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    ServerFull,
    AddressFull,
}

fn admit(
    census: &Arc<Mutex<Census>>,
    ip: IpAddr,
    limits: &ConnectionLimits,
) -> Result<Admitted, Refusal> {
    let mut counts = census.lock().unwrap_or_else(|p| p.into_inner());
    if counts.total >= limits.max_connections {
        return Err(Refusal::ServerFull);
    }
    let from_ip = counts.by_ip.entry(ip).or_default();
    if *from_ip >= limits.max_connections_per_ip {
        return Err(Refusal::AddressFull);
    }
    *from_ip += 1;
    counts.total += 1;
    Ok(Admitted {
        census: census.clone(),
        ip,
    })
}

/// Serves `app` on `listener` until `shutdown` resolves, over TLS when a
/// configuration is given.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let census = Arc::new(Mutex::new(Census::default()));
    let limits = Arc::new(limits);
    // Tells open HTTP connections to finish their request and close.
    let (stopping, stop) = watch::channel(false);
    tokio::pin!(shutdown);
    let mut backoff = Duration::from_millis(10);
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, remote) = match accepted {
            Ok(accepted) => {
                backoff = Duration::from_millis(10);
                accepted
            }
            Err(err) if is_per_connection(&err) => continue,
            Err(err) => {
                // Out of file descriptors (EMFILE/ENFILE) or memory: nothing
                // to accept with until connections close, so wait instead
                // of spinning on the error.
                tracing::warn!(%err, ?backoff, "cannot accept connections");
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let admitted = match admit(&census, remote.ip(), &limits) {
            Ok(admitted) => admitted,
            Err(refusal) => {
                refuse(stream, acceptor.is_none(), refusal, remote);
                continue;
            }
        };
        // Relayed messages are small and latency-bound: no Nagle.
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let limits = limits.clone();
        let acceptor = acceptor.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            match acceptor {
                None => {
                    let stream = Counted {
                        stream,
                        _admitted: admitted,
                    };
                    serve_http(stream, app, &limits, stop, remote).await
                }
                Some(acceptor) => {
                    let handshake = acceptor.accept(stream);
                    match tokio::time::timeout(limits.tls_handshake_timeout, handshake).await {
                        Ok(Ok(stream)) => {
                            let stream = Counted {
                                stream,
                                _admitted: admitted,
                            };
                            serve_http(stream, app, &limits, stop, remote).await
                        }
                        Ok(Err(err)) => tracing::debug!(%remote, %err, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%remote, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
    let _ = stopping.send(true);
}

/// A connection's stream with its place in the census: the place is given
/// back when the stream is dropped, which for a WebSocket is when the
/// socket closes, long after the HTTP connection that upgraded it ended.
struct Counted<S> {
    stream: S,
    _admitted: Admitted,
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Errors that concern only the connection being accepted.
fn is_per_connection(err: &std::io::Error) -> bool {
    matches!(
        err.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

/// Tells a plain-HTTP client why it is turned away, without waiting on
/// it: a client at the cap may be the one flooding.
fn refuse(stream: TcpStream, plain: bool, refusal: Refusal, remote: SocketAddr) {
    tracing::debug!(%remote, ?refusal, "connection refused");
    if !plain {
        return;
    }
    let why = match refusal {
        Refusal::ServerFull => "the server holds its maximum of connections\n",
        Refusal::AddressFull => "too many connections from your address\n",
    };
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nContent-Type: text/plain\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{why}",
        why.len()
    );
    let _ = stream.try_write(response.as_bytes());
}

/// HTTP/1.1 (with upgrades to WebSocket) on one connection. Not the
/// auto-detecting builder: its wait for an HTTP/2 preface has no
/// deadline, so a silent client would hold the connection forever.
async fn serve_http<S>(
    stream: S,
    app: Router,
    limits: &ConnectionLimits,
    mut stop: watch::Receiver<bool>,
    remote: SocketAddr,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // Handlers that limit by address (WHIP/WHEP POSTs) read it here.
    let app = app.layer(axum::Extension(axum::extract::ConnectInfo(remote)));
    let service = TowerToHyperService::new(app);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let connection = builder
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(connection);
    let stopping = async move {
        let _ = stop.wait_for(|stopping| *stopping).await;
    };
    let served = tokio::select! {
        served = connection.as_mut() => served,
        () = stopping => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(err) = served {
        tracing::debug!(%remote, %err, "HTTP connection ended");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_census_caps_in_total_and_per_address_and_frees_on_drop() {
        let census = Arc::new(Mutex::new(Census::default()));
        let limits = ConnectionLimits {
            max_connections: 3,
            max_connections_per_ip: 2,
            ..ConnectionLimits::default()
        };
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let first = admit(&census, a, &limits).unwrap();
        let _second = admit(&census, a, &limits).unwrap();
        assert_eq!(admit(&census, a, &limits).err(), Some(Refusal::AddressFull));
        let _third = admit(&census, b, &limits).unwrap();
        assert_eq!(admit(&census, b, &limits).err(), Some(Refusal::ServerFull));
        drop(first);
        assert!(admit(&census, a, &limits).is_ok());
        assert_eq!(census.lock().unwrap().total, 2);
    }
}
