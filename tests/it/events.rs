//! The Event API end to end on both backends: changes made through the server reach a real
//! RabbitMQ queue bound to Barong's exchanges, with Barong's names, payloads and signatures;
//! with RabbitMQ unreachable (a TCP relay the test cuts) events wait in the outbox and arrive
//! once it is back, each exactly once.

use crate::{common, mgmt_support};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{Backend, TcpProxy, TestDb, TestServer};
use futures_util::StreamExt;
use jsonwebtoken::{Algorithm, DecodingKey};
use lapin::options::{
    BasicConsumeOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties, Consumer, ExchangeKind};
use mgmt_support::{TestSigner, call, keychain_entry, request, rs256};
use reqwest::Method;
use serde_json::{Value, json};

const RABBITMQ: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// A private queue bound to Barong's exchanges for the given (exchange, routing key) pairs.
async fn subscribe(bindings: &[(&str, &str)]) -> (Connection, Consumer) {
    let connection = Connection::connect(RABBITMQ, ConnectionProperties::default())
        .await
        .expect("RabbitMQ must run on 127.0.0.1:5672 (rabbitmq-server -detached)");
    let channel = connection.create_channel().await.expect("channel");
    let queue = channel
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("queue");
    for (exchange, key) in bindings {
        channel
            .exchange_declare(
                (*exchange).into(),
                ExchangeKind::Direct,
                ExchangeDeclareOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("exchange");
        channel
            .queue_bind(
                queue.name().clone(),
                (*exchange).into(),
                (*key).into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("bind");
    }
    let consumer = channel
        .basic_consume(
            queue.name().clone(),
            "events-test".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("consume");
    (connection, consumer)
}

/// A received event: exchange, routing key and the verified claims.
struct Received {
    exchange: String,
    key: String,
    claims: Value,
}

/// The next message within `wait` that mentions `marker`, its barong signature verified.
async fn next_event(
    consumer: &mut Consumer,
    barong: &DecodingKey,
    marker: &str,
    wait: Duration,
) -> Option<Received> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let delivery = tokio::time::timeout_at(deadline, consumer.next())
            .await
            .ok()??;
        let delivery = delivery.expect("delivery");
        let body: Value = serde_json::from_slice(&delivery.data).expect("json body");
        let payload = body["payload"].as_str().expect("payload");
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("b64")).expect("c");
        if !claims.to_string().contains(marker) {
            continue; // another test's event on the shared exchanges
        }
        let signatures = body["signatures"].as_array().expect("signatures");
        assert_eq!(signatures.len(), 1);
        let signature = &signatures[0];
        assert_eq!(signature["header"]["kid"], "barong");
        let protected = signature["protected"].as_str().expect("protected");
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(protected).expect("b64")).expect("h");
        assert_eq!(header["alg"], "RS256");
        let message = format!("{protected}.{payload}");
        let valid = jsonwebtoken::crypto::verify(
            signature["signature"].as_str().expect("sig"),
            message.as_bytes(),
            barong,
            Algorithm::RS256,
        )
        .expect("verify");
        assert!(
            valid,
            "the event signature verifies with barong's public key"
        );
        return Some(Received {
            exchange: delivery.exchange.to_string(),
            key: delivery.routing_key.to_string(),
            claims,
        });
    }
}

struct Setup {
    db: TestDb,
    server: TestServer,
    applogic: TestSigner,
    barong: DecodingKey,
    proxy: TcpProxy,
}

async fn setup(backend: Backend) -> Setup {
    let db = TestDb::new(backend).await;
    let applogic = rs256("applogic", db.dir.path());
    let barong_key = rs256("barong", db.dir.path());
    let barong = DecodingKey::from_rsa_pem(barong_key.public_pem.as_bytes()).expect("public");
    let mut yml = String::from("keychain:\n");
    yml += &keychain_entry(&applogic);
    yml += "scopes:\n";
    for scope in ["write_users", "write_labels", "write_documents"] {
        yml += &format!(
            "  {scope}:\n    permitted_signers: [applogic]\n    mandatory_signers: [applogic]\n"
        );
    }
    let yml_path = db.dir.path().join("management_api.yml");
    std::fs::write(&yml_path, yml).expect("yml");
    let proxy = TcpProxy::start("127.0.0.1:5672".parse().expect("addr")).await;
    let url = format!("amqp://guest:guest@127.0.0.1:{}/%2f", proxy.port);
    let key_path = db.dir.path().join("barong.pem");
    let server = TestServer::start(
        db.dir.path(),
        &db.url,
        &[
            ("BARONG_MANAGEMENT_API_FILE", yml_path.to_str().expect("p")),
            ("JWT_PRIVATE_KEY_PATH", key_path.to_str().expect("p")),
            ("EVENT_API_RABBITMQ_URL", &url),
            ("BARONG_EVENT_API_RETRY_MAX_BACKOFF", "1"),
            ("BARONG_DOMAIN", "exchange.example"),
        ],
    );
    Setup {
        db,
        server,
        applogic,
        barong,
        proxy,
    }
}

async fn create_user(s: &Setup, email: &str) -> String {
    let body = request(
        json!({"email": email, "password": "Tr0ub4dor&3xyzzy!"}),
        &[&s.applogic],
    );
    let (status, user) = call(&s.server.api, Method::POST, "/users", &body).await;
    assert_eq!(status, 201, "{user}");
    user["uid"].as_str().expect("uid").to_owned()
}

async fn events_are_published(backend: Backend) {
    let s = setup(backend).await;
    let (_connection, mut consumer) = subscribe(&[
        ("barong.events.model", "user.created"),
        ("barong.events.model", "user.updated"),
        ("barong.events.model", "label.created"),
        ("barong.events.model", "label.updated"),
    ])
    .await;
    let email = format!("events-{backend:?}-{}@example.com", std::process::id()).to_lowercase();
    let uid = create_user(&s, &email).await;
    let wait = Duration::from_secs(20);

    let created = next_event(&mut consumer, &s.barong, &uid, wait)
        .await
        .expect("model.user.created arrives");
    assert_eq!(
        (created.exchange.as_str(), created.key.as_str()),
        ("barong.events.model", "user.created")
    );
    let claims = &created.claims;
    assert_eq!(claims["iss"], "barong");
    let iat = claims["iat"].as_i64().expect("iat");
    assert_eq!(claims["exp"].as_i64().expect("exp"), iat + 3600);
    assert_eq!(claims["jti"].as_str().expect("jti").len(), 36);
    let event = &claims["event"];
    assert_eq!(event["name"], "model.user.created");
    let record = &event["record"];
    assert_eq!(record["uid"], uid.as_str());
    assert_eq!(record["email"], email.as_str());
    assert_eq!(record["role"], "member");
    assert_eq!(record["state"], "pending");
    assert_eq!(record["level"], 0);
    assert_eq!(record["otp"], false);
    assert!(
        record.get("username").is_none(),
        "null top-level values are dropped"
    );
    assert!(
        record["created_at"]
            .as_str()
            .expect("created_at")
            .ends_with('Z')
    );

    // A label: model.label.created with the nested user (nulls kept).
    let label = request(
        json!({"user_uid": uid, "key": "kyc", "value": "pending"}),
        &[&s.applogic],
    );
    let (status, _) = call(&s.server.api, Method::POST, "/labels", &label).await;
    assert_eq!(status, 201);
    let received = next_event(&mut consumer, &s.barong, &uid, wait)
        .await
        .expect("model.label.created arrives");
    assert_eq!(received.key, "label.created");
    let record = &received.claims["event"]["record"];
    assert_eq!(
        (record["key"].clone(), record["value"].clone()),
        (json!("kyc"), json!("pending"))
    );
    assert_eq!(record["user"]["uid"], uid.as_str());
    assert!(record["user"]["username"].is_null());
    assert!(record["id"].as_i64().is_some());

    let label = request(
        json!({"user_uid": uid, "key": "kyc", "value": "verified"}),
        &[&s.applogic],
    );
    let (status, _) = call(&s.server.api, Method::PUT, "/labels", &label).await;
    assert_eq!(status, 200);
    let received = next_event(&mut consumer, &s.barong, &uid, wait)
        .await
        .expect("model.label.updated arrives");
    assert_eq!(received.key, "label.updated");
    let event = &received.claims["event"];
    assert_eq!(event["record"]["value"], "verified");
    assert_eq!(event["changes"], json!({"value": "pending"}));
}

async fn outage_keeps_events_until_rabbitmq_is_back(backend: Backend) {
    let s = setup(backend).await;
    let (_connection, mut consumer) = subscribe(&[("barong.events.model", "user.created")]).await;
    let wait = Duration::from_secs(20);
    // Connected first.
    let first = create_user(&s, &format!("first-{backend:?}@example.com").to_lowercase()).await;
    assert!(
        next_event(&mut consumer, &s.barong, &first, wait)
            .await
            .is_some()
    );
    // The consumer can see the message before the broker's confirm reaches the publisher; cut
    // only once the row is marked sent, or the cut loses the confirm and the row is due again.
    let store = s.db.open().await;
    let deadline = tokio::time::Instant::now() + wait;
    while store.count_unsent_events().await.expect("count") > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "first event never marked sent"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    s.proxy.cut().await;
    let mut uids = Vec::new();
    for i in 0..3 {
        uids.push(
            create_user(
                &s,
                &format!("down{i}-{backend:?}@example.com").to_lowercase(),
            )
            .await,
        );
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(store.count_unsent_events().await.expect("count"), 3);
    for uid in &uids {
        assert!(
            next_event(&mut consumer, &s.barong, uid, Duration::from_millis(200))
                .await
                .is_none()
        );
    }

    s.proxy.restore().await;
    let marker = format!("-{backend:?}@").to_lowercase();
    let mut seen = Vec::new();
    while seen.len() < uids.len() {
        let received = next_event(&mut consumer, &s.barong, &marker, wait)
            .await
            .expect("queued events arrive after RabbitMQ is back");
        seen.push(
            received.claims["event"]["record"]["uid"]
                .as_str()
                .expect("uid")
                .to_owned(),
        );
    }
    assert_eq!(seen, uids, "each once, in order");
    assert!(
        next_event(&mut consumer, &s.barong, &marker, Duration::from_secs(3))
            .await
            .is_none(),
        "no duplicate"
    );
    assert_eq!(store.count_unsent_events().await.expect("count"), 0);
}

/// POSTs JSON to the REST listener; the status.
async fn post(s: &Setup, path: &str, body: Value) -> u16 {
    reqwest::Client::new()
        .post(s.server.url(path))
        .json(&body)
        .send()
        .await
        .expect("request")
        .status()
        .as_u16()
}

async fn system_events_are_published(backend: Backend) {
    let s = setup(backend).await;
    let (_connection, mut consumer) = subscribe(&[
        ("barong.events.system", "user.email.confirmation.token"),
        ("barong.events.system", "user.password.reset.token"),
        ("barong.events.system", "session.create"),
    ])
    .await;
    let wait = Duration::from_secs(20);
    // Not the first user, who would become the active superadmin without a confirmation.
    // (Its address must not end like the outage test's marker, `-<backend>@`: the two tests
    // share RabbitMQ's exchanges and may run at the same time.)
    create_user(
        &s,
        &format!("first-{backend:?}-system@example.com").to_lowercase(),
    )
    .await;
    let email = format!("system-{backend:?}-{}@example.com", std::process::id()).to_lowercase();
    let password = "Tr0ub4dor&3xyzzy!";
    let signup = json!({"email": email, "password": password});
    assert_eq!(post(&s, "/api/v2/barong/identity/users", signup).await, 201);
    let confirmation = next_event(&mut consumer, &s.barong, &email, wait)
        .await
        .expect("system.user.email.confirmation.token arrives");
    assert_eq!(
        (confirmation.exchange.as_str(), confirmation.key.as_str()),
        ("barong.events.system", "user.email.confirmation.token")
    );
    let event = &confirmation.claims["event"];
    assert_eq!(event["name"], "system.user.email.confirmation.token");
    assert_eq!(event["record"]["user"]["email"], email.as_str());
    assert!(
        event["record"]["user"]["username"].is_null(),
        "system events keep nulls"
    );
    assert_eq!(event["record"]["domain"], "exchange.example");
    let token = event["record"]["token"].as_str().expect("token");
    assert_eq!(token.split('.').count(), 3, "the confirmation JWT");

    let login = json!({"email": email, "password": password});
    assert_eq!(
        post(&s, "/api/v2/barong/identity/sessions", login).await,
        200
    );
    let session = next_event(&mut consumer, &s.barong, &email, wait)
        .await
        .expect("system.session.create arrives");
    assert_eq!(session.key, "session.create");
    let record = &session.claims["event"]["record"];
    assert_eq!(record["user_ip"], "127.0.0.1");
    assert!(record["user_agent"].is_string());

    let reset = json!({"email": email});
    assert_eq!(
        post(
            &s,
            "/api/v2/barong/identity/users/password/generate_code",
            reset
        )
        .await,
        201
    );
    let reset = next_event(&mut consumer, &s.barong, &email, wait)
        .await
        .expect("system.user.password.reset.token arrives");
    assert_eq!(reset.key, "user.password.reset.token");
    assert!(reset.claims["event"]["record"]["token"].is_string());
}

/// Profiles and documents carry personal data: their model events arrive in clear, signed, but
/// the outbox never holds them in clear.
async fn personal_events_are_sealed_at_rest(backend: Backend) {
    let s = setup(backend).await;
    let (_connection, mut consumer) = subscribe(&[
        ("barong.events.model", "profile.created"),
        ("barong.events.model", "document.created"),
    ])
    .await;
    let email = format!("sealed-{backend:?}-{}@example.com", std::process::id()).to_lowercase();
    let uid = create_user(&s, &email).await;
    let wait = Duration::from_secs(20);
    // Unique per backend too: both variants run at once in this process, on shared exchanges.
    let first_name = format!("Ysolde{backend:?}{}", std::process::id());

    let profile = request(
        json!({
            "uid": uid, "first_name": first_name, "last_name": "Quennell",
            "dob": "1984-07-09", "address": "7 Larkspur Row", "postcode": "QX9 4ZZ",
            "city": "Wexmoor", "country": "GB", "state": "drafted"
        }),
        &[&s.applogic],
    );
    let (status, body) = call(&s.server.api, Method::POST, "/profiles", &profile).await;
    assert_eq!(status, 201, "{body}");
    let created = next_event(&mut consumer, &s.barong, &first_name, wait)
        .await
        .expect("model.profile.created arrives");
    assert_eq!(
        (created.exchange.as_str(), created.key.as_str()),
        ("barong.events.model", "profile.created")
    );
    let record = &created.claims["event"]["record"];
    assert_eq!(created.claims["event"]["name"], "model.profile.created");
    assert_eq!(record["first_name"], first_name.as_str());
    assert_eq!(record["last_name"], "Quennell");
    assert_eq!(record["dob"], "1984-07-09");
    assert_eq!(record["address"], "7 Larkspur Row");
    assert_eq!(record["postcode"], "QX9 4ZZ");
    assert_eq!(record["city"], "Wexmoor");
    assert_eq!(record["country"], "GB");
    assert_eq!(record["user"]["uid"], uid.as_str());
    assert!(
        record["created_at"]
            .as_str()
            .expect("created_at")
            .ends_with('Z')
    );

    // A 1x1 PNG, as the management API takes uploads (base64).
    let png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=";
    let number = format!("ZQ{backend:?}{}", std::process::id()).to_uppercase();
    let document = request(
        json!({
            "uid": uid, "doc_type": "Passport", "doc_number": number, "filename": "scan",
            "file_ext": "png", "upload": png, "doc_expire": "2099-01-31"
        }),
        &[&s.applogic],
    );
    let (status, body) = call(&s.server.api, Method::POST, "/documents", &document).await;
    assert_eq!(status, 201, "{body}");
    let created = next_event(&mut consumer, &s.barong, &number, wait)
        .await
        .expect("model.document.created arrives");
    assert_eq!(created.key, "document.created");
    let record = &created.claims["event"]["record"];
    assert_eq!(record["doc_number"], number.as_str());
    assert_eq!(record["doc_type"], "Passport");
    assert_eq!(record["doc_expire"], "2099-01-31");
    assert_eq!(record["user"]["uid"], uid.as_str());
    let upload = record["upload"].as_str().expect("upload url");
    assert!(
        upload.contains(&uid) && upload.ends_with(".png"),
        "{upload}"
    );

    let stored = s.db.raw_text().await;
    for clear in [
        first_name.as_str(),
        "Quennell",
        "Larkspur",
        "Wexmoor",
        "QX9 4ZZ",
        &number,
    ] {
        assert!(
            !stored.contains(clear),
            "{clear} is in the database in clear"
        );
    }
}

async fn events_off_by_default(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(db.dir.path(), &db.url, &[]);
    let response = reqwest::Client::new()
        .post(server.url("/api/v2/barong/identity/users"))
        .json(&json!({"email": "quiet@example.com", "password": "Tr0ub4dor&3xyzzy!"}))
        .send()
        .await
        .expect("sign-up");
    assert_eq!(response.status().as_u16(), 201);
    let store = db.open().await;
    assert_eq!(store.count_unsent_events().await.expect("count"), 0);
}

both_backends!(
    events_are_published,
    system_events_are_published,
    outage_keeps_events_until_rabbitmq_is_back,
    personal_events_are_sealed_at_rest,
    events_off_by_default
);
