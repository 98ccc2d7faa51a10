//! The HTTP front of the decision: Envoy's HTTP `ext_authz` and nginx's `auth_request` call
//! `ANY /api/v2/auth/{path}`; the same listener serves the JWKS and `/metrics`. Served straight
//! on hyper (no router, no middleware stack) because this is the hot path.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::Full;

use super::{Authz, Deny, Input, request};

/// Answers one request of the authz listener: a decision reads the original method, path and
/// query (nginx's in `X-Original-Method` and `X-Original-URI`) and the headers, and is made by
/// [`Authz::check`]. Every answer repeats the request id so the proxy can pass it on to the
/// upstream. `authz` is anything that leads to the `Authz`: an `Arc<Authz>`, or the listener's
/// per-connection [`ConnectionHandle`].
pub async fn handle<A, B>(
    authz: A,
    peer: SocketAddr,
    request: Request<B>,
) -> Result<Response<Full<Bytes>>, Infallible>
where
    A: std::ops::Deref<Target = Authz>,
{
    // Only the head is read (the body is never forwarded for a decision); `Parts` is `Sync`,
    // which keeps this future `Send` whatever the body type is.
    let (mut parts, _body) = request.into_parts();
    let uri_path = parts.uri.path();
    if let Some(raw_path) = request::original_path(uri_path, &parts.headers) {
        let present = request::Present::of(&parts.headers);
        let input = Input {
            method: request::original_method(&parts.method, &parts.headers, present),
            raw_path,
            query: parts.uri.query(),
            headers: &parts.headers,
            present,
            peer: peer.ip(),
        };
        let verdict = authz.check(&input).await;
        let headers = answer_headers(&mut parts.headers);
        return Ok(match verdict.outcome {
            Ok(authorization) => allow(headers, authorization, verdict.request_id),
            Err(deny) => deny_response(headers, deny, verdict.request_id),
        });
    }
    let started = crate::clock::Stopwatch::start();
    let request_id = crate::observe::request_id(&parts.headers);
    let mut response = if uri_path == "/.well-known/jwks.json" {
        body_response(StatusCode::OK, authz.keys.load().jwks())
    } else if uri_path == "/metrics" {
        let mut text = authz.metrics.render(&authz.caches, authz.audit.dropped());
        authz.observe.render(&mut text, authz.store.as_ref()).await;
        let mut response = body_response(StatusCode::OK, Bytes::from(text));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        );
        response
    } else {
        body_response(
            StatusCode::NOT_FOUND,
            Bytes::from_static(br#"{"error":"Route is not found"}"#),
        )
    };
    authz
        .observe
        .requests
        .authz
        .record(response.status().as_u16(), started.elapsed());
    response
        .headers_mut()
        .insert(crate::observe::REQUEST_ID, request_id);
    Ok(response)
}

/// A connection's own handle on the one `Authz`, cloned for each of its requests: a clone of
/// the `Arc<Authz>` every connection shares is a reference count both cores write on every
/// request, a clone of this one is a count only the connection's task touches.
#[derive(Clone)]
#[allow(
    clippy::redundant_allocation,
    reason = "the outer Arc is the point: a reference count of the connection's own"
)]
pub struct ConnectionHandle(Arc<Arc<Authz>>);

impl ConnectionHandle {
    pub fn new(authz: &Arc<Authz>) -> Self {
        Self(Arc::new(authz.clone()))
    }
}

impl std::ops::Deref for ConnectionHandle {
    type Target = Authz;

    fn deref(&self) -> &Authz {
        &self.0
    }
}

/// The request headers an allow has Envoy strip before the upstream, on every allow (a public
/// path too): a signed request must never reach an upstream to be replayed.
pub const API_KEY_HEADERS: [&str; 3] = ["x-auth-apikey", "x-auth-nonce", "x-auth-signature"];

/// The map a decision's answer is written into: the request's own, emptied.
///
/// hyper keeps an answer's map, drained, and parses the connection's next request into it, so
/// a map sized for this client's requests serves every request and answer after the first. A
/// copy of a ready template (the twelfth pass) allocated a map of three entries a request,
/// which the next request's parse outgrew and replaced: two allocations and two frees a request
/// more than bare hyper's, none fewer now (`benches/instructions.sh`; docs/benchmarks.md,
/// sixteenth pass). Inserting hashes each name, which the copy did not; the maps are empty, so
/// `append` skips looking for an earlier value.
fn answer_headers(request: &mut http::HeaderMap) -> http::HeaderMap {
    let mut headers = std::mem::take(request);
    headers.clear();
    headers
}

/// 200 with an empty body and `Content-Length: 0`, so nginx keeps the upstream connection
/// alive (hyper writes that header itself for an empty body); Envoy strips [`API_KEY_HEADERS`]
/// as `x-envoy-auth-headers-to-remove` asks.
fn allow(
    mut headers: http::HeaderMap,
    authorization: Option<HeaderValue>,
    request_id: HeaderValue,
) -> Response<Full<Bytes>> {
    if let Some(token) = authorization {
        headers.append(header::AUTHORIZATION, token);
    }
    headers.append(crate::observe::REQUEST_ID, request_id);
    headers.append(ENVOY_HEADERS_TO_REMOVE, API_KEY_HEADER_LIST);
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.headers_mut() = headers;
    response
}

// Header names and values as constants: a name given as `&str` is copied on every insert, and
// `HeaderValue::from_static` called at run time checks every byte of its text.
const ENVOY_HEADERS_TO_REMOVE: header::HeaderName =
    header::HeaderName::from_static("x-envoy-auth-headers-to-remove");
const API_KEY_HEADER_LIST: HeaderValue =
    HeaderValue::from_static("x-auth-apikey,x-auth-nonce,x-auth-signature");
const JSON: HeaderValue = HeaderValue::from_static("application/json");
pub const BARONG_STATUS: header::HeaderName = header::HeaderName::from_static("x-barong-status");
pub const BARONG_ERROR: header::HeaderName = header::HeaderName::from_static("x-barong-error");

/// Barong's authz error body (exactly one key), repeated in two headers for nginx: its
/// `auth_request` turns any status but 401/403 into a 500 and drops the body, so the shipped
/// config restores both from `X-Barong-Status` and `X-Barong-Error`.
fn deny_response(
    mut headers: http::HeaderMap,
    deny: Deny,
    request_id: HeaderValue,
) -> Response<Full<Bytes>> {
    let status = deny.status();
    headers.append(BARONG_STATUS, status_value(status));
    headers.append(BARONG_ERROR, deny.body_header());
    headers.append(crate::observe::REQUEST_ID, request_id);
    headers.append(header::CONTENT_TYPE, JSON);
    let mut response = Response::new(Full::new(Bytes::from_static(deny.body().as_bytes())));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// `X-Barong-Status` for a deny status (always 400-599), made once per code on static bytes:
/// a clone copies a pointer, where one of a value made from a number bumps a reference count
/// every core writes.
pub fn status_value(status: StatusCode) -> HeaderValue {
    static VALUES: std::sync::OnceLock<Vec<HeaderValue>> = std::sync::OnceLock::new();
    let values = VALUES.get_or_init(|| {
        STATUS_TEXT
            .chunks(3)
            .zip(400u16..)
            .map(|(digits, code)| {
                std::str::from_utf8(digits)
                    .map_or_else(|_| HeaderValue::from(code), HeaderValue::from_static)
            })
            .collect()
    });
    usize::from(status.as_u16())
        .checked_sub(400)
        .and_then(|i| values.get(i))
        .cloned()
        .unwrap_or_else(|| HeaderValue::from(status.as_u16()))
}

/// "400401402...599": the three digits of every deny status, made at compile time.
static STATUS_TEXT: [u8; 600] = {
    let mut text = [0u8; 600];
    let mut i = 0;
    while i < 200 {
        let code = 400 + i;
        text[3 * i] = b'0' + (code / 100) as u8;
        text[3 * i + 1] = b'0' + (code / 10 % 10) as u8;
        text[3 * i + 2] = b'0' + (code % 10) as u8;
        i += 1;
    }
    text
};

fn body_response(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, JSON);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envoy_removes_exactly_the_api_key_headers() {
        assert_eq!(API_KEY_HEADER_LIST, API_KEY_HEADERS.join(",").as_str());
    }

    #[test]
    fn every_deny_status_has_its_digits() {
        for code in [400u16, 401, 403, 471, 503, 599] {
            let status = StatusCode::from_u16(code).expect("status");
            assert_eq!(status_value(status), code.to_string().as_str());
        }
    }

    #[test]
    fn deny_answers_carry_their_key_and_status() {
        let maintenance = Deny::Restricted {
            category: "maintenance",
            code: 471,
        };
        for deny in [
            Deny::InvalidPath,
            Deny::Unavailable,
            Deny::Disabled2fa,
            maintenance,
        ] {
            assert_eq!(deny.body(), format!(r#"{{"errors":["{}"]}}"#, deny.key()));
            let response = deny_response(
                http::HeaderMap::new(),
                deny,
                HeaderValue::from_static("id-1"),
            );
            assert_eq!(response.status(), deny.status());
            let headers = response.headers();
            assert_eq!(headers.len(), 4, "{headers:?}");
            assert_eq!(headers[&BARONG_ERROR], deny.body());
            assert_eq!(
                headers[&BARONG_STATUS],
                deny.status().as_u16().to_string().as_str()
            );
            assert_eq!(headers[header::CONTENT_TYPE], "application/json");
            assert_eq!(headers[crate::observe::REQUEST_ID], "id-1");
        }
    }

    #[test]
    fn allows_carry_their_token_and_request_id_and_nothing_of_the_request() {
        let token = HeaderValue::from_static("Bearer x.y.z");
        let mut request = http::HeaderMap::new();
        request.insert(
            header::COOKIE,
            HeaderValue::from_static("_barong_session=1"),
        );
        request.append(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic eA=="),
        );
        request.append(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic eQ=="),
        );
        let headers = answer_headers(&mut request);
        assert!(headers.is_empty() && request.is_empty());
        let response = allow(
            headers,
            Some(token.clone()),
            HeaderValue::from_static("id-2"),
        );
        let headers = response.headers();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(headers.len(), 3, "{headers:?}");
        assert_eq!(headers[header::AUTHORIZATION], token);
        assert_eq!(headers[crate::observe::REQUEST_ID], "id-2");
        assert_eq!(headers[&ENVOY_HEADERS_TO_REMOVE], API_KEY_HEADER_LIST);

        let response = allow(
            http::HeaderMap::new(),
            None,
            HeaderValue::from_static("id-3"),
        );
        let headers = response.headers();
        assert_eq!(headers.len(), 2, "{headers:?}");
        assert!(!headers.contains_key(header::AUTHORIZATION));
        assert_eq!(headers[crate::observe::REQUEST_ID], "id-3");
        assert_eq!(headers[&ENVOY_HEADERS_TO_REMOVE], API_KEY_HEADER_LIST);
    }
}
