//! Request parameters: the query string merged with a JSON, form-urlencoded or multipart body
//! (`barong::api::params::Params::parse`, what every REST handler's extractor runs).
//!
//! Input: the first line is the content type, the second the query string, the rest the body.
//!
//! Shared by the cargo-fuzz target `fuzz/fuzz_targets/params.rs` and the stable replay in
//! `tests/it/fuzz_replay.rs`.

use std::sync::OnceLock;

use axum::body::Body;
use barong::api::params::Params;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
    })
}

/// Splits off one line (up to `\n`), leaving the rest.
fn line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|b| *b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[]),
    }
}

/// One input: must never panic.
pub fn run(data: &[u8]) {
    let (content_type, rest) = line(data);
    let (query, body) = line(rest);
    let content_type = String::from_utf8_lossy(content_type);
    let query = String::from_utf8_lossy(query);
    let body = Body::from(body.to_vec());
    let limit = 4096;
    let parsed = runtime().block_on(Params::parse(&content_type, Some(&query), body, limit));
    if let Ok(params) = parsed {
        // Whatever was accepted must serialise back (handlers log and echo parameters).
        let _ = serde_json::to_string(&params.0).expect("serialisable");
    }
}
