//! Memory held after password hashing. Each Argon2id hash takes a 19 MiB block on one of tokio's
//! blocking threads; with glibc's default dynamic mmap threshold those blocks stayed in
//! per-thread arenas after use, so logins on many threads left hundreds of MiB resident.
//! `barong::memory::tune_allocator` pins the threshold: the blocks go back to the system.

use crate::common;
use common::{Backend, TestDb, TestServer};
use serde_json::json;

const PASSWORD: &str = "Tr0ub4dor&3xyzzy!";

/// The server's resident set, in MiB.
fn rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS");
    kib / 1024
}

#[tokio::test]
async fn concurrent_logins_do_not_keep_hash_memory() {
    let db = TestDb::new(Backend::Sqlite).await;
    // Twelve logins of one account in flight at once would take more than its 5 slots (a slot
    // is taken before the password is known to be right): the account limit is off here.
    let server = TestServer::start(
        db.dir.path(),
        &db.url,
        &[("BARONG_RATE_LIMIT_LOGIN_ACCOUNT", "0")],
    );
    let client = reqwest::Client::new();
    let signup = client
        .post(server.url("/api/v2/barong/identity/users"))
        .json(&json!({"email": "mem@example.com", "password": PASSWORD}))
        .send()
        .await
        .expect("sign-up");
    assert_eq!(signup.status(), 201);
    let before = rss_mib(server.pid());
    // 4 rounds of 12 logins at once: hashes on up to 12 blocking threads, 48 blocks in all.
    for _ in 0..4 {
        let logins = (0..12).map(|_| {
            client
                .post(server.url("/api/v2/barong/identity/sessions"))
                .json(&json!({"email": "mem@example.com", "password": PASSWORD}))
                .send()
        });
        for response in futures_util::future::join_all(logins).await {
            assert_eq!(response.expect("login").status(), 200);
        }
    }
    let after = rss_mib(server.pid());
    eprintln!("resident set: {before} MiB before, {after} MiB after 48 logins");
    // Kept blocks would add 19 MiB per thread that hashed (about 200 MiB here).
    assert!(
        after < before + 100,
        "{after} MiB after the logins, {before} MiB before: hash memory was kept"
    );
}
