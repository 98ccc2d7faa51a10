//! KYC profiles: storage (both backends, through the `Store` trait) and the HTTP endpoints
//! through the real authz path, the KYCAID callback signed as KYCAID signs it, and a direct
//! look at the database for personal data in clear text.

use crate::common::{Answer, http};
use crate::{common, support};
use std::sync::Arc;

use barong::crypto::encryption::Encryptor;
use barong::crypto::keys::EncryptionKey;
use barong::domain::{
    NewLabel, NewProfile, NewUser, ProfileChanges, ProfileData, ProfileState, StateRules,
};
use barong::store::{Store, StoreError};
use chrono::NaiveDate;
use common::{Backend, TestDb};

const FIRST: &str = "Zebulon";
const LAST: &str = "Quixworthy";
const ADDRESS: &str = "42 Marigold Lane";

fn enc() -> Encryptor {
    Encryptor::new(&EncryptionKey([7; 32]))
}

fn data() -> ProfileData {
    ProfileData {
        first_name: Some(FIRST.into()),
        last_name: Some(LAST.into()),
        dob: NaiveDate::from_ymd_opt(1990, 5, 17),
        address: Some(ADDRESS.into()),
        postcode: Some("Z9 8QX".into()),
        city: Some("Ravensholm".into()),
        country: Some("GB".into()),
        metadata: Some(r#"{"nationality":"GB"}"#.into()),
    }
}

async fn store_with_user(db: &TestDb) -> (Arc<dyn Store>, i64) {
    let store = db.open().await;
    store.migrate().await.expect("migrate");
    let user = store
        .create_user(&NewUser {
            uid: "ID00000000A1".into(),
            username: None,
            email: "kyc@example.com".into(),
            password_digest: "$argon2id$placeholder".into(),
            role: "member".into(),
            data: None,
            level: 0,
            otp: false,
            state: "active".into(),
            referral_id: None,
            labels: vec![NewLabel {
                key: "email".into(),
                value: "verified".into(),
                scope: "private".into(),
            }],
        })
        .await
        .expect("user");
    (store, user.id)
}

fn assert_no_clear_pii(text: &str) {
    for needle in [FIRST, LAST, ADDRESS, "Ravensholm", "Z9 8QX", "1990-05-17"] {
        assert!(!text.contains(needle), "{needle} stored in clear text");
    }
}

async fn profile_label(store: &Arc<dyn Store>, user_id: i64) -> Option<String> {
    store
        .list_user_labels(user_id)
        .await
        .expect("labels")
        .into_iter()
        .find(|l| l.key == "profile" && l.scope == "private")
        .map(|l| l.value)
}

async fn storage_profiles_lifecycle(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (store, user_id) = store_with_user(&db).await;
    let (enc, rules) = (enc(), StateRules::default());
    let new = |state| NewProfile {
        data: data(),
        state,
        author: None,
        applicant_id: None,
    };

    let (created, change) = store
        .create_profile(user_id, &new(ProfileState::Drafted), &enc, &rules)
        .await
        .expect("create");
    assert_eq!(created.data, data());
    assert_eq!(created.state, ProfileState::Drafted);
    assert_eq!(change.user.id, user_id);
    assert_eq!(
        profile_label(&store, user_id).await.as_deref(),
        Some("drafted")
    );

    // One open (drafted or submitted) profile at a time; verified history is allowed.
    let clash = store
        .create_profile(user_id, &new(ProfileState::Submitted), &enc, &rules)
        .await;
    assert!(
        matches!(clash, Err(StoreError::Conflict(ref c)) if c == "state"),
        "{clash:?}"
    );

    let changes = ProfileChanges {
        data: ProfileData {
            city: Some("Oldtown".into()),
            ..ProfileData::default()
        },
        state: Some(ProfileState::Submitted),
        only_in_state: Some(ProfileState::Drafted),
        ..ProfileChanges::default()
    };
    let (updated, _) = store
        .update_profile(created.id, &changes, &enc, &rules)
        .await
        .expect("update")
        .expect("drafted");
    assert_eq!(updated.state, ProfileState::Submitted);
    assert_eq!(updated.data.city.as_deref(), Some("Oldtown"));
    assert_eq!(
        updated.data.last_name.as_deref(),
        Some(LAST),
        "unchanged fields kept"
    );
    assert_eq!(
        profile_label(&store, user_id).await.as_deref(),
        Some("submitted")
    );
    // No longer drafted: the guarded update does nothing.
    assert!(
        store
            .update_profile(created.id, &changes, &enc, &rules)
            .await
            .expect("update")
            .is_none()
    );
    assert!(
        store
            .find_user_profile_in_state(user_id, ProfileState::Drafted, &enc)
            .await
            .expect("find")
            .is_none()
    );

    let verdict = ProfileChanges {
        state: Some(ProfileState::Verified),
        applicant_id: Some("app-123".into()),
        only_in_state: Some(ProfileState::Submitted),
        ..ProfileChanges::default()
    };
    store
        .update_profile(created.id, &verdict, &enc, &rules)
        .await
        .expect("verdict")
        .expect("submitted");
    let by_applicant = store
        .find_profile_by_applicant_id("app-123", &enc)
        .await
        .expect("by applicant")
        .expect("found");
    assert_eq!(by_applicant.id, created.id);
    assert_eq!(by_applicant.state, ProfileState::Verified);
    assert_eq!(
        profile_label(&store, user_id).await.as_deref(),
        Some("verified")
    );

    // The verified profile is history: a new one may be opened.
    let (second, _) = store
        .create_profile(user_id, &new(ProfileState::Drafted), &enc, &rules)
        .await
        .expect("second");
    let all = store.list_user_profiles(user_id, &enc).await.expect("list");
    assert_eq!(
        all.iter().map(|p| p.id).collect::<Vec<_>>(),
        [created.id, second.id]
    );
    let found = store
        .find_user_profile_in_state(user_id, ProfileState::Drafted, &enc)
        .await
        .expect("find")
        .expect("drafted");
    assert_eq!(found.id, second.id);
    assert_eq!(
        store.find_profile(second.id, &enc).await.expect("by id"),
        Some(second.clone())
    );
    let (page, total) = store.list_profiles(1, 1, &enc).await.expect("page");
    assert_eq!(total, 2);
    assert_eq!(page.iter().map(|p| p.id).collect::<Vec<_>>(), [second.id]);

    // Personal data is only readable with the key.
    let other = Encryptor::new(&EncryptionKey([8; 32]));
    assert!(store.list_user_profiles(user_id, &other).await.is_err());
    assert_no_clear_pii(&db.raw_text().await);
}

/// `model.profile.created` and `model.profile.updated` wait in the outbox sealed: only the key
/// opens them, and they hold Barong's records (`changes` = the values before).
async fn storage_profile_events_are_sealed(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (store, user_id) = store_with_user(&db).await;
    store.enable_events("exchange.example");
    let (enc, rules) = (enc(), StateRules::default());
    let drafted = NewProfile {
        data: data(),
        state: ProfileState::Drafted,
        author: None,
        applicant_id: None,
    };
    let (created, _) = store
        .create_profile(user_id, &drafted, &enc, &rules)
        .await
        .expect("create");
    let changes = ProfileChanges {
        data: ProfileData {
            city: Some("Oldtown".into()),
            ..ProfileData::default()
        },
        ..ProfileChanges::default()
    };
    store
        .update_profile(created.id, &changes, &enc, &rules)
        .await
        .expect("update")
        .expect("found");
    // The same values again: Barong emits nothing when nothing changed.
    store
        .update_profile(created.id, &changes, &enc, &rules)
        .await
        .expect("update")
        .expect("found");

    let events = store.claim_events(100, 60).await.expect("claim");
    let profile_events: Vec<_> = events
        .iter()
        .filter(|e| e.routing_key.starts_with("profile."))
        .collect();
    assert_eq!(
        profile_events
            .iter()
            .map(|e| e.routing_key.as_str())
            .collect::<Vec<_>>(),
        ["profile.created", "profile.updated"]
    );
    for e in &events {
        assert_eq!(
            e.sealed,
            e.routing_key.starts_with("profile."),
            "{}",
            e.routing_key
        );
    }
    let opened: Vec<serde_json::Value> = profile_events
        .iter()
        .map(|e| serde_json::from_str(&enc.decrypt(&e.payload).expect("opens")).expect("json"))
        .collect();
    assert_eq!(opened[0]["name"], "model.profile.created");
    assert_eq!(opened[0]["record"]["first_name"], FIRST);
    assert_eq!(opened[0]["record"]["dob"], "1990-05-17");
    assert_eq!(opened[0]["record"]["user"]["uid"], "ID00000000A1");
    assert_eq!(opened[1]["name"], "model.profile.updated");
    assert_eq!(opened[1]["record"]["city"], "Oldtown");
    assert_eq!(
        opened[1]["changes"],
        serde_json::json!({"city": "Ravensholm"})
    );
    let other = Encryptor::new(&EncryptionKey([8; 32]));
    assert!(other.decrypt(&profile_events[0].payload).is_err());
    assert_no_clear_pii(&db.raw_text().await);
}

both_backends!(
    storage_profiles_lifecycle,
    storage_profile_events_are_sealed
);

// ---- HTTP: the endpoints through the real authz path -----------------------------------------

use std::time::Duration;

use common::TestServer;
use reqwest::StatusCode;
use serde_json::{Value, json};

const AGENT: &str = "Mozilla/5.0 (kyc test)";
const PASSWORD: &str = "Iequ4geiEWQw";
const KYCAID_TOKEN: &str = "kycaid-test-token-7f3a";

/// A signed-up user with its session.
struct Account<'a> {
    server: &'a TestServer,
    cookie: String,
    csrf: String,
    uid: String,
}

impl<'a> Account<'a> {
    async fn sign_up(server: &'a TestServer, email: &str) -> Account<'a> {
        let response = http()
            .post(server.url("/api/v2/barong/identity/users"))
            .header("user-agent", AGENT)
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
            .await
            .expect("sign up");
        assert_eq!(response.status(), StatusCode::CREATED);
        let cookie = support::set_session_cookie(&response).expect("session cookie");
        let body: Value = response.json().await.expect("json");
        Account {
            server,
            cookie,
            csrf: body["csrf_token"].as_str().expect("csrf").to_owned(),
            uid: body["uid"].as_str().expect("uid").to_owned(),
        }
    }

    /// The bearer the authz listener mints for `method path` from the session cookie.
    async fn bearer(&self, method: &str, path: &str) -> String {
        let response = http()
            .get(format!(
                "{}/api/v2/auth/api/v2/barong{path}",
                self.server.authz
            ))
            .header("x-original-method", method)
            .header("cookie", format!("_barong_session={}", self.cookie))
            .header("x-csrf-token", &self.csrf)
            .header("user-agent", AGENT)
            .send()
            .await
            .expect("authz");
        assert_eq!(response.status(), StatusCode::OK, "authz allows {path}");
        response.headers()["authorization"]
            .to_str()
            .expect("ascii")
            .to_owned()
    }

    /// `method path` (under `/api/v2/barong`) with a fresh bearer; `body` as JSON.
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Answer {
        let bearer = self.bearer(method, path).await;
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = http()
            .request(method, self.server.url(&format!("/api/v2/barong{path}")))
            .header("authorization", bearer)
            .header("user-agent", AGENT);
        if let Some(body) = body {
            request = request.json(&body);
        }
        Answer::read(request.send().await.expect("call")).await
    }

    async fn get(&self, path: &str) -> Answer {
        self.call("GET", path, None).await
    }

    async fn private_label(&self, key: &str) -> Option<String> {
        let labels = self.get("/resource/labels").await;
        labels
            .body
            .as_array()
            .expect("labels")
            .iter()
            .find_map(|l| {
                (l["key"] == key && l["scope"] == "private")
                    .then(|| l["value"].as_str().unwrap_or_default().to_owned())
            })
    }

    /// Polls until the private label `key` has `value` (background jobs set it).
    async fn wait_label(&self, key: &str, value: &str) {
        for _ in 0..100 {
            if self.private_label(key).await.as_deref() == Some(value) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("label {key} never became {value}");
    }
}

fn full_profile() -> Value {
    json!({
        "first_name": format!("  {FIRST}  "),
        "last_name": LAST,
        "dob": "1990-05-17",
        "address": ADDRESS,
        "postcode": "Z9 8QX",
        "city": "Ravensholm",
        "country": "GB",
        "metadata": "{\"nationality\":\"GB\"}",
    })
}

fn without_times(mut v: Value) -> Value {
    if let Some(map) = v.as_object_mut() {
        for key in ["created_at", "updated_at"] {
            assert!(
                map.remove(key)
                    .and_then(|t| t.as_str().map(|s| s.ends_with('Z') && s.len() == 20))
                    .unwrap_or(false),
                "{key} is ISO8601-Z"
            );
        }
    }
    v
}

async fn kyc_callback(server: &TestServer, body: &str, signature: Option<&str>) -> Answer {
    let mut request = http()
        .post(server.url("/api/v2/barong/public/kyc"))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(signature) = signature {
        request = request.header("x-data-integrity", signature);
    }
    Answer::read(request.send().await.expect("callback")).await
}

/// Rejects every request in a local-provider server's logs that mention personal data.
fn assert_logs_clean(server: &TestServer) {
    let logs = server.log_text();
    for needle in [FIRST, LAST, ADDRESS, "Ravensholm"] {
        assert!(!logs.contains(needle), "{needle} logged");
    }
}

async fn profiles_endpoints_and_keys(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(
        db.dir.path(),
        &db.url,
        &[("BARONG_KYC_PROVIDER", "local"), ("RUST_LOG", "debug")],
    );
    let user = Account::sign_up(&server, "profile@example.com").await;

    user.get("/resource/profiles/me")
        .await
        .assert(200, json!([]));
    user.call(
        "PUT",
        "/resource/profiles",
        Some(json!({"city": "Oldtown"})),
    )
    .await
    .errors(404, &["resource.profile.doesnt_exist_or_not_editable"]);

    // Parameter types first (Grape), then the model's keys in Barong's order.
    user.call(
        "POST",
        "/resource/profiles",
        Some(json!({"dob": "yesterday", "confirm": "maybe"})),
    )
    .await
    .errors(422, &["invalid"]);
    user.call(
        "POST",
        "/resource/profiles",
        Some(json!({"first_name": {"a": 1}})),
    )
    .await
    .errors(422, &["invalid"]);
    user.call(
        "POST",
        "/resource/profiles",
        Some(json!({
            "first_name": "J@ne",
            "last_name": "x".repeat(256),
            "city": "Nowhere!",
            "country": "XZ",
            "postcode": "#",
            "address": "<script>",
            "metadata": "not json",
            "dob": "2999-01-01",
        })),
    )
    .await
    .errors(
        422,
        &[
            "first_name.invalid",
            "last_name.too_long",
            "city.invalid",
            "country.must have alpha2 or alpha3 format",
            "postcode.too_short",
            "postcode.invalid",
            "address.invalid",
            "metadata.invalid_format",
            "dob.invalid",
        ],
    );
    assert_eq!(user.private_label("profile").await, None, "nothing written");

    let created = user
        .call("POST", "/resource/profiles", Some(full_profile()))
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let masked = json!({
        "first_name": FIRST,
        "last_name": "Q*********",
        "dob": "1990-05-**",
        "address": ADDRESS,
        "postcode": "Z9 8QX",
        "city": "Ravensholm",
        "country": "GB",
        "state": "drafted",
        "metadata": "{\"nationality\":\"GB\"}",
    });
    assert_eq!(without_times(created.body.clone()), masked);
    let keys: Vec<&str> = created
        .body
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "first_name",
            "last_name",
            "dob",
            "address",
            "postcode",
            "city",
            "country",
            "state",
            "metadata",
            "created_at",
            "updated_at"
        ],
        "Barong's field order"
    );
    assert_eq!(
        user.private_label("profile").await.as_deref(),
        Some("drafted")
    );

    // One drafted or submitted profile at a time.
    user.call("POST", "/resource/profiles", Some(json!({"confirm": true})))
        .await
        .errors(422, &["state.exists"]);
    user.call(
        "POST",
        "/resource/profiles",
        Some(json!({"dob": "2999-01-01"})),
    )
    .await
    .errors(422, &["state.exists", "dob.invalid"]);

    let edited = user
        .call(
            "PUT",
            "/resource/profiles",
            Some(json!({"city": "  Old   town ", "confirm": false})),
        )
        .await;
    assert_eq!(edited.status, 200);
    assert_eq!(edited.body["city"], "Old town", "squished");
    assert_eq!(edited.body["state"], "drafted");
    assert_eq!(edited.body["last_name"], "Q*********", "kept");
    user.call("PUT", "/resource/profiles", Some(json!({"postcode": "!"})))
        .await
        .errors(422, &["postcode.too_short", "postcode.invalid"]);
    user.call(
        "PUT",
        "/resource/profiles",
        Some(json!({"confirm": "nope"})),
    )
    .await
    .errors(422, &["invalid"]);

    let submitted = user
        .call(
            "PUT",
            "/resource/profiles",
            Some(json!({"confirm": "true"})),
        )
        .await;
    assert_eq!(submitted.status, 200);
    assert_eq!(submitted.body["state"], "submitted");
    assert_eq!(
        user.private_label("profile").await.as_deref(),
        Some("submitted")
    );
    // Submitted is no longer the user's to edit, nor to replace.
    user.call(
        "PUT",
        "/resource/profiles",
        Some(json!({"city": "Elsewhere"})),
    )
    .await
    .errors(404, &["resource.profile.doesnt_exist_or_not_editable"]);
    user.call("POST", "/resource/profiles", Some(json!({})))
        .await
        .errors(422, &["state.exists"]);

    let mine = user.get("/resource/profiles/me").await;
    assert_eq!(mine.status, 200);
    let list = mine.body.as_array().expect("array");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["state"], "submitted");
    assert_eq!(list[0]["dob"], "1990-05-**");
    let me = user.get("/resource/users/me").await;
    assert_eq!(me.status, 200);
    assert_eq!(
        me.body["profiles"], mine.body,
        "users/me embeds the masked profiles"
    );

    // The KYC callback has nothing to do with the local provider.
    kyc_callback(&server, "{}", None)
        .await
        .assert(422, json!(422));

    // No bearer, no profile.
    let anonymous = http()
        .get(server.url("/api/v2/barong/resource/profiles/me"))
        .send()
        .await
        .expect("anonymous");
    Answer::read(anonymous)
        .await
        .errors(401, &["jwt.decode_and_verify"]);

    assert_no_clear_pii(&db.raw_text().await);
    assert_logs_clean(&server);
}

async fn masking_off_shows_personal_data(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(
        db.dir.path(),
        &db.url,
        &[
            ("BARONG_KYC_PROVIDER", "local"),
            ("BARONG_API_DATA_MASKING_ENABLED", "false"),
        ],
    );
    let user = Account::sign_up(&server, "clear@example.com").await;
    let mut body = full_profile();
    body["confirm"] = json!(true);
    let created = user.call("POST", "/resource/profiles", Some(body)).await;
    assert_eq!(created.status, 201);
    assert_eq!(created.body["last_name"], LAST);
    assert_eq!(created.body["dob"], "1990-05-17");
    assert_eq!(created.body["state"], "submitted");
    let me = user.get("/resource/users/me").await;
    assert_eq!(me.body["profiles"][0]["last_name"], LAST);
    assert_eq!(me.body["profiles"][0]["dob"], "1990-05-17");
    // The clear text is for the answer only: the database still holds ciphertext.
    assert_no_clear_pii(&db.raw_text().await);
}

both_backends!(profiles_endpoints_and_keys, masking_off_shows_personal_data);

// ---- KYCAID: applicants and the signed callback, against a local fake of its API -------------

use std::sync::Mutex;

use axum::extract::{Path as UrlPath, State as AxState};
use axum::http::HeaderMap;
use axum::routing::{get, post};

/// What the fake KYCAID received: applicant bodies and the verification ids fetched.
#[derive(Default)]
struct FakeKycaid {
    applicants: Mutex<Vec<Value>>,
    fetched: Mutex<Vec<String>>,
}

fn authorized(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok())
        == Some(&format!("Token {KYCAID_TOKEN}"))
}

/// KYCAID's `POST /applicants` and `GET /verifications/{id}` on a loopback port. Applicants
/// whose last name is `Refused` get a validation error; verification `v-ok` is completed with
/// every check verified, `v-face` with the facial check failed, `v-pending` still pending.
async fn start_fake_kycaid() -> (String, Arc<FakeKycaid>) {
    async fn applicants(
        AxState(fake): AxState<Arc<FakeKycaid>>,
        headers: HeaderMap,
        axum::Json(body): axum::Json<Value>,
    ) -> (StatusCode, axum::Json<Value>) {
        if !authorized(&headers) {
            return (
                StatusCode::UNAUTHORIZED,
                axum::Json(json!({"type": "unauthorized", "error": "Unauthorized"})),
            );
        }
        let refused = body["last_name"] == "Refused";
        let mut list = fake.applicants.lock().expect("lock");
        list.push(body);
        if refused {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({"type": "validation", "errors": [
                    {"parameter": "residence_country", "message": "Country of residence is not valid"}
                ]})),
            );
        }
        (
            StatusCode::OK,
            axum::Json(json!({"applicant_id": format!("app-{}", list.len())})),
        )
    }
    async fn verification(
        AxState(fake): AxState<Arc<FakeKycaid>>,
        headers: HeaderMap,
        UrlPath(id): UrlPath<String>,
    ) -> (StatusCode, axum::Json<Value>) {
        if !authorized(&headers) {
            return (
                StatusCode::UNAUTHORIZED,
                axum::Json(json!({"type": "unauthorized", "error": "Unauthorized"})),
            );
        }
        fake.fetched.lock().expect("lock").push(id.clone());
        let check = |ok: bool| json!({"verified": ok, "comment": "", "decline_reasons": []});
        let (status, facial) = match id.as_str() {
            "v-ok" => ("completed", true),
            "v-face" => ("completed", false),
            _ => ("pending", false),
        };
        (
            StatusCode::OK,
            axum::Json(json!({
                "verification_id": id,
                "applicant_id": "app-1",
                "status": status,
                "verified": facial,
                "verifications": {
                    "profile": check(true),
                    "document": check(true),
                    "facial": check(facial),
                },
            })),
        )
    }
    let fake = Arc::new(FakeKycaid::default());
    let app = axum::Router::new()
        .route("/applicants", post(applicants))
        .route("/verifications/{id}", get(verification))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind fake");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/"), fake)
}

/// A callback body as KYCAID sends it, with its `x-data-integrity` signature.
fn signed_callback(applicant_id: &str, verification_id: &str) -> (String, String) {
    let body = json!({
        "request_id": "61a7dbcc012d9042e909cf006e7b412d6ba5",
        "type": "VERIFICATION_COMPLETED",
        "applicant_id": applicant_id,
        "verification_id": verification_id,
        "verified": true,
        "verifications": {},
    })
    .to_string();
    let signature = barong::kyc::callback_signature(KYCAID_TOKEN, body.as_bytes());
    (body, signature)
}

async fn wait_profile_state<'a>(user: &Account<'a>, state: &str) -> Value {
    for _ in 0..100 {
        let mine = user.get("/resource/profiles/me").await;
        if mine.body[0]["state"] == state {
            return mine.body[0].clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("profile never became {state}");
}

async fn kycaid_applicant_and_signed_callback(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (endpoint, fake) = start_fake_kycaid().await;
    let server = TestServer::start(
        db.dir.path(),
        &db.url,
        &[
            ("BARONG_KYC_PROVIDER", "kycaid"),
            ("BARONG_KYCAID_API_ENDPOINT", endpoint.as_str()),
            ("BARONG_KYCAID_AUTHORIZATION_TOKEN", KYCAID_TOKEN),
            ("RUST_LOG", "debug"),
        ],
    );
    // The first user is an active superadmin with `email:verified` (level 1).
    let user = Account::sign_up(&server, "applicant@example.com").await;
    let mut body = full_profile();
    body["confirm"] = json!(true);
    let created = user.call("POST", "/resource/profiles", Some(body)).await;
    assert_eq!(created.status, 201);
    assert_eq!(created.body["state"], "submitted");

    // The applicant job: KYCAID accepts, the profile is verified and so is its label.
    wait_profile_state(&user, "verified").await;
    user.wait_label("profile", "verified").await;
    let sent = fake.applicants.lock().expect("lock").clone();
    assert_eq!(
        sent,
        [json!({
            "type": "PERSON",
            "first_name": FIRST,
            "last_name": LAST,
            "dob": "1990-05-17",
            "residence_country": "GB",
            "email": "applicant@example.com",
            "phone": null,
        })]
    );

    // Phone verified and a document pending (written as the phone and document flows do).
    support::sql(
        &db,
        &format!(
            "INSERT INTO labels (user_id, key, value, scope)
             SELECT id, 'phone', 'verified', 'private' FROM users WHERE uid = '{uid}';
             INSERT INTO labels (user_id, key, value, scope)
             SELECT id, 'document', 'pending', 'private' FROM users WHERE uid = '{uid}';",
            uid = user.uid
        ),
    )
    .await;

    // Unsigned or wrongly signed callbacks change nothing.
    let (good, signature) = signed_callback("app-1", "v-ok");
    kyc_callback(&server, &good, None)
        .await
        .errors(401, &["public.kyc.invalid_signature"]);
    let (_, other_signature) = signed_callback("app-1", "v-face");
    kyc_callback(&server, &good, Some(&other_signature))
        .await
        .errors(401, &["public.kyc.invalid_signature"]);
    let forged = barong::kyc::callback_signature("not-the-token", good.as_bytes());
    kyc_callback(&server, &good, Some(&forged))
        .await
        .errors(401, &["public.kyc.invalid_signature"]);
    assert!(fake.fetched.lock().expect("lock").is_empty());
    // Signed but not KYCAID's JSON.
    let junk_signature = barong::kyc::callback_signature(KYCAID_TOKEN, b"not json");
    kyc_callback(&server, "not json", Some(&junk_signature))
        .await
        .errors(400, &["request.malformed_body"]);

    // A pending verification changes nothing either.
    let (pending, pending_signature) = signed_callback("app-1", "v-pending");
    kyc_callback(&server, &pending, Some(&pending_signature))
        .await
        .assert(200, json!(200));

    // Signed and completed: document (with the facial check) verified, level 3.
    kyc_callback(&server, &good, Some(&signature))
        .await
        .assert(200, json!(200));
    user.wait_label("document", "verified").await;
    assert_eq!(user.get("/resource/users/me").await.body["level"], 3);
    // The two jobs run concurrently: both fetched, in either order.
    let mut fetched = fake.fetched.lock().expect("lock").clone();
    fetched.sort();
    assert_eq!(fetched, ["v-ok", "v-pending"]);

    // A failed facial check rejects the document: the level falls back to 2.
    let (face, face_signature) = signed_callback("app-1", "v-face");
    kyc_callback(&server, &face, Some(&face_signature))
        .await
        .assert(200, json!(200));
    user.wait_label("document", "rejected").await;
    assert_eq!(user.get("/resource/users/me").await.body["level"], 2);
    assert_eq!(
        user.private_label("profile").await.as_deref(),
        Some("verified")
    );

    // KYCAID refusing an applicant rejects the profile.
    let second = Account::sign_up(&server, "refused@example.com").await;
    let mut body = full_profile();
    body["last_name"] = json!("Refused");
    second
        .call("POST", "/resource/profiles", Some(body))
        .await
        .body["state"]
        .as_str()
        .map(|s| assert_eq!(s, "drafted"))
        .expect("state");
    second
        .call("PUT", "/resource/profiles", Some(json!({"confirm": true})))
        .await
        .body["state"]
        .as_str()
        .map(|s| assert_eq!(s, "submitted"))
        .expect("state");
    wait_profile_state(&second, "rejected").await;
    second.wait_label("profile", "rejected").await;
    // A rejected profile is history: the user may start again.
    let again = second
        .call(
            "POST",
            "/resource/profiles",
            Some(json!({"first_name": "Ann"})),
        )
        .await;
    assert_eq!(again.status, 201);
    assert_eq!(
        second
            .get("/resource/profiles/me")
            .await
            .body
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    // Only submissions become applicants (the drafted ones did not).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fake.applicants.lock().expect("lock").len(), 2);

    assert_no_clear_pii(&db.raw_text().await);
    assert_logs_clean(&server);
}

both_backends!(kycaid_applicant_and_signed_callback);
