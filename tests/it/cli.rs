//! The `barong` command: settings validation, start-up failures, key and seed commands, and a
//! second start reusing the first one's database and keys.

use crate::common;
use std::process::Output;

use common::{Backend, TestDb, TestServer, barong_command, client};
use serde_json::{Value, json};

fn run(command: &mut std::process::Command) -> Output {
    command.output().expect("run barong")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn invalid_settings_stop_with_one_line_and_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/db", dir.path().display());
    for (name, value, hint) in [
        ("BARONG_CSRF_PROTECTION", "yes", "true or false"),
        (
            "BARONG_SESSION_EXPIRE_TIME",
            "30m",
            "BARONG_SESSION_EXPIRE_TIME",
        ),
        ("BARONG_JWT_ALGORITHM", "HS1", "RS256"),
        ("BARONG_API_ADDR", "not-an-address", "BARONG_API_ADDR"),
        ("BARONG_UID_PREFIX", "X", "BARONG_UID_PREFIX"),
        ("BARONG_DATABASE_URL", "mysql://x", "BARONG_DATABASE_URL"),
    ] {
        for subcommand in ["serve", "config"] {
            let output = run(barong_command(dir.path(), &url)
                .env(name, value)
                .arg(subcommand));
            assert_eq!(output.status.code(), Some(2), "{name}={value} {subcommand}");
            let text = stderr(&output);
            assert_eq!(text.trim().lines().count(), 1, "one line: {text}");
            assert!(text.contains(name) && text.contains(hint), "{text}");
            assert!(!text.contains("panicked"), "{text}");
        }
    }
}

#[test]
fn production_requires_explicit_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/db", dir.path().display());
    let output = run(barong_command(dir.path(), &url)
        .env("BARONG_ENV", "production")
        .arg("serve"));
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("JWT_PRIVATE_KEY_PATH"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn unreachable_postgres_fails_fast_and_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let started = std::time::Instant::now();
    let output = run(
        barong_command(dir.path(), "postgres://postgres@127.0.0.1:1/barong")
            .env("BARONG_DB_CONNECT_TIMEOUT", "1000")
            .arg("serve"),
    );
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert!(text.contains("barong: database unavailable"), "{text}");
    assert!(!text.contains("panicked"), "{text}");
    assert!(
        started.elapsed().as_secs() < 20,
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn config_prints_settings_with_secrets_redacted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/db", dir.path().display());
    let output = run(barong_command(dir.path(), &url)
        .env("BARONG_SMTP_PASSWORD", "hunter2-smtp")
        .env("BARONG_ENCRYPTION_KEY", "ab".repeat(32))
        .arg("config"));
    assert!(output.status.success(), "{}", stderr(&output));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("BARONG_SESSION_EXPIRE_TIME=1800"), "{text}");
    assert!(text.contains("BARONG_AUTHZ_ADDR=127.0.0.1:8002"), "{text}");
    assert!(
        !text.contains("hunter2-smtp") && !text.contains(&"ab".repeat(32)),
        "{text}"
    );
}

#[test]
fn config_file_is_read_and_the_environment_wins() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/db", dir.path().display());
    let file = dir.path().join("barong.toml");
    std::fs::write(&file, "session_expire_time = 900\njwt_expire_time = 120\n").expect("write");
    let output = run(barong_command(dir.path(), &url)
        .env("BARONG_JWT_EXPIRE_TIME", "60")
        .arg("--config")
        .arg(&file)
        .arg("config"));
    assert!(output.status.success(), "{}", stderr(&output));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("BARONG_SESSION_EXPIRE_TIME=900"), "{text}");
    assert!(text.contains("BARONG_JWT_EXPIRE_TIME=60"), "{text}");
}

#[test]
fn keys_generate_writes_each_algorithm_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/db", dir.path().display());
    for algorithm in ["RS256", "ES256", "EdDSA"] {
        let out = dir.path().join(format!("{algorithm}.pem"));
        let output = run(barong_command(dir.path(), &url)
            .args(["keys", "generate", "--algorithm", algorithm, "--out"])
            .arg(&out));
        assert!(output.status.success(), "{algorithm}: {}", stderr(&output));
        let pem = std::fs::read_to_string(&out).expect("pem");
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{pem}");
        let again = run(barong_command(dir.path(), &url)
            .args(["keys", "generate", "--algorithm", algorithm, "--out"])
            .arg(&out));
        assert!(!again.status.success(), "never overwrites an existing key");
    }
    let help = run(barong_command(dir.path(), &url).args(["keys", "generate", "--help"]));
    assert!(String::from_utf8_lossy(&help.stdout).contains("--algorithm"));
}

async fn migrate_and_seed_commands_are_idempotent(backend: Backend) {
    let db = TestDb::new(backend).await;
    let migrate = |db: &TestDb| run(barong_command(db.dir.path(), &db.url).arg("migrate"));
    let first = migrate(&db);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(String::from_utf8_lossy(&first.stdout).contains("applied 10 migration"));
    let second = migrate(&db);
    assert!(String::from_utf8_lossy(&second.stdout).contains("applied 0 migration"));

    let seeds = db.dir.path().join("seeds.yml");
    std::fs::write(
        &seeds,
        "levels:\n  - {key: email, value: verified}\npermissions:\n  - {role: member, verb: GET, path: api/v2/x, action: ACCEPT}\n",
    )
    .expect("write seeds");
    let seed = |db: &TestDb| {
        run(barong_command(db.dir.path(), &db.url)
            .args(["seed", "--file"])
            .arg(&seeds))
    };
    let once = seed(&db);
    assert!(once.status.success(), "{}", stderr(&once));
    assert!(String::from_utf8_lossy(&once.stdout).contains("levels=1 permissions=1"));
    let twice = seed(&db);
    assert!(
        String::from_utf8_lossy(&twice.stdout)
            .contains("levels=0 permissions=0 restrictions=0 users=0")
    );

    let bad = db.dir.path().join("bad.yml");
    std::fs::write(&bad, "levels: 3\n").expect("write");
    let refused = run(barong_command(db.dir.path(), &db.url)
        .args(["seed", "--file"])
        .arg(&bad));
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("invalid seeds file"),
        "{}",
        stderr(&refused)
    );
}

async fn second_start_reuses_database_and_keys(backend: Backend) {
    let db = TestDb::new(backend).await;
    let first = TestServer::start(db.dir.path(), &db.url, &[]);
    let ping = client()
        .get(first.url("/api/v2/barong/public/ping"))
        .send()
        .await
        .expect("ping");
    assert_eq!(
        ping.json::<Value>().await.expect("json"),
        json!({"ping": "pong"})
    );
    assert!(first.log_text().contains("default seeds loaded"));
    let first_logs = first.log_text();
    let status = first.terminate();
    assert!(status.success(), "{status:?}: {first_logs}");
    let key_file = db.dir.path().join("jwt-rs256.pem");
    let key = std::fs::read_to_string(&key_file).expect("generated key");
    let enc = std::fs::read_to_string(db.dir.path().join("encryption.key")).expect("enc key");

    let second = TestServer::start(db.dir.path(), &db.url, &[]);
    let logs = second.log_text();
    assert!(
        !logs.contains("default seeds loaded"),
        "seeds load only on an empty database"
    );
    assert!(logs.contains("using the development signing key"), "{logs}");
    assert_eq!(std::fs::read_to_string(&key_file).expect("key"), key);
    assert_eq!(
        std::fs::read_to_string(db.dir.path().join("encryption.key")).expect("enc"),
        enc
    );
    let logs = second.log_text();
    let status = second.terminate();
    assert!(status.success(), "{status:?}: {logs}");
}

both_backends!(
    migrate_and_seed_commands_are_idempotent,
    second_start_reuses_database_and_keys
);
