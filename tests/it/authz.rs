//! The authz decision over HTTP against the real server, on both backends: every error key and
//! status of Barong's authz, sessions, CSRF, binding, API keys per HMAC algorithm, permissions
//! with audit rows, restrictions, JWTs verified against the JWKS, and invalidation.

use crate::{common, support};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::hmac;
use barong::crypto::encryption::Encryptor;
use barong::crypto::keys::EncryptionKey;
use barong::domain::{
    KeyHolder, NewApiKey, NewPermission, NewRestriction, NewServiceAccount, NewSession, NewUser,
    User, session_key,
};
use barong::seed::{DEFAULT_SEEDS, Seeds};
use barong::store::Store;
use common::{Backend, TestDb, TestServer};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};
use reqwest::StatusCode;
use serde_json::{Value, json};

const ENCRYPTION_KEY: &str = "0101010101010101010101010101010101010101010101010101010101010101";
const AGENT: &str = "Mozilla/5.0 (X11; Linux x86_64) barong-tests";

struct Fixture {
    _db: TestDb,
    store: Arc<dyn Store>,
    server: TestServer,
    http: reqwest::Client,
}

/// A migrated, seeded database (restrictions added by `prepare`), then the server on it.
async fn fixture(
    backend: Backend,
    env: &[(&str, &str)],
    restrictions: &[NewRestriction],
) -> Fixture {
    let db = TestDb::new(backend).await;
    let store = db.open().await;
    store.migrate().await.expect("migrate");
    Seeds::parse(DEFAULT_SEEDS)
        .expect("seeds")
        .apply(store.as_ref(), "ID")
        .await
        .expect("seed");
    for r in restrictions {
        store
            .insert_restriction_if_absent(r)
            .await
            .expect("restriction");
    }
    let mut all_env = vec![("BARONG_ENCRYPTION_KEY", ENCRYPTION_KEY)];
    all_env.extend_from_slice(env);
    let server = TestServer::start(db.dir.path(), &db.url, &all_env);
    Fixture {
        _db: db,
        store,
        server,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client"),
    }
}

fn restriction(category: &str, scope: &str, value: &str, code: Option<i32>) -> NewRestriction {
    NewRestriction {
        category: category.into(),
        scope: scope.into(),
        value: value.into(),
        code,
        state: "enabled".into(),
    }
}

static UID: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);

async fn create_user(store: &dyn Store, role: &str, state: &str, otp: bool) -> User {
    let n = UID.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    store
        .create_user(&NewUser {
            uid: format!("ID{n:010}"),
            username: None,
            email: format!("user{n}@barong.test"),
            password_digest: "$argon2id$unused".into(),
            role: role.into(),
            data: None,
            level: 1,
            otp,
            state: state.into(),
            referral_id: None,
            labels: vec![],
        })
        .await
        .expect("user")
}

/// Opens a session as the identity API would: returns (cookie value, csrf token).
async fn open_session(
    store: &dyn Store,
    user: &User,
    ip: &str,
    expires_in: i64,
) -> (String, String) {
    let cookie = hex::encode(rand_bytes::<16>());
    let csrf = hex::encode(rand_bytes::<10>());
    store
        .create_session(&NewSession {
            id: session_key(&cookie),
            user_id: user.id,
            uid: user.uid.clone(),
            user_ip: ip.into(),
            user_agent: Some(AGENT.into()),
            csrf_token: csrf.clone(),
            expire_at: chrono::Utc::now().timestamp() + expires_in,
            authenticated_with: "password".into(),
            user_ip_country: None,
        })
        .await
        .expect("session");
    (cookie, csrf)
}

fn rand_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    aws_lc_rs::rand::fill(&mut bytes).expect("random");
    bytes
}

async fn create_key(
    store: &dyn Store,
    holder: KeyHolder,
    algorithm: &str,
    state: &str,
) -> (String, String) {
    let encryptor = Encryptor::new(&EncryptionKey::parse(ENCRYPTION_KEY).expect("key"));
    let kid = hex::encode(rand_bytes::<8>());
    let secret = hex::encode(rand_bytes::<16>());
    store
        .create_api_key(&NewApiKey {
            holder,
            kid: kid.clone(),
            algorithm: algorithm.into(),
            scope: vec!["trade".into()],
            secret_encrypted: encryptor.encrypt(&secret),
            state: state.into(),
        })
        .await
        .expect("api key");
    (kid, secret)
}

/// An active member with 2FA and an active HS256 key of theirs: the holder most API-key tests
/// start from. Returns the user, the key id and the secret.
async fn member_with_key(store: &dyn Store) -> (User, String, String) {
    let user = create_user(store, "member", "active", true).await;
    let (kid, secret) = create_key(store, KeyHolder::User(user.id), "HS256", "active").await;
    (user, kid, secret)
}

fn sign(algorithm: &str, secret: &str, nonce: &str, kid: &str) -> String {
    let alg = match algorithm {
        "HS384" => hmac::HMAC_SHA384,
        "HS512" => hmac::HMAC_SHA512,
        _ => hmac::HMAC_SHA256,
    };
    let key = hmac::Key::new(alg, secret.as_bytes());
    hex::encode(hmac::sign(&key, format!("{nonce}{kid}").as_bytes()).as_ref())
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Answer {
    fn error(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    fn assert_denied(&self, status: u16, key: &str) {
        assert_eq!(self.status.as_u16(), status, "body {}", self.body);
        assert_eq!(self.error(), json!({"errors": [key]}));
        assert_eq!(self.headers["x-barong-status"], status.to_string().as_str());
        assert_eq!(self.headers["x-barong-error"], self.body.as_str());
    }

    fn bearer(&self) -> String {
        assert_eq!(self.status, StatusCode::OK, "body {}", self.body);
        let value = self.headers["authorization"].to_str().expect("ascii");
        value.strip_prefix("Bearer ").expect("bearer").to_owned()
    }
}

impl Fixture {
    async fn ask(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self
            .http
            .request(method, format!("{}/api/v2/auth/{path}", self.server.authz));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("authz request");
        Answer {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.text().await.expect("body"),
        }
    }

    /// Like `ask`, over a plain socket: the path goes out byte for byte (an HTTP client library
    /// would resolve its dot segments and re-encode it first).
    async fn ask_raw(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Answer {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = self.server.authz.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let mut request = format!("{method} /api/v2/auth/{path} HTTP/1.1\r\nHost: barong\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("Connection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.expect("read");
        let text = String::from_utf8_lossy(&raw);
        let (head, body) = text.split_once("\r\n\r\n").expect("head");
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|code| code.parse::<u16>().ok())
            .expect("status");
        let mut map = reqwest::header::HeaderMap::new();
        for (name, value) in lines.filter_map(|line| line.split_once(':')) {
            map.append(
                reqwest::header::HeaderName::from_bytes(name.trim().as_bytes()).expect("name"),
                value.trim().parse().expect("value"),
            );
        }
        Answer {
            status: StatusCode::from_u16(status).expect("status"),
            headers: map,
            body: body.to_owned(),
        }
    }

    async fn with_cookie(
        &self,
        method: &str,
        path: &str,
        cookie: &str,
        extra: &[(&str, &str)],
    ) -> Answer {
        let cookie = format!("_barong_session={cookie}");
        let mut headers = vec![("cookie", cookie.as_str()), ("user-agent", AGENT)];
        headers.extend_from_slice(extra);
        self.ask(method, path, &headers).await
    }

    /// `GET` of the private path with these `Cookie` lines, byte for byte (`ask_raw`).
    async fn with_cookie_lines(&self, lines: &[&str]) -> Answer {
        let mut headers: Vec<(&str, &str)> = lines.iter().map(|line| ("cookie", *line)).collect();
        headers.push(("user-agent", AGENT));
        self.ask_raw("GET", PRIVATE, &headers).await
    }

    async fn with_key(&self, path: &str, kid: &str, nonce: &str, signature: &str) -> Answer {
        self.ask(
            "GET",
            path,
            &[
                ("x-auth-apikey", kid),
                ("x-auth-nonce", nonce),
                ("x-auth-signature", signature),
            ],
        )
        .await
    }

    async fn jwks(&self) -> JwkSet {
        let url = format!("{}/.well-known/jwks.json", self.server.authz);
        self.http
            .get(url)
            .send()
            .await
            .expect("jwks")
            .json()
            .await
            .expect("jwks json")
    }

    /// Verifies a token against the published JWKS, as an upstream would.
    async fn verify(&self, token: &str) -> Value {
        let header = jsonwebtoken::decode_header(token).expect("header");
        let jwks = self.jwks().await;
        let jwk = jwks
            .find(header.kid.as_deref().expect("kid"))
            .expect("key in jwks");
        let mut validation = Validation::new(header.alg);
        validation.set_audience(&["peatio", "barong"]);
        validation.set_issuer(&["barong"]);
        jsonwebtoken::decode::<Value>(
            token,
            &DecodingKey::from_jwk(jwk).expect("jwk"),
            &validation,
        )
        .expect("valid token")
        .claims
    }
}

/// Polls `check` until it holds or `within` passes; returns how long it took.
async fn eventually<F, Fut>(within: Duration, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while started.elapsed() < within {
        if check().await {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("condition not met within {within:?}");
}

const PRIVATE: &str = "api/v2/peatio/account/balances";

async fn session_allows_with_a_token_verified_by_jwks(backend: Backend) {
    let f = fixture(backend, &[], &[]).await;
    let user = create_user(f.store.as_ref(), "member", "active", false).await;
    let (cookie, _) = open_session(f.store.as_ref(), &user, "127.0.0.1", 600).await;
    let answer = f.with_cookie("GET", PRIVATE, &cookie, &[]).await;
    assert_eq!(answer.body, "");
    assert_eq!(answer.headers["content-length"], "0");
    let claims = f.verify(&answer.bearer()).await;
    assert_eq!(claims["uid"], json!(user.uid));
    assert_eq!(claims["email"], json!(user.email));
    assert_eq!(claims["role"], "member");
    assert_eq!(claims["level"], 1);
    assert_eq!(claims["state"], "active");
    assert_eq!(claims["sub"], "session");
    assert_eq!(claims["aud"], json!(["peatio", "barong"]));
    assert_eq!(claims["referral_id"], Value::Null);
    assert_eq!(claims["username"], Value::Null);
    assert_eq!(claims["jti"].as_str().expect("jti").len(), 20);
    let lifetime = claims["exp"].as_i64().expect("exp") - claims["iat"].as_i64().expect("iat");
    assert_eq!(lifetime, 3600);
    // A pending user is let through too; a banned one is not.
    let pending = create_user(f.store.as_ref(), "member", "pending", false).await;
    let (cookie, _) = open_session(f.store.as_ref(), &pending, "127.0.0.1", 600).await;
    assert_eq!(
        f.with_cookie("GET", PRIVATE, &cookie, &[]).await.status,
        StatusCode::OK
    );
    let banned = create_user(f.store.as_ref(), "member", "banned", false).await;
    let (cookie, _) = open_session(f.store.as_ref(), &banned, "127.0.0.1", 600).await;
    f.with_cookie("GET", PRIVATE, &cookie, &[])
        .await
        .assert_denied(401, "authz.user_not_active");
}

/// A `Cookie` line holding a byte outside ASCII is read like any other: a browser sends all of
/// a site's cookies in one line, so the session beside a value such as `lang=fran\u{e7}ais`
/// counts (as in Barong), and a second session in such a line is a repeat, refused; so is one
/// that Rack would find after a `,`.
async fn cookie_lines_outside_ascii_are_read_like_any_other(backend: Backend) {
    let f = fixture(backend, &[], &[]).await;
    let user = create_user(f.store.as_ref(), "member", "active", false).await;
    let (cookie, _) = open_session(f.store.as_ref(), &user, "127.0.0.1", 600).await;
    let session = format!("_barong_session={cookie}");
    let odd = format!("lang=fran\u{e7}ais; {session}; name=\u{c9}mile");
    let (session, odd) = (session.as_str(), odd.as_str());
    for lines in [&[session][..], &[odd], &["lang=\u{e9}", session]] {
        let answer = f.with_cookie_lines(lines).await;
        assert_eq!(answer.status, StatusCode::OK, "{lines:?}: {}", answer.body);
    }
    let other = format!("lang=\u{e9}; _barong_session={}", "ab".repeat(16));
    f.with_cookie_lines(&[&other, session])
        .await
        .assert_denied(401, "authz.invalid_session");
    // An older Rack (CVE-2020-8184) splits at `,` as well: a session name after one is a second
    // session cookie, refused; a `,` in a value that no name follows changes nothing.
    let tossed = format!("x=1,_barong_session={}; {session}", "ab".repeat(16));
    f.with_cookie_lines(&[&tossed])
        .await
        .assert_denied(401, "authz.invalid_session");
    let listed = format!("lang=en,fr; {session}");
    assert_eq!(f.with_cookie_lines(&[&listed]).await.status, StatusCode::OK);
    // A value outside ASCII names no session.
    f.with_cookie_lines(&[&format!("{session}\u{e9}")])
        .await
        .assert_denied(401, "authz.invalid_session");
    // The same value quoted is the same session; quotes alone are no session.
    let quoted = format!("_barong_session=\"{cookie}\"");
    assert_eq!(f.with_cookie_lines(&[&quoted]).await.status, StatusCode::OK);
    f.with_cookie_lines(&["_barong_session=\"\""])
        .await
        .assert_denied(401, "authz.invalid_session");
}

async fn missing_and_unknown_sessions(backend: Backend) {
    let f = fixture(backend, &[], &[]).await;
    f.ask("GET", PRIVATE, &[])
        .await
        .assert_denied(401, "authz.invalid_session");
    f.with_cookie("GET", PRIVATE, "feedfacefeedfacefeedfacefeedface", &[])
        .await
        .assert_denied(401, "authz.invalid_session");
    // Pass and block rules come before any session check.
    let public = f.ask("POST", "api/v2/barong/identity/sessions", &[]).await;
    assert_eq!(public.status, StatusCode::OK);
    assert!(public.headers.get("authorization").is_none());
    f.ask("GET", "api/v2/barong/management/users/get", &[])
        .await
        .assert_denied(401, "authz.permission_denied");
    // The REST listener answers decisions too, as Barong's API port does.
    let on_rest = f
        .http
        .get(format!("{}/api/v2/auth/{PRIVATE}", f.server.api))
        .send()
        .await
        .expect("rest");
    assert_eq!(on_rest.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        on_rest.text().await.expect("body"),
        r#"{"errors":["authz.invalid_session"]}"#
    );
    // Other paths of the listener.
    let other = f
        .http
        .get(format!("{}/nope", f.server.authz))
        .send()
        .await
        .expect("404");
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
}

async fn csrf_is_checked_on_state_changing_verbs(backend: Backend) {
    let f = fixture(backend, &[], &[]).await;
    let user = create_user(f.store.as_ref(), "member", "active", false).await;
    let (cookie, csrf) = open_session(f.store.as_ref(), &user, "127.0.0.1", 600).await;
    for method in ["POST", "PUT", "PATCH", "DELETE"] {
        f.with_cookie(method, PRIVATE, &cookie, &[])
            .await
            .assert_denied(401, "authz.missing_csrf_token");
        f.with_cookie(method, PRIVATE, &cookie, &[("x-csrf-token", "wrong")])
            .await
            .assert_denied(401, "authz.csrf_token_mismatch");
        let ok = f
            .with_cookie(method, PRIVATE, &cookie, &[("x-csrf-token", &csrf)])
            .await;
        assert_eq!(ok.status, StatusCode::OK, "{method}");
    }
    // nginx sends a GET subrequest with the real verb aside.
    f.with_cookie("GET", PRIVATE, &cookie, &[("x-original-method", "POST")])
        .await
        .assert_denied(401, "authz.missing_csrf_token");
    // CSRF comes before the session: no session, no token.
    f.ask("POST", PRIVATE, &[])
        .await
        .assert_denied(401, "authz.missing_csrf_token");
    f.ask("POST", PRIVATE, &[("x-csrf-token", "x")])
        .await
        .assert_denied(401, "authz.csrf_token_mismatch");

    let relaxed = fixture(backend, &[("BARONG_CSRF_PROTECTION", "false")], &[]).await;
    let user = create_user(relaxed.store.as_ref(), "member", "active", false).await;
    let (cookie, _) = open_session(relaxed.store.as_ref(), &user, "127.0.0.1", 600).await;
    assert_eq!(
        relaxed
            .with_cookie("POST", PRIVATE, &cookie, &[])
            .await
            .status,
        StatusCode::OK
    );
}

async fn sessions_are_bound_to_agent_network_and_expiry(backend: Backend) {
    let f = fixture(backend, &[], &[]).await;
    let user = create_user(f.store.as_ref(), "member", "active", false).await;

    let (cookie, _) = open_session(f.store.as_ref(), &user, "8.8.4.4", 600).await;
    let same_net = f
        .with_cookie("GET", PRIVATE, &cookie, &[("x-forwarded-for", "8.8.200.1")])
        .await;
    assert_eq!(same_net.status, StatusCode::OK);
    f.with_cookie("GET", PRIVATE, &cookie, &[("x-forwarded-for", "8.9.4.4")])
        .await
        .assert_denied(401, "authz.client_session_mismatch");
    // The mismatched session is destroyed, even for the right network.
    f.with_cookie("GET", PRIVATE, &cookie, &[("x-forwarded-for", "8.8.4.4")])
        .await
        .assert_denied(401, "authz.invalid_session");
    let gone = eventually(Duration::from_secs(5), || async {
        f.store
            .find_session(&session_key(&cookie))
            .await
            .expect("find")
            .is_none()
    })
    .await;
    assert!(gone < Duration::from_secs(5));

    let (cookie, _) = open_session(f.store.as_ref(), &user, "127.0.0.1", 600).await;
    let other_agent = f
        .ask(
            "GET",
            PRIVATE,
            &[
                ("cookie", &format!("_barong_session={cookie}")),
                ("user-agent", "curl/8"),
            ],
        )
        .await;
    other_agent.assert_denied(401, "authz.client_session_mismatch");

    let (expired, _) = open_session(f.store.as_ref(), &user, "127.0.0.1", -1).await;
    f.with_cookie("GET", PRIVATE, &expired, &[])
        .await
        .assert_denied(401, "authz.client_session_mismatch");

    // IPv6 sessions compare the /96.
    let (v6, _) = open_session(f.store.as_ref(), &user, "2001:db8::1", 600).await;
    let ok = f
        .with_cookie(
            "GET",
            PRIVATE,
            &v6,
            &[("x-forwarded-for", "2001:db8::abcd")],
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK);
}

async fn sliding_expiry_is_written_behind(backend: Backend) {
    let f = fixture(
        backend,
        &[
            ("BARONG_SESSION_WRITE_BEHIND", "1"),
            ("BARONG_SESSION_EXPIRE_TIME", "900"),
        ],
        &[],
    )
    .await;
    let user = create_user(f.store.as_ref(), "member", "active", false).await;
    let (cookie, _) = open_session(f.store.as_ref(), &user, "127.0.0.1", 5).await;
    let before = f
        .store
        .find_session(&session_key(&cookie))
        .await
        .expect("find")
        .expect("row");
    assert_eq!(
        f.with_cookie("GET", PRIVATE, &cookie, &[]).await.status,
        StatusCode::OK
    );
    eventually(Duration::from_secs(5), || async {
        let row = f
            .store
            .find_session(&session_key(&cookie))
            .await
            .expect("find")
            .expect("row");
        row.expire_at >= before.expire_at + 800
    })
    .await;
}

async fn permissions_accept_drop_and_audit(backend: Backend) {
    let f = fixture(backend, &[], &[]).await;
    let member = create_user(f.store.as_ref(), "member", "active", false).await;
    let (cookie, _) = open_session(f.store.as_ref(), &member, "127.0.0.1", 600).await;
    assert_eq!(
        f.with_cookie("GET", "api/v2/barong/resource/users/me", &cookie, &[])
            .await
            .status,
        StatusCode::OK
    );
    f.with_cookie("GET", "api/v2/barong/admin/users", &cookie, &[])
        .await
        .assert_denied(401, "authz.invalid_permission");
    // A target uid that names no user makes Barong drop the activity (still denied).
    f.with_cookie("GET", "api/v2/barong/admin/users?uid=ID404", &cookie, &[])
        .await
        .assert_denied(401, "authz.invalid_permission");

    let admin = create_user(f.store.as_ref(), "admin", "active", false).await;
    let (admin_cookie, csrf) = open_session(f.store.as_ref(), &admin, "127.0.0.1", 600).await;
    assert_eq!(
        f.with_cookie("GET", "api/v2/barong/admin/users", &admin_cookie, &[])
            .await
            .status,
        StatusCode::OK
    );
    // DROP wins over ACCEPT.
    f.with_cookie("GET", "api/v2/barong/admin/permissions", &admin_cookie, &[])
        .await
        .assert_denied(401, "authz.invalid_permission");
    // POST is AUDITed for admins: allowed, and an admin activity is written in the background
    // (not for the admin API's own paths: it writes a fuller row itself, tests/it/admin.rs).
    let target = format!("api/v2/peatio/admin/adjustments?uid={}", member.uid);
    let audited = f
        .with_cookie("POST", &target, &admin_cookie, &[("x-csrf-token", &csrf)])
        .await;
    assert_eq!(audited.status, StatusCode::OK);

    eventually(Duration::from_secs(5), || async {
        let member_rows = f.store.list_user_activities(member.id).await.expect("rows");
        let admin_rows = f.store.list_user_activities(admin.id).await.expect("rows");
        member_rows
            .iter()
            .any(|a| a.result == "denied" && a.topic == "users" && a.action == "read")
            && admin_rows.iter().any(|a| {
                a.result == "succeed"
                    && a.category == "admin"
                    && a.action == "create"
                    && a.target_uid.as_deref() == Some(member.uid.as_str())
                    && a.data.as_deref().is_some_and(|d| {
                        d.contains("api/v2/peatio/admin/adjustments")
                            // The tests' agent is no browser Barong knows.
                            && d.contains(r#""note":"Detected suspicious browser""#)
                    })
            })
    })
    .await;
}

/// Permission rows are judged as Barong compares them, whatever the compact keys that refuse
/// most rows first (`authz::path::PrefixKey`, `authz::policy::VerbSet`) say: a verb exactly
/// (case counts, extension verbs too), a path by its whole prefix ignoring ASCII case, a prefix
/// shorter than eight bytes, and paths that end like a DROP row's prefix (the key's eight bytes)
/// but part from it earlier.
async fn permission_rows_judge_verbs_and_whole_prefixes(backend: Backend) {
    // Rows written after the start reach the decision by the snapshot's refresh.
    let f = fixture(backend, &[("BARONG_AUTHZ_CACHE_TTL", "1")], &[]).await;
    let role = "verbtester";
    for (verb, path, action) in [
        ("ALL", "api/v2/verbs/all", "ACCEPT"),
        ("PURGE", "api/v2/verbs/purge", "ACCEPT"),
        ("GET", "api/v2/verbs/get", "ACCEPT"),
        ("get", "api/v2/verbs/lower", "ACCEPT"),
        ("GET", "api/v3", "ACCEPT"),
        ("GET", "api/v2/verbs/get/secret_thing", "DROP"),
    ] {
        f.store
            .create_permission(&NewPermission {
                role: role.into(),
                verb: verb.into(),
                path: path.into(),
                action: action.into(),
                topic: None,
            })
            .await
            .expect("permission");
    }
    let user = create_user(f.store.as_ref(), role, "active", false).await;
    let (cookie, csrf) = open_session(f.store.as_ref(), &user, "127.0.0.1", 600).await;
    let csrf = [("x-csrf-token", csrf.as_str())];
    eventually(Duration::from_secs(10), || async {
        f.with_cookie("GET", "api/v2/verbs/get", &cookie, &[])
            .await
            .status
            == StatusCode::OK
    })
    .await;

    let cases: &[(&str, &str, bool)] = &[
        ("GET", "api/v2/verbs/all/x", true),
        ("PURGE", "api/v2/verbs/all/x", true),
        ("MKCOL", "api/v2/verbs/all", true),
        ("PURGE", "API/V2/VERBS/PURGE/x", true),
        ("GET", "api/v2/verbs/purge", false),
        ("MKCOL", "api/v2/verbs/purge", false),
        ("purge", "api/v2/verbs/purge", false),
        ("GET", "api/v2/verbs/get/x", true),
        ("POST", "api/v2/verbs/get", false),
        ("DELETE", "api/v2/verbs/get", false),
        ("get", "api/v2/verbs/lower", true),
        ("GET", "api/v2/verbs/lower", false),
        ("get", "api/v2/verbs/get", false),
        // A prefix under eight bytes.
        ("GET", "API/v3/anything", true),
        ("GET", "api/v4/anything", false),
        ("GET", "api/v", false),
        // The DROP row: every case spelling, and bytes changed before its last eight.
        ("GET", "api/v2/verbs/get/secret_thing", false),
        ("GET", "api/v2/verbs/get/SECRET_THING/more", false),
        ("GET", "api/v2/verbs/get/s@cret_thing", true),
        ("GET", "api/v2/verbs/get/secrEt_thing", false),
        ("GET", "api/v2/verbs/get/secre@_thing", true),
        ("GET", "api/v2/verbs/got/secret_thing", false),
        ("GET", "api/v2/verbs/get/secret_thin", true),
    ];
    for &(method, path, allowed) in cases {
        let answer = f.with_cookie(method, path, &cookie, &csrf).await;
        if allowed {
            assert_eq!(
                answer.status,
                StatusCode::OK,
                "{method} {path}: {}",
                answer.body
            );
        } else {
            answer.assert_denied(401, "authz.invalid_permission");
        }
        // nginx's way: the verb in X-Original-Method on a GET subrequest.
        let mut headers = csrf.to_vec();
        headers.push(("x-original-method", method));
        let answer = f.with_cookie("GET", path, &cookie, &headers).await;
        assert_eq!(
            answer.status == StatusCode::OK,
            allowed,
            "X-Original-Method {method} {path}: {}",
            answer.body
        );
    }
}

async fn api_keys_for_each_hmac_algorithm(backend: Backend) {
    let f = fixture(backend, &[], &[]).await;
    let user = create_user(f.store.as_ref(), "member", "active", true).await;
    for algorithm in ["HS256", "HS384", "HS512"] {
        let (kid, secret) = create_key(
            f.store.as_ref(),
            KeyHolder::User(user.id),
            algorithm,
            "active",
        )
        .await;
        let nonce = now_ms().to_string();
        let answer = f
            .with_key(
                PRIVATE,
                &kid,
                &nonce,
                &sign(algorithm, &secret, &nonce, &kid),
            )
            .await;
        assert_eq!(
            answer.headers["x-envoy-auth-headers-to-remove"],
            "x-auth-apikey,x-auth-nonce,x-auth-signature"
        );
        let claims = f.verify(&answer.bearer()).await;
        assert_eq!(claims["uid"], json!(user.uid), "{algorithm}");
        let upper = sign(algorithm, &secret, &nonce, &kid).to_uppercase();
        f.with_key(PRIVATE, &kid, &nonce, &upper)
            .await
            .assert_denied(401, "authz.invalid_signature");
    }
}

async fn api_key_errors_in_barongs_order(backend: Backend) {
    let f = fixture(backend, &[], &[]).await;
    let (user, kid, secret) = member_with_key(f.store.as_ref()).await;
    let signed = |nonce: &str| sign("HS256", &secret, nonce, &kid);

    // Headers: all three must be present and non-blank.
    f.ask("GET", PRIVATE, &[("x-auth-apikey", &kid)])
        .await
        .assert_denied(422, "authz.invalid_api_key_headers");
    f.with_key(PRIVATE, &kid, " ", "x")
        .await
        .assert_denied(422, "authz.invalid_api_key_headers");
    // Unknown kid is reported before the nonce.
    f.with_key(PRIVATE, "unknownkid", "abc", "x")
        .await
        .assert_denied(401, "authz.unexistent_apikey");
    f.with_key(PRIVATE, &kid, "abc", &signed("abc"))
        .await
        .assert_denied(401, "authz.nonce_not_valid_timestamp");
    f.with_key(PRIVATE, &kid, "0", &signed("0"))
        .await
        .assert_denied(401, "authz.nonce_not_valid_timestamp");
    // Window edges: 5000 ms either way is expired; well inside is fine.
    for offset in [-5_500i64, 5_500] {
        let nonce = (now_ms() + offset).to_string();
        f.with_key(PRIVATE, &kid, &nonce, &signed(&nonce))
            .await
            .assert_denied(401, "authz.nonce_expired");
    }
    for offset in [-4_000i64, 4_000] {
        let nonce = (now_ms() + offset).to_string();
        assert_eq!(
            f.with_key(PRIVATE, &kid, &nonce, &signed(&nonce))
                .await
                .status,
            StatusCode::OK,
            "{offset}"
        );
    }
    let nonce = now_ms().to_string();
    f.with_key(PRIVATE, &kid, &nonce, "deadbeef")
        .await
        .assert_denied(401, "authz.invalid_signature");
    // Without replay protection (Barong's default) a nonce may be reused inside the window.
    assert_eq!(
        f.with_key(PRIVATE, &kid, &nonce, &signed(&nonce))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        f.with_key(PRIVATE, &kid, &nonce, &signed(&nonce))
            .await
            .status,
        StatusCode::OK
    );

    let (inactive, inactive_secret) = create_key(
        f.store.as_ref(),
        KeyHolder::User(user.id),
        "HS256",
        "inactive",
    )
    .await;
    let sig = sign("HS256", &inactive_secret, &nonce, &inactive);
    f.with_key(PRIVATE, &inactive, &nonce, &sig)
        .await
        .assert_denied(401, "authz.apikey_not_active");

    let no_2fa = create_user(f.store.as_ref(), "member", "active", false).await;
    let (kid2, secret2) = create_key(
        f.store.as_ref(),
        KeyHolder::User(no_2fa.id),
        "HS256",
        "active",
    )
    .await;
    let sig = sign("HS256", &secret2, &nonce, &kid2);
    f.with_key(PRIVATE, &kid2, &nonce, &sig)
        .await
        .assert_denied(401, "authz.disabled_2fa");

    let banned = create_user(f.store.as_ref(), "member", "banned", true).await;
    let (kid3, secret3) = create_key(
        f.store.as_ref(),
        KeyHolder::User(banned.id),
        "HS256",
        "active",
    )
    .await;
    let sig = sign("HS256", &secret3, &nonce, &kid3);
    f.with_key(PRIVATE, &kid3, &nonce, &sig)
        .await
        .assert_denied(401, "authz.invalid_session");

    // Role without permission on the path.
    f.with_key("api/v2/barong/admin/users", &kid, &nonce, &signed(&nonce))
        .await
        .assert_denied(401, "authz.invalid_permission");
}

async fn service_account_keys_carry_no_user_claims(backend: Backend) {
    let f = fixture(backend, &[], &[]).await;
    let owner = create_user(f.store.as_ref(), "member", "active", true).await;
    let account = f
        .store
        .create_service_account(&NewServiceAccount {
            uid: "SI0000000001".into(),
            owner_id: Some(owner.id),
            email: "bot@barong.test".into(),
            role: "member".into(),
            level: 2,
            state: "active".into(),
        })
        .await
        .expect("service account");
    let (kid, secret) = create_key(
        f.store.as_ref(),
        KeyHolder::ServiceAccount(account.id),
        "HS256",
        "active",
    )
    .await;
    let nonce = now_ms().to_string();
    let answer = f
        .with_key(PRIVATE, &kid, &nonce, &sign("HS256", &secret, &nonce, &kid))
        .await;
    let claims = f.verify(&answer.bearer()).await;
    assert_eq!(claims["uid"], "SI0000000001");
    assert_eq!(claims["level"], 2);
    assert!(
        claims.get("username").is_none() && claims.get("referral_id").is_none(),
        "{claims}"
    );
}

async fn replay_protection_when_enabled(backend: Backend) {
    let f = fixture(backend, &[("BARONG_APIKEY_REPLAY_PROTECTION", "true")], &[]).await;
    let (_, kid, secret) = member_with_key(f.store.as_ref()).await;
    let nonce = now_ms().to_string();
    let sig = sign("HS256", &secret, &nonce, &kid);
    assert_eq!(
        f.with_key(PRIVATE, &kid, &nonce, &sig).await.status,
        StatusCode::OK
    );
    f.with_key(PRIVATE, &kid, &nonce, &sig)
        .await
        .assert_denied(401, "authz.nonce_replayed");
    let future = (now_ms() + 3_000).to_string();
    f.with_key(
        PRIVATE,
        &kid,
        &future,
        &sign("HS256", &secret, &future, &kid),
    )
    .await
    .assert_denied(401, "authz.nonce_expired");
}

async fn restrictions_by_category_and_scope(backend: Backend) {
    let f = fixture(
        backend,
        &[],
        &[
            restriction("maintenance", "ip", "203.0.113.9", None),
            restriction("blacklist", "ip", "198.51.100.7", Some(433)),
            restriction("blacklist", "ip_subnet", "198.51.101.0/24", None),
            restriction("whitelist", "ip", "198.51.101.50", None),
            restriction("blocklogin", "ip", "192.0.2.44", None),
        ],
    )
    .await;
    let from = |ip: &'static str| [("x-forwarded-for", ip)];
    let public = "api/v2/barong/public/ping";
    f.ask("GET", public, &from("203.0.113.9"))
        .await
        .assert_denied(471, "authz.restrict.maintenance");
    f.ask("GET", public, &from("198.51.100.7"))
        .await
        .assert_denied(433, "authz.restrict.blacklist");
    f.ask("GET", public, &from("198.51.101.8"))
        .await
        .assert_denied(403, "authz.restrict.blacklist");
    // A whitelisted address skips the rest.
    assert_eq!(
        f.ask("GET", public, &from("198.51.101.50")).await.status,
        StatusCode::OK
    );
    // Blocklogin only applies to the login path.
    assert_eq!(
        f.ask("GET", public, &from("192.0.2.44")).await.status,
        StatusCode::OK
    );
    f.ask(
        "POST",
        "api/v2/barong/identity/sessions",
        &from("192.0.2.44"),
    )
    .await
    .assert_denied(401, "authz.restrict.blocklogin");
    // The whitelink path is exempt from restrictions.
    let whitelink = f
        .ask(
            "POST",
            "api/v2/barong/identity/users/access",
            &from("203.0.113.9"),
        )
        .await;
    assert_eq!(whitelink.status, StatusCode::OK);
    assert_eq!(
        f.ask("GET", public, &from("8.8.8.8")).await.status,
        StatusCode::OK
    );

    let closed = fixture(
        backend,
        &[],
        &[restriction("maintenance", "all", "all", None)],
    )
    .await;
    closed
        .ask("GET", public, &[])
        .await
        .assert_denied(471, "authz.restrict.maintenance");
}

async fn country_and_continent_restrictions_use_geoip_names(backend: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mmdb = dir.path().join("geo.mmdb");
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/make_geoip.py");
    let made = std::process::Command::new(support::python())
        .arg(script)
        .arg(&mmdb)
        .status()
        .expect("python");
    assert!(
        made.success(),
        "make_geoip.py (needs mmdb-writer in .venv; .ci/run installs it)"
    );
    let f = fixture(
        backend,
        &[("BARONG_MAXMINDDB_PATH", mmdb.to_str().expect("utf-8"))],
        &[
            restriction("blacklist", "country", "united kingdom", Some(435)),
            restriction("maintenance", "continent", "Asia", None),
            restriction("blacklist", "country", "GB", Some(499)),
        ],
    )
    .await;
    let from = |ip: &'static str| [("x-forwarded-for", ip)];
    let public = "api/v2/barong/public/ping";
    // Names, not ISO codes, and case-insensitive (the GB row never matches).
    f.ask("GET", public, &from("196.245.163.202"))
        .await
        .assert_denied(435, "authz.restrict.blacklist");
    f.ask("GET", public, &from("140.227.60.114"))
        .await
        .assert_denied(471, "authz.restrict.maintenance");
    assert_eq!(
        f.ask("GET", public, &from("8.8.8.8")).await.status,
        StatusCode::OK
    );
}

async fn deactivated_key_is_refused_within_the_bound(backend: Backend) {
    let f = fixture(backend, &[("BARONG_AUTHZ_CACHE_TTL", "2")], &[]).await;
    let (_, kid, secret) = member_with_key(f.store.as_ref()).await;
    let ask = || async {
        let nonce = now_ms().to_string();
        f.with_key(PRIVATE, &kid, &nonce, &sign("HS256", &secret, &nonce, &kid))
            .await
    };
    assert_eq!(ask().await.status, StatusCode::OK);
    f.store
        .set_api_key_state(&kid, "inactive")
        .await
        .expect("deactivate");
    if backend == Backend::Postgres {
        // What another instance announces after the change: applied at once.
        f.store
            .notify_invalidation(&format!("elsewhere apikey:{kid}"))
            .await
            .expect("notify");
    }
    let bound = if backend == Backend::Postgres { 1 } else { 3 };
    eventually(Duration::from_secs(bound), || async {
        ask().await.status == StatusCode::UNAUTHORIZED
    })
    .await;
    let answer = ask().await;
    answer.assert_denied(401, "authz.apikey_not_active");
}

async fn tokens_for_each_signing_algorithm(backend: Backend) {
    for algorithm in ["ES256", "EdDSA", "RS256"] {
        let f = fixture(backend, &[("BARONG_JWT_ALGORITHM", algorithm)], &[]).await;
        let user = create_user(f.store.as_ref(), "member", "active", false).await;
        let (cookie, _) = open_session(f.store.as_ref(), &user, "127.0.0.1", 600).await;
        let token = f.with_cookie("GET", PRIVATE, &cookie, &[]).await.bearer();
        let header = jsonwebtoken::decode_header(&token).expect("header");
        let expected = match algorithm {
            "ES256" => Algorithm::ES256,
            "EdDSA" => Algorithm::EdDSA,
            _ => Algorithm::RS256,
        };
        assert_eq!(header.alg, expected);
        assert_eq!(f.verify(&token).await["uid"], json!(user.uid));
        // Reused within the reuse window: the same token for the same principal.
        let again = f.with_cookie("GET", PRIVATE, &cookie, &[]).await.bearer();
        assert_eq!(again, token);
    }
}

/// Two instances on one PostgreSQL database: a session destroyed on one is refused by the
/// other as soon as the NOTIFY arrives (well inside the TTL bound).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_invalidations() {
    let f = fixture(Backend::Postgres, &[("BARONG_AUTHZ_CACHE_TTL", "60")], &[]).await;
    let other = TestServer::start(
        f._db.dir.path(),
        &f._db.url,
        &[
            ("BARONG_ENCRYPTION_KEY", ENCRYPTION_KEY),
            ("BARONG_AUTHZ_CACHE_TTL", "60"),
        ],
    );
    let user = create_user(f.store.as_ref(), "member", "active", false).await;
    let (cookie, _) = open_session(f.store.as_ref(), &user, "127.0.0.1", 600).await;
    let ask_other = || async {
        let response = f
            .http
            .get(format!("{}/api/v2/auth/{PRIVATE}", other.authz))
            .header("cookie", format!("_barong_session={cookie}"))
            .header("user-agent", AGENT)
            .send()
            .await
            .expect("other");
        response.status()
    };
    assert_eq!(
        f.with_cookie("GET", PRIVATE, &cookie, &[]).await.status,
        StatusCode::OK
    );
    assert_eq!(
        ask_other().await,
        StatusCode::OK,
        "cached on the second instance too"
    );
    // A request from another agent makes the first instance destroy the session.
    let cookie_header = format!("_barong_session={cookie}");
    f.ask(
        "GET",
        PRIVATE,
        &[("cookie", &cookie_header), ("user-agent", "stolen/1.0")],
    )
    .await
    .assert_denied(401, "authz.client_session_mismatch");
    let took = eventually(Duration::from_secs(5), || async {
        ask_other().await == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(
        took < Duration::from_secs(2),
        "relayed in {took:?}, TTL is 60 s"
    );
}

/// With PostgreSQL gone: cached sessions keep being answered, uncached ones fail closed at once
/// with 503, readiness says 503, and everything recovers when the database is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage_fails_closed_and_recovers() {
    let db = TestDb::new(Backend::Postgres).await;
    let store = db.open().await;
    store.migrate().await.expect("migrate");
    Seeds::parse(DEFAULT_SEEDS)
        .expect("seeds")
        .apply(store.as_ref(), "ID")
        .await
        .expect("seed");
    let proxy = common::TcpProxy::start("127.0.0.1:5432".parse().expect("addr")).await;
    let server = TestServer::start(
        db.dir.path(),
        &db.url_via(proxy.port),
        &[
            ("BARONG_ENCRYPTION_KEY", ENCRYPTION_KEY),
            ("BARONG_DB_CONNECT_TIMEOUT", "500"),
            ("BARONG_AUTHZ_CACHE_TTL", "30"),
        ],
    );
    let f = Fixture {
        _db: db,
        store,
        server,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client"),
    };
    let user = create_user(f.store.as_ref(), "member", "active", false).await;
    let (warm, _) = open_session(f.store.as_ref(), &user, "127.0.0.1", 600).await;
    let (cold, _) = open_session(f.store.as_ref(), &user, "127.0.0.1", 600).await;
    assert_eq!(
        f.with_cookie("GET", PRIVATE, &warm, &[]).await.status,
        StatusCode::OK
    );

    proxy.cut().await;
    assert_eq!(
        f.with_cookie("GET", PRIVATE, &warm, &[]).await.status,
        StatusCode::OK,
        "cached"
    );
    let started = Instant::now();
    f.with_cookie("GET", PRIVATE, &cold, &[])
        .await
        .assert_denied(503, "authz.unavailable");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "failed closed in {:?}",
        started.elapsed()
    );
    let ready = f
        .http
        .get(f.server.url("/api/v2/barong/public/health/ready"))
        .send()
        .await
        .expect("ready");
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let alive = f
        .http
        .get(f.server.url("/api/v2/barong/public/health/alive"))
        .send()
        .await
        .expect("alive");
    assert_eq!(alive.status(), StatusCode::OK);

    proxy.restore().await;
    eventually(Duration::from_secs(10), || async {
        f.with_cookie("GET", PRIVATE, &cold, &[]).await.status == StatusCode::OK
    })
    .await;
}

/// What an attacker varies in one decision: the spelling of the path, the cookie header, the
/// verb (unusual ones, overrides). Each is judged as the upstream will see it, or refused.
async fn attacker_inputs_are_judged_as_the_upstream_sees_them(backend: Backend) {
    let f = fixture(backend, &[], &[]).await;
    let support = create_user(f.store.as_ref(), "support", "active", false).await;
    let (cookie, csrf) = open_session(f.store.as_ref(), &support, "127.0.0.1", 600).await;

    // support may GET api/v2/peatio/admin but not its adjustments (a DROP row).
    let allowed = f
        .with_cookie("GET", "api/v2/peatio/admin/markets", &cookie, &[])
        .await;
    assert_eq!(allowed.status, StatusCode::OK, "{}", allowed.body);
    for spelling in [
        "api/v2/peatio/admin/adjustments",
        "api/v2/peatio/admin/%61djustments",
        "api/v2/peatio/admin/adjustment%73",
        "api/v2/peatio/%61dmin/%61%64%6a%75%73%74%6d%65%6e%74%73",
        "api/v2/peatio/admin/Adjustments",
        "API/V2/PEATIO/ADMIN/ADJUSTMENTS",
        "api/v2/peatio/admin/adjustments/",
        "api/v2/peatio/admin/adjustments.json",
        "api/v2/peatio/admin/adjustments%20",
    ] {
        let session = format!("_barong_session={cookie}");
        f.ask_raw(
            "GET",
            spelling,
            &[("cookie", &session), ("user-agent", AGENT)],
        )
        .await
        .assert_denied(401, "authz.invalid_permission");
    }
    // Spellings two servers could route differently are refused before any rule is read.
    for spelling in [
        "api/v2/barong/public%00/../account",
        "api/v2/peatio/public/../admin/adjustments",
        "api/v2/peatio/public/%2e%2e/admin/adjustments",
        "api/v2/peatio/public/.%2E/admin/adjustments",
        "api/v2/peatio/public%2f..%2fadmin/adjustments",
        "api/v2/peatio/public%5c..%5cadmin/adjustments",
        "api/v2/peatio/admin//adjustments",
        "api/v2/peatio/./admin/adjustments",
        "api/v2/peatio/admin;x=1/adjustments",
        "api/v2/peatio/admin/adjustments%3b",
        "api/v2/peatio/admin/%2561djustments",
        "api/v2/peatio/admin/adjustments%00",
        "api/v2/peatio/admin/adjustments%0a",
        "api/v2/peatio/admin/%c0%ae%c0%ae/x",
        "api/v2/peatio/admin/%ff",
        "api/v2/peatio/admin/%zz",
        "api/v2/peatio/admin/adjustments%3f.json",
    ] {
        let session = format!("_barong_session={cookie}");
        f.ask_raw(
            "GET",
            spelling,
            &[("cookie", &session), ("user-agent", AGENT)],
        )
        .await
        .assert_denied(400, "authz.invalid_path");
    }
    // nginx's X-Original-URI is canonicalised the same way.
    f.ask(
        "GET",
        "",
        &[
            ("x-original-uri", "/api/v2/peatio/admin/%61djustments?x=1"),
            ("cookie", &format!("_barong_session={cookie}")),
            ("user-agent", AGENT),
        ],
    )
    .await
    .assert_denied(401, "authz.invalid_permission");
    f.ask(
        "GET",
        "",
        &[("x-original-uri", "//api/v2/peatio/public/markets")],
    )
    .await
    .assert_denied(400, "authz.invalid_path");

    // The session cookie twice: refused, whichever copy is valid.
    let (other, _) = open_session(f.store.as_ref(), &support, "127.0.0.1", 600).await;
    for header in [
        format!("_barong_session={cookie}; _barong_session={other}"),
        format!("_barong_session=forged; _barong_session={cookie}"),
        format!("_barong_session={cookie}; _barong_session={cookie}"),
    ] {
        f.ask(
            "GET",
            "api/v2/peatio/admin/markets",
            &[("cookie", &header), ("user-agent", AGENT)],
        )
        .await
        .assert_denied(401, "authz.invalid_session");
    }
    // ... and logs nothing out on the REST listener: the session that was judged is the one
    // a logout ends.
    let logout = |cookie_header: String| {
        f.http
            .delete(f.server.url("/api/v2/barong/identity/sessions"))
            .header("cookie", cookie_header)
            .header("user-agent", AGENT)
            .send()
    };
    let both = logout(format!("_barong_session={cookie}; _barong_session={other}"))
        .await
        .expect("logout");
    assert_eq!(both.status(), StatusCode::NOT_FOUND);
    for alive in [&cookie, &other] {
        let answer = f
            .with_cookie("GET", "api/v2/peatio/admin/markets", alive, &[])
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    }
    let one = logout(format!("_barong_session={other}"))
        .await
        .expect("logout");
    assert_eq!(one.status(), StatusCode::OK);
    eventually(Duration::from_secs(5), || async {
        f.with_cookie("GET", "api/v2/peatio/admin/markets", &other, &[])
            .await
            .status
            == StatusCode::UNAUTHORIZED
    })
    .await;

    // Every verb but GET, HEAD and OPTIONS needs the CSRF token, the unusual ones included.
    for method in ["PROPFIND", "LOCK", "MKCOL", "PURGE", "CONNECTX", "TRACE"] {
        f.with_cookie(method, "api/v2/peatio/admin/markets", &cookie, &[])
            .await
            .assert_denied(401, "authz.missing_csrf_token");
        f.with_cookie(
            "GET",
            "api/v2/peatio/admin/markets",
            &cookie,
            &[("x-original-method", method)],
        )
        .await
        .assert_denied(401, "authz.missing_csrf_token");
    }
    for method in ["HEAD", "OPTIONS"] {
        let answer = f
            .with_cookie(method, "api/v2/peatio/admin/markets", &cookie, &[])
            .await;
        assert_ne!(answer.status.as_u16(), 400, "{method}");
        assert_ne!(
            answer
                .headers
                .get("x-barong-error")
                .map(|v| v.to_str().ok()),
            Some(Some(r#"{"errors":["authz.missing_csrf_token"]}"#))
        );
    }

    // A method override is judged too: support may GET, not DELETE, api/v2/peatio/admin.
    for (name, value) in [
        ("x-http-method-override", "DELETE"),
        ("x-method-override", "delete"),
        ("x-http-method", "DELETE"),
    ] {
        // Without the token: an override to an unsafe verb needs it.
        f.with_cookie(
            "GET",
            "api/v2/peatio/admin/markets",
            &cookie,
            &[(name, value)],
        )
        .await
        .assert_denied(401, "authz.missing_csrf_token");
        f.with_cookie(
            "POST",
            "api/v2/peatio/admin/markets",
            &cookie,
            &[(name, value), ("x-csrf-token", &csrf)],
        )
        .await
        .assert_denied(401, "authz.invalid_permission");
    }
    // Found wherever they sit among many other headers, and when repeated: the decision notes
    // which of these headers a request carries in one pass over the names
    // (`authz::request::Present`), and a header it misses would go unjudged.
    let filler: Vec<(String, String)> = (0..40)
        .map(|i| (format!("x-filler-{i}"), i.to_string()))
        .collect();
    let buried = |last: &[(&'static str, &'static str)]| {
        let mut headers: Vec<(&str, &str)> = filler
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        headers.extend_from_slice(last);
        headers
    };
    // The headers put last, and the deny. One API-key header beside a valid cookie is judged as
    // an API-key request, never as the cookie's session.
    type Case = (&'static [(&'static str, &'static str)], u16, &'static str);
    let cases: [Case; 3] = [
        (
            &[("x-http-method", "GET"), ("x-http-method", "DELETE")],
            400,
            "authz.invalid_method",
        ),
        (
            &[("x-method-override", "DELETE")],
            401,
            "authz.missing_csrf_token",
        ),
        (
            &[("x-auth-signature", "00")],
            422,
            "authz.invalid_api_key_headers",
        ),
    ];
    for (last, status, key) in cases {
        f.with_cookie("GET", "api/v2/peatio/admin/markets", &cookie, &buried(last))
            .await
            .assert_denied(status, key);
    }
    f.with_cookie(
        "GET",
        "api/v2/peatio/admin/markets?_method=DELETE",
        &cookie,
        &[("x-csrf-token", &csrf)],
    )
    .await
    .assert_denied(401, "authz.invalid_permission");
    f.with_cookie(
        "GET",
        "api/v2/peatio/admin/markets",
        &cookie,
        &[("x-http-method-override", "GET, DELETE")],
    )
    .await
    .assert_denied(400, "authz.invalid_method");
    let same = f
        .with_cookie(
            "GET",
            "api/v2/peatio/admin/markets",
            &cookie,
            &[("x-http-method-override", "GET")],
        )
        .await;
    assert_eq!(same.status, StatusCode::OK, "{}", same.body);
}

/// A restriction row whose code would not deny (written before codes were checked, or by
/// hand) denies with its category's default: never a 2xx "allow" for a restricted client.
async fn restriction_codes_always_deny(backend: Backend) {
    let rows = [
        restriction("blacklist", "ip", "127.0.0.1", Some(200)),
        restriction("maintenance", "ip", "127.0.0.2", Some(302)),
        restriction("blacklist", "ip_subnet", "127.0.3.0/24", Some(503)),
        restriction("blacklist", "ip", "127.0.0.4", Some(-1)),
    ];
    let f = fixture(backend, &[], &rows).await;
    let from = common::client_from;
    for (ip, status, key) in [
        ("127.0.0.1", 401, "authz.restrict.blacklist"),
        ("127.0.0.2", 471, "authz.restrict.maintenance"),
        ("127.0.3.9", 403, "authz.restrict.blacklist"),
        ("127.0.0.4", 401, "authz.restrict.blacklist"),
    ] {
        for path in ["api/v2/peatio/public/markets", PRIVATE] {
            let response = from(ip)
                .get(format!("{}/api/v2/auth/{path}", f.server.authz))
                .send()
                .await
                .expect("authz");
            let answer = Answer {
                status: response.status(),
                headers: response.headers().clone(),
                body: response.text().await.expect("body"),
            };
            answer.assert_denied(status, key);
        }
    }
}

/// The client address comes from forwarding headers only when the peer is a trusted proxy.
async fn forwarded_addresses_only_from_trusted_proxies(backend: Backend) {
    let rows = [
        restriction("blacklist", "ip", "127.0.0.5", None),
        restriction("maintenance", "ip", "8.8.4.4", None),
    ];
    let env = [("BARONG_TRUSTED_PROXIES", "127.0.0.1/32")];
    let f = fixture(backend, &env, &rows).await;
    let from = common::client_from;
    let ask = |ip: &'static str, headers: Vec<(&'static str, &'static str)>| {
        let f = &f;
        let from = &from;
        async move {
            let mut request = from(ip).get(format!(
                "{}/api/v2/auth/api/v2/peatio/public/markets",
                f.server.authz
            ));
            for (name, value) in headers {
                request = request.header(name, value);
            }
            request.send().await.expect("authz").status().as_u16()
        }
    };
    // A blacklisted client that is not a trusted proxy names no other address.
    for header in [
        "x-forwarded-for",
        "client-ip",
        "true-client-ip",
        "x-real-ip",
    ] {
        assert_eq!(
            ask("127.0.0.5", vec![(header, "8.8.8.8")]).await,
            401,
            "{header}"
        );
    }
    assert_eq!(ask("127.0.0.5", vec![]).await, 401);
    // Nor does it escape by naming a trusted one.
    assert_eq!(
        ask("127.0.0.5", vec![("x-forwarded-for", "127.0.0.1")]).await,
        401
    );
    // The trusted proxy vouches for the address it appended.
    assert_eq!(
        ask("127.0.0.1", vec![("x-forwarded-for", "127.0.0.5")]).await,
        401
    );
    assert_eq!(
        ask("127.0.0.1", vec![("x-forwarded-for", "8.8.4.4")]).await,
        471
    );
    // ... but not for what the client wrote left of it, nor for Client-IP unless enabled.
    assert_eq!(
        ask("127.0.0.1", vec![("x-forwarded-for", "8.8.4.4, 127.0.0.9")]).await,
        200
    );
    assert_eq!(ask("127.0.0.1", vec![("client-ip", "8.8.4.4")]).await, 200);
    assert_eq!(
        ask("127.0.0.1", vec![("true-client-ip", "8.8.4.4")]).await,
        200
    );
}

/// Every case spelling of a path a rule names, the case changed wherever it falls in the
/// prefix's eight-byte words (`authz::path::Prefix` compares a word at a time), and spellings
/// a byte away from it: the block rule and the DROP rows still apply to the first, and only to
/// them (support may GET `api/v2/peatio/admin`, but not its DROP rows).
async fn rule_prefixes_match_every_case_spelling_and_nothing_else(backend: Backend) {
    let f = fixture(backend, &[], &[]).await;
    let support = create_user(f.store.as_ref(), "support", "active", false).await;
    let (cookie, _) = open_session(f.store.as_ref(), &support, "127.0.0.1", 600).await;
    let session = format!("_barong_session={cookie}");
    let headers = [("cookie", session.as_str()), ("user-agent", AGENT)];
    // Each letter's case changed alone, then 16 mixed spellings from a fixed seed.
    let spellings = |path: &str| {
        let mut out = Vec::new();
        for (at, b) in path.bytes().enumerate() {
            if b.is_ascii_alphabetic() {
                let mut flipped = path.as_bytes().to_vec();
                flipped[at] ^= 0x20;
                out.push(String::from_utf8(flipped).expect("ascii"));
            }
        }
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        for _ in 0..16 {
            let mixed = path.chars().map(|c| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                if state & 1 == 1 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            });
            out.push(mixed.collect::<String>());
        }
        out
    };
    // A byte away: each byte of the last segment replaced by `@` (beside `A`) or `-`.
    let near_misses = |path: &str| {
        let start = path.rfind('/').map_or(0, |i| i + 1);
        let mut out = Vec::new();
        for at in start..path.len() {
            let mut bytes = path.as_bytes().to_vec();
            bytes[at] = if bytes[at] == b'_' { b'-' } else { b'@' };
            out.push(String::from_utf8(bytes).expect("ascii"));
        }
        out
    };

    // The block rule (24 bytes: three whole words).
    for spelling in spellings("api/v2/barong/management/users/get") {
        f.ask_raw("GET", &spelling, &headers)
            .await
            .assert_denied(401, "authz.permission_denied");
    }
    for spelling in near_misses("api/v2/barong/management") {
        // Not blocked: judged by the permissions, where support has no row for it.
        f.ask_raw("GET", &spelling, &headers)
            .await
            .assert_denied(401, "authz.invalid_permission");
    }
    // DROP rows whose last segment crosses a word boundary into the tail, one with a `_`.
    for drop in [
        "api/v2/peatio/admin/adjustments",
        "api/v2/peatio/admin/withdraw_limits",
    ] {
        for spelling in spellings(drop) {
            f.ask_raw("GET", &spelling, &headers)
                .await
                .assert_denied(401, "authz.invalid_permission");
        }
        for spelling in near_misses(drop) {
            let answer = f.ask_raw("GET", &spelling, &headers).await;
            assert_eq!(answer.status, StatusCode::OK, "{spelling}: {}", answer.body);
        }
    }
}

/// What an attacker can do to the API-key headers and the deny counters: repeat a header (the
/// first value is the one judged, whichever is valid), pad a value with tabs, send a nonce too
/// long for a number, and send spellings refused before any rule; every refusal is counted under
/// its own key in `/metrics`, the path and method refusals included.
async fn api_key_headers_and_deny_counters_under_attack(backend: Backend) {
    let f = fixture(backend, &[], &[]).await;
    let (_, kid, secret) = member_with_key(f.store.as_ref()).await;
    let nonce = now_ms().to_string();
    let signature = sign("HS256", &secret, &nonce, &kid);

    // Repeated headers, over a raw socket so both copies go out as written.
    let (nonce, signature) = (nonce.as_str(), signature.as_str());
    let valid_first = [
        ("X-Auth-Apikey", kid.as_str()),
        ("x-auth-apikey", "unknownkid"),
        ("x-auth-nonce", nonce),
        ("x-auth-signature", signature),
    ];
    let answer = f.ask_raw("GET", PRIVATE, &valid_first).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let unknown_first = [
        ("X-Auth-Apikey", "unknownkid"),
        ("x-auth-apikey", kid.as_str()),
        ("x-auth-nonce", nonce),
        ("x-auth-signature", signature),
    ];
    f.ask_raw("GET", PRIVATE, &unknown_first)
        .await
        .assert_denied(401, "authz.unexistent_apikey");
    // A repeated signature: the first is judged.
    let headers = [
        ("x-auth-apikey", kid.as_str()),
        ("x-auth-nonce", nonce),
        ("x-auth-signature", "deadbeef"),
        ("x-auth-signature", signature),
    ];
    f.ask_raw("GET", PRIVATE, &headers)
        .await
        .assert_denied(401, "authz.invalid_signature");
    // Blank by tabs and spaces only.
    f.ask_raw(
        "GET",
        PRIVATE,
        &[
            ("x-auth-apikey", kid.as_str()),
            ("x-auth-nonce", "\t \t1"),
            ("x-auth-signature", "\t \t"),
        ],
    )
    .await
    .assert_denied(422, "authz.invalid_api_key_headers");
    // A byte outside ASCII (obs-text, which a header value may carry) in any one of the three
    // refuses the headers, as `to_str` would: never a nonce read up to it, nor a signature or
    // kid compared without it. The same three in ASCII pass, so only that byte is judged.
    let valid = [
        ("x-auth-apikey", kid.as_str()),
        ("x-auth-nonce", nonce),
        ("x-auth-signature", signature),
    ];
    let answer = f.ask_raw("GET", PRIVATE, &valid).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    for (index, spelling) in [
        (0, "{}\u{e9}"),
        (1, "{}\u{e9}"),
        (1, "\u{e9}{}"),
        (2, "{}\u{e9}"),
    ] {
        let mut headers = valid;
        let odd = spelling.replace("{}", headers[index].1);
        headers[index].1 = &odd;
        f.ask_raw("GET", PRIVATE, &headers)
            .await
            .assert_denied(422, "authz.invalid_api_key_headers");
    }
    // Too many digits for a number: read as the largest one, far outside the window.
    let huge = "9".repeat(40);
    f.with_key(PRIVATE, &kid, &huge, &sign("HS256", &secret, &huge, &kid))
        .await
        .assert_denied(401, "authz.nonce_expired");

    // Refused spellings and verbs, then each key's counter.
    f.ask_raw("GET", "api/v2/barong/%2e%2e/admin/users", &[])
        .await
        .assert_denied(400, "authz.invalid_path");
    f.ask_raw(
        "POST",
        PRIVATE,
        &[
            ("x-http-method-override", "GET"),
            ("x-http-method", "DELETE"),
        ],
    )
    .await
    .assert_denied(400, "authz.invalid_method");
    let metrics = f
        .http
        .get(format!("{}/metrics", f.server.authz))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    for (key, count) in [
        ("authz.invalid_path", 1),
        ("authz.invalid_method", 1),
        ("authz.unexistent_apikey", 1),
        ("authz.invalid_signature", 1),
        // The blank ones and the four outside ASCII.
        ("authz.invalid_api_key_headers", 5),
        ("authz.nonce_expired", 1),
    ] {
        let line =
            format!("barong_authz_decisions_total{{result=\"deny\",reason=\"{key}\"}} {count}");
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }
}

/// A method, a path and the headers to ask them with.
type Ask<'a> = (&'a str, &'a str, Vec<(&'a str, String)>);

/// Every decision is made two ways (`src/authz/principal.rs`): owned, through the shared caches,
/// while this thread's cache fronts do not hold what it needs (a request's first two asks: the
/// load, then the shared hit that fills the front), and lent from the fronts after that. With
/// one worker thread every ask lands on the same fronts, so each request asked four times is
/// judged both ways, and must be answered alike.
async fn the_lent_and_owned_ways_answer_alike(backend: Backend) {
    let f = fixture(backend, &[("TOKIO_WORKER_THREADS", "1")], &[]).await;
    let store = f.store.as_ref();
    let member = create_user(store, "member", "active", true).await;
    let (cookie, csrf) = open_session(store, &member, "127.0.0.1", 600).await;
    let banned = create_user(store, "member", "banned", true).await;
    let (banned_cookie, _) = open_session(store, &banned, "127.0.0.1", 600).await;
    let no_2fa = create_user(store, "member", "active", false).await;
    let account = store
        .create_service_account(&NewServiceAccount {
            uid: "SI0000000002".into(),
            owner_id: Some(member.id),
            email: "bot2@barong.test".into(),
            role: "member".into(),
            level: 2,
            state: "active".into(),
        })
        .await
        .expect("service account");
    let mut keys = Vec::new();
    for (holder, state) in [
        (KeyHolder::User(member.id), "active"),
        (KeyHolder::User(member.id), "inactive"),
        (KeyHolder::User(no_2fa.id), "active"),
        (KeyHolder::User(banned.id), "active"),
        (KeyHolder::ServiceAccount(account.id), "active"),
    ] {
        keys.push(create_key(store, holder, "HS256", state).await);
    }
    let nonce = now_ms().to_string();
    let stale = (now_ms() - 60_000).to_string();
    let session = |value: &str| format!("_barong_session={value}");
    let repeated = format!("{}; {}", session(&cookie), session(&cookie));
    let (kid, secret) = &keys[0];
    let signed = sign("HS256", secret, &nonce, kid);
    let stale_signed = sign("HS256", secret, &stale, kid);
    let mut asks: Vec<Ask> = vec![
        ("GET", PRIVATE, vec![("cookie", session(&cookie))]),
        ("POST", PRIVATE, vec![("cookie", session(&cookie))]),
        (
            "POST",
            PRIVATE,
            vec![("cookie", session(&cookie)), ("x-csrf-token", "x".into())],
        ),
        (
            "POST",
            PRIVATE,
            vec![("cookie", session(&cookie)), ("x-csrf-token", csrf.clone())],
        ),
        (
            "GET",
            "api/v2/barong/admin/users",
            vec![("cookie", session(&cookie))],
        ),
        ("GET", PRIVATE, vec![("cookie", session(&banned_cookie))]),
        ("GET", PRIVATE, vec![("cookie", repeated)]),
        ("GET", PRIVATE, vec![]),
        ("POST", PRIVATE, vec![]),
        ("GET", PRIVATE, vec![("cookie", session("feedface"))]),
        (
            "GET",
            PRIVATE,
            vec![
                ("x-auth-apikey", kid.clone()),
                ("x-auth-nonce", stale.clone()),
                ("x-auth-signature", stale_signed),
            ],
        ),
        (
            "GET",
            PRIVATE,
            vec![
                ("x-auth-apikey", kid.clone()),
                ("x-auth-nonce", nonce.clone()),
                ("x-auth-signature", "deadbeef".into()),
            ],
        ),
        (
            "GET",
            "api/v2/barong/admin/users",
            vec![
                ("x-auth-apikey", kid.clone()),
                ("x-auth-nonce", nonce.clone()),
                ("x-auth-signature", signed),
            ],
        ),
    ];
    for (kid, secret) in &keys {
        asks.push((
            "GET",
            PRIVATE,
            vec![
                ("x-auth-apikey", kid.clone()),
                ("x-auth-nonce", nonce.clone()),
                ("x-auth-signature", sign("HS256", secret, &nonce, kid)),
            ],
        ));
    }
    let mut outcomes = Vec::new();
    for (method, path, headers) in &asks {
        let mut headers: Vec<(&str, &str)> =
            headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        headers.push(("user-agent", AGENT));
        let mut answers = Vec::new();
        for _ in 0..4 {
            let answer = f.ask(method, path, &headers).await;
            let error = answer.headers.get("x-barong-error").cloned();
            answers.push((
                answer.status,
                error,
                answer.headers.contains_key("authorization"),
            ));
        }
        assert!(
            answers.iter().all(|a| *a == answers[0]),
            "{method} {path} {headers:?}: {answers:?}"
        );
        outcomes.push(answers[0].0.as_u16());
    }
    // Each kind of answer was met: allows (cookie, CSRF, each key holder but the refused ones)
    // and denies.
    assert_eq!(
        outcomes,
        [
            200, 401, 401, 200, 401, 401, 401, 401, 401, 401, 401, 401, 401, 200, 401, 401, 401,
            200
        ]
    );

    // A session the fronts hold, asked from another agent: the lent way gives up and the owned
    // way deletes it, as on its first ask.
    let (bound, _) = open_session(store, &member, "127.0.0.1", 600).await;
    for _ in 0..4 {
        let ok = f.with_cookie("GET", PRIVATE, &bound, &[]).await;
        assert_eq!(ok.status, StatusCode::OK);
    }
    f.ask(
        "GET",
        PRIVATE,
        &[("cookie", &session(&bound)), ("user-agent", "curl/8")],
    )
    .await
    .assert_denied(401, "authz.client_session_mismatch");
    f.with_cookie("GET", PRIVATE, &bound, &[])
        .await
        .assert_denied(401, "authz.invalid_session");
}

both_backends!(
    api_key_headers_and_deny_counters_under_attack,
    attacker_inputs_are_judged_as_the_upstream_sees_them,
    rule_prefixes_match_every_case_spelling_and_nothing_else,
    restriction_codes_always_deny,
    forwarded_addresses_only_from_trusted_proxies,
    session_allows_with_a_token_verified_by_jwks,
    missing_and_unknown_sessions,
    cookie_lines_outside_ascii_are_read_like_any_other,
    csrf_is_checked_on_state_changing_verbs,
    sessions_are_bound_to_agent_network_and_expiry,
    sliding_expiry_is_written_behind,
    permissions_accept_drop_and_audit,
    permission_rows_judge_verbs_and_whole_prefixes,
    api_keys_for_each_hmac_algorithm,
    api_key_errors_in_barongs_order,
    service_account_keys_carry_no_user_claims,
    replay_protection_when_enabled,
    restrictions_by_category_and_scope,
    country_and_continent_restrictions_use_geoip_names,
    deactivated_key_is_refused_within_the_bound,
    tokens_for_each_signing_algorithm,
    the_lent_and_owned_ways_answer_alike,
);
