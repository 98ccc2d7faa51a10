//! Sessions and devices through the real request path, on both backends: users log in over the
//! identity API, the authz listener mints their bearer from the cookie, the REST listener lists
//! and ends sessions; every "refused" is the next authz decision. Admin operations with their
//! abilities and audit rows, a second instance on the same PostgreSQL database, the new-device
//! notice (mail and event), the binding policies, and API keys' last use.

use crate::{common, support};
use std::time::{Duration, Instant};

use common::{Backend, TestDb, TestServer, barong_command};
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{SmtpSink, free_port, set_session_cookie};

const PASSWORD: &str = "Iequ4geiEWQw";
const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0";
const SAFARI: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1";
const MOBILE: &str = "BarongMobile/2.1 (Android 14)";

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// `barong users create`: an active user; its uid.
fn create_user(db: &TestDb, email: &str, role: &str) -> String {
    let output = barong_command(db.dir.path(), &db.url)
        .args(["users", "create", "--email", email, "--password", PASSWORD])
        .args(["--role", role])
        .output()
        .expect("run barong users create");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    stdout.split_whitespace().nth(1).expect("uid").to_owned()
}

/// A logged-in browser: its cookie, CSRF token, agent and the address it speaks from.
#[derive(Clone)]
struct Login {
    cookie: String,
    csrf: String,
    agent: &'static str,
    ip: &'static str,
}

async fn login(server: &TestServer, email: &str, agent: &'static str, ip: &'static str) -> Login {
    let response = http()
        .post(server.url("/api/v2/barong/identity/sessions"))
        .header("user-agent", agent)
        .header("x-forwarded-for", ip)
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .expect("login");
    assert_eq!(response.status(), StatusCode::OK, "login {email}");
    let cookie = set_session_cookie(&response).expect("session cookie");
    let body: Value = response.json().await.expect("json");
    Login {
        cookie,
        csrf: body["csrf_token"].as_str().expect("csrf").to_owned(),
        agent,
        ip,
    }
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Login {
    /// The authz decision for `method /api/v2/barong<path>` from `ip`: the bearer, or the
    /// status and error key.
    async fn decide_from(
        &self,
        server: &TestServer,
        method: &str,
        path: &str,
        ip: &str,
    ) -> Result<String, (u16, String)> {
        let response = http()
            .get(format!("{}/api/v2/auth/api/v2/barong{path}", server.authz))
            .header("x-original-method", method)
            .header("cookie", format!("_barong_session={}", self.cookie))
            .header("x-csrf-token", &self.csrf)
            .header("user-agent", self.agent)
            .header("x-forwarded-for", ip)
            .send()
            .await
            .expect("authz");
        if response.status() != StatusCode::OK {
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            let key = body["errors"][0].as_str().unwrap_or_default().to_owned();
            return Err((status, key));
        }
        Ok(response.headers()["authorization"]
            .to_str()
            .expect("ascii")
            .to_owned())
    }

    async fn decide(
        &self,
        server: &TestServer,
        method: &str,
        path: &str,
    ) -> Result<String, (u16, String)> {
        self.decide_from(server, method, path, self.ip).await
    }

    /// Whether the session still authorizes a request (the next decision).
    async fn alive(&self, server: &TestServer) -> bool {
        match self.decide(server, "GET", "/resource/users/me").await {
            Ok(_) => true,
            Err((401, key)) if key == "authz.invalid_session" => false,
            Err(other) => panic!("unexpected decision {other:?}"),
        }
    }

    /// `method /api/v2/barong<path>` as the gateway forwards it: the decision (which must
    /// allow it), then the REST call with the bearer and the browser's cookie.
    async fn call(&self, server: &TestServer, method: &str, path: &str) -> Answer {
        let route = path.split('?').next().unwrap_or(path);
        let bearer = self
            .decide(server, method, route)
            .await
            .unwrap_or_else(|e| panic!("authz refused {method} {path}: {e:?}"));
        rest(
            server,
            method,
            path,
            &bearer,
            Some(&self.cookie),
            self.agent,
        )
        .await
    }
}

async fn rest(
    server: &TestServer,
    method: &str,
    path: &str,
    bearer: &str,
    cookie: Option<&str>,
    agent: &str,
) -> Answer {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut request = http()
        .request(method, server.url(&format!("/api/v2/barong{path}")))
        .header("authorization", bearer)
        .header("user-agent", agent);
    if let Some(cookie) = cookie {
        request = request.header("cookie", format!("_barong_session={cookie}"));
    }
    let response = request.send().await.expect("call");
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

fn ids(body: &Value) -> Vec<String> {
    body.as_array()
        .expect("array")
        .iter()
        .map(|s| s["id"].as_str().expect("id").to_owned())
        .collect()
}

/// The session of `list` whose `device` is `device`.
fn by_device<'a>(list: &'a Value, device: &str) -> &'a Value {
    list.as_array()
        .expect("array")
        .iter()
        .find(|s| s["device"] == device)
        .unwrap_or_else(|| panic!("no {device} session in {list}"))
}

/// Counts rows with one SQL query on the test database.
async fn count(db: &TestDb, query: &str) -> i64 {
    match db.backend {
        Backend::Sqlite => {
            let path = db.url.trim_start_matches("sqlite://").to_owned();
            let query = query.to_owned();
            tokio::task::spawn_blocking(move || {
                let conn = rusqlite::Connection::open(path).expect("open sqlite");
                conn.busy_timeout(Duration::from_secs(5)).expect("timeout");
                conn.query_row(&query, [], |r| r.get(0)).expect("count")
            })
            .await
            .expect("join")
        }
        Backend::Postgres => {
            let (client, connection) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
                .await
                .expect("connect");
            let task = tokio::spawn(connection);
            let n: i64 = client.query_one(query, &[]).await.expect("count").get(0);
            drop(client);
            let _ = task.await;
            n
        }
    }
}

/// Polls `check` every 25 ms until it holds; panics after `within`. Returns how long it took.
async fn eventually<F, Fut>(what: &str, within: Duration, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while started.elapsed() < within {
        if check().await {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{what}: not within {within:?}");
}

// ---- the user's own sessions ------------------------------------------------------------------

/// The browser-shaped check: one user on two browsers (and a third later), another user beside;
/// the list, `current`, ending one from the other, "all others", another user's id.
async fn users_list_and_end_their_sessions(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(db.dir.path(), &db.url, &[]);
    create_user(&db, "alice@sessions.test", "member");
    create_user(&db, "bob@sessions.test", "member");
    let chrome = login(&server, "alice@sessions.test", CHROME, "127.0.0.1").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let firefox = login(&server, "alice@sessions.test", FIREFOX, "127.0.0.1").await;
    let bob = login(&server, "bob@sessions.test", CHROME, "127.0.0.1").await;

    // Alice's two sessions, newest first, the one asking marked current; addresses masked
    // (masking is on by default), no country without GeoIP.
    let list = chrome.call(&server, "GET", "/resource/sessions").await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert_eq!(list.headers["total"], "2");
    let sessions = list.body.as_array().expect("array");
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions[0]["device"], "Firefox on Linux");
    assert_eq!(sessions[1]["device"], "Chrome on Windows");
    assert_eq!(sessions[0]["current"], false);
    assert_eq!(sessions[1]["current"], true);
    let mine = &sessions[1];
    assert_eq!(mine["user_agent"], CHROME);
    assert_eq!(mine["user_ip"], "127.0.*.*");
    assert_eq!(mine["user_ip_country"], Value::Null);
    assert_eq!(mine["authenticated_with"], "password");
    for field in ["created_at", "last_seen_at", "expire_at"] {
        let text = mine[field].as_str().expect(field);
        assert!(
            chrono::DateTime::parse_from_rfc3339(text).is_ok(),
            "{field}: {text}"
        );
    }
    // The id is opaque: neither the cookie nor its stored hash.
    let id = mine["id"].as_str().expect("id");
    assert_eq!(id.len(), 32);
    assert_ne!(id, chrome.cookie);
    assert_ne!(id, barong::domain::session_key(&chrome.cookie));
    // From the other browser, the other one is current; without a cookie none is.
    let other = firefox.call(&server, "GET", "/resource/sessions").await;
    assert_eq!(by_device(&other.body, "Firefox on Linux")["current"], true);
    assert_eq!(
        by_device(&other.body, "Chrome on Windows")["current"],
        false
    );
    let bearer = chrome
        .decide(&server, "GET", "/resource/sessions")
        .await
        .expect("bearer");
    let anonymous = rest(&server, "GET", "/resource/sessions", &bearer, None, CHROME).await;
    assert!(
        anonymous
            .body
            .as_array()
            .expect("array")
            .iter()
            .all(|s| s["current"] == false),
        "{}",
        anonymous.body
    );
    // Pagination as everywhere.
    let page = chrome
        .call(&server, "GET", "/resource/sessions?limit=1&page=2")
        .await;
    assert_eq!(ids(&page.body), [mine["id"].as_str().expect("id")]);
    assert_eq!(page.headers["total"], "2");

    // Bob's session is not Alice's to end: 404, and Bob is still in.
    let bobs = bob.call(&server, "GET", "/resource/sessions").await;
    let bob_id = ids(&bobs.body).remove(0);
    let refused = chrome
        .call(&server, "DELETE", &format!("/resource/sessions/{bob_id}"))
        .await;
    assert_eq!(
        (refused.status, &refused.body),
        (404, &json!({"errors": ["resource.session.not_found"]}))
    );
    assert!(bob.alive(&server).await);

    // Chrome ends Firefox: the very next decision refuses Firefox (its entry was cached).
    assert!(firefox.alive(&server).await);
    let firefox_id = by_device(&list.body, "Firefox on Linux")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let ended = chrome
        .call(
            &server,
            "DELETE",
            &format!("/resource/sessions/{firefox_id}"),
        )
        .await;
    assert_eq!(ended.status, 204, "{}", ended.body);
    assert!(!firefox.alive(&server).await, "ended session still allowed");
    assert!(chrome.alive(&server).await);
    let again = chrome
        .call(
            &server,
            "DELETE",
            &format!("/resource/sessions/{firefox_id}"),
        )
        .await;
    assert_eq!(again.status, 404);
    let uid_filter = "user_id = (SELECT id FROM users WHERE email = 'alice@sessions.test')";
    let activities = format!(
        "SELECT COUNT(*) FROM activities WHERE {uid_filter} AND topic = 'session' AND action = 'end'"
    );
    assert_eq!(count(&db, &activities).await, 1);

    // Two more devices; "all others" from Chrome ends both, at once, and keeps Chrome.
    let safari = login(&server, "alice@sessions.test", SAFARI, "127.0.0.1").await;
    let firefox = login(&server, "alice@sessions.test", FIREFOX, "127.0.0.1").await;
    assert!(safari.alive(&server).await && firefox.alive(&server).await);
    let ended = chrome.call(&server, "DELETE", "/resource/sessions").await;
    assert_eq!(ended.status, 204, "{}", ended.body);
    assert!(!safari.alive(&server).await);
    assert!(!firefox.alive(&server).await);
    assert!(chrome.alive(&server).await);
    assert!(bob.alive(&server).await);
    let left = chrome.call(&server, "GET", "/resource/sessions").await;
    assert_eq!(ids(&left.body), [mine["id"].as_str().expect("id")]);
    let all = format!(
        "SELECT COUNT(*) FROM activities WHERE {uid_filter} AND topic = 'session' AND action = 'end_all'"
    );
    assert_eq!(count(&db, &all).await, 1);

    // Ending the current session is a logout from the list.
    let own = chrome
        .call(&server, "DELETE", &format!("/resource/sessions/{id}"))
        .await;
    assert_eq!(own.status, 204);
    assert!(!chrome.alive(&server).await);
}

// ---- the admin operations ---------------------------------------------------------------------

async fn admins_list_and_end_anyones_sessions(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(db.dir.path(), &db.url, &[]);
    create_user(&db, "root@sessions.test", "superadmin");
    create_user(&db, "tech@sessions.test", "technical");
    let alice_uid = create_user(&db, "alice@sessions.test", "member");
    let root = login(&server, "root@sessions.test", CHROME, "127.0.0.1").await;
    let tech = login(&server, "tech@sessions.test", CHROME, "127.0.0.1").await;
    let chrome = login(&server, "alice@sessions.test", CHROME, "127.0.0.1").await;
    let firefox = login(&server, "alice@sessions.test", FIREFOX, "127.0.0.7").await;
    let path = format!("/admin/users/sessions?uid={alice_uid}");

    // Read: unmasked, no `current` (the admin's cookie is not the user's).
    let list = root.call(&server, "GET", &path).await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert_eq!(list.headers["total"], "2");
    let ff = by_device(&list.body, "Firefox on Linux");
    assert_eq!(ff["user_ip"], "127.0.0.7");
    assert!(ff.get("current").is_none());
    let tech_list = tech.call(&server, "GET", &path).await;
    assert_eq!(tech_list.status, 200, "technical reads users");
    let missing = root
        .call(&server, "GET", "/admin/users/sessions?uid=ID0000000000")
        .await;
    assert_eq!(missing.body, json!({"errors": ["admin.user.doesnt_exist"]}));
    let no_uid = root.call(&server, "GET", "/admin/users/sessions").await;
    assert_eq!(no_uid.status, 422);
    assert_eq!(no_uid.body["errors"][0], "admin.user.missing_uid");

    // A read-only role may not end sessions: the ability answers (the bearer of a path its
    // permissions allow is taken straight to the REST listener).
    let bearer = tech
        .decide(&server, "GET", "/resource/users/me")
        .await
        .expect("bearer");
    let refused = rest(&server, "DELETE", &path, &bearer, None, CHROME).await;
    assert_eq!(
        (refused.status, &refused.body),
        (401, &json!({"errors": ["admin.ability.not_permitted"]}))
    );
    assert!(chrome.alive(&server).await && firefox.alive(&server).await);

    // One session, then an unknown id, then all of them; each audited with Alice as target.
    let ff_id = ff["id"].as_str().expect("id");
    let one = root
        .call(&server, "DELETE", &format!("{path}&id={ff_id}"))
        .await;
    assert_eq!(one.status, 204, "{}", one.body);
    assert!(!firefox.alive(&server).await);
    assert!(chrome.alive(&server).await);
    let unknown = root
        .call(&server, "DELETE", &format!("{path}&id={ff_id}"))
        .await;
    assert_eq!(
        (unknown.status, &unknown.body),
        (404, &json!({"errors": ["admin.session.doesnt_exist"]}))
    );
    let all = root.call(&server, "DELETE", &path).await;
    assert_eq!(all.status, 204);
    assert!(!chrome.alive(&server).await);
    assert!(root.alive(&server).await, "the admin's own session stays");
    let audited = format!(
        "SELECT COUNT(*) FROM activities WHERE category = 'admin' AND target_uid = '{alice_uid}'
         AND action = 'delete'"
    );
    assert_eq!(count(&db, &audited).await, 3);
    let user_rows = format!(
        "SELECT COUNT(*) FROM activities WHERE category = 'user' AND topic = 'session'
         AND action IN ('end', 'end_all')
         AND user_id = (SELECT id FROM users WHERE uid = '{alice_uid}')"
    );
    assert_eq!(count(&db, &user_rows).await, 2);
}

// ---- another instance -------------------------------------------------------------------------

/// Two instances on one PostgreSQL database: a session ended through one is refused by the
/// other (which had it cached) as soon as the notification arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ending_reaches_a_second_instance() {
    let db = TestDb::new(Backend::Postgres).await;
    let a = TestServer::start(db.dir.path(), &db.url, &[]);
    // One data dir: the second instance reuses the keys the first generated.
    let b = TestServer::start(db.dir.path(), &db.url, &[]);
    create_user(&db, "alice@sessions.test", "member");
    let chrome = login(&a, "alice@sessions.test", CHROME, "127.0.0.1").await;
    let firefox = login(&a, "alice@sessions.test", FIREFOX, "127.0.0.1").await;
    // B caches both sessions.
    assert!(chrome.alive(&b).await && firefox.alive(&b).await);
    let list = chrome.call(&a, "GET", "/resource/sessions").await;
    let firefox_id = by_device(&list.body, "Firefox on Linux")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let ended = chrome
        .call(&a, "DELETE", &format!("/resource/sessions/{firefox_id}"))
        .await;
    assert_eq!(ended.status, 204);
    assert!(
        !firefox.alive(&a).await,
        "refused at once where it was ended"
    );
    // The documented bound is BARONG_AUTHZ_CACHE_TTL (10 s) when a notification is lost;
    // with LISTEN up it is the notification's delay.
    let took = eventually(
        "refused on the second instance",
        Duration::from_secs(10),
        || {
            let firefox = firefox.clone();
            let b = &b;
            async move { !firefox.alive(b).await }
        },
    )
    .await;
    eprintln!("second instance refused the ended session after {took:?}");
    assert!(
        took < Duration::from_secs(2),
        "took {took:?}: the relay, not the TTL"
    );
    assert!(chrome.alive(&b).await);
    // "All others" through B reaches A too.
    let safari = login(&b, "alice@sessions.test", SAFARI, "127.0.0.1").await;
    assert!(safari.alive(&a).await);
    assert_eq!(
        chrome.call(&b, "DELETE", "/resource/sessions").await.status,
        204
    );
    assert!(!safari.alive(&b).await);
    eventually(
        "all others refused on the first instance",
        Duration::from_secs(10),
        || {
            let safari = safari.clone();
            let a = &a;
            async move { !safari.alive(a).await }
        },
    )
    .await;
}

// ---- the new-device notice --------------------------------------------------------------------

async fn new_device_logins_send_a_notice(backend: Backend) {
    let db = TestDb::new(backend).await;
    let sink = SmtpSink::start(free_port(), &db.dir.path().join("mail"));
    let port = sink.port.to_string();
    let server = TestServer::start(
        db.dir.path(),
        &db.url,
        &[
            ("BARONG_SMTP_HOST", "127.0.0.1"),
            ("BARONG_SMTP_PORT", port.as_str()),
            ("BARONG_MAIL_POLL_INTERVAL", "200"),
            ("BARONG_SESSION_NEW_DEVICE_NOTICE", "true"),
            ("BARONG_EVENT_API_ENABLED", "true"),
        ],
    );
    let email = "alice@sessions.test";
    create_user(&db, email, "member");
    let notices = || {
        sink.mails()
            .into_iter()
            .filter(|m| m.subject == "New Device" && m.to.iter().any(|t| t == email))
            .collect::<Vec<_>>()
    };
    // The first login is the baseline; the same device and network again is known.
    login(&server, email, CHROME, "127.0.0.1").await;
    login(&server, email, CHROME, "127.0.9.9").await;
    // A new browser: mailed, with the device, the address and the time.
    login(&server, email, FIREFOX, "127.0.0.1").await;
    let mail = sink.wait_for(email, "New Device").await;
    assert!(mail.body.contains("Firefox on Linux"), "{}", mail.body);
    assert!(mail.body.contains("127.0.0.1"), "{}", mail.body);
    // Mail goes out in order: the notice of the third login follows any of the first two.
    assert_eq!(notices().len(), 1, "the first two logins sent none");
    // A known device on a new network is new too; the event carries what the mail does.
    login(&server, email, FIREFOX, "127.0.0.2").await;
    login(&server, email, FIREFOX, "10.20.30.40").await;
    eventually("the second notice", Duration::from_secs(30), || async {
        notices().len() >= 2
    })
    .await;
    let mails = notices();
    assert_eq!(mails.len(), 2, "127.0.0.2 is the 127.0/16 seen before");
    assert!(mails[1].body.contains("10.20.30.40"));
    let events = "SELECT COUNT(*) FROM event_outbox
                  WHERE payload LIKE '%system.session.new_device%'
                  AND payload LIKE '%Firefox on Linux%'";
    eventually("new-device events", Duration::from_secs(5), || async {
        count(&db, events).await == 2
    })
    .await;
}

// ---- the binding policies ---------------------------------------------------------------------

async fn binding_policies_per_client(backend: Backend) {
    let db = TestDb::new(backend).await;
    let me = "/resource/users/me";
    {
        // Barong's /16 for browsers; a matching mobile agent is bound to nothing and lives a day.
        let server = TestServer::start(
            db.dir.path(),
            &db.url,
            &[
                ("BARONG_SESSION_CLIENT_AGENT", "^BarongMobile/"),
                ("BARONG_SESSION_CLIENT_BINDING", "none"),
                ("BARONG_SESSION_CLIENT_EXPIRE_TIME", "86400"),
            ],
        );
        create_user(&db, "alice@sessions.test", "member");
        let browser = login(&server, "alice@sessions.test", CHROME, "127.0.0.1").await;
        let mobile = login(&server, "alice@sessions.test", MOBILE, "127.0.0.1").await;
        assert!(
            browser
                .decide_from(&server, "GET", me, "127.0.200.1")
                .await
                .is_ok()
        );
        assert!(
            mobile
                .decide_from(&server, "GET", me, "10.1.2.3")
                .await
                .is_ok()
        );
        assert!(
            mobile
                .decide_from(&server, "GET", me, "192.168.7.7")
                .await
                .is_ok()
        );
        let list = mobile.call(&server, "GET", "/resource/sessions").await;
        let expire_at = by_device(&list.body, "BarongMobile on Android")["expire_at"]
            .as_str()
            .expect("expire_at")
            .to_owned();
        let expire_at = chrono::DateTime::parse_from_rfc3339(&expire_at).expect("time");
        let lifetime = expire_at.timestamp() - chrono::Utc::now().timestamp();
        assert!(lifetime > 86_000, "mobile session lives a day: {lifetime}");
        let browser_expiry = by_device(&list.body, "Chrome on Windows")["expire_at"]
            .as_str()
            .expect("expire_at")
            .to_owned();
        let browser_expiry = chrono::DateTime::parse_from_rfc3339(&browser_expiry).expect("t");
        assert!(browser_expiry.timestamp() - chrono::Utc::now().timestamp() <= 1800);
        assert_eq!(
            browser.decide_from(&server, "GET", me, "10.1.2.3").await,
            Err((401, "authz.client_session_mismatch".into()))
        );
        assert_eq!(
            browser.decide(&server, "GET", me).await,
            Err((401, "authz.invalid_session".into())),
            "a mismatch destroys the session, as in Barong"
        );
    }
    {
        // The exact address.
        let server = TestServer::start(
            db.dir.path(),
            &db.url,
            &[("BARONG_SESSION_BINDING", "address")],
        );
        let browser = login(&server, "alice@sessions.test", CHROME, "127.0.0.1").await;
        assert!(browser.decide(&server, "GET", me).await.is_ok());
        assert_eq!(
            browser.decide_from(&server, "GET", me, "127.0.0.2").await,
            Err((401, "authz.client_session_mismatch".into()))
        );
    }
    {
        // No binding at all.
        let server = TestServer::start(
            db.dir.path(),
            &db.url,
            &[("BARONG_SESSION_BINDING", "none")],
        );
        let browser = login(&server, "alice@sessions.test", CHROME, "127.0.0.1").await;
        assert!(
            browser
                .decide_from(&server, "GET", me, "203.0.113.9")
                .await
                .is_ok()
        );
        assert!(
            browser
                .decide_from(&server, "GET", me, "2001:db8::1")
                .await
                .is_ok()
        );
    }
}

// ---- API keys: last use -----------------------------------------------------------------------

async fn api_keys_show_their_last_use(backend: Backend) {
    use aws_lc_rs::hmac;
    use barong::crypto::encryption::Encryptor;
    use barong::crypto::keys::EncryptionKey;
    use barong::domain::{KeyHolder, NewApiKey};

    const KEY: &str = "0101010101010101010101010101010101010101010101010101010101010101";
    let db = TestDb::new(backend).await;
    let server = TestServer::start(db.dir.path(), &db.url, &[("BARONG_ENCRYPTION_KEY", KEY)]);
    create_user(&db, "alice@sessions.test", "member");
    let store = db.open().await;
    support::sql(
        &db,
        "UPDATE users SET otp = true WHERE email = 'alice@sessions.test'",
    )
    .await;
    let user = store
        .find_user_by_email("alice@sessions.test")
        .await
        .expect("find")
        .expect("user");
    let encryptor = Encryptor::new(&EncryptionKey::parse(KEY).expect("key"));
    let (kid, secret) = ("0123456789abcdef", "0123456789abcdef0123456789abcdef");
    store
        .create_api_key(&NewApiKey {
            holder: KeyHolder::User(user.id),
            kid: kid.into(),
            algorithm: "HS256".into(),
            scope: vec![],
            secret_encrypted: encryptor.encrypt(secret),
            state: "active".into(),
        })
        .await
        .expect("key");
    let signed = || async {
        let nonce = chrono::Utc::now().timestamp_millis().to_string();
        let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
        let signature = hex::encode(hmac::sign(&key, format!("{nonce}{kid}").as_bytes()).as_ref());
        let response = http()
            .get(format!(
                "{}/api/v2/auth/api/v2/barong/resource/api_keys",
                server.authz
            ))
            .header("x-auth-apikey", kid)
            .header("x-auth-nonce", nonce)
            .header("x-auth-signature", signature)
            .send()
            .await
            .expect("authz");
        assert_eq!(response.status(), StatusCode::OK);
        response.headers()["authorization"]
            .to_str()
            .expect("ascii")
            .to_owned()
    };
    let bearer = signed().await;
    let started = chrono::Utc::now().timestamp();
    let took = eventually(
        "last use written behind",
        Duration::from_secs(5),
        || async {
            store
                .find_api_key(kid)
                .await
                .expect("find")
                .and_then(|k| k.last_used_at)
                .is_some()
        },
    )
    .await;
    eprintln!("API key last use stored after {took:?}");
    let listed = rest(&server, "GET", "/resource/api_keys", &bearer, None, CHROME).await;
    let last = listed.body[0]["last_used_at"]
        .as_str()
        .expect("last_used_at");
    let last = chrono::DateTime::parse_from_rfc3339(last).expect("time");
    assert!((last.timestamp() - started).abs() <= 2, "{last}");
}

both_backends!(
    users_list_and_end_their_sessions,
    admins_list_and_end_anyones_sessions,
    new_device_logins_send_a_notice,
    binding_policies_per_client,
    api_keys_show_their_last_use,
);
