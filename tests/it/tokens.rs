//! Every token the server signs has one purpose, over real sockets on both backends: the two
//! forgeries through management `otp/sign` fail, each kind of token is refused where another
//! kind is expected, one-time tokens are used once and only with their stored claim, bearer
//! expiry has no leeway beyond the configured one, and management requests are good once and
//! for a bounded time (also across two instances on one database).

use crate::common::http;
use crate::{common, mgmt_support, support};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{Backend, TestDb, TestServer};
use mgmt_support::{TestSigner, call, keychain_entry, request, request_with_claims, rs256};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{SmtpSink, free_port, token_in};

const AGENT: &str = "Mozilla/5.0 (tokens test)";
const PASSWORD: &str = "Iequ4geiEWQw";
const RESERVED: &str =
    "JWT is invalid by the reason \"payload is reserved for tokens issued by barong\"";

/// A server with an SMTP sink and a management keychain (`applogic` may sign every scope).
struct Env {
    db: TestDb,
    sink: SmtpSink,
    server: TestServer,
    applogic: TestSigner,
    yml: std::path::PathBuf,
}

fn management_yml(db: &TestDb, applogic: &TestSigner) -> std::path::PathBuf {
    let mut yml = String::from("keychain:\n");
    yml += &keychain_entry(applogic);
    yml += "jwt: {}\nscopes:\n";
    for scope in ["tools", "otp_sign", "write_users", "read_users"] {
        yml += &format!(
            "  {scope}:\n    permitted_signers: [applogic]\n    mandatory_signers: [applogic]\n"
        );
    }
    let path = db.dir.path().join("management_api.yml");
    std::fs::write(&path, yml).expect("write yml");
    path
}

fn server_env(sink: &SmtpSink, yml: &std::path::Path) -> Vec<(&'static str, String)> {
    vec![
        ("BARONG_SMTP_HOST", "127.0.0.1".into()),
        ("BARONG_SMTP_PORT", sink.port.to_string()),
        ("BARONG_DOMAIN", "https://barong.test".into()),
        ("BARONG_MAIL_POLL_INTERVAL", "100".into()),
        (
            "BARONG_MANAGEMENT_API_FILE",
            yml.to_str().expect("path").into(),
        ),
    ]
}

fn start(db: &TestDb, env: &[(&'static str, String)]) -> TestServer {
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    TestServer::start(db.dir.path(), &db.url, &pairs)
}

async fn setup(backend: Backend, extra: &[(&'static str, String)]) -> Env {
    let db = TestDb::new(backend).await;
    let sink = SmtpSink::start(free_port(), &db.dir.path().join("mail"));
    let applogic = rs256("applogic", db.dir.path());
    let yml = management_yml(&db, &applogic);
    let mut env = server_env(&sink, &yml);
    env.extend(extra.iter().cloned());
    let server = start(&db, &env);
    Env {
        db,
        sink,
        server,
        applogic,
        yml,
    }
}

/// A signed-in user: session cookie, CSRF token, uid.
struct User {
    email: String,
    cookie: String,
    csrf: String,
    uid: String,
}

async fn identity(server: &TestServer, path: &str, body: Value) -> reqwest::Response {
    http()
        .post(server.url(&format!("/api/v2/barong/identity{path}")))
        .header("user-agent", AGENT)
        .json(&body)
        .send()
        .await
        .expect("identity")
}

async fn answer(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn sign_up(server: &TestServer, email: &str) -> User {
    let response = identity(
        server,
        "/users",
        json!({"email": email, "password": PASSWORD}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let cookie = support::set_session_cookie(&response).expect("cookie");
    let body: Value = response.json().await.expect("json");
    User {
        email: email.into(),
        cookie,
        csrf: body["csrf_token"].as_str().expect("csrf").into(),
        uid: body["uid"].as_str().expect("uid").into(),
    }
}

/// The bearer the authz listener mints for `method path` (a full `/api/v2/barong/...` path).
async fn bearer(server: &TestServer, user: &User, method: &str, path: &str) -> String {
    let response = http()
        .get(format!("{}/api/v2/auth{path}", server.authz))
        .header("x-original-method", method)
        .header("cookie", format!("_barong_session={}", user.cookie))
        .header("x-csrf-token", &user.csrf)
        .header("user-agent", AGENT)
        .send()
        .await
        .expect("authz");
    let status = response.status();
    if status != StatusCode::OK {
        let body = response.text().await.unwrap_or_default();
        panic!("authz {status} for {path}: {body}");
    }
    let value = response.headers()["authorization"].to_str().expect("ascii");
    value.strip_prefix("Bearer ").expect("bearer").to_owned()
}

/// `method path` on the REST listener with `token` as the bearer.
async fn with_bearer(
    server: &TestServer,
    method: Method,
    path: &str,
    token: &str,
    body: Value,
) -> u16 {
    let mut request = http()
        .request(method.clone(), server.url(path))
        .header("authorization", format!("Bearer {token}"))
        .header("user-agent", AGENT);
    if method != Method::GET {
        request = request.json(&body);
    }
    request.send().await.expect("call").status().as_u16()
}

/// Turns on 2FA for `user`; returns the TOTP secret and the last time step used.
async fn enable_otp(server: &TestServer, user: &User) -> (String, u64) {
    let path = "/api/v2/barong/resource/otp/generate_qrcode";
    let token = bearer(server, user, "POST", path).await;
    let response = http()
        .post(server.url(path))
        .header("authorization", format!("Bearer {token}"))
        .json(&json!({}))
        .send()
        .await
        .expect("qr");
    let body: Value = response.json().await.expect("json");
    let secret = body["data"]["url"]
        .as_str()
        .expect("url")
        .split("secret=")
        .nth(1)
        .and_then(|s| s.split('&').next())
        .expect("secret")
        .to_owned();
    let mut last = 0;
    let code = common::fresh_totp_code(&secret, &mut last).await;
    // With the session cookie: enabling 2FA revokes the user's other sessions.
    let path = "/api/v2/barong/resource/otp/enable";
    let token = bearer(server, user, "POST", path).await;
    let response = http()
        .post(server.url(path))
        .header("authorization", format!("Bearer {token}"))
        .header("cookie", format!("_barong_session={}", user.cookie))
        .header("user-agent", AGENT)
        .json(&json!({"code": code}))
        .send()
        .await
        .expect("enable");
    assert_eq!(response.status(), StatusCode::CREATED);
    (secret, last)
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// The `barong` signature of a multisig object in compact form: what an attacker would try to
/// present as a token.
fn compact_of_barong_signature(jws: &Value) -> String {
    let signature = jws["signatures"]
        .as_array()
        .expect("signatures")
        .iter()
        .find(|s| s["header"]["kid"] == "barong")
        .expect("barong signature");
    format!(
        "{}.{}.{}",
        signature["protected"].as_str().expect("protected"),
        jws["payload"].as_str().expect("payload"),
        signature["signature"].as_str().expect("signature")
    )
}

fn session_claims(admin: &User) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({
        "iat": now, "exp": now + 3600, "sub": "session", "iss": "barong",
        "aud": ["peatio", "barong"], "jti": "0123456789abcdef0123", "uid": admin.uid,
        "email": admin.email, "role": "superadmin", "level": 3, "state": "active",
    })
}

// ---- the two forgeries through otp/sign ----------------------------------------------------------

async fn otp_sign_forgeries_fail(backend: Backend) {
    let env = setup(backend, &[]).await;
    let server = &env.server;
    // The first user is an active superadmin; with 2FA on it can have payloads signed.
    let admin = sign_up(server, "admin@barong.test").await;
    let victim = sign_up(server, "victim@barong.test").await;
    let (secret, mut last) = enable_otp(server, &admin).await;
    let otp_sign = |payload: Value, code: String| {
        request(
            json!({
                "user_uid": admin.uid, "otp_code": code,
                "jwt": {"payload": b64(&payload), "signatures": []},
            }),
            &[&env.applogic],
        )
    };
    let api = &server.api;

    // A superadmin session payload, and Peatio's minimal session check.
    let now = chrono::Utc::now().timestamp();
    let reset = json!({
        "iat": now, "exp": now + 600, "sub": "reset", "iss": "barong",
        "aud": ["peatio", "barong"], "jti": "0123456789abcdef0123", "email": victim.email,
    });
    for payload in [
        session_claims(&admin),
        json!({"sub": "session", "exp": now + 600}),
        reset.clone(),
        json!({"sub": "reset", "email": victim.email}),
        json!({"sub": "confirmation", "email": victim.email}),
        json!({"iss": "barong", "event": {"name": "system.user.email.confirmation.token"}}),
    ] {
        let body = otp_sign(payload.clone(), "000000".into());
        let (status, body) = call(api, Method::POST, "/otp/sign", &body).await;
        assert_eq!(
            (status, body),
            (422, json!({ "error": RESERVED })),
            "{payload}"
        );
    }
    // Duplicate members and the standard base64 alphabet do not get past the check.
    let duplicate = r#"{"sub":"withdraw","sub":"session","uid":"x"}"#;
    let standard =
        base64::engine::general_purpose::STANDARD.encode(r#"{"sub":"session","x":"???"}"#);
    for payload in [URL_SAFE_NO_PAD.encode(duplicate), standard] {
        let body = request(
            json!({
                "user_uid": admin.uid, "otp_code": "000000",
                "jwt": {"payload": payload, "signatures": []},
            }),
            &[&env.applogic],
        );
        let (status, body) = call(api, Method::POST, "/otp/sign", &body).await;
        assert_eq!((status, body), (422, json!({ "error": RESERVED })));
    }

    // A payload Peatio's management API would take is still signed (201) ...
    let withdraw = json!({"iat": now, "exp": now + 60, "jti": "w1", "data": {"tid": "T1"}});
    let code = common::fresh_totp_code(&secret, &mut last).await;
    let (status, signed) = call(api, Method::POST, "/otp/sign", &otp_sign(withdraw, code)).await;
    assert_eq!(status, 201, "{signed}");
    // ... and its compact form is no token here: not a superadmin bearer, not a reset token.
    let forged = compact_of_barong_signature(&signed);
    assert_eq!(
        with_bearer(
            server,
            Method::GET,
            "/api/v2/barong/admin/users",
            &forged,
            json!({})
        )
        .await,
        401
    );
    let (status, body) = answer(
        identity(
            server,
            "/users/password/confirm_code",
            json!({"reset_password_token": forged, "password": "Zx9!new-Passw0rd", "confirm_password": "Zx9!new-Passw0rd"}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, body),
        (422, json!({"errors": ["jwt.decode_and_verify.raised"]}))
    );
    // The victim's password is unchanged.
    let (status, _) = answer(
        identity(
            server,
            "/sessions",
            json!({"email": victim.email, "password": PASSWORD}),
        )
        .await,
    )
    .await;
    assert_ne!(status, 401, "the victim's password still works");
    drop(env);
}

/// With a separate multisig key, `otp/sign` signs with it: its signature verifies with that
/// key's public half and with no key of the JWKS.
async fn separate_multisig_key(backend: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let key_path = dir.path().join("multisig.pem");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_barong"))
        .args(["keys", "generate", "--algorithm", "ES256", "--out"])
        .arg(&key_path)
        .status()
        .expect("keys generate");
    assert!(status.success());
    let env = setup(
        backend,
        &[
            (
                "BARONG_MULTISIG_PRIVATE_KEY_PATH",
                key_path.to_str().expect("path").into(),
            ),
            ("BARONG_MULTISIG_ALGORITHM", "ES256".into()),
        ],
    )
    .await;
    let server = &env.server;
    let admin = sign_up(server, "admin@barong.test").await;
    let (secret, mut last) = enable_otp(server, &admin).await;
    let code = common::fresh_totp_code(&secret, &mut last).await;
    let now = chrono::Utc::now().timestamp();
    let payload = json!({"iat": now, "exp": now + 60, "jti": "w1", "data": {}});
    let body = request(
        json!({
            "user_uid": admin.uid, "otp_code": code,
            "jwt": {"payload": b64(&payload), "signatures": []},
        }),
        &[&env.applogic],
    );
    let (status, signed) = call(&server.api, Method::POST, "/otp/sign", &body).await;
    assert_eq!(status, 201, "{signed}");
    let compact = compact_of_barong_signature(&signed);
    let header = jsonwebtoken::decode_header(&compact).expect("header");
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
    let pem = std::fs::read_to_string(&key_path).expect("key");
    let public = rcgen::KeyPair::from_pem(&pem)
        .expect("key pair")
        .public_key_pem();
    let key = jsonwebtoken::DecodingKey::from_ec_pem(public.as_bytes()).expect("public");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.validate_aud = false;
    jsonwebtoken::decode::<Value>(&compact, &key, &validation).expect("multisig key verifies");
    // The JWT key (RS256, in the JWKS) is another key.
    let jwks: Value = reqwest::get(format!("{}/.well-known/jwks.json", server.authz))
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    assert!(
        jwks["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .all(|k| k["kty"] == "RSA")
    );
}

// ---- each kind refused where another is expected -----------------------------------------------

async fn every_kind_is_refused_where_another_is_expected(backend: Backend) {
    let env = setup(backend, &[]).await;
    let server = &env.server;
    let admin = sign_up(server, "admin@barong.test").await;
    let (secret, mut last) = enable_otp(server, &admin).await;
    let pending = sign_up(server, "pending@barong.test").await;
    let confirmation = token_in(
        &env.sink
            .wait_for(&pending.email, "Registration Confirmation")
            .await
            .body,
        "confirmation_token",
    );
    let (status, _) = answer(
        identity(
            server,
            "/users/password/generate_code",
            json!({"email": pending.email}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201);
    let reset = token_in(
        &env.sink
            .wait_for(&pending.email, "Password Reset")
            .await
            .body,
        "reset_token",
    );
    let users = "/api/v2/barong/admin/users";
    let session = bearer(server, &admin, "GET", users).await;
    let now = chrono::Utc::now().timestamp();
    let payload = json!({"iat": now, "exp": now + 60, "jti": "w1", "data": {}});
    let code = common::fresh_totp_code(&secret, &mut last).await;
    let body = request(
        json!({
            "user_uid": admin.uid, "otp_code": code,
            "jwt": {"payload": b64(&payload), "signatures": []},
        }),
        &[&env.applogic],
    );
    let (status, signed) = call(&server.api, Method::POST, "/otp/sign", &body).await;
    assert_eq!(status, 201);
    let multisig = compact_of_barong_signature(&signed);

    let confirm = |token: &str| {
        let token = token.to_owned();
        async move {
            answer(identity(server, "/users/email/confirm_code", json!({"token": token})).await)
                .await
        }
    };
    let reset_with = |token: &str| {
        let token = token.to_owned();
        async move {
            answer(
                identity(
                    server,
                    "/users/password/confirm_code",
                    json!({"reset_password_token": token, "password": PASSWORD, "confirm_password": PASSWORD}),
                )
                .await,
            )
            .await
        }
    };
    let refused = |suffix: &str| {
        (
            422,
            json!({"errors": [format!("jwt.decode_and_verify.{suffix}")]}),
        )
    };

    // Where a session bearer is expected.
    for (kind, token) in [
        ("confirmation", &confirmation),
        ("reset", &reset),
        ("multisig", &multisig),
    ] {
        let status = with_bearer(server, Method::GET, users, token, json!({})).await;
        assert_eq!(status, 401, "{kind} as a session bearer");
    }
    // Where a confirmation token is expected.
    assert_eq!(confirm(&session).await, refused("session"));
    assert_eq!(confirm(&reset).await, refused("reset"));
    assert_eq!(confirm(&multisig).await, refused("raised"));
    // Where a reset token is expected.
    assert_eq!(reset_with(&session).await, refused("session"));
    assert_eq!(reset_with(&confirmation).await, refused("confirmation"));
    assert_eq!(reset_with(&multisig).await, refused("raised"));
    // Where a management request is expected: the session token re-wrapped as a multisig
    // object under a signer id of the keychain.
    let mut parts = session.split('.');
    let (protected, payload, signature) = (
        parts.next().expect("h"),
        parts.next().expect("p"),
        parts.next().expect("s"),
    );
    let wrapped = json!({
        "payload": payload,
        "signatures": [{"protected": protected, "header": {"kid": "applogic"}, "signature": signature}],
    });
    let (status, _) = call(&server.api, Method::POST, "/timestamp", &wrapped).await;
    assert_eq!(status, 401);

    // Each in its own place still works.
    assert_eq!(
        with_bearer(server, Method::GET, users, &session, json!({})).await,
        200
    );
    assert_eq!(reset_with(&reset).await.0, 201);
    assert_eq!(confirm(&confirmation).await.0, 201);
}

// ---- one-time tokens ---------------------------------------------------------------------------

/// Signs `claims` with the server's development key and the header it puts on its tokens: what
/// a token minted by the server without its one-time claim would look like.
fn insider_token(db: &TestDb, kid: &str, claims: &Value) -> String {
    let pem = std::fs::read(db.dir.path().join("jwt-rs256.pem")).expect("dev key");
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(&pem).expect("rsa key");
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &key).expect("sign")
}

async fn current_kid(server: &TestServer) -> String {
    let jwks: Value = reqwest::get(format!("{}/.well-known/jwks.json", server.authz))
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    jwks["keys"][0]["kid"].as_str().expect("kid").to_owned()
}

async fn one_time_tokens_are_used_once_with_their_claim(backend: Backend) {
    let env = setup(backend, &[]).await;
    let server = &env.server;
    let kid = current_kid(server).await;
    sign_up(server, "admin@barong.test").await;
    let user = sign_up(server, "user@barong.test").await;
    let first = token_in(
        &env.sink
            .wait_for(&user.email, "Registration Confirmation")
            .await
            .body,
        "confirmation_token",
    );
    let skip = env.sink.mails().len();
    let (status, _) = answer(
        identity(
            server,
            "/users/email/generate_code",
            json!({"email": user.email}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201);
    let second = token_in(
        &env.sink
            .wait_for_new(skip, &user.email, "Registration Confirmation")
            .await
            .body,
        "confirmation_token",
    );
    let utilized = (422, json!({"errors": ["identity.user.utilized_token"]}));
    let confirm = |token: String| async move {
        answer(identity(server, "/users/email/confirm_code", json!({"token": token})).await).await
    };
    // A confirmation token minted without its claim, and the older token: no match.
    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "iat": now, "exp": now + 600, "sub": "confirmation", "iss": "barong",
        "aud": ["peatio", "barong"], "jti": "0123456789abcdef0123",
        "email": user.email, "uid": user.uid,
    });
    assert_eq!(
        confirm(insider_token(&env.db, &kid, &claims)).await,
        utilized
    );
    assert_eq!(confirm(first).await, utilized);
    assert_eq!(confirm(second.clone()).await.0, 201);
    // Used: refused (the user is active now, which Barong answers first).
    assert_eq!(
        confirm(second).await,
        (
            422,
            json!({"errors": ["identity.user.active_or_doesnt_exist"]})
        )
    );

    // Reset: the older token, a token without its claim, then the latest one raced 20 times.
    let mut resets = Vec::new();
    for _ in 0..2 {
        let skip = env.sink.mails().len();
        let (status, _) = answer(
            identity(
                server,
                "/users/password/generate_code",
                json!({"email": user.email}),
            )
            .await,
        )
        .await;
        assert_eq!(status, 201);
        resets.push(token_in(
            &env.sink
                .wait_for_new(skip, &user.email, "Password Reset")
                .await
                .body,
            "reset_token",
        ));
    }
    let reset_with = |token: String| async move {
        answer(
            identity(
                server,
                "/users/password/confirm_code",
                json!({"reset_password_token": token, "password": PASSWORD, "confirm_password": PASSWORD}),
            )
            .await,
        )
        .await
    };
    assert_eq!(reset_with(resets[0].clone()).await, utilized);
    let mut claims = claims.clone();
    claims["sub"] = json!("reset");
    claims.as_object_mut().expect("object").remove("uid");
    assert_eq!(
        reset_with(insider_token(&env.db, &kid, &claims)).await,
        utilized
    );
    let latest = resets[1].clone();
    // Released together: the requests run concurrently on the server.
    let statuses: Vec<u16> =
        futures_util::future::join_all((0..20).map(|_| reset_with(latest.clone())))
            .await
            .into_iter()
            .map(|(status, _)| status)
            .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 422),
        "{statuses:?}"
    );
    assert_eq!(reset_with(latest).await, utilized);
}

// ---- bearer expiry ---------------------------------------------------------------------------------

async fn expired_bearer_is_refused_without_leeway(backend: Backend) {
    let env = setup(
        backend,
        &[
            ("BARONG_JWT_EXPIRE_TIME", "2".into()),
            ("BARONG_JWT_REUSE_TIME", "0".into()),
        ],
    )
    .await;
    let server = &env.server;
    let admin = sign_up(server, "admin@barong.test").await;
    let path = "/api/v2/barong/resource/users/me";
    let token = bearer(server, &admin, "GET", path).await;
    assert_eq!(
        with_bearer(server, Method::GET, path, &token, json!({})).await,
        200
    );
    let claims: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).expect("payload"))
            .expect("b64"),
    )
    .expect("claims");
    let exp = claims["exp"].as_i64().expect("exp");
    // Right at `exp` (the earliest second a leeway-free check refuses it).
    while chrono::Utc::now().timestamp() < exp {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        with_bearer(server, Method::GET, path, &token, json!({})).await,
        401
    );

    // A configured leeway is honoured, and nothing beyond it.
    let kid = current_kid(server).await;
    let uid = admin.uid.clone();
    drop(env.server);
    let mut extra = server_env(&env.sink, &env.yml);
    extra.push(("JWT_EXPIRATION_LEEWAY", "30".into()));
    let lenient = start(&env.db, &extra);
    let now = chrono::Utc::now().timestamp();
    let claims = |exp: i64| {
        json!({
            "iat": now - 100, "exp": exp, "sub": "session", "iss": "barong",
            "aud": ["peatio", "barong"], "jti": "0123456789abcdef0123", "uid": uid,
        })
    };
    let within = insider_token(&env.db, &kid, &claims(now - 10));
    assert_eq!(
        with_bearer(&lenient, Method::GET, path, &within, json!({})).await,
        200
    );
    let beyond = insider_token(&env.db, &kid, &claims(now - 31));
    assert_eq!(
        with_bearer(&lenient, Method::GET, path, &beyond, json!({})).await,
        401
    );
}

// ---- management requests: bounded lifetime, accepted once -------------------------------------

async fn management_requests_are_bounded_and_used_once(backend: Backend) {
    let env = setup(backend, &[("BARONG_MANAGEMENT_MAX_AGE", "120".into())]).await;
    let mut extra = server_env(&env.sink, &env.yml);
    extra.push(("BARONG_MANAGEMENT_MAX_AGE", "120".into()));
    let second = start(&env.db, &extra);
    let (a, b) = (&env.server.api, &second.api);
    let failed = json!({"error": "Failed to verify JWT."});
    let signer = &env.applogic;
    let jti = mgmt_support::jti;

    // Once, on either instance.
    let body = request(json!({}), &[signer]);
    assert_eq!(call(a, Method::POST, "/timestamp", &body).await.0, 200);
    assert_eq!(
        call(a, Method::POST, "/timestamp", &body).await,
        (401, failed.clone())
    );
    assert_eq!(
        call(b, Method::POST, "/timestamp", &body).await,
        (401, failed.clone())
    );
    // A burst of the same request on both instances: exactly one is served.
    let body = request(json!({}), &[signer]);
    let burst: Vec<_> = (0..40)
        .map(|i| {
            let api = if i % 2 == 0 { a.clone() } else { b.clone() };
            let body = body.clone();
            tokio::spawn(async move { call(&api, Method::POST, "/timestamp", &body).await.0 })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in burst {
        statuses.push(task.await.expect("task"));
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );

    // Without `exp`: accepted while `iat` is within the maximum age, refused after.
    let now = chrono::Utc::now().timestamp();
    let fresh = request_with_claims(
        json!({"iat": now - 60, "jti": jti(), "data": {}}),
        &[signer],
    );
    assert_eq!(call(a, Method::POST, "/timestamp", &fresh).await.0, 200);
    // Ten seconds past the 120 s window each way: the server reads its clock a moment after
    // `now` was taken, and on a loaded machine that moment can be a second or more.
    for claims in [
        json!({"iat": now - 130, "jti": jti(), "data": {}}),
        json!({"iat": now + 130, "jti": jti(), "data": {}}),
        json!({"jti": jti(), "data": {}}),
        json!({"iat": now, "exp": now + 60, "data": {}}),
        json!({"iat": now, "exp": now + 60, "jti": "", "data": {}}),
    ] {
        let body = request_with_claims(claims.clone(), &[signer]);
        assert_eq!(
            call(a, Method::POST, "/timestamp", &body).await,
            (401, failed.clone()),
            "{claims}"
        );
    }
}

both_backends!(
    otp_sign_forgeries_fail,
    separate_multisig_key,
    every_kind_is_refused_where_another_is_expected,
    one_time_tokens_are_used_once_with_their_claim,
    expired_bearer_is_refused_without_leeway,
    management_requests_are_bounded_and_used_once,
);
