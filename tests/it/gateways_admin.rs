//! Issue #5's "block across two instances": two barong instances on one PostgreSQL database
//! behind one real nginx (the shipped config, both authz listeners in its upstream). A user
//! banned, then locked, through the admin API of instance A is refused through nginx whichever
//! instance answers, within the documented bound; re-activated, it is let through again.

use crate::common;
use std::time::{Duration, Instant};

use common::gateway::{Backends, BarongRoute, CountingRelay, Gateway, Proxy, echo_upstream};
use common::{Backend, TestDb, TestServer, barong_command};
use reqwest::StatusCode;
use serde_json::{Value, json};

const AGENT: &str = "Mozilla/5.0 (gateway admin test)";
const PASSWORD: &str = "Iequ4geiEWQw";
/// How fast the other instance must hear of the change. The caches' TTL is set to a minute,
/// so only the NOTIFY relay can meet this.
const BOUND: Duration = Duration::from_secs(2);

fn create(db: &TestDb, email: &str, role: &str) {
    let output = barong_command(db.dir.path(), &db.url)
        .args(["users", "create", "--email", email, "--password", PASSWORD])
        .args(["--role", role])
        .output()
        .expect("barong users create");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .cookie_store(true)
        .user_agent(AGENT)
        .timeout(Duration::from_secs(20))
        .build()
        .expect("browser")
}

/// Logs `email` in at `base` (the gateway or an instance); the CSRF token.
async fn login(client: &reqwest::Client, base: &str, email: &str) -> String {
    let response = client
        .post(format!("{base}/api/v2/barong/identity/sessions"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .expect("login");
    assert_eq!(response.status(), StatusCode::OK);
    response.json::<Value>().await.expect("json")["csrf_token"]
        .as_str()
        .expect("csrf")
        .to_owned()
}

/// `PUT /admin/users` on instance `server` only: its authz mints the bearer, its REST
/// listener makes the change.
async fn set_state(
    server: &TestServer,
    admin: &reqwest::Client,
    csrf: &str,
    uid: &str,
    state: &str,
) {
    let decision = admin
        .get(format!(
            "{}/api/v2/auth/api/v2/barong/admin/users",
            server.authz
        ))
        .header("x-original-method", "PUT")
        .header("x-csrf-token", csrf)
        .send()
        .await
        .expect("authz");
    assert_eq!(decision.status(), StatusCode::OK);
    let bearer = decision.headers()["authorization"].clone();
    let answer = admin
        .put(server.url("/api/v2/barong/admin/users"))
        .header("authorization", bearer)
        .json(&json!({"uid": uid, "state": state}))
        .send()
        .await
        .expect("admin call");
    assert_eq!(answer.status(), StatusCode::OK);
}

/// The member's request through nginx: status and error key.
async fn through_gateway(member: &reqwest::Client, gateway: &Gateway) -> (u16, Value) {
    let response = member
        .get(gateway.url("/api/v2/barong/resource/users/me"))
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// Polls until the gateway answers `want` and then keeps answering it for 12 more requests
/// (spread by nginx over both instances); returns how long the change took to arrive.
async fn settles(
    member: &reqwest::Client,
    gateway: &Gateway,
    want: u16,
    key: Option<&str>,
) -> Duration {
    let started = Instant::now();
    let matches = |(status, body): &(u16, Value)| {
        *status == want && key.is_none_or(|k| body["errors"][0] == k)
    };
    loop {
        if matches(&through_gateway(member, gateway).await) {
            break;
        }
        assert!(
            started.elapsed() < BOUND,
            "not {want} {key:?} within {BOUND:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = started.elapsed();
    for n in 0..12 {
        let answer = through_gateway(member, gateway).await;
        assert!(matches(&answer), "request {n} after the change: {answer:?}");
    }
    took
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_blocked_on_one_instance_is_refused_through_nginx_by_both() {
    let db = TestDb::new(Backend::Postgres).await;
    // One data dir: both instances sign and verify with the same generated key.
    let env = [("BARONG_AUTHZ_CACHE_TTL", "60")];
    let a = TestServer::start(db.dir.path(), &db.url, &env);
    let b = TestServer::start(db.dir.path(), &db.url, &env);
    create(&db, "root@gateway.test", "superadmin");
    create(&db, "member@gateway.test", "member");
    let upstream = echo_upstream().await;
    let relays = [
        CountingRelay::start(Backends::of(&a, upstream.addr).authz).await,
        CountingRelay::start(Backends::of(&b, upstream.addr).authz).await,
    ];
    let mut backends = Backends::of_all(&[&a, &b], upstream.addr);
    backends.authz = relays[0].addr;
    backends.more[0].0 = relays[1].addr;
    let gateway = Gateway::start(Proxy::Nginx, &backends, BarongRoute::AsIs).await;

    let member = browser();
    login(&member, &gateway.url(""), "member@gateway.test").await;
    let me: Value = member
        .get(gateway.url("/api/v2/barong/resource/users/me"))
        .send()
        .await
        .expect("me")
        .json()
        .await
        .expect("json");
    let uid = me["uid"].as_str().expect("uid").to_owned();
    // Both instances cache the member's session and user.
    settles(&member, &gateway, 200, None).await;
    assert!(
        relays.iter().all(|r| r.connections() > 0),
        "nginx asks both instances: {} and {} connections",
        relays[0].connections(),
        relays[1].connections()
    );

    let admin = browser();
    let csrf = login(&admin, &a.api, "root@gateway.test").await;
    for (state, status, key) in [
        ("banned", 401, Some("authz.user_not_active")),
        ("active", 200, None),
        ("locked", 401, Some("authz.user_not_active")),
    ] {
        set_state(&a, &admin, &csrf, &uid, state).await;
        let took = settles(&member, &gateway, status, key).await;
        eprintln!("{state}: refused/allowed through nginx after {took:?}");
    }
}
