//! Helpers of the identity tests: a local SMTP server (aiosmtpd, `smtp_sink.py`), a fake of
//! the captcha providers speaking their real protocols, raw SQL on the test database, and
//! small HTTP helpers.
#![allow(
    dead_code,
    reason = "a helper kept for the areas that use it may be unused in the others"
)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Form, Query};
use axum::routing::{get, post};
use md5::{Digest, Md5};
use serde_json::Value;

use crate::common::{Backend, TestDb};

pub mod webauthn;

/// A free loopback port (bound then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The venv's Python (aiosmtpd, mmdb-writer): `BARONG_TEST_PYTHON`, else `.venv/bin/python`
/// (see `.ci/run`).
pub fn python() -> PathBuf {
    if let Ok(path) = std::env::var("BARONG_TEST_PYTHON") {
        return PathBuf::from(path);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python")
}

/// A received mail as `smtp_sink.py` wrote it.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: Vec<String>,
    pub subject: String,
    pub body: String,
}

/// aiosmtpd on a loopback port, writing every message into `dir`.
pub struct SmtpSink {
    child: Option<Child>,
    pub port: u16,
    pub dir: PathBuf,
}

impl SmtpSink {
    pub fn start(port: u16, dir: &Path) -> SmtpSink {
        std::fs::create_dir_all(dir).expect("mail dir");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_sink.py");
        let mut child = Command::new(python())
            .arg(script)
            .arg(port.to_string())
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start smtp_sink.py (python with aiosmtpd at .venv/bin/python; see .ci/run)");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("ready line");
        assert_eq!(line.trim(), "ready", "smtp sink did not start");
        SmtpSink {
            child: Some(child),
            port,
            dir: dir.to_owned(),
        }
    }

    /// Every mail received so far, in arrival order.
    pub fn mails(&self) -> Vec<Mail> {
        read_mails(&self.dir)
    }

    /// Waits until a mail to `to` whose subject is `subject` arrives; returns it.
    pub async fn wait_for(&self, to: &str, subject: &str) -> Mail {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(mail) = self
                .mails()
                .into_iter()
                .rev()
                .find(|m| m.subject == subject && m.to.iter().any(|t| t == to))
            {
                return mail;
            }
            assert!(
                Instant::now() < deadline,
                "no mail {subject:?} to {to}; got {:?}",
                self.mails()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Like [`SmtpSink::wait_for`], among the mails after the first `skip` ones.
    pub async fn wait_for_new(&self, skip: usize, to: &str, subject: &str) -> Mail {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(mail) = self
                .mails()
                .into_iter()
                .skip(skip)
                .find(|m| m.subject == subject && m.to.iter().any(|t| t == to))
            {
                return mail;
            }
            assert!(Instant::now() < deadline, "no new mail {subject:?} to {to}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn stop(mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn read_mails(dir: &Path) -> Vec<Mail> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "json"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .filter_map(|text| serde_json::from_str::<Value>(&text).ok())
        .map(|v| Mail {
            to: v["to"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|t| t.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
            subject: v["subject"].as_str().unwrap_or_default().to_owned(),
            body: v["body"].as_str().unwrap_or_default().to_owned(),
        })
        .collect()
}

/// The token after `name=` in a mail body (JWT characters only).
pub fn token_in(body: &str, name: &str) -> String {
    let start = body
        .find(&format!("{name}="))
        .unwrap_or_else(|| panic!("no {name} in {body}"))
        + name.len()
        + 1;
    body[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect()
}

pub fn md5_hex(text: &str) -> String {
    hex::encode(Md5::digest(text.as_bytes()))
}

/// The GeeTest challenge the fake hands out.
pub const GEETEST_CHALLENGE: &str = "0123456789abcdef0123456789abcdef";
/// The reCAPTCHA secret and the one response the fake accepts.
pub const RECAPTCHA_SECRET: &str = "test-secret";
pub const RECAPTCHA_GOOD: &str = "good-response";

/// A fake of Google's `siteverify` and GeeTest's `register.php`/`validate.php` on a loopback
/// port: answers `{"success":true}` only for the good secret and response; registers the
/// fixed challenge for any `gt`; validates a `seccode` starting with `good`.
pub async fn start_captcha_fake() -> String {
    async fn siteverify(Form(form): Form<std::collections::HashMap<String, String>>) -> String {
        let ok = form.get("secret").map(String::as_str) == Some(RECAPTCHA_SECRET)
            && form.get("response").map(String::as_str) == Some(RECAPTCHA_GOOD);
        serde_json::json!({ "success": ok }).to_string()
    }
    async fn register(Query(query): Query<std::collections::HashMap<String, String>>) -> String {
        if query.get("gt").is_some_and(|g| !g.is_empty()) {
            GEETEST_CHALLENGE.to_owned()
        } else {
            "0".to_owned()
        }
    }
    async fn validate(Form(form): Form<std::collections::HashMap<String, String>>) -> String {
        match form.get("seccode") {
            Some(code) if code.starts_with("good") => md5_hex(code),
            _ => "false".to_owned(),
        }
    }
    let app = Router::new()
        .route("/recaptcha/api/siteverify", post(siteverify))
        .route("/geetest/register.php", get(register))
        .route("/geetest/validate.php", post(validate));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind fake");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

/// Runs SQL directly on the test database (to set states the API cannot set yet).
pub async fn sql(db: &TestDb, statement: &str) {
    match db.backend {
        Backend::Sqlite => {
            let path = db.url.trim_start_matches("sqlite://").to_owned();
            let statement = statement.to_owned();
            tokio::task::spawn_blocking(move || {
                let conn = rusqlite::Connection::open(path).expect("open sqlite");
                conn.busy_timeout(Duration::from_secs(5)).expect("timeout");
                conn.execute_batch(&statement).expect("sql");
            })
            .await
            .expect("join");
        }
        Backend::Postgres => {
            let (client, connection) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
                .await
                .expect("connect");
            let task = tokio::spawn(connection);
            client.batch_execute(statement).await.expect("sql");
            drop(client);
            let _ = task.await;
        }
    }
}

/// The `_barong_session` value a response set, if any.
pub fn set_session_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("_barong_session="))
        .map(|v| v.split(';').next().unwrap_or_default().to_owned())
}
