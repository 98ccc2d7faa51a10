//! Faults under load, against the real binary: PostgreSQL gone and back while concurrent
//! clients keep asking (through a TCP relay in front of the machine's PostgreSQL, which is
//! never stopped: `TcpProxy::cut`/`restore`), and SIGTERM in the middle of traffic.
//!
//! SMTP down is covered by `tests/it/identity.rs` (`mail_survives_smtp_outage_and_restart`: the
//! mail waits in the outbox across the outage and a restart and is delivered exactly once).

use crate::{common, support};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use barong::store::Store;
use common::{Backend, TcpProxy, TestDb, TestServer};
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::set_session_cookie;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Mutex;

const UA: &str = "Mozilla/5.0 (X11; Linux x86_64) barong-faults";
const PASSWORD: &str = "Tecohvi0";
/// A path members may reach (the default seeds accept `api/v2/peatio` for them).
const PRIVATE: &str = "api/v2/peatio/account/balances";
/// The longest a failing-closed answer may take with `BARONG_DB_CONNECT_TIMEOUT=500`.
const FAIL_FAST: Duration = Duration::from_secs(3);

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .pool_max_idle_per_host(0)
        .build()
        .expect("client")
}

/// Signs up through the REST API; `Ok(cookie)` on 201, else the status and body.
async fn sign_up(
    http: &reqwest::Client,
    server: &TestServer,
    email: &str,
) -> Result<String, (StatusCode, Value)> {
    let response = http
        .post(server.url("/api/v2/barong/identity/users"))
        .header("User-Agent", UA)
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .map_err(|e| (StatusCode::IM_A_TEAPOT, json!(e.to_string())))?;
    let status = response.status();
    let cookie = set_session_cookie(&response);
    let body: Value = response.json().await.unwrap_or(Value::Null);
    match (status, cookie) {
        (StatusCode::CREATED, Some(cookie)) => Ok(cookie),
        _ => Err((status, body)),
    }
}

/// One authz decision for `cookie` on `path`: the status, the error key and how long it took.
async fn decide(
    http: &reqwest::Client,
    server: &TestServer,
    path: &str,
    cookie: &str,
) -> (StatusCode, String, Duration) {
    let started = Instant::now();
    let response = http
        .get(format!("{}/api/v2/auth/{path}", server.authz))
        .header("User-Agent", UA)
        .header("Cookie", format!("_barong_session={cookie}"))
        .send()
        .await
        .expect("the authz listener answers");
    let status = response.status();
    // `X-Barong-Error` repeats the body, `{"errors":["<key>"]}`.
    let key = response
        .headers()
        .get("x-barong-error")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| serde_json::from_str::<Value>(v).ok())
        .and_then(|v| v["errors"][0].as_str().map(str::to_owned))
        .unwrap_or_default();
    (status, key, started.elapsed())
}

/// Emails in the users table.
async fn stored_emails(store: &dyn Store, emails: &BTreeSet<String>) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for email in emails {
        if store
            .find_user_by_email(email)
            .await
            .expect("the database is back")
            .is_some()
        {
            found.insert(email.clone());
        }
    }
    found
}

/// What the load tasks saw, by phase.
#[derive(Default)]
struct Observed {
    warm_failures: Vec<(StatusCode, String)>,
    cold_answers: Vec<(StatusCode, String, Duration)>,
    slowest: Duration,
    signups_ok: BTreeSet<String>,
    signups_refused: Vec<(StatusCode, Value)>,
}

/// PostgreSQL goes away for a few seconds while 6 clients keep asking for decisions and
/// signing up: cached sessions keep being allowed, uncached ones fail closed with 503 within
/// the bound, REST answers 503 with a JSON error, nothing hangs, every acknowledged sign-up is
/// in the database afterwards, and the server recovers without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage_under_load() {
    let db = TestDb::new(Backend::Postgres).await;
    let proxy = TcpProxy::start("127.0.0.1:5432".parse().expect("addr")).await;
    let server = Arc::new(TestServer::start(
        db.dir.path(),
        &db.url_via(proxy.port),
        &[
            ("BARONG_DB_CONNECT_TIMEOUT", "500"),
            ("BARONG_AUTHZ_CACHE_TTL", "120"),
            // The load signs up hundreds of users from one address: no sign-up limit here.
            ("BARONG_RATE_LIMIT_SIGNUP_IP", "0"),
            ("BARONG_SMTP_PORT", "9"),
        ],
    ));
    let http = http();
    // Two users signed up and asked for once (cached), two signed up and not asked (cold: one
    // lends its cookie as a prefix for unknown ones, the other is asked after the outage).
    let mut warm = Vec::new();
    let mut cold = Vec::new();
    for i in 0..4 {
        let cookie = sign_up(&http, &server, &format!("before{i}@barong.test"))
            .await
            .expect("sign-up before the outage");
        if i < 2 {
            let (status, key, _) = decide(&http, &server, PRIVATE, &cookie).await;
            assert_eq!(status, StatusCode::OK, "{key}");
            warm.push(cookie);
        } else {
            cold.push(cookie);
        }
    }

    let observed = Arc::new(Mutex::new(Observed::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let outage = Arc::new(AtomicBool::new(false));
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..6usize {
        let (server, observed, stop, outage) = (
            server.clone(),
            observed.clone(),
            stop.clone(),
            outage.clone(),
        );
        let (warm, cold) = (warm[client % 2].clone(), cold[0].clone());
        tasks.spawn(async move {
            let http = self::http();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let started = Instant::now();
                match client % 3 {
                    0 => {
                        let (status, key, _) = decide(&http, &server, PRIVATE, &warm).await;
                        if status != StatusCode::OK {
                            observed.lock().await.warm_failures.push((status, key));
                        }
                    }
                    1 => {
                        // Never seen before, so never cached: each one needs the database.
                        let unknown = format!("{cold}{n:08x}");
                        let answer = decide(&http, &server, PRIVATE, &unknown).await;
                        if outage.load(Ordering::Relaxed) {
                            observed.lock().await.cold_answers.push(answer);
                        }
                    }
                    _ => {
                        let email = format!("load{client}x{n}@barong.test");
                        let result = sign_up(&http, &server, &email).await;
                        let mut observed = observed.lock().await;
                        match result {
                            Ok(_) => {
                                observed.signups_ok.insert(email);
                            }
                            Err(refused) => observed.signups_refused.push(refused),
                        }
                    }
                }
                let took = started.elapsed();
                let mut observed = observed.lock().await;
                observed.slowest = observed.slowest.max(took);
            }
        });
    }

    tokio::time::sleep(Duration::from_secs(2)).await;
    proxy.cut().await;
    outage.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(4)).await;
    // While it is gone, a REST read that needs the database answers 503 with a JSON error.
    let me = http
        .get(server.url("/api/v2/barong/public/health/ready"))
        .send()
        .await
        .expect("ready");
    assert_eq!(me.status(), StatusCode::SERVICE_UNAVAILABLE);
    let refused = sign_up(&http, &server, "during@barong.test")
        .await
        .expect_err("no sign-up without a database");
    assert_eq!(refused.0, StatusCode::SERVICE_UNAVAILABLE, "{}", refused.1);
    assert_eq!(refused.1, json!({"errors": ["server.unavailable"]}));
    outage.store(false, Ordering::Relaxed);
    proxy.restore().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    while let Some(joined) = tasks.join_next().await {
        joined.expect("load task");
    }

    let observed = observed.lock().await;
    assert!(
        observed.warm_failures.is_empty(),
        "cached sessions refused: {:?}",
        observed.warm_failures
    );
    assert!(
        observed.cold_answers.iter().any(|(s, _, _)| *s == 503),
        "no uncached decision failed closed during the outage"
    );
    for (status, key, took) in &observed.cold_answers {
        assert!(
            (*status == StatusCode::UNAUTHORIZED && key == "authz.invalid_session")
                || (*status == StatusCode::SERVICE_UNAVAILABLE && key == "authz.unavailable"),
            "{status} {key}"
        );
        assert!(*took < FAIL_FAST, "failed closed in {took:?}");
    }
    for (status, body) in &observed.signups_refused {
        assert_eq!(
            (*status, body),
            (
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({"errors": ["server.unavailable"]})
            ),
            "sign-up refused otherwise"
        );
    }
    assert!(
        observed.slowest < Duration::from_secs(5),
        "a request hung for {:?}",
        observed.slowest
    );
    assert!(!observed.signups_ok.is_empty());
    assert!(!observed.signups_refused.is_empty());

    // Recovered without a restart: a session never asked before is allowed, sign-ups work.
    let (status, key, _) = decide(&http, &server, PRIVATE, &cold[1]).await;
    assert_eq!(status, StatusCode::OK, "{key}");
    sign_up(&http, &server, "after@barong.test")
        .await
        .expect("sign-up after the outage");
    // Every acknowledged sign-up is stored.
    let store = db.open().await;
    let stored = stored_emails(store.as_ref(), &observed.signups_ok).await;
    assert_eq!(stored, observed.signups_ok, "acknowledged writes lost");
    eprintln!(
        "outage: {} sign-ups acknowledged, {} refused with 503, {} uncached decisions during the \
         outage (slowest {:?}), slowest request {:?}",
        observed.signups_ok.len(),
        observed.signups_refused.len(),
        observed.cold_answers.len(),
        observed
            .cold_answers
            .iter()
            .map(|(_, _, t)| *t)
            .max()
            .unwrap_or_default(),
        observed.slowest
    );
}

/// Sends the head of a sign-up and half of its body on a raw connection: the request is in
/// flight until `finish` sends the rest.
async fn half_sent_sign_up(api: &str, email: &str) -> (tokio::net::TcpStream, Vec<u8>) {
    let address = api.trim_start_matches("http://");
    let body = json!({ "email": email, "password": PASSWORD }).to_string();
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let head = format!(
        "POST /api/v2/barong/identity/users HTTP/1.1\r\nHost: {address}\r\nUser-Agent: {UA}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let (first, rest) = body.as_bytes().split_at(body.len() / 2);
    stream.write_all(head.as_bytes()).await.expect("head");
    stream.write_all(first).await.expect("first half");
    (stream, rest.to_vec())
}

/// Sends the rest of the body and reads the whole answer; returns its status line.
async fn finish(mut stream: tokio::net::TcpStream, rest: Vec<u8>) -> String {
    stream.write_all(&rest).await.expect("second half");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("answer");
    let text = String::from_utf8_lossy(&answer);
    text.lines().next().unwrap_or("").to_owned()
}

/// SIGTERM while requests are in flight and the authz queues hold work: the half-sent requests
/// are completed (201), the server exits 0, and after a restart every acknowledged sign-up is
/// whole (user with its confirmation mail in the outbox, in one transaction), the sliding
/// expiries and the denied-decision activity rows queued before the signal are written.
async fn sigterm_under_load(backend: Backend) {
    let db = TestDb::new(backend).await;
    let env = [
        ("BARONG_SESSION_WRITE_BEHIND", "1"),
        ("BARONG_SESSION_EXPIRE_TIME", "3600"),
        ("BARONG_SMTP_PORT", "9"),
    ];
    let server = TestServer::start(db.dir.path(), &db.url, &env);
    let http = http();
    let mut cookies = Vec::new();
    // The first user becomes the superadmin; the others are members.
    for i in 0..4 {
        cookies.push(
            sign_up(&http, &server, &format!("user{i}@barong.test"))
                .await
                .expect("sign-up"),
        );
    }
    let store = db.open().await;
    let members: Vec<i64> = {
        let mut ids = Vec::new();
        for i in 1..4 {
            let user = store
                .find_user_by_email(&format!("user{i}@barong.test"))
                .await
                .expect("query")
                .expect("user");
            ids.push(user.id);
        }
        ids
    };
    // Make the stored expiries short, so a slide is visible; a fresh server reads them.
    support::sql(&db, "UPDATE sessions SET expire_at = expire_at - 3000").await;
    let server = restart(server, &db, &env);
    let marker = chrono::Utc::now().timestamp() + 3000;

    // In flight: three sign-ups with half their body sent.
    let mut in_flight = Vec::new();
    for i in 0..3 {
        in_flight.push(half_sent_sign_up(&server.api, &format!("inflight{i}@barong.test")).await);
    }
    // Load: every member session allowed (slides its expiry) and denied on an admin path
    // (queues an activity row), over and over, from 4 clients.
    let mut tasks = tokio::task::JoinSet::new();
    let server = Arc::new(server);
    for client in 0..4usize {
        let server = server.clone();
        let cookies = cookies[1..].to_vec();
        tasks.spawn(async move {
            let http = self::http();
            let mut denied = 0;
            for round in 0..5 {
                for cookie in &cookies {
                    let path = if (round + client) % 2 == 0 {
                        PRIVATE
                    } else {
                        "api/v2/barong/admin/users"
                    };
                    let (status, key, _) = decide(&http, &server, path, cookie).await;
                    if path == PRIVATE {
                        assert_eq!(status, StatusCode::OK, "{key}");
                    } else {
                        assert_eq!(key, "authz.invalid_permission");
                        denied += 1;
                    }
                }
            }
            denied
        });
    }
    let mut denied = 0;
    while let Some(joined) = tasks.join_next().await {
        denied += joined.expect("load task");
    }
    let pid = server.pid();
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut answers = Vec::new();
    for (stream, rest) in in_flight {
        answers.push(finish(stream, rest).await);
    }
    let server = Arc::try_unwrap(server).unwrap_or_else(|_| panic!("load tasks hold the server"));
    let status = server.terminate();
    assert!(status.success(), "exit status {status:?}");
    for answer in &answers {
        assert!(
            answer.contains("201"),
            "in-flight sign-up answered {answer}"
        );
    }

    // After a restart: all of it is there, nothing half-written.
    let server = TestServer::start(db.dir.path(), &db.url, &env);
    for i in 0..3 {
        let email = format!("inflight{i}@barong.test");
        assert!(
            store
                .find_user_by_email(&email)
                .await
                .expect("query")
                .is_some(),
            "{email} lost"
        );
    }
    let users = count(&db, "SELECT COUNT(*) FROM users").await;
    let mails = count(
        &db,
        "SELECT COUNT(*) FROM users u WHERE EXISTS \
         (SELECT 1 FROM mail_outbox m WHERE m.recipient = u.email)",
    )
    .await;
    // Every user but the superadmin got its confirmation mail in the same transaction.
    assert_eq!((users, mails), (7, 6), "users without their mail");
    let slid = count(
        &db,
        &format!(
            "SELECT COUNT(*) FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE u.email IN ('user1@barong.test','user2@barong.test','user3@barong.test') \
             AND s.expire_at >= {marker}"
        ),
    )
    .await;
    assert_eq!(slid, 3, "sliding expiries flushed at shutdown");
    let mut activities = 0;
    for id in &members {
        activities += store
            .list_user_activities(*id)
            .await
            .expect("activities")
            .iter()
            .filter(|a| a.result == "denied")
            .count();
    }
    assert_eq!(activities, denied, "denied decisions audited");
    drop(server);
}

fn restart(server: TestServer, db: &TestDb, env: &[(&str, &str)]) -> TestServer {
    let status = server.terminate();
    assert!(status.success(), "{status:?}");
    TestServer::start(db.dir.path(), &db.url, env)
}

/// One integer from a query, on either backend.
async fn count(db: &TestDb, query: &str) -> i64 {
    match db.backend {
        Backend::Sqlite => {
            let path = db.url.trim_start_matches("sqlite://").to_owned();
            let query = query.to_owned();
            tokio::task::spawn_blocking(move || {
                let conn = rusqlite::Connection::open(path).expect("open sqlite");
                conn.query_row(&query, [], |row| row.get::<_, i64>(0))
                    .expect("query")
            })
            .await
            .expect("join")
        }
        Backend::Postgres => {
            let (client, connection) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
                .await
                .expect("connect");
            let task = tokio::spawn(connection);
            let row = client.query_one(query, &[]).await.expect("query");
            drop(client);
            let _ = task.await;
            row.get::<_, i64>(0)
        }
    }
}

both_backends!(sigterm_under_load);
