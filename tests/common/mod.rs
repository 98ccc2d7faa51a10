//! Test harness: fresh databases on both backends and the real `barong` binary on free
//! loopback ports, talked to over real sockets.
#![allow(
    dead_code,
    reason = "a helper kept for the areas that use it may be unused in the others"
)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use barong::store::{self, Store, StoreOptions};

#[macro_use]
pub mod gateway;

/// Which database a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs one async test body once per backend: `both_backends!(name)` expects
/// `async fn name(backend: Backend)` in scope and generates `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::common::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::common::Backend::Postgres).await
            }
        }
    )+};
}

/// The PostgreSQL server the tests create their databases on.
pub fn postgres_admin_url() -> String {
    std::env::var("BARONG_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A fresh, empty database (a temp SQLite file, or a new PostgreSQL database dropped on drop).
pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    pub dir: tempfile::TempDir,
    pg_name: Option<String>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        let dir = tempfile::tempdir().expect("tempdir");
        match backend {
            Backend::Sqlite => TestDb {
                backend,
                url: format!("sqlite://{}", dir.path().join("barong.db").display()),
                dir,
                pg_name: None,
            },
            Backend::Postgres => {
                let name = format!(
                    "barong_test_{}_{}_{}",
                    std::process::id(),
                    COUNTER.fetch_add(1, Ordering::SeqCst),
                    rand_suffix()
                );
                pg_admin(&format!("CREATE DATABASE {name}")).await;
                let admin = postgres_admin_url();
                let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
                TestDb {
                    backend,
                    url: format!("{base}/{name}"),
                    dir,
                    pg_name: Some(name),
                }
            }
        }
    }

    /// The URL of the same database reached through `port` on loopback (see [`TcpProxy`]).
    pub fn url_via(&self, port: u16) -> String {
        let (before, after) = self
            .url
            .split_once("@127.0.0.1:5432")
            .expect("a local PostgreSQL URL");
        format!("{before}@127.0.0.1:{port}{after}")
    }

    /// Every byte the database holds that a reader of its files or tables could see: the SQLite
    /// files (main and WAL) or every PostgreSQL table as JSON rows.
    pub async fn raw_text(&self) -> String {
        match self.backend {
            Backend::Sqlite => {
                let path = self.url.trim_start_matches("sqlite://").to_owned();
                let mut bytes = std::fs::read(&path).expect("db file");
                if let Ok(wal) = std::fs::read(format!("{path}-wal")) {
                    bytes.extend(wal);
                }
                String::from_utf8_lossy(&bytes).into_owned()
            }
            Backend::Postgres => {
                let (client, connection) =
                    tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
                        .await
                        .expect("connect");
                let task = tokio::spawn(connection);
                let tables = client
                    .query(
                        "SELECT table_name::text FROM information_schema.tables
                         WHERE table_schema = 'public'",
                        &[],
                    )
                    .await
                    .expect("tables");
                let mut text = String::new();
                for table in tables {
                    let name: String = table.get(0);
                    let rows = client
                        .query(&format!("SELECT row_to_json(t)::text FROM {name} t"), &[])
                        .await
                        .expect("rows");
                    for row in rows {
                        text.push_str(&row.get::<_, String>(0));
                        text.push('\n');
                    }
                }
                drop(client);
                let _ = task.await;
                text
            }
        }
    }

    /// Opens the store through the library, as the server does.
    pub async fn open(&self) -> Arc<dyn Store> {
        store::open(&StoreOptions {
            url: self.url.clone(),
            pool_size: 4,
            connect_timeout: Duration::from_secs(5),
        })
        .await
        .unwrap_or_else(|e| panic!("open {:?}: {e}", self.backend))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(name) = self.pg_name.take() {
            // Drop runs outside async; a short-lived runtime on its own thread does the DROP.
            let _ = std::thread::spawn(move || {
                if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    rt.block_on(pg_admin(&format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )));
                }
            })
            .join();
        }
    }
}

fn rand_suffix() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    nanos % 100_000
}

/// Runs one statement on the admin database; PostgreSQL must be reachable (never skipped).
pub async fn pg_admin(sql: &str) {
    let url = postgres_admin_url();
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL must be reachable at {url} for the tests: {e}"));
    let task = tokio::spawn(connection);
    client
        .batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    drop(client);
    let _ = task.await;
}

/// The `barong` binary built by cargo for these tests.
pub fn barong_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_barong"))
}

/// A `barong` command with a clean environment: only what the test sets, plus PATH.
pub fn barong_command(data_dir: &Path, db_url: &str) -> Command {
    let mut command = Command::new(barong_bin());
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("BARONG_DATA_DIR", data_dir)
        .env("BARONG_DATABASE_URL", db_url)
        .env("BARONG_LOG_FORMAT", "json")
        .env("RUST_LOG", "info");
    command
}

/// A running `barong serve`, killed on drop.
pub struct TestServer {
    child: Option<Child>,
    pub api: String,
    pub authz: String,
    /// `http://` address of the authz gRPC listener, on unless the test turns it off.
    pub grpc: Option<String>,
    pub logs: Arc<Mutex<Vec<String>>>,
}

impl TestServer {
    /// Starts `barong serve` on free ports with `env` on top of the defaults.
    pub fn start(data_dir: &Path, db_url: &str, env: &[(&str, &str)]) -> TestServer {
        let mut command = barong_command(data_dir, db_url);
        command
            .env("BARONG_AUTHZ_ADDR", "127.0.0.1:0")
            .env("BARONG_API_ADDR", "127.0.0.1:0")
            .env("BARONG_AUTHZ_GRPC_ADDR", "127.0.0.1:0")
            .args(["serve"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("spawn barong");
        let stderr = child.stderr.take().expect("stderr");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addrs) = listening_addrs(&line) {
                    let _ = tx.send(addrs);
                }
                sink.lock().expect("logs").push(line);
            }
        });
        let (authz, api, grpc) = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(addrs) => addrs,
            Err(_) => {
                let _ = child.kill();
                panic!("barong did not start: {:?}", logs.lock().expect("logs"));
            }
        };
        TestServer {
            child: Some(child),
            api: format!("http://{api}"),
            authz: format!("http://{authz}"),
            grpc: grpc.map(|addr| format!("http://{addr}")),
            logs,
        }
    }

    /// `GET`/`POST`... URL of a REST path (`/api/v2/...`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.api)
    }

    /// The process id, to send it signals.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("barong did not stop after SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every log line so far, joined.
    pub fn log_text(&self) -> String {
        self.logs.lock().expect("logs").join("\n")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Picks the listener addresses out of the JSON "barong listening" log line.
fn listening_addrs(line: &str) -> Option<(String, String, Option<String>)> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    let fields = value.get("fields")?;
    if fields.get("message")?.as_str()? != "barong listening" {
        return None;
    }
    let grpc = fields
        .get("authz_grpc")
        .and_then(|v| v.as_str())
        .filter(|addr| *addr != "off")
        .map(str::to_owned);
    Some((
        fields.get("authz")?.as_str()?.to_owned(),
        fields.get("api")?.as_str()?.to_owned(),
        grpc,
    ))
}

/// The tests' plain HTTP client: no cookie store, no proxy from the environment, and a timeout
/// so that a hung server fails its test instead of the whole run.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

/// A REST answer: status, headers, and the body as JSON (a string when it is not JSON, `Null`
/// when empty).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: serde_json::Value,
}

impl Answer {
    pub async fn read(response: reqwest::Response) -> Answer {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let body = if text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
        };
        Answer {
            status,
            headers,
            body,
        }
    }

    #[track_caller]
    pub fn assert(&self, status: u16, body: serde_json::Value) {
        assert_eq!(
            (self.status, &self.body),
            (status, &body),
            "unexpected answer"
        );
    }

    /// Barong's error body: `{"errors": keys}`.
    #[track_caller]
    pub fn errors(&self, status: u16, keys: &[&str]) {
        self.assert(status, serde_json::json!({ "errors": keys }));
    }

    /// The body of a 200.
    #[track_caller]
    pub fn ok(&self) -> &serde_json::Value {
        assert_eq!(self.status, 200, "{}", self.body);
        &self.body
    }
}

/// An HTTP client that keeps cookies, like a browser.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// xorshift64*: a small, seeded generator for generated inputs (fuzz replays, path spellings),
/// so a failure reproduces run after run.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// A TOTP code of a step after `last` (which it moves on), valid for a while yet: the server
/// accepts one step either side of its own (`crypto::totp::verify`), so the step before the
/// current one is taken only with 5 s of it left. Taken as its step ended, it was two steps old
/// when the server read it and refused (422) once in CI. Waits for the next step when none is
/// left.
pub async fn fresh_totp_code(secret: &str, last: &mut u64) -> String {
    use barong::crypto::totp;
    loop {
        let now = chrono::Utc::now().timestamp() as u64;
        let current = now / totp::PERIOD;
        let oldest = if now % totp::PERIOD < totp::PERIOD - 5 {
            current - 1
        } else {
            current
        };
        if let Some(step) = (oldest..=current + 1).find(|s| *s > *last) {
            *last = step;
            return totp::code_at(secret, step * totp::PERIOD).expect("code");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A client whose connections leave from loopback address `ip` (any of 127.0.0.0/8): the
/// server, or the proxy in front of it, sees that peer, so address rules can be tested.
pub fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .local_address(ip.parse::<std::net::IpAddr>().expect("ip"))
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

/// A TCP forwarder to PostgreSQL that a test can cut and restore, to see the server with its
/// database gone and back (the server itself keeps running).
pub struct TcpProxy {
    pub port: u16,
    target: std::net::SocketAddr,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl TcpProxy {
    pub async fn start(target: std::net::SocketAddr) -> TcpProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let proxy = TcpProxy {
            port,
            target,
            task: Mutex::new(None),
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let target = self.target;
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                connections.spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        *self.task.lock().expect("task") = Some(task);
    }

    /// Drops every forwarded connection and stops accepting (the database "goes away"). Returns
    /// once they are gone: aborting only asks, and a query the server sends meanwhile could
    /// still reach the database through a connection that is not closed yet.
    pub async fn cut(&self) {
        let task = self.task.lock().expect("task").take();
        if let Some(task) = task {
            task.abort(); // aborting the accept loop drops the JoinSet, which aborts connections
            let _ = task.await;
        }
    }

    /// Accepts again on the same port.
    pub async fn restore(&self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("rebind");
        self.serve(listener);
    }
}
