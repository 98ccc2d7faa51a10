//! The gRPC front of the decision: Envoy's `ext_authz` with a `grpc_service` calls
//! `envoy.service.auth.v3.Authorization/Check`. The `CheckRequest` is read into the same
//! [`Input`] the HTTP front builds and judged by the same [`Authz::check`]; only the wire format
//! differs. The messages are this front's own [`wire`] types (why: see there), served by tonic's
//! unary machinery as the `envoy-types` server would serve them.
//!
//! What the check is trusted with, as on the HTTP listener and no more:
//! - the method and the path with its query are the ones Envoy routes (`attributes.request.http`);
//!   nginx's `X-Original-URI` and `X-Original-Method` are not read, there is no subrequest here;
//! - the client address: `attributes.source.address` is what the gRPC peer (Envoy) says it saw,
//!   a claim like `X-Forwarded-For`. It is judged as one more forwarding hop appended by that
//!   peer, so it is believed only when the peer is one of `BARONG_TRUSTED_PROXIES`;
//! - headers: the lower-cased `headers` map (Envoy joins repeated ones) and the `header_map` list
//!   (`encode_raw_headers`, repeated ones kept apart) are both read, so a repeated cookie is
//!   refused as on the HTTP listener; pseudo-headers (`:path`, ...) are not headers;
//! - a check that describes no HTTP request, or a header no HTTP request could carry, is denied
//!   (`400 authz.invalid_request`) with a `DeniedHttpResponse`, never a gRPC error, which Envoy
//!   would let through with `failure_mode_allow: true`.

pub mod wire;

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use tonic::codegen::{Body, BoxFuture, StdError};
use tonic::server::{Grpc, UnaryService};
use tonic_prost::ProstCodec;

use super::http_front::{API_KEY_HEADERS, status_value};
use super::{Authz, ConnectionHandle, Deny, Input};
use crate::domain::client_ip::X_FORWARDED_FOR;
use crate::observe::REQUEST_ID;
use wire::{CheckRequest, CheckResponse};

/// Largest `CheckRequest` accepted: above anything Envoy can send (its request heads are capped
/// by `max_request_headers_kb`, at most 8 MiB; checks carry no body). A smaller cap would turn a
/// client's oversized head into a gRPC error, which `failure_mode_allow: true` lets through;
/// only Envoy should be able to reach this listener.
pub const MAX_MESSAGE: usize = 16 * 1024 * 1024;

/// The one method this service has.
const CHECK_PATH: &str = "/envoy.service.auth.v3.Authorization/Check";

/// gRPC's `OK` and `PERMISSION_DENIED` (`google.rpc.Code`).
const CODE_OK: i32 = 0;
const CODE_PERMISSION_DENIED: i32 = 7;

/// `HeaderAppendAction::OVERWRITE_IF_EXISTS_OR_ADD`: a header Envoy sets replaces any value of
/// that name already there (the client's own `Authorization`, say).
const OVERWRITE_IF_EXISTS_OR_ADD: i32 = 2;

/// The `Authorization` service of one connection: the decision (through the connection's own
/// handle, as on the HTTP listener) and the connection's peer. A tower service, served over
/// HTTP/2 by the listener; any other path is `UNIMPLEMENTED`.
#[derive(Clone)]
pub struct Check {
    authz: ConnectionHandle,
    peer: SocketAddr,
}

/// The gRPC service for a connection from `peer`.
pub fn service(authz: &Arc<Authz>, peer: SocketAddr) -> Check {
    Check {
        authz: ConnectionHandle::new(authz),
        peer,
    }
}

impl<B> tower::Service<http::Request<B>> for Check
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if request.uri().path() != CHECK_PATH {
            return Box::pin(std::future::ready(Ok(unimplemented())));
        }
        let check = self.clone();
        Box::pin(async move {
            // No compression either way, as the generated server's defaults.
            let mut grpc = Grpc::new(ProstCodec::<CheckResponse, CheckRequest>::default())
                .apply_max_message_size_config(Some(MAX_MESSAGE), None);
            Ok(grpc.unary(check, request).await)
        })
    }
}

impl UnaryService<CheckRequest> for Check {
    type Response = CheckResponse;
    type Future = BoxFuture<tonic::Response<CheckResponse>, tonic::Status>;

    fn call(&mut self, request: tonic::Request<CheckRequest>) -> Self::Future {
        let Check { authz, peer } = self.clone();
        Box::pin(async move {
            Ok(tonic::Response::new(
                answer(&authz, peer, request.into_inner()).await,
            ))
        })
    }
}

/// `UNIMPLEMENTED`, as a generated server answers a method it does not have.
fn unimplemented() -> http::Response<tonic::body::Body> {
    let mut response = http::Response::new(tonic::body::Body::default());
    let headers = response.headers_mut();
    headers.insert(
        tonic::Status::GRPC_STATUS,
        HeaderValue::from(tonic::Code::Unimplemented as i32),
    );
    headers.insert(header::CONTENT_TYPE, tonic::metadata::GRPC_CONTENT_TYPE);
    response
}

/// The decision on one `CheckRequest`, as Envoy reads it.
pub async fn answer(authz: &Authz, peer: SocketAddr, request: CheckRequest) -> CheckResponse {
    let attributes = request.attributes.unwrap_or_default();
    let source = attributes
        .source
        .and_then(|peer| peer.address)
        .and_then(|address| address.socket_address)
        .map(|socket| socket.address);
    let Some(http) = attributes.request.and_then(|r| r.http) else {
        return response(authz.refuse(Deny::InvalidRequest, &HeaderMap::new()));
    };
    let mut headers = match headers(http.headers, http.header_map) {
        Ok(headers) => headers,
        Err(deny) => return response(authz.refuse(deny, &HeaderMap::new())),
    };
    if let Some(source) = source.and_then(ip_text) {
        // The peer's view of the client, as if it had appended it to X-Forwarded-For: the
        // trusted-proxy walk believes it only if the peer is trusted.
        headers.append(X_FORWARDED_FOR, source);
    }
    let Ok(method) = Method::from_bytes(&http.method) else {
        return response(authz.refuse(Deny::InvalidMethod, &headers));
    };
    // Origin form only (`/path?query`): `*` and absolute URIs name no route of ours.
    let Some(target) = std::str::from_utf8(&http.path)
        .ok()
        .and_then(|path| path.strip_prefix('/'))
    else {
        return response(authz.refuse(Deny::InvalidPath, &headers));
    };
    let (raw_path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    let input = Input {
        method,
        raw_path,
        query,
        headers: &headers,
        present: super::request::Present::of(&headers),
        peer: peer.ip(),
    };
    response(authz.check(&input).await)
}

/// The names Envoy puts on every check that `http` has no standard constant for. Found here,
/// a name costs no copy; `HeaderName::from_bytes` copies every name it does not know.
const ENVOY_NAMES: [HeaderName; 5] = [
    HeaderName::from_static("x-forwarded-proto"),
    REQUEST_ID,
    X_FORWARDED_FOR,
    HeaderName::from_static("x-envoy-internal"),
    HeaderName::from_static("x-envoy-expected-rq-timeout-ms"),
];

/// The request's headers as the HTTP front would get them; `Err` for one it could not. The
/// values are the received frame's bytes, checked, not copied.
fn headers(pairs: Vec<wire::HeaderEntry>, raw: Option<wire::HeaderMap>) -> Result<HeaderMap, Deny> {
    let raw = raw.map(|map| map.headers).unwrap_or_default();
    let mut map = HeaderMap::with_capacity(pairs.len() + raw.len() + 1);
    let pairs = pairs.into_iter().map(|h| (h.key, h.value));
    let raw = raw.into_iter().map(|h| {
        let value = if h.raw_value.is_empty() {
            h.value
        } else {
            h.raw_value
        };
        (h.key, value)
    });
    for (key, value) in pairs.chain(raw) {
        if key.starts_with(b":") {
            continue;
        }
        let name = match ENVOY_NAMES
            .iter()
            .find(|name| name.as_str().as_bytes() == key)
        {
            Some(name) => name.clone(),
            None => HeaderName::from_bytes(&key).map_err(|_| Deny::InvalidRequest)?,
        };
        let value = HeaderValue::from_maybe_shared(value).map_err(|_| Deny::InvalidRequest)?;
        map.append(name, value);
    }
    Ok(map)
}

/// `attributes.source.address`'s text as a header value, when it is an IP address.
fn ip_text(address: Bytes) -> Option<HeaderValue> {
    std::str::from_utf8(&address).ok()?.parse::<IpAddr>().ok()?;
    HeaderValue::from_maybe_shared(address).ok()
}

/// Allow: `OK` with the JWT set (replacing any `Authorization` the client sent) and the API-key
/// headers removed, as the HTTP listener asks Envoy. Deny: Barong's status, JSON body and
/// `X-Barong-*` headers, as the HTTP listener answers.
fn response(verdict: super::Verdict) -> CheckResponse {
    let request_id = text(&verdict.request_id);
    match verdict.outcome {
        Ok(authorization) => {
            let mut headers = Vec::with_capacity(2);
            if let Some(value) = authorization {
                headers.push(set("authorization", text(&value)));
            }
            headers.push(set("x-request-id", request_id));
            CheckResponse {
                status: Some(wire::Status {
                    code: CODE_OK,
                    message: Bytes::new(),
                }),
                http_response: Some(wire::HttpResponse::Ok(wire::OkHttpResponse {
                    headers,
                    headers_to_remove: API_KEY_HEADERS
                        .map(|name| Bytes::from_static(name.as_bytes()))
                        .to_vec(),
                })),
            }
        }
        Err(deny) => {
            let status = deny.status();
            let headers = vec![
                set("content-type", Bytes::from_static(b"application/json")),
                set("x-barong-status", text(&status_value(status))),
                set("x-barong-error", Bytes::from_static(deny.body().as_bytes())),
                set("x-request-id", request_id),
            ];
            CheckResponse {
                status: Some(wire::Status {
                    code: CODE_PERMISSION_DENIED,
                    message: Bytes::from_static(deny.key().as_bytes()),
                }),
                http_response: Some(wire::HttpResponse::Denied(wire::DeniedHttpResponse {
                    status: Some(wire::HttpStatus {
                        code: i32::from(status.as_u16()),
                    }),
                    headers,
                    body: Bytes::from_static(deny.body().as_bytes()),
                })),
            }
        }
    }
}

/// A header value as a protobuf `string`, which must be UTF-8 or Envoy rejects the whole answer
/// (an error, let through under `failure_mode_allow: true`): empty unless it is. Ours always
/// are (tokens, request ids, statuses); the check is what keeps it so. A copy: `http` does not
/// hand out a value's bytes.
fn text(value: &HeaderValue) -> Bytes {
    match value.to_str() {
        Ok(text) => Bytes::copy_from_slice(text.as_bytes()),
        Err(_) => Bytes::new(),
    }
}

/// A header Envoy sets, replacing any value of that name already there.
fn set(key: &'static str, value: Bytes) -> wire::HeaderValueOption {
    wire::HeaderValueOption {
        header: Some(wire::HeaderValue {
            key: Bytes::from_static(key.as_bytes()),
            value,
            raw_value: Bytes::new(),
        }),
        append_action: OVERWRITE_IF_EXISTS_OR_ADD,
    }
}

#[cfg(test)]
mod tests {
    use envoy_types::ext_authz::v3::pb as envoy;
    use envoy_types::pb::envoy::config::core::v3 as core;
    use envoy_types::pb::envoy::service::auth::v3::attribute_context::HttpRequest;
    use prost::Message;

    use super::*;

    /// Envoy's encoding of a request with these `headers` and `header_map`, read back as
    /// this front reads it.
    fn http(pairs: &[(&str, &str)], raw: &[(&str, &[u8])]) -> wire::HttpRequest {
        let envoy = HttpRequest {
            headers: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            header_map: (!raw.is_empty()).then(|| core::HeaderMap {
                headers: raw
                    .iter()
                    .map(|(k, v)| core::HeaderValue {
                        key: (*k).to_owned(),
                        raw_value: v.to_vec(),
                        ..Default::default()
                    })
                    .collect(),
            }),
            ..Default::default()
        };
        wire::HttpRequest::decode(envoy.encode_to_vec().as_slice()).unwrap()
    }

    fn map(http: wire::HttpRequest) -> Result<HeaderMap, Deny> {
        headers(http.headers, http.header_map)
    }

    #[test]
    fn headers_keep_repeats_and_skip_pseudo_headers() {
        let raw: &[(&str, &[u8])] = &[
            ("cookie", b"a=1"),
            ("cookie", b"a=2"),
            ("x-request-id", b"r"),
        ];
        let map = map(http(&[(":path", "/x"), ("user-agent", "ua")], raw)).unwrap();
        assert_eq!(map.get_all("cookie").iter().count(), 2);
        assert_eq!(map["user-agent"], "ua");
        assert_eq!(map["x-request-id"], "r");
        assert!(!map.keys().any(|k| k.as_str().starts_with(':')));
    }

    #[test]
    fn headers_no_http_request_could_carry_are_refused() {
        for (key, value) in [("bad name", "x"), ("x-ok", "line\nbreak"), ("", "x")] {
            assert_eq!(
                map(http(&[(key, value)], &[])).err(),
                Some(Deny::InvalidRequest),
                "{key:?}"
            );
        }
        let raw: &[(&str, &[u8])] = &[("x-ok", b"nul\0")];
        assert_eq!(map(http(&[], raw)).err(), Some(Deny::InvalidRequest));
    }

    #[test]
    fn only_an_ip_address_is_a_source() {
        assert_eq!(
            ip_text(Bytes::from_static(b"203.0.113.7")).unwrap(),
            "203.0.113.7"
        );
        assert_eq!(
            ip_text(Bytes::from_static(b"2001:db8::1")).unwrap(),
            "2001:db8::1"
        );
        for bad in [
            &b"evil.example"[..],
            b"1.2.3.4, 5.6.7.8",
            b"1.2.3.4\xff",
            b"",
        ] {
            assert!(ip_text(Bytes::copy_from_slice(bad)).is_none(), "{bad:?}");
        }
    }

    /// `response`'s answer as Envoy decodes it.
    fn envoy_reads(verdict: super::super::Verdict) -> envoy::CheckResponse {
        envoy::CheckResponse::decode(response(verdict).encode_to_vec().as_slice()).unwrap()
    }

    #[test]
    fn answers_carry_the_verdict() {
        let allow = envoy_reads(super::super::Verdict {
            outcome: Ok(Some(HeaderValue::from_static("Bearer t"))),
            request_id: HeaderValue::from_static("id"),
        });
        assert_eq!(allow.status.as_ref().map(|s| s.code), Some(CODE_OK));
        let Some(envoy::HttpResponse::OkResponse(ok)) = allow.http_response else {
            panic!("not an OK response");
        };
        let first = ok.headers[0].header.as_ref().unwrap();
        assert_eq!(
            (first.key.as_str(), first.value.as_str()),
            ("authorization", "Bearer t")
        );
        assert_eq!(
            ok.headers[0].append_action,
            envoy::HeaderAppendAction::OverwriteIfExistsOrAdd as i32
        );
        assert_eq!(ok.headers_to_remove, API_KEY_HEADERS);
        let deny = envoy_reads(super::super::Verdict {
            outcome: Err(Deny::Restricted {
                category: "maintenance",
                code: 471,
            }),
            request_id: HeaderValue::from_bytes(b"not utf-8 \xff").unwrap(),
        });
        let status = deny.status.unwrap();
        assert_eq!(
            (status.code, status.message.as_str()),
            (CODE_PERMISSION_DENIED, "authz.restrict.maintenance")
        );
        let Some(envoy::HttpResponse::DeniedResponse(denied)) = deny.http_response else {
            panic!("not a denied response");
        };
        assert_eq!(denied.status.map(|s| s.code), Some(471));
        assert_eq!(denied.body, r#"{"errors":["authz.restrict.maintenance"]}"#);
        let id = denied.headers.iter().filter_map(|h| h.header.as_ref());
        let id = id
            .filter(|h| h.key == "x-request-id")
            .map(|h| h.value.as_str());
        assert_eq!(
            id.collect::<Vec<_>>(),
            [""],
            "a value that is not UTF-8 is left out"
        );
    }
}
