//! The accept loop both listeners run: plain TCP or TLS (rustls, with a handshake timeout),
//! HTTP/1.1 and HTTP/2 (ALPN `h2`, or h2c by preface), graceful on shutdown.

use std::convert::Infallible;
use std::error::Error as StdError;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::{Body, Incoming};
use hyper::service::Service;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::{self, HttpServerConnExec};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::deadline::{HeadDeadline, InFlight};
use super::tls::TlsReloader;

/// A client that has not finished its TLS handshake by then is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long in-flight requests may run on after shutdown before their connections are closed.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

type BoxError = Box<dyn StdError + Send + Sync>;

/// Per-connection limits against slow and oversized clients (`BARONG_HEADER_READ_TIMEOUT`,
/// `BARONG_MAX_HEADER_SIZE`).
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// A request head (or, on an idle keep-alive connection, the next one) must arrive in
    /// full within this time, else the connection is closed.
    pub header_read_timeout: Duration,
    /// Largest request head, bytes (HTTP/1: 431 above; HTTP/2: the header list size).
    pub max_header_size: usize,
}

impl ConnLimits {
    /// The HTTP/1 and HTTP/2 connection builder with these limits.
    fn builder(self) -> auto::Builder<TokioExecutor> {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        // No hyper header-read timer: `deadline::HeadDeadline` keeps that promise for far less.
        //
        // Half-close: without it, hyper looks for the client's EOF while a request is being
        // answered, and to look it first reserves read space. The request's header values
        // are slices of that buffer and live until the answer is made, so the reserve could
        // never reuse it: every request allocated a fresh 8 KiB buffer and its shared header,
        // and freed the last two (about 1,150 instructions of every answer, callgrind's
        // `BytesMut::reserve_inner`, docs/benchmarks.md, tenth pass). A client that half-closes
        // after its request now gets its answer, and the connection closes after it.
        builder
            .http1()
            .max_buf_size(self.max_header_size)
            .half_close(true);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(self.max_header_size).unwrap_or(u32::MAX))
            // A peer that stops answering pings is dropped after the same grace.
            .keep_alive_interval(Some(self.header_read_timeout))
            .keep_alive_timeout(self.header_read_timeout);
        builder
    }
}

/// Accepts on `listener` until `shutdown`, serving each connection with `service_for(peer)`,
/// over TLS when `tls` is given; then waits (at most [`DRAIN_TIMEOUT`]) for open connections to
/// finish their requests.
pub async fn serve_connections<F, S, B>(
    name: &'static str,
    listener: TcpListener,
    tls: Option<Arc<TlsReloader>>,
    service_for: F,
    shutdown: CancellationToken,
    limits: ConnLimits,
) where
    F: Fn(SocketAddr) -> S,
    S: Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
    TokioExecutor: HttpServerConnExec<InFlight<S::Future>, B>,
{
    let graceful = GracefulShutdown::new();
    let builder = Arc::new(limits.builder());
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    tracing::warn!(listener = name, %error, "accept failed");
                    // Out of file descriptors and the like: do not spin.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let service = service_for(peer);
        // Subscribed before any shutdown signal this connection could miss.
        let watcher = graceful.watcher();
        let builder = builder.clone();
        match &tls {
            None => {
                let wait = limits.header_read_timeout;
                // A client that connects and sends nothing (the auto builder's version sniffing
                // reads without a timer) meets the head deadline, which runs from the
                // connection's opening: no timer or peek of its own.
                tokio::spawn(serve_io(
                    name,
                    builder,
                    TokioIo::new(stream),
                    service,
                    watcher,
                    wait,
                ));
            }
            Some(tls) => {
                let acceptor = tls.acceptor();
                let shutdown = shutdown.clone();
                let wait = limits.header_read_timeout;
                tokio::spawn(async move {
                    let handshake =
                        tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream));
                    let stream = tokio::select! {
                        done = handshake => match done {
                            Ok(Ok(stream)) => stream,
                            Ok(Err(error)) => {
                                tracing::debug!(listener = name, %peer, %error, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(listener = name, %peer, "TLS handshake timed out");
                                return;
                            }
                        },
                        () = shutdown.cancelled() => return,
                    };
                    serve_io(name, builder, TokioIo::new(stream), service, watcher, wait).await;
                });
            }
        }
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            listener = name,
            "connections still open after {} s; closing them",
            DRAIN_TIMEOUT.as_secs()
        );
    }
}

async fn serve_io<I, S, B>(
    name: &'static str,
    builder: Arc<auto::Builder<TokioExecutor>>,
    io: I,
    service: S,
    watcher: Watcher,
    header_read_timeout: Duration,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
    TokioExecutor: HttpServerConnExec<InFlight<S::Future>, B>,
{
    let deadline = HeadDeadline::start();
    let connection = builder.serve_connection_with_upgrades(io, deadline.service(service));
    let connection = watcher.watch(connection.into_owned());
    match deadline.guard(connection, header_read_timeout).await {
        Some(Ok(())) => {}
        Some(Err(error)) => {
            tracing::debug!(listener = name, %error, "connection closed with an error");
        }
        None => tracing::debug!(listener = name, "no request head within the header timeout"),
    }
}

/// The REST router as a per-connection hyper service that hands `ConnectInfo<SocketAddr>` to
/// the handlers, as `into_make_service_with_connect_info` does.
pub fn router_service(
    router: axum::Router,
    peer: SocketAddr,
) -> impl Service<
    Request<Incoming>,
    Response = Response<axum::body::Body>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<axum::body::Body>, Infallible>> + Send + 'static,
> + Send
+ 'static {
    use tower::ServiceExt;
    let service = router.map_request(move |mut request: Request<Incoming>| {
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        request
    });
    hyper_util::service::TowerToHyperService::new(service)
}
