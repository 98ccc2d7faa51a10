//! `CheckRequest` and `CheckResponse` as this front reads and writes them: the fields it uses,
//! under the tags of `envoy/service/auth/v3/external_auth.proto` (and the messages it names),
//! every string field as `Bytes`.
//!
//! Why not the `envoy-types` structs: they hold every string as a `String`, so decoding a check
//! copies each header name and value out of the received frame and encoding an answer copies
//! each constant (`"authorization"`, the three API-key header names) into a new `String`: about
//! 20 allocations per check that the decision never needed. Here a decoded field is a slice of
//! the frame tonic received (`Bytes` decoding does not copy), an answer's constants are static,
//! and only its token and request id are copied. Protobuf writes `string` and `bytes` alike
//! (length-delimited), so the wire is unchanged; fields this front does not read are skipped on
//! decoding, as protobuf requires of unknown fields.
//!
//! Not checking UTF-8 while decoding matters too: a `string` that was not UTF-8 failed the whole
//! message, a gRPC error that `failure_mode_allow: true` lets through. Now the front judges
//! those bytes as the HTTP front would (a header value may carry obs-text; a path may not). The
//! tests below decode `envoy-types` encodings with these types and the other way round, so a
//! wrong tag cannot go unnoticed.

use bytes::Bytes;

/// `envoy.service.auth.v3.CheckRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CheckRequest {
    #[prost(message, optional, tag = "1")]
    pub attributes: Option<AttributeContext>,
}

/// `envoy.service.auth.v3.AttributeContext`: who sent the request and what it is.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AttributeContext {
    #[prost(message, optional, tag = "1")]
    pub source: Option<Peer>,
    #[prost(message, optional, tag = "4")]
    pub request: Option<Request>,
}

/// `AttributeContext.Peer`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Peer {
    #[prost(message, optional, tag = "1")]
    pub address: Option<Address>,
}

/// `envoy.config.core.v3.Address`, only its `socket_address` (a pipe or an internal address
/// names no client IP).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Address {
    #[prost(message, optional, tag = "1")]
    pub socket_address: Option<SocketAddress>,
}

/// `envoy.config.core.v3.SocketAddress`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SocketAddress {
    #[prost(bytes = "bytes", tag = "2")]
    pub address: Bytes,
}

/// `AttributeContext.Request`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Request {
    #[prost(message, optional, tag = "2")]
    pub http: Option<HttpRequest>,
}

/// `AttributeContext.HttpRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HttpRequest {
    #[prost(bytes = "bytes", tag = "2")]
    pub method: Bytes,
    /// The `map<string, string> headers`: on the wire a map is a repeated entry message with
    /// the key at tag 1 and the value at tag 2. Kept as a list, so a key sent twice is two
    /// headers (the decision refuses a repeated cookie) where a map would keep the last.
    #[prost(message, repeated, tag = "3")]
    pub headers: Vec<HeaderEntry>,
    #[prost(bytes = "bytes", tag = "4")]
    pub path: Bytes,
    /// `header_map`, sent instead of `headers` under `encode_raw_headers: true`.
    #[prost(message, optional, tag = "13")]
    pub header_map: Option<HeaderMap>,
}

/// One entry of `HttpRequest.headers`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HeaderEntry {
    #[prost(bytes = "bytes", tag = "1")]
    pub key: Bytes,
    #[prost(bytes = "bytes", tag = "2")]
    pub value: Bytes,
}

/// `envoy.config.core.v3.HeaderMap`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HeaderMap {
    #[prost(message, repeated, tag = "1")]
    pub headers: Vec<HeaderValue>,
}

/// `envoy.config.core.v3.HeaderValue`: `raw_value` when Envoy encodes raw headers, else
/// `value`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HeaderValue {
    #[prost(bytes = "bytes", tag = "1")]
    pub key: Bytes,
    #[prost(bytes = "bytes", tag = "2")]
    pub value: Bytes,
    #[prost(bytes = "bytes", tag = "3")]
    pub raw_value: Bytes,
}

/// `envoy.service.auth.v3.CheckResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CheckResponse {
    #[prost(message, optional, tag = "1")]
    pub status: Option<Status>,
    #[prost(oneof = "HttpResponse", tags = "2, 3")]
    pub http_response: Option<HttpResponse>,
}

/// `google.rpc.Status`: the gRPC code of the answer (`OK` allows).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Status {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(bytes = "bytes", tag = "2")]
    pub message: Bytes,
}

/// `CheckResponse.http_response`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum HttpResponse {
    #[prost(message, tag = "2")]
    Denied(DeniedHttpResponse),
    #[prost(message, tag = "3")]
    Ok(OkHttpResponse),
}

/// `envoy.service.auth.v3.OkHttpResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct OkHttpResponse {
    #[prost(message, repeated, tag = "2")]
    pub headers: Vec<HeaderValueOption>,
    #[prost(bytes = "bytes", repeated, tag = "5")]
    pub headers_to_remove: Vec<Bytes>,
}

/// `envoy.service.auth.v3.DeniedHttpResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DeniedHttpResponse {
    #[prost(message, optional, tag = "1")]
    pub status: Option<HttpStatus>,
    #[prost(message, repeated, tag = "2")]
    pub headers: Vec<HeaderValueOption>,
    #[prost(bytes = "bytes", tag = "3")]
    pub body: Bytes,
}

/// `envoy.type.v3.HttpStatus`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HttpStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
}

/// `envoy.config.core.v3.HeaderValueOption`: a header and how Envoy adds it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HeaderValueOption {
    #[prost(message, optional, tag = "1")]
    pub header: Option<HeaderValue>,
    #[prost(int32, tag = "3")]
    pub append_action: i32,
}

#[cfg(test)]
mod tests {
    use envoy_types::ext_authz::v3::pb as envoy;
    use envoy_types::pb::envoy::config::core::v3 as core;
    use envoy_types::pb::envoy::service::auth::v3::attribute_context;
    use prost::Message;

    use super::*;

    /// A check with every field this front reads, and some it does not, as Envoy encodes it.
    fn envoy_check() -> envoy::CheckRequest {
        envoy::CheckRequest {
            attributes: Some(
                envoy_types::pb::envoy::service::auth::v3::AttributeContext {
                    source: Some(attribute_context::Peer {
                        address: Some(core::Address {
                            address: Some(core::address::Address::SocketAddress(
                                core::SocketAddress {
                                    address: "203.0.113.7".into(),
                                    port_specifier: Some(
                                        core::socket_address::PortSpecifier::PortValue(41000),
                                    ),
                                    ..Default::default()
                                },
                            )),
                        }),
                        principal: "spiffe://ignored".into(),
                        ..Default::default()
                    }),
                    request: Some(attribute_context::Request {
                        http: Some(attribute_context::HttpRequest {
                            id: "1234".into(),
                            method: "POST".into(),
                            headers: [("user-agent".to_owned(), "ua".to_owned())].into(),
                            path: "/api/v2/x?y=1".into(),
                            host: "example.com".into(),
                            header_map: Some(core::HeaderMap {
                                headers: vec![core::HeaderValue {
                                    key: "cookie".into(),
                                    raw_value: b"a=\xff".to_vec(),
                                    ..Default::default()
                                }],
                            }),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    context_extensions: [("k".to_owned(), "v".to_owned())].into(),
                    ..Default::default()
                },
            ),
        }
    }

    #[test]
    fn checks_decode_as_envoy_encodes_them() {
        let check = CheckRequest::decode(envoy_check().encode_to_vec().as_slice()).unwrap();
        let attributes = check.attributes.unwrap();
        let source = attributes.source.unwrap().address.unwrap();
        assert_eq!(source.socket_address.unwrap().address, "203.0.113.7");
        let http = attributes.request.unwrap().http.unwrap();
        assert_eq!(
            (&http.method[..], &http.path[..]),
            (&b"POST"[..], &b"/api/v2/x?y=1"[..])
        );
        assert_eq!(
            http.headers,
            [HeaderEntry {
                key: Bytes::from_static(b"user-agent"),
                value: Bytes::from_static(b"ua"),
            }]
        );
        let raw = &http.header_map.unwrap().headers[0];
        assert_eq!(
            (&raw.key[..], &raw.raw_value[..]),
            (&b"cookie"[..], &b"a=\xff"[..])
        );
    }

    #[test]
    fn answers_decode_as_envoy_reads_them() {
        let header = |key: &'static str, value: &'static str| HeaderValueOption {
            header: Some(HeaderValue {
                key: Bytes::from_static(key.as_bytes()),
                value: Bytes::from_static(value.as_bytes()),
                raw_value: Bytes::new(),
            }),
            append_action: envoy::HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
        };
        let allow = CheckResponse {
            status: Some(Status::default()),
            http_response: Some(HttpResponse::Ok(OkHttpResponse {
                headers: vec![header("authorization", "Bearer t")],
                headers_to_remove: vec![Bytes::from_static(b"x-auth-apikey")],
            })),
        };
        let read = envoy::CheckResponse::decode(allow.encode_to_vec().as_slice()).unwrap();
        let Some(envoy::HttpResponse::OkResponse(ok)) = read.http_response else {
            panic!("not an OK response: {read:?}");
        };
        let first = ok.headers[0].header.as_ref().unwrap();
        assert_eq!(
            (&first.key[..], &first.value[..]),
            ("authorization", "Bearer t")
        );
        assert_eq!(
            ok.headers[0].append_action,
            envoy::HeaderAppendAction::OverwriteIfExistsOrAdd as i32
        );
        assert_eq!(ok.headers_to_remove, ["x-auth-apikey"]);

        let deny = CheckResponse {
            status: Some(Status {
                code: 7,
                message: Bytes::from_static(b"authz.invalid_session"),
            }),
            http_response: Some(HttpResponse::Denied(DeniedHttpResponse {
                status: Some(HttpStatus { code: 401 }),
                headers: vec![header("content-type", "application/json")],
                body: Bytes::from_static(b"{}"),
            })),
        };
        let read = envoy::CheckResponse::decode(deny.encode_to_vec().as_slice()).unwrap();
        let status = read.status.unwrap();
        assert_eq!(
            (status.code, status.message.as_str()),
            (7, "authz.invalid_session")
        );
        let Some(envoy::HttpResponse::DeniedResponse(denied)) = read.http_response else {
            panic!("not a denied response");
        };
        assert_eq!(denied.status.map(|s| s.code), Some(401));
        assert_eq!(
            denied.headers[0].header.as_ref().unwrap().key,
            "content-type"
        );
        assert_eq!(denied.body, "{}");
    }
}
