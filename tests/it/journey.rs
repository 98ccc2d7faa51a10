//! The whole request path on the real server: identity opens a session, the authz decision mints
//! a JWT from the cookie, and the resource API accepts that JWT (and nothing else). Then logout on
//! one instance is refused by another instance on the same PostgreSQL database.

use crate::common::http;
use crate::{common, support};
use std::time::{Duration, Instant};

use common::{Backend, TestDb, TestServer};
use reqwest::StatusCode;
use serde_json::{Value, json};

const AGENT: &str = "Mozilla/5.0 (journey test)";

/// Signs up through the REST API: (cookie value, csrf token, response body).
async fn sign_up(server: &TestServer, email: &str) -> (String, String, Value) {
    let response = http()
        .post(server.url("/api/v2/barong/identity/users"))
        .header("user-agent", AGENT)
        .json(&json!({"email": email, "password": "Iequ4geiEWQw"}))
        .send()
        .await
        .expect("sign up");
    assert_eq!(response.status(), StatusCode::CREATED);
    let cookie = support::set_session_cookie(&response).expect("session cookie");
    let body: Value = response.json().await.expect("json");
    let csrf = body["csrf_token"].as_str().expect("csrf").to_owned();
    (cookie, csrf, body)
}

/// Asks `server`'s authz listener about `path` with the session cookie.
async fn decide(
    server: &TestServer,
    method: &str,
    path: &str,
    cookie: &str,
    csrf: Option<&str>,
) -> reqwest::Response {
    let mut request = http()
        .get(format!("{}/api/v2/auth/{path}", server.authz))
        .header("x-original-method", method)
        .header("cookie", format!("_barong_session={cookie}"))
        .header("user-agent", AGENT);
    if let Some(csrf) = csrf {
        request = request.header("x-csrf-token", csrf);
    }
    request.send().await.expect("authz")
}

fn bearer(response: &reqwest::Response) -> String {
    assert_eq!(response.status(), StatusCode::OK);
    response.headers()["authorization"]
        .to_str()
        .expect("ascii")
        .to_owned()
}

async fn cookie_to_jwt_to_resource(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(db.dir.path(), &db.url, &[]);
    let (cookie, _, signed_up) = sign_up(&server, "journey@barong.test").await;
    // The first user is Barong's first-registration superadmin.
    assert_eq!(signed_up["role"], "superadmin");

    let authorization = bearer(
        &decide(
            &server,
            "GET",
            "api/v2/barong/resource/users/me",
            &cookie,
            None,
        )
        .await,
    );
    let me = http()
        .get(server.url("/api/v2/barong/resource/users/me"))
        .header("authorization", &authorization)
        .send()
        .await
        .expect("me");
    assert_eq!(me.status(), StatusCode::OK);
    let me: Value = me.json().await.expect("json");
    assert_eq!(me["email"], "journey@barong.test");
    assert_eq!(me["uid"], signed_up["uid"]);
    assert!(me.get("csrf_token").is_none());
    let keys: Vec<&str> = me
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
            "username",
            "labels",
            "phones",
            "profiles",
            "data_storages",
            "created_at",
            "updated_at"
        ]
    );

    // Without a token, with a forged one, with a token for a vanished uid.
    for header in [
        None,
        Some("Bearer nope"),
        Some("Basic abc"),
        Some(authorization.replace('.', "x").as_str()),
    ] {
        let mut request = http().get(server.url("/api/v2/resource/users/me"));
        if let Some(header) = header {
            request = request.header("authorization", header.to_owned());
        }
        let response = request.send().await.expect("refused");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{header:?}");
        assert_eq!(
            response.json::<Value>().await.expect("json"),
            json!({"errors": ["jwt.decode_and_verify"]})
        );
    }
}

/// Two instances behind one database: a logout on the first is refused by the second at once
/// (PostgreSQL LISTEN/NOTIFY), although the second had the session cached for 60 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_on_one_instance_is_refused_by_the_other() {
    let db = TestDb::new(Backend::Postgres).await;
    let ttl = [("BARONG_AUTHZ_CACHE_TTL", "60")];
    let first = TestServer::start(db.dir.path(), &db.url, &ttl);
    let second = TestServer::start(db.dir.path(), &db.url, &ttl);
    let (cookie, csrf, _) = sign_up(&first, "two@barong.test").await;
    let path = "api/v2/barong/resource/users/me";
    assert_eq!(
        decide(&first, "GET", path, &cookie, None).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        decide(&second, "GET", path, &cookie, None).await.status(),
        StatusCode::OK
    );

    let logout = http()
        .delete(first.url("/api/v2/barong/identity/sessions"))
        .header("cookie", format!("_barong_session={cookie}"))
        .header("user-agent", AGENT)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .expect("logout");
    assert_eq!(logout.status(), StatusCode::OK);
    // The instance that answered the logout has dropped the session before answering.
    assert_eq!(
        decide(&first, "GET", path, &cookie, None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let started = Instant::now();
    loop {
        let status = decide(&second, "GET", path, &cookie, None).await.status();
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "still {status} after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        decide(&first, "GET", path, &cookie, None).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

both_backends!(cookie_to_jwt_to_resource);
