//! The floor of Envoy's gRPC `ext_authz` in `benches/load.sh`: a bare
//! `envoy.service.auth.v3.Authorization/Check` server on the runtime settings of barong's gRPC
//! listener (default multi-thread Tokio runtime, hyper-util's auto builder, `TCP_NODELAY`, the
//! tonic service per connection), answering every check with what an allow looks like: `OK`,
//! `Authorization: Bearer` set to a real RS256 token signed once at start, the API-key headers
//! removed. No decision, no cache, no signing per request.
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

use clap::Parser;
use envoy_types::ext_authz::v3::pb::{
    Authorization, AuthorizationServer, CheckRequest, CheckResponse, HeaderAppendAction,
    HeaderValue as EnvoyHeader, HeaderValueOption, HttpResponse, OkHttpResponse,
};
use envoy_types::pb::google::rpc;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

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
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(_) => continue,
            },
            _ = tokio::signal::ctrl_c() => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(service.clone());
        let builder = builder.clone();
        tokio::spawn(async move {
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
