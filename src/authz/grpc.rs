//! The gRPC front of the decision: Envoy's `ext_authz` with a `grpc_service` calls
//! `envoy.service.auth.v3.Authorization/Check` (tonic, the types of the `envoy-types` crate).
//! The `CheckRequest` is read into the same [`Input`] the HTTP front builds and judged by the
//! same [`Authz::check`]; only the wire format differs.
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

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use envoy_types::ext_authz::v3::pb::{
    Address, Authorization, AuthorizationServer, CheckRequest, CheckResponse, DeniedHttpResponse,
    HeaderAppendAction, HeaderValue as EnvoyHeader, HeaderValueOption, HttpResponse, HttpStatus,
    OkHttpResponse,
};
use envoy_types::pb::envoy::service::auth::v3::attribute_context::HttpRequest;
use envoy_types::pb::google::rpc;
use http::{HeaderMap, HeaderName, HeaderValue, Method};

use super::http_front::{API_KEY_HEADERS, status_value};
use super::{Authz, Deny, Input};

/// Largest `CheckRequest` accepted: above anything Envoy can send (its request heads are capped
/// by `max_request_headers_kb`, at most 8 MiB; checks carry no body). A smaller cap would turn a
/// client's oversized head into a gRPC error, which `failure_mode_allow: true` lets through;
/// only Envoy should be able to reach this listener.
pub const MAX_MESSAGE: usize = 16 * 1024 * 1024;

/// gRPC's `OK` and `PERMISSION_DENIED` (`google.rpc.Code`).
const CODE_OK: i32 = 0;
const CODE_PERMISSION_DENIED: i32 = 7;

/// The `Authorization` service of one connection: the decision and the connection's peer.
pub struct Check {
    authz: Arc<Authz>,
    peer: SocketAddr,
}

/// The gRPC service for a connection from `peer` (a tower service; the listener serves it over
/// HTTP/2 with hyper).
pub fn service(authz: Arc<Authz>, peer: SocketAddr) -> AuthorizationServer<Check> {
    AuthorizationServer::new(Check { authz, peer }).max_decoding_message_size(MAX_MESSAGE)
}

#[tonic::async_trait]
impl Authorization for Check {
    async fn check(
        &self,
        request: tonic::Request<CheckRequest>,
    ) -> Result<tonic::Response<CheckResponse>, tonic::Status> {
        let request = request.into_inner();
        Ok(tonic::Response::new(
            answer(&self.authz, self.peer, &request).await,
        ))
    }
}

/// The decision on one `CheckRequest`, as Envoy reads it.
pub async fn answer(authz: &Authz, peer: SocketAddr, request: &CheckRequest) -> CheckResponse {
    let Some(http) = request
        .attributes
        .as_ref()
        .and_then(|a| a.request.as_ref())
        .and_then(|r| r.http.as_ref())
    else {
        return response(authz.refuse(Deny::InvalidRequest, &HeaderMap::new()));
    };
    let mut headers = match headers(http) {
        Ok(headers) => headers,
        Err(deny) => return response(authz.refuse(deny, &HeaderMap::new())),
    };
    if let Some(source) = source_ip(request)
        && let Ok(value) = HeaderValue::try_from(source.to_string())
    {
        // The peer's view of the client, as if it had appended it to X-Forwarded-For: the
        // trusted-proxy walk believes it only if the peer is trusted.
        headers.append(X_FORWARDED_FOR, value);
    }
    let Ok(method) = Method::from_bytes(http.method.as_bytes()) else {
        return response(authz.refuse(Deny::InvalidMethod, &headers));
    };
    // Origin form only (`/path?query`): `*` and absolute URIs name no route of ours.
    let Some(target) = http.path.strip_prefix('/') else {
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

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The request's headers as the HTTP front would get them; `Err` for one it could not.
fn headers(http: &HttpRequest) -> Result<HeaderMap, Deny> {
    let mut map = HeaderMap::new();
    let raw = http.header_map.iter().flat_map(|m| m.headers.iter());
    let pairs = http
        .headers
        .iter()
        .map(|(key, value)| (key.as_str(), value.as_bytes()))
        .chain(raw.map(|h| {
            let value = if h.raw_value.is_empty() {
                h.value.as_bytes()
            } else {
                h.raw_value.as_slice()
            };
            (h.key.as_str(), value)
        }));
    for (key, value) in pairs {
        if key.starts_with(':') {
            continue;
        }
        let name = HeaderName::from_bytes(key.as_bytes()).map_err(|_| Deny::InvalidRequest)?;
        let value = HeaderValue::from_bytes(value).map_err(|_| Deny::InvalidRequest)?;
        map.append(name, value);
    }
    Ok(map)
}

/// `attributes.source.address`, when it is an IP socket address.
fn source_ip(request: &CheckRequest) -> Option<IpAddr> {
    let address = request
        .attributes
        .as_ref()?
        .source
        .as_ref()?
        .address
        .as_ref()?;
    match address.address.as_ref()? {
        Address::SocketAddress(socket) => socket.address.parse().ok(),
        _ => None,
    }
}

/// Allow: `OK` with the JWT set (replacing any `Authorization` the client sent) and the API-key
/// headers removed, as the HTTP listener asks Envoy. Deny: Barong's status, JSON body and
/// `X-Barong-*` headers, as the HTTP listener answers.
fn response(verdict: super::Verdict) -> CheckResponse {
    let request_id = verdict.request_id.to_str().unwrap_or_default().to_owned();
    match verdict.outcome {
        Ok(authorization) => {
            let mut headers = Vec::with_capacity(2);
            if let Some(value) = authorization {
                headers.push(set("authorization", value.to_str().unwrap_or_default()));
            }
            headers.push(set("x-request-id", &request_id));
            CheckResponse {
                status: Some(rpc::Status {
                    code: CODE_OK,
                    ..Default::default()
                }),
                http_response: Some(HttpResponse::OkResponse(OkHttpResponse {
                    headers,
                    headers_to_remove: API_KEY_HEADERS.iter().map(|h| (*h).to_owned()).collect(),
                    ..Default::default()
                })),
                ..Default::default()
            }
        }
        Err(deny) => {
            let status = deny.status();
            let headers = vec![
                set("content-type", "application/json"),
                set(
                    "x-barong-status",
                    status_value(status).to_str().unwrap_or_default(),
                ),
                set("x-barong-error", deny.body()),
                set("x-request-id", &request_id),
            ];
            CheckResponse {
                status: Some(rpc::Status {
                    code: CODE_PERMISSION_DENIED,
                    message: deny.key().to_owned(),
                    ..Default::default()
                }),
                http_response: Some(HttpResponse::DeniedResponse(DeniedHttpResponse {
                    status: Some(HttpStatus {
                        code: i32::from(status.as_u16()),
                    }),
                    headers,
                    body: deny.body().to_owned(),
                })),
                ..Default::default()
            }
        }
    }
}

/// A header Envoy sets, replacing any value of that name already there.
fn set(key: &str, value: &str) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(EnvoyHeader {
            key: key.to_owned(),
            value: value.to_owned(),
            ..Default::default()
        }),
        append_action: HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::config::core::v3::HeaderMap as EnvoyHeaderMap;

    fn http(pairs: &[(&str, &str)], raw: &[(&str, &[u8])]) -> HttpRequest {
        HttpRequest {
            headers: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            header_map: (!raw.is_empty()).then(|| EnvoyHeaderMap {
                headers: raw
                    .iter()
                    .map(|(k, v)| EnvoyHeader {
                        key: (*k).to_owned(),
                        raw_value: v.to_vec(),
                        ..Default::default()
                    })
                    .collect(),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn headers_keep_repeats_and_skip_pseudo_headers() {
        let raw: &[(&str, &[u8])] = &[("cookie", b"a=1"), ("cookie", b"a=2")];
        let map = headers(&http(&[(":path", "/x"), ("user-agent", "ua")], raw)).unwrap();
        assert_eq!(map.get_all("cookie").iter().count(), 2);
        assert_eq!(map["user-agent"], "ua");
        assert!(!map.keys().any(|k| k.as_str().starts_with(':')));
    }

    #[test]
    fn headers_no_http_request_could_carry_are_refused() {
        for (key, value) in [("bad name", "x"), ("x-ok", "line\nbreak"), ("", "x")] {
            assert_eq!(
                headers(&http(&[(key, value)], &[])).err(),
                Some(Deny::InvalidRequest),
                "{key:?}"
            );
        }
        let raw: &[(&str, &[u8])] = &[("x-ok", b"nul\0")];
        assert_eq!(headers(&http(&[], raw)).err(), Some(Deny::InvalidRequest));
    }

    #[test]
    fn answers_carry_the_verdict() {
        let allow = response(super::super::Verdict {
            outcome: Ok(Some(HeaderValue::from_static("Bearer t"))),
            request_id: HeaderValue::from_static("id"),
        });
        assert_eq!(allow.status.as_ref().map(|s| s.code), Some(CODE_OK));
        let Some(HttpResponse::OkResponse(ok)) = allow.http_response else {
            panic!("not an OK response");
        };
        let first = ok.headers[0].header.as_ref().unwrap();
        assert_eq!(
            (first.key.as_str(), first.value.as_str()),
            ("authorization", "Bearer t")
        );
        assert_eq!(ok.headers_to_remove, API_KEY_HEADERS);
        let deny = response(super::super::Verdict {
            outcome: Err(Deny::Restricted {
                category: "maintenance",
                code: 471,
            }),
            request_id: HeaderValue::from_static("id"),
        });
        assert_eq!(
            deny.status.as_ref().map(|s| s.code),
            Some(CODE_PERMISSION_DENIED)
        );
        let Some(HttpResponse::DeniedResponse(denied)) = deny.http_response else {
            panic!("not a denied response");
        };
        assert_eq!(denied.status.map(|s| s.code), Some(471));
        assert_eq!(denied.body, r#"{"errors":["authz.restrict.maintenance"]}"#);
    }
}
