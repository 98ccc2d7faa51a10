//! The resource API through the real request path: identity opens a session, the authz listener
//! mints the bearer JWT from the cookie, the REST listener serves the call. Both backends.

use crate::common::http;
use crate::{common, support};

use aws_lc_rs::hmac;
use barong::crypto::totp;
use common::{Backend, TestDb, TestServer};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

const AGENT: &str = "Mozilla/5.0 (resource test)";
const PASSWORD: &str = "Iequ4geiEWQw";

/// A signed-up user with its session.
struct Account<'a> {
    server: &'a TestServer,
    cookie: String,
    csrf: String,
    uid: String,
    /// The TOTP secret from `generate_qrcode`, and the last time step a code was used for.
    secret: Option<String>,
    last_step: u64,
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    fn assert(&self, status: u16, body: Value) {
        assert_eq!(
            (self.status.as_u16(), &self.body),
            (status, &body),
            "unexpected answer"
        );
    }

    fn errors(&self, status: u16, keys: &[&str]) {
        self.assert(status, json!({ "errors": keys }));
    }
}

impl<'a> Account<'a> {
    async fn sign_up(server: &'a TestServer, email: &str) -> Account<'a> {
        let response = http()
            .post(server.url("/api/v2/barong/identity/users"))
            .header("user-agent", AGENT)
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
            .await
            .expect("sign up");
        assert_eq!(response.status(), StatusCode::CREATED);
        let cookie = support::set_session_cookie(&response).expect("session cookie");
        let body: Value = response.json().await.expect("json");
        Account {
            server,
            cookie,
            csrf: body["csrf_token"].as_str().expect("csrf").to_owned(),
            uid: body["uid"].as_str().expect("uid").to_owned(),
            secret: None,
            last_step: 0,
        }
    }

    /// The bearer the authz listener mints for `method path` with the session cookie.
    async fn bearer(&self, method: &str, path: &str) -> Result<String, (u16, String)> {
        let response = http()
            .get(format!(
                "{}/api/v2/auth/api/v2/barong{path}",
                self.server.authz
            ))
            .header("x-original-method", method)
            .header("cookie", format!("_barong_session={}", self.cookie))
            .header("x-csrf-token", &self.csrf)
            .header("user-agent", AGENT)
            .send()
            .await
            .expect("authz");
        if response.status() != StatusCode::OK {
            let status = response.status().as_u16();
            return Err((status, response.text().await.unwrap_or_default()));
        }
        Ok(response.headers()["authorization"]
            .to_str()
            .expect("ascii")
            .to_owned())
    }

    /// Calls `method path` (under `/api/v2/barong`) with a fresh bearer; `body` as JSON.
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Answer {
        let route = path.split('?').next().unwrap_or(path);
        let bearer = self.bearer(method, route).await.expect("authz allows");
        let url = self.server.url(&format!("/api/v2/barong{path}"));
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = http()
            .request(method, url)
            .header("authorization", bearer)
            .header("cookie", format!("_barong_session={}", self.cookie))
            .header("user-agent", AGENT);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("call");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).expect("json body")
        };
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, path: &str) -> Answer {
        self.call("GET", path, None).await
    }

    /// A valid TOTP code never used before (`common::fresh_totp_code`).
    async fn code(&mut self) -> String {
        let secret = self.secret.clone().expect("2FA secret");
        common::fresh_totp_code(&secret, &mut self.last_step).await
    }

    /// A code that is not valid now.
    fn wrong_code(&self) -> String {
        let secret = self.secret.clone().expect("2FA secret");
        let now = chrono::Utc::now().timestamp() as u64;
        totp::code_at(&secret, now + 10 * totp::PERIOD).expect("code")
    }

    /// generate_qrcode + enable.
    async fn enable_2fa(&mut self) {
        let qr = self
            .call("POST", "/resource/otp/generate_qrcode", None)
            .await;
        assert_eq!(qr.status, StatusCode::CREATED);
        let url = qr.body["data"]["url"].as_str().expect("url").to_owned();
        self.secret = Some(
            url.split("secret=")
                .nth(1)
                .expect("secret")
                .split('&')
                .next()
                .expect("secret")
                .to_owned(),
        );
        let code = self.code().await;
        self.call(
            "POST",
            "/resource/otp/enable",
            Some(json!({ "code": code })),
        )
        .await
        .assert(201, json!(200));
    }
}

async fn start(backend: Backend) -> (TestDb, TestServer) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(db.dir.path(), &db.url, &[]);
    (db, server)
}

fn sign(secret: &str, nonce: &str, kid: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    hex::encode(hmac::sign(&key, format!("{nonce}{kid}").as_bytes()).as_ref())
}

/// Asks authz about `GET resource/users/me` with an API key: (status, body).
async fn with_key(server: &TestServer, kid: &str, secret: &str) -> (u16, String) {
    let nonce = chrono::Utc::now().timestamp_millis().to_string();
    let response = http()
        .get(format!(
            "{}/api/v2/auth/api/v2/barong/resource/users/me",
            server.authz
        ))
        .header("x-auth-apikey", kid)
        .header("x-auth-nonce", &nonce)
        .header("x-auth-signature", sign(secret, &nonce, kid))
        .header("user-agent", AGENT)
        .send()
        .await
        .expect("authz");
    (
        response.status().as_u16(),
        response.text().await.unwrap_or_default(),
    )
}

async fn users_me_password_and_activity(backend: Backend) {
    let (_db, server) = start(backend).await;
    let user = Account::sign_up(&server, "me@barong.test").await;

    // PUT users/me
    user.call("PUT", "/resource/users/me", Some(json!({})))
        .await
        .errors(
            422,
            &["resource.user.missing_data", "resource.user.empty_data"],
        );
    user.call("PUT", "/resource/users/me", Some(json!({"data": " "})))
        .await
        .errors(422, &["resource.user.empty_data"]);
    user.call("PUT", "/resource/users/me", Some(json!({"data": "{nope"})))
        .await
        .errors(422, &["data.invalid_format"]);
    let long = format!("{{\"a\":\"{}\"}}", "x".repeat(1100));
    user.call("PUT", "/resource/users/me", Some(json!({ "data": long })))
        .await
        .errors(422, &["data.too_long"]);
    let updated = user
        .call(
            "PUT",
            "/resource/users/me",
            Some(json!({"data": "{\"language\":\"fr\"}"})),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK);
    assert_eq!(updated.body["data"], "{\"language\":\"fr\"}");
    assert_eq!(updated.body["uid"], user.uid.as_str());

    // PUT users/password
    user.call("PUT", "/resource/users/password", Some(json!({})))
        .await
        .errors(
            422,
            &[
                "resource.user.missing_old_password",
                "resource.user.empty_old_password",
                "resource.user.missing_new_password",
                "resource.user.empty_new_password",
                "resource.user.missing_confirm_password",
                "resource.user.empty_confirm_password",
            ],
        );
    let change = |old: &str, new: &str, confirm: &str| json!({"old_password": old, "new_password": new, "confirm_password": confirm});
    let new_password = "Oochei4aeBoo9";
    user.call(
        "PUT",
        "/resource/users/password",
        Some(change(PASSWORD, new_password, "other")),
    )
    .await
    .errors(422, &["resource.password.doesnt_match"]);
    user.call(
        "PUT",
        "/resource/users/password",
        Some(change("Wrong1234xyz", new_password, new_password)),
    )
    .await
    .errors(400, &["resource.password.prev_pass_not_correct"]);
    user.call(
        "PUT",
        "/resource/users/password",
        Some(change(PASSWORD, PASSWORD, PASSWORD)),
    )
    .await
    .errors(400, &["resource.password.no_change_provided"]);
    user.call(
        "PUT",
        "/resource/users/password",
        Some(change(PASSWORD, "short", "short")),
    )
    .await
    .errors(422, &["password.requirements"]);

    // A second session of the same user is revoked by the change; the current one is kept.
    let login = http()
        .post(server.url("/api/v2/barong/identity/sessions"))
        .header("user-agent", AGENT)
        .json(&json!({"email": "me@barong.test", "password": PASSWORD}))
        .send()
        .await
        .expect("login");
    assert_eq!(login.status(), StatusCode::OK);
    let other = Account {
        cookie: support::set_session_cookie(&login).expect("cookie"),
        csrf: login.json::<Value>().await.expect("json")["csrf_token"]
            .as_str()
            .expect("csrf")
            .to_owned(),
        uid: user.uid.clone(),
        server: &server,
        secret: None,
        last_step: 0,
    };
    assert!(other.bearer("GET", "/resource/users/me").await.is_ok());
    user.call(
        "PUT",
        "/resource/users/password",
        Some(change(PASSWORD, new_password, new_password)),
    )
    .await
    .assert(201, json!(201));
    // Revocation reaches the authz caches through the invalidation bus: milliseconds, polled.
    let mut refused = None;
    for _ in 0..50 {
        if let Err((status, _)) = other.bearer("GET", "/resource/users/me").await {
            refused = Some(status);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(refused, Some(401), "the other session is revoked");
    assert!(user.bearer("GET", "/resource/users/me").await.is_ok());

    // GET users/activity/{topic}
    user.get("/resource/users/activity/nope")
        .await
        .errors(422, &["resource.user.wrong_topic"]);
    user.get("/resource/users/activity/otp")
        .await
        .errors(422, &["resource.user.no_activity"]);
    user.get("/resource/users/activity/all?time_from=x&time_to=&result=&page=0&limit=101")
        .await
        .errors(
            422,
            &[
                "resource.user.non_integer_time_from",
                "resource.user.empty_time_to",
                "resource.user.empty_result",
                "non_positive_page",
                "invalid_limit",
            ],
        );
    user.get("/resource/users/activity/all?page=a&limit=0")
        .await
        .errors(422, &["non_integer_page", "invalid_limit"]);
    user.get("/resource/users/activity/all?limit=x")
        .await
        .errors(422, &["non_integer_limit"]);
    let password = user.get("/resource/users/activity/password").await;
    assert_eq!(password.status, StatusCode::OK);
    let rows = password.body.as_array().expect("array");
    // doesnt_match, prev_pass, no_change, requirements, then the success; newest first.
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[0]["result"], "succeed");
    assert_eq!(rows[0]["action"], "password change");
    assert_eq!(rows[1]["result"], "failed");
    let keys: Vec<&str> = rows[0]
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "id",
            "user_ip",
            "user_ip_country",
            "user_agent",
            "topic",
            "action",
            "result",
            "data",
            "created_at"
        ]
    );
    assert_eq!(password.headers["total"], "5");
    assert_eq!(password.headers["per-page"], "100");
    assert_eq!(password.headers["page"], "1");
    assert!(password.headers.get("link").is_none());
    let failed = user
        .get("/resource/users/activity/password?result=failed&limit=2&page=2")
        .await;
    assert_eq!(failed.status, StatusCode::OK);
    assert_eq!(failed.body.as_array().expect("array").len(), 2);
    assert_eq!(failed.headers["total"], "4");
    assert_eq!(failed.headers["page"], "2");
    let link = failed.headers["link"].to_str().expect("link");
    assert!(
        link.contains("rel=\"first\"") && link.contains("rel=\"prev\""),
        "{link}"
    );
    assert!(
        link.contains("limit=2&page=2&result=failed>; rel=\"last\""),
        "{link}"
    );
    assert!(!link.contains("rel=\"next\""), "{link}");
    let future = chrono::Utc::now().timestamp() + 3600;
    user.get(&format!("/resource/users/activity/all?time_from={future}"))
        .await
        .errors(422, &["resource.user.no_activity"]);
    let all = user
        .get(&format!("/resource/users/activity/all?time_to={future}"))
        .await;
    assert_eq!(all.status, StatusCode::OK);
    assert!(all.body.as_array().expect("array").len() >= 6); // signup, login, password x5

    // DELETE users/me
    user.call("DELETE", "/resource/users/me", Some(json!({})))
        .await
        .errors(
            422,
            &[
                "resource.user.missing_password",
                "resource.user.empty_password",
            ],
        );
    user.call(
        "DELETE",
        "/resource/users/me",
        Some(json!({"password": PASSWORD})),
    )
    .await
    .errors(422, &["resource.user.invalid_password"]);
    user.call(
        "DELETE",
        "/resource/users/me",
        Some(json!({"password": new_password})),
    )
    .await
    .assert(200, json!(200));
    // Every session is gone: authz refuses the cookie at once.
    assert_eq!(
        user.bearer("GET", "/resource/users/me")
            .await
            .expect_err("deleted")
            .0,
        401
    );
}

async fn labels(backend: Backend) {
    let (db, server) = start(backend).await;
    let user = Account::sign_up(&server, "labels@barong.test").await;

    user.call("POST", "/resource/labels", Some(json!({})))
        .await
        .errors(
            422,
            &[
                "resource.label.missing_key",
                "resource.label.empty_key",
                "resource.label.missing_value",
                "resource.label.empty_value",
            ],
        );
    user.call(
        "POST",
        "/resource/labels",
        Some(json!({"key": "a!", "value": "ok-value"})),
    )
    .await
    .errors(422, &["key.too_short", "key.invalid"]);
    user.call(
        "POST",
        "/resource/labels",
        Some(json!({"key": "color", "value": "x y"})),
    )
    .await
    .errors(422, &["value.invalid"]);
    let created = user
        .call(
            "POST",
            "/resource/labels",
            Some(json!({"key": " Color ", "value": "Blue"})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.body["key"], "color");
    assert_eq!(created.body["value"], "blue");
    assert_eq!(created.body["scope"], "public");
    user.call(
        "POST",
        "/resource/labels",
        Some(json!({"key": "color", "value": "green"})),
    )
    .await
    .errors(422, &["key.taken"]);

    let list = user.get("/resource/labels").await;
    assert_eq!(list.status, StatusCode::OK);
    // email:verified (private, first user) then color.
    let keys: Vec<&Value> = list
        .body
        .as_array()
        .expect("array")
        .iter()
        .map(|l| &l["key"])
        .collect();
    assert_eq!(keys, [&json!("email"), &json!("color")]);
    let desc = user.get("/resource/labels?ordering=desc").await;
    assert_eq!(desc.body[0]["key"], "color");
    user.get("/resource/labels?ordering=up")
        .await
        .errors(422, &["value"]);

    assert_eq!(
        user.get("/resource/labels/color").await.body["value"],
        "blue"
    );
    user.get("/resource/labels/nothing")
        .await
        .errors(404, &["record.not_found"]);

    // PATCH: a valid value is saved; an invalid one is echoed but not saved (Barong's quirk).
    let patched = user
        .call(
            "PATCH",
            "/resource/labels/color",
            Some(json!({"value": "Red"})),
        )
        .await;
    assert_eq!(
        (patched.status, &patched.body["value"]),
        (StatusCode::OK, &json!("red"))
    );
    let echoed = user
        .call(
            "PATCH",
            "/resource/labels/color",
            Some(json!({"value": "no"})),
        )
        .await;
    assert_eq!(
        (echoed.status, &echoed.body["value"]),
        (StatusCode::OK, &json!("no"))
    );
    assert_eq!(
        user.get("/resource/labels/color").await.body["value"],
        "red"
    );
    user.call("PATCH", "/resource/labels/color", Some(json!({})))
        .await
        .errors(
            422,
            &["resource.label.missing_value", "resource.label.empty_value"],
        );
    user.call(
        "PATCH",
        "/resource/labels/nothing",
        Some(json!({"value": "abc"})),
    )
    .await
    .errors(404, &["record.not_found"]);

    // Private labels are visible but read-only.
    user.call(
        "PATCH",
        "/resource/labels/email",
        Some(json!({"value": "abc"})),
    )
    .await
    .errors(400, &["resource.labels.private"]);
    user.call("DELETE", "/resource/labels/email", None)
        .await
        .errors(400, &["resource.labels.private"]);

    user.call("DELETE", "/resource/labels/nothing", None)
        .await
        .errors(404, &["record.not_found"]);
    let temp = user
        .call(
            "POST",
            "/resource/labels",
            Some(json!({"key": "temp", "value": "abc"})),
        )
        .await;
    assert_eq!(temp.status, StatusCode::CREATED);
    user.call("DELETE", "/resource/labels/temp", None)
        .await
        .assert(204, Value::Null);
    user.get("/resource/labels/temp")
        .await
        .errors(404, &["record.not_found"]);

    // A public label with a state-trigger key changes the state at once (any scope counts),
    // and deleting it restores the state: recomputed in the same transaction.
    let locked = user
        .call(
            "POST",
            "/resource/labels",
            Some(json!({"key": "lock", "value": "yes"})),
        )
        .await;
    assert_eq!(locked.status, StatusCode::CREATED);
    let state: Value = {
        let store = db.open().await;
        let u = store
            .find_user_by_uid(&user.uid)
            .await
            .expect("q")
            .expect("user");
        json!(u.state)
    };
    assert_eq!(state, "locked");
    // A locked user cannot pass authz with the cookie any more.
    assert_eq!(
        user.bearer("DELETE", "/resource/labels/lock")
            .await
            .expect_err("locked")
            .0,
        401
    );
    // Deleting the label (here through the store, the user being locked out) recomputes it.
    let store = db.open().await;
    let u = store
        .find_user_by_uid(&user.uid)
        .await
        .expect("q")
        .expect("user");
    let change = store
        .delete_label(
            u.id,
            "lock",
            "public",
            &barong::domain::StateRules::default(),
        )
        .await
        .expect("delete")
        .expect("existed");
    assert_eq!(change.user.state, "active");
    assert_eq!(change.user.level, 1);
}

async fn otp_and_api_keys(backend: Backend) {
    let (db, server) = start(backend).await;
    let mut user = Account::sign_up(&server, "keys@barong.test").await;

    // Without 2FA.
    user.call("POST", "/resource/otp/enable", Some(json!({})))
        .await
        .errors(
            422,
            &["resource.otp.missing_code", "resource.otp.empty_code"],
        );
    user.call(
        "POST",
        "/resource/otp/enable",
        Some(json!({"code": "123456"})),
    )
    .await
    .errors(422, &["resource.otp.invalid"]);
    user.call(
        "POST",
        "/resource/otp/disable",
        Some(json!({"code": "123456"})),
    )
    .await
    .errors(400, &["resource.otp.not_enabled"]);
    user.call(
        "POST",
        "/resource/otp/verify",
        Some(json!({"code": "123456"})),
    )
    .await
    .errors(400, &["resource.otp.already_enabled"]);
    user.call(
        "POST",
        "/resource/api_keys",
        Some(json!({"algorithm": "HS256", "totp_code": "123456"})),
    )
    .await
    .errors(400, &["resource.api_key.2fa_disabled"]);

    // generate_qrcode: Vault's response object with the otpauth URL and a PNG.
    let qr = user
        .call("POST", "/resource/otp/generate_qrcode", None)
        .await;
    assert_eq!(qr.status, StatusCode::CREATED);
    let url = qr.body["data"]["url"].as_str().expect("url");
    assert!(
        url.starts_with("otpauth://totp/Barong:keys%40barong.test?algorithm=SHA1&digits=6&issuer=Barong&period=30&secret="),
        "{url}"
    );
    let barcode = qr.body["data"]["barcode"].as_str().expect("barcode");
    use base64::Engine;
    let png = base64::engine::general_purpose::STANDARD
        .decode(barcode)
        .expect("base64");
    assert!(png.starts_with(b"\x89PNG"));
    user.enable_2fa().await; // a second generate_qrcode overwrites the secret
    let me = user.get("/resource/users/me").await;
    assert_eq!(me.body["otp"], true);
    assert!(
        me.body["labels"]
            .as_array()
            .expect("labels")
            .iter()
            .any(|l| l["key"] == "otp" && l["value"] == "enabled" && l["scope"] == "private")
    );
    user.call("POST", "/resource/otp/generate_qrcode", None)
        .await
        .errors(400, &["resource.otp.already_enabled"]);
    user.call(
        "POST",
        "/resource/otp/enable",
        Some(json!({"code": "123456"})),
    )
    .await
    .errors(400, &["resource.otp.already_enabled"]);

    // verify: a good code once, `totp.error` when replayed (Vault's "code already used"); a
    // wrong code keeps the endpoint's own key.
    let code = user.code().await;
    user.call(
        "POST",
        "/resource/otp/verify",
        Some(json!({ "code": code })),
    )
    .await
    .assert(201, Value::Null);
    user.call(
        "POST",
        "/resource/otp/verify",
        Some(json!({ "code": code })),
    )
    .await
    .errors(422, &["totp.error"]);
    let wrong = user.wrong_code();
    user.call(
        "POST",
        "/resource/otp/verify",
        Some(json!({ "code": wrong })),
    )
    .await
    .errors(422, &["resource.otp.invalid"]);

    // API keys: parameter errors, the 2FA guard.
    user.call("POST", "/resource/api_keys", Some(json!({"scope": ""})))
        .await
        .errors(
            422,
            &[
                "resource.apikey.missing_algorithm",
                "resource.apikey.empty_algorithm",
                "resource.apikey.empty_scope",
                "resource.api_key.missing_totp",
                "resource.apikey.empty_totp_code",
            ],
        );
    user.call(
        "POST",
        "/resource/api_keys",
        Some(json!({"algorithm": "HS256", "totp_code": wrong})),
    )
    .await
    .errors(422, &["resource.api_key.invalid_totp"]);
    let code = user.code().await;
    user.call(
        "POST",
        "/resource/api_keys",
        Some(json!({"algorithm": "RS256", "totp_code": code})),
    )
    .await
    .errors(422, &["kid.blank", "algorithm.inclusion"]);

    // Create, list, sign a request, deactivate, refused at once.
    let code = user.code().await;
    let created = user
        .call(
            "POST",
            "/resource/api_keys",
            Some(json!({"algorithm": "HS256", "scope": "trade,read", "totp_code": code})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let kid = created.body["kid"].as_str().expect("kid").to_owned();
    let secret = created.body["secret"].as_str().expect("secret").to_owned();
    assert!(kid.len() == 16 && kid.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(secret.len() == 32 && secret.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(created.body["scope"], json!(["trade", "read"]));
    assert_eq!(created.body["state"], "active");
    let keys: Vec<&str> = created
        .body
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "kid",
            "algorithm",
            "scope",
            "state",
            "secret",
            "created_at",
            "updated_at"
        ]
    );
    let (status, body) = with_key(&server, &kid, &secret).await;
    assert_eq!(status, 200, "{body}");

    let code = user.code().await;
    let second = user
        .call(
            "POST",
            "/resource/api_keys",
            Some(json!({"algorithm": "HS512", "totp_code": code})),
        )
        .await;
    assert_eq!(second.status, StatusCode::CREATED);
    assert_eq!(second.body["scope"], json!([]));
    let list = user.get("/resource/api_keys").await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.headers["total"], "2");
    assert_eq!(list.body[0]["kid"], kid.as_str());
    assert!(list.body[0].get("secret").is_none());
    let desc = user
        .get("/resource/api_keys?ordering=desc&order_by=algorithm&limit=1")
        .await;
    assert_eq!(desc.body.as_array().expect("array").len(), 1);
    assert_eq!(desc.body[0]["algorithm"], "HS512");
    assert!(
        desc.headers["link"]
            .to_str()
            .expect("link")
            .contains("rel=\"next\"")
    );
    user.get("/resource/api_keys?ordering=sideways")
        .await
        .errors(422, &["resource.api_key.invalid_ordering"]);
    user.get("/resource/api_keys?order_by=password")
        .await
        .errors(422, &["resource.api_key.invalid_attribute"]);
    user.get("/resource/api_keys?limit=0")
        .await
        .errors(422, &["invalid_limit"]);
    user.get("/resource/api_keys?limit=101&page=-1")
        .await
        .errors(422, &["non_positive_page", "invalid_limit"]);

    // Another user sees none of it and cannot touch it.
    let other = Account::sign_up(&server, "other@barong.test").await;
    let empty = other.get("/resource/api_keys").await;
    assert_eq!((empty.status, &empty.body), (StatusCode::OK, &json!([])));
    support::sql(
        &db,
        "UPDATE users SET otp = true WHERE email = 'other@barong.test'",
    )
    .await;
    // (other has no secret: the guard refuses every code before looking for the key)
    other
        .call(
            "PATCH",
            &format!("/resource/api_keys/{kid}"),
            Some(json!({"state": "inactive", "totp_code": "123456"})),
        )
        .await
        .errors(422, &["resource.api_key.invalid_totp"]);

    // PATCH: validation, unknown kid, deactivation (scope cleared when absent).
    user.call(
        "PATCH",
        &format!("/resource/api_keys/{kid}"),
        Some(json!({"state": "", "scope": ""})),
    )
    .await
    .errors(
        422,
        &[
            "resource.apikey.empty_scope",
            "resource.apikey.empty_state",
            "resource.apikey.missing_totp_code",
            "resource.apikey.empty_totp_code",
        ],
    );
    let code = user.code().await;
    user.call(
        "PATCH",
        "/resource/api_keys/0000000000000000",
        Some(json!({"state": "inactive", "totp_code": code})),
    )
    .await
    .errors(404, &["record.not_found"]);
    let code = user.code().await;
    let patched = user
        .call(
            "PATCH",
            &format!("/resource/api_keys/{kid}"),
            Some(json!({"state": "inactive", "totp_code": code})),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{:?}", patched.body);
    assert_eq!(patched.body["state"], "inactive");
    assert_eq!(patched.body["scope"], json!([]));
    assert!(patched.body.get("secret").is_none());
    let (status, body) = with_key(&server, &kid, &secret).await;
    assert_eq!(
        (status, body.as_str()),
        (401, r#"{"errors":["authz.apikey_not_active"]}"#)
    );

    // DELETE: needs the code; then the key is unknown to authz at once.
    let second_kid = second.body["kid"].as_str().expect("kid").to_owned();
    user.call("DELETE", &format!("/resource/api_keys/{kid}"), None)
        .await
        .errors(
            422,
            &[
                "resource.apikey.missing_totp_code",
                "resource.apikey.empty_totp_code",
            ],
        );
    let code = user.code().await;
    user.call(
        "DELETE",
        &format!("/resource/api_keys/{kid}?totp_code={code}"),
        None,
    )
    .await
    .assert(204, Value::Null);
    let (status, _) = with_key(&server, &kid, &secret).await;
    assert_eq!(status, 401);

    // Disabling 2FA deactivates the remaining keys in the same transaction.
    user.call(
        "POST",
        "/resource/otp/disable",
        Some(json!({ "code": wrong })),
    )
    .await
    .errors(422, &["resource.otp.invalid"]);
    let code = user.code().await;
    user.call(
        "POST",
        "/resource/otp/disable",
        Some(json!({ "code": code })),
    )
    .await
    .assert(200, json!(200));
    let store = db.open().await;
    let key = store
        .find_api_key(&second_kid)
        .await
        .expect("q")
        .expect("key");
    assert_eq!(key.state, "inactive");
    let me = user.get("/resource/users/me").await;
    assert_eq!(me.body["otp"], false);
    let otp = user.get("/resource/users/activity/otp").await;
    assert_eq!(otp.status, StatusCode::OK);
    assert!(otp.body.as_array().expect("array").len() >= 5);
}

/// Failed codes are limited per user: after five, even the right code is refused for a while.
async fn otp_failures_are_rate_limited(backend: Backend) {
    let (_db, server) = start(backend).await;
    let mut user = Account::sign_up(&server, "limit@barong.test").await;
    user.enable_2fa().await;
    let wrong = user.wrong_code();
    for _ in 0..5 {
        user.call(
            "POST",
            "/resource/otp/verify",
            Some(json!({ "code": wrong })),
        )
        .await
        .errors(422, &["resource.otp.invalid"]);
    }
    let code = user.code().await;
    user.call(
        "POST",
        "/resource/otp/verify",
        Some(json!({ "code": code })),
    )
    .await
    .errors(422, &["resource.otp.invalid"]);
    // Login with 2FA is held by the same limit.
    let login = http()
        .post(server.url("/api/v2/barong/identity/sessions"))
        .header("user-agent", AGENT)
        .json(&json!({"email": "limit@barong.test", "password": PASSWORD, "otp_code": code}))
        .send()
        .await
        .expect("login");
    assert_eq!(login.status(), StatusCode::FORBIDDEN);
}

/// Login with 2FA checks the code with the stored secret.
async fn login_with_2fa(backend: Backend) {
    let (_db, server) = start(backend).await;
    let mut user = Account::sign_up(&server, "login@barong.test").await;
    user.enable_2fa().await;
    let login = |otp: Option<String>| {
        let mut body = json!({"email": "login@barong.test", "password": PASSWORD});
        if let Some(otp) = otp {
            body["otp_code"] = json!(otp);
        }
        http()
            .post(server.url("/api/v2/barong/identity/sessions"))
            .header("user-agent", AGENT)
            .json(&body)
            .send()
    };
    assert_eq!(
        login(None).await.expect("login").status(),
        StatusCode::UNAUTHORIZED
    );
    let wrong = user.wrong_code();
    assert_eq!(
        login(Some(wrong)).await.expect("login").status(),
        StatusCode::FORBIDDEN
    );
    let code = user.code().await;
    assert_eq!(
        login(Some(code.clone())).await.expect("login").status(),
        StatusCode::OK
    );
    // The same code again is a replay: Barong's `totp.error` (Vault's "code already used").
    let replay = login(Some(code)).await.expect("login");
    assert_eq!(replay.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        replay.json::<Value>().await.expect("json"),
        json!({"errors": ["totp.error"]})
    );
    // The successful login is recorded as Barong records a login with 2FA.
    let activity = user
        .call("GET", "/resource/users/activity/session", None)
        .await;
    let actions: Vec<&str> = activity
        .body
        .as_array()
        .expect("activities")
        .iter()
        .filter(|a| a["result"] == "succeed")
        .filter_map(|a| a["action"].as_str())
        .collect();
    assert!(actions.contains(&"login::2fa"), "{actions:?}");
}

async fn data_storage(backend: Backend) {
    let db = TestDb::new(backend).await;
    let yml = db.dir.path().join("barong.yml");
    std::fs::write(&yml, "user_storage_titles: [personal, company]\n").expect("barong.yml");
    let server = TestServer::start(
        db.dir.path(),
        &db.url,
        &[("BARONG_CONFIG", yml.to_str().expect("path"))],
    );
    let user = Account::sign_up(&server, "storage@barong.test").await;
    let post = |body: Value| user.call("POST", "/resource/data_storage", Some(body));
    post(json!({})).await.errors(
        422,
        &[
            "resource.datastorage.missing_title",
            "resource.datastorage.empty_title",
            "resource.datastorage.missing_data",
            "resource.datastorage.empty_data",
        ],
    );
    post(json!({"title": "personal", "data": "[1]"}))
        .await
        .errors(422, &["data.invalid_format"]);
    post(json!({"title": "personal", "data": "{nope"}))
        .await
        .errors(422, &["data.invalid_format"]);
    let big = format!("{{\"a\":\"{}\"}}", "x".repeat(5200));
    post(json!({"title": "personal", "data": big}))
        .await
        .errors(422, &["data.too_long"]);
    post(json!({"title": "other", "data": "{}"}))
        .await
        .errors(422, &["title.inclusion"]);
    post(json!({"title": "user", "data": "{}"}))
        .await
        .errors(422, &["title.inclusion", "title.exclusion"]);
    post(json!({"title": "personal", "data": "{\"name\":\"Ann\"}"}))
        .await
        .assert(201, json!(201));
    post(json!({"title": "personal", "data": "{}"}))
        .await
        .errors(422, &["title.taken"]);
    let me = user.get("/resource/users/me").await;
    assert_eq!(me.body["data_storages"][0]["title"], "personal");
    assert_eq!(me.body["data_storages"][0]["data"], "{\"name\":\"Ann\"}");
    assert!(
        me.body["labels"]
            .as_array()
            .expect("labels")
            .iter()
            .any(|l| l["key"] == "personal" && l["value"] == "recorded" && l["scope"] == "private")
    );
}

async fn service_accounts(backend: Backend) {
    let (db, server) = start(backend).await;
    let mut user = Account::sign_up(&server, "owner@barong.test").await;
    let other = Account::sign_up(&server, "stranger@barong.test").await;
    let store = db.open().await;
    let owner = store
        .find_user_by_uid(&user.uid)
        .await
        .expect("q")
        .expect("owner");
    let stranger = store
        .find_user_by_uid(&other.uid)
        .await
        .expect("q")
        .expect("other");
    for (uid, owner_id) in [("SI0000000001", owner.id), ("SI0000000002", stranger.id)] {
        store
            .create_service_account(&barong::domain::NewServiceAccount {
                uid: uid.into(),
                owner_id: Some(owner_id),
                email: format!("{uid}@barong.test"),
                role: "member".into(),
                level: 0,
                state: "active".into(),
            })
            .await
            .expect("service account");
    }
    let list = user.get("/resource/service_accounts").await;
    assert_eq!(list.status, StatusCode::OK);
    let accounts = list.body.as_array().expect("array");
    assert_eq!(accounts.len(), 1);
    assert_eq!(accounts[0]["uid"], "SI0000000001");
    assert_eq!(accounts[0]["owner_id"], owner.id);
    let keys: Vec<&str> = accounts[0]
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "id",
            "uid",
            "owner_id",
            "email",
            "role",
            "level",
            "state",
            "created_at",
            "updated_at"
        ]
    );

    let keys_of = "/resource/service_accounts/api_keys";
    user.get(keys_of).await.errors(
        422,
        &["resource.serviceaccount.missing_service_account_uid"],
    );
    user.get(&format!("{keys_of}?service_account_uid=SI0000000002"))
        .await
        .errors(404, &["resource.service_account.doesnt_exist"]);
    let empty = user
        .get(&format!("{keys_of}?service_account_uid=SI0000000001"))
        .await;
    assert_eq!((empty.status, &empty.body), (StatusCode::OK, &json!([])));
    assert_eq!(empty.headers["total"], "0");
    user.get(&format!(
        "{keys_of}?service_account_uid=SI0000000001&ordering=up"
    ))
    .await
    .errors(422, &["resource.service_accounts.invalid_ordering"]);
    user.get(&format!(
        "{keys_of}?service_account_uid=SI0000000001&order_by=nope"
    ))
    .await
    .errors(422, &["resource.service_accounts.invalid_attribute"]);
    user.get(&format!(
        "{keys_of}?service_account_uid=SI0000000001&limit=500"
    ))
    .await
    .errors(422, &["invalid_limit"]);

    user.call("POST", keys_of, Some(json!({}))).await.errors(
        422,
        &[
            "resource.serviceaccount.missing_service_account_uid",
            "resource.serviceaccount.missing_algorithm",
            "resource.serviceaccount.empty_algorithm",
            "resource.service_accounts.missing_totp",
            "resource.serviceaccount.empty_totp_code",
        ],
    );
    let create = |uid: &str, code: &str| json!({"service_account_uid": uid, "algorithm": "HS256", "totp_code": code});
    user.call("POST", keys_of, Some(create("SI0000000002", "123456")))
        .await
        .errors(404, &["resource.service_account.doesnt_exist"]);
    user.call("POST", keys_of, Some(create("SI0000000001", "123456")))
        .await
        .errors(400, &["resource.service_accounts.2fa_disabled"]);
    user.enable_2fa().await;
    let wrong = user.wrong_code();
    user.call("POST", keys_of, Some(create("SI0000000001", &wrong)))
        .await
        .errors(422, &["resource.service_accounts.invalid_totp"]);
    let code = user.code().await;
    let created = user
        .call("POST", keys_of, Some(create("SI0000000001", &code)))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let kid = created.body["kid"].as_str().expect("kid").to_owned();
    let secret = created.body["secret"].as_str().expect("secret").to_owned();
    let (status, body) = with_key(&server, &kid, &secret).await;
    assert_eq!(status, 200, "{body}");
    let listed = user
        .get(&format!("{keys_of}?service_account_uid=SI0000000001"))
        .await;
    assert_eq!(listed.body[0]["kid"], kid.as_str());
    assert!(listed.body[0].get("secret").is_none());
    // The user's own key list does not include the service account's keys.
    assert_eq!(user.get("/resource/api_keys").await.body, json!([]));

    let code = user.code().await;
    user.call(
        "PUT",
        &format!("{keys_of}/0000000000000000"),
        Some(json!({"service_account_uid": "SI0000000001", "totp_code": code})),
    )
    .await
    .errors(404, &["record.not_found"]);
    let code = user.code().await;
    let put = user
        .call(
            "PUT",
            &format!("{keys_of}/{kid}"),
            Some(json!({"service_account_uid": "SI0000000001", "state": "inactive", "scope": "a", "totp_code": code})),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{:?}", put.body);
    assert_eq!(
        (&put.body["state"], &put.body["scope"]),
        (&json!("inactive"), &json!(["a"]))
    );
    let (status, body) = with_key(&server, &kid, &secret).await;
    assert_eq!(
        (status, body.as_str()),
        (401, r#"{"errors":["authz.apikey_not_active"]}"#)
    );

    user.call(
        "DELETE",
        &format!("{keys_of}/{kid}?service_account_uid=SI0000000002&totp_code=123456"),
        None,
    )
    .await
    .errors(404, &["resource.service_account.doesnt_exist"]);
    let code = user.code().await;
    user.call(
        "DELETE",
        &format!("{keys_of}/{kid}?service_account_uid=SI0000000001&totp_code={code}"),
        None,
    )
    .await
    .assert(204, Value::Null);
    assert!(store.find_api_key(&kid).await.expect("q").is_none());
}

both_backends!(
    service_accounts,
    data_storage,
    users_me_password_and_activity,
    labels,
    otp_and_api_keys,
    otp_failures_are_rate_limited,
    login_with_2fa
);
