//! The authz request parser: the original path (URL or `X-Original-URI`) and its canonical
//! form, the verb (`X-Original-Method`, method overrides), the session cookie, the client address
//! (`X-Forwarded-For`, `Client-Ip`, `True-Client-Ip`) and the API-key headers (nonce, HMAC
//! signature).
//!
//! The canonical path is checked against its invariants: canonicalising it again changes
//! nothing, and it never holds what the decision refuses (control bytes, `\`, `;`, `%25`, an
//! encoded `/` or `.`, empty or dot segments).
//!
//! Input: the first line is the request path, every other line a `name: value` header.
//!
//! Shared by the cargo-fuzz target `fuzz/fuzz_targets/authz_request.rs` and the stable replay in
//! `tests/it/fuzz_replay.rs`.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::OnceLock;

use barong::authz::apikey::{KeyMac, parse_nonce, signature_matches};
use barong::authz::path::canonical;
use barong::authz::request::{Present, header, original_method, original_path, override_method};
use barong::domain::{SessionCookie, TrustedProxies, session_cookie, session_key};
use http::{HeaderMap, HeaderName, HeaderValue, Method};

fn key() -> &'static KeyMac {
    static KEY: OnceLock<Option<KeyMac>> = OnceLock::new();
    KEY.get_or_init(|| KeyMac::new("HS256", b"0123456789abcdef0123456789abcdef"))
        .as_ref()
        .expect("HS256 is known")
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
            check_canonical(original);
        }
    }
    check_canonical(path);
    // The one-pass presence check must see every header a lookup by name would find: a miss
    // would let an override or an API key go unjudged.
    let present = Present::of(&headers);
    let has = |names: &[&str]| names.iter().any(|name| headers.contains_key(*name));
    assert_eq!(present.request_id(), has(&["x-request-id"]));
    assert_eq!(
        present.original_method(),
        has(&["x-original-method", "x-forwarded-method"])
    );
    assert_eq!(
        present.override_header(),
        has(&[
            "x-http-method-override",
            "x-method-override",
            "x-http-method"
        ])
    );
    assert_eq!(
        present.api_key(),
        has(&["x-auth-apikey", "x-auth-nonce", "x-auth-signature"])
    );
    assert_eq!(present.cookie(), has(&["cookie"]));
    let _ = original_method(&Method::GET, &headers, present);
    let _ = override_method(&headers, present, path.split_once('?').map(|(_, q)| q));
    if let SessionCookie::One(value) = session_cookie(&headers, "_barong_session") {
        assert!(!value.is_empty());
        // Any bytes (a value outside ASCII names no session); the REST listener keys the UTF-8
        // ones, as `api::meta` does.
        if let Ok(text) = std::str::from_utf8(value) {
            let _ = session_key(text);
        }
    }
    let peer = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    let rails = TrustedProxies::default();
    let _ = rails.client_ip(&headers, peer);
    let every_header = TrustedProxies {
        client_ip_header: true,
        true_client_ip: true,
        ..TrustedProxies::default()
    };
    let _ = every_header.client_ip(&headers, peer);
    // An untrusted peer is its own client, whatever the headers say.
    let outside = IpAddr::V4(Ipv4Addr::new(8, 8, 8, 8));
    assert_eq!(every_header.client_ip(&headers, outside), outside);
    let kid = header(&headers, "x-auth-apikey").unwrap_or("");
    let nonce = header(&headers, "x-auth-nonce").unwrap_or("");
    let signature = header(&headers, "x-auth-signature").unwrap_or("");
    let _ = parse_nonce(nonce.as_bytes());
    let _ = signature_matches(key(), nonce.as_bytes(), kid, signature.as_bytes());
}

/// The invariants of the canonical path.
fn check_canonical(raw: &str) {
    let Ok(path) = canonical(raw) else {
        return;
    };
    assert_eq!(
        canonical(&path).as_deref(),
        Ok(&*path),
        "not idempotent: {raw:?}"
    );
    assert!(path.is_ascii(), "{raw:?} -> {path:?}");
    assert!(
        !path
            .bytes()
            .any(|b| b < 0x20 || b == 0x7f || b == b'\\' || b == b';'),
        "{raw:?} -> {path:?}"
    );
    let upper = path.to_ascii_uppercase();
    for refused in ["%25", "%2F", "%2E", "%5C", "%00", "%3B"] {
        assert!(!upper.contains(refused), "{raw:?} -> {path:?}");
    }
    if !path.is_empty() {
        assert!(
            path.split('/')
                .all(|s| !s.is_empty() && s != "." && s != ".."),
            "{raw:?} -> {path:?}"
        );
    }
}
