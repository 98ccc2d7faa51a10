//! KYC phones, documents and addresses through the real request path (sign-up session cookie,
//! the authz listener mints the bearer, the REST listener serves the call), on both backends.
//! Twilio is replaced by a local axum server speaking its HTTP API (form posts with basic auth,
//! its JSON answers and error bodies).

use crate::common::http;
use crate::{common, support};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Form, State};
use axum::http::{HeaderMap as AxumHeaders, StatusCode as AxumStatus};
use axum::response::IntoResponse;
use axum::routing::post;
use common::{Backend, TestDb, TestServer};
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{SmtpSink, free_port, set_session_cookie, token_in};

const AGENT: &str = "Mozilla/5.0 (kyc test)";
const PASSWORD: &str = "Iequ4geiEWQw";
const SID: &str = "ACfake0000000000000000000000000000";
const TOKEN: &str = "fake-auth-token";

const JPEG: &[u8] = b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00\x01fake jpeg body";
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDRfake png body";
const PDF: &[u8] = b"%PDF-1.7\n%fake pdf body\n%%EOF\n";
const ELF: &[u8] = b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00executable";

#[derive(Debug)]
struct Answer {
    status: StatusCode,
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

/// A signed-up user with its session.
struct Account<'a> {
    server: &'a TestServer,
    cookie: String,
    csrf: String,
    uid: String,
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
        let cookie = set_session_cookie(&response).expect("session cookie");
        let body: Value = response.json().await.expect("json");
        Account {
            server,
            cookie,
            csrf: body["csrf_token"].as_str().expect("csrf").to_owned(),
            uid: body["uid"].as_str().expect("uid").to_owned(),
        }
    }

    /// The bearer the authz listener mints for `method path` with the session cookie.
    async fn bearer(&self, method: &str, path: &str) -> String {
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
        assert_eq!(response.status(), StatusCode::OK, "authz allows {path}");
        response.headers()["authorization"]
            .to_str()
            .expect("ascii")
            .to_owned()
    }

    /// `method path` (under `/api/v2/barong`) with a fresh bearer and a raw body.
    async fn send(&self, method: &str, path: &str, body: Option<(String, Vec<u8>)>) -> Answer {
        let bearer = self.bearer(method, path).await;
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = http()
            .request(method, self.server.url(&format!("/api/v2/barong{path}")))
            .header("authorization", bearer)
            .header("user-agent", AGENT);
        if let Some((content_type, bytes)) = body {
            request = request.header("content-type", content_type).body(bytes);
        }
        let response = request.send().await.expect("call");
        let status = response.status();
        let text = response.text().await.expect("body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Answer { status, body }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Answer {
        let body = body.map(|b| ("application/json".to_owned(), b.to_string().into_bytes()));
        self.send(method, path, body).await
    }

    async fn post(&self, path: &str, body: Value) -> Answer {
        self.call("POST", path, Some(body)).await
    }

    async fn get(&self, path: &str) -> Answer {
        self.call("GET", path, None).await
    }

    async fn upload(&self, path: &str, fields: &[(&str, &str)], files: &[File<'_>]) -> Answer {
        self.send("POST", path, Some(multipart(fields, files)))
            .await
    }
}

/// A file part: (filename, content type, bytes).
type File<'a> = (&'a str, &'a str, &'a [u8]);

/// A multipart/form-data body with text fields and `upload[]` files.
fn multipart(fields: &[(&str, &str)], files: &[File<'_>]) -> (String, Vec<u8>) {
    let boundary = "kycboundary7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    for (filename, content_type, bytes) in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"upload[]\"; \
                 filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

fn start(db: &TestDb, env: &[(&str, &str)]) -> TestServer {
    TestServer::start(db.dir.path(), &db.url, env)
}

/// Every file under `dir` (recursively).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn in_a_year() -> String {
    (chrono::Utc::now() + chrono::Duration::days(365))
        .format("%Y-%m-%d")
        .to_string()
}

// ---- the fake Twilio -------------------------------------------------------------------------

/// What the fake Twilio saw and how it answers.
#[derive(Default)]
struct TwilioState {
    /// (To, From, Body) of every message.
    messages: Vec<(String, String, String)>,
    /// (To, Channel) of every Verify verification.
    verifications: Vec<(String, String)>,
    /// Verify services created (FriendlyName).
    services: Vec<String>,
    /// Twilio error code to answer for a `To` number.
    failures: HashMap<String, i64>,
    /// `To` numbers answered with a 500 and an HTML body.
    broken: Vec<String>,
    /// Pending Verify codes per `To`.
    pending: HashMap<String, String>,
    /// Verify codes checked (`VerificationCheck` calls).
    checks: usize,
}

type Twilio = Arc<Mutex<TwilioState>>;

/// The code the fake Twilio Verify sends.
const VERIFY_CODE: &str = "424242";

fn twilio_error(code: i64) -> axum::response::Response {
    let status = if code == 20404 { 404 } else { 400 };
    (
        AxumStatus::from_u16(status).expect("status"),
        axum::Json(json!({
            "code": code,
            "message": format!("Twilio error {code}"),
            "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
            "status": status,
        })),
    )
        .into_response()
}

fn authorised(headers: &AxumHeaders) -> bool {
    use base64::Engine;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{SID}:{TOKEN}"))
    );
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == expected)
}

/// Answers for a `To` the test made fail, if any.
fn failure_for(state: &TwilioState, to: &str) -> Option<axum::response::Response> {
    if state.broken.iter().any(|b| b == to) {
        return Some((AxumStatus::INTERNAL_SERVER_ERROR, "<html>oops</html>").into_response());
    }
    state.failures.get(to).map(|code| twilio_error(*code))
}

async fn start_twilio() -> (String, Twilio) {
    let state: Twilio = Arc::default();
    let app = Router::new()
        .route(
            "/2010-04-01/Accounts/{sid}/Messages.json",
            post(
                |State(s): State<Twilio>,
                 axum::extract::Path(sid): axum::extract::Path<String>,
                 headers: AxumHeaders,
                 Form(form): Form<HashMap<String, String>>| async move {
                    if !authorised(&headers) || sid != SID {
                        return twilio_error(20003);
                    }
                    let mut s = s.lock().expect("twilio");
                    let to = form.get("To").cloned().unwrap_or_default();
                    if let Some(answer) = failure_for(&s, &to) {
                        return answer;
                    }
                    let body = form.get("Body").cloned().unwrap_or_default();
                    let from = form.get("From").cloned().unwrap_or_default();
                    s.messages.push((to.clone(), from, body.clone()));
                    (
                        AxumStatus::CREATED,
                        axum::Json(json!({"sid": "SMfake", "status": "queued", "to": to, "body": body})),
                    )
                        .into_response()
                },
            ),
        )
        .route(
            "/v2/Services",
            post(
                |State(s): State<Twilio>,
                 headers: AxumHeaders,
                 Form(form): Form<HashMap<String, String>>| async move {
                    if !authorised(&headers) {
                        return twilio_error(20003);
                    }
                    let name = form.get("FriendlyName").cloned().unwrap_or_default();
                    s.lock().expect("twilio").services.push(name.clone());
                    (
                        AxumStatus::CREATED,
                        axum::Json(json!({"sid": "VAfakeservice", "friendly_name": name})),
                    )
                        .into_response()
                },
            ),
        )
        .route(
            "/v2/Services/{service}/Verifications",
            post(
                |State(s): State<Twilio>,
                 axum::extract::Path(service): axum::extract::Path<String>,
                 headers: AxumHeaders,
                 Form(form): Form<HashMap<String, String>>| async move {
                    if !authorised(&headers) || service != "VAfakeservice" {
                        return twilio_error(20404);
                    }
                    let mut s = s.lock().expect("twilio");
                    let to = form.get("To").cloned().unwrap_or_default();
                    if let Some(answer) = failure_for(&s, &to) {
                        return answer;
                    }
                    let channel = form.get("Channel").cloned().unwrap_or_default();
                    s.verifications.push((to.clone(), channel.clone()));
                    s.pending.insert(to.clone(), VERIFY_CODE.to_owned());
                    (
                        AxumStatus::CREATED,
                        axum::Json(json!({"sid": "VEfake", "status": "pending", "to": to, "channel": channel})),
                    )
                        .into_response()
                },
            ),
        )
        .route(
            "/v2/Services/{service}/VerificationCheck",
            post(
                |State(s): State<Twilio>,
                 headers: AxumHeaders,
                 Form(form): Form<HashMap<String, String>>| async move {
                    if !authorised(&headers) {
                        return twilio_error(20003);
                    }
                    let mut s = s.lock().expect("twilio");
                    s.checks += 1;
                    let to = form.get("To").cloned().unwrap_or_default();
                    let code = form.get("Code").cloned().unwrap_or_default();
                    let Some(expected) = s.pending.get(&to).cloned() else {
                        return twilio_error(20404);
                    };
                    let status = if code == expected {
                        s.pending.remove(&to);
                        "approved"
                    } else {
                        "pending"
                    };
                    axum::Json(json!({"sid": "VEfake", "status": status, "to": to, "valid": status == "approved"}))
                        .into_response()
                },
            ),
        )
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), state)
}

fn twilio_env<'a>(mode: &'a str, url: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("BARONG_PHONE_VERIFICATION", mode),
        ("BARONG_TWILIO_ACCOUNT_SID", SID),
        ("BARONG_TWILIO_AUTH_TOKEN", TOKEN),
        ("BARONG_TWILIO_API_URL", url),
        ("BARONG_TWILIO_VERIFY_URL", url),
        ("BARONG_PHONE_RESEND_INTERVAL", "0"),
        ("BARONG_PHONE_MAX_CODES_PER_HOUR", "100"),
    ]
}

// ---- phones ----------------------------------------------------------------------------------

async fn phones_with_mock_provider(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = start(
        &db,
        &[
            ("BARONG_PHONE_RESEND_INTERVAL", "0"),
            ("BARONG_PHONE_MAX_CODES_PER_HOUR", "3"),
        ],
    );
    let user = Account::sign_up(&server, "phones@barong.test").await;
    user.get("/resource/phones").await.assert(200, json!([]));

    // Parameters.
    user.post("/resource/phones", json!({})).await.errors(
        422,
        &[
            "resource.phone.missing_phone_number",
            "resource.phone.empty_phone_number",
        ],
    );
    user.post("/resource/phones", json!({"phone_number": " "}))
        .await
        .errors(422, &["resource.phone.empty_phone_number"]);
    user.post(
        "/resource/phones",
        json!({"phone_number": "+447418084106", "channel": "fax"}),
    )
    .await
    .errors(422, &["resource.phone.invalid_channel"]);
    user.post("/resource/phones", json!({"phone_number": "12345"}))
        .await
        .errors(400, &["resource.phone.invalid_num"]);

    // Added (normalised: trunk prefix dropped), then refused twice.
    user.post(
        "/resource/phones",
        json!({"phone_number": "+44 07418084106"}),
    )
    .await
    .assert(
        201,
        json!({"message": "Code was sent successfully via sms"}),
    );
    user.post("/resource/phones", json!({"phone_number": "447418084106"}))
        .await
        .errors(400, &["resource.phone.exists"]);
    let listed = user.get("/resource/phones").await;
    listed.assert(
        200,
        json!([{"country": "GB", "number": "44******4106", "validated_at": null}]),
    );
    // The first user is the superadmin: the admin view of the same user is unmasked.
    let admin_view = user.get(&format!("/admin/users/{}", user.uid)).await;
    assert_eq!(admin_view.status, StatusCode::OK, "{}", admin_view.body);
    assert_eq!(
        admin_view.body["phones"],
        json!([{"country": "GB", "number": "447418084106", "validated_at": null}])
    );
    assert_eq!(admin_view.body["documents"], json!([]));

    // Resend: the same phone; unknown numbers are 404; the hourly cap (3) answers 429.
    user.post(
        "/resource/phones/send_code",
        json!({"phone_number": "+447418084106", "channel": "call"}),
    )
    .await
    .assert(
        201,
        json!({"message": "Code was sent successfully via call"}),
    );
    user.post(
        "/resource/phones/send_code",
        json!({"phone_number": "+79225551234"}),
    )
    .await
    .errors(404, &["resource.phone.doesnt_exist"]);
    user.post("/resource/phones/send_code", json!({}))
        .await
        .errors(
            422,
            &[
                "resource.phone.missing_phone_number",
                "resource.phone.empty_phone_number",
            ],
        );
    user.post(
        "/resource/phones/send_code",
        json!({"phone_number": "+447418084106"}),
    )
    .await
    .assert(
        201,
        json!({"message": "Code was sent successfully via sms"}),
    );
    user.post(
        "/resource/phones/send_code",
        json!({"phone_number": "+447418084106"}),
    )
    .await
    .errors(429, &["resource.phone.too_many_codes"]);

    // Verify: parameters, unknown phone, then the mock accepts any code.
    user.post("/resource/phones/verify", json!({}))
        .await
        .errors(
            422,
            &[
                "resource.phone.missing_phone_number",
                "resource.phone.empty_phone_number",
                "resource.phone.missing_verification_code",
                "resource.phone.empty_verification_code",
            ],
        );
    user.post(
        "/resource/phones/verify",
        json!({"phone_number": "+79225551234", "verification_code": "12345"}),
    )
    .await
    .errors(404, &["resource.phone.doesnt_exist"]);
    let verified = user
        .post(
            "/resource/phones/verify",
            json!({"phone_number": "+447418084106", "verification_code": "00000"}),
        )
        .await;
    assert_eq!(verified.status, StatusCode::CREATED, "{:?}", verified.body);
    assert_eq!(verified.body["uid"], user.uid.as_str());
    assert_eq!(verified.body["phones"][0]["number"], "44******4106");
    assert!(verified.body["phones"][0]["validated_at"].is_string());
    let labels = verified.body["labels"].as_array().expect("labels");
    assert!(
        labels
            .iter()
            .any(|l| l["key"] == "phone" && l["value"] == "verified" && l["scope"] == "private"),
        "{labels:?}"
    );
    // The first user is an e-mail-verified superadmin (level 1): the phone makes it 2.
    assert_eq!(verified.body["level"], 2);

    // A verified number: refused for everyone, its owner included.
    user.post(
        "/resource/phones/verify",
        json!({"phone_number": "+447418084106", "verification_code": "00000"}),
    )
    .await
    .errors(400, &["resource.phone.number_exist"]);
    let other = Account::sign_up(&server, "other@barong.test").await;
    other
        .post("/resource/phones", json!({"phone_number": "+447418084106"}))
        .await
        .errors(400, &["resource.phone.number_exist"]);
    // Unverified numbers may be shared.
    other
        .post("/resource/phones", json!({"phone_number": "+79225551234"}))
        .await
        .assert(
            201,
            json!({"message": "Code was sent successfully via sms"}),
        );
    user.post("/resource/phones", json!({"phone_number": "+79225551234"}))
        .await
        .assert(
            201,
            json!({"message": "Code was sent successfully via sms"}),
        );
    assert_eq!(
        other.get("/resource/phones").await.body[0]["number"],
        "7******1234"
    );
    // Numbers are never logged.
    let logs = server.log_text();
    assert!(!logs.contains("7418084106") && !logs.contains("9225551234"));
}

async fn phones_with_twilio_sms(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (url, twilio) = start_twilio().await;
    let server = start(&db, &twilio_env("twilio_sms", &url));
    let user = Account::sign_up(&server, "sms@barong.test").await;

    user.post("/resource/phones", json!({"phone_number": "+79225551234"}))
        .await
        .assert(
            201,
            json!({"message": "Code was sent successfully via sms"}),
        );
    let (to, from, body) = twilio.lock().expect("twilio").messages[0].clone();
    assert_eq!(
        (to.as_str(), from.as_str()),
        ("+79225551234", "+15005550000")
    );
    let code = body
        .strip_prefix("Your verification code for Barong: ")
        .expect("template")
        .to_owned();
    assert_eq!(code.len(), 5);

    // send_code sends the same code.
    user.post(
        "/resource/phones/send_code",
        json!({"phone_number": "+79225551234"}),
    )
    .await
    .assert(
        201,
        json!({"message": "Code was sent successfully via sms"}),
    );
    assert_eq!(twilio.lock().expect("twilio").messages[1].2, body);

    // A wrong code, then the right one.
    let wrong = if code == "11111" { "22222" } else { "11111" };
    user.post(
        "/resource/phones/verify",
        json!({"phone_number": "+79225551234", "verification_code": wrong}),
    )
    .await
    .errors(404, &["resource.phone.verification_invalid"]);
    let verified = user
        .post(
            "/resource/phones/verify",
            json!({"phone_number": "+79225551234", "verification_code": code}),
        )
        .await;
    assert_eq!(verified.status, StatusCode::CREATED, "{:?}", verified.body);

    // Twilio's errors become Barong's keys, never a 500. The phone stays (as in Barong), so
    // each error is seen again through send_code.
    let other = Account::sign_up(&server, "sms2@barong.test").await;
    let number = "+380971232322";
    let cases = [
        (21614, "resource.phone.num_not_valid"),
        (21612, "resource.phone.num_not_reachable"),
        (21618, "resource.phone.sms_content_invalid"),
        (21610, "resource.phone.unsubscribed_recipient"),
        (30008, "resource.phone.twilio_unexpected"),
    ];
    twilio
        .lock()
        .expect("twilio")
        .failures
        .insert(number.into(), cases[0].0);
    other
        .post("/resource/phones", json!({"phone_number": number}))
        .await
        .errors(422, &[cases[0].1]);
    for (code, key) in cases {
        twilio
            .lock()
            .expect("twilio")
            .failures
            .insert(number.into(), code);
        other
            .post(
                "/resource/phones/send_code",
                json!({"phone_number": number}),
            )
            .await
            .errors(422, &[key]);
    }
    twilio.lock().expect("twilio").failures.clear();
    twilio.lock().expect("twilio").broken.push(number.into());
    other
        .post(
            "/resource/phones/send_code",
            json!({"phone_number": number}),
        )
        .await
        .errors(422, &["resource.phone.twilio_unexpected"]);

    // Guessing: after 5 wrong codes even the right one is refused for a while.
    twilio.lock().expect("twilio").broken.clear();
    other
        .post(
            "/resource/phones/send_code",
            json!({"phone_number": number}),
        )
        .await
        .assert(
            201,
            json!({"message": "Code was sent successfully via sms"}),
        );
    let body = twilio
        .lock()
        .expect("twilio")
        .messages
        .last()
        .expect("sms")
        .2
        .clone();
    let right = body.rsplit(' ').next().expect("code").to_owned();
    let wrong = if right == "11111" { "22222" } else { "11111" };
    for _ in 0..5 {
        other
            .post(
                "/resource/phones/verify",
                json!({"phone_number": number, "verification_code": wrong}),
            )
            .await
            .errors(404, &["resource.phone.verification_invalid"]);
    }
    other
        .post(
            "/resource/phones/verify",
            json!({"phone_number": number, "verification_code": right}),
        )
        .await
        .errors(404, &["resource.phone.verification_invalid"]);
}

/// 100 wrong phone codes sent at once: the provider checks 5 (`BARONG_RATE_LIMIT_OTP`), the
/// rest are refused before it sees them.
async fn phone_code_burst(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (url, twilio) = start_twilio().await;
    let mut env = twilio_env("twilio_verify", &url);
    env.push(("BARONG_RATE_LIMIT_OTP", "5/300"));
    let server = start(&db, &env);
    let user = Account::sign_up(&server, "burst@barong.test").await;
    user.post("/resource/phones", json!({"phone_number": "+201112341923"}))
        .await
        .assert(
            201,
            json!({"message": "Code was sent successfully via sms"}),
        );
    let wrong = json!({"phone_number": "+201112341923", "verification_code": "000000"});
    let answers = futures_util::future::join_all(
        (0..100).map(|_| user.post("/resource/phones/verify", wrong.clone())),
    )
    .await;
    for answer in answers {
        answer.errors(404, &["resource.phone.verification_invalid"]);
    }
    assert_eq!(twilio.lock().expect("twilio").checks, 5);
}

async fn phones_with_twilio_verify(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (url, twilio) = start_twilio().await;
    let server = start(&db, &twilio_env("twilio_verify", &url));
    let user = Account::sign_up(&server, "verify@barong.test").await;

    user.post(
        "/resource/phones",
        json!({"phone_number": "+201112341923", "channel": "call"}),
    )
    .await
    .assert(
        201,
        json!({"message": "Code was sent successfully via call"}),
    );
    {
        let t = twilio.lock().expect("twilio");
        assert_eq!(t.services, ["Barong"], "service created on first use");
        assert_eq!(
            t.verifications,
            [("+201112341923".to_owned(), "call".to_owned())]
        );
    }
    user.post(
        "/resource/phones/verify",
        json!({"phone_number": "+201112341923", "verification_code": "000000"}),
    )
    .await
    .errors(404, &["resource.phone.verification_invalid"]);
    let verified = user
        .post(
            "/resource/phones/verify",
            json!({"phone_number": "+201112341923", "verification_code": VERIFY_CODE}),
        )
        .await;
    assert_eq!(verified.status, StatusCode::CREATED, "{:?}", verified.body);
    assert_eq!(verified.body["phones"][0]["number"], "20******1923");

    // No pending verification (Twilio's 404, code 20404): the code is invalid, not a 500.
    user.post("/resource/phones", json!({"phone_number": "+79225551234"}))
        .await
        .assert(
            201,
            json!({"message": "Code was sent successfully via sms"}),
        );
    twilio.lock().expect("twilio").pending.clear();
    user.post(
        "/resource/phones/verify",
        json!({"phone_number": "+79225551234", "verification_code": VERIFY_CODE}),
    )
    .await
    .errors(404, &["resource.phone.verification_invalid"]);
    twilio
        .lock()
        .expect("twilio")
        .failures
        .insert("+380971232322".into(), 21612);
    user.post("/resource/phones", json!({"phone_number": "+380971232322"}))
        .await
        .errors(422, &["resource.phone.num_not_reachable"]);
}

async fn level_rises_with_email_then_phone(backend: Backend) {
    let db = TestDb::new(backend).await;
    let sink = SmtpSink::start(free_port(), &db.dir.path().join("mail"));
    let port = sink.port.to_string();
    let server = start(
        &db,
        &[
            ("BARONG_SMTP_HOST", "127.0.0.1"),
            ("BARONG_SMTP_PORT", &port),
            ("BARONG_MAIL_POLL_INTERVAL", "200"),
        ],
    );
    let _admin = Account::sign_up(&server, "first@barong.test").await;
    let mut user = Account::sign_up(&server, "level@barong.test").await;
    let me = user.get("/resource/users/me").await;
    assert_eq!(
        (me.body["level"].clone(), me.body["state"].clone()),
        (json!(0), json!("pending"))
    );

    // E-mail: level 1.
    let mail = sink
        .wait_for("level@barong.test", "Registration Confirmation")
        .await;
    let token = token_in(&mail.body, "confirmation_token");
    let confirmed = http()
        .post(server.url("/api/v2/barong/identity/users/email/confirm_code"))
        .header("user-agent", AGENT)
        .json(&json!({ "token": token }))
        .send()
        .await
        .expect("confirm");
    assert_eq!(confirmed.status(), StatusCode::CREATED);
    user.cookie = set_session_cookie(&confirmed).expect("cookie");
    let body: Value = confirmed.json().await.expect("json");
    user.csrf = body["csrf_token"].as_str().expect("csrf").to_owned();
    assert_eq!(body["level"], 1);

    // Phone: level 2.
    user.post("/resource/phones", json!({"phone_number": "+79225551234"}))
        .await
        .assert(
            201,
            json!({"message": "Code was sent successfully via sms"}),
        );
    let verified = user
        .post(
            "/resource/phones/verify",
            json!({"phone_number": "+79225551234", "verification_code": "12345"}),
        )
        .await;
    assert_eq!(verified.body["level"], 2, "{:?}", verified.body);
    let me = user.get("/resource/users/me").await;
    assert_eq!(
        (me.body["level"].clone(), me.body["state"].clone()),
        (json!(2), json!("active"))
    );
    sink.stop();
}

// ---- documents and addresses -----------------------------------------------------------------

async fn documents_rules_and_types(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = start(
        &db,
        &[
            ("BARONG_KYC_PROVIDER", "local"),
            ("BARONG_DOC_NUM_LIMIT", "4"),
        ],
    );
    let uploads = db.dir.path().join("uploads");
    let user = Account::sign_up(&server, "docs@barong.test").await;
    let expire = in_a_year();
    user.get("/resource/documents").await.assert(200, json!([]));

    // Parameters (a JSON body has no file).
    user.post("/resource/documents", json!({})).await.errors(
        422,
        &[
            "resource.document.missing_doc_type",
            "resource.document.empty_doc_type",
            "resource.document.missing_doc_number",
            "resource.document.empty_doc_number",
            "resource.document.missing_upload",
        ],
    );
    let base = |extra: &[(&'static str, &'static str)]| {
        let mut fields = vec![("doc_type", "Passport"), ("doc_number", "AB123456")];
        fields.extend_from_slice(extra);
        fields
    };
    let jpeg: File = ("passport.jpg", "image/jpeg", JPEG);
    user.upload("/resource/documents", &base(&[]), &[jpeg])
        .await
        .errors(422, &["resource.documents.invalid_format"]);
    // `upload[]` as a plain form value, not a file: the upload is blank, nothing is stored.
    user.upload(
        "/resource/documents",
        &[
            ("doc_type", "Passport"),
            ("doc_number", "AB123456"),
            ("doc_expire", expire.as_str()),
            ("upload[]", "not a file"),
        ],
        &[],
    )
    .await
    .errors(422, &["upload.blank"]);
    user.get("/resource/documents").await.assert(200, json!([]));
    user.upload(
        "/resource/documents",
        &base(&[("doc_expire", "2001-01-01")]),
        &[jpeg],
    )
    .await
    .errors(422, &["resource.documents.already_expired"]);
    user.upload(
        "/resource/documents",
        &base(&[("doc_expire", "soon")]),
        &[jpeg],
    )
    .await
    .errors(422, &["resource.documents.expire_not_a_date"]);
    let expire_field: &'static str = Box::leak(expire.clone().into_boxed_str());
    let valid = |extra: &[(&'static str, &'static str)]| {
        let mut fields = base(&[("doc_expire", expire_field)]);
        fields.extend_from_slice(extra);
        fields
    };
    user.upload(
        "/resource/documents",
        &valid(&[("doc_category", "left")]),
        &[jpeg],
    )
    .await
    .errors(422, &["resource.documents.doc_category"]);
    let mut fields = valid(&[]);
    fields[0] = ("doc_type", "Visa");
    fields[1] = ("doc_number", "AB_12");
    fields.push(("metadata", "{nope"));
    user.upload("/resource/documents", &fields, &[jpeg])
        .await
        .errors(
            422,
            &[
                "doc_type.inclusion",
                "metadata.invalid_format",
                "doc_number.invalid",
            ],
        );

    // Refused files: a disguised executable, a wrong extension.
    let elf: File = ("selfie.jpg", "image/jpeg", ELF);
    user.upload("/resource/documents", &valid(&[]), &[elf])
        .await
        .errors(
            422,
            &[
                "upload.You are not allowed to upload \"application/octet-stream\" files, \
                 allowed types: image/jpeg, image/png, application/pdf",
                "upload.blank",
            ],
        );
    user.upload("/resource/documents", &valid(&[]), &[("tool.exe", "image/jpeg", JPEG)])
        .await
        .errors(
            422,
            &[
                "upload.You are not allowed to upload \"exe\" files, allowed types: jpg, jpeg, png, pdf",
                "upload.blank",
            ],
        );
    assert!(
        files_under(&uploads).is_empty(),
        "refused files left nothing"
    );

    // One file of each allowed type (the PNG sent as "image/jpeg" and named .jpg is stored as
    // what it is).
    let created = user
        .upload(
            "/resource/documents",
            &valid(&[("doc_category", "front_side"), ("metadata", "{\"a\":1}")]),
            &[
                jpeg,
                ("scan.jpg", "image/jpeg", PNG),
                ("scan.pdf", "application/pdf", PDF),
            ],
        )
        .await;
    created.assert(201, json!(201));
    let listed = user.get("/resource/documents").await;
    assert_eq!(listed.status, StatusCode::OK);
    let docs = listed.body.as_array().expect("array");
    assert_eq!(docs.len(), 3);
    let mut stored = files_under(&uploads);
    stored.sort();
    assert_eq!(stored.len(), 3);
    for (doc, (ext, bytes)) in docs.iter().zip([("jpg", JPEG), ("png", PNG), ("pdf", PDF)]) {
        assert_eq!(doc["doc_type"], "Passport");
        assert_eq!(doc["doc_number"], "AB****56");
        assert_eq!(doc["doc_expire"], expire.as_str());
        assert_eq!(doc.as_object().expect("object").len(), 4, "{doc}");
        let url = doc["upload"]["url"].as_str().expect("url");
        assert!(url.ends_with(&format!(".{ext}")), "{url}");
        assert!(url.contains(&format!("/documents/{}/", user.uid)), "{url}");
        let path = stored
            .iter()
            .find(|p| url.ends_with(p.file_name().and_then(|n| n.to_str()).unwrap_or("-")))
            .expect("file of the document");
        assert_eq!(std::fs::read(path).expect("read"), bytes);
    }
    let labels = user.get("/resource/labels").await;
    assert!(
        labels
            .body
            .as_array()
            .expect("labels")
            .iter()
            .any(|l| l["key"] == "document" && l["value"] == "pending" && l["scope"] == "private"),
        "{:?}",
        labels.body
    );

    // Limits (BARONG_DOC_NUM_LIMIT=4, 3 documents): 2 more would pass it, 1 does not.
    user.upload("/resource/documents", &valid(&[]), &[jpeg, jpeg])
        .await
        .errors(400, &["resource.documents.limit_will_be_reached"]);
    user.upload("/resource/documents", &valid(&[]), &[jpeg])
        .await
        .assert(201, json!(201));
    assert_eq!(files_under(&uploads).len(), 4);
    // With a lower limit the user is already past it.
    let strict = start(
        &db,
        &[
            ("BARONG_KYC_PROVIDER", "local"),
            ("BARONG_DOC_NUM_LIMIT", "2"),
        ],
    );
    let again = Account {
        server: &strict,
        cookie: user.cookie.clone(),
        csrf: user.csrf.clone(),
        uid: user.uid.clone(),
    };
    again
        .upload("/resource/documents", &valid(&[]), &[jpeg])
        .await
        .errors(400, &["resource.documents.limit_reached"]);
    assert_eq!(
        files_under(&uploads).len(),
        4,
        "refused upload left no file"
    );

    // Addresses: Barong passes no expiry, so with BARONG_REQUIRED_DOCS_EXPIRE they fail.
    user.post("/resource/addresses", json!({})).await.errors(
        422,
        &[
            "resource.address.missing_country",
            "resource.address.empty_country",
            "resource.address.missing_address",
            "resource.address.empty_address",
            "resource.address.missing_upload",
            "resource.address.missing_city",
            "resource.address.missing_postcode",
        ],
    );
    let address = [
        ("country", "GB"),
        ("address", "1 Main street"),
        ("city", "London"),
        ("postcode", ""),
    ];
    user.upload(
        "/resource/addresses",
        &address,
        &[("bill.pdf", "application/pdf", PDF)],
    )
    .await
    .errors(422, &["doc_expire.blank"]);
    assert_eq!(files_under(&uploads).len(), 4);
}

async fn addresses_and_clear_text_at_rest(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = start(&db, &[("BARONG_REQUIRED_DOCS_EXPIRE", "false")]);
    let user = Account::sign_up(&server, "address@barong.test").await;
    let address = [
        ("country", "GB"),
        ("address", "1 Main street"),
        ("city", "London"),
        ("postcode", "N1 9GU"),
    ];
    user.upload(
        "/resource/addresses",
        &address,
        &[("bill.pdf", "application/pdf", PDF)],
    )
    .await
    .assert(201, json!(201));
    let docs = user.get("/resource/documents").await;
    assert_eq!(docs.body[0]["doc_type"], "Address");
    assert_eq!(docs.body[0]["doc_number"], Value::Null);
    assert_eq!(docs.body[0]["doc_expire"], Value::Null);
    let labels = user.get("/resource/labels").await.body;
    assert!(
        labels
            .as_array()
            .expect("labels")
            .iter()
            .any(|l| l["key"] == "address" && l["value"] == "pending"),
        "{labels:?}"
    );
    // A document without expiry is fine here; kycaid marks nothing for a lone passport page.
    user.upload(
        "/resource/documents",
        &[("doc_type", "Passport"), ("doc_number", "ZX9876543")],
        &[("p.png", "image/png", PNG)],
    )
    .await
    .assert(201, json!(201));
    user.post("/resource/phones", json!({"phone_number": "+79225551234"}))
        .await
        .assert(
            201,
            json!({"message": "Code was sent successfully via sms"}),
        );

    // Nothing in the database holds the numbers in clear.
    let dump = db.raw_text().await;
    assert!(dump.contains("v1:"), "the encrypted values are there");
    for secret in ["79225551234", "9225551234", "ZX9876543", "zx9876543"] {
        assert!(
            !dump.contains(secret),
            "{secret} found in clear in the database"
        );
    }
    let logs = server.log_text();
    assert!(!logs.contains("9225551234") && !logs.contains("ZX9876543"));
}

/// `VmRSS` and `VmHWM` of a process, in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("field")
    };
    (field("VmRSS:"), field("VmHWM:"))
}

async fn oversized_and_broken_uploads_leave_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = start(&db, &[("BARONG_REQUIRED_DOCS_EXPIRE", "false")]);
    let uploads = db.dir.path().join("uploads");
    let user = Account::sign_up(&server, "big@barong.test").await;
    let fields = [("doc_type", "Passport"), ("doc_number", "AB123456")];
    // Warm up the path (allocator arenas, connections) with one small upload.
    user.upload(
        "/resource/documents",
        &fields,
        &[("a.jpg", "image/jpeg", JPEG)],
    )
    .await
    .assert(201, json!(201));
    let before = files_under(&uploads);
    assert_eq!(before.len(), 1);

    // 50 MiB against the 10 MiB cap: refused, and the server never held it.
    let mut big = JPEG.to_vec();
    big.resize(50 * 1024 * 1024, 0x5A);
    let (rss_before, hwm_before) = memory_kib(server.pid());
    let answer = user
        .upload(
            "/resource/documents",
            &fields,
            &[("big.jpg", "image/jpeg", &big)],
        )
        .await;
    let (rss_after, hwm_after) = memory_kib(server.pid());
    answer.errors(
        422,
        &["upload.File size should be less than 10 MB", "upload.blank"],
    );
    eprintln!(
        "50 MiB upload against a 10 MiB cap: VmRSS {rss_before} KiB before, {rss_after} KiB \
         after; VmHWM {hwm_before} KiB before, {hwm_after} KiB after"
    );
    assert!(
        rss_after < rss_before + 20 * 1024,
        "RSS grew by {} KiB",
        rss_after.saturating_sub(rss_before)
    );
    assert!(
        hwm_after < rss_before + 30 * 1024,
        "peak RSS {hwm_after} KiB against {rss_before} KiB before"
    );
    assert_eq!(
        files_under(&uploads),
        before,
        "no file, no staging file left"
    );

    // A valid file followed by a refused one: neither row nor file.
    user.upload(
        "/resource/documents",
        &fields,
        &[
            ("ok.jpg", "image/jpeg", JPEG),
            ("bad.png", "image/png", ELF),
        ],
    )
    .await
    .errors(
        422,
        &[
            "upload.You are not allowed to upload \"application/octet-stream\" files, \
             allowed types: image/jpeg, image/png, application/pdf",
            "upload.blank",
        ],
    );
    // Valid files with a request refused afterwards (unknown type): deleted again.
    user.upload(
        "/resource/documents",
        &[("doc_type", "Visa"), ("doc_number", "AB123456")],
        &[
            ("ok.jpg", "image/jpeg", JPEG),
            ("ok.pdf", "application/pdf", PDF),
        ],
    )
    .await
    .errors(422, &["doc_type.inclusion"]);
    // A body cut off in the middle of a file (no closing boundary): a 400, nothing kept.
    let (content_type, mut body) =
        multipart(&fields, &[("cut.jpg", "image/jpeg", &big[..300_000])]);
    body.truncate(body.len() - 100);
    let cut = user
        .send("POST", "/resource/documents", Some((content_type, body)))
        .await;
    assert_eq!(cut.status, StatusCode::BAD_REQUEST, "{:?}", cut.body);
    assert_eq!(files_under(&uploads), before);
    assert_eq!(
        user.get("/resource/documents")
            .await
            .body
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}

both_backends!(
    phones_with_mock_provider,
    phones_with_twilio_sms,
    phones_with_twilio_verify,
    phone_code_burst,
    level_rises_with_email_then_phone,
    documents_rules_and_types,
    addresses_and_clear_text_at_rest,
    oversized_and_broken_uploads_leave_nothing,
);
