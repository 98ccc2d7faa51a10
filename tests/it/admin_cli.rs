//! The operator commands: `barong users create` and `barong permissions load`, against a
//! running server sharing the database. Both backends.

use crate::common::http;
use crate::{common, support};
use std::process::Output;
use std::time::{Duration, Instant};

use common::{Backend, TestDb, TestServer, barong_command};
use reqwest::StatusCode;
use serde_json::{Value, json};

const AGENT: &str = "Mozilla/5.0 (admin cli test)";
const PASSWORD: &str = "Iequ4geiEWQw";

fn barong(db: &TestDb, args: &[&str]) -> Output {
    barong_command(db.dir.path(), &db.url)
        .args(args)
        .output()
        .expect("run barong")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Logs in and returns the session cookie.
async fn login(server: &TestServer, email: &str) -> String {
    let response = http()
        .post(server.url("/api/v2/barong/identity/sessions"))
        .header("user-agent", AGENT)
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .expect("login");
    assert_eq!(response.status(), StatusCode::OK, "login {email}");
    support::set_session_cookie(&response).expect("cookie")
}

/// The authz decision for `GET /api/v2/barong<path>`: the bearer or the status.
async fn decide(server: &TestServer, cookie: &str, path: &str) -> Result<String, u16> {
    let response = http()
        .get(format!("{}/api/v2/auth/api/v2/barong{path}", server.authz))
        .header("cookie", format!("_barong_session={cookie}"))
        .header("user-agent", AGENT)
        .send()
        .await
        .expect("authz");
    if response.status() != StatusCode::OK {
        return Err(response.status().as_u16());
    }
    Ok(response.headers()["authorization"]
        .to_str()
        .expect("ascii")
        .to_owned())
}

/// `GET /api/v2/barong<path>` through authz.
async fn get(server: &TestServer, cookie: &str, path: &str) -> (u16, Value) {
    let route = path.split('?').next().unwrap_or(path);
    let bearer = decide(server, cookie, route).await.expect("allowed");
    let response = http()
        .get(server.url(&format!("/api/v2/barong{path}")))
        .header("authorization", bearer)
        .send()
        .await
        .expect("call");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn users_create(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(db.dir.path(), &db.url, &[]);

    let output = barong(
        &db,
        &[
            "users",
            "create",
            "--email",
            "Ops@Example.com",
            "--password",
            PASSWORD,
            "--role",
            "admin",
        ],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    let uid = stdout.split_whitespace().nth(1).expect("uid").to_owned();
    assert!(uid.starts_with("ID") && uid.len() == 12, "{stdout}");

    // Active, e-mail verified (level 1), with the role: it may log in and use the admin API.
    let cookie = login(&server, "ops@example.com").await;
    let (status, me) = get(&server, &cookie, "/resource/users/me").await;
    assert_eq!(status, 200);
    assert_eq!(
        (&me["uid"], &me["role"], &me["state"], &me["level"]),
        (&json!(uid), &json!("admin"), &json!("active"), &json!(1))
    );
    assert_eq!(me["labels"][0]["key"], "email");
    assert_eq!(me["labels"][0]["scope"], "private");
    let (status, users) = get(&server, &cookie, "/admin/users?email=ops@example.com").await;
    assert_eq!((status, users[0]["uid"].clone()), (200, json!(uid)));

    // Refusals: one line, non-zero exit, nothing created.
    for (args, expected) in [
        (
            vec![
                "--email",
                "x@example.com",
                "--password",
                PASSWORD,
                "--role",
                "pirate",
            ],
            "role \"pirate\" does not exist",
        ),
        (
            vec!["--email", "ops@example.com", "--password", PASSWORD],
            "email.taken",
        ),
        (
            vec!["--email", "y@example.com", "--password", "short"],
            "password.",
        ),
        (
            vec!["--email", "not-an-email", "--password", PASSWORD],
            "email.invalid",
        ),
    ] {
        let mut all = vec!["users", "create"];
        all.extend(args);
        let output = barong(&db, &all);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{all:?}: {stderr}");
        assert!(stderr.contains(expected), "{all:?}: {stderr}");
    }
    let store = db.open().await;
    assert_eq!(store.count_users().await.expect("count"), 1);
}

async fn permissions_load(backend: Backend) {
    let db = TestDb::new(backend).await;
    // SQLite has no NOTIFY: the server's snapshot follows within its TTL, shortened here.
    let env: &[(&str, &str)] = match backend {
        Backend::Sqlite => &[("BARONG_AUTHZ_CACHE_TTL", "2")],
        Backend::Postgres => &[],
    };
    let server = TestServer::start(db.dir.path(), &db.url, env);
    assert!(
        barong(
            &db,
            &[
                "users",
                "create",
                "--email",
                "root@example.com",
                "--password",
                PASSWORD,
                "--role",
                "superadmin"
            ]
        )
        .status
        .success()
    );
    assert!(
        barong(
            &db,
            &[
                "users",
                "create",
                "--email",
                "m@example.com",
                "--password",
                PASSWORD
            ]
        )
        .status
        .success()
    );
    let root = login(&server, "root@example.com").await;
    let member = login(&server, "m@example.com").await;
    decide(&server, &member, "/resource/users/me")
        .await
        .expect("member allowed by the default seeds");

    // An invalid file changes nothing.
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.yml");
    std::fs::write(
        &bad,
        "permissions:\n  - { role: member, verb: FETCH, path: api/v2, action: ACCEPT }\n",
    )
    .expect("write");
    let output = barong(&db, &["permissions", "load", bad.to_str().expect("path")]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("entry 1") && stderr.contains("FETCH"),
        "{stderr}"
    );
    let missing = barong(&db, &["permissions", "load", "/nonexistent/p.yml"]);
    assert!(text(&missing.stderr).contains("cannot read"));
    decide(&server, &member, "/resource/users/me")
        .await
        .expect("still allowed");

    // A seeds.yml: its permissions replace the table; the other sections are ignored.
    let file = dir.path().join("seeds.yml");
    std::fs::write(
        &file,
        "levels:\n  - { key: email, value: verified, description: x }\n\
         permissions:\n\
         \x20 - { role: superadmin, verb: all, path: api/v2, action: accept }\n\
         \x20 - { role: member, verb: GET, path: api/v2/peatio, action: ACCEPT, topic: trading }\n",
    )
    .expect("write");
    let output = barong(&db, &["permissions", "load", file.to_str().expect("path")]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("loaded 2 permission(s)"));

    // The running server follows: NOTIFY on PostgreSQL, the snapshot TTL on SQLite.
    let started = Instant::now();
    let bound = match backend {
        Backend::Sqlite => Duration::from_secs(5),
        Backend::Postgres => Duration::from_secs(2),
    };
    loop {
        if decide(&server, &member, "/resource/users/me").await == Err(401) {
            break;
        }
        assert!(started.elapsed() < bound, "not refused within {bound:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, rows) = get(&server, &root, "/admin/permissions").await;
    assert_eq!(status, 200);
    let rows: Vec<(String, String, String, String, Value)> = rows
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
            (
                s("role"),
                s("verb"),
                s("path"),
                s("action"),
                r["topic"].clone(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (
                "superadmin".into(),
                "ALL".into(),
                "api/v2".into(),
                "ACCEPT".into(),
                Value::Null
            ),
            (
                "member".into(),
                "GET".into(),
                "api/v2/peatio".into(),
                "ACCEPT".into(),
                json!("trading")
            ),
        ]
    );

    // A bare list works too, and loading it again is idempotent.
    let list = dir.path().join("list.yml");
    std::fs::write(
        &list,
        "- { role: superadmin, verb: ALL, path: api/v2, action: ACCEPT }\n\
         - { role: member, verb: ALL, path: api/v2/barong/resource, action: ACCEPT }\n",
    )
    .expect("write");
    for _ in 0..2 {
        let output = barong(&db, &["permissions", "load", list.to_str().expect("path")]);
        assert!(output.status.success(), "{}", text(&output.stderr));
    }
    let store = db.open().await;
    assert_eq!(store.list_permissions().await.expect("rows").len(), 2);
    let started = Instant::now();
    while decide(&server, &member, "/resource/users/me")
        .await
        .is_err()
    {
        assert!(
            started.elapsed() < bound,
            "not allowed again within {bound:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

both_backends!(users_create, permissions_load);
