//! The authz request parser: the original path (URL or `X-Original-URI`), the verb
//! (`X-Original-Method`), the session cookie, the client address (`X-Forwarded-For`,
//! `Client-Ip`, `True-Client-Ip`) and the API-key headers (nonce, HMAC signature).
//!
//! Input: the first line is the request path, every other line a `name: value` header.
//!
//! Shared by the cargo-fuzz target `fuzz/fuzz_targets/authz_request.rs` and the stable replay in
//! `tests/fuzz_replay.rs`.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::OnceLock;

use aws_lc_rs::hmac;
use barong::authz::apikey::{parse_nonce, signature_matches};
use barong::authz::request::{cookie, header, original_method, original_path};
use barong::domain::client_ip::client_ip;
use barong::domain::session_key;
use http::{HeaderMap, HeaderName, HeaderValue, Method};

fn key() -> &'static hmac::Key {
    static KEY: OnceLock<hmac::Key> = OnceLock::new();
    KEY.get_or_init(|| hmac::Key::new(hmac::HMAC_SHA256, b"0123456789abcdef0123456789abcdef"))
}

/// One input: must never panic.
pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let path = lines.next().unwrap_or("");
    let mut headers = HeaderMap::new();
    for line in lines {
        if let Some((name, value)) = line.split_once(':')
            && let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.trim().as_bytes()),
                HeaderValue::from_bytes(value.trim().as_bytes()),
            )
        {
            headers.append(name, value);
        }
    }
    // The URL path as hyper would hand it over, and with the prefix forced on.
    for uri_path in [path.to_owned(), format!("/api/v2/auth/{path}")] {
        if let Some(original) = original_path(&uri_path, &headers) {
            assert!(!original.starts_with('/') || uri_path.contains("//"));
        }
    }
    let _ = original_method(&Method::GET, &headers);
    if let Some(value) = cookie(&headers, "_barong_session") {
        assert!(!value.is_empty());
        let _ = session_key(value);
    }
    let peer = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    let _ = client_ip(&headers, peer, false);
    let _ = client_ip(&headers, peer, true);
    let kid = header(&headers, "x-auth-apikey").unwrap_or("");
    let nonce = header(&headers, "x-auth-nonce").unwrap_or("");
    let signature = header(&headers, "x-auth-signature").unwrap_or("");
    let _ = parse_nonce(nonce);
    let _ = signature_matches(key(), nonce, kid, signature);
}
