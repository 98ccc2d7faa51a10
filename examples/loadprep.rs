//! Helpers of `benches/load.sh` for what bash cannot do.
//!
//! `loadprep seed`: migrates and seeds a database through the library (default seeds, `--users`
//! members with 2FA on, `--sessions` sessions with deterministic cookies: cookie `i` is
//! `format!("{i:032x}")`, owned by user `i % users`, bound to 127.0.0.1 and `--agent`, and one
//! HS256 API key of user 0 with a nonce signed now; on PostgreSQL the sessions go in 20,000 per
//! statement, the same rows `Store::create_session` writes), then prints `NAME=value` lines for the
//! script: `COOKIE0`, `KID`, `NONCE`, `SIGNATURE`, `SESSIONS`, `USERS`, `SEED_SECONDS`.
//!
//! `loadprep warm`: asks the authz listener once for every cookie in `--from..--to` over
//! `--connections` keep-alive connections (plain HTTP/1.1 on Tokio, no client library), so that
//! many sessions are cached; prints `WARMED`, `OK` and `WARM_SECONDS`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test, bench or example fails loudly: a panic is its failure"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::hmac;
use clap::{Parser, Subcommand};
use futures_util::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use barong::crypto::encryption::Encryptor;
use barong::crypto::keys::EncryptionKey;
use barong::domain::{KeyHolder, NewApiKey, NewSession, NewUser, session_key};
use barong::seed::{DEFAULT_SEEDS, Seeds};
use barong::store::{self, Store, StoreOptions};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Migrates, seeds and prints what the load script needs.
    Seed {
        /// `postgres://...` or `sqlite://PATH`.
        #[arg(long)]
        database_url: String,
        /// Sessions to create (cookie `i` = 32 hex digits of `i`).
        #[arg(long, default_value_t = 1000)]
        sessions: u64,
        /// Users that own the sessions (round robin).
        #[arg(long, default_value_t = 100)]
        users: u64,
        /// `BARONG_ENCRYPTION_KEY` of the server that will read the API key secret.
        #[arg(long)]
        encryption_key: String,
        /// The User-Agent the sessions are bound to.
        #[arg(long, default_value = "barong-load/1")]
        agent: String,
        /// Concurrent inserts.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
    },
    /// Caches sessions `from..to` in a running authz listener (one request each).
    Warm {
        #[arg(long)]
        addr: String,
        #[arg(long, default_value_t = 0)]
        from: u64,
        #[arg(long)]
        to: u64,
        #[arg(long, default_value_t = 32)]
        connections: u64,
        #[arg(long, default_value = "barong-load/1")]
        agent: String,
        #[arg(long, default_value = "api/v2/barong/resource/users/me")]
        path: String,
    },
}

/// The fixed API key of the load run (hex, like the identity API's).
const KID: &str = "b0a1d2e3f4a5b6c7";
const SECRET: &str = "00112233445566778899aabbccddeeff";

fn main() {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    match cli.command {
        Command::Seed {
            database_url,
            sessions,
            users,
            encryption_key,
            agent,
            concurrency,
        } => runtime.block_on(seed(
            &database_url,
            sessions,
            users.max(1),
            &encryption_key,
            &agent,
            concurrency.max(1),
        )),
        Command::Warm {
            addr,
            from,
            to,
            connections,
            agent,
            path,
        } => runtime.block_on(warm(&addr, from, to, connections.max(1), &agent, &path)),
    }
}

async fn seed(
    url: &str,
    sessions: u64,
    users: u64,
    encryption_key: &str,
    agent: &str,
    concurrency: usize,
) {
    let started = Instant::now();
    let store = store::open(&StoreOptions {
        url: url.to_owned(),
        pool_size: concurrency.min(32),
        connect_timeout: Duration::from_secs(5),
    })
    .await
    .expect("open the database");
    store.migrate().await.expect("migrate");
    Seeds::parse(DEFAULT_SEEDS)
        .expect("default seeds")
        .apply(store.as_ref(), "ID")
        .await
        .expect("seed");

    let created: Vec<(i64, String)> = futures_util::stream::iter(0..users)
        .map(|i| {
            let store = store.clone();
            async move {
                let user = store
                    .create_user(&NewUser {
                        uid: format!("IDB{i:09}"),
                        username: None,
                        email: format!("user{i}@barong.bench"),
                        password_digest: "$argon2id$unused".into(),
                        role: "member".into(),
                        data: None,
                        level: 3,
                        otp: true,
                        state: "active".into(),
                        referral_id: None,
                        labels: vec![],
                    })
                    .await
                    .expect("create user");
                (user.id, user.uid)
            }
        })
        .buffered(concurrency)
        .collect()
        .await;
    let created = Arc::new(created);
    eprintln!(
        "loadprep: {users} users in {:.1}s",
        started.elapsed().as_secs_f64()
    );

    let expire_at = chrono::Utc::now().timestamp() + 30 * 86_400;
    if url.starts_with("postgres") {
        bulk_sessions(url, sessions, &created, agent, expire_at, started).await;
    } else {
        library_sessions(
            &store,
            sessions,
            &created,
            agent,
            expire_at,
            concurrency,
            started,
        )
        .await;
    }

    let key = EncryptionKey::parse(encryption_key).expect("BARONG_ENCRYPTION_KEY: 64 hex chars");
    let encryptor = Encryptor::new(&key);
    store
        .create_api_key(&NewApiKey {
            holder: KeyHolder::User(created[0].0),
            kid: KID.into(),
            algorithm: "HS256".into(),
            scope: vec!["trade".into()],
            secret_encrypted: encryptor.encrypt(SECRET),
            state: "active".into(),
        })
        .await
        .expect("create API key");
    let nonce = chrono::Utc::now().timestamp_millis().to_string();
    let signing_key = hmac::Key::new(hmac::HMAC_SHA256, SECRET.as_bytes());
    let signature = hex::encode(hmac::sign(&signing_key, format!("{nonce}{KID}").as_bytes()));

    println!("COOKIE0={}", cookie(0));
    println!("KID={KID}");
    println!("NONCE={nonce}");
    println!("SIGNATURE={signature}");
    println!("SESSIONS={sessions}");
    println!("USERS={users}");
    println!("SEED_SECONDS={:.1}", started.elapsed().as_secs_f64());
}

/// One `Store::create_session` per session (SQLite; a few thousand per second).
async fn library_sessions(
    store: &Arc<dyn Store>,
    sessions: u64,
    users: &Arc<Vec<(i64, String)>>,
    agent: &str,
    expire_at: i64,
    concurrency: usize,
    started: Instant,
) {
    let mut done = 0u64;
    let mut stream = futures_util::stream::iter(0..sessions)
        .map(|i| {
            let store = store.clone();
            let users = users.clone();
            let agent = agent.to_owned();
            async move {
                let (user_id, uid) = &users[(i % users.len() as u64) as usize];
                store
                    .create_session(&NewSession {
                        id: session_key(&cookie(i)),
                        user_id: *user_id,
                        uid: uid.clone(),
                        user_ip: "127.0.0.1".into(),
                        user_agent: Some(agent),
                        csrf_token: CSRF.into(),
                        expire_at,
                        authenticated_with: "password".into(),
                        user_ip_country: None,
                    })
                    .await
                    .expect("create session");
            }
        })
        .buffer_unordered(concurrency);
    while stream.next().await.is_some() {
        done += 1;
        if done.is_multiple_of(50_000) {
            eprintln!(
                "loadprep: {done}/{sessions} sessions, {:.1}s",
                started.elapsed().as_secs_f64()
            );
        }
    }
}

/// PostgreSQL: the same rows as `Store::create_session` writes (same columns, same key), sent
/// 20,000 at a time through `unnest`, so hundreds of thousands of sessions take seconds.
async fn bulk_sessions(
    url: &str,
    sessions: u64,
    users: &[(i64, String)],
    agent: &str,
    expire_at: i64,
    started: Instant,
) {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect to PostgreSQL");
    tokio::spawn(connection);
    let statement = client
        .prepare(
            "INSERT INTO sessions (id, user_id, uid, user_ip, user_agent, csrf_token, expire_at,
                 public_id)
             SELECT id, user_id, uid, '127.0.0.1', $4, $5, $6,
                 replace(gen_random_uuid()::text, '-', '')
             FROM unnest($1::text[], $2::bigint[], $3::text[]) AS s (id, user_id, uid)",
        )
        .await
        .expect("prepare");
    let mut first = 0;
    while first < sessions {
        let last = (first + 20_000).min(sessions);
        let (mut ids, mut user_ids, mut uids) = (Vec::new(), Vec::new(), Vec::new());
        for i in first..last {
            let (user_id, uid) = &users[(i % users.len() as u64) as usize];
            ids.push(session_key(&cookie(i)));
            user_ids.push(*user_id);
            uids.push(uid.as_str());
        }
        client
            .execute(
                &statement,
                &[&ids, &user_ids, &uids, &agent, &CSRF, &expire_at],
            )
            .await
            .expect("insert sessions");
        first = last;
        if first.is_multiple_of(100_000) || first == sessions {
            eprintln!(
                "loadprep: {first}/{sessions} sessions, {:.1}s",
                started.elapsed().as_secs_f64()
            );
        }
    }
}

const CSRF: &str = "c0ffee00c0ffee00c0ff";

/// The cookie value of session `i` (the wrk Lua scripts compute the same: `%032x`).
fn cookie(i: u64) -> String {
    format!("{i:032x}")
}

async fn warm(addr: &str, from: u64, to: u64, connections: u64, agent: &str, path: &str) {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..connections {
        let addr = addr.to_owned();
        let agent = agent.to_owned();
        let path = path.to_owned();
        tasks.push(tokio::spawn(async move {
            let stream = TcpStream::connect(&addr).await.expect("connect");
            stream.set_nodelay(true).expect("nodelay");
            let mut stream = BufReader::new(stream);
            let (mut sent, mut ok) = (0u64, 0u64);
            let mut i = from + c;
            while i < to {
                let request = format!(
                    "GET /api/v2/auth/{path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: {agent}\r\nCookie: _barong_session={}\r\n\r\n",
                    cookie(i)
                );
                stream
                    .get_mut()
                    .write_all(request.as_bytes())
                    .await
                    .expect("send");
                if read_status(&mut stream).await == 200 {
                    ok += 1;
                }
                sent += 1;
                i += connections;
            }
            (sent, ok)
        }));
    }
    let (mut sent, mut ok) = (0, 0);
    for task in tasks {
        let (s, o) = task.await.expect("warm task");
        sent += s;
        ok += o;
    }
    println!("WARMED={sent}");
    println!("OK={ok}");
    println!("WARM_SECONDS={:.1}", started.elapsed().as_secs_f64());
}

/// Reads one HTTP/1.1 response (status line, headers, `Content-Length` body); returns the status.
async fn read_status(stream: &mut BufReader<TcpStream>) -> u16 {
    let mut line = String::new();
    stream.read_line(&mut line).await.expect("status line");
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut length = 0usize;
    loop {
        line.clear();
        stream.read_line(&mut line).await.expect("header line");
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        if let Some((name, value)) = trimmed.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    stream.read_exact(&mut body).await.expect("body");
    status
}
