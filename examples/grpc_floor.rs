//! The floor of Envoy's gRPC `ext_authz` in `benches/load.sh`: a bare
//! `envoy.service.auth.v3.Authorization/Check` server, the one tonic generates from Envoy's
//! protos (`envoy-types`), served by barong's own listener (`server::listen::serve_connections`
//! with barong's default limits: HTTP/2 keep-alive pings, the request-head deadline, graceful
//! shutdown) on the default multi-thread Tokio runtime. It answers every check with what an
//! allow looks like: `OK`, `Authorization: Bearer` set to a real RS256 token signed once at
//! start, the API-key headers removed. No decision, no cache, no signing per request.
//!
//! ```sh
//! cargo run --release --example grpc_floor -- --addr 127.0.0.1:8091
//! ```
//! Prints `grpc floor listening on ADDR` once ready; stops on SIGINT/SIGTERM.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test, bench or example fails loudly: a panic is its failure"
)]

use std::net::SocketAddr;
use std::time::Duration;

use barong::server::listen::{ConnLimits, serve_connections};

use clap::Parser;
use envoy_types::ext_authz::v3::pb::{
    Authorization, AuthorizationServer, CheckRequest, CheckResponse, HeaderAppendAction,
    HeaderValue as EnvoyHeader, HeaderValueOption, HttpResponse, OkHttpResponse,
};
use envoy_types::pb::google::rpc;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[path = "support/bearer.rs"]
mod bearer;

#[derive(Parser)]
struct Args {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:8091")]
    addr: SocketAddr,
}

/// Answers every check with the same allow.
struct Floor {
    allow: CheckResponse,
}

#[tonic::async_trait]
impl Authorization for Floor {
    async fn check(
        &self,
        _request: tonic::Request<CheckRequest>,
    ) -> Result<tonic::Response<CheckResponse>, tonic::Status> {
        Ok(tonic::Response::new(self.allow.clone()))
    }
}

fn allow() -> CheckResponse {
    let bearer = bearer::fixed_bearer();
    CheckResponse {
        status: Some(rpc::Status::default()),
        http_response: Some(HttpResponse::OkResponse(OkHttpResponse {
            headers: vec![HeaderValueOption {
                header: Some(EnvoyHeader {
                    key: "authorization".into(),
                    value: bearer.to_str().expect("ASCII token").to_owned(),
                    ..Default::default()
                }),
                append_action: HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
                ..Default::default()
            }],
            headers_to_remove: ["x-auth-apikey", "x-auth-nonce", "x-auth-signature"]
                .map(String::from)
                .to_vec(),
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn main() {
    let args = Args::parse();
    // Same as `cli::main`: `Runtime::new()`, one worker per core.
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(serve(args.addr));
}

async fn serve(addr: SocketAddr) {
    let service = AuthorizationServer::new(Floor { allow: allow() });
    let listener = TcpListener::bind(addr).await.expect("bind");
    println!(
        "grpc floor listening on {}",
        listener.local_addr().expect("addr")
    );
    // barong's defaults (`BARONG_HEADER_READ_TIMEOUT`, `BARONG_MAX_HEADER_SIZE`).
    let limits = ConnLimits {
        header_read_timeout: Duration::from_secs(10),
        max_header_size: 65536,
    };
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        stop.cancel();
    });
    serve_connections(
        "grpc-floor",
        listener,
        None,
        move |_peer| TowerToHyperService::new(service.clone()),
        shutdown,
        limits,
    )
    .await;
}
