//! The Management API over real sockets on both backends: Barong's signature checks,
//! error conventions and the implemented endpoints, with keys made by the test.

use crate::{common, mgmt_support};
use base64::Engine;
use common::{Backend, TestDb, TestServer};
use mgmt_support::{
    TestSigner, call, call_with_headers, es256, keychain_entry, request, request_with_claims, rs256,
};
use reqwest::Method;
use serde_json::{Value, json};

/// Two signers: `applogic` (RS256) and `admin` (ES256). `read_users` needs both; the other
/// scopes need `applogic`; `read_phones` is permitted to nobody we sign with.
struct Setup {
    db: TestDb,
    server: TestServer,
    applogic: TestSigner,
    admin: TestSigner,
}

async fn setup(backend: Backend) -> Setup {
    setup_with(backend, &[]).await
}

/// The server with `env` on top of the management file.
async fn setup_with(backend: Backend, env: &[(&str, &str)]) -> Setup {
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
        "write_service_accounts",
        "write_phones",
        "write_documents",
        "write_apikeys",
    ] {
        yml += &format!(
            "  {scope}:\n    permitted_signers: [applogic, admin]\n    mandatory_signers: [applogic]\n"
        );
    }
    yml += "  read_users:\n    permitted_signers: [applogic, admin]\n    mandatory_signers: [applogic, admin]\n";
    yml += "  read_phones:\n    permitted_signers: [admin]\n    mandatory_signers: [admin]\n";
    let path = db.dir.path().join("management_api.yml");
    std::fs::write(&path, yml).expect("write yml");
    let mut all_env = vec![("BARONG_MANAGEMENT_API_FILE", path.to_str().expect("path"))];
    all_env.extend_from_slice(env);
    let server = TestServer::start(db.dir.path(), &db.url, &all_env);
    Setup {
        db,
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
    // Barong's own mount point too (a new request: each is accepted once).
    let good = request(json!({}), &[&s.applogic]);
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
    // read_phones permits only admin: applogic's signature is not counted.
    let applogic_only = request(json!({"uid": "ID0000000000"}), &[&s.applogic]);
    let (status, body) = call(api, Method::POST, "/phones/get", &applogic_only).await;
    assert_eq!(
        (status, body),
        (401, error("Not enough signatures for the action."))
    );
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
    let import = sign(json!({"email": "old@example.com", "password_digest": digest}));
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
    let delete = sign(json!({"user_uid": uid, "key": "kyc"}));
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

/// A pending member made through `POST /users`; its uid.
async fn new_user(s: &Setup, email: &str) -> String {
    let body = request(
        json!({"email": email, "password": "Tr0ub4dor&3xyzzy!"}),
        &[&s.applogic],
    );
    let (status, user) = call(&s.server.api, Method::POST, "/users", &body).await;
    assert_eq!(status, 201, "{user}");
    user["uid"].as_str().expect("uid").to_owned()
}

/// POSTs a signed request: the status, the `Total` pagination header and the body.
async fn listing(s: &Setup, path: &str, body: &Value) -> (u16, Option<String>, Value) {
    let (status, headers, body) = call_with_headers(&s.server.api, Method::POST, path, body).await;
    let total = headers
        .get("total")
        .map(|v| v.to_str().expect("total").to_owned());
    (status, total, body)
}

async fn listings(backend: Backend) {
    let s = setup(backend).await;
    let both = |data: Value| request(data, &[&s.applogic, &s.admin]);
    let sign = |data: Value| request(data, &[&s.applogic]);
    let first = new_user(&s, "first@example.com").await;
    let second = new_user(&s, "second@example.com").await;
    new_user(&s, "third@example.com").await;

    let (status, total, all) = listing(&s, "/users/list", &both(json!({}))).await;
    assert_eq!((status, total.as_deref()), (200, Some("3")), "{all}");
    assert_eq!(all[0]["uid"], json!(first));
    assert!(all[0].get("profiles").is_none(), "plain User entity");
    let (status, total, page) = listing(
        &s,
        "/users/list",
        &both(json!({"limit": 1, "page": 2, "extended": true})),
    )
    .await;
    assert_eq!((status, total.as_deref()), (200, Some("3")));
    assert_eq!(page.as_array().expect("page").len(), 1);
    assert_eq!(page[0]["uid"], json!(second));
    assert!(page[0]["profiles"].is_array(), "UserWithProfile: {page}");
    let bad = both(json!({"extended": "maybe", "range": "x", "page": "one"}));
    let (status, _, body) = listing(&s, "/users/list", &bad).await;
    assert_eq!(
        (status, body),
        (
            422,
            error(
                "extended Non boolean extended value, range Non positive page, page non_integer_page"
            )
        )
    );
    let future = chrono::Utc::now().timestamp() + 3600;
    let (_, total, _) = listing(&s, "/users/list", &both(json!({"from": future}))).await;
    assert_eq!(total.as_deref(), Some("0"));

    for (uid, value) in [(&first, "verified"), (&second, "pending")] {
        let label = sign(json!({"user_uid": uid, "key": "kyc", "value": value}));
        let (status, _) = call(&s.server.api, Method::POST, "/labels", &label).await;
        assert_eq!(status, 201);
    }
    let filter = "/labels/filter/users";
    let (status, total, users) = listing(&s, filter, &both(json!({"key": "kyc"}))).await;
    assert_eq!((status, total.as_deref()), (200, Some("2")), "{users}");
    let verified = both(json!({"key": "kyc", "value": "verified", "extended": true}));
    let (_, total, users) = listing(&s, filter, &verified).await;
    assert_eq!(total.as_deref(), Some("1"));
    assert_eq!(users[0]["uid"], json!(first));
    assert!(users[0]["profiles"].is_array());
    let public = both(json!({"key": "kyc", "scope": "public"}));
    assert_eq!(listing(&s, filter, &public).await.1.as_deref(), Some("0"));
    let (status, _, body) = listing(&s, filter, &both(json!({}))).await;
    assert_eq!((status, body), (422, error("key is missing, key is empty")));
    let (status, _, body) = listing(&s, filter, &both(json!({"key": "kyc", "range": "x"}))).await;
    assert_eq!((status, body), (422, error("range Invalid range")));
}

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDRfake png body";

async fn kyc(backend: Backend) {
    let s = setup(backend).await;
    let api = &s.server.api;
    let sign = |data: Value| request(data, &[&s.applogic]);
    let admin = |data: Value| request(data, &[&s.admin]);
    let uid = new_user(&s, "kyc@example.com").await;
    let other = new_user(&s, "other@example.com").await;

    // Profiles.
    let (status, body) = call(api, Method::POST, "/profiles", &sign(json!({}))).await;
    assert_eq!((status, body), (422, error("uid is missing, uid is empty")));
    let unknown = sign(json!({"uid": "ID0000000000", "first_name": "Ann"}));
    let (status, body) = call(api, Method::POST, "/profiles", &unknown).await;
    assert_eq!((status, body), (422, error("user.doesnt_exist")));
    let bad = sign(json!({"uid": uid, "country": "Narnia"}));
    let (status, body) = call(api, Method::POST, "/profiles", &bad).await;
    assert_eq!(
        (status, body),
        (
            422,
            json!({"error": ["Country must have alpha2 or alpha3 format"]})
        )
    );
    let profile = sign(json!({
        "uid": uid, "first_name": "Ann", "last_name": "Lovelace", "dob": "1990-02-03",
        "country": "FR", "state": "submitted"
    }));
    let (status, user) = call(api, Method::POST, "/profiles", &profile).await;
    assert_eq!(status, 201, "{user}");
    assert_eq!(user["profiles"][0]["state"], "submitted");
    assert_eq!(user["profiles"][0]["last_name"], "Lovelace", "unmasked");
    let again = sign(json!({"uid": uid, "first_name": "Bob"}));
    let (status, body) = call(api, Method::POST, "/profiles", &again).await;
    assert_eq!(
        (status, body),
        (422, json!({"error": ["State already exists"]}))
    );

    // Phones: created verified, looked up by number, deleted.
    let phone = |uid: &str, number: &str| sign(json!({"uid": uid, "number": number}));
    let (status, body) = call(api, Method::POST, "/phones", &phone(&uid, "12")).await;
    assert_eq!((status, body), (400, error("management.phone.invalid_num")));
    let (status, created) = call(
        api,
        Method::POST,
        "/phones",
        &phone(&uid, "+33 6 12 34 56 78"),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["number"], "33612345678");
    assert!(created["validated_at"].is_string(), "{created}");
    let (status, body) = call(api, Method::POST, "/phones", &phone(&uid, "33612345678")).await;
    assert_eq!((status, body), (400, error("management.phone.exists")));
    let (status, body) = call(api, Method::POST, "/phones", &phone(&other, "33612345678")).await;
    assert_eq!(
        (status, body),
        (400, error("management.phone.number_exist"))
    );
    let (status, phones) = call(
        api,
        Method::POST,
        "/phones/get",
        &admin(json!({"uid": uid})),
    )
    .await;
    assert_eq!(
        (status, phones[0]["number"].clone()),
        (201, json!("33612345678"))
    );
    let by_phone = request(
        json!({"phone_num": "33612345678"}),
        &[&s.applogic, &s.admin],
    );
    let (status, found) = call(api, Method::POST, "/users/get", &by_phone).await;
    assert_eq!((status, found["uid"].clone()), (201, json!(uid)));
    let (status, deleted) = call(
        api,
        Method::POST,
        "/phones/delete",
        &phone(&uid, "+33612345678"),
    )
    .await;
    assert_eq!(
        (status, deleted["number"].clone()),
        (201, json!("33612345678"))
    );
    let (status, body) = call(
        api,
        Method::POST,
        "/phones/delete",
        &phone(&uid, "+33612345678"),
    )
    .await;
    assert_eq!(
        (status, body),
        (422, error("management.phone.doesnt_exists"))
    );

    // Documents: base64 uploads under the resource rules.
    let encoded = base64::engine::general_purpose::STANDARD.encode(PNG);
    let document = |uid: &str, doc_type: &str, ext: &str, upload: &str| {
        sign(json!({
            "uid": uid, "doc_type": doc_type, "doc_number": "AB 123", "filename": "scan",
            "file_ext": ext, "upload": upload, "doc_expire": "2099-01-31"
        }))
    };
    let (status, body) = call(
        api,
        Method::POST,
        "/documents",
        &document("ID0000000000", "Passport", "png", &encoded),
    )
    .await;
    assert_eq!(
        (status, body),
        (422, json!({"errors": ["user doesnt exist"]}))
    );
    let (status, body) = call(
        api,
        Method::POST,
        "/documents",
        &document(&uid, "Passport", "png", "not base64!"),
    )
    .await;
    assert_eq!((status, body), (422, error("upload is invalid")));
    let (status, body) = call(
        api,
        Method::POST,
        "/documents",
        &document(&uid, "Diary", "exe", &encoded),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let message = body["error"].as_str().expect("sentence");
    assert!(
        message.starts_with(
            "Doc type is not included in the list, Upload You are not allowed to upload \"exe\" files"
        ) && message.ends_with(", and Upload can't be blank"),
        "{message}"
    );
    let (status, body) = call(
        api,
        Method::POST,
        "/documents",
        &document(&uid, "Passport", "png", &encoded),
    )
    .await;
    assert_eq!((status, body), (201, json!(201)));
    let (_, found) = call(
        api,
        Method::POST,
        "/users/get",
        &request(json!({"uid": uid}), &[&s.applogic, &s.admin]),
    )
    .await;
    assert_eq!(
        found["documents"].as_array().expect("documents").len(),
        1,
        "{found}"
    );
    assert_eq!(found["documents"][0]["doc_number"], "AB 123");

    // A 3 MB scan (the upload setting allows 10 MB) passes the body limit of the management
    // API even though base64 twice makes it about 5.3 MB on the wire; any other call keeps the
    // usual 1 MB limit.
    let mut big = PNG.to_vec();
    big.resize(3 * 1024 * 1024, 0x5a);
    let big = base64::engine::general_purpose::STANDARD.encode(&big);
    let (status, body) = call(
        api,
        Method::POST,
        "/documents",
        &document(&uid, "Passport", "png", &big),
    )
    .await;
    assert_eq!((status, body), (201, json!(201)));
    let padded = sign(json!({"uid": uid, "first_name": "x".repeat(2 * 1024 * 1024)}));
    let (status, _) = call(api, Method::POST, "/profiles", &padded).await;
    assert_eq!(status, 413, "the usual limit elsewhere");

    // An import with a phone and profile fields.
    let digest = bcrypt::hash("Imported-Pa55word!", 4).expect("bcrypt");
    let import = sign(json!({
        "email": "imported@example.com", "password_digest": digest, "phone": "+44 7418 084106",
        "first_name": "Imp", "country": "GB"
    }));
    let (status, imported) = call(api, Method::POST, "/users/import", &import).await;
    assert_eq!(status, 201, "{imported}");
    assert_eq!(imported["profiles"][0]["first_name"], "Imp");
    assert_eq!(imported["profiles"][0]["state"], "drafted");
}

async fn service_accounts(backend: Backend) {
    let s = setup(backend).await;
    let api = &s.server.api;
    let sign = |data: Value| request(data, &[&s.applogic]);
    let owner = new_user(&s, "owner@example.com").await;

    let (status, body) = call(
        api,
        Method::POST,
        "/service_accounts/create",
        &sign(json!({})),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            422,
            error("service_account_role is missing, service_account_role is empty")
        )
    );
    let create = |data: Value| sign(data);
    let (status, body) = call(
        api,
        Method::POST,
        "/service_accounts/create",
        &create(json!({"service_account_role": "nope", "owner_uid": owner})),
    )
    .await;
    assert_eq!(
        (status, body),
        (422, json!({"error": ["Role doesnt_exist"]}))
    );
    let (status, body) = call(
        api,
        Method::POST,
        "/service_accounts/create",
        &create(json!({"service_account_role": "sa_maker"})),
    )
    .await;
    assert_eq!(
        (status, body),
        (422, json!({"error": ["Email can't be blank"]}))
    );
    let clash =
        json!({"service_account_role": "sa_maker", "service_account_email": "owner@example.com"});
    let (status, body) = call(
        api,
        Method::POST,
        "/service_accounts/create",
        &create(clash),
    )
    .await;
    assert_eq!(
        (status, body),
        (422, json!({"error": ["Email or uid not_uniq"]}))
    );

    let (status, owned) = call(api, Method::POST, "/service_accounts/create", &create(json!({"service_account_role": "sa_maker", "owner_uid": owner, "service_account_level": 2}))).await;
    assert_eq!(status, 201, "{owned}");
    let sa_uid = owned["uid"].as_str().expect("uid").to_owned();
    assert!(sa_uid.starts_with("SI") && sa_uid.len() == 12, "{sa_uid}");
    assert_eq!(owned["email"], json!(format!("owner+{sa_uid}@example.com")));
    assert_eq!(
        (owned["state"].clone(), owned["level"].clone()),
        (json!("pending"), json!(2))
    );
    assert_eq!(owned["user"]["uid"], json!(owner));
    let keys: Vec<&String> = owned.as_object().expect("entity").keys().collect();
    assert_eq!(
        keys,
        [
            "email",
            "uid",
            "role",
            "level",
            "state",
            "user",
            "created_at",
            "updated_at"
        ]
    );
    let (status, lone) = call(api, Method::POST, "/service_accounts/create", &create(json!({"service_account_role": "sa_maker", "service_account_email": "bot@example.com", "service_account_state": "active"}))).await;
    assert_eq!(
        (status, lone["state"].clone(), lone["user"].clone()),
        (201, json!("active"), Value::Null)
    );

    let (status, found) = call(
        api,
        Method::POST,
        "/service_accounts/get",
        &sign(json!({"email": "bot@example.com"})),
    )
    .await;
    assert_eq!((status, found["uid"].clone()), (200, lone["uid"].clone()));
    let (status, total, mine) = listing(
        &s,
        "/service_accounts/list",
        &sign(json!({"owner_uid": owner})),
    )
    .await;
    assert_eq!((status, total.as_deref()), (200, Some("1")));
    assert_eq!(mine[0]["uid"], json!(sa_uid));
    let (_, total, _) = listing(&s, "/service_accounts/list", &sign(json!({}))).await;
    assert_eq!(total.as_deref(), Some("2"));
    let (status, _, body) = listing(&s, "/service_accounts/list", &sign(json!({"limit": 0}))).await;
    assert_eq!((status, body), (422, error("limit invalid_limit")));

    let delete = sign(json!({"uid": sa_uid}));
    let (status, disabled) = call(api, Method::POST, "/service_accounts/delete", &delete).await;
    assert_eq!(
        (status, disabled["state"].clone()),
        (200, json!("disabled"))
    );
    let gone = sign(json!({"uid": "SI0000000000"}));
    let (status, body) = call(api, Method::POST, "/service_accounts/delete", &gone).await;
    assert_eq!((status, body), (404, error("Record is not found")));

    // API keys by management are off unless BARONG_MGN_API_KEYS_USER / _SA allow them.
    for holder in [owner.as_str(), sa_uid.as_str()] {
        let create = sign(json!({"algorithm": "HS256", "uid": holder}));
        let (status, body) = call(api, Method::POST, "/api_keys", &create).await;
        assert_eq!(
            (status, body),
            (422, error("disabled_management_endpoint")),
            "{holder}"
        );
        let update = sign(json!({"kid": "0123456789abcdef", "uid": holder}));
        let (status, body) = call(api, Method::POST, "/api_keys/update", &update).await;
        assert_eq!((status, body), (422, error("disabled_management_endpoint")));
    }
}

/// The authz decision for `GET /api/v2/peatio/account/balances` signed with an API key
/// (HS256 of nonce + kid): the status and the error body.
async fn decide_with_key(s: &Setup, kid: &str, secret: &str) -> (u16, Value) {
    use aws_lc_rs::hmac;
    let nonce = chrono::Utc::now().timestamp_millis().to_string();
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let signature = hex::encode(hmac::sign(&key, format!("{nonce}{kid}").as_bytes()).as_ref());
    let response = reqwest::Client::new()
        .get(format!(
            "{}/api/v2/auth/api/v2/peatio/account/balances",
            s.server.authz
        ))
        .header("x-auth-apikey", kid)
        .header("x-auth-nonce", nonce)
        .header("x-auth-signature", signature)
        .send()
        .await
        .expect("authz");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Sets what the decision depends on, straight in the database (no management call does).
async fn set_access(s: &Setup, uid: &str, state: &str, otp: bool) {
    let store = s.db.open().await;
    let user = store
        .find_user_by_uid(uid)
        .await
        .expect("find")
        .expect("user");
    store
        .update_user_access(user.id, &user.role, state, user.level, otp)
        .await
        .expect("access");
}

fn is_hex(text: &Value, len: usize) -> bool {
    text.as_str().is_some_and(|t| {
        t.len() == len
            && t.chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    })
}

async fn api_keys(backend: Backend) {
    let s = setup_with(
        backend,
        &[
            ("BARONG_MGN_API_KEYS_USER", "true"),
            ("BARONG_MGN_API_KEYS_SA", "true"),
        ],
    )
    .await;
    let api = &s.server.api;
    let sign = |data: Value| request(data, &[&s.applogic]);
    let post = |path: &'static str, data: Value| {
        let body = sign(data);
        async move { call(api, Method::POST, path, &body).await }
    };

    // Parameters, then holder routing by the uid's prefix.
    assert_eq!(
        post("/api_keys", json!({})).await,
        (
            422,
            error("algorithm is missing, algorithm is empty, uid is missing, uid is empty")
        )
    );
    assert_eq!(
        post(
            "/api_keys",
            json!({"algorithm": "HS256", "uid": " ", "scopes": ""})
        )
        .await,
        (422, error("uid is empty, scopes is empty"))
    );
    for (uid, message) in [
        ("XY0000000000", "uid_prefix_doesnt_exist"),
        ("ID0000000000", "user_doesnt_exist"),
        ("SI0000000000", "service_account_doesnt_exist"),
    ] {
        let create = json!({"algorithm": "HS256", "uid": uid});
        assert_eq!(post("/api_keys", create).await, (422, error(message)));
    }

    // A user's key: the holder must be active.
    let uid = new_user(&s, "keys@example.com").await;
    let create = json!({"algorithm": "HS256", "uid": uid, "scopes": "trade,read"});
    assert_eq!(
        post("/api_keys", create.clone()).await,
        (422, json!({"errors": ["key_holder_account.invalid"]}))
    );
    set_access(&s, &uid, "active", true).await;
    assert_eq!(
        post("/api_keys", json!({"algorithm": "RS256", "uid": uid})).await,
        (422, json!({"errors": ["kid.blank", "algorithm.inclusion"]}))
    );
    let (status, key) = post("/api_keys", create).await;
    assert_eq!(status, 201, "{key}");
    assert!(
        is_hex(&key["kid"], 16) && is_hex(&key["secret"], 32),
        "{key}"
    );
    assert_eq!(
        (key["scope"].clone(), key["state"].clone()),
        (json!(["trade", "read"]), json!("active"))
    );
    let kid = key["kid"].as_str().expect("kid").to_owned();
    let secret = key["secret"].as_str().expect("secret").to_owned();
    // The key authenticates at authz (its user has 2FA on).
    let (status, body) = decide_with_key(&s, &kid, &secret).await;
    assert_eq!(status, 200, "{body}");

    // Updates: the scope is replaced, or cleared when absent; never the secret.
    assert_eq!(
        post("/api_keys/update", json!({})).await,
        (
            422,
            error("kid is missing, kid is empty, uid is missing, uid is empty")
        )
    );
    assert_eq!(
        post(
            "/api_keys/update",
            json!({"kid": kid, "uid": uid, "state": ""})
        )
        .await,
        (422, error("state is empty"))
    );
    assert_eq!(
        post(
            "/api_keys/update",
            json!({"kid": "0123456789abcdef", "uid": uid})
        )
        .await,
        (422, error("api_key_doesnt_exist"))
    );
    let (status, updated) = post(
        "/api_keys/update",
        json!({"kid": kid, "uid": uid, "scopes": "read"}),
    )
    .await;
    assert_eq!(
        (status, updated["scope"].clone(), updated.get("secret")),
        (201, json!(["read"]), None),
        "{updated}"
    );
    let (status, updated) = post(
        "/api_keys/update",
        json!({"kid": kid, "uid": uid, "state": "inactive"}),
    )
    .await;
    assert_eq!(
        (status, updated["scope"].clone(), updated["state"].clone()),
        (201, json!([]), json!("inactive")),
        "{updated}"
    );
    // The very next decision refuses it: the caches were told before the answer.
    assert_eq!(
        decide_with_key(&s, &kid, &secret).await,
        (401, json!({"errors": ["authz.apikey_not_active"]}))
    );

    // A service account's key; the account follows a new owner.
    let (status, account) = post(
        "/service_accounts/create",
        json!({"service_account_role": "sa_maker", "owner_uid": uid}),
    )
    .await;
    assert_eq!((status, account["state"].clone()), (201, json!("active")));
    let sa_uid = account["uid"].as_str().expect("uid").to_owned();
    let (status, sa_key) = post(
        "/api_keys",
        json!({"algorithm": "HS256", "uid": sa_uid, "scopes": "trade"}),
    )
    .await;
    assert_eq!(status, 201, "{sa_key}");
    let sa_kid = sa_key["kid"].as_str().expect("kid").to_owned();
    let sa_secret = sa_key["secret"].as_str().expect("secret").to_owned();
    assert_eq!(decide_with_key(&s, &sa_kid, &sa_secret).await.0, 200);
    // Keys are looked up among the holder's own.
    assert_eq!(
        post("/api_keys/update", json!({"kid": kid, "uid": sa_uid})).await,
        (422, error("api_key_doesnt_exist"))
    );
    let (status, updated) = post(
        "/api_keys/update",
        json!({"kid": sa_kid, "uid": sa_uid, "scopes": "read,trade"}),
    )
    .await;
    assert_eq!(
        (status, updated["scope"].clone()),
        (201, json!(["read", "trade"]))
    );

    assert_eq!(
        post("/service_accounts/update", json!({"owner_uid": ""})).await,
        (
            422,
            error("uid is missing, uid is empty, owner_uid is empty")
        )
    );
    assert_eq!(
        post("/service_accounts/update", json!({"uid": "SI0000000000"})).await,
        (422, error("Service account doesnt exist"))
    );
    let other = new_user(&s, "other@example.com").await;
    let (status, moved) = post(
        "/service_accounts/update",
        json!({"uid": sa_uid, "owner_uid": other}),
    )
    .await;
    assert_eq!(status, 201, "{moved}");
    assert_eq!(
        (
            moved["user"]["uid"].clone(),
            moved["state"].clone(),
            moved["level"].clone()
        ),
        (json!(other), json!("pending"), json!(0))
    );
    // An unknown owner changes nothing.
    let (status, same) = post(
        "/service_accounts/update",
        json!({"uid": sa_uid, "owner_uid": "ID0000000000"}),
    )
    .await;
    assert_eq!((status, same["user"]["uid"].clone()), (201, json!(other)));
    // A disabled owner's account is disabled with its keys, at once at authz.
    set_access(&s, &other, "disabled", false).await;
    let (status, disabled) = post(
        "/service_accounts/update",
        json!({"uid": sa_uid, "owner_uid": other}),
    )
    .await;
    assert_eq!(
        (status, disabled["state"].clone()),
        (201, json!("disabled"))
    );
    assert_eq!(decide_with_key(&s, &sa_kid, &sa_secret).await.0, 401);
    let (_, key_now) = post("/api_keys/update", json!({"kid": sa_kid, "uid": sa_uid})).await;
    assert_eq!(key_now["state"], json!("inactive"), "{key_now}");
}

/// The authz decision for `GET /api/v2/barong/resource/users/me` with the session cookie: the
/// minted JWT's claims, or the refusal's status.
async fn decide(s: &Setup, cookie: &str) -> Result<Value, u16> {
    let response = reqwest::Client::new()
        .get(format!(
            "{}/api/v2/auth/api/v2/barong/resource/users/me",
            s.server.authz
        ))
        .header("cookie", cookie)
        .send()
        .await
        .expect("authz");
    if response.status() != 200 {
        return Err(response.status().as_u16());
    }
    let bearer = response.headers()["authorization"].to_str().expect("ascii");
    let payload = bearer
        .trim_start_matches("Bearer ")
        .split('.')
        .nth(1)
        .expect("jwt");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    Ok(serde_json::from_slice(&bytes).expect("claims"))
}

/// Polls the decision until `check` holds on its claims; panics after two seconds.
async fn eventually(s: &Setup, cookie: &str, what: &str, check: impl Fn(&Value) -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while std::time::Instant::now() < deadline {
        if decide(s, cookie).await.is_ok_and(|claims| check(&claims)) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{what}: authz did not follow within 2 s");
}

async fn authz_follows_management_changes(backend: Backend) {
    let s = setup(backend).await;
    let sign = |data: Value| request(data, &[&s.applogic]);
    new_user(&s, "first@example.com").await; // the next one is not the first superadmin
    let response = reqwest::Client::new()
        .post(s.server.url("/api/v2/barong/identity/users"))
        .json(&json!({"email": "member@example.com", "password": "Tr0ub4dor&3xyzzy!"}))
        .send()
        .await
        .expect("sign-up");
    assert_eq!(response.status(), 201);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .split(';')
        .next()
        .expect("pair")
        .to_owned();
    let uid = response.json::<Value>().await.expect("user")["uid"]
        .as_str()
        .expect("uid")
        .to_owned();
    let before = decide(&s, &cookie).await;
    assert!(
        before.as_ref().map_or(true, |c| c["level"] == 0),
        "{before:?}"
    );

    // A label set through management: state and level follow in the minted token.
    let label = sign(json!({"user_uid": uid, "key": "email", "value": "verified"}));
    let (status, _) = call(&s.server.api, Method::POST, "/labels", &label).await;
    assert_eq!(status, 201);
    eventually(&s, &cookie, "label", |c| {
        c["level"] == 1 && c["state"] == "active"
    })
    .await;
    // A role change through management.
    let role = sign(json!({"uid": uid, "role": "trader"}));
    let (status, _) = call(&s.server.api, Method::POST, "/users/update", &role).await;
    assert_eq!(status, 201);
    eventually(&s, &cookie, "role", |c| c["role"] == "trader").await;
    // The label removed again.
    let delete = sign(json!({"user_uid": uid, "key": "email"}));
    let (status, _) = call(&s.server.api, Method::POST, "/labels/delete", &delete).await;
    assert_eq!(status, 204);
    eventually(&s, &cookie, "label removed", |c| c["level"] == 0).await;
}

both_backends!(
    signature_checks,
    users_and_labels,
    listings,
    kyc,
    service_accounts,
    api_keys,
    authz_follows_management_changes
);
