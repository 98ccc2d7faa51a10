//! The physical baseline of `benches/load.sh`: a bare hyper server on the runtime settings of the
//! authz listener (`server::serve_authz`: default multi-thread Tokio runtime, hyper-util's auto
//! builder with upgrades, `TCP_NODELAY`, one task per connection, graceful-shutdown watcher),
//! answering every request with what an allow looks like: 200, empty body, `Content-Length: 0`
//! and an `Authorization: Bearer` header carrying a real RS256 token signed once at start (so
//! the bytes on the wire match). No decision, no cache, no signing per request.
//!
//! ```sh
//! cargo run --release --example baseline -- --addr 127.0.0.1:8090
//! ```
//! Prints `baseline listening on ADDR` once ready; stops on SIGINT/SIGTERM.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test, bench or example fails loudly: a panic is its failure"
)]

use std::convert::Infallible;
use std::net::SocketAddr;

use barong::server::deadline::HeadDeadline;
use bytes::Bytes;
use clap::Parser;
use http::{Response, header};
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

#[path = "support/bearer.rs"]
mod bearer;
use bearer::fixed_bearer;

#[derive(Parser)]
struct Args {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:8090")]
    addr: SocketAddr,
    /// Also arm hyper's HTTP/1 header-read timer (seconds), as barong's listeners do against
    /// slow clients (`BARONG_HEADER_READ_TIMEOUT`): the load script's second baseline, which
    /// prices that guard alone.
    #[arg(long)]
    header_read_timeout: Option<u64>,
    /// Guard every connection with barong's own request-head deadline instead (seconds;
    /// `server::deadline`), as barong's listeners do.
    #[arg(long)]
    head_deadline: Option<u64>,
    /// Spend this many microseconds of CPU on every request before answering: a floor that
    /// costs what a decision costs, so a proxied run can tell barong's CPU from anything else
    /// barong's answers do to the proxy (`benches/load.sh --spin-floor`).
    #[arg(long, default_value_t = 0)]
    work_us: u64,
}

fn main() {
    let args = Args::parse();
    // Same as `cli::main`: `Runtime::new()`, one worker per core.
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(serve(args));
}

async fn serve(args: Args) {
    let Args {
        addr,
        header_read_timeout,
        head_deadline,
        work_us,
    } = args;
    let bearer = fixed_bearer();
    let listener = TcpListener::bind(addr).await.expect("bind");
    println!(
        "baseline listening on {}",
        listener.local_addr().expect("addr")
    );
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // As barong's listeners (`server::listen`): HTTP/1 half-close allowed.
    builder.http1().half_close(true);
    if let Some(seconds) = header_read_timeout {
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(std::time::Duration::from_secs(seconds));
    }
    let stop = async {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {},
                _ = term.recv() => {},
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    };
    tokio::pin!(stop);
    loop {
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(_) => continue,
            },
            () = &mut stop => break,
        };
        let _ = stream.set_nodelay(true);
        let bearer = bearer.clone();
        let service = hyper::service::service_fn(move |_request| {
            let bearer = bearer.clone();
            async move {
                if work_us > 0 {
                    // Busy, not asleep: the point is the CPU, and a sleep would only add latency.
                    let started = std::time::Instant::now();
                    while started.elapsed() < std::time::Duration::from_micros(work_us) {
                        std::hint::spin_loop();
                    }
                }
                // hyper writes `Content-Length: 0` itself for an empty body, as for barong's.
                let mut response = Response::new(Full::new(Bytes::new()));
                response.headers_mut().insert(header::AUTHORIZATION, bearer);
                Ok::<_, Infallible>(response)
            }
        });
        let Some(seconds) = head_deadline else {
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            let connection = graceful.watch(connection.into_owned());
            tokio::spawn(async move {
                let _ = connection.await;
            });
            continue;
        };
        let deadline = HeadDeadline::start();
        let connection =
            builder.serve_connection_with_upgrades(TokioIo::new(stream), deadline.service(service));
        let connection = graceful.watch(connection.into_owned());
        tokio::spawn(async move {
            let _ = deadline
                .guard(connection, std::time::Duration::from_secs(seconds))
                .await;
        });
    }
}
