//! What a gateway sends, reduced to what the decision reads.

use std::net::IpAddr;

use http::header::{AsHeaderName, HeaderName};
use http::{HeaderMap, Method};

// Header names as constants: a name given as `&str` is parsed and hashed on every lookup
// (about 5 % of the server's CPU per decision, measured with perf; docs/benchmarks.md).
const X_ORIGINAL_URI: HeaderName = HeaderName::from_static("x-original-uri");
const X_ORIGINAL_METHOD: HeaderName = HeaderName::from_static("x-original-method");
const X_FORWARDED_METHOD: HeaderName = HeaderName::from_static("x-forwarded-method");
pub const X_CSRF_TOKEN: HeaderName = HeaderName::from_static("x-csrf-token");
pub const X_AUTH_APIKEY: HeaderName = HeaderName::from_static("x-auth-apikey");
pub const X_AUTH_NONCE: HeaderName = HeaderName::from_static("x-auth-nonce");
pub const X_AUTH_SIGNATURE: HeaderName = HeaderName::from_static("x-auth-signature");

/// Which of the optional headers the decision asks about a request carries, found in one pass
/// over its header names. Most requests carry none of them, and a miss in a `HeaderMap` costs
/// a hash and a probe per name: about a dozen per decision before this (callgrind, 2026-12-03,
/// `docs/benchmarks.md`). Made only by [`Present::of`] (no `Default`): an empty set that never
/// looked at the headers would let an override or an API key go unjudged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Present(u8);

impl Present {
    const REQUEST_ID: u8 = 1;
    const ORIGINAL_METHOD: u8 = 1 << 1;
    const OVERRIDE: u8 = 1 << 2;
    const API_KEY: u8 = 1 << 3;
    const FORWARDING: u8 = 1 << 4;
    const COOKIE: u8 = 1 << 5;

    /// Every name is compared in full: a header counts only under its exact (lower-case, as
    /// `HeaderName` keeps it) name, as `HeaderMap::get` would find it.
    pub fn of(headers: &HeaderMap) -> Self {
        let mut bits = 0;
        for name in headers.keys() {
            let name = name.as_str();
            bits |= match name {
                // `domain::client_ip::FORWARDING_HEADERS` (a test holds the two together).
                "x-forwarded-for" | "client-ip" | "true-client-ip" => Self::FORWARDING,
                "cookie" => Self::COOKIE,
                _ if !name.starts_with("x-") => 0,
                "x-request-id" => Self::REQUEST_ID,
                "x-original-method" | "x-forwarded-method" => Self::ORIGINAL_METHOD,
                "x-http-method-override" | "x-method-override" | "x-http-method" => Self::OVERRIDE,
                "x-auth-apikey" | "x-auth-nonce" | "x-auth-signature" => Self::API_KEY,
                _ => 0,
            };
        }
        Self(bits)
    }

    /// `X-Request-Id` is there.
    pub fn request_id(self) -> bool {
        self.0 & Self::REQUEST_ID != 0
    }

    /// One of the headers of [`original_method`] is there.
    pub fn original_method(self) -> bool {
        self.0 & Self::ORIGINAL_METHOD != 0
    }

    /// One of the method-override headers of [`override_method`] is there.
    pub fn override_header(self) -> bool {
        self.0 & Self::OVERRIDE != 0
    }

    /// One of the API-key headers is there: the request authenticates with a key.
    pub fn api_key(self) -> bool {
        self.0 & Self::API_KEY != 0
    }

    /// One of `domain::client_ip::FORWARDING_HEADERS` is there: the client may be someone
    /// else than the peer.
    pub fn forwarding(self) -> bool {
        self.0 & Self::FORWARDING != 0
    }

    /// A `Cookie` header is there: without one, no session cookie is looked for (a miss in
    /// the map costs about 110 instructions of every deny without a session).
    pub fn cookie(self) -> bool {
        self.0 & Self::COOKIE != 0
    }
}

/// The route prefix of decisions; what follows is the original path without its leading slash.
pub const AUTH_PREFIX: &str = "/api/v2/auth/";

/// One decision request.
#[derive(Debug, Clone)]
pub struct AuthzRequest<'a> {
    /// The verb of the original request (nginx sends it in `X-Original-Method`).
    pub method: Method,
    /// The verb a method-override header or `_method` asks the upstream to run instead.
    pub override_method: Option<Method>,
    /// Which optional headers the request carries (`Present::of`, made once by the front):
    /// with an API-key header it authenticates with the key, not the cookie; without a
    /// `Cookie` header no session cookie is looked for.
    pub present: Present,
    /// The canonical original path (`path::canonical`), without leading slash and query, e.g.
    /// `api/v2/barong/resource/users/me`.
    pub path: &'a str,
    /// The original query string, for audit records.
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub client_ip: IpAddr,
    /// The decision's clock (coarse, `crate::clock::Tick`), read once when it starts: every
    /// cache read and the token reuse of this decision judge expiry against it (a decision
    /// used to make six clock reads).
    pub now: crate::clock::Tick,
}

/// The original path as sent, still to be canonicalised (`path::canonical`): after
/// `/api/v2/auth/`, or nginx's `X-Original-URI` when the subrequest path carries nothing. Only
/// the one leading `/` is removed, so `//x` stays visible as an empty segment.
pub fn original_path<'a>(uri_path: &'a str, headers: &'a HeaderMap) -> Option<&'a str> {
    let path = uri_path
        .strip_prefix(AUTH_PREFIX)
        .or_else(|| (uri_path == "/api/v2/auth").then_some(""))?;
    if path.is_empty()
        && let Some(original) = headers.get(X_ORIGINAL_URI).and_then(|v| v.to_str().ok())
    {
        let original = original.split('?').next().unwrap_or("");
        return Some(original.strip_prefix('/').unwrap_or(original));
    }
    Some(path)
}

/// nginx's subrequest is always a GET: the real verb arrives in `X-Original-Method`.
pub fn original_method(method: &Method, headers: &HeaderMap, present: Present) -> Method {
    if !present.original_method() {
        return method.clone();
    }
    headers
        .get(X_ORIGINAL_METHOD)
        .or_else(|| headers.get(X_FORWARDED_METHOD))
        .and_then(|v| Method::from_bytes(v.as_bytes()).ok())
        .unwrap_or_else(|| method.clone())
}

/// A method override that is not one verb: refused rather than guessed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidOverride;

/// Headers and the query parameter with which Rails (`Rack::MethodOverride`), Laravel, Symfony
/// and others let a POST run as another verb.
static OVERRIDE_HEADERS: [HeaderName; 3] = [
    HeaderName::from_static("x-http-method-override"),
    HeaderName::from_static("x-method-override"),
    HeaderName::from_static("x-http-method"),
];

/// The verb an upstream may run instead of `method`, if the request asks for one: the decision
/// judges it as well, since the shipped configs strip these headers but another deployment may
/// not. A value that is not a valid verb is judged as `None` would be a way around: it is kept
/// as an error for the caller to refuse.
pub fn override_method(
    headers: &HeaderMap,
    present: Present,
    query: Option<&str>,
) -> Result<Option<Method>, InvalidOverride> {
    // The common case, checked without allocating: no override asked for. A query with any
    // escape is parsed, since `%5Fmethod` and `_m%65thod` are `_method` once decoded.
    let in_query = query.is_some_and(|q| q.contains("method") || q.contains('%'));
    if !in_query && !present.override_header() {
        return Ok(None);
    }
    let from_query = query.and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "_method")
            .map(|(_, v)| v.into_owned())
    });
    let mut found: Option<Method> = None;
    let values = OVERRIDE_HEADERS
        .iter()
        .flat_map(|name| headers.get_all(name).iter().map(|v| v.as_bytes().to_vec()))
        .chain(from_query.map(String::into_bytes));
    for value in values {
        let method = Method::from_bytes(value.trim_ascii().to_ascii_uppercase().as_slice())
            .map_err(|_| InvalidOverride)?;
        match &found {
            Some(other) if *other != method => return Err(InvalidOverride),
            _ => found = Some(method),
        }
    }
    Ok(found)
}

/// The first value of `X-Auth-Apikey`, `X-Auth-Nonce` and `X-Auth-Signature`, as
/// `HeaderMap::get` gives each, found in one pass over the headers: each `get` hashed its
/// custom name, about 100 instructions apiece (callgrind; docs/benchmarks.md, twelfth pass).
/// `iter` yields a name's values in order, so the first one seen is the one `get` returns.
pub fn api_key_headers(headers: &HeaderMap) -> [Option<&http::HeaderValue>; 3] {
    let mut found = [None; 3];
    for (name, value) in headers {
        // A standard name differs from these at its first comparison (another kind of name);
        // a custom one compares its length, then its bytes.
        let slot = if *name == X_AUTH_APIKEY {
            &mut found[0]
        } else if *name == X_AUTH_NONCE {
            &mut found[1]
        } else if *name == X_AUTH_SIGNATURE {
            &mut found[2]
        } else {
            continue;
        };
        slot.get_or_insert(value);
    }
    found
}

/// A header as text; `None` when absent or not visible ASCII.
pub fn header(headers: &HeaderMap, name: impl AsHeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(*k, v.parse().expect("value"));
        }
        map
    }

    #[test]
    fn paths_come_from_the_url_or_x_original_uri() {
        let none = HeaderMap::new();
        assert_eq!(
            original_path("/api/v2/auth/api/v2/x/y", &none),
            Some("api/v2/x/y")
        );
        assert_eq!(
            original_path("/api/v2/auth//api/v2/x", &none),
            Some("/api/v2/x")
        );
        assert_eq!(original_path("/elsewhere", &none), None);
        let nginx = headers(&[("x-original-uri", "/api/v2/peatio/orders.json?limit=1")]);
        assert_eq!(
            original_path("/api/v2/auth/", &nginx),
            Some("api/v2/peatio/orders.json")
        );
        assert_eq!(
            original_path("/api/v2/auth", &nginx),
            Some("api/v2/peatio/orders.json")
        );
        let doubled = headers(&[("x-original-uri", "//api/v2/x")]);
        assert_eq!(original_path("/api/v2/auth/", &doubled), Some("/api/v2/x"));
    }

    #[test]
    fn present_finds_exact_names_only() {
        let h = headers(&[
            ("x-request-id", "1"),
            ("x-auth-nonce", "2"),
            ("x-http-method-overrides", "DELETE"),
            ("cookie", "a=b"),
        ]);
        let present = Present::of(&h);
        assert!(present.request_id() && present.api_key() && present.cookie());
        assert!(!present.override_header() && !present.original_method());
        let h = headers(&[("x-forwarded-method", "PUT"), ("x-http-method", "PUT")]);
        let present = Present::of(&h);
        assert!(present.original_method() && present.override_header());
        assert!(!present.api_key() && !present.request_id() && !present.cookie());
        assert_eq!(Present::of(&HeaderMap::new()), Present(0));
    }

    #[test]
    fn present_knows_every_name_the_lookups_use() {
        let one = |name: &HeaderName| {
            let mut map = HeaderMap::new();
            map.insert(name.clone(), "x".parse().expect("value"));
            Present::of(&map)
        };
        assert!(one(&crate::observe::REQUEST_ID).request_id());
        assert!(one(&http::header::COOKIE).cookie());
        for name in [&X_ORIGINAL_METHOD, &X_FORWARDED_METHOD] {
            assert!(one(name).original_method(), "{name}");
        }
        for name in &OVERRIDE_HEADERS {
            assert!(one(name).override_header(), "{name}");
        }
        for name in [&X_AUTH_APIKEY, &X_AUTH_NONCE, &X_AUTH_SIGNATURE] {
            assert!(one(name).api_key(), "{name}");
        }
        for name in &crate::domain::client_ip::FORWARDING_HEADERS {
            assert!(one(name).forwarding(), "{name}");
        }
        for name in [
            "x-forwarded-host",
            "forwarded",
            "x-client-ip",
            "client-ips",
            "cookies",
        ] {
            let name = HeaderName::from_static(name);
            assert_eq!(one(&name), Present(0), "{name}");
        }
    }

    /// One pass finds what three `get`s would: each name's first value, with other headers,
    /// repeated names and names that only look alike around them.
    #[test]
    fn api_key_headers_are_what_get_finds() {
        let maps = [
            headers(&[]),
            headers(&[("x-auth-apikey", "k1")]),
            headers(&[
                ("user-agent", "ua"),
                ("x-auth-signature", "s1"),
                ("x-auth-nonce", "n1"),
                ("x-auth-apikey", "k1"),
                ("x-auth-apikey", "k2"),
                ("x-auth-nonce", "n2"),
                ("x-auth-apikeys", "no"),
                ("x-auth-nonc", "no"),
            ]),
            headers(&[("X-Auth-Signature", "s1"), ("x-auth-signature", "s2")]),
        ];
        for map in &maps {
            let expected = [&X_AUTH_APIKEY, &X_AUTH_NONCE, &X_AUTH_SIGNATURE].map(|n| map.get(n));
            assert_eq!(api_key_headers(map), expected, "{map:?}");
        }
    }

    /// The shortcut the decision takes when `forwarding()` is false gives what the full
    /// lookup gives, from any peer, trusted or not, with every setting.
    #[test]
    fn without_forwarding_headers_the_client_is_the_peer() {
        use crate::domain::client_ip::{TrustedProxies, peer_address};
        let h = headers(&[("x-real-ip", "1.2.3.4"), ("forwarded", "for=1.2.3.4")]);
        assert!(!Present::of(&h).forwarding());
        for (client_ip_header, true_client_ip) in [(false, false), (true, true)] {
            let trusted = TrustedProxies {
                client_ip_header,
                true_client_ip,
                ..TrustedProxies::default()
            };
            for peer in ["127.0.0.1", "10.1.2.3", "8.8.8.8", "::ffff:10.0.0.1", "::1"] {
                let peer: std::net::IpAddr = peer.parse().expect("ip");
                assert_eq!(trusted.client_ip(&h, peer), peer_address(peer), "{peer}");
            }
        }
    }

    #[test]
    fn method_and_overrides() {
        let h = headers(&[("x-original-method", "DELETE")]);
        assert_eq!(
            original_method(&Method::GET, &h, Present::of(&h)),
            Method::DELETE
        );
        assert_eq!(
            original_method(
                &Method::POST,
                &HeaderMap::new(),
                Present::of(&HeaderMap::new())
            ),
            Method::POST
        );
        assert_eq!(
            override_method(
                &HeaderMap::new(),
                Present::of(&HeaderMap::new()),
                Some("a=1")
            ),
            Ok(None)
        );
        let h = headers(&[("x-http-method-override", "delete")]);
        assert_eq!(
            override_method(&h, Present::of(&h), None),
            Ok(Some(Method::DELETE))
        );
        assert_eq!(
            override_method(
                &HeaderMap::new(),
                Present::of(&HeaderMap::new()),
                Some("_method=put")
            ),
            Ok(Some(Method::PUT))
        );
        let h = headers(&[("x-method-override", "PATCH"), ("x-http-method", "PATCH")]);
        assert_eq!(
            override_method(&h, Present::of(&h), None),
            Ok(Some(Method::PATCH))
        );
        let h = headers(&[("x-method-override", "PATCH")]);
        assert_eq!(
            override_method(&h, Present::of(&h), Some("_method=DELETE")),
            Err(InvalidOverride)
        );
        assert_eq!(
            override_method(
                &HeaderMap::new(),
                Present::of(&HeaderMap::new()),
                Some("%5Fm%65thod=delete")
            ),
            Ok(Some(Method::DELETE))
        );
        let h = headers(&[("x-http-method-override", "DE LETE")]);
        assert_eq!(
            override_method(&h, Present::of(&h), None),
            Err(InvalidOverride)
        );
    }
}
