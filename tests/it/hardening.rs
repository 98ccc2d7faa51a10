//! Abuse limits, HTTP hardening, secrets kept out of logs and the metrics, on the real server
//! over real sockets (storage-dependent tests on SQLite and PostgreSQL).

use crate::common::http;
use crate::{common, support};
use std::time::{Duration, Instant};

use aws_lc_rs::hmac;
use common::{Backend, TestDb, TestServer};
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{SmtpSink, free_port, token_in};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const AGENT: &str = "Mozilla/5.0 (hardening test)";
const PASSWORD: &str = "Iequ4geiEWQw";

async fn post(server: &TestServer, path: &str, body: Value) -> (StatusCode, Value) {
    post_from(server, path, body, None).await
}

/// POSTs to `/api/v2/barong/identity{path}`, from `forwarded_for` (an `X-Forwarded-For` the
/// server trusts from its loopback peer) when given.
async fn post_from(
    server: &TestServer,
    path: &str,
    body: Value,
    forwarded_for: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = http()
        .post(server.url(&format!("/api/v2/barong/identity{path}")))
        .header("user-agent", AGENT)
        .json(&body);
    if let Some(ip) = forwarded_for {
        request = request.header("x-forwarded-for", ip);
    }
    let response = request.send().await.expect("post");
    let status = response.status();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn metrics(server: &TestServer) -> String {
    http()
        .get(format!("{}/metrics", server.authz))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text")
}

/// The value of the metric line that starts with `series` (name and labels), 0 if absent.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

fn too_many(namespace: &str) -> Value {
    json!({ "errors": [format!("{namespace}.too_many_attempts")] })
}

// ---- rate limits ------------------------------------------------------------------------------

/// Failed logins lock the account (429 even with the right password) and, across accounts, the
/// address; a success clears the account's count; unknown e-mails still cost a password check.
async fn failed_logins_lock_the_account_then_the_address(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(
        db.dir.path(),
        &db.url,
        &[
            ("BARONG_RATE_LIMIT_LOGIN_ACCOUNT", "3/60"),
            ("BARONG_RATE_LIMIT_LOGIN_IP", "6/60"),
        ],
    );
    let email = "locked@barong.test";
    let signed_up = post(
        &server,
        "/users",
        json!({"email": email, "password": PASSWORD}),
    )
    .await;
    assert_eq!(signed_up.0, StatusCode::CREATED);
    let login = |password: &'static str, email: &'static str| {
        let server = &server;
        async move {
            post(
                server,
                "/sessions",
                json!({"email": email, "password": password}),
            )
            .await
        }
    };
    let invalid = json!({"errors": ["identity.session.invalid_params"]});

    // Two failures, then a success: the account's count starts again.
    for _ in 0..2 {
        assert_eq!(
            login("Wrong123Pass", email).await,
            (StatusCode::UNAUTHORIZED, invalid.clone())
        );
    }
    assert_eq!(login(PASSWORD, email).await.0, StatusCode::OK);
    // Three failures lock the account, whatever the password.
    for _ in 0..3 {
        assert_eq!(
            login("Wrong123Pass", email).await,
            (StatusCode::UNAUTHORIZED, invalid.clone())
        );
    }
    assert_eq!(
        login(PASSWORD, email).await,
        (StatusCode::TOO_MANY_REQUESTS, too_many("identity.session"))
    );
    // The address has 5 failures; unknown e-mails add to it (and are checked against a dummy
    // digest, so they take as long as a wrong password).
    let dummy_before = metric(
        &metrics(&server).await,
        "barong_login_dummy_password_checks_total",
    );
    assert_eq!(
        login("Wrong123Pass", "nobody@barong.test").await,
        (StatusCode::UNAUTHORIZED, invalid.clone())
    );
    let dummy_after = metric(
        &metrics(&server).await,
        "barong_login_dummy_password_checks_total",
    );
    assert_eq!(
        dummy_after,
        dummy_before + 1.0,
        "the dummy digest was checked"
    );
    // 6 failures from 127.0.0.1: every login from it is refused now, even for other accounts.
    assert_eq!(
        login("Wrong123Pass", "other@barong.test").await,
        (StatusCode::TOO_MANY_REQUESTS, too_many("identity.session"))
    );
    // Another client address is not concerned (its account is, though).
    let (status, _) = post_from(
        &server,
        "/sessions",
        json!({"email": "other@barong.test", "password": "Wrong123Pass"}),
        Some("203.0.113.9"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let text = metrics(&server).await;
    assert!(
        metric(
            &text,
            "barong_rate_limit_rejections_total{limit=\"login_account\"}"
        ) >= 1.0,
        "{text}"
    );
    assert!(
        metric(
            &text,
            "barong_rate_limit_rejections_total{limit=\"login_ip\"}"
        ) >= 1.0,
        "{text}"
    );
}

/// Confirmation and reset mails are limited per address and per client IP; sign-ups per IP.
async fn mail_and_sign_ups_are_limited(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(
        db.dir.path(),
        &db.url,
        &[
            ("BARONG_RATE_LIMIT_MAIL_ADDRESS", "2/60"),
            ("BARONG_RATE_LIMIT_MAIL_IP", "4/60"),
            ("BARONG_RATE_LIMIT_SIGNUP_IP", "2/60"),
        ],
    );
    let created = (StatusCode::CREATED, json!(201));
    let reset = |email: &'static str| {
        let server = &server;
        async move {
            post(
                server,
                "/users/password/generate_code",
                json!({ "email": email }),
            )
            .await
        }
    };
    assert_eq!(reset("a@barong.test").await, created);
    assert_eq!(reset("a@barong.test").await, created);
    assert_eq!(
        reset("a@barong.test").await,
        (StatusCode::TOO_MANY_REQUESTS, too_many("identity.user"))
    );
    // Per address: another address passes (the IP has 4 requests counted now).
    assert_eq!(
        post(
            &server,
            "/users/email/generate_code",
            json!({"email": "b@barong.test"})
        )
        .await,
        created
    );
    // Per IP: a fifth request from this address is refused, whatever the e-mail.
    assert_eq!(
        reset("c@barong.test").await,
        (StatusCode::TOO_MANY_REQUESTS, too_many("identity.user"))
    );

    for n in 0..2 {
        let body = json!({"email": format!("s{n}@barong.test"), "password": PASSWORD});
        assert_eq!(post(&server, "/users", body).await.0, StatusCode::CREATED);
    }
    let body = json!({"email": "s2@barong.test", "password": PASSWORD});
    assert_eq!(
        post(&server, "/users", body.clone()).await,
        (StatusCode::TOO_MANY_REQUESTS, too_many("identity.user"))
    );
    let (status, _) = post_from(&server, "/users", body, Some("198.51.100.20")).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "another client address may sign up"
    );

    let text = metrics(&server).await;
    for limit in ["mail_address", "mail_ip", "signup_ip"] {
        let series = format!("barong_rate_limit_rejections_total{{limit=\"{limit}\"}}");
        assert!(metric(&text, &series) >= 1.0, "{limit}: {text}");
    }
}

// ---- HTTP hardening ---------------------------------------------------------------------------

async fn start_plain(env: &[(&str, &str)]) -> (TestDb, TestServer) {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = TestServer::start(db.dir.path(), &db.url, env);
    (db, server)
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_answers_carry_security_headers_and_a_request_id() {
    let (_db, server) = start_plain(&[]).await;
    let ping = http()
        .get(server.url("/api/v2/barong/public/ping"))
        .header("x-request-id", "proxy-id-1")
        .send()
        .await
        .expect("ping");
    assert_eq!(ping.status(), StatusCode::OK);
    assert_eq!(header(&ping, "x-content-type-options"), Some("nosniff"));
    assert_eq!(header(&ping, "x-frame-options"), Some("DENY"));
    assert_eq!(header(&ping, "referrer-policy"), Some("no-referrer"));
    assert_eq!(
        header(&ping, "cache-control"),
        None,
        "public data may be cached"
    );
    assert_eq!(
        header(&ping, "strict-transport-security"),
        None,
        "plain HTTP"
    );
    assert_eq!(header(&ping, "x-request-id"), Some("proxy-id-1"));

    // Identity and resource answers are never stored; errors carry the headers too.
    let login = http()
        .post(server.url("/api/v2/barong/identity/sessions"))
        .json(&json!({"email": "x@barong.test", "password": "nope"}))
        .send()
        .await
        .expect("login");
    assert_eq!(login.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(header(&login, "cache-control"), Some("no-store"));
    assert_eq!(header(&login, "x-content-type-options"), Some("nosniff"));
    let generated = header(&login, "x-request-id").expect("generated id");
    assert!(generated.len() == 32 && generated.bytes().all(|b| b.is_ascii_hexdigit()));
    let me = http()
        .get(server.url("/api/v2/resource/users/me"))
        .send()
        .await
        .expect("me");
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(header(&me, "cache-control"), Some("no-store"));

    // The authz answer repeats the proxy's id (for nginx auth_request_set / Envoy's
    // allowed_upstream_headers) or makes one.
    let decision = http()
        .get(format!(
            "{}/api/v2/auth/api/v2/barong/public/ping",
            server.authz
        ))
        .header("x-request-id", "proxy-id-2")
        .send()
        .await
        .expect("authz");
    assert_eq!(decision.status(), StatusCode::OK);
    assert_eq!(header(&decision, "x-request-id"), Some("proxy-id-2"));
    let denied = http()
        .get(format!(
            "{}/api/v2/auth/api/v2/peatio/account/balances",
            server.authz
        ))
        .send()
        .await
        .expect("authz");
    assert_eq!(denied.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(header(&denied, "x-request-id").map(str::len), Some(32));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hsts_is_sent_when_the_rest_listener_serves_https() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).expect("cert");
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).expect("cert");
    std::fs::write(&key, certified.signing_key.serialize_pem()).expect("key");
    let (_db, server) = start_plain(&[
        ("BARONG_TLS_CERT_PATH", cert.to_str().expect("path")),
        ("BARONG_TLS_KEY_PATH", key.to_str().expect("path")),
    ])
    .await;
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let url = server
        .url("/api/v2/barong/public/ping")
        .replace("http://", "https://");
    let ping = client.get(url).send().await.expect("ping");
    assert_eq!(ping.status(), StatusCode::OK);
    assert_eq!(
        header(&ping, "strict-transport-security"),
        Some("max-age=31536000")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_follows_barongs_settings() {
    // Default: any origin, no credentials.
    let (_db, any) = start_plain(&[]).await;
    let simple = http()
        .get(any.url("/api/v2/barong/public/ping"))
        .header("origin", "https://whatever.example")
        .send()
        .await
        .expect("ping");
    assert_eq!(header(&simple, "access-control-allow-origin"), Some("*"));
    assert_eq!(header(&simple, "access-control-allow-credentials"), None);
    assert_eq!(header(&simple, "access-control-max-age"), Some("3600"));

    let (_db, listed) = start_plain(&[
        (
            "BARONG_API_CORS_ORIGINS",
            "https://app.example.com, http://localhost:3000",
        ),
        ("BARONG_API_CORS_ALLOW_CREDENTIALS", "true"),
        ("BARONG_API_CORS_MAX_AGE", "600"),
    ])
    .await;
    let preflight = |origin: &'static str| {
        http()
            .request(
                reqwest::Method::OPTIONS,
                listed.url("/api/v2/barong/identity/sessions"),
            )
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type,x-csrf-token",
            )
            .send()
    };
    let ok = preflight("https://app.example.com")
        .await
        .expect("preflight");
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(
        header(&ok, "access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(
        header(&ok, "access-control-allow-methods"),
        Some("GET, POST, DELETE, PUT, PATCH, OPTIONS, HEAD")
    );
    assert_eq!(
        header(&ok, "access-control-allow-headers"),
        Some("content-type,x-csrf-token")
    );
    assert_eq!(header(&ok, "access-control-max-age"), Some("600"));
    assert_eq!(
        header(&ok, "access-control-allow-credentials"),
        Some("true")
    );
    assert_eq!(ok.text().await.expect("body"), "");

    let foreign = preflight("https://evil.example").await.expect("preflight");
    for name in [
        "access-control-allow-origin",
        "access-control-allow-methods",
        "access-control-allow-headers",
        "access-control-allow-credentials",
        "access-control-max-age",
    ] {
        assert_eq!(header(&foreign, name), None, "{name}");
    }
    // An actual request from a listed origin gets the headers; the answer is the handler's.
    let actual = http()
        .get(listed.url("/api/v2/barong/public/ping"))
        .header("origin", "http://localhost:3000")
        .send()
        .await
        .expect("ping");
    assert_eq!(actual.status(), StatusCode::OK);
    assert_eq!(
        header(&actual, "access-control-allow-origin"),
        Some("http://localhost:3000")
    );
    assert_eq!(
        header(&actual, "access-control-allow-credentials"),
        Some("true")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_request_heads_are_refused() {
    let (_db, server) = start_plain(&[("BARONG_MAX_HEADER_SIZE", "8192")]).await;
    for base in [server.api.clone(), server.authz.clone()] {
        let url = format!("{base}/api/v2/auth/api/v2/barong/public/ping");
        let big = "a".repeat(20_000);
        let status = http()
            .get(&url)
            .header("x-big", big)
            .send()
            .await
            .map(|r| r.status());
        // hyper answers 431 (or closes the connection when the head does not fit at all).
        match status {
            Ok(status) => assert_eq!(
                status,
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "{base}"
            ),
            Err(error) => assert!(!error.is_timeout(), "{base}: {error}"),
        }
        let small = http().get(&url).send().await.expect("small");
        assert_eq!(small.status(), StatusCode::OK);
    }
}

/// A client that sends its request head one byte a second.
async fn slowloris(addr: &str) -> tokio::task::JoinHandle<Duration> {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut read, mut write) = stream.into_split();
    let started = Instant::now();
    tokio::spawn(async move {
        let head = b"GET /api/v2/barong/public/ping HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        for byte in head {
            if write.write_all(&[*byte]).await.is_err() {
                break;
            }
            // Stop as soon as the server closed: a read of 0 bytes (or an error).
            let mut buf = [0u8; 256];
            match tokio::time::timeout(Duration::from_secs(1), read.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(_)) => break, // an answer (408) also ends it
                Err(_) => {}        // nothing within the second: send the next byte
            }
        }
        started.elapsed()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_clients_are_dropped_on_both_listeners() {
    let (_db, server) = start_plain(&[("BARONG_HEADER_READ_TIMEOUT", "2")]).await;
    for base in [server.api.clone(), server.authz.clone()] {
        let addr = base.trim_start_matches("http://").to_owned();
        // Twenty slow clients and one silent one at once...
        let mut slow = Vec::new();
        for _ in 0..20 {
            slow.push(slowloris(&addr).await);
        }
        let mut silent = TcpStream::connect(&addr).await.expect("connect");
        // ...do not keep a normal request waiting.
        let started = Instant::now();
        let ping = http()
            .get(format!("{base}/api/v2/auth/api/v2/barong/public/ping"))
            .send()
            .await
            .expect("ping");
        assert_eq!(ping.status(), StatusCode::OK);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        for task in slow {
            let lasted = tokio::time::timeout(Duration::from_secs(15), task)
                .await
                .expect("the server dropped the slow client")
                .expect("join");
            assert!(
                lasted >= Duration::from_millis(1500) && lasted < Duration::from_secs(6),
                "{base}: dropped after {lasted:?}"
            );
        }
        // The silent client was dropped too (read returns end of stream or an error).
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_secs(5), silent.read(&mut buf))
            .await
            .expect("the server dropped the silent client");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    }
}

/// The deadline runs again after every answer (`src/server/deadline.rs`): a kept-alive
/// connection that answered one request and then dribbles the next head is dropped as well.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_heads_after_an_answer_are_dropped_too() {
    let (_db, server) = start_plain(&[("BARONG_HEADER_READ_TIMEOUT", "2")]).await;
    for base in [server.api.clone(), server.authz.clone()] {
        let addr = base.trim_start_matches("http://").to_owned();
        let mut stream = TcpStream::connect(&addr).await.expect("connect");
        let head = b"GET /api/v2/auth/api/v2/barong/public/ping HTTP/1.1\r\nHost: x\r\n\r\n";
        stream.write_all(head).await.expect("first request");
        let mut buf = [0u8; 4096];
        let n = stream.read(&mut buf).await.expect("first answer");
        assert!(
            buf[..n].starts_with(b"HTTP/1.1 200"),
            "{base}: {}",
            String::from_utf8_lossy(&buf[..n])
        );
        let started = Instant::now();
        let mut closed = false;
        for byte in head.iter().take(40) {
            if stream.write_all(&[*byte]).await.is_err() {
                closed = true;
                break;
            }
            match tokio::time::timeout(Duration::from_secs(1), stream.read(&mut buf)).await {
                Ok(Ok(0) | Err(_)) => {
                    closed = true;
                    break;
                }
                Ok(Ok(_)) => panic!("{base}: answered a head that never ended"),
                Err(_) => {}
            }
        }
        let lasted = started.elapsed();
        assert!(closed, "{base}: still open after {lasted:?}");
        assert!(
            lasted >= Duration::from_millis(1500) && lasted < Duration::from_secs(6),
            "{base}: dropped after {lasted:?}"
        );
    }
}

/// Both listeners allow HTTP/1 half-close (`server::listen`): a client that sends its request
/// and shuts its write side gets the whole answer, then the connection closes; a connection
/// half-closed before sending anything is closed as well.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_closed_client_gets_its_answer_then_the_connection_closes() {
    let (_db, server) = start_plain(&[("BARONG_HEADER_READ_TIMEOUT", "2")]).await;
    for base in [server.api.clone(), server.authz.clone()] {
        let addr = base.trim_start_matches("http://").to_owned();
        let mut stream = TcpStream::connect(&addr).await.expect("connect");
        let head = b"GET /api/v2/auth/api/v2/barong/public/ping HTTP/1.1\r\nHost: x\r\n\r\n";
        stream.write_all(head).await.expect("request");
        stream.shutdown().await.expect("half-close");
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
            .await
            .expect("the server closed after answering")
            .expect("read");
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 200"), "{base}: {answer}");
        assert_eq!(answer.matches("HTTP/1.1").count(), 1, "{base}: {answer}");

        let mut silent = TcpStream::connect(&addr).await.expect("connect");
        silent.shutdown().await.expect("half-close");
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_secs(5), silent.read(&mut buf))
            .await
            .expect("the server closed the half-closed silent client");
        assert!(matches!(read, Ok(0) | Err(_)), "{base}: {read:?}");
    }
}

// ---- secrets never in logs --------------------------------------------------------------------

fn sign(secret: &str, nonce: &str, kid: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    hex::encode(hmac::sign(&key, format!("{nonce}{kid}").as_bytes()).as_ref())
}

/// A browser-like session: cookie, CSRF token, and the bearer the authz listener mints.
struct Browser<'a> {
    server: &'a TestServer,
    cookie: String,
    csrf: String,
}

impl Browser<'_> {
    async fn bearer(&self, method: &str, path: &str) -> String {
        let response = http()
            .get(format!("{}/api/v2/auth{path}", self.server.authz))
            .header("x-original-method", method)
            .header("cookie", format!("_barong_session={}", self.cookie))
            .header("x-csrf-token", &self.csrf)
            .header("user-agent", AGENT)
            .send()
            .await
            .expect("authz");
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        response.headers()["authorization"]
            .to_str()
            .expect("ascii")
            .to_owned()
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> (StatusCode, Value, String) {
        let bearer = self.bearer(method.as_str(), path).await;
        let response = http()
            .request(method, self.server.url(path))
            .header("authorization", &bearer)
            .header("cookie", format!("_barong_session={}", self.cookie))
            .header("user-agent", AGENT)
            .json(&body)
            .send()
            .await
            .expect("call");
        let status = response.status();
        let text = response.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::Null),
            bearer,
        )
    }
}

async fn session_from(response: reqwest::Response) -> (String, String, Value) {
    assert!(response.status().is_success(), "{}", response.status());
    let cookie = support::set_session_cookie(&response).expect("cookie");
    let body: Value = response.json().await.expect("json");
    let csrf = body["csrf_token"].as_str().expect("csrf").to_owned();
    (cookie, csrf, body)
}

async fn identity(
    server: &TestServer,
    path: &str,
    body: Value,
    cookie: Option<&str>,
) -> reqwest::Response {
    let mut request = http()
        .post(server.url(&format!("/api/v2/barong/identity{path}")))
        .header("user-agent", AGENT)
        .json(&body);
    if let Some(cookie) = cookie {
        request = request.header("cookie", format!("_barong_session={cookie}"));
    }
    request.send().await.expect("identity")
}

/// Sign-up, confirmation, login with 2FA, an API key and a signed call, password reset and
/// logout with `RUST_LOG=trace`: no password, token, code, secret, cookie or CSRF token used
/// appears anywhere in the server's log output.
async fn secrets_never_reach_the_logs(backend: Backend) {
    let db = TestDb::new(backend).await;
    let sink = SmtpSink::start(free_port(), &db.dir.path().join("mail"));
    let port = sink.port.to_string();
    let server = TestServer::start(
        db.dir.path(),
        &db.url,
        &[
            ("RUST_LOG", "trace"),
            ("BARONG_SMTP_HOST", "127.0.0.1"),
            ("BARONG_SMTP_PORT", &port),
            ("BARONG_MAIL_POLL_INTERVAL", "200"),
        ],
    );
    let mut secrets: Vec<(&str, String)> = vec![("password", PASSWORD.to_owned())];
    let email = "secret.keeper@barong.test";

    // The first user is the superadmin, confirmed from the start: make it someone else.
    let first = identity(
        &server,
        "/users",
        json!({"email": "first@barong.test", "password": PASSWORD}),
        None,
    )
    .await;
    assert_eq!(first.status(), StatusCode::CREATED);

    // Sign-up and confirmation.
    let signed_up = identity(
        &server,
        "/users",
        json!({"email": email, "password": PASSWORD}),
        None,
    )
    .await;
    let (cookie, csrf, _) = session_from(signed_up).await;
    secrets.push(("sign-up cookie", cookie.clone()));
    secrets.push(("sign-up csrf", csrf));
    let mail = sink.wait_for(email, "Registration Confirmation").await;
    let confirmation = token_in(&mail.body, "confirmation_token");
    secrets.push(("confirmation token", confirmation.clone()));
    let confirmed = identity(
        &server,
        "/users/email/confirm_code",
        json!({"token": confirmation}),
        Some(&cookie),
    )
    .await;
    let (cookie, csrf, _) = session_from(confirmed).await;
    secrets.push(("confirmed cookie", cookie.clone()));
    secrets.push(("confirmed csrf", csrf.clone()));
    let browser = Browser {
        server: &server,
        cookie,
        csrf,
    };

    // 2FA on.
    let (status, qr, bearer) = browser
        .call(
            reqwest::Method::POST,
            "/api/v2/barong/resource/otp/generate_qrcode",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    secrets.push(("bearer", bearer.trim_start_matches("Bearer ").to_owned()));
    let url = qr["data"]["url"].as_str().expect("url");
    let totp_secret = url
        .split("secret=")
        .nth(1)
        .and_then(|s| s.split('&').next())
        .expect("secret")
        .to_owned();
    secrets.push(("TOTP secret", totp_secret.clone()));
    let mut last = 0;
    let code = common::fresh_totp_code(&totp_secret, &mut last).await;
    let mut codes = vec![code.clone()];
    let (status, _, _) = browser
        .call(
            reqwest::Method::POST,
            "/api/v2/barong/resource/otp/enable",
            json!({"code": code}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    // Login with 2FA.
    let code = common::fresh_totp_code(&totp_secret, &mut last).await;
    codes.push(code.clone());
    let login = identity(
        &server,
        "/sessions",
        json!({"email": email, "password": PASSWORD, "otp_code": code}),
        None,
    )
    .await;
    let (cookie, csrf, _) = session_from(login).await;
    secrets.push(("login cookie", cookie.clone()));
    secrets.push(("login csrf", csrf.clone()));
    let browser = Browser {
        server: &server,
        cookie,
        csrf,
    };

    // An API key and a signed call.
    let code = common::fresh_totp_code(&totp_secret, &mut last).await;
    codes.push(code.clone());
    let (status, key, _) = browser
        .call(
            reqwest::Method::POST,
            "/api/v2/barong/resource/api_keys",
            json!({"algorithm": "HS256", "totp_code": code}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    let kid = key["kid"].as_str().expect("kid").to_owned();
    let api_secret = key["secret"].as_str().expect("secret").to_owned();
    secrets.push(("API secret", api_secret.clone()));
    let nonce = chrono::Utc::now().timestamp_millis().to_string();
    let signed = http()
        .get(format!(
            "{}/api/v2/auth/api/v2/barong/resource/users/me",
            server.authz
        ))
        .header("x-auth-apikey", &kid)
        .header("x-auth-nonce", &nonce)
        .header("x-auth-signature", sign(&api_secret, &nonce, &kid))
        .send()
        .await
        .expect("signed");
    assert_eq!(signed.status(), StatusCode::OK);
    let api_bearer = signed.headers()["authorization"]
        .to_str()
        .expect("ascii")
        .to_owned();
    secrets.push((
        "API-key bearer",
        api_bearer.trim_start_matches("Bearer ").to_owned(),
    ));

    // Password reset.
    let (status, _) = post(
        &server,
        "/users/password/generate_code",
        json!({"email": email}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let mail = sink.wait_for(email, "Password Reset").await;
    let reset = token_in(&mail.body, "reset_token");
    secrets.push(("reset token", reset.clone()));
    let new_password = "Xwqe213PZCXwe";
    secrets.push(("new password", new_password.to_owned()));
    let (status, body) = post(
        &server,
        "/users/password/confirm_code",
        json!({"reset_password_token": reset, "password": new_password, "confirm_password": new_password}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // Login with the new password, then logout.
    let code = common::fresh_totp_code(&totp_secret, &mut last).await;
    codes.push(code.clone());
    let login = identity(
        &server,
        "/sessions",
        json!({"email": email, "password": new_password, "otp_code": code}),
        None,
    )
    .await;
    let (cookie, csrf, _) = session_from(login).await;
    secrets.push(("last cookie", cookie.clone()));
    secrets.push(("last csrf", csrf.clone()));
    let logout = http()
        .delete(server.url("/api/v2/barong/identity/sessions"))
        .header("cookie", format!("_barong_session={cookie}"))
        .header("x-csrf-token", &csrf)
        .header("user-agent", AGENT)
        .send()
        .await
        .expect("logout");
    assert_eq!(logout.status(), StatusCode::OK);
    // Let the background writers and the mail worker log what they log.
    tokio::time::sleep(Duration::from_millis(800)).await;

    let logs = server.log_text();
    assert!(
        logs.contains("started processing request") && logs.contains("request_id"),
        "debug logging is on, with request ids"
    );
    for (what, secret) in &secrets {
        assert!(secret.len() >= 8, "{what} is a real value");
        assert!(
            !logs.contains(secret.as_str()),
            "the {what} appears in the logs"
        );
    }
    // Six digits can occur by chance (timestamps, counters): a code counts as leaked only as a
    // whole token, not inside a longer number nor as a fraction of seconds.
    for code in &codes {
        let leaked = logs.match_indices(code.as_str()).any(|(at, _)| {
            let before = logs[..at].chars().next_back();
            let after = logs[at + code.len()..].chars().next();
            !before.is_some_and(|c| c.is_ascii_digit() || c == '.')
                && !after.is_some_and(|c| c.is_ascii_digit())
        });
        assert!(!leaked, "the TOTP code {code} appears in the logs");
    }
}

// ---- metrics ----------------------------------------------------------------------------------

/// `/metrics` counts both listeners, the decisions and their latency, cache lookups, the pool and
/// the outbox.
async fn metrics_cover_both_listeners(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(db.dir.path(), &db.url, &[]);
    let signed_up = identity(
        &server,
        "/users",
        json!({"email": "m@barong.test", "password": PASSWORD}),
        None,
    )
    .await;
    let (cookie, csrf, _) = session_from(signed_up).await;
    // The first user is the superadmin (no confirmation); the second one gets a mail.
    let second = identity(
        &server,
        "/users",
        json!({"email": "m2@barong.test", "password": PASSWORD}),
        None,
    )
    .await;
    assert_eq!(second.status(), StatusCode::CREATED);
    let browser = Browser {
        server: &server,
        cookie,
        csrf,
    };
    for _ in 0..3 {
        browser
            .bearer("GET", "/api/v2/barong/resource/users/me")
            .await;
    }
    let denied = http()
        .get(format!(
            "{}/api/v2/auth/api/v2/peatio/account/balances",
            server.authz
        ))
        .send()
        .await
        .expect("deny");
    assert_eq!(denied.status(), StatusCode::UNAUTHORIZED);
    let text = metrics(&server).await;
    let at_least = |series: &str, n: f64| {
        assert!(metric(&text, series) >= n, "{series} < {n}:\n{text}");
    };
    at_least(
        "barong_http_requests_total{listener=\"rest\",status=\"2xx\"}",
        1.0,
    );
    at_least(
        "barong_http_requests_total{listener=\"authz\",status=\"2xx\"}",
        3.0,
    );
    at_least(
        "barong_http_requests_total{listener=\"authz\",status=\"4xx\"}",
        1.0,
    );
    at_least(
        "barong_http_request_duration_seconds_count{listener=\"rest\"}",
        1.0,
    );
    at_least(
        "barong_authz_decision_duration_seconds_count{result=\"allow\"}",
        3.0,
    );
    at_least(
        "barong_authz_decision_duration_seconds_count{result=\"deny\"}",
        1.0,
    );
    at_least(
        "barong_authz_decisions_total{result=\"allow\",reason=\"session\"}",
        3.0,
    );
    at_least(
        "barong_authz_decisions_total{result=\"deny\",reason=\"authz.invalid_session\"}",
        1.0,
    );
    // One miss loads the session, the next lookups hit.
    at_least(
        "barong_authz_cache_lookups_total{cache=\"sessions\",result=\"hit\"}",
        2.0,
    );
    at_least(
        "barong_authz_cache_lookups_total{cache=\"sessions\",result=\"miss\"}",
        1.0,
    );
    at_least("barong_authz_cache_hit_ratio{cache=\"sessions\"}", 0.5);
    at_least("barong_db_pool_connections{state=\"max\"}", 1.0);
    at_least("barong_db_pool_connections{state=\"open\"}", 1.0);
    // The confirmation mail waits in the outbox: no mail server in this test.
    at_least("barong_mail_outbox_unsent", 1.0);
    assert!(
        text.contains("barong_rate_limit_rejections_total{limit=\"login_account\"} 0"),
        "{text}"
    );
}

/// A burst released together over many connections: both cores count at once into their own
/// stripes (`observe/striped.rs`), and `/metrics` must still add up to exactly the decisions
/// made. Every answer gets a request id of its own, whichever thread made it.
async fn a_burst_is_counted_exactly_and_each_answer_has_its_own_id(backend: Backend) {
    const EACH: usize = 200;
    let db = TestDb::new(backend).await;
    let server = TestServer::start(db.dir.path(), &db.url, &[]);
    let signed_up = identity(
        &server,
        "/users",
        json!({"email": "burst@barong.test", "password": PASSWORD}),
        None,
    )
    .await;
    let (cookie, _, _) = session_from(signed_up).await;
    let allows = "barong_authz_decisions_total{result=\"allow\",reason=\"session\"}";
    let denies = "barong_authz_decisions_total{result=\"deny\",reason=\"authz.invalid_session\"}";
    let allow_latency = "barong_authz_decision_duration_seconds_count{result=\"allow\"}";
    let deny_latency = "barong_authz_decision_duration_seconds_count{result=\"deny\"}";
    let before = metrics(&server).await;
    let client = http();
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(2 * EACH));
    let requests = (0..2 * EACH).map(|i| {
        let (client, start) = (client.clone(), start.clone());
        let url = format!(
            "{}/api/v2/auth/api/v2/barong/resource/users/me",
            server.authz
        );
        let cookie = format!("_barong_session={cookie}");
        async move {
            let mut request = client.get(url).header("user-agent", AGENT);
            if i % 2 == 0 {
                request = request.header("cookie", cookie);
            }
            start.wait().await;
            let response = request.send().await.expect("authz");
            let id = response.headers()["x-request-id"]
                .to_str()
                .expect("ascii")
                .to_owned();
            (response.status(), id)
        }
    });
    let answers = futures_util::future::join_all(requests).await;
    let allowed = answers.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    let denied = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::UNAUTHORIZED)
        .count();
    assert_eq!((allowed, denied), (EACH, EACH));
    let ids: std::collections::HashSet<&str> = answers.iter().map(|(_, id)| id.as_str()).collect();
    assert_eq!(ids.len(), 2 * EACH, "a request id was given twice");
    let after = metrics(&server).await;
    for series in [allows, denies, allow_latency, deny_latency] {
        assert_eq!(
            metric(&after, series) - metric(&before, series),
            EACH as f64,
            "{series}:\n{after}"
        );
    }
}

both_backends!(
    failed_logins_lock_the_account_then_the_address,
    mail_and_sign_ups_are_limited,
    secrets_never_reach_the_logs,
    metrics_cover_both_listeners,
    a_burst_is_counted_exactly_and_each_answer_has_its_own_id,
);
