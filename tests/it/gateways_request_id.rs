//! The request id through the shipped gateways: the proxy sends its id with the check, barong
//! logs the decision under it and repeats it on the allow, and the upstream gets the same id
//! (nginx `auth_request_set`, Envoy `allowed_upstream_headers`).

use crate::common;
use common::gateway::{Gateway, Proxy, echo_upstream};
use common::{Backend, TestDb, TestServer};
use reqwest::StatusCode;
use serde_json::Value;

pub(crate) async fn the_upstream_gets_the_id_barong_decided_under(proxy: Proxy) {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = TestServer::start(
        db.dir.path(),
        &db.url,
        &[("RUST_LOG", "info,barong::authz=debug")],
    );
    let upstream = echo_upstream().await;
    let gateway = Gateway::in_front_of(proxy, &server, &upstream).await;
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .expect("client");

    let mut ids = Vec::new();
    for _ in 0..2 {
        let response = http
            .get(gateway.url("/api/v2/peatio/public/markets"))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::OK);
        let seen: Value = response.json().await.expect("json");
        let id = seen["headers"]["x-request-id"]
            .as_str()
            .unwrap_or_else(|| panic!("no x-request-id upstream: {seen}"))
            .to_owned();
        assert!(id.len() >= 16, "{id}");
        ids.push(id);
    }
    assert_ne!(ids[0], ids[1], "one id per request");

    // barong decided each request under the id the upstream got.
    decisions_logged(
        &server,
        &ids,
        "the upstream got ids barong did not decide under",
    )
    .await;

    // Barong's own REST answers carry the id they were sent with.
    let ping = http
        .get(gateway.url("/api/v2/barong/public/ping"))
        .send()
        .await
        .expect("ping");
    assert_eq!(ping.status(), StatusCode::OK);
    let echoed = ping
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("x-request-id on the REST answer")
        .to_owned();
    decisions_logged(
        &server,
        &[echoed],
        "the REST listener did not get the id the check had",
    )
    .await;
}

/// Waits (5 s at most) until barong's log has an "authz decision" line for every one of `ids`:
/// the harness reads the server's output on a thread of its own, so a line barong wrote before
/// it answered may reach `log_text` a moment after the answer reaches the test.
async fn decisions_logged(server: &TestServer, ids: &[String], failure: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let logs = server.log_text();
        let logged = |id: &str| {
            logs.lines()
                .any(|line| line.contains("authz decision") && line.contains(id))
        };
        if ids.iter().all(|id| logged(id)) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{failure}: ids {ids:?} not in barong's decision logs:\n{logs}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

both_proxies!(the_upstream_gets_the_id_barong_decided_under);
