//! The identity API over HTTP against the real server, on both backends: sign-up, sessions,
//! e-mail confirmation, password reset with mail read from a local SMTP server, the outbox
//! surviving an SMTP outage and a restart, captcha against fake providers, whitelink access,
//! and every error key of these endpoints.

use crate::{common, support};
use std::sync::Arc;
use std::time::Duration;

use barong::store::Store;
use common::{Backend, TestDb, TestServer};
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{SmtpSink, free_port, set_session_cookie, sql, token_in};

const UA: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36";
const PASSWORD: &str = "Tecohvi0";
/// 75 characters: within the policy's 8..80 and strong, but over bcrypt's 72 bytes.
const LONG_PASSWORD: &str =
    "Zq8#Lm2!Rt5$Wx9&Kp3*Nv7@Hb4^Jd6(Fs1)Gc0_Ty+Ue=Io-Pa;Sl:Dk<Fj>Gh?Qw.Er,Tu|Yv";

/// A plain HTTP client (cookies handled by hand, so tests can replay old ones).
struct Api {
    base: String,
    http: reqwest::Client,
}

/// One answer: status, JSON body, the session cookie it set and the raw `Set-Cookie`.
struct Answer {
    status: StatusCode,
    body: Value,
    cookie: Option<String>,
    set_cookie: Option<String>,
}

impl Api {
    fn new(server: &TestServer) -> Api {
        Api {
            base: server.url("/api/v2/barong/identity"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder, cookie: Option<&str>) -> Answer {
        let mut request = request.header("User-Agent", UA);
        if let Some(cookie) = cookie {
            request = request.header("Cookie", format!("_barong_session={cookie}"));
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let cookie = set_session_cookie(&response);
        let set_cookie = response
            .headers()
            .get(reqwest::header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = response.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer {
            status,
            body,
            cookie,
            set_cookie,
        }
    }

    async fn post(&self, path: &str, body: Value) -> Answer {
        self.post_with(path, body, None).await
    }

    async fn post_with(&self, path: &str, body: Value, cookie: Option<&str>) -> Answer {
        let request = self.http.post(format!("{}{path}", self.base)).json(&body);
        self.send(request, cookie).await
    }

    async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> Answer {
        let request = self.http.post(format!("{}{path}", self.base)).form(form);
        self.send(request, None).await
    }

    async fn get(&self, path: &str) -> Answer {
        let request = self.http.get(format!("{}{path}", self.base));
        self.send(request, None).await
    }

    async fn logout(&self, cookie: Option<&str>) -> Answer {
        let request = self.http.delete(format!("{}/sessions", self.base));
        self.send(request, cookie).await
    }

    async fn sign_up(&self, email: &str, extra: Value) -> Answer {
        let mut body = json!({ "email": email, "password": PASSWORD });
        if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
            b.extend(e);
        }
        self.post("/users", body).await
    }

    async fn login_with_captcha(&self, email: &str, captcha: Value) -> Answer {
        let body = json!({ "email": email, "password": PASSWORD, "captcha_response": captcha });
        self.post("/sessions", body).await
    }

    async fn login(&self, email: &str, password: &str) -> Answer {
        self.post("/sessions", json!({ "email": email, "password": password }))
            .await
    }
}

fn errors(keys: &[&str]) -> Value {
    json!({ "errors": keys })
}

#[track_caller]
fn expect(answer: &Answer, status: StatusCode, body: Value) {
    assert_eq!(
        (answer.status, &answer.body),
        (status, &body),
        "unexpected answer"
    );
}

async fn smtp_env(port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("BARONG_SMTP_HOST", "127.0.0.1".into()),
        ("BARONG_SMTP_PORT", port.to_string()),
        ("BARONG_DOMAIN", "https://barong.test".into()),
        ("BARONG_MAIL_RETRY_BACKOFF", "1".into()),
        ("BARONG_MAIL_RETRY_MAX_BACKOFF", "2".into()),
        ("BARONG_MAIL_POLL_INTERVAL", "200".into()),
    ]
}

fn start_server(db: &TestDb, env: &[(&'static str, String)]) -> TestServer {
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    TestServer::start(db.dir.path(), &db.url, &pairs)
}

// ---- the whole life of a user ----------------------------------------------------------------

async fn user_lifecycle(backend: Backend) {
    let db = TestDb::new(backend).await;
    let sink = SmtpSink::start(free_port(), &db.dir.path().join("mail"));
    let server = start_server(&db, &smtp_env(sink.port).await);
    let api = Api::new(&server);
    let store = db.open().await;

    // The first user on an empty database is an active superadmin, e-mail verified, no mail.
    let admin = api.sign_up("admin@barong.test", json!({})).await;
    assert_eq!(admin.status, StatusCode::CREATED, "{}", admin.body);
    assert_eq!(admin.body["role"], "superadmin");
    assert_eq!(admin.body["state"], "active");
    assert_eq!(admin.body["level"], 1);
    assert_eq!(admin.body["labels"][0]["key"], "email");
    assert_eq!(admin.body["labels"][0]["scope"], "private");

    // Sign-up: pending member, full info in Barong's field order, a session cookie.
    let email = "alice@barong.test";
    let signed = api
        .sign_up(
            email,
            json!({ "username": "Alice01", "data": "{\"language\":\"ru\"}",
                    "refid": admin.body["uid"] }),
        )
        .await;
    assert_eq!(signed.status, StatusCode::CREATED, "{}", signed.body);
    let keys: Vec<&str> = signed
        .body
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "email",
            "uid",
            "role",
            "level",
            "otp",
            "state",
            "referral_uid",
            "data",
            "csrf_token",
            "username",
            "labels",
            "phones",
            "profiles",
            "data_storages",
            "created_at",
            "updated_at"
        ]
    );
    let body = &signed.body;
    assert_eq!(body["role"], "member");
    assert_eq!(body["state"], "pending");
    assert_eq!(body["level"], 0);
    assert_eq!(body["username"], "alice01");
    assert_eq!(body["referral_uid"], admin.body["uid"]);
    assert_eq!(body["labels"], json!([]));
    let uid = body["uid"].as_str().expect("uid");
    assert!(uid.starts_with("ID") && uid.len() == 12, "{uid}");
    assert_eq!(body["csrf_token"].as_str().expect("csrf").len(), 20);
    let created_at = body["created_at"].as_str().expect("created_at");
    assert!(
        created_at.ends_with('Z') && created_at.len() == 20,
        "{created_at}"
    );
    let signup_cookie = signed.cookie.clone().expect("session cookie");
    assert_eq!(signup_cookie.len(), 32);
    let set_cookie = signed.set_cookie.clone().expect("set-cookie");
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"));
    assert!(set_cookie.contains("Path=/") && !set_cookie.contains("Secure"));

    // The confirmation mail, in Russian as `data.language` asks.
    let mail = sink.wait_for(email, "Подтверждение Регистрации").await;
    assert!(
        mail.body
            .contains("https://barong.test/accounts/confirmation?confirmation_token=")
    );
    assert!(mail.body.contains("lang=ru"));
    let token = token_in(&mail.body, "confirmation_token");

    // Confirming activates the user (label -> state and level) and opens a session.
    let confirmed = api
        .post_with(
            "/users/email/confirm_code",
            json!({ "token": token }),
            Some(&signup_cookie),
        )
        .await;
    assert_eq!(confirmed.status, StatusCode::CREATED, "{}", confirmed.body);
    assert_eq!(confirmed.body["state"], "active");
    assert_eq!(confirmed.body["level"], 1);
    assert_eq!(confirmed.body["labels"][0]["key"], "email");
    assert_eq!(confirmed.body["labels"][0]["value"], "verified");
    let session = confirmed.cookie.clone().expect("cookie");
    assert_ne!(
        session, signup_cookie,
        "a new session id, never the old one"
    );
    // The sign-up session was replaced (no fixation).
    expect(
        &api.logout(Some(&signup_cookie)).await,
        StatusCode::NOT_FOUND,
        errors(&["identity.session.not_found"]),
    );
    // Confirming again: the user is active now.
    expect(
        &api.post("/users/email/confirm_code", json!({ "token": token }))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        errors(&["identity.user.active_or_doesnt_exist"]),
    );

    // A session name after a `,` (an older Rack would read that one) is a second
    // session cookie: the request carries none, and the session stays.
    expect(
        &api.logout(Some(&format!("{session},_barong_session={signup_cookie}")))
            .await,
        StatusCode::NOT_FOUND,
        errors(&["identity.session.not_found"]),
    );

    // Log out, beside a cookie value outside ASCII in the same line; then the session is gone.
    let out = api
        .logout(Some(&format!("{session}; lang=fran\u{e7}ais")))
        .await;
    expect(&out, StatusCode::OK, json!(200));
    assert!(out.set_cookie.expect("cleared").contains("Max-Age=0"));
    expect(
        &api.logout(Some(&session)).await,
        StatusCode::NOT_FOUND,
        errors(&["identity.session.not_found"]),
    );
    expect(
        &api.logout(None).await,
        StatusCode::NOT_FOUND,
        errors(&["identity.session.not_found"]),
    );

    // Log in: wrong password refused, right one answers 200 with a CSRF token.
    expect(
        &api.login(email, "Wrong0ne").await,
        StatusCode::UNAUTHORIZED,
        errors(&["identity.session.invalid_params"]),
    );
    let login = api.login(email, PASSWORD).await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    assert_eq!(login.body["csrf_token"].as_str().expect("csrf").len(), 20);
    let old_session = login.cookie.clone().expect("cookie");
    let notice = sink.wait_for(email, "Новый Вход").await;
    assert!(notice.body.contains("127.0.0.1"));

    // Password reset: unknown e-mails get the same 201; only the latest token is valid.
    expect(
        &api.post(
            "/users/password/generate_code",
            json!({ "email": "nobody@barong.test" }),
        )
        .await,
        StatusCode::CREATED,
        json!(201),
    );
    expect(
        &api.post("/users/password/generate_code", json!({ "email": email }))
            .await,
        StatusCode::CREATED,
        json!(201),
    );
    let first = token_in(
        &sink.wait_for(email, "Сброс Пароля").await.body,
        "reset_token",
    );
    let before = sink.mails().len();
    expect(
        &api.post("/users/password/generate_code", json!({ "email": email }))
            .await,
        StatusCode::CREATED,
        json!(201),
    );
    let reset_token = loop {
        let mails = sink.mails();
        if mails.len() > before
            && let Some(m) = mails[before..].iter().find(|m| m.subject == "Сброс Пароля")
        {
            break token_in(&m.body, "reset_token");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_ne!(first, reset_token);
    let new_password = "Xwqe213PZCXwe";
    let reset = |token: &str, password: &str, confirm: &str| json!({ "reset_password_token": token, "password": password, "confirm_password": confirm });
    expect(
        &api.post(
            "/users/password/confirm_code",
            reset(&first, new_password, new_password),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        errors(&["identity.user.utilized_token"]),
    );
    expect(
        &api.post(
            "/users/password/confirm_code",
            reset(&reset_token, new_password, "Other123X"),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        errors(&["identity.user.passwords_doesnt_match"]),
    );
    expect(
        &api.post(
            "/users/password/confirm_code",
            reset(&reset_token, "Password1", "Password1"),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        errors(&["password.weak"]),
    );
    expect(
        &api.post(
            "/users/password/confirm_code",
            reset(&reset_token, "password", "password"),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        errors(&["password.requirements"]),
    );
    expect(
        &api.post(
            "/users/password/confirm_code",
            reset(&reset_token, new_password, new_password),
        )
        .await,
        StatusCode::CREATED,
        json!(201),
    );
    // The token is single use, and every session of the user was revoked.
    expect(
        &api.post(
            "/users/password/confirm_code",
            reset(&reset_token, new_password, new_password),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        errors(&["identity.user.utilized_token"]),
    );
    expect(
        &api.logout(Some(&old_session)).await,
        StatusCode::NOT_FOUND,
        errors(&["identity.session.not_found"]),
    );
    assert!(
        store
            .find_session(&barong::domain::session_key(&old_session))
            .await
            .expect("find")
            .is_none()
    );
    expect(
        &api.login(email, PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        errors(&["identity.session.invalid_params"]),
    );
    let again = api.login(email, new_password).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);

    // The activities Barong writes, with ip, agent and result.
    let user = store
        .find_user_by_email(email)
        .await
        .expect("find")
        .expect("user");
    let activities = store
        .list_user_activities(user.id)
        .await
        .expect("activities");
    let seen: Vec<(String, String, String)> = activities
        .iter()
        .rev()
        .map(|a| (a.topic.clone(), a.action.clone(), a.result.clone()))
        .collect();
    let expected = [
        ("account", "signup", "succeed"),
        ("session", "logout", "succeed"),
        ("session", "login", "failed"),
        ("session", "login", "succeed"),
        ("password", "request password reset", "succeed"),
        ("password", "request password reset", "succeed"),
        ("password", "password reset", "failed"),
        ("password", "password reset", "failed"),
        ("password", "password reset", "succeed"),
        ("session", "login", "failed"),
        ("session", "login", "succeed"),
    ];
    let expected: Vec<(String, String, String)> = expected
        .iter()
        .map(|(t, a, r)| ((*t).into(), (*a).into(), (*r).into()))
        .collect();
    assert_eq!(seen, expected);
    assert!(
        activities
            .iter()
            .all(|a| a.user_ip == "127.0.0.1" && a.user_agent == UA)
    );
    let failed = activities
        .iter()
        .find(|a| a.action == "login" && a.result == "failed")
        .expect("failed login");
    assert_eq!(
        failed.data.as_deref(),
        Some(r#"{"reason":"Invalid Email or Password"}"#)
    );
    drop(sink);
}

// ---- mail: SMTP down at sign-up, server restarted, delivered once ------------------------------

async fn mail_survives_smtp_outage_and_restart(backend: Backend) {
    let db = TestDb::new(backend).await;
    let port = free_port();
    let env = smtp_env(port).await;
    let server = start_server(&db, &env);
    let api = Api::new(&server);
    // The first user is the superadmin (no mail); the second gets a confirmation mail.
    assert_eq!(
        api.sign_up("first@barong.test", json!({})).await.status,
        StatusCode::CREATED
    );
    let signed = api.sign_up("late@barong.test", json!({})).await;
    assert_eq!(signed.status, StatusCode::CREATED);
    let store: Arc<dyn Store> = db.open().await;
    // Wait for at least one failed attempt (nothing listens on the port).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let logs = server.log_text();
        if logs.contains("mail delivery failed") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no failed attempt: {logs}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(store.count_unsent_mails().await.expect("count"), 1);
    let status = server.terminate();
    assert!(status.success(), "{status:?}");

    // The mail server comes back, then barong: the queued mail is delivered, once.
    let sink = SmtpSink::start(port, &db.dir.path().join("mail"));
    let server = start_server(&db, &env);
    let mail = sink
        .wait_for("late@barong.test", "Registration Confirmation")
        .await;
    assert!(mail.body.contains("lang=en"));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while store.count_unsent_mails().await.expect("count") != 0 {
        assert!(std::time::Instant::now() < deadline, "mail not marked sent");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(sink.mails().len(), 1, "exactly one delivery");
    // The token in it still confirms the account.
    let token = token_in(&mail.body, "confirmation_token");
    let api = Api::new(&server);
    let confirmed = api
        .post("/users/email/confirm_code", json!({ "token": token }))
        .await;
    assert_eq!(confirmed.status, StatusCode::CREATED, "{}", confirmed.body);
    assert_eq!(confirmed.body["state"], "active");
}

// ---- bad input: every parameter and model key -------------------------------------------------

#[test]
fn long_password_is_only_too_long() {
    assert_eq!(LONG_PASSWORD.len(), 75);
    let policy = barong::domain::password::PasswordPolicy::barong_default();
    assert_eq!(policy.check(LONG_PASSWORD), Ok(()));
}

async fn bad_input_answers_barong_keys(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = start_server(&db, &[]);
    let api = Api::new(&server);
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    // The first user (superadmin) exists, so the rest are ordinary sign-ups.
    let first = api
        .sign_up("root@barong.test", json!({ "username": "taken1" }))
        .await;
    assert_eq!(first.status, StatusCode::CREATED);

    // Parameter validation (missing, empty, wrong type), sign-up.
    expect(
        &api.post("/users", json!({})).await,
        unprocessable,
        errors(&[
            "identity.user.missing_email",
            "identity.user.empty_email",
            "identity.user.missing_password",
            "identity.user.empty_password",
        ]),
    );
    expect(
        &api.post("/users", json!({ "email": "  ", "password": "" }))
            .await,
        unprocessable,
        errors(&["identity.user.empty_email", "identity.user.empty_password"]),
    );
    expect(
        &api.post("/users", json!({ "email": {"a": 1}, "password": PASSWORD }))
            .await,
        unprocessable,
        errors(&["invalid"]),
    );
    expect(
        &api.sign_up("x@barong.test", json!({ "username": ["a"] }))
            .await,
        unprocessable,
        errors(&["invalid"]),
    );
    expect(
        &api.sign_up("x@barong.test", json!({ "captcha_response": [1] }))
            .await,
        unprocessable,
        errors(&["invalid"]),
    );
    let form = api
        .post_form("/users", &[("email", "form@barong.test")])
        .await;
    expect(
        &form,
        unprocessable,
        errors(&[
            "identity.user.missing_password",
            "identity.user.empty_password",
        ]),
    );

    // Model validation, in Barong's order.
    let model = |keys: &[&str]| errors(keys);
    let cases: Vec<(Value, Value)> = vec![
        (
            json!({ "email": "bad", "password": "Password1" }),
            model(&["email.invalid", "password.weak"]),
        ),
        (
            json!({ "email": "a@barong.test", "password": "password" }),
            model(&["password.requirements"]),
        ),
        (
            json!({ "email": "a@barong.test", "password": LONG_PASSWORD }),
            model(&["password.too_long"]),
        ),
        (
            json!({ "email": "a@barong.test", "password": PASSWORD, "username": "abc" }),
            model(&["username.too_short"]),
        ),
        (
            json!({ "email": "a@barong.test", "password": PASSWORD, "username": "abcdefghijklm" }),
            model(&["username.too_long"]),
        ),
        (
            json!({ "email": "a@barong.test", "password": PASSWORD, "username": "" }),
            model(&["username.too_short", "username.invalid"]),
        ),
        (
            json!({ "email": "a@barong.test", "password": PASSWORD, "username": "ab_cd" }),
            model(&["username.invalid"]),
        ),
        (
            json!({ "email": "a@barong.test", "password": PASSWORD, "username": "TAKEN1" }),
            model(&["username.taken"]),
        ),
        (
            json!({ "email": "a@barong.test", "password": PASSWORD, "data": "not json" }),
            model(&["data.invalid_format"]),
        ),
        (
            json!({ "email": "a@barong.test", "password": PASSWORD, "data": "[1,2]" }),
            model(&["data.invalid_format"]),
        ),
        (
            json!({ "email": "a@barong.test", "password": PASSWORD,
                    "data": format!("{{\"k\":\"{}\"}}", "v".repeat(1100)) }),
            model(&["data.too_long"]),
        ),
        (
            json!({ "email": "root@barong.test", "password": PASSWORD }),
            model(&["email.taken"]),
        ),
        (
            json!({ "email": "ROOT@barong.test", "password": PASSWORD }),
            model(&["email.taken"]),
        ),
        (
            json!({ "email": format!("{}@barong.test", "a".repeat(300)), "password": PASSWORD }),
            model(&["email.invalid"]),
        ),
        (
            json!({ "email": format!("a@{}.com", "b".repeat(100_000)), "password": PASSWORD }),
            model(&["email.invalid"]),
        ),
        (
            json!({ "email": "x@barong.test\r\nBcc: victim@evil.test", "password": PASSWORD }),
            model(&["email.invalid"]),
        ),
        (
            json!({ "email": "x'; DROP TABLE users;--@barong.test", "password": PASSWORD }),
            model(&["email.invalid"]),
        ),
        (
            json!({ "email": "a@barong.test", "password": PASSWORD, "refid": "XX0000000000" }),
            model(&["identity.user.invalid_referral_format"]),
        ),
        (
            json!({ "email": "a@barong.test", "password": PASSWORD, "refid": "ID0000000000" }),
            model(&["identity.user.referral_doesnt_exist"]),
        ),
    ];
    for (body, expected) in cases {
        let answer = api.post("/users", body.clone()).await;
        assert_eq!(
            (answer.status, &answer.body),
            (unprocessable, &expected),
            "sign-up with {}",
            body.to_string().chars().take(200).collect::<String>()
        );
    }
    // SQL text in a username or password is data, nothing more.
    let sneaky = api
        .sign_up(
            "o'brien+sql@barong.test",
            json!({ "data": "{\"q\":\"' OR 1=1 --\"}" }),
        )
        .await;
    assert_eq!(sneaky.status, StatusCode::CREATED, "{}", sneaky.body);
    assert_eq!(sneaky.body["data"], "{\"q\":\"' OR 1=1 --\"}");
    // A blank `data` is no data.
    let blank = api
        .sign_up("blank-data@barong.test", json!({ "data": "" }))
        .await;
    assert_eq!(blank.status, StatusCode::CREATED, "{}", blank.body);
    assert_eq!(blank.body["data"], Value::Null);
    // Surrounding whitespace is not part of the address.
    let spaced = api.sign_up("  spaced@barong.test ", json!({})).await;
    assert_eq!(spaced.status, StatusCode::CREATED, "{}", spaced.body);
    assert_eq!(spaced.body["email"], "spaced@barong.test");
    expect(
        &api.sign_up("spaced@barong.test", json!({})).await,
        unprocessable,
        errors(&["email.taken"]),
    );
    // Unicode addresses are accepted and kept as given.
    let unicode = api.sign_up("юзер@пример.рф", json!({})).await;
    assert_eq!(unicode.status, StatusCode::CREATED, "{}", unicode.body);
    assert_eq!(unicode.body["email"], "юзер@пример.рф");

    // Sessions: missing params (no "empty" variants), captcha format.
    expect(
        &api.post("/sessions", json!({})).await,
        unprocessable,
        errors(&[
            "identity.session.missing_email",
            "identity.session.missing_password",
        ]),
    );
    expect(
        &api.post(
            "/sessions",
            json!({ "email": "a@b.c", "password": "x", "captcha_response": [1] }),
        )
        .await,
        unprocessable,
        errors(&["identity.session.invalid_captcha_format"]),
    );
    expect(
        &api.post(
            "/sessions",
            json!({ "email": "' OR '1'='1", "password": "' OR '1'='1" }),
        )
        .await,
        StatusCode::UNAUTHORIZED,
        errors(&["identity.session.invalid_params"]),
    );

    // E-mail and password codes.
    for path in [
        "/users/email/generate_code",
        "/users/password/generate_code",
    ] {
        expect(
            &api.post(path, json!({})).await,
            unprocessable,
            errors(&["identity.user.missing_email", "identity.user.empty_email"]),
        );
        expect(
            &api.post(path, json!({ "email": "" })).await,
            unprocessable,
            errors(&["identity.user.empty_email"]),
        );
        expect(
            &api.post(path, json!({ "email": "nobody@barong.test" }))
                .await,
            StatusCode::CREATED,
            json!(201),
        );
    }
    expect(
        &api.post("/users/email/confirm_code", json!({})).await,
        unprocessable,
        errors(&["identity.user.missing_token", "identity.user.empty_token"]),
    );
    expect(
        &api.post("/users/email/confirm_code", json!({ "token": " " }))
            .await,
        unprocessable,
        errors(&["identity.user.empty_token"]),
    );
    expect(
        &api.post("/users/password/confirm_code", json!({})).await,
        unprocessable,
        errors(&[
            "identity.user.missing_pass_token",
            "identity.user.empty_reset_password_token",
            "identity.user.missing_password",
            "identity.user.empty_password",
            "identity.user.missing_confirm_password",
            "identity.user.empty_confirm_password",
        ]),
    );
    expect(
        &api.post("/users/access", json!({})).await,
        unprocessable,
        errors(&[
            "identity.user.missing_whitelink_token",
            "identity.user.empty_whitelink_token",
        ]),
    );

    // Tokens that do not verify, with Barong's suffixes.
    let confirm = |token: &str| json!({ "token": token });
    expect(
        &api.post("/users/email/confirm_code", confirm("abc")).await,
        unprocessable,
        errors(&["jwt.decode_and_verify.segments"]),
    );
    expect(
        &api.post("/users/email/confirm_code", confirm("a.b.c"))
            .await,
        unprocessable,
        errors(&["jwt.decode_and_verify.encoding"]),
    );
    let reset = |token: &str| json!({ "reset_password_token": token, "password": PASSWORD, "confirm_password": PASSWORD });
    expect(
        &api.post("/users/password/confirm_code", reset("x.y")).await,
        unprocessable,
        errors(&["jwt.decode_and_verify.segments"]),
    );

    // Barong's own mount point serves the same endpoints.
    let own = api
        .http
        .post(server.url("/api/v2/identity/users"))
        .json(&json!({}));
    expect(
        &api.send(own, None).await,
        unprocessable,
        errors(&[
            "identity.user.missing_email",
            "identity.user.empty_email",
            "identity.user.missing_password",
            "identity.user.empty_password",
        ]),
    );
    // Unknown routes and methods keep Barong's 404.
    let get_sessions = api.get("/sessions").await;
    expect(
        &get_sessions,
        StatusCode::NOT_FOUND,
        json!({ "error": "Route is not found" }),
    );
}

// ---- login: states, bcrypt, 2FA, token misuse ----------------------------------------------------

async fn login_states_bcrypt_and_tokens(backend: Backend) {
    let db = TestDb::new(backend).await;
    let sink = SmtpSink::start(free_port(), &db.dir.path().join("mail"));
    let mut env = smtp_env(sink.port).await;
    env.push(("BARONG_FIRST_REGISTRATION_SUPERADMIN", "false".into()));
    let server = start_server(&db, &env);
    let api = Api::new(&server);
    let store = db.open().await;

    for email in [
        "banned@barong.test",
        "deleted@barong.test",
        "locked@barong.test",
        "otp@barong.test",
    ] {
        assert_eq!(
            api.sign_up(email, json!({})).await.status,
            StatusCode::CREATED
        );
    }
    // First registration superadmin is off: the first user is a pending member.
    let pending = store
        .find_user_by_email("banned@barong.test")
        .await
        .expect("find")
        .expect("user");
    assert_eq!(
        (pending.role.as_str(), pending.state.as_str()),
        ("member", "pending")
    );
    sql(
        &db,
        "UPDATE users SET state = 'banned' WHERE email = 'banned@barong.test';
         UPDATE users SET state = 'deleted' WHERE email = 'deleted@barong.test';
         UPDATE users SET state = 'locked' WHERE email = 'locked@barong.test';
         UPDATE users SET otp = TRUE WHERE email = 'otp@barong.test';",
    )
    .await;
    // State is checked before the password.
    for (email, key) in [
        ("banned@barong.test", "identity.session.banned"),
        ("deleted@barong.test", "identity.session.deleted"),
        ("locked@barong.test", "identity.session.not_active"),
    ] {
        expect(
            &api.login(email, "wrong").await,
            StatusCode::UNAUTHORIZED,
            errors(&[key]),
        );
    }
    let banned = store
        .find_user_by_email("banned@barong.test")
        .await
        .expect("f")
        .expect("u");
    let activity = &store.list_user_activities(banned.id).await.expect("a")[0];
    assert_eq!(
        (
            activity.action.as_str(),
            activity.result.as_str(),
            activity.data.as_deref()
        ),
        (
            "login",
            "failed",
            Some(r#"{"reason":"Your account is banned"}"#)
        )
    );
    expect(
        &api.login("otp@barong.test", PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        errors(&["identity.session.missing_otp"]),
    );
    let with_code = api
        .post(
            "/sessions",
            json!({ "email": "otp@barong.test", "password": PASSWORD, "otp_code": "123456" }),
        )
        .await;
    expect(
        &with_code,
        StatusCode::FORBIDDEN,
        errors(&["identity.session.invalid_otp"]),
    );

    // A user imported from Barong with a bcrypt digest signs in and is rehashed to argon2id.
    let digest = bcrypt::hash("Kal31ewwqXrew", 4).expect("bcrypt");
    sql(
        &db,
        &format!(
            "INSERT INTO users (uid, email, password_digest, role, state, level)
             VALUES ('IDBC00000001', 'imported@barong.test', '{digest}', 'member', 'active', 1)"
        ),
    )
    .await;
    let imported = api.login("imported@barong.test", "Kal31ewwqXrew").await;
    assert_eq!(imported.status, StatusCode::OK, "{}", imported.body);
    let rehashed = store
        .find_user_by_email("imported@barong.test")
        .await
        .expect("find")
        .expect("user");
    assert!(rehashed.password_digest.starts_with("$argon2id$"));
    assert_eq!(
        api.login("imported@barong.test", "Kal31ewwqXrew")
            .await
            .status,
        StatusCode::OK
    );

    // A reset token is not a confirmation token, and vice versa.
    expect(
        &api.post(
            "/users/password/generate_code",
            json!({ "email": "locked@barong.test" }),
        )
        .await,
        StatusCode::CREATED,
        json!(201),
    );
    let reset_token = token_in(
        &sink
            .wait_for("locked@barong.test", "Password Reset")
            .await
            .body,
        "reset_token",
    );
    expect(
        &api.post("/users/email/confirm_code", json!({ "token": reset_token }))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        errors(&["jwt.decode_and_verify.reset"]),
    );
    let confirm_token = token_in(
        &sink
            .wait_for("otp@barong.test", "Registration Confirmation")
            .await
            .body,
        "confirmation_token",
    );
    expect(
        &api.post(
            "/users/password/confirm_code",
            json!({ "reset_password_token": confirm_token, "password": PASSWORD, "confirm_password": PASSWORD }),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        errors(&["jwt.decode_and_verify.confirmation"]),
    );
    // A confirmation token is single use even when the user is pending again.
    let confirmed = api
        .post(
            "/users/email/confirm_code",
            json!({ "token": confirm_token }),
        )
        .await;
    assert_eq!(confirmed.status, StatusCode::CREATED, "{}", confirmed.body);
    sql(
        &db,
        "UPDATE users SET state = 'pending' WHERE email = 'otp@barong.test'",
    )
    .await;
    expect(
        &api.post(
            "/users/email/confirm_code",
            json!({ "token": confirm_token }),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        errors(&["identity.user.utilized_token"]),
    );
    // Re-sending the confirmation for a pending user mails a new token; an active user gets none.
    let before = sink.mails().len();
    expect(
        &api.post(
            "/users/email/generate_code",
            json!({ "email": "deleted@barong.test" }),
        )
        .await,
        StatusCode::CREATED,
        json!(201),
    );
    let fresh = sink
        .wait_for_new(before, "deleted@barong.test", "Registration Confirmation")
        .await;
    let fresh_token = token_in(&fresh.body, "confirmation_token");
    expect(
        &api.post(
            "/users/email/generate_code",
            json!({ "email": "imported@barong.test" }),
        )
        .await,
        StatusCode::CREATED,
        json!(201),
    );
    // A signature that does not match the token's contents.
    let parts: Vec<&str> = fresh_token.split('.').collect();
    let other_signature = reset_token.rsplit('.').next().expect("signature");
    let forged = format!("{}.{}.{other_signature}", parts[0], parts[1]);
    expect(
        &api.post("/users/email/confirm_code", json!({ "token": forged }))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        errors(&["jwt.decode_and_verify.raised"]),
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !sink
            .mails()
            .iter()
            .any(|m| m.to.iter().any(|t| t == "imported@barong.test")
                && m.subject == "Registration Confirmation"),
        "no confirmation mail for an active user"
    );
}

// ---- the same e-mail raced from two connections ----------------------------------------------

async fn duplicate_sign_up_race(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = start_server(&db, &[]);
    let (a, b) = (Api::new(&server), Api::new(&server));
    for round in 0..4 {
        let email = format!("race{round}@barong.test");
        let (x, y) = tokio::join!(a.sign_up(&email, json!({})), b.sign_up(&email, json!({})));
        let mut statuses = [x.status, y.status];
        statuses.sort();
        assert_eq!(
            statuses,
            [StatusCode::CREATED, StatusCode::UNPROCESSABLE_ENTITY],
            "{} / {}",
            x.body,
            y.body
        );
        let loser = if x.status == StatusCode::CREATED {
            &y
        } else {
            &x
        };
        assert_eq!(loser.body, errors(&["email.taken"]));
    }
    let store = db.open().await;
    assert_eq!(store.count_users().await.expect("count"), 4);
}

// ---- captcha -------------------------------------------------------------------------------

async fn recaptcha_is_verified_with_the_provider(backend: Backend) {
    let db = TestDb::new(backend).await;
    let fake = support::start_captcha_fake().await;
    let server = start_server(
        &db,
        &[
            ("BARONG_CAPTCHA", "recaptcha".into()),
            (
                "BARONG_RECAPTCHA_SECRET_KEY",
                support::RECAPTCHA_SECRET.into(),
            ),
            (
                "BARONG_RECAPTCHA_VERIFY_URL",
                format!("{fake}/recaptcha/api/siteverify"),
            ),
        ],
    );
    let api = Api::new(&server);
    expect(
        &api.sign_up("c@barong.test", json!({})).await,
        StatusCode::BAD_REQUEST,
        errors(&["identity.captcha.required"]),
    );
    expect(
        &api.sign_up("c@barong.test", json!({ "captcha_response": "  " }))
            .await,
        StatusCode::BAD_REQUEST,
        errors(&["identity.captcha.required"]),
    );
    expect(
        &api.sign_up("c@barong.test", json!({ "captcha_response": "bad" }))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        errors(&["identity.captcha.verification_failed"]),
    );
    let ok = api
        .sign_up(
            "c@barong.test",
            json!({ "captcha_response": support::RECAPTCHA_GOOD }),
        )
        .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
    for path in [
        "/sessions",
        "/users/password/generate_code",
        "/users/email/generate_code",
    ] {
        let body = json!({ "email": "c@barong.test", "password": PASSWORD });
        expect(
            &api.post(path, body.clone()).await,
            StatusCode::BAD_REQUEST,
            errors(&["identity.captcha.required"]),
        );
        let mut good = body.clone();
        good["captcha_response"] = json!(support::RECAPTCHA_GOOD);
        let answer = api.post(path, good).await;
        assert!(answer.status.is_success(), "{path}: {}", answer.body);
    }
    // The provider unreachable: verification fails, never passes.
    drop(server);
    let server = start_server(
        &db,
        &[
            ("BARONG_CAPTCHA", "recaptcha".into()),
            (
                "BARONG_RECAPTCHA_VERIFY_URL",
                format!("http://127.0.0.1:{}/x", free_port()),
            ),
        ],
    );
    expect(
        &Api::new(&server)
            .login_with_captcha("c@barong.test", json!(support::RECAPTCHA_GOOD))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        errors(&["identity.captcha.verification_failed"]),
    );
}

async fn geetest_is_verified_with_the_provider(backend: Backend) {
    let db = TestDb::new(backend).await;
    let fake = support::start_captcha_fake().await;
    let key = "geetest-key";
    let server = start_server(
        &db,
        &[
            ("BARONG_CAPTCHA", "geetest".into()),
            ("BARONG_GEETEST_ID", "gt-id".into()),
            ("BARONG_GEETEST_KEY", key.into()),
            ("BARONG_GEETEST_API_URL", format!("{fake}/geetest")),
        ],
    );
    let api = Api::new(&server);
    let registered = api.get("/users/register_geetest").await;
    expect(
        &registered,
        StatusCode::OK,
        json!({ "gt": "gt-id", "challenge": support::md5_hex(&format!("{}{key}", support::GEETEST_CHALLENGE)) }),
    );
    let challenge = "challenge-1";
    let validate = support::md5_hex(&format!("{key}geetest{challenge}"));
    expect(
        &api.sign_up("g@barong.test", json!({})).await,
        StatusCode::BAD_REQUEST,
        errors(&["identity.captcha.required"]),
    );
    expect(
        &api.sign_up(
            "g@barong.test",
            json!({ "captcha_response": "just-a-string" }),
        )
        .await,
        StatusCode::BAD_REQUEST,
        errors(&["identity.captcha.mandatory_fields"]),
    );
    expect(
        &api.sign_up(
            "g@barong.test",
            json!({ "captcha_response": { "geetest_challenge": challenge } }),
        )
        .await,
        StatusCode::BAD_REQUEST,
        errors(&["identity.captcha.mandatory_fields"]),
    );
    let response = |validate: &str, seccode: &str| json!({ "geetest_challenge": challenge, "geetest_validate": validate, "geetest_seccode": seccode });
    expect(
        &api.sign_up(
            "g@barong.test",
            json!({ "captcha_response": response("wrong", "good-1") }),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        errors(&["identity.captcha.verification_failed"]),
    );
    expect(
        &api.sign_up(
            "g@barong.test",
            json!({ "captcha_response": response(&validate, "bad-1") }),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        errors(&["identity.captcha.verification_failed"]),
    );
    let ok = api
        .sign_up(
            "g@barong.test",
            json!({ "captcha_response": response(&validate, "good-1") }),
        )
        .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
    // Form-encoded, as the frontends send it: captcha_response[geetest_challenge]=...
    let form = api
        .post_form(
            "/sessions",
            &[
                ("email", "g@barong.test"),
                ("password", PASSWORD),
                ("captcha_response[geetest_challenge]", challenge),
                ("captcha_response[geetest_validate]", &validate),
                ("captcha_response[geetest_seccode]", "good-2"),
            ],
        )
        .await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    // The provider down: register_geetest answers "".
    drop(server);
    let server = start_server(
        &db,
        &[
            ("BARONG_CAPTCHA", "geetest".into()),
            (
                "BARONG_GEETEST_API_URL",
                format!("http://127.0.0.1:{}", free_port()),
            ),
        ],
    );
    expect(
        &Api::new(&server).get("/users/register_geetest").await,
        StatusCode::OK,
        json!(""),
    );
}

// ---- whitelink access ------------------------------------------------------------------------

async fn whitelink_access(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = start_server(&db, &[]);
    let api = Api::new(&server);
    let store = db.open().await;
    let now = chrono::Utc::now().timestamp();
    store
        .create_whitelink_token("good-link", now + 600)
        .await
        .expect("token");
    store
        .create_whitelink_token("old-link", now - 1)
        .await
        .expect("token");
    expect(
        &api.post("/users/access", json!({ "whitelink_token": "unknown" }))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        errors(&["identity.user.access.invalid_token"]),
    );
    expect(
        &api.post("/users/access", json!({ "whitelink_token": "old-link" }))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        errors(&["identity.user.access.invalid_token"]),
    );
    let from = |ip: &str| {
        api.http
            .post(format!("{}/users/access", api.base))
            .header("X-Forwarded-For", ip.to_owned())
            .json(&json!({ "whitelink_token": "good-link" }))
    };
    expect(
        &api.send(from("203.0.113.7"), None).await,
        StatusCode::CREATED,
        json!(201),
    );
    // The token is reusable; the same IP again is taken; IPv6 is refused as Barong does.
    expect(
        &api.send(from("203.0.113.7"), None).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        errors(&["value.taken"]),
    );
    expect(
        &api.send(from("2001:db8::7"), None).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        errors(&["value.invalid"]),
    );
    expect(
        &api.send(from("198.51.100.1"), None).await,
        StatusCode::CREATED,
        json!(201),
    );
    let restrictions = store.list_restrictions().await.expect("list");
    let whitelisted: Vec<&str> = restrictions
        .iter()
        .filter(|r| r.category == "whitelist" && r.scope == "ip")
        .map(|r| r.value.as_str())
        .collect();
    assert_eq!(whitelisted, ["203.0.113.7", "198.51.100.1"]);
}

// ---- tokens signed with the server's key but wrong in one claim --------------------------------

/// Signs `claims` with the development key the server generated into its data directory,
/// with the header the server puts on its tokens (its `kid`, `typ: JWT`).
fn sign_with_server_key(db: &TestDb, kid: &str, claims: &Value) -> String {
    let pem = std::fs::read(db.dir.path().join("jwt-rs256.pem")).expect("dev key");
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(&pem).expect("rsa key");
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &key).expect("sign")
}

/// The `kid` of the server's current key, from its JWKS.
async fn server_kid(server: &TestServer) -> String {
    let jwks: Value = reqwest::get(format!("{}/.well-known/jwks.json", server.authz))
        .await
        .expect("jwks")
        .json()
        .await
        .expect("jwks json");
    jwks["keys"][0]["kid"].as_str().expect("kid").to_owned()
}

async fn crafted_tokens_answer_barong_suffixes(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = start_server(&db, &[]);
    let api = Api::new(&server);
    let kid = server_kid(&server).await;
    let now = chrono::Utc::now().timestamp();
    let base = json!({
        "iat": now, "exp": now + 600, "sub": "confirmation", "iss": "barong",
        "aud": ["peatio", "barong"], "jti": "0123456789abcdef0123",
        "email": "nobody@barong.test", "uid": "ID0000000000",
    });
    let with = |name: &str, value: Value| {
        let mut claims = base.clone();
        if value.is_null() {
            claims.as_object_mut().expect("object").remove(name);
        } else {
            claims[name] = value;
        }
        claims
    };
    let cases = [
        (
            with("nbf", json!(now + 600)),
            "jwt.decode_and_verify.reached",
        ),
        (
            with("iss", json!("someone")),
            "jwt.decode_and_verify.someone",
        ),
        (with("iss", Value::Null), "jwt.decode_and_verify.<none>"),
        (with("iat", json!(now + 600)), "jwt.decode_and_verify.iat"),
        (with("jti", Value::Null), "jwt.decode_and_verify.jti"),
        (
            with("aud", json!(["applogic"])),
            "jwt.decode_and_verify.[\"applogic\"]",
        ),
        (
            with("aud", json!(["a", "b"])),
            "jwt.decode_and_verify.\"b\"]",
        ),
        (
            with("aud", json!("applogic")),
            "jwt.decode_and_verify.applogic",
        ),
        (with("aud", Value::Null), "jwt.decode_and_verify.<none>"),
        (with("exp", json!(now - 1)), "jwt.decode_and_verify.expired"),
        // exp is checked before iss.
        (
            with("exp", json!(now - 1))
                .as_object()
                .map(|o| {
                    let mut o = o.clone();
                    o.insert("iss".into(), json!("x"));
                    Value::Object(o)
                })
                .expect("claims"),
            "jwt.decode_and_verify.expired",
        ),
        (base.clone(), "identity.user.active_or_doesnt_exist"),
    ];
    for (claims, key) in cases {
        let token = sign_with_server_key(&db, &kid, &claims);
        expect(
            &api.post("/users/email/confirm_code", json!({ "token": token }))
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            errors(&[key]),
        );
    }
    // Another algorithm than the server's.
    let hs = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &base,
        &jsonwebtoken::EncodingKey::from_secret(b"secret"),
    )
    .expect("hs256");
    expect(
        &api.post("/users/email/confirm_code", json!({ "token": hs }))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        errors(&["jwt.decode_and_verify.algorithm"]),
    );
    // A reset token for an e-mail nobody has, with or without its one-time claim: no stored
    // token matches (Barong let a missing claim equal a missing stored token).
    for reset_token in [Value::Null, json!("0123456789abcdef0123")] {
        let mut claims = with("sub", json!("reset"));
        if !reset_token.is_null() {
            claims["reset_token"] = reset_token;
        }
        let reset = sign_with_server_key(&db, &kid, &claims);
        expect(
            &api.post(
                "/users/password/confirm_code",
                json!({ "reset_password_token": reset, "password": PASSWORD, "confirm_password": PASSWORD }),
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            errors(&["identity.user.utilized_token"]),
        );
    }
}

// ---- the client IP of sessions and activities ---------------------------------------------------

async fn client_ip_follows_barong(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = start_server(&db, &[("BARONG_GATEWAY", "akamai".into())]);
    let api = Api::new(&server);
    let store = db.open().await;
    let sign_up = |email: &str, headers: &[(&'static str, &'static str)]| {
        let mut request = api
            .http
            .post(format!("{}/users", api.base))
            .json(&json!({ "email": email, "password": PASSWORD }));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request
    };
    type Headers = &'static [(&'static str, &'static str)];
    let cases: [(&str, Headers, &str); 4] = [
        ("ip1@barong.test", &[], "127.0.0.1"),
        (
            "ip2@barong.test",
            &[("X-Forwarded-For", "198.51.100.4, 10.0.0.2")],
            "198.51.100.4",
        ),
        (
            "ip3@barong.test",
            &[
                ("X-Forwarded-For", "198.51.100.4"),
                ("True-Client-IP", "203.0.113.5"),
            ],
            "203.0.113.5",
        ),
        // Every hop trusted: the one furthest away, as Rails' remote_ip answers.
        (
            "ip4@barong.test",
            &[("X-Forwarded-For", "192.168.0.9")],
            "192.168.0.9",
        ),
    ];
    for (email, headers, expected) in cases {
        let answer = api.send(sign_up(email, headers), None).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
        let cookie = answer.cookie.expect("cookie");
        let session = store
            .find_session(&barong::domain::session_key(&cookie))
            .await
            .expect("find")
            .expect("session row");
        assert_eq!(session.user_ip, expected, "{email}");
        assert_eq!(session.user_agent.as_deref(), Some(UA));
        assert!(session.expire_at > chrono::Utc::now().timestamp() + 1700);
        let user = store
            .find_user_by_email(email)
            .await
            .expect("f")
            .expect("u");
        assert!(
            user.password_digest.starts_with("$argon2id$"),
            "argon2id for new hashes"
        );
        let activity = &store.list_user_activities(user.id).await.expect("a")[0];
        assert_eq!(activity.user_ip, expected);
    }
}

// ---- mail refused by the relay is not retried forever ---------------------------------------------

async fn refused_mail_is_given_up(backend: Backend) {
    let db = TestDb::new(backend).await;
    let sink = SmtpSink::start(free_port(), &db.dir.path().join("mail"));
    let server = start_server(&db, &smtp_env(sink.port).await);
    let api = Api::new(&server);
    assert_eq!(
        api.sign_up("first@barong.test", json!({})).await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        api.sign_up("reject@barong.test", json!({})).await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        api.sign_up("accept@barong.test", json!({})).await.status,
        StatusCode::CREATED
    );
    sink.wait_for("accept@barong.test", "Registration Confirmation")
        .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !server.log_text().contains("mail refused permanently") {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            server.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // With a 1 s backoff a transient failure would be retried several times by now.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        server
            .log_text()
            .matches("mail refused permanently")
            .count(),
        1
    );
    assert_eq!(
        db.open().await.count_unsent_mails().await.expect("count"),
        1
    );
}

// ---- issued tokens expire ---------------------------------------------------------------------

async fn issued_tokens_expire(backend: Backend) {
    let db = TestDb::new(backend).await;
    let sink = SmtpSink::start(free_port(), &db.dir.path().join("mail"));
    let mut env = smtp_env(sink.port).await;
    env.push(("BARONG_JWT_EXPIRE_TIME", "2".into()));
    let server = start_server(&db, &env);
    let api = Api::new(&server);
    assert_eq!(
        api.sign_up("first@barong.test", json!({})).await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        api.sign_up("slow@barong.test", json!({})).await.status,
        StatusCode::CREATED
    );
    let mail = sink
        .wait_for("slow@barong.test", "Registration Confirmation")
        .await;
    let token = token_in(&mail.body, "confirmation_token");
    expect(
        &api.post(
            "/users/password/generate_code",
            json!({ "email": "slow@barong.test" }),
        )
        .await,
        StatusCode::CREATED,
        json!(201),
    );
    let reset = token_in(
        &sink
            .wait_for("slow@barong.test", "Password Reset")
            .await
            .body,
        "reset_token",
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    expect(
        &api.post("/users/email/confirm_code", json!({ "token": token }))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        errors(&["jwt.decode_and_verify.expired"]),
    );
    expect(
        &api.post(
            "/users/password/confirm_code",
            json!({ "reset_password_token": reset, "password": PASSWORD, "confirm_password": PASSWORD }),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        errors(&["jwt.decode_and_verify.expired"]),
    );
}

both_backends!(
    user_lifecycle,
    mail_survives_smtp_outage_and_restart,
    bad_input_answers_barong_keys,
    login_states_bcrypt_and_tokens,
    duplicate_sign_up_race,
    recaptcha_is_verified_with_the_provider,
    geetest_is_verified_with_the_provider,
    whitelink_access,
    crafted_tokens_answer_barong_suffixes,
    client_ip_follows_barong,
    refused_mail_is_given_up,
    issued_tokens_expire,
);
