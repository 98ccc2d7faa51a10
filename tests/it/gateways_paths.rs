//! Differential test of path spellings through the real gateways (`nginx/barong.conf`,
//! `envoy/envoy.yaml`, both barong routes): a generated corpus of spellings of paths that
//! DROP rows, block rules and pass rules cover, sent byte for byte as a support user. Behind the
//! gateway, upstreams record what reached them; the test resolves each arrival the way the most
//! lenient router would (percent-decoding everything, `\` as `/`, `;` parameters dropped, dot
//! segments resolved, `//` merged, letter case ignored, a `.format` dropped) and asks barong's
//! decision about that plain route directly. For every spelling: either the gateway refused it,
//! or the route the upstream resolved is one the decision allows for that principal.

use crate::common;
use std::time::Duration;

use common::gateway::{Backends, BarongRoute, Gateway, Proxy, StubServer, echo_upstream};
use common::{Backend, Rng, TestDb, TestServer, barong_command};
use reqwest::StatusCode;
use serde_json::{Value, json};

const AGENT: &str = "Mozilla/5.0 (path differential)";
const PASSWORD: &str = "Iequ4geiEWQw";
/// Spellings generated per gateway and route variant, beside the plain ones.
const SPELLINGS: usize = 300;

/// Paths the rules speak about: DROP rows (support), allowed admin reads, a block rule, pass
/// rules, and a barong admin DROP.
const TARGETS: &[&str] = &[
    "api/v2/peatio/admin/adjustments",
    "api/v2/peatio/admin/revenues/1",
    "api/v2/peatio/admin/markets",
    "api/v2/peatio/public/markets",
    "api/v2/barong/admin/restrictions",
    "api/v2/barong/admin/users",
    "api/v2/barong/management/users/get",
    "api/v2/barong/identity/ping",
    "api/v2/peatio/account/balances",
];

/// What an attacker splices into a path.
const SPLICES: &[&str] = &[
    "//",
    "/./",
    "/../",
    "/x/../",
    "/%2e%2e/",
    "/%2E./",
    "/.%2e/",
    "%2f",
    "%2F",
    "\\",
    "%5c",
    ";x=1",
    "%3b",
    "%00",
    "%0a",
    "%09",
    "%20",
    "%25",
    "%2561",
    "%c0%ae",
    "%c0%af",
    "%e0%80%ae",
    "%ff",
    "%c3",
    "%e2%80%8b",
    "..;/",
    "%3f",
    "%23",
    ".json",
    "/",
    "~",
    "%7e",
    "+",
    "%2b",
    "@",
    "%40",
];

/// One mutation of `path` (ASCII only).
fn mutate(rng: &mut Rng, path: &str) -> String {
    let bytes = path.as_bytes();
    let at = rng.below(bytes.len() + 1);
    let (head, tail) = path.split_at(at);
    match rng.below(7) {
        // Percent-encode one character, in either case of hex.
        0 | 1 => {
            let Some(&b) = bytes.get(at) else {
                return format!("{path}%{:02x}", rng.below(256));
            };
            let hex = if rng.below(2) == 0 {
                format!("%{b:02x}")
            } else {
                format!("%{b:02X}")
            };
            format!("{head}{hex}{}", &tail[1..])
        }
        // Flip the case of a letter.
        2 => {
            let Some(&b) = bytes.get(at) else {
                return path.to_ascii_uppercase();
            };
            let flipped = if b.is_ascii_lowercase() {
                b.to_ascii_uppercase()
            } else {
                b.to_ascii_lowercase()
            };
            format!("{head}{}{}", char::from(flipped), &tail[1..])
        }
        // Encode a whole segment.
        3 => path
            .split('/')
            .enumerate()
            .map(|(i, segment)| {
                if i == rng.below(7) {
                    segment.bytes().map(|b| format!("%{b:02x}")).collect()
                } else {
                    segment.to_owned()
                }
            })
            .collect::<Vec<String>>()
            .join("/"),
        // A traversal from a public prefix.
        4 => {
            let up = ["..", "%2e%2e", ".%2e", "%2E%2E", "..%2f", "..;"][rng.below(6)];
            format!(
                "api/v2/peatio/public/{up}/{}",
                path.trim_start_matches("api/v2/")
            )
        }
        // Splice in something ambiguous.
        _ => format!("{head}{}{tail}", SPLICES[rng.below(SPLICES.len())]),
    }
}

/// The route the most lenient router makes of the path an upstream received, lower-cased;
/// `None` when no router would route it (not UTF-8).
fn lenient_route(received: &str) -> Option<String> {
    let path = received.split('?').next().unwrap_or("");
    let mut bytes = Vec::new();
    let raw = path.as_bytes();
    let mut i = 0;
    while i < raw.len() {
        let hex = |j: usize| raw.get(j).and_then(|b| char::from(*b).to_digit(16));
        match (raw[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(hi), Some(lo)) => {
                bytes.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, _, _) => {
                bytes.push(b);
                i += 1;
            }
        }
    }
    // C-string handling stops at a NUL.
    if let Some(nul) = bytes.iter().position(|b| *b == 0) {
        bytes.truncate(nul);
    }
    let text = String::from_utf8(bytes).ok()?.replace('\\', "/");
    let mut segments: Vec<String> = Vec::new();
    for segment in text.split('/') {
        let segment = segment.split(';').next().unwrap_or("");
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other.to_lowercase()),
        }
    }
    if let Some(last) = segments.last_mut()
        && let Some(dot) = last.find('.')
        && dot > 0
    {
        last.truncate(dot);
    }
    Some(segments.join("/"))
}

/// `route` as a URL path: what is not a plain path character, percent-encoded.
fn encoded(route: &str) -> String {
    route
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,=:@/".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn create_support(db: &TestDb, email: &str) {
    let output = barong_command(db.dir.path(), &db.url)
        .args(["users", "create", "--email", email, "--password", PASSWORD])
        .args(["--role", "support"])
        .output()
        .expect("barong users create");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

async fn login(server: &TestServer, email: &str) -> String {
    let response = reqwest::Client::builder()
        .no_proxy()
        .user_agent(AGENT)
        .build()
        .expect("client")
        .post(server.url("/api/v2/barong/identity/sessions"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .expect("login");
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("_barong_session="))
        .and_then(|v| v.split(';').next())
        .expect("session cookie")
        .to_owned();
    format!("_barong_session={cookie}")
}

/// The decision's answer for the plain `route`, asked directly.
async fn allowed(server: &TestServer, cookie: &str, route: &str) -> bool {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
        .get(format!("{}/api/v2/auth/{}", server.authz, encoded(route)))
        .header("cookie", cookie)
        .header("user-agent", AGENT)
        .send()
        .await
        .expect("authz")
        .status()
        == StatusCode::OK
}

/// Where a recorded arrival came from: barong's REST listener (under either mount point) or
/// the application; the route in the decision's terms.
fn arrival(api: &StubServer, app: &StubServer, route: BarongRoute) -> Option<String> {
    let from_api = api.requests();
    let from_app = app.requests();
    api.clear();
    app.clear();
    let seen: Vec<(bool, Value)> = from_api
        .into_iter()
        .map(|r| (true, r))
        .chain(from_app.into_iter().map(|r| (false, r)))
        .collect();
    assert!(seen.len() <= 1, "{seen:?}");
    let (to_api, request) = seen.into_iter().next()?;
    let received = request["path"].as_str().unwrap_or("").to_owned();
    let received = received.strip_prefix('/').unwrap_or(&received).to_owned();
    // Barong's own mount point: /api/v2/barong/x arrives as /api/v2/x.
    if to_api && route == BarongRoute::Rewrite {
        let rest = received.strip_prefix("api/v2/").unwrap_or(&received);
        return Some(format!("api/v2/barong/{rest}"));
    }
    Some(received)
}

#[derive(Default, Debug)]
struct Tally {
    sent: usize,
    refused: usize,
    reached: usize,
    violations: Vec<String>,
    server_errors: Vec<String>,
}

pub(crate) async fn spellings_reach_only_allowed_routes(proxy: Proxy) {
    let db = TestDb::new(Backend::Sqlite).await;
    let email = "support@paths.test";
    // The server seeds the default permissions (the support role) before the user is made.
    let server = TestServer::start(db.dir.path(), &db.url, &[]);
    create_support(&db, email);
    let cookie = login(&server, email).await;
    let api = echo_upstream().await;
    let app = echo_upstream().await;
    let mut backends = Backends::for_proxy(proxy, &server, app.addr);
    backends.api = api.addr;

    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ proxy as u64);
    let mut corpus: Vec<String> = TARGETS.iter().map(|t| (*t).to_owned()).collect();
    while corpus.len() < TARGETS.len() + SPELLINGS {
        let mut path = TARGETS[rng.below(TARGETS.len())].to_owned();
        for _ in 0..=rng.below(3) {
            path = mutate(&mut rng, &path);
        }
        corpus.push(path);
    }

    for route in [BarongRoute::AsIs, BarongRoute::Rewrite] {
        let gateway = Gateway::start(proxy, &backends, route).await;
        let mut tally = Tally::default();
        let mut plain_allowed = 0;
        for path in &corpus {
            let request = format!(
                "GET /{path} HTTP/1.1\r\nHost: gateway\r\nCookie: {cookie}\r\n\
                 User-Agent: {AGENT}\r\nConnection: close\r\n\r\n"
            );
            let (status, answer) = gateway.raw(&request).await;
            tally.sent += 1;
            if status >= 500 {
                tally.server_errors.push(format!("{status} /{path}"));
            }
            match arrival(&api, &app, route) {
                None => tally.refused += 1,
                Some(received) => {
                    tally.reached += 1;
                    let resolved = lenient_route(&received);
                    let ok = match &resolved {
                        Some(route) => allowed(&server, &cookie, route).await,
                        None => true,
                    };
                    if !ok {
                        tally.violations.push(format!(
                            "/{path} -> {status}, upstream got /{received} = {resolved:?}: {answer}"
                        ));
                    }
                    if TARGETS.contains(&path.as_str()) {
                        plain_allowed += 1;
                    }
                }
            }
        }
        eprintln!("{proxy:?} {route:?}: {tally:?}");
        assert!(
            tally.violations.is_empty(),
            "{proxy:?} {route:?}: {} spellings reached routes the decision refuses:\n{}",
            tally.violations.len(),
            tally.violations.join("\n")
        );
        assert!(
            tally.server_errors.is_empty(),
            "{proxy:?} {route:?}: {}",
            tally.server_errors.join("\n")
        );
        // The corpus is worth something only if the allowed plain paths do get through.
        assert!(plain_allowed >= 5, "{proxy:?} {route:?}: {plain_allowed}");
        assert!(tally.refused > SPELLINGS / 4, "{tally:?}");
    }
}

both_proxies!(spellings_reach_only_allowed_routes);

#[test]
fn lenient_routes() {
    assert_eq!(
        lenient_route("/api/v2/x/%61dmin/..%2F.%2Fy;z=1/b.json?q").as_deref(),
        Some("api/v2/x/y/b")
    );
    assert_eq!(lenient_route("/A/%00/b").as_deref(), Some("a"));
    assert_eq!(lenient_route("/a/%ff"), None);
    assert_eq!(encoded("a b/é"), "a%20b/%C3%A9");
}
