//! The passkey tests' client side: the software authenticator (`soft_authenticator.py`, PyPI
//! `fido2`) that answers the server's WebAuthn options as a browser and a platform
//! authenticator would, and a logged-in browser whose resource calls carry the bearer the authz
//! listener mints from its session, as behind a gateway.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{TestDb, TestServer, barong_command};

pub const PASSWORD: &str = "Iequ4geiEWQw";
pub const AGENT: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
pub const RP_ID: &str = "exchange.test";
pub const ORIGIN: &str = "https://exchange.test";

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

pub fn start(db: &TestDb, more: &[(&str, &str)]) -> TestServer {
    let mut env = vec![
        ("BARONG_PASSKEY_RP_ID", RP_ID),
        ("BARONG_PASSKEY_ORIGINS", ORIGIN),
    ];
    env.extend_from_slice(more);
    TestServer::start(db.dir.path(), &db.url, &env)
}

/// `barong users create`: an active member.
pub fn create_user(db: &TestDb, email: &str) {
    let output = barong_command(db.dir.path(), &db.url)
        .args(["users", "create", "--email", email, "--password", PASSWORD])
        .args(["--role", "member"])
        .output()
        .expect("run barong users create");
    assert!(output.status.success(), "{output:?}");
}

/// The software authenticator: one request, the credential it answers.
pub fn authenticator(request: Value) -> Value {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support/soft_authenticator.py");
    let mut child = Command::new(super::python())
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
pub struct Authenticator {
    pub state: std::path::PathBuf,
}

impl Authenticator {
    pub fn new(db: &TestDb, name: &str) -> Authenticator {
        Authenticator {
            state: db.dir.path().join(format!("{name}.json")),
        }
    }

    pub fn create(&self, options: &Value, extra: Value) -> Value {
        let mut request = json!({
            "op": "create",
            "options": options["publicKey"],
            "origin": ORIGIN,
            "state": self.state,
        });
        merge(&mut request, extra);
        authenticator(request)
    }

    pub fn get(&self, options: &Value, extra: Value) -> Value {
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

pub fn merge(request: &mut Value, extra: Value) {
    if let (Some(request), Value::Object(extra)) = (request.as_object_mut(), extra) {
        request.extend(extra);
    }
}

pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    pub async fn read(response: reqwest::Response) -> Answer {
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
    pub fn errors(&self, status: u16, key: &str) {
        assert_eq!(
            (self.status, &self.body),
            (status, &json!({ "errors": [key] })),
            "unexpected answer"
        );
    }

    #[track_caller]
    pub fn status(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "{}", self.body);
        &self.body
    }
}

/// `POST /api/v2/barong/identity/<path>` with a JSON body.
pub async fn identity(server: &TestServer, path: &str, body: Value) -> Answer {
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
pub struct Browser {
    pub cookie: String,
    pub csrf: String,
}

impl Browser {
    pub fn of(answer: &Answer) -> Browser {
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

    pub async fn login(server: &TestServer, email: &str) -> Browser {
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
    pub async fn call(&self, server: &TestServer, method: &str, path: &str, body: Value) -> Answer {
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

    /// `POST resource/passkeys/options` with `proof` (`password`, `otp_code`, or `Value::Null`).
    pub async fn passkey_options(&self, server: &TestServer, proof: Value) -> Answer {
        self.call(server, "POST", "/passkeys/options", proof).await
    }

    /// Registers a passkey held by `key`, proving it with the password; the stored passkey.
    pub async fn register(&self, server: &TestServer, key: &Authenticator, name: &str) -> Value {
        let proof = json!({"password": PASSWORD});
        self.register_with(server, key, name, proof).await
    }

    /// Registers a passkey held by `key`, proving it with `proof` (`password` or `otp_code`).
    pub async fn register_with(
        &self,
        server: &TestServer,
        key: &Authenticator,
        name: &str,
        proof: Value,
    ) -> Value {
        let options = self.call(server, "POST", "/passkeys/options", proof).await;
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

    pub async fn authenticated_with(&self, server: &TestServer) -> String {
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
pub async fn login_options(server: &TestServer, email: &str) -> Answer {
    identity(
        server,
        "sessions/passkey/options",
        json!({"email": email, "password": PASSWORD}),
    )
    .await
}

pub async fn finish_login(server: &TestServer, credential: &Value) -> Answer {
    identity(
        server,
        "sessions/passkey",
        json!({"credential": credential}),
    )
    .await
}
