//! Signing-key rotation without downtime, over real sockets on both backends: two instances
//! share one database, `barong keys rotate` runs beside them, a token minted before the
//! rotation keeps verifying (at our REST listener and at an upstream using PyJWT's
//! `PyJWKClient` against the JWKS), new tokens carry the new `kid` on both instances without a
//! restart, and the old key leaves the JWKS once its last token has expired.

use crate::common::http;
use crate::{common, support};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{Backend, TestDb, TestServer, barong_command};
use reqwest::StatusCode;
use serde_json::{Value, json};

const AGENT: &str = "Mozilla/5.0 (keys test)";
const PASSWORD: &str = "Iequ4geiEWQw";
const PATH: &str = "/api/v2/barong/resource/users/me";
/// Token lifetime of the test: short, so the old key's retirement is seen within the test.
const LIFETIME: u64 = 8;
const RELOAD: u64 = 1;

fn settings() -> Vec<(&'static str, String)> {
    vec![
        ("BARONG_JWT_EXPIRE_TIME", LIFETIME.to_string()),
        ("BARONG_KEYS_RELOAD_INTERVAL", RELOAD.to_string()),
    ]
}

fn start(db: &TestDb) -> TestServer {
    let env = settings();
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    TestServer::start(db.dir.path(), &db.url, &pairs)
}

/// A session (cookie, CSRF token) of a new user, opened through `server`.
async fn session(server: &TestServer) -> (String, String) {
    let response = http()
        .post(server.url("/api/v2/barong/identity/users"))
        .header("user-agent", AGENT)
        .json(&json!({"email": "user@barong.test", "password": PASSWORD}))
        .send()
        .await
        .expect("sign up");
    assert_eq!(response.status(), StatusCode::CREATED);
    let cookie = support::set_session_cookie(&response).expect("cookie");
    let body: Value = response.json().await.expect("json");
    (
        cookie,
        body["csrf_token"].as_str().expect("csrf").to_owned(),
    )
}

/// The bearer `server`'s authz listener mints for the session.
async fn bearer(server: &TestServer, session: &(String, String)) -> String {
    let response = http()
        .get(format!("{}/api/v2/auth{PATH}", server.authz))
        .header("x-original-method", "GET")
        .header("cookie", format!("_barong_session={}", session.0))
        .header("x-csrf-token", &session.1)
        .header("user-agent", AGENT)
        .send()
        .await
        .expect("authz");
    assert_eq!(response.status(), StatusCode::OK);
    let value = response.headers()["authorization"].to_str().expect("ascii");
    value.strip_prefix("Bearer ").expect("bearer").to_owned()
}

fn kid_of(token: &str) -> String {
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').next().expect("header"))
            .expect("b64"),
    )
    .expect("json");
    header["kid"].as_str().expect("kid").to_owned()
}

async fn jwks_kids(server: &TestServer) -> Vec<String> {
    let jwks: Value = http()
        .get(format!("{}/.well-known/jwks.json", server.authz))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_owned())
        .collect()
}

async fn rest_status(server: &TestServer, token: &str) -> u16 {
    http()
        .get(server.url(PATH))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .expect("call")
        .status()
        .as_u16()
}

/// What PyJWT's `PyJWKClient` says of `token` against `server`'s JWKS: `Ok(kid)` or the reason.
fn upstream_verifies(server: &TestServer, token: &str) -> Result<String, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/jwks_verify.py");
    let output = Command::new(support::python())
        .arg(script)
        .arg(format!("{}/.well-known/jwks.json", server.authz))
        .arg(token)
        .arg("peatio")
        .output()
        .expect("python with PyJWT (pip install 'pyjwt[crypto]' into .venv)");
    let text = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    match text.strip_prefix("ok ") {
        Some(kid) if output.status.success() => Ok(kid.to_owned()),
        _ => Err(format!(
            "{text} {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )),
    }
}

fn rotate(db: &TestDb) -> String {
    let mut command = barong_command(db.dir.path(), &db.url);
    command.args(["keys", "rotate"]);
    for (key, value) in settings() {
        command.env(key, value);
    }
    let output = command.output().expect("barong keys rotate");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Polls `check` every 50 ms until it holds; returns how long it took.
async fn within<F, Fut>(what: &str, limit: Duration, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < limit, "{what} not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    started.elapsed()
}

async fn rotation_without_downtime(backend: Backend) {
    let db = TestDb::new(backend).await;
    let a = start(&db);
    let b = start(&db);
    let user = session(&a).await;
    let old = bearer(&a, &user).await;
    let old_kid = kid_of(&old);
    assert_eq!(jwks_kids(&b).await, vec![old_kid.clone()]);
    assert_eq!(upstream_verifies(&b, &old), Ok(old_kid.clone()));

    let printed = rotate(&db);
    let rotated_at = Instant::now();
    assert!(printed.starts_with("rotated:"), "{printed}");
    // Both instances sign with the new key without a restart.
    let mut new = String::new();
    for (name, server) in [("a", &a), ("b", &b)] {
        let started = Instant::now();
        loop {
            new = bearer(server, &user).await;
            if kid_of(&new) != old_kid {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{name} still signs with the old key"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let took = started.elapsed();
        println!(
            "{backend:?}: instance {name} signed with the new key {took:?} after the rotation"
        );
    }
    let new_kid = kid_of(&new);
    assert!(printed.contains(&new_kid), "{printed}");
    // Both keys are published; the old token still verifies everywhere, the new one too.
    for server in [&a, &b] {
        let kids = jwks_kids(server).await;
        assert_eq!(kids.len(), 2, "{kids:?}");
        assert!(
            kids.contains(&old_kid) && kids.contains(&new_kid),
            "{kids:?}"
        );
        assert_eq!(rest_status(server, &old).await, 200);
        assert_eq!(rest_status(server, &new).await, 200);
        assert_eq!(upstream_verifies(server, &old), Ok(old_kid.clone()));
        assert_eq!(upstream_verifies(server, &new), Ok(new_kid.clone()));
    }
    // An instance started now loads the rotated keys from the database.
    let c = start(&db);
    assert_eq!(kid_of(&bearer(&c, &user).await), new_kid);
    assert_eq!(rest_status(&c, &old).await, 200);

    // Once the old key's last token has expired, it leaves the JWKS everywhere.
    for (name, server) in [("a", &a), ("b", &b), ("c", &c)] {
        within(
            &format!("{name} retires the old key"),
            Duration::from_secs(LIFETIME + RELOAD + 10),
            || async { jwks_kids(server).await == [new_kid.clone()] },
        )
        .await;
    }
    let retired_after = rotated_at.elapsed();
    println!("{backend:?}: old key left the JWKS {retired_after:?} after the rotation");
    assert!(
        retired_after >= Duration::from_secs(LIFETIME),
        "the old key left before its tokens expired ({retired_after:?})"
    );
    assert_eq!(rest_status(&b, &old).await, 401);
    assert!(upstream_verifies(&b, &old).is_err());
    // Tokens of the new key keep working.
    let fresh = bearer(&b, &user).await;
    assert_eq!(upstream_verifies(&a, &fresh), Ok(new_kid.clone()));
    assert_eq!(rest_status(&a, &fresh).await, 200);
}

both_backends!(rotation_without_downtime);
