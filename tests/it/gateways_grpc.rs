//! Envoy's gRPC `ext_authz` (`envoy/envoy-grpc.yaml`, barong's `BARONG_AUTHZ_GRPC_ADDR`
//! listener): the gateway tests of the HTTP config run again through the gRPC one (same routes,
//! same answers, same headers upstream, fail closed), and `Check` is called directly with a tonic
//! client for what Envoy never sends: malformed requests, forged addresses, repeated headers.

use std::collections::HashMap;

use envoy_types::ext_authz::v3::pb::{
    Address, CheckRequest, CheckResponse, HeaderAppendAction, HttpResponse,
};
use envoy_types::pb::envoy::config::core::v3::{
    HeaderMap as EnvoyHeaders, HeaderValue as EnvoyHeader, SocketAddress,
};
use envoy_types::pb::envoy::service::auth::v3::AttributeContext;
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Peer, Request};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;

use crate::common::gateway::Proxy;
use crate::common::{Backend, TestDb, TestServer};

/// One gateway test of the HTTP config, run through `envoy/envoy-grpc.yaml`.
macro_rules! through_grpc {
    ($($module:ident :: $name:ident),+ $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            crate::$module::$name(Proxy::EnvoyGrpc).await
        }
    )+};
}

through_grpc!(
    gateways::public_routes_reach_their_backend,
    gateways::denies_reach_the_client_with_barongs_body,
    gateways::authz_down_fails_closed,
    gateways::restrictions_reach_the_client_with_their_status,
    gateways::signed_in_users_reach_the_upstream_with_a_jwt,
    gateways::concurrent_checks_are_all_answered,
    gateways::user_journey_through_the_gateway,
    gateways_journey::confirmation_and_login_through_the_gateway,
    gateways_paths::spellings_reach_only_allowed_routes,
    gateways_request_id::the_upstream_gets_the_id_barong_decided_under,
);

/// barong with a maintenance restriction on 203.0.113.9 (to see which address is judged; not
/// loopback, which is a trusted proxy by default and may name another client).
async fn barong(env: &[(&str, &str)]) -> (TestDb, TestServer) {
    let db = TestDb::new(Backend::Sqlite).await;
    let seeds = barong::seed::DEFAULT_SEEDS.replacen(
        "restrictions:\n",
        "restrictions:\n  - { category: maintenance, scope: ip, value: 203.0.113.9 }\n",
        1,
    );
    let seeds_file = db.dir.path().join("seeds.yml");
    std::fs::write(&seeds_file, seeds).expect("seeds");
    let mut all = vec![("BARONG_SEEDS_FILE", seeds_file.to_str().expect("utf-8"))];
    all.extend_from_slice(env);
    let server = TestServer::start(db.dir.path(), &db.url, &all);
    (db, server)
}

async fn client(server: &TestServer) -> AuthorizationClient<tonic::transport::Channel> {
    AuthorizationClient::connect(server.grpc.clone().expect("gRPC listener"))
        .await
        .expect("connect")
}

/// A check as Envoy sends it: `headers` map, from `source`.
fn check(method: &str, path: &str, headers: &[(&str, &str)], source: &str) -> CheckRequest {
    let http = HttpRequest {
        method: method.into(),
        path: path.into(),
        headers: headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<HashMap<_, _>>(),
        ..Default::default()
    };
    CheckRequest {
        attributes: Some(AttributeContext {
            source: Some(Peer {
                address: Some(envoy_types::pb::envoy::config::core::v3::Address {
                    address: Some(Address::SocketAddress(SocketAddress {
                        address: source.into(),
                        ..Default::default()
                    })),
                }),
                ..Default::default()
            }),
            request: Some(Request {
                http: Some(http),
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}

async fn ask(
    client: &mut AuthorizationClient<tonic::transport::Channel>,
    request: CheckRequest,
) -> CheckResponse {
    client
        .check(request)
        .await
        .expect("a CheckResponse")
        .into_inner()
}

/// `(status, body, headers)` of a deny; panics on an allow.
fn denied(response: &CheckResponse) -> (i32, &str, HashMap<&str, &str>) {
    assert_eq!(
        response.status.as_ref().map(|s| s.code),
        Some(7),
        "PERMISSION_DENIED"
    );
    let Some(HttpResponse::DeniedResponse(deny)) = &response.http_response else {
        panic!("not a deny: {response:?}");
    };
    let headers = deny
        .headers
        .iter()
        .filter_map(|h| h.header.as_ref())
        .map(|h| (h.key.as_str(), h.value.as_str()))
        .collect();
    let status = deny.status.as_ref().map(|s| s.code).unwrap_or_default();
    (status, deny.body.as_str(), headers)
}

fn allowed(response: &CheckResponse) -> &envoy_types::ext_authz::v3::pb::OkHttpResponse {
    assert_eq!(
        response.status.as_ref().map(|s| s.code),
        Some(0),
        "{response:?}"
    );
    match &response.http_response {
        Some(HttpResponse::OkResponse(ok)) => ok,
        other => panic!("not an OK response: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_checks_are_denied_not_failed() {
    let (_db, server) = barong(&[]).await;
    let mut grpc = client(&server).await;
    let body = |key: &str| format!(r#"{{"errors":["{key}"]}}"#);

    // Nothing to judge: no attributes, no request, no http.
    let no_http = CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(Request::default()),
            ..Default::default()
        }),
    };
    for request in [CheckRequest::default(), no_http] {
        let response = ask(&mut grpc, request).await;
        let (status, text, headers) = denied(&response);
        assert_eq!(
            (status, text),
            (400, body("authz.invalid_request").as_str())
        );
        assert_eq!(headers["x-barong-status"], "400");
        assert_eq!(headers["x-barong-error"], body("authz.invalid_request"));
        assert_eq!(headers["content-type"], "application/json");
    }

    let public = "/api/v2/peatio/public/markets";
    let cases = [
        // A header no HTTP request could carry.
        (
            check("GET", public, &[("x-a", "line\nbreak")], "8.8.8.8"),
            400,
            "authz.invalid_request",
        ),
        (
            check("GET", public, &[("bad name", "x")], "8.8.8.8"),
            400,
            "authz.invalid_request",
        ),
        // No verb, or not one.
        (
            check("", public, &[], "8.8.8.8"),
            400,
            "authz.invalid_method",
        ),
        (
            check("GE T", public, &[], "8.8.8.8"),
            400,
            "authz.invalid_method",
        ),
        // Not an origin-form target, or a spelling the HTTP listener refuses too.
        (check("GET", "*", &[], "8.8.8.8"), 400, "authz.invalid_path"),
        (
            check(
                "GET",
                "http://x/api/v2/peatio/public/markets",
                &[],
                "8.8.8.8",
            ),
            400,
            "authz.invalid_path",
        ),
        (
            check(
                "GET",
                "/api/v2/peatio/public/../account/balances",
                &[],
                "8.8.8.8",
            ),
            400,
            "authz.invalid_path",
        ),
        (
            check(
                "GET",
                "/api/v2/peatio/public/%2e%2e/account/balances",
                &[],
                "8.8.8.8",
            ),
            400,
            "authz.invalid_path",
        ),
        // A method override that is not one verb, from the query as from a header.
        (
            check(
                "POST",
                "/api/v2/peatio/public/markets?_method=DE%20LETE",
                &[],
                "8.8.8.8",
            ),
            400,
            "authz.invalid_method",
        ),
        // nginx's headers name no path here: the path Envoy routes is judged.
        (
            check(
                "GET",
                "/api/v2/peatio/account/balances",
                &[("x-original-uri", public)],
                "8.8.8.8",
            ),
            401,
            "authz.invalid_session",
        ),
        (
            check(
                "POST",
                "/api/v2/peatio/market/orders",
                &[("x-original-method", "GET")],
                "8.8.8.8",
            ),
            401,
            "authz.missing_csrf_token",
        ),
    ];
    for (request, status, key) in cases {
        let response = ask(&mut grpc, request).await;
        let (got, text, _) = denied(&response);
        assert_eq!((got, text), (status, body(key).as_str()), "{key}");
    }

    // Repeated headers stay repeated (encode_raw_headers): two session cookies are refused as
    // over HTTP.
    let mut request = check("GET", "/api/v2/peatio/account/balances", &[], "8.8.8.8");
    if let Some(http) = request
        .attributes
        .as_mut()
        .and_then(|a| a.request.as_mut())
        .and_then(|r| r.http.as_mut())
    {
        http.header_map = Some(EnvoyHeaders {
            headers: ["_barong_session=a", "_barong_session=b"]
                .iter()
                .map(|v| EnvoyHeader {
                    key: "cookie".into(),
                    raw_value: v.as_bytes().to_vec(),
                    ..Default::default()
                })
                .collect(),
        });
    }
    let response = ask(&mut grpc, request).await;
    assert_eq!(denied(&response).1, body("authz.invalid_session"));

    // A public path: OK without a token, the API-key headers removed, the request id repeated.
    let response = ask(
        &mut grpc,
        check(
            "GET",
            public,
            &[
                ("x-request-id", "grpc-test-id"),
                ("authorization", "Bearer forged"),
            ],
            "8.8.8.8",
        ),
    )
    .await;
    let ok = allowed(&response);
    assert_eq!(
        ok.headers_to_remove,
        ["x-auth-apikey", "x-auth-nonce", "x-auth-signature"]
    );
    let set: Vec<(&str, &str, i32)> = ok
        .headers
        .iter()
        .filter_map(|h| {
            h.header
                .as_ref()
                .map(|v| (v.key.as_str(), v.value.as_str(), h.append_action))
        })
        .collect();
    let overwrite = HeaderAppendAction::OverwriteIfExistsOrAdd as i32;
    assert_eq!(set, [("x-request-id", "grpc-test-id", overwrite)]);
}

/// `attributes.source.address` is the gRPC peer's claim, believed as far as an
/// `X-Forwarded-For` from that peer would be: only from a trusted proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_source_address_is_believed_only_from_a_trusted_peer() {
    let public = "/api/v2/peatio/public/markets";
    let maintenance = r#"{"errors":["authz.restrict.maintenance"]}"#;

    // Loopback is a trusted proxy by default: its view of the client is judged.
    let (_db, server) = barong(&[]).await;
    let mut grpc = client(&server).await;
    let response = ask(&mut grpc, check("GET", public, &[], "203.0.113.9")).await;
    assert_eq!(denied(&response).0, 471);
    assert_eq!(denied(&response).1, maintenance);
    // The restricted client cannot name another address through the headers either: the
    // peer's own view of it comes last and is judged first.
    let forged = [("x-forwarded-for", "203.0.113.8")];
    let response = ask(&mut grpc, check("GET", public, &forged, "203.0.113.9")).await;
    assert_eq!(denied(&response).0, 471);
    // Without a source, the headers a trusted peer forwards are what the HTTP listener reads.
    let mut request = check("GET", public, &[("x-forwarded-for", "203.0.113.9")], "");
    if let Some(source) = request.attributes.as_mut().and_then(|a| a.source.as_mut()) {
        source.address = None;
    }
    let response = ask(&mut grpc, request).await;
    assert_eq!(denied(&response).0, 471);
    let response = ask(&mut grpc, check("GET", public, &[], "203.0.113.8")).await;
    allowed(&response);

    // A peer that is not a trusted proxy names nobody: neither the source nor the headers.
    drop(grpc);
    let (_db, server) = barong(&[("BARONG_TRUSTED_PROXIES", "10.0.0.0/8")]).await;
    let mut grpc = client(&server).await;
    let claims = [
        ("x-forwarded-for", "203.0.113.9"),
        ("client-ip", "203.0.113.9"),
    ];
    let response = ask(&mut grpc, check("GET", public, &claims, "203.0.113.9")).await;
    allowed(&response);
}

/// What an `envoy-types` client cannot send, in the front's own wire types: protobuf `string`s
/// that are not UTF-8 are judged, not failed (decoding them as `String`s made the whole check a
/// gRPC error, which `failure_mode_allow: true` lets through), and a method the service does
/// not have is `UNIMPLEMENTED`, as from a generated server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_that_are_not_utf8_are_judged_and_other_methods_unimplemented() {
    use barong::authz::grpc::wire;
    use bytes::Bytes;
    use http::uri::PathAndQuery;

    let (_db, server) = barong(&[]).await;
    let channel = tonic::transport::Channel::from_shared(server.grpc.clone().expect("gRPC"))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let mut grpc = tonic::client::Grpc::new(channel);
    let check = |path: &'static [u8], agent: &'static [u8]| wire::CheckRequest {
        attributes: Some(wire::AttributeContext {
            source: None,
            request: Some(wire::Request {
                http: Some(wire::HttpRequest {
                    method: Bytes::from_static(b"GET"),
                    headers: vec![wire::HeaderEntry {
                        key: Bytes::from_static(b"user-agent"),
                        value: Bytes::from_static(agent),
                    }],
                    path: Bytes::from_static(path),
                    header_map: None,
                }),
            }),
        }),
    };
    let codec = tonic_prost::ProstCodec::<wire::CheckRequest, CheckResponse>::default;
    let mut ask = async |method: &'static str, request: wire::CheckRequest| {
        grpc.ready().await.expect("ready");
        grpc.unary(
            tonic::Request::new(request),
            PathAndQuery::from_static(method),
            codec(),
        )
        .await
        .map(tonic::Response::into_inner)
    };
    let public: &[u8] = b"/api/v2/peatio/public/markets";
    const CHECK: &str = "/envoy.service.auth.v3.Authorization/Check";

    let response = ask(CHECK, check(b"/api/v2/peatio/public/\xff", b"ua")).await;
    let response = response.expect("a CheckResponse");
    let (status, text, _) = denied(&response);
    assert_eq!(
        (status, text),
        (400, r#"{"errors":["authz.invalid_path"]}"#)
    );
    // Not UTF-8 but a header value HTTP allows (obs-text): judged like any other.
    let response = ask(CHECK, check(public, b"caf\xe9")).await;
    allowed(&response.expect("a CheckResponse"));

    let other = ask(
        "/envoy.service.auth.v3.Authorization/Other",
        check(public, b"ua"),
    )
    .await;
    assert_eq!(
        other.expect_err("no such method").code(),
        tonic::Code::Unimplemented
    );
}
