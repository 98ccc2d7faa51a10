//! One real browser: Debian's Chromium, headless, with the DevTools protocol's virtual
//! authenticator (`tests/support/cdp_passkey.py`), registers a passkey and logs in with it as
//! the second factor, from a tiny page this test serves on `http://localhost:<port>`, the
//! relying party's origin. The page's requests reach barong as through a gateway: identity calls
//! as they are, resource calls after the authz decision minted their bearer.

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{Html, IntoResponse, Response};

use crate::{common, support};
use common::{Backend, TestDb, TestServer, barong_command};

const PASSWORD: &str = "Iequ4geiEWQw";

const PAGE: &str = r#"<!doctype html><meta charset="utf-8"><title>passkey test</title>
<script>
let csrf = "";
async function api(method, path, body) {
  const response = await fetch("/api/v2/barong" + path, {
    method,
    headers: { "content-type": "application/json", "x-csrf-token": csrf },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let json = null;
  try { json = JSON.parse(text); } catch (e) { json = text; }
  return { status: response.status, body: json };
}
async function run(email, password) {
  const steps = {};
  const login = await api("POST", "/identity/sessions", { email, password });
  steps.login = login.status;
  csrf = login.body.csrf_token;
  const options = await api("POST", "/resource/passkeys/options", { password });
  steps.options = options.status;
  const created = await navigator.credentials.create({
    publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options.body.publicKey),
  });
  const registered = await api("POST", "/resource/passkeys", { credential: created.toJSON(), name: "Chromium" });
  steps.register = registered.status;
  steps.logout = (await api("DELETE", "/identity/sessions")).status;
  steps.password_only = await api("POST", "/identity/sessions", { email, password });
  const loginOptions = await api("POST", "/identity/sessions/passkey/options", { email, password });
  steps.login_options = loginOptions.status;
  const assertion = await navigator.credentials.get({
    publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(loginOptions.body.publicKey),
  });
  const session = await api("POST", "/identity/sessions/passkey", { credential: assertion.toJSON() });
  steps.session = session.status;
  steps.email = session.body.email;
  csrf = session.body.csrf_token;
  steps.passkeys = (await api("GET", "/resource/passkeys")).body;
  steps.sessions = (await api("GET", "/resource/sessions")).body;
  return JSON.stringify(steps);
}
</script>"#;

#[derive(Clone)]
struct Front {
    api: String,
    authz: String,
}

/// The gateway's part: identity as it is, resource with the decision's bearer.
async fn forward(
    State(front): State<Front>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    if path == "/" {
        return Html(PAGE).into_response();
    }
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    let copy = |mut request: reqwest::RequestBuilder| {
        for name in ["cookie", "user-agent", "content-type", "x-csrf-token"] {
            if let Some(value) = headers.get(name) {
                request = request.header(name, value.as_bytes());
            }
        }
        request
    };
    let mut upstream = copy(client.request(method.clone(), format!("{}{path}", front.api)));
    if path.starts_with("/api/v2/barong/resource") {
        let decision = copy(client.get(format!("{}/api/v2/auth{path}", front.authz)))
            .header("x-original-method", method.as_str())
            .send()
            .await
            .expect("authz");
        if decision.status() != 200 {
            let status = decision.status();
            let text = decision.bytes().await.unwrap_or_default();
            return (status, text).into_response();
        }
        let bearer = decision.headers()["authorization"].clone();
        upstream = upstream.header("authorization", bearer);
    }
    let answer = upstream.body(body).send().await.expect("rest");
    let mut response = Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        if name == "set-cookie" || name == "content-type" {
            response = response.header(name, value);
        }
    }
    let bytes = answer.bytes().await.unwrap_or_default();
    response.body(Body::from(bytes)).expect("response")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_registers_a_passkey_and_logs_in_with_it() {
    let started = Instant::now();
    let db = TestDb::new(Backend::Sqlite).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind page");
    let port = listener.local_addr().expect("addr").port();
    let origin = format!("http://localhost:{port}");
    let server = TestServer::start(
        db.dir.path(),
        &db.url,
        &[
            ("BARONG_PASSKEY_RP_ID", "localhost"),
            ("BARONG_PASSKEY_ORIGINS", &origin),
        ],
    );
    let output = barong_command(db.dir.path(), &db.url)
        .args([
            "users",
            "create",
            "--email",
            "web@barong.test",
            "--password",
            PASSWORD,
        ])
        .args(["--role", "member"])
        .output()
        .expect("users create");
    assert!(output.status.success(), "{output:?}");
    let front = Front {
        api: server.api.clone(),
        authz: server.authz.clone(),
    };
    let app = Router::new().fallback(forward).with_state(front);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let chromium = std::env::var("BARONG_TEST_CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/cdp_passkey.py");
    let run = tokio::process::Command::new(support::python())
        .arg(script)
        .args([
            &chromium,
            &format!("{origin}/"),
            "web@barong.test",
            PASSWORD,
        ])
        .output();
    let output = tokio::time::timeout(Duration::from_secs(90), run)
        .await
        .expect("the browser run finishes")
        .expect("python and chromium (scripts/test installs Debian's chromium)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let steps: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
        panic!(
            "browser said {stdout} / {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    assert_eq!(steps["login"], 200, "{steps}");
    assert_eq!(steps["options"], 201, "{steps}");
    assert_eq!(steps["register"], 201, "{steps}");
    assert_eq!(steps["logout"], 200, "{steps}");
    assert_eq!(
        steps["password_only"]["body"]["errors"][0], "identity.session.missing_passkey",
        "{steps}"
    );
    assert_eq!(steps["login_options"], 201, "{steps}");
    assert_eq!(steps["session"], 200, "{steps}");
    assert_eq!(steps["email"], "web@barong.test");
    assert_eq!(steps["passkeys"][0]["name"], "Chromium", "{steps}");
    assert!(steps["passkeys"][0]["last_used_at"].is_string(), "{steps}");
    let sessions = steps["sessions"].as_array().expect("sessions");
    assert!(
        sessions
            .iter()
            .any(|s| s["current"] == true && s["authenticated_with"] == "password+passkey"),
        "{steps}"
    );
    let took = started.elapsed();
    eprintln!("chromium passkey round trip: {took:?}");
    assert!(took < Duration::from_secs(60), "took {took:?}");
}
