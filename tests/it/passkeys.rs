//! Passkeys (WebAuthn) through the real request path, on both backends: a software
//! authenticator (PyPI `fido2`, `tests/support/soft_authenticator.py`) answers the server's
//! options as a browser and a platform authenticator would; the resource calls carry the
//! bearer the authz listener mints from the session. Registration, list, rename, delete (the
//! last one needs proof), login with a passkey as the second factor and alone, clone detection,
//! replayed and expired challenges, wrong origins and relying-party ids, two instances.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::{common, support};
use common::{Backend, TestDb, TestServer, barong_command};
use serde_json::{Value, json};

const PASSWORD: &str = "Iequ4geiEWQw";
const AGENT: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
const RP_ID: &str = "exchange.test";
const ORIGIN: &str = "https://exchange.test";

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

fn start(db: &TestDb, more: &[(&str, &str)]) -> TestServer {
    let mut env = vec![
        ("BARONG_PASSKEY_RP_ID", RP_ID),
        ("BARONG_PASSKEY_ORIGINS", ORIGIN),
    ];
    env.extend_from_slice(more);
    TestServer::start(db.dir.path(), &db.url, &env)
}

/// `barong users create`: an active member.
fn create_user(db: &TestDb, email: &str) {
    let output = barong_command(db.dir.path(), &db.url)
        .args(["users", "create", "--email", email, "--password", PASSWORD])
        .args(["--role", "member"])
        .output()
        .expect("run barong users create");
    assert!(output.status.success(), "{output:?}");
}

/// The software authenticator: one request, the credential it answers.
fn authenticator(request: Value) -> Value {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support/soft_authenticator.py");
    let mut child = Command::new(support::python())
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python with fido2 (scripts/test installs it into .venv)");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(request.to_string().as_bytes())
            .expect("write request");
    }
    let output = child.wait_with_output().expect("authenticator");
    assert!(output.status.success(), "soft authenticator failed");
    serde_json::from_slice(&output.stdout).expect("credential json")
}

/// An authenticator holding one credential (its key file in the test's directory).
struct Authenticator {
    state: std::path::PathBuf,
}

impl Authenticator {
    fn new(db: &TestDb, name: &str) -> Authenticator {
        Authenticator {
            state: db.dir.path().join(format!("{name}.json")),
        }
    }

    fn create(&self, options: &Value, extra: Value) -> Value {
        let mut request = json!({
            "op": "create",
            "options": options["publicKey"],
            "origin": ORIGIN,
            "state": self.state,
        });
        merge(&mut request, extra);
        authenticator(request)
    }

    fn get(&self, options: &Value, extra: Value) -> Value {
        let mut request = json!({
            "op": "get",
            "options": options["publicKey"],
            "origin": ORIGIN,
            "state": self.state,
        });
        merge(&mut request, extra);
        authenticator(request)
    }
}

fn merge(request: &mut Value, extra: Value) {
    if let (Some(request), Value::Object(extra)) = (request.as_object_mut(), extra) {
        request.extend(extra);
    }
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Answer {
    async fn read(response: reqwest::Response) -> Answer {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer {
            status,
            headers,
            body,
        }
    }

    #[track_caller]
    fn errors(&self, status: u16, key: &str) {
        assert_eq!(
            (self.status, &self.body),
            (status, &json!({ "errors": [key] })),
            "unexpected answer"
        );
    }

    #[track_caller]
    fn status(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "{}", self.body);
        &self.body
    }
}

/// `POST /api/v2/barong/identity/<path>` with a JSON body.
async fn identity(server: &TestServer, path: &str, body: Value) -> Answer {
    let response = http()
        .post(server.url(&format!("/api/v2/barong/identity/{path}")))
        .header("user-agent", AGENT)
        .json(&body)
        .send()
        .await
        .expect("identity call");
    Answer::read(response).await
}

/// A logged-in browser.
struct Browser {
    cookie: String,
    csrf: String,
}

impl Browser {
    fn of(answer: &Answer) -> Browser {
        assert_eq!(answer.status, 200, "{}", answer.body);
        let cookie = answer
            .headers
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| v.strip_prefix("_barong_session="))
            .map(|v| v.split(';').next().unwrap_or_default().to_owned())
            .expect("session cookie");
        Browser {
            cookie,
            csrf: answer.body["csrf_token"].as_str().expect("csrf").to_owned(),
        }
    }

    async fn login(server: &TestServer, email: &str) -> Browser {
        let answer = identity(
            server,
            "sessions",
            json!({"email": email, "password": PASSWORD}),
        )
        .await;
        Browser::of(&answer)
    }

    /// `method /api/v2/barong/resource<path>` as a gateway forwards it: the authz decision
    /// mints the bearer from the cookie, then the REST call.
    async fn call(&self, server: &TestServer, method: &str, path: &str, body: Value) -> Answer {
        let decision = http()
            .get(format!(
                "{}/api/v2/auth/api/v2/barong/resource{path}",
                server.authz
            ))
            .header("x-original-method", method)
            .header("cookie", format!("_barong_session={}", self.cookie))
            .header("x-csrf-token", &self.csrf)
            .header("user-agent", AGENT)
            .send()
            .await
            .expect("authz");
        assert_eq!(decision.status(), 200, "authz refused {method} {path}");
        let bearer = decision.headers()["authorization"]
            .to_str()
            .expect("ascii")
            .to_owned();
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = http()
            .request(
                method,
                server.url(&format!("/api/v2/barong/resource{path}")),
            )
            .header("authorization", bearer)
            .header("user-agent", AGENT)
            .header("cookie", format!("_barong_session={}", self.cookie));
        if !body.is_null() {
            request = request.json(&body);
        }
        Answer::read(request.send().await.expect("rest call")).await
    }

    /// Registers a passkey held by `key`; the stored passkey.
    async fn register(&self, server: &TestServer, key: &Authenticator, name: &str) -> Value {
        let options = self
            .call(server, "POST", "/passkeys/options", Value::Null)
            .await;
        let credential = key.create(options.status(201), json!({}));
        let created = self
            .call(
                server,
                "POST",
                "/passkeys",
                json!({"credential": credential, "name": name}),
            )
            .await;
        created.status(201).clone()
    }

    async fn authenticated_with(&self, server: &TestServer) -> String {
        let sessions = self.call(server, "GET", "/sessions", Value::Null).await;
        let sessions = sessions.status(200).as_array().expect("sessions").clone();
        let current = sessions
            .iter()
            .find(|s| s["current"] == json!(true))
            .expect("the current session");
        current["authenticated_with"]
            .as_str()
            .expect("method")
            .to_owned()
    }
}

/// The second step of a login: options for the password, the authenticator's assertion.
async fn login_options(server: &TestServer, email: &str) -> Answer {
    identity(
        server,
        "sessions/passkey/options",
        json!({"email": email, "password": PASSWORD}),
    )
    .await
}

async fn finish_login(server: &TestServer, credential: &Value) -> Answer {
    identity(
        server,
        "sessions/passkey",
        json!({"credential": credential}),
    )
    .await
}

async fn register_list_rename_delete(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = start(&db, &[]);
    create_user(&db, "alice@barong.test");
    let alice = Browser::login(&server, "alice@barong.test").await;
    let options = alice
        .call(&server, "POST", "/passkeys/options", Value::Null)
        .await;
    let public_key = &options.status(201)["publicKey"];
    assert_eq!(public_key["rp"]["id"], RP_ID);
    assert_eq!(
        public_key["authenticatorSelection"]["residentKey"],
        "preferred"
    );
    assert_eq!(
        public_key["authenticatorSelection"]["userVerification"],
        "required"
    );
    let laptop = Authenticator::new(&db, "laptop");
    let credential = laptop.create(&options.body, json!({}));
    let register = json!({"credential": credential, "name": "  Laptop "});
    let first = alice
        .call(&server, "POST", "/passkeys", register.clone())
        .await;
    let first = first.status(201).clone();
    assert_eq!(first["name"], "Laptop");
    assert_eq!(first["last_used_at"], Value::Null);
    // The same answer again: its challenge was taken by the first.
    alice
        .call(&server, "POST", "/passkeys", register)
        .await
        .errors(422, "resource.passkey.invalid_challenge");
    // Answers for another origin or another relying party are refused, and use up the challenge.
    for extra in [
        json!({"origin": "https://evil.test"}),
        json!({"origin": "https://exchange.test:8443"}),
        json!({"rp_id": "evil.test"}),
    ] {
        let options = alice
            .call(&server, "POST", "/passkeys/options", Value::Null)
            .await;
        let other = Authenticator::new(&db, "other");
        let credential = other.create(options.status(201), extra.clone());
        alice
            .call(
                &server,
                "POST",
                "/passkeys",
                json!({"credential": credential}),
            )
            .await
            .errors(422, "resource.passkey.invalid_credential");
    }
    alice
        .call(
            &server,
            "POST",
            "/passkeys",
            json!({"credential": {"id": "x"}}),
        )
        .await
        .errors(422, "resource.passkey.invalid_credential");
    alice
        .call(&server, "POST", "/passkeys", json!({}))
        .await
        .errors(422, "resource.passkey.missing_credential");
    let phone = Authenticator::new(&db, "phone");
    let second = alice.register(&server, &phone, "Phone").await;
    let list = alice.call(&server, "GET", "/passkeys", Value::Null).await;
    let names: Vec<&str> = list
        .status(200)
        .as_array()
        .expect("list")
        .iter()
        .map(|p| p["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["Laptop", "Phone"]);
    assert!(list.body[0]["created_at"].is_string(), "{}", list.body);
    assert!(
        list.body[0].get("credential").is_none(),
        "no key material is shown"
    );
    let path = format!("/passkeys/{}", second["id"]);
    let renamed = alice
        .call(&server, "PATCH", &path, json!({"name": "Work phone"}))
        .await;
    assert_eq!(renamed.status(200)["name"], "Work phone");
    alice
        .call(&server, "PATCH", &path, json!({"name": " "}))
        .await
        .errors(422, "resource.passkey.empty_name");
    alice
        .call(&server, "PATCH", "/passkeys/999999", json!({"name": "x"}))
        .await
        .errors(404, "resource.passkey.not_found");
    // Another user sees none of these and cannot touch them.
    create_user(&db, "bob@barong.test");
    let bob = Browser::login(&server, "bob@barong.test").await;
    assert_eq!(
        bob.call(&server, "GET", "/passkeys", Value::Null)
            .await
            .status(200),
        &json!([])
    );
    bob.call(&server, "DELETE", &path, json!({"password": PASSWORD}))
        .await
        .errors(404, "resource.passkey.not_found");
    // Not the last one: the session is enough.
    let first_path = format!("/passkeys/{}", first["id"]);
    alice
        .call(&server, "DELETE", &first_path, Value::Null)
        .await
        .status(204);
    // The last one needs the password (or a TOTP code with 2FA on).
    alice
        .call(&server, "DELETE", &path, Value::Null)
        .await
        .errors(422, "resource.passkey.confirmation_required");
    alice
        .call(
            &server,
            "DELETE",
            &path,
            json!({"password": "Wrong-Passw0rd"}),
        )
        .await
        .errors(422, "resource.passkey.invalid_password");
    alice
        .call(&server, "DELETE", &path, json!({"password": PASSWORD}))
        .await
        .status(204);
    assert_eq!(
        alice
            .call(&server, "GET", "/passkeys", Value::Null)
            .await
            .status(200),
        &json!([])
    );
}

async fn login_with_passkey_as_second_factor(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = start(&db, &[]);
    create_user(&db, "carol@barong.test");
    let carol = Browser::login(&server, "carol@barong.test").await;
    assert_eq!(carol.authenticated_with(&server).await, "password");
    let key = Authenticator::new(&db, "key");
    carol.register(&server, &key, "Laptop").await;
    // From now on the password alone is not enough.
    identity(
        &server,
        "sessions",
        json!({"email": "carol@barong.test", "password": PASSWORD}),
    )
    .await
    .errors(401, "identity.session.missing_passkey");
    identity(
        &server,
        "sessions/passkey/options",
        json!({"email": "carol@barong.test", "password": "Wrong-Passw0rd"}),
    )
    .await
    .errors(401, "identity.session.invalid_params");
    let options = login_options(&server, "carol@barong.test").await;
    let allowed = options.status(201)["publicKey"]["allowCredentials"]
        .as_array()
        .expect("allowed")
        .len();
    assert_eq!(allowed, 1);
    let assertion = key.get(&options.body, json!({}));
    let session = finish_login(&server, &assertion).await;
    let browser = Browser::of(&session);
    assert_eq!(session.body["email"], "carol@barong.test");
    assert_eq!(
        browser.authenticated_with(&server).await,
        "password+passkey"
    );
    let list = browser.call(&server, "GET", "/passkeys", Value::Null).await;
    assert!(
        list.status(200)[0]["last_used_at"].is_string(),
        "{}",
        list.body
    );
    // The same assertion again: its challenge is gone.
    finish_login(&server, &assertion)
        .await
        .errors(401, "identity.session.invalid_challenge");
    // Wrong origin, wrong relying party, a signature over something else.
    for extra in [
        json!({"origin": "https://evil.test"}),
        json!({"rp_id": "evil.test"}),
    ] {
        let options = login_options(&server, "carol@barong.test").await;
        let assertion = key.get(options.status(201), extra);
        finish_login(&server, &assertion)
            .await
            .errors(401, "identity.session.invalid_passkey");
    }
    // A cloned authenticator: its counter is behind the one last accepted.
    let options = login_options(&server, "carol@barong.test").await;
    let cloned = key.get(options.status(201), json!({"counter": 1}));
    finish_login(&server, &cloned)
        .await
        .errors(401, "identity.session.passkey_cloned");
    let activity = browser
        .call(&server, "GET", "/users/activity/session", Value::Null)
        .await;
    let rows = activity.status(200).as_array().expect("activity").clone();
    let clone_row = rows
        .iter()
        .find(|row| row["action"] == "login::passkey" && row["result"] == "failed")
        .unwrap_or_else(|| panic!("clone recorded: {rows:?}"));
    assert!(
        clone_row["data"].to_string().contains("cloned"),
        "{clone_row}"
    );
    // The genuine authenticator still logs in (its counter moves on).
    let options = login_options(&server, "carol@barong.test").await;
    let assertion = key.get(options.status(201), json!({}));
    finish_login(&server, &assertion).await.status(200);
    // Garbage and missing answers.
    finish_login(&server, &json!({"id": 1}))
        .await
        .errors(401, "identity.session.invalid_passkey");
    identity(&server, "sessions/passkey", json!({}))
        .await
        .errors(422, "identity.session.missing_credential");
    // A user without passkeys gets no options (after the password).
    create_user(&db, "dave@barong.test");
    login_options(&server, "dave@barong.test")
        .await
        .errors(422, "identity.session.no_passkeys");
}

async fn passwordless_off_then_on(backend: Backend) {
    let db = TestDb::new(backend).await;
    // Without a relying party there are no passkeys at all.
    let off = TestServer::start(db.dir.path(), &db.url, &[]);
    create_user(&db, "erin@barong.test");
    let erin = Browser::login(&off, "erin@barong.test").await;
    erin.call(&off, "POST", "/passkeys/options", Value::Null)
        .await
        .errors(422, "resource.passkey.disabled");
    identity(&off, "sessions/passkey/options", json!({}))
        .await
        .errors(422, "identity.session.passkey_disabled");
    drop(off);
    let server = start(&db, &[]);
    let erin = Browser::login(&server, "erin@barong.test").await;
    let key = Authenticator::new(&db, "key");
    erin.register(&server, &key, "Laptop").await;
    // Passwordless is off by default.
    identity(&server, "sessions/passkey/options", json!({}))
        .await
        .errors(403, "identity.session.passwordless_disabled");
    drop(server);
    let server = start(&db, &[("BARONG_PASSKEY_PASSWORDLESS", "true")]);
    let options = identity(&server, "sessions/passkey/options", json!({})).await;
    let public_key = &options.status(201)["publicKey"];
    assert!(
        public_key["allowCredentials"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "{public_key}"
    );
    let assertion = key.get(&options.body, json!({}));
    let session = finish_login(&server, &assertion).await;
    let browser = Browser::of(&session);
    assert_eq!(session.body["email"], "erin@barong.test");
    assert_eq!(browser.authenticated_with(&server).await, "passkey");
    // A passwordless answer naming a handle that is not the credential's owner's.
    let options = identity(&server, "sessions/passkey/options", json!({})).await;
    let mut forged = key.get(options.status(201), json!({}));
    forged["response"]["userHandle"] = json!("AAAAAAAAAAAAAAAAAAAAAA");
    finish_login(&server, &forged)
        .await
        .errors(401, "identity.session.invalid_passkey");
}

async fn expired_challenges_are_refused(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = start(&db, &[("BARONG_PASSKEY_CHALLENGE_TTL", "3")]);
    create_user(&db, "frank@barong.test");
    let frank = Browser::login(&server, "frank@barong.test").await;
    let key = Authenticator::new(&db, "key");
    let options = frank
        .call(&server, "POST", "/passkeys/options", Value::Null)
        .await;
    let credential = key.create(options.status(201), json!({}));
    tokio::time::sleep(Duration::from_millis(4100)).await;
    frank
        .call(
            &server,
            "POST",
            "/passkeys",
            json!({"credential": credential}),
        )
        .await
        .errors(422, "resource.passkey.challenge_expired");
    frank.register(&server, &key, "Laptop").await;
    let options = login_options(&server, "frank@barong.test").await;
    let assertion = key.get(options.status(201), json!({}));
    tokio::time::sleep(Duration::from_millis(4100)).await;
    finish_login(&server, &assertion)
        .await
        .errors(401, "identity.session.challenge_expired");
}

both_backends!(
    register_list_rename_delete,
    login_with_passkey_as_second_factor,
    passwordless_off_then_on,
    expired_challenges_are_refused,
);

/// Two instances on one PostgreSQL database: a challenge issued by one is answered on the
/// other, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn challenges_work_across_instances() {
    let db = TestDb::new(Backend::Postgres).await;
    let first = start(&db, &[]);
    let second = start(&db, &[]);
    create_user(&db, "grace@barong.test");
    let grace = Browser::login(&first, "grace@barong.test").await;
    let key = Authenticator::new(&db, "key");
    let options = grace
        .call(&first, "POST", "/passkeys/options", Value::Null)
        .await;
    let credential = key.create(options.status(201), json!({}));
    grace
        .call(
            &second,
            "POST",
            "/passkeys",
            json!({"credential": credential}),
        )
        .await
        .status(201);
    let options = login_options(&second, "grace@barong.test").await;
    let assertion = key.get(options.status(201), json!({}));
    let session = finish_login(&first, &assertion).await;
    assert_eq!(
        Browser::of(&session).authenticated_with(&first).await,
        "password+passkey"
    );
    finish_login(&second, &assertion)
        .await
        .errors(401, "identity.session.invalid_challenge");
}
