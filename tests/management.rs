//! The Management API over real sockets on both backends: Barong's signature checks (§11.1),
//! error conventions (§11.2) and the implemented endpoints (§11.3), with keys made by the test.

mod common;
mod mgmt_support;

use common::{Backend, TestDb, TestServer};
use mgmt_support::{TestSigner, call, es256, keychain_entry, request, request_with_claims, rs256};
use reqwest::Method;
use serde_json::{Value, json};

/// Two signers: `applogic` (RS256) and `admin` (ES256). `read_users` needs both; the other
/// scopes need `applogic`; `read_phones` is permitted to nobody we sign with.
struct Setup {
    _db: TestDb,
    server: TestServer,
    applogic: TestSigner,
    admin: TestSigner,
}

async fn setup(backend: Backend) -> Setup {
    let db = TestDb::new(backend).await;
    let applogic = rs256("applogic", db.dir.path());
    let admin = es256("admin");
    let mut yml = String::from("keychain:\n");
    yml += &keychain_entry(&applogic);
    yml += &keychain_entry(&admin);
    yml += "jwt: {}\nscopes:\n";
    for scope in [
        "tools",
        "write_users",
        "read_labels",
        "write_labels",
        "otp_sign",
        "read_service_accounts",
    ] {
        yml += &format!(
            "  {scope}:\n    permitted_signers: [applogic, admin]\n    mandatory_signers: [applogic]\n"
        );
    }
    yml += "  read_users:\n    permitted_signers: [applogic, admin]\n    mandatory_signers: [applogic, admin]\n";
    let path = db.dir.path().join("management_api.yml");
    std::fs::write(&path, yml).expect("write yml");
    let server = TestServer::start(
        db.dir.path(),
        &db.url,
        &[("BARONG_MANAGEMENT_API_FILE", path.to_str().expect("path"))],
    );
    Setup {
        _db: db,
        server,
        applogic,
        admin,
    }
}

async fn raw(s: &Setup, path: &str, content_type: &str, body: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(s.server.url(&format!("/api/v2/management{path}")))
        .header("content-type", content_type)
        .body(body.to_owned())
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn error(message: &str) -> Value {
    json!({ "error": message })
}

async fn signature_checks(backend: Backend) {
    let s = setup(backend).await;
    let api = &s.server.api;
    let good = request(json!({}), &[&s.applogic]);

    let (status, body) = call(api, Method::POST, "/timestamp", &good).await;
    assert_eq!(status, 200, "{body}");
    let now = chrono::Utc::now().timestamp();
    assert!((body["timestamp"].as_i64().expect("timestamp") - now).abs() < 5);
    // Barong's own mount point too.
    let (status, _) = raw(&s, "/timestamp", "application/json", &good.to_string()).await;
    assert_eq!(status, 200);

    let (status, body) = raw(&s, "/timestamp?x=1", "application/json", &good.to_string()).await;
    assert_eq!(
        (status, body),
        (400, error("Query parameters are not allowed."))
    );
    let (status, body) = raw(&s, "/timestamp", "text/plain", &good.to_string()).await;
    assert_eq!((status, body), (400, error("Only JSON body is accepted.")));
    let (status, body) = raw(&s, "/timestamp", "application/json", "{not json").await;
    assert_eq!((status, body), (400, error("Couldn't parse JWT.")));
    let (status, body) = raw(&s, "/timestamp", "application/json", "{}").await;
    assert_eq!((status, body), (401, error("Failed to verify JWT.")));

    // No signature of a mandatory signer.
    let (status, body) = call(api, Method::POST, "/timestamp", &request(json!({}), &[])).await;
    assert_eq!(
        (status, body),
        (401, error("Not enough signatures for the action."))
    );
    // Signed by the wrong key under applogic's kid.
    let impostor = TestSigner {
        kid: "applogic".into(),
        ..es256("x")
    };
    let forged = request(json!({}), &[&impostor]);
    let (status, body) = call(api, Method::POST, "/timestamp", &forged).await;
    assert_eq!((status, body), (401, error("Failed to verify JWT.")));
    // A tampered payload.
    let mut tampered = good.clone();
    tampered["payload"] = request(json!({"x": 1}), &[&s.applogic])["payload"].clone();
    let (status, body) = call(api, Method::POST, "/timestamp", &tampered).await;
    assert_eq!((status, body), (401, error("Failed to verify JWT.")));
    // Expired.
    let now = chrono::Utc::now().timestamp();
    let expired = request_with_claims(json!({"exp": now - 10, "data": {}}), &[&s.applogic]);
    let (status, body) = call(api, Method::POST, "/timestamp", &expired).await;
    assert_eq!((status, body), (401, error("Failed to verify JWT.")));
    // read_users needs both signers; one is not enough.
    let data = json!({"uid": "ID0000000000"});
    let one = request(data.clone(), &[&s.applogic]);
    let (status, body) = call(api, Method::POST, "/users/get", &one).await;
    assert_eq!(
        (status, body),
        (401, error("Not enough signatures for the action."))
    );
    let both = request(data, &[&s.applogic, &s.admin]);
    let (status, body) = call(api, Method::POST, "/users/get", &both).await;
    assert_eq!((status, body), (404, error("Record is not found")));
    // A scope the file does not configure.
    let scope_less = request(json!({"uid": "ID0000000000"}), &[&s.applogic]);
    let (status, _) = call(api, Method::POST, "/phones/get", &scope_less).await;
    assert_eq!(status, 404, "phones are not served yet");
}

async fn users_and_labels(backend: Backend) {
    let s = setup(backend).await;
    let api = &s.server.api;
    let sign = |data: Value| request(data, &[&s.applogic]);
    let sign_both = |data: Value| request(data, &[&s.applogic, &s.admin]);

    let (status, body) = call(api, Method::POST, "/users", &sign(json!({}))).await;
    assert_eq!(
        (status, body),
        (
            422,
            error("email is missing, email is empty, password is missing, password is empty")
        )
    );
    let (status, body) = call(
        api,
        Method::POST,
        "/users",
        &sign(json!({"email": "bad", "password": "Tr0ub4dor&3xyzzy!"})),
    )
    .await;
    assert_eq!(
        (status, body["error"][0].clone()),
        (422, json!("Email is invalid"))
    );
    let (status, user) = call(
        api,
        Method::POST,
        "/users",
        &sign(json!({"email": "mgmt@example.com", "password": "Tr0ub4dor&3xyzzy!"})),
    )
    .await;
    assert_eq!(status, 201, "{user}");
    assert_eq!(user["state"], "pending");
    assert_eq!(user["role"], "member");
    let uid = user["uid"].as_str().expect("uid").to_owned();
    assert!(uid.starts_with("ID") && uid.len() == 12);

    let (status, found) = call(
        api,
        Method::POST,
        "/users/get",
        &sign_both(json!({"email": "mgmt@example.com"})),
    )
    .await;
    assert_eq!((status, found["uid"].clone()), (201, json!(uid)));
    let (status, body) = call(
        api,
        Method::POST,
        "/users/get",
        &sign_both(json!({"uid": uid, "email": "mgmt@example.com"})),
    )
    .await;
    assert_eq!(
        (status, body),
        (422, error("uid, email are mutually exclusive"))
    );

    let (status, body) = call(
        api,
        Method::POST,
        "/users/update",
        &sign(json!({"uid": "ID0000000000", "role": "admin"})),
    )
    .await;
    assert_eq!((status, body), (422, error("user.doesnt_exist")));
    let (status, body) = call(
        api,
        Method::POST,
        "/users/update",
        &sign(json!({"uid": uid, "role": "nope"})),
    )
    .await;
    assert_eq!(
        (status, body),
        (422, json!({"error": ["Role doesnt_exist"]}))
    );
    let (status, updated) = call(
        api,
        Method::POST,
        "/users/update",
        &sign(json!({"uid": uid, "role": "admin", "data": "{\"language\":\"fr\"}"})),
    )
    .await;
    assert_eq!(status, 201, "{updated}");
    assert_eq!(updated["role"], "admin");
    assert_eq!(updated["data"], "{\"language\":\"fr\"}");

    let digest = bcrypt::hash("Imported-Pa55word!", 4).expect("bcrypt");
    let import = sign(json!({"email": "old@example.com", "password_digest": digest}));
    let (status, imported) = call(api, Method::POST, "/users/import", &import).await;
    assert_eq!(status, 201, "{imported}");
    let (status, body) = call(api, Method::POST, "/users/import", &import).await;
    assert_eq!(
        (status, body),
        (422, error("User already exists by this email"))
    );

    // Labels.
    let label = json!({"user_uid": uid, "key": "kyc", "value": "pending"});
    let (status, created) = call(api, Method::POST, "/labels", &sign(label.clone())).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        (created["key"].clone(), created["scope"].clone()),
        (json!("kyc"), json!("private"))
    );
    let (status, body) = call(api, Method::POST, "/labels", &sign(label)).await;
    assert_eq!(
        (status, body),
        (422, json!({"key": ["Key has already been taken"]}))
    );
    let put = json!({"user_uid": uid, "key": "kyc", "value": "verified"});
    let (status, updated) = call(api, Method::PUT, "/labels", &sign(put)).await;
    assert_eq!((status, updated["value"].clone()), (200, json!("verified")));
    let put = json!({"user_uid": uid, "key": "other", "value": "x", "replace": false});
    let (status, body) = call(api, Method::PUT, "/labels", &sign(put)).await;
    assert_eq!((status, body), (404, error("label doesnt exist")));
    let (status, list) = call(
        api,
        Method::POST,
        "/labels/list",
        &sign(json!({"user_uid": uid})),
    )
    .await;
    assert_eq!(status, 201);
    assert!(
        list.as_array()
            .expect("list")
            .iter()
            .any(|l| l["key"] == "kyc")
    );
    let (status, body) = call(
        api,
        Method::POST,
        "/labels/list",
        &sign(json!({"user_uid": "ID0000000000"})),
    )
    .await;
    assert_eq!((status, body), (404, error("Record is not found")));
    let delete = sign(json!({"user_uid": uid, "key": "kyc"}));
    let (status, _) = call(api, Method::POST, "/labels/delete", &delete).await;
    assert_eq!(status, 204);
    let (status, body) = call(api, Method::POST, "/labels/delete", &delete).await;
    assert_eq!((status, body), (404, error("Record is not found")));

    // otp/sign: the user must be active (this one is pending).
    let otp = sign(
        json!({"user_uid": uid, "otp_code": "123456", "jwt": {"payload": "e30", "signatures": []}}),
    );
    let (status, body) = call(api, Method::POST, "/otp/sign", &otp).await;
    assert_eq!((status, body), (404, error("Record is not found")));
    let otp = sign(json!({"user_uid": uid, "otp_code": "123456", "jwt": "text"}));
    let (status, body) = call(api, Method::POST, "/otp/sign", &otp).await;
    assert_eq!((status, body), (422, error("jwt is invalid")));

    let (status, body) = call(
        api,
        Method::POST,
        "/service_accounts/get",
        &sign(json!({"uid": "SI0000000000"})),
    )
    .await;
    assert_eq!((status, body), (404, error("Record is not found")));
}

both_backends!(signature_checks, users_and_labels);
