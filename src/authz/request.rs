//! What a gateway sends, reduced to what the decision reads.

use std::net::IpAddr;

use http::{HeaderMap, Method};

/// The route prefix of decisions; what follows is the original path without its leading slash.
pub const AUTH_PREFIX: &str = "/api/v2/auth/";

/// One decision request.
#[derive(Debug, Clone)]
pub struct AuthzRequest<'a> {
    /// The verb of the original request (nginx sends it in `X-Original-Method`).
    pub method: Method,
    /// The original path without leading slash and query, e.g. `api/v2/barong/resource/users/me`.
    pub path: &'a str,
    /// The original query string, for audit records.
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub client_ip: IpAddr,
}

/// The original path: after `/api/v2/auth/`, or nginx's `X-Original-URI` when the subrequest
/// path carries nothing. A trailing `.json`-style format suffix is dropped as Rails drops it.
pub fn original_path<'a>(uri_path: &'a str, headers: &'a HeaderMap) -> Option<&'a str> {
    let path = uri_path
        .strip_prefix(AUTH_PREFIX)
        .or_else(|| (uri_path == "/api/v2/auth").then_some(""))?;
    if path.is_empty()
        && let Some(original) = headers.get("x-original-uri").and_then(|v| v.to_str().ok())
    {
        let original = original.split('?').next().unwrap_or("");
        return Some(strip_format(original.trim_start_matches('/')));
    }
    Some(strip_format(path))
}

/// Rails' glob route splits a final `.ext` off as the format.
fn strip_format(path: &str) -> &str {
    let last_segment_start = path.rfind('/').map_or(0, |i| i + 1);
    match path[last_segment_start..].rfind('.') {
        Some(dot) if dot > 0 => &path[..last_segment_start + dot],
        _ => path,
    }
}

/// nginx's subrequest is always a GET: the real verb arrives in `X-Original-Method`.
pub fn original_method(method: &Method, headers: &HeaderMap) -> Method {
    headers
        .get("x-original-method")
        .or_else(|| headers.get("x-forwarded-method"))
        .and_then(|v| Method::from_bytes(v.as_bytes()).ok())
        .unwrap_or_else(|| method.clone())
}

/// The value of cookie `name` from every `Cookie` header, if present and non-empty.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim_matches('"'))
        .filter(|value| !value.is_empty())
}

/// A header as text; `None` when absent or not visible ASCII.
pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
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
            original_path("/api/v2/auth/api/v2/x/y.json", &none),
            Some("api/v2/x/y")
        );
        assert_eq!(original_path("/api/v2/auth/a.b/c", &none), Some("a.b/c"));
        assert_eq!(original_path("/elsewhere", &none), None);
        let nginx = headers(&[("x-original-uri", "/api/v2/peatio/orders?limit=1")]);
        assert_eq!(
            original_path("/api/v2/auth/", &nginx),
            Some("api/v2/peatio/orders")
        );
        assert_eq!(
            original_path("/api/v2/auth", &nginx),
            Some("api/v2/peatio/orders")
        );
    }

    #[test]
    fn method_and_cookie() {
        let h = headers(&[
            ("x-original-method", "DELETE"),
            ("cookie", "a=1; _barong_session=abc; b=2"),
        ]);
        assert_eq!(original_method(&Method::GET, &h), Method::DELETE);
        assert_eq!(
            original_method(&Method::POST, &HeaderMap::new()),
            Method::POST
        );
        assert_eq!(cookie(&h, "_barong_session"), Some("abc"));
        assert_eq!(cookie(&h, "missing"), None);
        let empty = headers(&[("cookie", "_barong_session=")]);
        assert_eq!(cookie(&empty, "_barong_session"), None);
    }
}
