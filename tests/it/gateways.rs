//! barong behind the real gateways: nginx (`auth_request`) and Envoy (`ext_authz`), each started
//! with the shipped config (`nginx/barong.conf`, `envoy/envoy.yaml`) in front of barong's two
//! listeners (or a stub authz server speaking the same header contract) and an upstream that
//! echoes what reached it. On SQLite (these tests are about the gateway, not the database), but
//! for two instances behind one gateway, which share a PostgreSQL database as deployments do.

use crate::common;
use crate::common::http;
use axum::http::{HeaderValue, StatusCode as AxumStatus, header};
use axum::response::{IntoResponse, Response};
use std::time::Duration;

use common::gateway::{
    Backends, BarongRoute, CountingRelay, Gateway, Proxy, StubServer, closed_addr, echo_upstream,
    read_head, websocket_accept, websocket_upstream,
};
use common::{Backend, TestDb, TestServer};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A client without cookies or proxies from the environment.
async fn barong() -> (TestDb, TestServer) {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = TestServer::start(db.dir.path(), &db.url, &[]);
    (db, server)
}

/// Status, content type and JSON body of an answer.
async fn answer(response: reqwest::Response) -> (StatusCode, String, Value) {
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = response.text().await.expect("body");
    let body =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {status} {text:?}"));
    (status, content_type, body)
}

fn errors(key: &str) -> Value {
    json!({ "errors": [key] })
}

/// The header `name` of a request the stubs recorded.
fn header_of<'a>(request: &'a Value, name: &str) -> Option<&'a str> {
    request["headers"][name].as_str()
}

pub(crate) async fn public_routes_reach_their_backend(proxy: Proxy) {
    let (_db, server) = barong().await;
    let upstream = echo_upstream().await;
    let gateway = Gateway::in_front_of(proxy, &server, &upstream).await;
    let http = http();

    // Barong's public and identity routes reach the REST listener.
    for path in ["/api/v2/barong/public/ping", "/api/v2/barong/identity/ping"] {
        let (status, content_type, body) =
            answer(http.get(gateway.url(path)).send().await.expect("ping")).await;
        assert_eq!(
            (status, body),
            (StatusCode::OK, json!({"ping": "pong"})),
            "{path}"
        );
        assert_eq!(content_type, "application/json");
    }
    assert!(upstream.requests().is_empty());

    // A public route of the application: the request arrives whole (method, query, body,
    // cookie), with the client's address appended to X-Forwarded-For, and without the client's
    // own Authorization header.
    let (status, _, seen) = answer(
        http.post(gateway.url("/api/v2/peatio/public/markets?limit=5"))
            .header("authorization", "Bearer forged")
            .header("x-forwarded-for", "203.0.113.7")
            .header("cookie", "_barong_session=abc")
            .header("content-type", "application/json")
            .body(r#"{"market":"btcusd"}"#)
            .send()
            .await
            .expect("markets"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{seen}");
    assert_eq!(seen["method"], "POST");
    assert_eq!(seen["path"], "/api/v2/peatio/public/markets?limit=5");
    assert_eq!(seen["body"], r#"{"market":"btcusd"}"#);
    assert_eq!(header_of(&seen, "cookie"), Some("_barong_session=abc"));
    assert_eq!(header_of(&seen, "authorization"), None, "{seen}");
    // The edge overwrites the client's own X-Forwarded-For with the address it saw.
    assert_eq!(
        header_of(&seen, "x-forwarded-for"),
        Some("127.0.0.1"),
        "{seen}"
    );
    assert_eq!(upstream.requests().len(), 1);

    // Large bodies both ways (nginx buffers them in its temp files).
    let big = "x".repeat(512 * 1024);
    let response = http
        .put(gateway.url("/api/v2/peatio/public/upload"))
        .body(big.clone())
        .send()
        .await
        .expect("upload");
    assert_eq!(response.status(), StatusCode::OK, "{}", gateway.log_text());
    let seen: Value = response.json().await.expect("json");
    assert_eq!(seen["body"].as_str().map(str::len), Some(big.len()));
    drop(gateway);

    // The prefix-rewrite variant commented in both configs also reaches barong, which serves
    // Barong's own mount point /api/v2/... too.
    let backends = Backends::for_proxy(proxy, &server, upstream.addr);
    let gateway = Gateway::start(proxy, &backends, BarongRoute::Rewrite).await;
    let (status, _, body) = answer(
        http.get(gateway.url("/api/v2/barong/public/ping"))
            .send()
            .await
            .expect("ping"),
    )
    .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"ping": "pong"})));
}

pub(crate) async fn denies_reach_the_client_with_barongs_body(proxy: Proxy) {
    let (_db, server) = barong().await;
    let upstream = echo_upstream().await;
    let gateway = Gateway::in_front_of(proxy, &server, &upstream).await;
    let http = http();

    // The decision depends on the real method: without a session, a GET has no session and a
    // write has no CSRF token (checked first, as Barong does), nginx's GET subrequest included.
    let cases = [
        (
            "GET",
            "/api/v2/peatio/account/balances",
            "authz.invalid_session",
        ),
        (
            "POST",
            "/api/v2/peatio/market/orders",
            "authz.missing_csrf_token",
        ),
        (
            "DELETE",
            "/api/v2/peatio/market/orders",
            "authz.missing_csrf_token",
        ),
        (
            "GET",
            "/api/v2/peatio/market/orders",
            "authz.invalid_session",
        ),
        (
            "GET",
            "/api/v2/barong/resource/users/me",
            "authz.invalid_session",
        ),
        (
            "PUT",
            "/api/v2/barong/resource/users/me",
            "authz.missing_csrf_token",
        ),
        (
            "GET",
            "/api/v2/barong/management/users/get",
            "authz.permission_denied",
        ),
        (
            "POST",
            "/api/v2/peatio/management/deposits",
            "authz.permission_denied",
        ),
    ];
    for (method, path, key) in cases {
        let mut request = http
            .request(method.parse().expect("method"), gateway.url(path))
            .header("authorization", "Bearer forged");
        if method != "GET" {
            // A body must not reach (nor stall) the check.
            request = request
                .header("content-type", "application/json")
                .body(format!(r#"{{"volume":"{}"}}"#, "1".repeat(4096)));
        }
        let response = request.send().await.expect("request");
        // Over HTTP, Envoy passes only the headers its config allows; a gRPC deny carries
        // barong's X-Barong-* headers to the client with the body they repeat.
        let barong_error = response.headers().get("x-barong-error").cloned();
        match proxy {
            Proxy::EnvoyGrpc => {
                assert_eq!(
                    barong_error.as_ref().map(|v| v.as_bytes()),
                    Some(errors(key).to_string().as_bytes())
                );
            }
            _ => assert!(
                barong_error.is_none(),
                "the nginx-only headers reach the client"
            ),
        }
        let (status, content_type, body) = answer(response).await;
        assert_eq!(
            (status, body),
            (StatusCode::UNAUTHORIZED, errors(key)),
            "{method} {path}"
        );
        assert_eq!(content_type, "application/json", "{method} {path}");
    }

    // Paths whose raw and normalised forms differ are never judged by their public prefix and
    // then served as a private one: nginx refuses them, Envoy normalises before the check.
    for path in [
        "/api/v2/peatio/public/../account/balances",
        "/api/v2/peatio/public/%2e%2e/account/balances",
        "/api/v2/peatio/public/%2E%2E/account/balances",
    ] {
        let (status, text) = gateway
            .raw(&format!(
                "GET {path} HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n"
            ))
            .await;
        match proxy {
            Proxy::Nginx => assert_eq!(status, 400, "{path}: {text}"),
            Proxy::Envoy | Proxy::EnvoyGrpc => {
                assert_eq!(status, 401, "{path}: {text}");
                assert!(text.contains("authz.invalid_session"), "{text}");
            }
        }
    }
    assert!(upstream.requests().is_empty(), "{:?}", upstream.requests());
}

pub(crate) async fn authz_down_fails_closed(proxy: Proxy) {
    let upstream = echo_upstream().await;
    let backends = Backends::new(closed_addr(), upstream.addr, upstream.addr);
    let gateway = Gateway::start(proxy, &backends, BarongRoute::AsIs).await;
    for path in [
        "/api/v2/barong/public/ping",
        "/api/v2/peatio/public/markets",
        "/api/v2/peatio/account/balances",
    ] {
        let response = http().get(gateway.url(path)).send().await.expect("request");
        // Both gateways answer with barong's JSON body, which clients decode like any deny.
        let (status, content_type, body) = answer(response).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert_eq!(body, errors("authz.unavailable"), "{path}");
        assert_eq!(content_type, "application/json", "{path}");
    }
    assert!(upstream.requests().is_empty(), "{:?}", upstream.requests());
}

/// barong too slow to answer: the gateway gives up after its short check timeout (2 s) and
/// answers 503, never the upstream.
async fn slow_authz_times_out_closed(proxy: Proxy) {
    let authz = StubServer::serve(axum::Router::new().fallback(|| async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        barong_allow(None)
    }))
    .await;
    let upstream = echo_upstream().await;
    let backends = Backends::new(authz.addr, upstream.addr, upstream.addr);
    let gateway = Gateway::start(proxy, &backends, BarongRoute::AsIs).await;
    let started = std::time::Instant::now();
    let response = http()
        .get(gateway.url("/api/v2/peatio/public/markets"))
        .send()
        .await
        .expect("request");
    let took = started.elapsed();
    let (status, _, body) = answer(response).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body, errors("authz.unavailable"));
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(6),
        "answered after {took:?}"
    );
    assert!(upstream.requests().is_empty());
}

/// A deny as barong's authz listener answers it: status, JSON body, and both repeated in
/// X-Barong-Status / X-Barong-Error for nginx.
fn barong_deny(status: u16, key: &str) -> Response {
    let body = errors(key).to_string();
    let mut response = (
        AxumStatus::from_u16(status).expect("status"),
        [(header::CONTENT_TYPE, "application/json")],
        body.clone(),
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert("x-barong-status", HeaderValue::from(status));
    headers.insert(
        "x-barong-error",
        HeaderValue::from_str(&body).expect("header"),
    );
    response
}

/// An allow as barong answers it: 200, empty body, `Content-Length: 0`, and for a principal the
/// minted JWT.
fn barong_allow(jwt: Option<&str>) -> Response {
    let mut response = (AxumStatus::OK, "").into_response();
    if let Some(jwt) = jwt {
        let headers = response.headers_mut();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {jwt}")).expect("header"),
        );
        headers.insert(
            header::SET_COOKIE,
            HeaderValue::from_static("_barong_session=refreshed; path=/; HttpOnly"),
        );
    }
    response
}

/// Stub authz: `/api/v2/auth/<case>/...` answers as barong would for that case.
async fn stub_authz() -> StubServer {
    StubServer::start(|request| {
        let path = request["path"].as_str().unwrap_or_default();
        let case = path
            .strip_prefix("/api/v2/auth/api/v2/")
            .and_then(|rest| rest.split('/').nth(1))
            .unwrap_or_default();
        match case {
            "maintenance" => barong_deny(471, "authz.restrict.maintenance"),
            "apikey" => barong_deny(422, "authz.invalid_api_key_headers"),
            "country" => barong_deny(423, "authz.restrict.blacklist"),
            "custom" => barong_deny(435, "authz.restrict.blacklist"),
            "subnet" => barong_deny(403, "authz.restrict.blacklist"),
            "session" => barong_deny(401, "authz.invalid_session"),
            "unlisted" => barong_deny(452, "authz.restrict.blacklist"),
            "outage" => barong_deny(503, "authz.unavailable"),
            "private" => barong_allow(Some("minted.jwt.token")),
            "" => barong_deny(401, "authz.invalid_session"),
            _ => barong_allow(None),
        }
    })
    .await
}

async fn barongs_statuses_and_jwt_cross_the_gateway(proxy: Proxy) {
    let authz = stub_authz().await;
    let api = echo_upstream().await;
    let upstream = echo_upstream().await;
    let backends = Backends::new(authz.addr, api.addr, upstream.addr);
    let gateway = Gateway::start(proxy, &backends, BarongRoute::AsIs).await;
    let http = http();

    // Every deny status barong uses reaches the client with barong's JSON body; nginx restores
    // them from the headers (it would answer 500 otherwise), Envoy passes them on.
    let unlisted = match proxy {
        // nginx's `return` needs a literal status: one not listed in the config becomes 403.
        Proxy::Nginx => 403,
        Proxy::Envoy | Proxy::EnvoyGrpc => 452,
    };
    let cases = [
        ("maintenance", 471, "authz.restrict.maintenance"),
        ("apikey", 422, "authz.invalid_api_key_headers"),
        ("country", 423, "authz.restrict.blacklist"),
        ("custom", 435, "authz.restrict.blacklist"),
        ("subnet", 403, "authz.restrict.blacklist"),
        ("session", 401, "authz.invalid_session"),
        ("unlisted", unlisted, "authz.restrict.blacklist"),
    ];
    for (case, status, key) in cases {
        for prefix in ["/api/v2/peatio", "/api/v2/barong"] {
            let path = format!("{prefix}/{case}/x?y=1");
            let response = http
                .post(gateway.url(&path))
                .body("{}")
                .send()
                .await
                .expect("request");
            let (got, content_type, body) = answer(response).await;
            assert_eq!(
                (got.as_u16(), body),
                (status, errors(key)),
                "{path}\n{}",
                gateway.log_text()
            );
            assert_eq!(content_type, "application/json", "{path}");
        }
    }
    assert!(upstream.requests().is_empty() && api.requests().is_empty());

    // barong failing (database down): 503 either way, barong's body through nginx.
    let response = http
        .get(gateway.url("/api/v2/peatio/outage/x"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    if proxy == Proxy::Nginx {
        assert_eq!(
            response.json::<Value>().await.expect("json"),
            errors("authz.unavailable")
        );
    }

    // An allow with a principal: the minted JWT replaces whatever the client sent, to the
    // application and to barong's REST listener alike; the refreshed cookie reaches the client.
    for (path, backend) in [
        ("/api/v2/peatio/private/orders", &upstream),
        ("/api/v2/barong/private/users/me", &api),
    ] {
        let response = http
            .get(gateway.url(path))
            .header("authorization", "Bearer forged")
            .send()
            .await
            .expect("request");
        let cookie = response
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let (status, _, seen) = answer(response).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(seen["path"], path);
        assert_eq!(
            header_of(&seen, "authorization"),
            Some("Bearer minted.jwt.token"),
            "{path}: {seen}"
        );
        assert_eq!(
            cookie.as_deref(),
            Some("_barong_session=refreshed; path=/; HttpOnly"),
            "{path}"
        );
        assert_eq!(backend.requests().len(), 1);
        backend.clear();
    }

    // A public allow (no JWT): nothing of the client's Authorization passes either.
    let (status, _, seen) = answer(
        http.get(gateway.url("/api/v2/barong/public/anything"))
            .header("authorization", "Bearer forged")
            .send()
            .await
            .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header_of(&seen, "authorization"), None, "{seen}");
}

async fn authz_sees_the_original_request(proxy: Proxy) {
    let authz = stub_authz().await;
    let upstream = echo_upstream().await;
    let backends = Backends::new(authz.addr, upstream.addr, upstream.addr);
    let gateway = Gateway::start(proxy, &backends, BarongRoute::AsIs).await;

    let response = http()
        .delete(gateway.url("/api/v2/peatio/market/orders/7?market=btcusd&side=buy"))
        .header("cookie", "_barong_session=s1; lang=en")
        .header("user-agent", "Mozilla/5.0 (gateway test)")
        .header("x-forwarded-for", "203.0.113.7")
        .header("x-csrf-token", "csrf-1")
        .header("x-auth-apikey", "kid-1")
        .header("x-auth-nonce", "1700000000000")
        .header("x-auth-signature", "sig-1")
        .header("authorization", "Bearer forged")
        // A client cannot make the check see another method.
        .header("x-original-method", "GET")
        .header("x-forwarded-method", "GET")
        .header("content-type", "application/json")
        .body(r#"{"confirm":true}"#)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);

    let checks = authz.requests();
    assert_eq!(checks.len(), 1, "{checks:?}");
    let check = &checks[0];
    assert_eq!(
        check["path"],
        "/api/v2/auth/api/v2/peatio/market/orders/7?market=btcusd&side=buy"
    );
    // The method as barong reads it: X-Original-Method, else X-Forwarded-Method, else the verb.
    let method = header_of(check, "x-original-method")
        .or_else(|| header_of(check, "x-forwarded-method"))
        .or_else(|| check["method"].as_str());
    assert_eq!(method, Some("DELETE"), "{check}");
    assert_eq!(check["body"], "", "{check}");
    assert!(
        matches!(header_of(check, "content-length"), None | Some("0")),
        "{check}"
    );
    for (name, value) in [
        ("cookie", "_barong_session=s1; lang=en"),
        ("user-agent", "Mozilla/5.0 (gateway test)"),
        ("x-csrf-token", "csrf-1"),
        ("x-auth-apikey", "kid-1"),
        ("x-auth-nonce", "1700000000000"),
        ("x-auth-signature", "sig-1"),
    ] {
        assert_eq!(header_of(check, name), Some(value), "{name}: {check}");
    }
    assert_eq!(
        header_of(check, "x-forwarded-for"),
        Some("127.0.0.1"),
        "{check}"
    );

    // The upstream gets the request whole, but for what is barong's alone: the API-key
    // credentials (replayable) and the client's own Authorization header.
    let seen = upstream.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0]["method"], "DELETE");
    assert_eq!(seen[0]["body"], r#"{"confirm":true}"#);
    for name in [
        "x-auth-apikey",
        "x-auth-nonce",
        "x-auth-signature",
        "x-original-method",
        "x-forwarded-method",
    ] {
        assert_eq!(header_of(&seen[0], name), None, "{name}: {}", seen[0]);
    }
    assert_eq!(header_of(&seen[0], "x-forwarded-for"), Some("127.0.0.1"));
}

async fn barong_route_variants(proxy: Proxy) {
    let authz = stub_authz().await;
    let api = echo_upstream().await;
    let upstream = echo_upstream().await;
    let backends = Backends::new(authz.addr, api.addr, upstream.addr);
    for (route, reaches) in [
        (BarongRoute::AsIs, "/api/v2/barong/public/ping?x=1"),
        (BarongRoute::Rewrite, "/api/v2/public/ping?x=1"),
    ] {
        let gateway = Gateway::start(proxy, &backends, route).await;
        let (status, _, seen) = answer(
            http()
                .get(gateway.url("/api/v2/barong/public/ping?x=1"))
                .send()
                .await
                .expect("request"),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(seen["path"], reaches, "{route:?}");
        // The check is always on the path the client asked for.
        let checks = authz.requests();
        assert_eq!(
            checks.last().expect("checked")["path"],
            "/api/v2/auth/api/v2/barong/public/ping?x=1"
        );
        authz.clear();
    }
    assert!(upstream.requests().is_empty());
}

/// Restrictions seeded in barong, matched on the client address the proxy saw (clients bind
/// loopback addresses of their own): their own statuses (471, 433, 434) reach the client, and
/// no forwarding header a client writes itself moves it in or out of a restriction.
pub(crate) async fn restrictions_reach_the_client_with_their_status(proxy: Proxy) {
    let db = TestDb::new(Backend::Sqlite).await;
    let seeds = barong::seed::DEFAULT_SEEDS.replacen(
        "restrictions:\n",
        "restrictions:\n\
         \x20 - { category: maintenance, scope: ip, value: 127.0.0.9 }\n\
         \x20 - { category: blacklist, scope: ip, value: 127.0.0.7, code: 433 }\n\
         \x20 - { category: blacklist, scope: ip_subnet, value: 127.0.2.0/24, code: 434 }\n",
        1,
    );
    let seeds_file = db.dir.path().join("seeds.yml");
    std::fs::write(&seeds_file, seeds).expect("seeds");
    let seeds_path = seeds_file.to_str().expect("utf-8 path");
    let server = TestServer::start(db.dir.path(), &db.url, &[("BARONG_SEEDS_FILE", seeds_path)]);
    let upstream = echo_upstream().await;
    let gateway = Gateway::in_front_of(proxy, &server, &upstream).await;
    let from = common::client_from;

    let forged = [
        ("x-forwarded-for", "8.8.8.8"),
        ("client-ip", "8.8.8.8"),
        ("true-client-ip", "8.8.8.8"),
        ("x-real-ip", "8.8.8.8"),
        ("forwarded", "for=8.8.8.8"),
    ];
    for (client, path, expected) in [
        (
            "127.0.0.9",
            "/api/v2/peatio/public/markets",
            Some((471, "authz.restrict.maintenance")),
        ),
        (
            "127.0.0.7",
            "/api/v2/barong/identity/ping",
            Some((433, "authz.restrict.blacklist")),
        ),
        (
            "127.0.2.20",
            "/api/v2/peatio/public/markets",
            Some((434, "authz.restrict.blacklist")),
        ),
        ("127.0.0.8", "/api/v2/peatio/public/markets", None),
    ] {
        for (name, value) in [("user-agent", "plain")].into_iter().chain(forged) {
            let response = from(client)
                .get(gateway.url(path))
                .header(name, value)
                .send()
                .await
                .expect("request");
            match expected {
                Some((status, key)) => {
                    let (got, content_type, body) = answer(response).await;
                    assert_eq!(
                        (got.as_u16(), body),
                        (status, errors(key)),
                        "{client} {name}"
                    );
                    assert_eq!(content_type, "application/json");
                }
                None => {
                    assert_eq!(response.status(), StatusCode::OK, "{client} {name}");
                    let seen: Value = response.json().await.expect("echo");
                    // The upstream gets the edge's view of the address, never the client's claim.
                    assert_eq!(header_of(&seen, "x-forwarded-for"), Some(client), "{seen}");
                    for header in ["client-ip", "true-client-ip", "forwarded"] {
                        assert_eq!(header_of(&seen, header), None, "{header}: {seen}");
                    }
                }
            }
        }
        // A restricted address cannot claim to be an unrestricted one either.
        if expected.is_some() {
            let response = from(client)
                .get(gateway.url(path))
                .header("x-forwarded-for", "127.0.0.8")
                .send()
                .await
                .expect("request");
            assert_ne!(response.status(), StatusCode::OK, "{client}");
        }
    }
}

const AGENT: &str = "Mozilla/5.0 (X11; Linux x86_64) gateway-tests";
const ENCRYPTION_KEY: &str = "0202020202020202020202020202020202020202020202020202020202020202";

fn random_hex<const N: usize>() -> String {
    let mut bytes = [0u8; N];
    aws_lc_rs::rand::fill(&mut bytes).expect("random");
    hex::encode(bytes)
}

/// The client address barong computes for a request through `gateway` that carries no
/// `X-Forwarded-For` of its own (learnt from what the proxy appends, via the echo upstream).
async fn address_through(gateway: &Gateway, upstream: &StubServer) -> String {
    upstream.clear();
    let response = http()
        .get(gateway.url("/api/v2/peatio/public/markets"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    let seen = upstream.requests().pop().expect("upstream reached");
    upstream.clear();
    let mut headers = axum::http::HeaderMap::new();
    if let Some(xff) = header_of(&seen, "x-forwarded-for") {
        headers.insert("x-forwarded-for", HeaderValue::from_str(xff).expect("xff"));
    }
    barong::domain::TrustedProxies::default()
        .client_ip(&headers, [127, 0, 0, 1].into())
        .to_string()
}

/// Verifies a JWT the upstream received against barong's JWKS, as an upstream would.
async fn verify_jwt(server: &TestServer, authorization: &str) -> Value {
    let token = authorization.strip_prefix("Bearer ").expect("Bearer");
    let jwks: jsonwebtoken::jwk::JwkSet = http()
        .get(format!("{}/.well-known/jwks.json", server.authz))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("jwks json");
    let header = jsonwebtoken::decode_header(token).expect("jwt header");
    let jwk = jwks
        .find(header.kid.as_deref().expect("kid"))
        .expect("key in jwks");
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_audience(&["peatio", "barong"]);
    validation.set_issuer(&["barong"]);
    jsonwebtoken::decode::<Value>(
        token,
        &jsonwebtoken::DecodingKey::from_jwk(jwk).expect("jwk"),
        &validation,
    )
    .expect("valid jwt")
    .claims
}

/// A migrated, seeded database with one active member (2FA on, level 3).
async fn seeded_with_member(
    db: &TestDb,
) -> (
    std::sync::Arc<dyn barong::store::Store>,
    barong::domain::User,
) {
    let store = db.open().await;
    store.migrate().await.expect("migrate");
    barong::seed::Seeds::parse(barong::seed::DEFAULT_SEEDS)
        .expect("seeds")
        .apply(store.as_ref(), "ID")
        .await
        .expect("seed");
    let user = store
        .create_user(&barong::domain::NewUser {
            uid: "ID0000000042".into(),
            username: None,
            email: "gateway@barong.test".into(),
            password_digest: "$argon2id$unused".into(),
            role: "member".into(),
            data: None,
            level: 3,
            otp: true,
            state: "active".into(),
            referral_id: None,
            labels: vec![],
        })
        .await
        .expect("user");
    (store, user)
}

/// Opens a session as the identity API would, from `ip` with `AGENT`: returns the `Cookie`
/// header value and the CSRF token.
async fn open_session(
    store: &dyn barong::store::Store,
    user: &barong::domain::User,
    ip: &str,
) -> (String, String) {
    let cookie = random_hex::<16>();
    let csrf = random_hex::<10>();
    store
        .create_session(&barong::domain::NewSession {
            id: barong::domain::session_key(&cookie),
            user_id: user.id,
            uid: user.uid.clone(),
            user_ip: ip.into(),
            user_agent: Some(AGENT.into()),
            csrf_token: csrf.clone(),
            expire_at: chrono::Utc::now().timestamp() + 600,
            authenticated_with: "password".into(),
            user_ip_country: None,
        })
        .await
        .expect("session");
    (format!("_barong_session={cookie}"), csrf)
}

/// A signed-in user through the proxy: the session cookie and the CSRF token go to barong, the
/// JWT it mints reaches the upstream (verifiable with barong's JWKS), the session stays bound to
/// the client; and an API key's signed headers do the same.
pub(crate) async fn signed_in_users_reach_the_upstream_with_a_jwt(proxy: Proxy) {
    let db = TestDb::new(Backend::Sqlite).await;
    let (store, user) = seeded_with_member(&db).await;
    let server = TestServer::start(
        db.dir.path(),
        &db.url,
        &[("BARONG_ENCRYPTION_KEY", ENCRYPTION_KEY)],
    );
    let upstream = echo_upstream().await;
    let gateway = Gateway::in_front_of(proxy, &server, &upstream).await;
    let http = http();

    // A session opened from the address barong sees through this proxy.
    let ip = address_through(&gateway, &upstream).await;
    let (cookie, csrf) = open_session(store.as_ref(), &user, &ip).await;

    // Reads: the JWT replaces the client's Authorization.
    let (status, _, seen) = answer(
        http.get(gateway.url("/api/v2/peatio/account/balances"))
            .header("cookie", &cookie)
            .header("user-agent", AGENT)
            .header("authorization", "Bearer forged")
            .send()
            .await
            .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{seen}");
    let claims = verify_jwt(&server, header_of(&seen, "authorization").expect("jwt")).await;
    assert_eq!(claims["uid"], "ID0000000042");
    assert_eq!(claims["email"], "gateway@barong.test");
    assert_eq!(claims["role"], "member");
    assert_eq!(header_of(&seen, "cookie"), Some(cookie.as_str()));

    // A browser sends all of a site's cookies in one line: a value outside ASCII beside the
    // session (a language a page's script set) crosses the proxy and leaves the session whole.
    let line = format!("lang=fran\u{e7}ais; {cookie}");
    let (status, _, seen) = answer(
        http.get(gateway.url("/api/v2/peatio/account/balances"))
            .header(
                "cookie",
                reqwest::header::HeaderValue::from_bytes(line.as_bytes()).expect("value"),
            )
            .header("user-agent", AGENT)
            .send()
            .await
            .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{seen}");
    assert!(header_of(&seen, "authorization").is_some_and(|v| v.starts_with("Bearer ")));

    // Writes need the CSRF token, which the proxy passes to barong.
    let order = r#"{"market":"btcusd","side":"buy","volume":"1"}"#;
    let (status, _, body) = answer(
        http.post(gateway.url("/api/v2/peatio/market/orders"))
            .header("cookie", &cookie)
            .header("user-agent", AGENT)
            .body(order)
            .send()
            .await
            .expect("request"),
    )
    .await;
    assert_eq!(
        (status, body),
        (StatusCode::UNAUTHORIZED, errors("authz.missing_csrf_token"))
    );
    let (status, _, seen) = answer(
        http.post(gateway.url("/api/v2/peatio/market/orders"))
            .header("cookie", &cookie)
            .header("user-agent", AGENT)
            .header("x-csrf-token", &csrf)
            .body(order)
            .send()
            .await
            .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{seen}");
    assert_eq!(
        (seen["method"].as_str(), seen["body"].as_str()),
        (Some("POST"), Some(order))
    );
    assert!(header_of(&seen, "authorization").is_some_and(|v| v.starts_with("Bearer ")));

    // A path the member has no permission for.
    let (status, _, body) = answer(
        http.get(gateway.url("/api/v2/peatio/admin/members"))
            .header("cookie", &cookie)
            .header("user-agent", AGENT)
            .send()
            .await
            .expect("request"),
    )
    .await;
    assert_eq!(
        (status, body),
        (StatusCode::UNAUTHORIZED, errors("authz.invalid_permission"))
    );

    // API keys: the signed headers reach barong; incomplete ones give Barong's 422.
    let kid = random_hex::<8>();
    let secret = random_hex::<16>();
    let encryptor = barong::crypto::encryption::Encryptor::new(
        &barong::crypto::keys::EncryptionKey::parse(ENCRYPTION_KEY).expect("key"),
    );
    store
        .create_api_key(&barong::domain::NewApiKey {
            holder: barong::domain::KeyHolder::User(user.id),
            kid: kid.clone(),
            algorithm: "HS256".into(),
            scope: vec!["trade".into()],
            secret_encrypted: encryptor.encrypt(&secret),
            state: "active".into(),
        })
        .await
        .expect("api key");
    let nonce = chrono::Utc::now().timestamp_millis().to_string();
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.as_bytes());
    let signature = hex::encode(aws_lc_rs::hmac::sign(
        &key,
        format!("{nonce}{kid}").as_bytes(),
    ));
    let (status, _, seen) = answer(
        http.get(gateway.url("/api/v2/peatio/account/balances"))
            .header("x-auth-apikey", &kid)
            .header("x-auth-nonce", &nonce)
            .header("x-auth-signature", &signature)
            .send()
            .await
            .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{seen}");
    let claims = verify_jwt(&server, header_of(&seen, "authorization").expect("jwt")).await;
    assert_eq!(claims["uid"], "ID0000000042");
    let (status, content_type, body) = answer(
        http.get(gateway.url("/api/v2/peatio/account/balances"))
            .header("x-auth-apikey", &kid)
            .send()
            .await
            .expect("request"),
    )
    .await;
    assert_eq!(
        (status.as_u16(), body),
        (422, errors("authz.invalid_api_key_headers"))
    );
    assert_eq!(content_type, "application/json");

    // The session is bound to the browser: another User-Agent ends it.
    let (status, _, body) = answer(
        http.get(gateway.url("/api/v2/peatio/account/balances"))
            .header("cookie", &cookie)
            .header("user-agent", "curl/8")
            .send()
            .await
            .expect("request"),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::UNAUTHORIZED,
            errors("authz.client_session_mismatch")
        )
    );
}

/// WebSockets (ranger) through the check: the upgrade is checked like any request and gets the
/// minted JWT; then the proxy keeps a tunnel. A denied upgrade gets barong's answer.
async fn websockets_upgrade_after_the_check(proxy: Proxy) {
    let authz = stub_authz().await;
    let ranger = websocket_upstream().await;
    let backends = Backends::new(authz.addr, ranger.addr, ranger.addr);
    let gateway = Gateway::start(proxy, &backends, BarongRoute::AsIs).await;
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    let upgrade = |path: &str| {
        format!(
            "GET {path} HTTP/1.1\r\nHost: gateway\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\
             Authorization: Bearer forged\r\nCookie: _barong_session=s1\r\n\r\n"
        )
    };

    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", gateway.port))
        .await
        .expect("connect");
    stream
        .write_all(upgrade("/api/v2/ranger/private/?stream=order").as_bytes())
        .await
        .expect("write");
    let (head, rest) = tokio::time::timeout(Duration::from_secs(10), read_head(&mut stream))
        .await
        .expect("in time")
        .expect("answer");
    assert!(
        head.starts_with("HTTP/1.1 101"),
        "{head}\n{}",
        gateway.log_text()
    );
    assert!(
        head.to_ascii_lowercase().contains(
            &format!("sec-websocket-accept: {}", websocket_accept(key)).to_ascii_lowercase()
        ),
        "{head}"
    );
    assert!(rest.is_empty());
    stream.write_all(b"tunnelled bytes").await.expect("write");
    let mut echoed = [0u8; 15];
    tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut echoed))
        .await
        .expect("in time")
        .expect("echo");
    assert_eq!(&echoed, b"tunnelled bytes");
    let seen = ranger.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0]["path"], "/api/v2/ranger/private/?stream=order");
    assert_eq!(
        header_of(&seen[0], "authorization"),
        Some("Bearer minted.jwt.token")
    );
    assert_eq!(header_of(&seen[0], "upgrade"), Some("websocket"));
    let check = authz.requests().pop().expect("checked");
    assert_eq!(
        check["path"],
        "/api/v2/auth/api/v2/ranger/private/?stream=order"
    );
    drop(stream);

    // Denied: barong's answer, no upgrade, the application never asked.
    ranger.clear();
    let (status, text) = gateway.raw(&upgrade("/api/v2/ranger/session/")).await;
    assert_eq!(status, 401, "{text}");
    assert!(
        text.ends_with(r#"{"errors":["authz.invalid_session"]}"#),
        "{text}"
    );
    assert!(ranger.requests().is_empty());
}

/// The gateway keeps its connections to barong's authz listener open, for allows (empty body,
/// `Content-Length: 0`) and denies alike (nginx asks with HEAD, so a deny carries no body
/// either): one connection per check would cost a handshake each and pile up TIME_WAITs.
async fn checks_reuse_connections_to_barong(proxy: Proxy) {
    let (_db, server) = barong().await;
    let upstream = echo_upstream().await;
    let relay = CountingRelay::start(Backends::of(&server, upstream.addr).authz).await;
    let backends = Backends::new(
        relay.addr,
        Backends::of(&server, upstream.addr).api,
        upstream.addr,
    );
    let gateway = Gateway::start(proxy, &backends, BarongRoute::AsIs).await;
    let http = http();
    for round in 0..20 {
        for (path, status) in [
            ("/api/v2/barong/public/ping", StatusCode::OK),
            ("/api/v2/peatio/public/markets", StatusCode::OK),
            ("/api/v2/peatio/account/balances", StatusCode::UNAUTHORIZED),
            (
                "/api/v2/barong/management/users/get",
                StatusCode::UNAUTHORIZED,
            ),
        ] {
            let response = http.get(gateway.url(path)).send().await.expect("request");
            assert_eq!(response.status(), status, "{path} (round {round})");
            // Read the whole answer so the client's connection is reused too.
            let _ = response.bytes().await;
        }
    }
    assert!(
        relay.connections() <= 4,
        "80 checks took {} connections to barong",
        relay.connections()
    );
}

/// Two barong instances on one PostgreSQL behind one gateway: checks are spread over both, a
/// session opened on either is honoured by both, and when one instance goes away the gateway
/// goes on with the other.
async fn two_barongs_behind_one_gateway(proxy: Proxy) {
    let db = TestDb::new(Backend::Postgres).await;
    let (store, user) = seeded_with_member(&db).await;
    // One data dir: the second instance reuses the signing key the first generated.
    let env = [("BARONG_ENCRYPTION_KEY", ENCRYPTION_KEY)];
    let first = TestServer::start(db.dir.path(), &db.url, &env);
    let second = TestServer::start(db.dir.path(), &db.url, &env);
    let upstream = echo_upstream().await;
    let relays = [
        CountingRelay::start(Backends::of(&first, upstream.addr).authz).await,
        CountingRelay::start(Backends::of(&second, upstream.addr).authz).await,
    ];
    let mut backends = Backends::of_all(&[&first, &second], upstream.addr);
    backends.authz = relays[0].addr;
    backends.more[0].0 = relays[1].addr;
    let gateway = Gateway::start(proxy, &backends, BarongRoute::AsIs).await;
    let http = http();

    let ip = address_through(&gateway, &upstream).await;
    let (cookie, _) = open_session(store.as_ref(), &user, &ip).await;
    let round = || {
        let http = http.clone();
        let cookie = cookie.clone();
        let gateway_url = gateway.url("");
        async move {
            for n in 0..12 {
                let response = http
                    .get(format!("{gateway_url}/api/v2/peatio/account/balances"))
                    .header("cookie", &cookie)
                    .header("user-agent", AGENT)
                    .send()
                    .await
                    .expect("request");
                let (status, _, seen) = answer(response).await;
                assert_eq!(status, StatusCode::OK, "request {n}: {seen}");
                assert!(header_of(&seen, "authorization").is_some(), "{seen}");
                let response = http
                    .get(format!("{gateway_url}/api/v2/barong/public/ping"))
                    .send()
                    .await
                    .expect("ping");
                assert_eq!(response.status(), StatusCode::OK, "ping {n}");
            }
        }
    };
    round().await;
    assert!(
        relays.iter().all(|relay| relay.connections() > 0),
        "checks spread over both instances: {} and {} connections",
        relays[0].connections(),
        relays[1].connections()
    );

    // The second instance goes away: the gateway goes on with the first.
    drop(second);
    round().await;
}

/// Many clients at once through the gateway: every answer is barong's (no 5xx from a connection
/// to barong closed under load), allows and denies mixed. Bounded: 32 clients x 25 requests.
pub(crate) async fn concurrent_checks_are_all_answered(proxy: Proxy) {
    let (_db, server) = barong().await;
    let upstream = echo_upstream().await;
    let gateway = Gateway::in_front_of(proxy, &server, &upstream).await;
    let started = std::time::Instant::now();
    let tasks: Vec<_> = (0..32)
        .map(|client| {
            let http = http();
            let base = gateway.url("");
            tokio::spawn(async move {
                for n in 0..25 {
                    let (path, status) = match (client + n) % 3 {
                        0 => ("/api/v2/barong/public/ping", StatusCode::OK),
                        1 => ("/api/v2/peatio/public/markets", StatusCode::OK),
                        _ => ("/api/v2/peatio/account/balances", StatusCode::UNAUTHORIZED),
                    };
                    let response = http
                        .get(format!("{base}{path}"))
                        .send()
                        .await
                        .expect("request");
                    assert_eq!(response.status(), status, "client {client} request {n}");
                    let _ = response.bytes().await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("client");
    }
    eprintln!("{proxy:?}: 800 requests in {:?}", started.elapsed());
}

/// A whole user journey through the proxy, as a browser makes it: sign up (the session cookie
/// comes back through the proxy), the resource API answers with the JWT the check minted from
/// that cookie, the application gets the JWT too, writes need the CSRF token, and after logout
/// the same cookie is refused.
pub(crate) async fn user_journey_through_the_gateway(proxy: Proxy) {
    let (_db, server) = barong().await;
    let upstream = echo_upstream().await;
    let gateway = Gateway::in_front_of(proxy, &server, &upstream).await;
    let browser = reqwest::Client::builder()
        .no_proxy()
        .cookie_store(true)
        .user_agent(AGENT)
        .timeout(Duration::from_secs(20))
        .build()
        .expect("browser");

    let response = browser
        .post(gateway.url("/api/v2/barong/identity/users"))
        .json(&json!({"email": "journey@gateway.test", "password": "Iequ4geiEWQw"}))
        .send()
        .await
        .expect("sign up");
    assert_eq!(
        response.status(),
        StatusCode::CREATED,
        "{}",
        gateway.log_text()
    );
    let session = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("_barong_session="))
        .and_then(|v| v.split(';').next())
        .expect("the session cookie reaches the browser")
        .to_owned();
    let signed_up: Value = response.json().await.expect("json");
    let csrf = signed_up["csrf_token"].as_str().expect("csrf").to_owned();

    // barong's own resource API, behind the same check: the JWT replaces a forged header.
    let (status, _, me) = answer(
        browser
            .get(gateway.url("/api/v2/barong/resource/users/me"))
            .header("authorization", "Bearer forged")
            .send()
            .await
            .expect("me"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["email"], "journey@gateway.test");
    assert_eq!(me["uid"], signed_up["uid"]);

    // The application gets a JWT for the same user.
    let (status, _, seen) = answer(
        browser
            .get(gateway.url("/api/v2/peatio/account/balances"))
            .send()
            .await
            .expect("balances"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{seen}");
    let claims = verify_jwt(&server, header_of(&seen, "authorization").expect("jwt")).await;
    assert_eq!(claims["uid"], signed_up["uid"]);

    // Writes: refused without the CSRF token, passed with it.
    let (status, _, body) = answer(
        browser
            .post(gateway.url("/api/v2/peatio/market/orders"))
            .body("{}")
            .send()
            .await
            .expect("order"),
    )
    .await;
    assert_eq!(
        (status, body),
        (StatusCode::UNAUTHORIZED, errors("authz.missing_csrf_token"))
    );
    let response = browser
        .post(gateway.url("/api/v2/peatio/market/orders"))
        .header("x-csrf-token", &csrf)
        .body("{}")
        .send()
        .await
        .expect("order");
    assert_eq!(response.status(), StatusCode::OK);

    // Logout through the proxy; the old cookie no longer opens anything.
    let response = browser
        .delete(gateway.url("/api/v2/barong/identity/sessions"))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .expect("logout");
    assert!(
        response.status().is_success(),
        "logout: {}",
        response.status()
    );
    let (status, _, body) = answer(
        http()
            .get(gateway.url("/api/v2/barong/resource/users/me"))
            .header("cookie", &session)
            .header("user-agent", AGENT)
            .send()
            .await
            .expect("me"),
    )
    .await;
    assert_eq!(
        (status, body),
        (StatusCode::UNAUTHORIZED, errors("authz.invalid_session"))
    );
}

/// Two instances on one PostgreSQL database behind one gateway: after a logout (answered by one
/// instance) the cookie is refused whichever instance is asked, and when the second is
/// killed (SIGKILL) in the middle of a run of sign-ups, every sign-up acknowledged with 201 is in
/// the database and the gateway keeps answering from the first.
async fn logout_and_sigkill_with_two_instances(proxy: Proxy) {
    let db = TestDb::new(Backend::Postgres).await;
    let env = [("BARONG_AUTHZ_CACHE_TTL", "60")];
    let first = TestServer::start(db.dir.path(), &db.url, &env);
    let second = TestServer::start(db.dir.path(), &db.url, &env);
    let upstream = echo_upstream().await;
    let backends = Backends::of_all(&[&first, &second], upstream.addr);
    let gateway = Gateway::start(proxy, &backends, BarongRoute::AsIs).await;
    let browser = reqwest::Client::builder()
        .no_proxy()
        .cookie_store(true)
        .user_agent(AGENT)
        .timeout(Duration::from_secs(20))
        .build()
        .expect("browser");
    let signed_up = browser
        .post(gateway.url("/api/v2/barong/identity/users"))
        .json(&json!({"email": "two@gateway.test", "password": "Iequ4geiEWQw"}))
        .send()
        .await
        .expect("sign up");
    assert_eq!(signed_up.status(), StatusCode::CREATED);
    let csrf = signed_up.json::<Value>().await.expect("json")["csrf_token"]
        .as_str()
        .expect("csrf")
        .to_owned();
    let me = gateway.url("/api/v2/barong/resource/users/me");
    for _ in 0..6 {
        // Both instances get to cache the session.
        assert_eq!(
            browser.get(&me).send().await.expect("me").status(),
            StatusCode::OK
        );
    }
    // Logout through the gateway: one instance deletes the session, the other hears of it.
    let logout = browser
        .delete(gateway.url("/api/v2/barong/identity/sessions"))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .expect("logout");
    assert_eq!(logout.status(), StatusCode::OK);
    // The relay is typically milliseconds; 300 ms keeps the test honest under CI load.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for n in 0..6 {
        let status = browser.get(&me).send().await.expect("me").status();
        assert_eq!(status, StatusCode::UNAUTHORIZED, "request {n} after logout");
    }

    // Sign-ups through the gateway while the second instance is killed.
    let mut acknowledged = Vec::new();
    let mut second = Some(second);
    for n in 0..40 {
        if n == 15 {
            drop(second.take()); // SIGKILL, connections and all
        }
        let email = format!("load{n}@gateway.test");
        let response = reqwest::Client::new()
            .post(gateway.url("/api/v2/barong/identity/users"))
            .header("user-agent", AGENT)
            .json(&json!({"email": email, "password": "Iequ4geiEWQw"}))
            .send()
            .await;
        if let Ok(response) = response
            && response.status() == StatusCode::CREATED
        {
            acknowledged.push(email);
        }
    }
    assert!(
        acknowledged.len() >= 35,
        "the gateway kept answering: {} of 40",
        acknowledged.len()
    );
    let store = db.open().await;
    for email in &acknowledged {
        assert!(
            store
                .find_user_by_email(email)
                .await
                .expect("find")
                .is_some(),
            "acknowledged sign-up {email} lost"
        );
    }
    let ping = reqwest::Client::new()
        .get(gateway.url("/api/v2/barong/public/ping"))
        .send()
        .await
        .expect("ping after the kill");
    assert_eq!(ping.status(), StatusCode::OK);
    drop(first);
}

both_proxies!(
    logout_and_sigkill_with_two_instances,
    public_routes_reach_their_backend,
    denies_reach_the_client_with_barongs_body,
    authz_down_fails_closed,
    barongs_statuses_and_jwt_cross_the_gateway,
    authz_sees_the_original_request,
    barong_route_variants,
    restrictions_reach_the_client_with_their_status,
    signed_in_users_reach_the_upstream_with_a_jwt,
    websockets_upgrade_after_the_check,
    checks_reuse_connections_to_barong,
    slow_authz_times_out_closed,
    two_barongs_behind_one_gateway,
    concurrent_checks_are_all_answered,
    user_journey_through_the_gateway,
);
