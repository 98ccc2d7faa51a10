//! The rest of a user's life behind the real gateways (nginx `auth_request`, Envoy `ext_authz`,
//! shipped configs): e-mail confirmation with the token from the mail barong sent and a later
//! login through the proxy; and an API key deactivated through one of two instances (one
//! PostgreSQL database) refused whichever instance the proxy asks next.

use crate::{common, support};
use std::time::Duration;

use aws_lc_rs::hmac;
use barong::crypto::totp;
use common::gateway::{Backends, BarongRoute, Gateway, Proxy, echo_upstream};
use common::{Backend, TestDb, TestServer};
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{SmtpSink, free_port, token_in};

const AGENT: &str = "Mozilla/5.0 (gateway journey)";
const PASSWORD: &str = "Iequ4geiEWQw";

/// A browser: keeps cookies, no proxies from the environment.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .cookie_store(true)
        .user_agent(AGENT)
        .timeout(Duration::from_secs(20))
        .build()
        .expect("browser")
}

/// Status and JSON body (Null when the body is not JSON).
async fn answer(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Signs up `email` through the gateway; returns the CSRF token of the new session.
async fn sign_up(browser: &reqwest::Client, gateway: &Gateway, email: &str) -> String {
    let (status, body) = answer(
        browser
            .post(gateway.url("/api/v2/barong/identity/users"))
            .json(&json!({ "email": email, "password": PASSWORD }))
            .send()
            .await
            .expect("sign up"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body} {}", gateway.log_text());
    body["csrf_token"].as_str().expect("csrf").to_owned()
}

/// Sign-up, the confirmation token from the mail, confirmation through the proxy (a session
/// with the e-mail label), logout, then a password login through the proxy that opens the
/// resource API again.
pub(crate) async fn confirmation_and_login_through_the_gateway(proxy: Proxy) {
    let db = TestDb::new(Backend::Sqlite).await;
    let sink = SmtpSink::start(free_port(), &db.dir.path().join("mail"));
    let smtp_port = sink.port.to_string();
    let server = TestServer::start(
        db.dir.path(),
        &db.url,
        &[
            ("BARONG_SMTP_HOST", "127.0.0.1"),
            ("BARONG_SMTP_PORT", &smtp_port),
            ("BARONG_MAIL_POLL_INTERVAL", "200"),
        ],
    );
    let upstream = echo_upstream().await;
    let gateway = Gateway::in_front_of(proxy, &server, &upstream).await;
    // The first user of an empty database is the superadmin and gets no mail.
    sign_up(&browser(), &gateway, "first@journey.test").await;

    let alice = browser();
    let email = "alice@journey.test";
    sign_up(&alice, &gateway, email).await;
    let me = gateway.url("/api/v2/barong/resource/users/me");
    let (status, body) = answer(alice.get(&me).send().await.expect("me")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "pending");

    let mail = sink.wait_for(email, "Registration Confirmation").await;
    let token = token_in(&mail.body, "confirmation_token");
    let confirmer = browser();
    let (status, body) = answer(
        confirmer
            .post(gateway.url("/api/v2/barong/identity/users/email/confirm_code"))
            .json(&json!({ "token": token }))
            .send()
            .await
            .expect("confirm"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let csrf = body["csrf_token"].as_str().expect("csrf").to_owned();
    // Confirmation opened a session in the confirming browser, and the user is active now.
    let (status, body) = answer(confirmer.get(&me).send().await.expect("me")).await;
    assert_eq!((status, &body["state"]), (StatusCode::OK, &json!("active")));
    assert_eq!(body["level"], 1);

    let (status, _) = answer(
        confirmer
            .delete(gateway.url("/api/v2/barong/identity/sessions"))
            .header("x-csrf-token", &csrf)
            .send()
            .await
            .expect("logout"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = answer(confirmer.get(&me).send().await.expect("me")).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::UNAUTHORIZED,
            json!({"errors": ["authz.invalid_session"]})
        )
    );

    // A wrong password is Barong's 401 through the proxy; the right one opens a session.
    let login = gateway.url("/api/v2/barong/identity/sessions");
    let (status, body) = answer(
        confirmer
            .post(&login)
            .json(&json!({ "email": email, "password": "Wrong-password-1" }))
            .send()
            .await
            .expect("login"),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::UNAUTHORIZED,
            json!({"errors": ["identity.session.invalid_params"]})
        )
    );
    let (status, body) = answer(
        confirmer
            .post(&login)
            .json(&json!({ "email": email, "password": PASSWORD }))
            .send()
            .await
            .expect("login"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = answer(confirmer.get(&me).send().await.expect("me")).await;
    assert_eq!((status, &body["email"]), (StatusCode::OK, &json!(email)));
}

/// HMAC signature of an API-key request, as clients compute it.
fn sign(secret: &str, nonce: &str, kid: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    hex::encode(hmac::sign(&key, format!("{nonce}{kid}").as_bytes()).as_ref())
}

/// A request to the upstream through the proxy, signed with an API key.
async fn with_key(gateway: &Gateway, kid: &str, secret: &str) -> (StatusCode, Value) {
    let nonce = chrono::Utc::now().timestamp_millis().to_string();
    answer(
        reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client")
            .get(gateway.url("/api/v2/peatio/account/balances"))
            .header("user-agent", AGENT)
            .header("x-auth-apikey", kid)
            .header("x-auth-nonce", &nonce)
            .header("x-auth-signature", sign(secret, &nonce, kid))
            .send()
            .await
            .expect("signed request"),
    )
    .await
}

/// TOTP codes of consecutive steps in the accepted window (now-1, now, now+1): three uses of
/// 2FA in a row without waiting for the clock.
fn codes(secret: &str) -> Vec<String> {
    let now = chrono::Utc::now().timestamp() as u64;
    (0..3)
        .map(|i| totp::code_at(secret, now - totp::PERIOD + i * totp::PERIOD).expect("code"))
        .collect()
}

/// Two instances on one PostgreSQL database behind one proxy: a user enables 2FA and creates an
/// API key, both instances serve requests signed with it, the key is deactivated through the
/// proxy (one instance), and then every signed request is refused with Barong's key, whichever
/// instance answers.
async fn api_key_deactivated_on_one_instance(proxy: Proxy) {
    let db = TestDb::new(Backend::Postgres).await;
    let env = [("BARONG_AUTHZ_CACHE_TTL", "60")];
    let first = TestServer::start(db.dir.path(), &db.url, &env);
    let second = TestServer::start(db.dir.path(), &db.url, &env);
    let upstream = echo_upstream().await;
    let backends = Backends::of_all(&[&first, &second], upstream.addr);
    let gateway = Gateway::start(proxy, &backends, BarongRoute::AsIs).await;
    let owner = browser();
    // The first user is an active superadmin: API keys need an active user with 2FA.
    let csrf = sign_up(&owner, &gateway, "keys@journey.test").await;
    let resource = |path: &str| gateway.url(&format!("/api/v2/barong/resource{path}"));

    let (status, body) = answer(
        owner
            .post(resource("/otp/generate_qrcode"))
            .header("x-csrf-token", &csrf)
            .send()
            .await
            .expect("qrcode"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let url = body["data"]["url"].as_str().expect("otpauth url");
    let secret = url
        .split("secret=")
        .nth(1)
        .and_then(|s| s.split('&').next())
        .expect("secret")
        .to_owned();
    let codes = codes(&secret);
    let (status, body) = answer(
        owner
            .post(resource("/otp/enable"))
            .header("x-csrf-token", &csrf)
            .json(&json!({ "code": codes[0] }))
            .send()
            .await
            .expect("enable 2FA"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Enabling 2FA ends the other sessions but keeps this one.
    let (status, key) = answer(
        owner
            .post(resource("/api_keys"))
            .header("x-csrf-token", &csrf)
            .json(&json!({ "algorithm": "HS256", "totp_code": codes[1] }))
            .send()
            .await
            .expect("create key"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    let kid = key["kid"].as_str().expect("kid").to_owned();
    let key_secret = key["secret"].as_str().expect("secret").to_owned();

    // Both instances get to cache the key (nginx and Envoy balance round robin).
    for n in 0..6 {
        let (status, body) = with_key(&gateway, &kid, &key_secret).await;
        assert_eq!(status, StatusCode::OK, "signed request {n}: {body}");
    }

    let (status, body) = answer(
        owner
            .patch(resource(&format!("/api_keys/{kid}")))
            .header("x-csrf-token", &csrf)
            .json(&json!({ "state": "inactive", "totp_code": codes[2] }))
            .send()
            .await
            .expect("deactivate"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "inactive");
    // The relay between instances is typically milliseconds; 300 ms keeps the test honest under
    // CI load (the documented bound is BARONG_AUTHZ_CACHE_TTL when a notification is lost).
    tokio::time::sleep(Duration::from_millis(300)).await;
    for n in 0..6 {
        let (status, body) = with_key(&gateway, &kid, &key_secret).await;
        assert_eq!(
            (status, body),
            (
                StatusCode::UNAUTHORIZED,
                json!({"errors": ["authz.apikey_not_active"]})
            ),
            "signed request {n} after deactivation"
        );
    }
    drop((first, second));
}

both_proxies!(
    confirmation_and_login_through_the_gateway,
    api_key_deactivated_on_one_instance,
);
