//! The admin API through the real request path: operators created with `barong users create`
//! log in, the authz listener mints their bearer, the REST listener serves the admin call.
//! Every operation, each role's allowed and refused calls, and the authz caches following each
//! kind of admin change. Both backends.

use crate::common::{Answer, http};
use crate::{common, support};
use std::time::{Duration, Instant};

use base64::Engine;
use common::{Backend, TestDb, TestServer, barong_command};
use reqwest::StatusCode;
use serde_json::{Value, json};

const AGENT: &str = "Mozilla/5.0 (admin test)";
const PASSWORD: &str = "Iequ4geiEWQw";
/// The path whose bearer the role tests use: every role may reach its own resource API, so
/// the admin API's ability check is what answers (the authz permissions are tested apart).
const ANY_ROLE_PATH: &str = "/resource/users/me";

struct Env {
    db: TestDb,
    server: TestServer,
}

impl Env {
    async fn new(backend: Backend) -> Env {
        let db = TestDb::new(backend).await;
        let server = TestServer::start(db.dir.path(), &db.url, &[]);
        Env { db, server }
    }

    /// `barong users create`: an active user with a verified e-mail; its uid.
    fn create(&self, email: &str, role: &str) -> String {
        let output = barong_command(self.db.dir.path(), &self.db.url)
            .args(["users", "create", "--email", email, "--password", PASSWORD])
            .args(["--role", role])
            .output()
            .expect("run barong users create");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{stdout} {}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
            .split_whitespace()
            .nth(1)
            .expect("created <uid>")
            .to_owned()
    }

    async fn login(&self, email: &str) -> Session<'_> {
        let response = http()
            .post(self.server.url("/api/v2/barong/identity/sessions"))
            .header("user-agent", AGENT)
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
            .await
            .expect("login");
        assert_eq!(response.status(), StatusCode::OK, "login {email}");
        let cookie = support::set_session_cookie(&response).expect("session cookie");
        let body: Value = response.json().await.expect("json");
        Session {
            env: self,
            cookie,
            csrf: body["csrf_token"].as_str().expect("csrf").to_owned(),
            uid: body["uid"].as_str().expect("uid").to_owned(),
        }
    }

    /// Creates a user with `role` and logs it in.
    async fn user(&self, email: &str, role: &str) -> Session<'_> {
        self.create(email, role);
        self.login(email).await
    }
}

struct Session<'a> {
    env: &'a Env,
    cookie: String,
    csrf: String,
    uid: String,
}

impl Session<'_> {
    /// The authz decision for `method /api/v2/barong<path>` with this session: the bearer, or
    /// the status and error key.
    async fn decide(&self, method: &str, path: &str) -> Result<String, (u16, String)> {
        let response = http()
            .get(format!(
                "{}/api/v2/auth/api/v2/barong{path}",
                self.env.server.authz
            ))
            .header("x-original-method", method)
            .header("cookie", format!("_barong_session={}", self.cookie))
            .header("x-csrf-token", &self.csrf)
            .header("user-agent", AGENT)
            .send()
            .await
            .expect("authz");
        if response.status() != StatusCode::OK {
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            let key = body["errors"][0].as_str().unwrap_or_default().to_owned();
            return Err((status, key));
        }
        Ok(response.headers()["authorization"]
            .to_str()
            .expect("ascii")
            .to_owned())
    }

    /// `method /api/v2/barong<path>` through authz (which must allow it), then the REST call.
    async fn call(&self, method: &str, path: &str, body: Value) -> Answer {
        let route = path.split('?').next().unwrap_or(path);
        let bearer = self
            .decide(method, route)
            .await
            .unwrap_or_else(|e| panic!("authz refused {method} {path}: {e:?}"));
        send(
            &self.env.server,
            method,
            &format!("/api/v2/barong{path}"),
            &bearer,
            body,
        )
        .await
    }

    /// The REST call with the bearer of a path every role may reach (see [`ANY_ROLE_PATH`]).
    async fn direct(&self, method: &str, path: &str, body: Value) -> Answer {
        let bearer = self.decide("GET", ANY_ROLE_PATH).await.expect("bearer");
        send(
            &self.env.server,
            method,
            &format!("/api/v2/barong{path}"),
            &bearer,
            body,
        )
        .await
    }

    /// The JWT claims authz mints for this session now.
    async fn claims(&self) -> Result<Value, (u16, String)> {
        let bearer = self.decide("GET", ANY_ROLE_PATH).await?;
        let token = bearer.trim_start_matches("Bearer ");
        let payload = token.split('.').nth(1).expect("payload");
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64url");
        Ok(serde_json::from_slice(&bytes).expect("claims"))
    }
}

async fn send(server: &TestServer, method: &str, path: &str, bearer: &str, body: Value) -> Answer {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut request = http()
        .request(method, server.url(path))
        .header("authorization", bearer)
        .header("user-agent", AGENT);
    if !body.is_null() {
        request = request.json(&body);
    }
    let response = request.send().await.expect("call");
    Answer::read(response).await
}

/// Polls `check` every 50 ms until it holds; panics after `within`. Returns how long it took.
async fn eventually<F, Fut>(what: &str, within: Duration, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while started.elapsed() < within {
        if check().await {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: not within {within:?}");
}

fn emails(body: &Value) -> Vec<String> {
    body.as_array()
        .expect("array")
        .iter()
        .map(|u| u["email"].as_str().expect("email").to_owned())
        .collect()
}

async fn users_list_show_and_updates(backend: Backend) {
    let env = Env::new(backend).await;
    let root = env.user("root@example.com", "superadmin").await;
    let alice = env.create("alice@example.com", "member");
    let bob = env.create("bob@example.com", "member");

    // List: filters, ordering, pagination headers, both mount points.
    let all = root.call("GET", "/admin/users", Value::Null).await;
    assert_eq!(
        emails(all.ok()),
        ["root@example.com", "alice@example.com", "bob@example.com"]
    );
    assert_eq!(all.headers["total"], "3");
    assert_eq!(
        all.body[1],
        json!({"email": "alice@example.com", "uid": alice, "role": "member", "level": 1,
               "otp": false, "state": "active", "referral_uid": null, "data": null,
               "username": null})
    );
    let page = root
        .call(
            "GET",
            "/admin/users?role=member&ordering=desc&limit=1&page=2",
            Value::Null,
        )
        .await;
    assert_eq!(emails(page.ok()), ["alice@example.com"]);
    assert_eq!(
        (
            &page.headers["total"],
            &page.headers["page"],
            &page.headers["per-page"]
        ),
        (
            &"2".parse().unwrap(),
            &"2".parse().unwrap(),
            &"1".parse().unwrap()
        )
    );
    assert!(page.headers.contains_key("link"));
    let extended = root
        .call(
            "GET",
            "/admin/users?email=bob@example.com&extended=true",
            Value::Null,
        )
        .await;
    let keys: Vec<&str> = extended.ok()[0]
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "email",
            "username",
            "uid",
            "role",
            "level",
            "otp",
            "state",
            "data",
            "profiles",
            "referral_uid",
            "created_at",
            "updated_at"
        ]
    );
    let future = chrono::Utc::now().timestamp() + 3600;
    let none = root
        .call("GET", &format!("/admin/users?from={future}"), Value::Null)
        .await;
    assert_eq!(none.ok(), &json!([]));
    let mount = send(
        &env.server,
        "GET",
        "/api/v2/admin/users?state=active&order_by=email",
        &root.decide("GET", "/admin/users").await.expect("bearer"),
        Value::Null,
    )
    .await;
    assert_eq!(
        emails(mount.ok()),
        ["alice@example.com", "bob@example.com", "root@example.com"]
    );
    root.call(
        "GET",
        "/admin/users?range=later&ordering=up&order_by=nope&extended=maybe&level=x",
        Value::Null,
    )
    .await
    .errors(
        422,
        &[
            "admin.user.non_boolean_extended",
            "admin.user.non_integer_level",
            "admin.user.invalid_range",
            "user.ordering.invalid_ordering",
            "user.ordering.invalid_attribute",
        ],
    );

    // One user with everything.
    let shown = root
        .call("GET", &format!("/admin/users/{alice}"), Value::Null)
        .await;
    let keys: Vec<&str> = shown
        .ok()
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "email",
            "uid",
            "role",
            "level",
            "otp",
            "state",
            "referral_uid",
            "data",
            "username",
            "profiles",
            "labels",
            "phones",
            "documents",
            "data_storages",
            "comments",
            "created_at",
            "updated_at"
        ]
    );
    assert_eq!(shown.body["labels"][0]["key"], "email");
    assert_eq!(shown.body["labels"][0]["description"], Value::Null);
    root.call("GET", "/admin/users/ID0000000000", Value::Null)
        .await
        .errors(404, &["admin.user.doesnt_exist"]);

    // PUT users / POST users/update: exactly one attribute, Barong's checks in order.
    root.call("PUT", "/admin/users", json!({"uid": alice}))
        .await
        .errors(422, &["admin.user.one_of_state_otp_email"]);
    root.call(
        "PUT",
        "/admin/users",
        json!({"uid": alice, "state": "banned", "otp": false}),
    )
    .await
    .errors(422, &["admin.user.one_of_state_otp_email"]);
    root.call("PUT", "/admin/users", json!({"state": "banned"}))
        .await
        .errors(422, &["admin.user.missing_uid", "admin.user.empty_uid"]);
    root.call(
        "PUT",
        "/admin/users",
        json!({"uid": "ID0000000000", "state": "banned"}),
    )
    .await
    .errors(404, &["admin.user.doesnt_exist"]);
    root.call(
        "PUT",
        "/admin/users",
        json!({"uid": root.uid, "state": "banned"}),
    )
    .await
    .errors(422, &["admin.user.update_himself"]);
    root.call("PUT", "/admin/users", json!({"uid": alice, "otp": true}))
        .await
        .errors(422, &["admin.user.enable_2fa"]);
    root.call("PUT", "/admin/users", json!({"uid": alice, "otp": false}))
        .await
        .errors(422, &["admin.user.otp_no_change"]);
    root.call(
        "PUT",
        "/admin/users",
        json!({"uid": alice, "state": "active"}),
    )
    .await
    .errors(422, &["admin.user.state_no_change"]);
    root.call(
        "PUT",
        "/admin/users",
        json!({"uid": alice, "state": "locked"}),
    )
    .await
    .assert(200, json!(200));
    root.call(
        "PUT",
        "/admin/users",
        json!({"uid": alice, "email": "bob@example.com"}),
    )
    .await
    .errors(422, &["email.taken"]);
    root.call(
        "PUT",
        "/admin/users",
        json!({"uid": alice, "email": "not-an-email"}),
    )
    .await
    .errors(422, &["email.invalid"]);
    root.call(
        "PUT",
        "/admin/users",
        json!({"uid": alice, "email": "alice2@example.com"}),
    )
    .await
    .assert(200, json!(200));
    root.call(
        "POST",
        "/admin/users/update",
        json!({"uid": alice, "email": "x@example.com"}),
    )
    .await
    .errors(422, &["admin.user.one_of_state_otp"]);
    root.call(
        "POST",
        "/admin/users/update",
        json!({"uid": alice, "state": "active"}),
    )
    .await
    .assert(200, json!(200));
    let alice_now = root
        .call("GET", &format!("/admin/users/{alice}"), Value::Null)
        .await;
    assert_eq!(
        (&alice_now.body["email"], &alice_now.body["state"]),
        (&json!("alice2@example.com"), &json!("active"))
    );

    // Roles.
    root.call(
        "POST",
        "/admin/users/role",
        json!({"uid": bob, "role": "member"}),
    )
    .await
    .errors(422, &["admin.user.role_no_change"]);
    root.call(
        "POST",
        "/admin/users/role",
        json!({"uid": bob, "role": "pirate"}),
    )
    .await
    .errors(422, &["role.doesnt_exist"]);
    root.call("POST", "/admin/users/role", json!({"uid": bob}))
        .await
        .errors(422, &["admin.user.missing_role", "admin.user.empty_role"]);
    root.call(
        "POST",
        "/admin/users/role",
        json!({"uid": bob, "role": "admin"}),
    )
    .await
    .assert(200, json!(200));

    // The superadmin guard and the e-mail rule, as an admin.
    let admin = env.login("bob@example.com").await;
    admin
        .call(
            "PUT",
            "/admin/users",
            json!({"uid": root.uid, "state": "banned"}),
        )
        .await
        .errors(422, &["admin.user.superadmin_change"]);
    admin
        .call(
            "PUT",
            "/admin/users",
            json!({"uid": alice, "email": "a3@example.com"}),
        )
        .await
        .errors(422, &["superadmin.user.update_email"]);
    admin
        .call(
            "POST",
            "/admin/users/labels",
            json!({"uid": root.uid, "key": "vip", "value": "yes"}),
        )
        .await
        .errors(422, &["admin.user.superadmin_change"]);

    // A label that does not exist: 404, and still an audited users/delete call (Barong writes
    // the row at the decision, whatever the outcome).
    root.call(
        "DELETE",
        "/admin/users/labels",
        json!({"uid": alice, "key": "never-set", "scope": "private"}),
    )
    .await
    .errors(404, &["admin.label.doesnt_exist"]);

    // Every audited call above naming alice left exactly one admin activity, refused or not.
    let rows = root
        .call(
            "GET",
            &format!("/admin/activities/admin?target_uid={alice}&limit=100"),
            Value::Null,
        )
        .await;
    let rows = rows.ok().as_array().expect("rows").clone();
    assert_eq!(rows.len(), 13, "{rows:?}");
    assert!(
        rows.iter()
            .all(|r| r["target"]["uid"] == json!(alice) && r["topic"] == "users")
    );
    let with = |text: &str| {
        rows.iter()
            .filter(|r| r["data"].as_str().is_some_and(|d| d.contains(text)))
            .count()
    };
    assert_eq!(with("locked"), 1, "an accepted change");
    assert_eq!(
        with("not-an-email"),
        1,
        "a refused change (422) is audited too"
    );
    assert_eq!(with("never-set"), 1, "a 404 is audited too");
    let delete = rows
        .iter()
        .find(|r| r["data"].as_str().is_some_and(|d| d.contains("never-set")))
        .expect("the delete");
    assert_eq!(
        (
            &delete["action"],
            &delete["result"],
            &delete["admin"]["uid"]
        ),
        (&json!("delete"), &json!("succeed"), &json!(root.uid))
    );
    assert!(rows.iter().any(|r| r["admin"]["role"] == "admin"));
}

async fn labels_comments_and_storage(backend: Backend) {
    let env = Env::new(backend).await;
    let root = env.user("root@example.com", "superadmin").await;
    let alice = env.create("alice@example.com", "member");
    let bob = env.create("bob@example.com", "member");

    // Labels: create (public by default), private ones change the level.
    root.call("POST", "/admin/users/labels", json!({"uid": alice}))
        .await
        .errors(
            422,
            &[
                "admin.user.missing_key",
                "admin.user.empty_key",
                "admin.user.missing_value",
                "admin.user.empty_value",
            ],
        );
    root.call(
        "POST",
        "/admin/users/labels",
        json!({"uid": "ID0000000000", "key": "vip", "value": "gold"}),
    )
    .await
    .errors(404, &["admin.user.doesnt_exist"]);
    root.call(
        "POST",
        "/admin/users/labels",
        json!({"uid": alice, "key": "vip", "value": "Gold", "description": "big"}),
    )
    .await
    .assert(200, json!(200));
    root.call(
        "POST",
        "/admin/users/labels",
        json!({"uid": alice, "key": "vip", "value": "gold"}),
    )
    .await
    .errors(422, &["key.taken"]);
    root.call(
        "POST",
        "/admin/users/labels",
        json!({"uid": alice, "key": "x", "value": "gold", "scope": "secret"}),
    )
    .await
    .errors(422, &["key.too_short", "scope.inclusion"]);
    root.call(
        "POST",
        "/admin/users/labels",
        json!({"uid": alice, "key": "phone", "value": "verified", "scope": "private"}),
    )
    .await
    .assert(200, json!(200));
    root.call(
        "POST",
        "/admin/users/labels",
        json!({"uid": bob, "key": "phone", "value": "verified", "scope": "private"}),
    )
    .await
    .assert(200, json!(200));
    let shown = root
        .call("GET", &format!("/admin/users/{alice}"), Value::Null)
        .await;
    assert_eq!(shown.ok()["level"], 2);
    let vip = shown.body["labels"]
        .as_array()
        .expect("labels")
        .iter()
        .find(|l| l["key"] == "vip")
        .expect("vip")
        .clone();
    assert_eq!(
        (&vip["value"], &vip["scope"], &vip["description"]),
        (&json!("gold"), &json!("public"), &json!("big"))
    );

    // Counts of private labels, users by label.
    root.call("GET", "/admin/users/labels/list", Value::Null)
        .await
        .assert(
            200,
            json!({"[\"email\", \"verified\"]": 3, "[\"phone\", \"verified\"]": 2}),
        );
    let by_label = root
        .call(
            "GET",
            "/admin/users/labels?key=phone&value=verified&limit=1",
            Value::Null,
        )
        .await;
    assert_eq!(emails(by_label.ok()), ["alice@example.com"]);
    assert_eq!(by_label.headers["total"], "2");
    root.call("GET", "/admin/users/labels", Value::Null)
        .await
        .errors(422, &["admin.user.missing_key", "admin.user.missing_value"]);

    // Update (PUT: must exist, description kept unless sent) and update-or-create.
    root.call(
        "PUT",
        "/admin/users/labels",
        json!({"uid": alice, "key": "vip", "scope": "public", "value": "silver"}),
    )
    .await
    .assert(200, json!(200));
    root.call(
        "PUT",
        "/admin/users/labels",
        json!({"uid": alice, "key": "nope", "scope": "public", "value": "silver"}),
    )
    .await
    .errors(404, &["admin.label.doesnt_exist"]);
    root.call(
        "POST",
        "/admin/users/labels/update",
        json!({"uid": alice, "key": "tier", "scope": "public", "value": "one", "replace": false}),
    )
    .await
    .errors(404, &["admin.label.doesnt_exist"]);
    root.call(
        "POST",
        "/admin/users/labels/update",
        json!({"uid": alice, "key": "tier", "scope": "public", "value": "one", "replace": "maybe"}),
    )
    .await
    .errors(422, &["admin.user.non_boolean_replace"]);
    root.call("POST", "/admin/users/labels/update", json!({"uid": alice, "key": "tier", "scope": "public", "value": "one", "description": "new"}))
        .await
        .assert(200, json!(200));
    root.call(
        "POST",
        "/admin/users/labels/update",
        json!({"uid": alice, "key": "vip", "scope": "public", "value": "bronze"}),
    )
    .await
    .assert(200, json!(200));
    root.call(
        "POST",
        "/admin/users/labels/update",
        json!({"uid": alice, "scope": "public", "description": ""}),
    )
    .await
    .errors(
        422,
        &[
            "admin.user.missing_key",
            "admin.user.empty_key",
            "admin.user.missing_value",
            "admin.user.empty_value",
            "admin.user.empty_description",
        ],
    );
    let labels = root
        .call("GET", &format!("/admin/users/{alice}"), Value::Null)
        .await
        .body["labels"]
        .clone();
    let find = |key: &str| {
        labels
            .as_array()
            .expect("labels")
            .iter()
            .find(|l| l["key"] == key)
            .cloned()
            .expect("label")
    };
    assert_eq!(
        (&find("vip")["value"], &find("vip")["description"]),
        (&json!("bronze"), &Value::Null)
    );
    assert_eq!(
        (&find("tier")["value"], &find("tier")["description"]),
        (&json!("one"), &json!("new"))
    );

    // Delete: the private label goes and the level follows.
    root.call(
        "DELETE",
        "/admin/users/labels",
        json!({"uid": alice, "key": "phone", "scope": "private"}),
    )
    .await
    .assert(200, json!(200));
    root.call(
        "DELETE",
        "/admin/users/labels",
        json!({"uid": alice, "key": "phone", "scope": "private"}),
    )
    .await
    .errors(404, &["admin.label.doesnt_exist"]);
    let alice_now = root
        .call("GET", &format!("/admin/users/{alice}"), Value::Null)
        .await;
    assert_eq!(alice_now.body["level"], 1);

    // Comments (no ability needed): 201 with the user, then edit and delete.
    root.call(
        "POST",
        "/admin/users/comments",
        json!({"uid": alice, "title": "t".repeat(65), "data": ""}),
    )
    .await
    .errors(
        422,
        &["admin.comments.title_too_long", "admin.user.empty_data"],
    );
    root.call("POST", "/admin/users/comments", json!({"uid": alice}))
        .await
        .errors(
            422,
            &[
                "admin.user.missing_title",
                "admin.user.empty_title",
                "admin.user.missing_data",
                "admin.user.empty_data",
            ],
        );
    let created = root
        .call(
            "POST",
            "/admin/users/comments",
            json!({"uid": alice, "title": "KYC", "data": "called"}),
        )
        .await;
    assert_eq!(created.status, 201);
    let comment = created.body["comments"][0].clone();
    assert_eq!(
        (&comment["author_uid"], &comment["title"], &comment["data"]),
        (&json!(root.uid), &json!("KYC"), &json!("called"))
    );
    let id = comment["id"].as_i64().expect("id");
    let edited = root
        .call(
            "PUT",
            "/admin/users/comments",
            json!({"id": id, "data": "called twice"}),
        )
        .await;
    assert_eq!(edited.ok()["comments"][0]["data"], "called twice");
    assert_eq!(edited.body["comments"][0]["title"], "KYC");
    root.call(
        "PUT",
        "/admin/users/comments",
        json!({"id": 999999, "data": "x"}),
    )
    .await
    .errors(404, &["record.not_found"]);
    root.call("PUT", "/admin/users/comments", json!({"id": "one"}))
        .await
        .errors(422, &["admin.user.non_integer_id"]);
    let deleted = root
        .call("DELETE", "/admin/users/comments", json!({"id": id}))
        .await;
    assert_eq!(deleted.ok()["comments"], json!([]));
    root.call("DELETE", "/admin/users/comments", json!({"id": id}))
        .await
        .errors(404, &["record.not_found"]);

    // Data storage: the row goes, its label stays.
    let store = env.db.open().await;
    let user = store
        .find_user_by_uid(&alice)
        .await
        .expect("db")
        .expect("alice");
    let rules = barong::domain::StateRules::default();
    store
        .create_data_storage(user.id, "personal", "{\"a\":1}", &rules)
        .await
        .expect("storage");
    root.call(
        "DELETE",
        "/admin/users/data_storage",
        json!({"uid": alice, "title": "other"}),
    )
    .await
    .errors(404, &["admin.storage.doesnt_exist"]);
    let gone = root
        .call(
            "DELETE",
            "/admin/users/data_storage",
            json!({"uid": alice, "title": "personal"}),
        )
        .await;
    assert_eq!(gone.ok()["data_storages"], json!([]));
    assert!(
        gone.body["labels"]
            .as_array()
            .expect("labels")
            .iter()
            .any(|l| l["key"] == "personal")
    );

    // Pending documents: by the label's last change, filtered like the users list.
    for uid in [&bob, &alice] {
        root.call(
            "POST",
            "/admin/users/labels",
            json!({"uid": uid, "key": "document", "value": "pending", "scope": "private"}),
        )
        .await
        .assert(200, json!(200));
    }
    let pending = root
        .call("GET", "/admin/users/documents/pending", Value::Null)
        .await;
    assert_eq!(
        emails(pending.ok()),
        ["bob@example.com", "alice@example.com"]
    );
    let filtered = root
        .call(
            "GET",
            &format!("/admin/users/documents/pending?uid={alice}&extended=true"),
            Value::Null,
        )
        .await;
    assert_eq!(emails(filtered.ok()), ["alice@example.com"]);
    assert!(filtered.body[0].get("comments").is_some());
    let metrics = root.call("GET", "/admin/metrics", Value::Null).await;
    assert_eq!(metrics.ok()["pending_applications"], 2);
}

async fn permissions_restrictions_and_the_rest(backend: Backend) {
    let env = Env::new(backend).await;
    let root = env.user("root@example.com", "superadmin").await;
    let alice = env.create("alice@example.com", "member");

    // Abilities and levels.
    root.call("GET", "/admin/abilities", Value::Null)
        .await
        .assert(
            200,
            json!({"manage": ["Ability", "User", "Level", "Label", "Profile", "Activity", "APIKey",
                          "Permission", "Restriction", "Document"]}),
        );
    root.call("GET", "/admin/levels", Value::Null).await.assert(
        200,
        json!([{"id": 1, "key": "email", "value": "verified"},
               {"id": 2, "key": "phone", "value": "verified"},
               {"id": 3, "key": "document", "value": "verified"}]),
    );

    // Permissions.
    let listed = root
        .call("GET", "/admin/permissions?limit=2", Value::Null)
        .await;
    assert_eq!(listed.ok().as_array().expect("rows").len(), 2);
    let total: i64 = listed.headers["total"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("n");
    assert!(total > 50, "{total}");
    assert_eq!(
        listed.body[0]
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        [
            "id",
            "action",
            "role",
            "verb",
            "path",
            "topic",
            "created_at",
            "updated_at"
        ]
    );
    root.call(
        "POST",
        "/admin/permissions",
        json!({"role": "member", "verb": "get", "path": "api/v2/x", "action": ""}),
    )
    .await
    .errors(422, &["admin.permission.empty_action"]);
    root.call(
        "POST",
        "/admin/permissions",
        json!({"role": "member", "verb": "fetch", "path": "api/v2/x", "action": "accept"}),
    )
    .await
    .errors(422, &["admin.permissions.invalid_verb"]);
    root.call(
        "POST",
        "/admin/permissions",
        json!({"role": "member", "verb": "get", "path": "api/v2/x", "action": "allow"}),
    )
    .await
    .errors(422, &["admin.permissions.invalid_action"]);
    root.call(
        "POST",
        "/admin/permissions",
        json!({"role": "pirate", "verb": "get", "path": "api/v2/x", "action": "accept"}),
    )
    .await
    .errors(422, &["admin.permission.role_doesnt_exist"]);
    root.call("POST", "/admin/permissions", json!({"role": "member", "verb": "get", "path": "api/v2/x", "action": "accept", "topic": "x"}))
        .await
        .assert(200, json!(200));
    let last = root
        .call(
            "GET",
            &format!("/admin/permissions?limit=1&page={}", total + 1),
            Value::Null,
        )
        .await;
    let created = last.ok()[0].clone();
    assert_eq!(
        (
            &created["role"],
            &created["verb"],
            &created["path"],
            &created["action"],
            &created["topic"]
        ),
        (
            &json!("member"),
            &json!("GET"),
            &json!("api/v2/x"),
            &json!("ACCEPT"),
            &json!("x")
        )
    );
    let id = created["id"].as_i64().expect("id");
    root.call(
        "PUT",
        "/admin/permissions",
        json!({"id": id, "verb": "post", "action": "whatever"}),
    )
    .await
    .assert(200, json!(200));
    let updated = root
        .call(
            "GET",
            &format!("/admin/permissions?limit=1&page={}", total + 1),
            Value::Null,
        )
        .await;
    assert_eq!(
        (&updated.body[0]["verb"], &updated.body[0]["action"]),
        (&json!("POST"), &json!("WHATEVER"))
    );
    root.call(
        "PUT",
        "/admin/permissions",
        json!({"id": 999999, "verb": "post"}),
    )
    .await
    .errors(404, &["admin.permission.doesnt_exist"]);
    root.call("DELETE", "/admin/permissions", json!({"id": id}))
        .await
        .assert(200, json!(200));
    root.call("DELETE", "/admin/permissions", json!({"id": id}))
        .await
        .errors(404, &["admin.permission.doesnt_exist"]);

    // Restrictions.
    root.call("POST", "/admin/restrictions", json!({"value": "1.2.3.4"}))
        .await
        .errors(
            422,
            &[
                "admin.restriction.missing_scope",
                "admin.restriction.empty_scope",
                "admin.restriction.invalid_scope",
                "admin.restriction.missing_category",
                "admin.restriction.invalid_category",
                "admin.restriction.empty_category",
            ],
        );
    root.call(
        "POST",
        "/admin/restrictions",
        json!({"scope": "ip", "value": "1.2.3.4", "category": "blacklist", "state": "paused"}),
    )
    .await
    .errors(422, &["admin.restriction.invalid_state"]);
    root.call(
        "POST",
        "/admin/restrictions",
        json!({"scope": "ip", "value": "1.2.3", "category": "blacklist"}),
    )
    .await
    .errors(422, &["value.invalid"]);
    // A status that would not deny (2xx would answer "allow" to the restricted client).
    for code in [200, 204, 302, 500, 99] {
        root.call(
            "POST",
            "/admin/restrictions",
            json!({"scope": "ip", "value": "1.2.3.9", "category": "blacklist", "code": code}),
        )
        .await
        .errors(422, &["code.invalid"]);
    }
    root.call(
        "POST",
        "/admin/restrictions",
        json!({"scope": "ip", "value": "1.2.3.4", "category": "blacklist", "state": "disabled"}),
    )
    .await
    .assert(200, json!(200));
    root.call(
        "POST",
        "/admin/restrictions",
        json!({"scope": "ip", "value": "1.2.3.4", "category": "blacklist"}),
    )
    .await
    .errors(422, &["value.taken"]);
    root.call("POST", "/admin/restrictions", json!({"scope": "country", "value": "Narnia", "category": "maintenance", "code": 499, "state": "disabled"}))
        .await
        .assert(200, json!(200));
    let rows = root
        .call(
            "GET",
            "/admin/restrictions?category=blacklist&scope=ip",
            Value::Null,
        )
        .await;
    let row = rows
        .ok()
        .as_array()
        .expect("rows")
        .last()
        .expect("row")
        .clone();
    assert_eq!(
        (&row["value"], &row["code"], &row["state"]),
        (&json!("1.2.3.4"), &json!(401), &json!("disabled"))
    );
    let maintenance = root
        .call(
            "GET",
            "/admin/restrictions?category=maintenance",
            Value::Null,
        )
        .await;
    assert!(
        maintenance
            .ok()
            .as_array()
            .expect("rows")
            .iter()
            .any(|r| r["value"] == "Narnia" && r["code"] == 499)
    );
    root.call(
        "GET",
        "/admin/restrictions?scope=planet&range=later",
        Value::Null,
    )
    .await
    .errors(
        422,
        &[
            "admin.restriction.invalid_scope",
            "admin.restriction.invalid_range",
        ],
    );
    let id = row["id"].as_i64().expect("id");
    // Re-validated as a whole: an ip_subnet needs a subnet, and nothing changes.
    root.call(
        "PUT",
        "/admin/restrictions",
        json!({"id": id, "scope": "ip_subnet"}),
    )
    .await
    .errors(422, &["value.invalid"]);
    root.call("PUT", "/admin/restrictions", json!({"id": id, "code": 200}))
        .await
        .errors(422, &["code.invalid"]);
    root.call(
        "PUT",
        "/admin/restrictions",
        json!({"id": id, "scope": "ip_subnet", "value": "1.2.3.0/24"}),
    )
    .await
    .assert(200, json!(200));
    let subnet = root
        .call("GET", "/admin/restrictions?scope=ip_subnet", Value::Null)
        .await;
    assert!(
        subnet
            .ok()
            .as_array()
            .expect("rows")
            .iter()
            .any(|r| r["id"] == id && r["value"] == "1.2.3.0/24")
    );
    root.call(
        "PUT",
        "/admin/restrictions",
        json!({"id": 999999, "state": "enabled"}),
    )
    .await
    .errors(404, &["admin.restriction.doesnt_exist"]);
    root.call("DELETE", "/admin/restrictions", json!({"id": id}))
        .await
        .assert(200, json!(200));
    root.call("DELETE", "/admin/restrictions", json!({"id": id}))
        .await
        .errors(404, &["admin.restriction.doesnt_exist"]);

    // Whitelink tokens open `identity/users/access`.
    root.call(
        "POST",
        "/admin/restrictions/whitelink",
        json!({"expire_time": 31}),
    )
    .await
    .errors(422, &["invalid_expire"]);
    for expire in [0, -1] {
        root.call(
            "POST",
            "/admin/restrictions/whitelink",
            json!({"expire_time": expire}),
        )
        .await
        .errors(422, &["invalid_expire"]);
    }
    root.call(
        "POST",
        "/admin/restrictions/whitelink",
        json!({"range": "week"}),
    )
    .await
    .errors(422, &["invalid_range"]);
    let link = root
        .call(
            "POST",
            "/admin/restrictions/whitelink",
            json!({"expire_time": 2, "range": "hour"}),
        )
        .await;
    assert_eq!(link.status, 201);
    let token = link.body["whitelink_token"].as_str().expect("token");
    assert_eq!(token.len(), 64);
    let store = env.db.open().await;
    assert!(
        store
            .whitelink_token_valid(token, chrono::Utc::now().timestamp() + 3600)
            .await
            .expect("db")
    );
    assert!(
        !store
            .whitelink_token_valid(token, chrono::Utc::now().timestamp() + 7300)
            .await
            .expect("db")
    );

    // API keys of a user, without secrets.
    root.call("GET", "/admin/api_keys", Value::Null)
        .await
        .errors(422, &["admin.apikey.missing_uid", "admin.apikey.empty_uid"]);
    root.call("GET", "/admin/api_keys?uid=ID0000000000", Value::Null)
        .await
        .errors(404, &["admin.user.doesnt_exist"]);
    root.call(
        "GET",
        &format!("/admin/api_keys?uid={alice}&ordering=sideways"),
        Value::Null,
    )
    .await
    .errors(422, &["api_keys.ordering.invalid_ordering"]);
    let user = store
        .find_user_by_uid(&alice)
        .await
        .expect("db")
        .expect("alice");
    store
        .create_api_key(&barong::domain::NewApiKey {
            holder: barong::domain::KeyHolder::User(user.id),
            kid: "0123456789abcdef".into(),
            algorithm: "HS256".into(),
            scope: vec![],
            secret_encrypted: "x".into(),
            state: "active".into(),
        })
        .await
        .expect("key");
    let keys = root
        .call("GET", &format!("/admin/api_keys?uid={alice}"), Value::Null)
        .await;
    assert_eq!(
        keys.ok()[0]
            .as_object()
            .expect("key")
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        [
            "kid",
            "algorithm",
            "scope",
            "state",
            "created_at",
            "updated_at"
        ]
    );

    // Activities: the users' own (logins), the admins' (everything changed above), metrics.
    let logins = root
        .call(
            "GET",
            "/admin/activities?topic=session&action=login",
            Value::Null,
        )
        .await;
    let login = logins.ok()[0].clone();
    assert_eq!(
        (&login["user"]["uid"], &login["result"]),
        (&json!(root.uid), &json!("succeed"))
    );
    root.call("GET", "/admin/activities?uid=ID0000000000", Value::Null)
        .await
        .assert(200, json!([]));
    let admin_rows = root
        .call(
            "GET",
            "/admin/activities/admin?topic=restrictions&action=delete",
            Value::Null,
        )
        .await;
    // Both deletes of that restriction are audited: the one that worked and the 404 after it.
    assert_eq!(admin_rows.ok().as_array().expect("rows").len(), 2);
    assert_eq!(admin_rows.body[0]["admin"]["uid"], json!(root.uid));
    assert_eq!(admin_rows.body[0]["target"], Value::Null);
    root.call("GET", "/admin/activities/admin?range=updated", Value::Null)
        .await
        .errors(422, &["admin.activity.invalid_range"]);
    let future = chrono::Utc::now().timestamp() + 3600;
    root.call(
        "GET",
        &format!("/admin/activities?from={future}"),
        Value::Null,
    )
    .await
    .assert(200, json!([]));
    let metrics = root
        .call("GET", "/admin/metrics?created_from=x", Value::Null)
        .await;
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert_eq!(metrics.ok()["sucessful_logins"][&today], 1);
    assert_eq!(metrics.body["signups"], json!({}));
    assert_eq!(metrics.body["failed_logins"], json!({}));
    assert_eq!(metrics.body["pending_applications"], 0);
}

/// One call per (action, resource) the role table distinguishes; `None` = refused.
async fn abilities_per_role(backend: Backend) {
    let env = Env::new(backend).await;
    let target = env.create("target@example.com", "member");
    // (role, read User, update User, read Permission, create Permission, create Restriction,
    //  read APIKey, create Label, read Activity, read Level)
    let table: [(&str, [bool; 9]); 7] = [
        (
            "superadmin",
            [true, true, true, true, true, true, true, true, true],
        ),
        (
            "admin",
            [true, true, true, false, true, true, true, true, true],
        ),
        (
            "technical",
            [true, false, false, false, true, true, false, true, true],
        ),
        (
            "accountant",
            [true, false, false, false, false, false, false, true, true],
        ),
        (
            "compliance",
            [true, true, false, false, false, false, true, false, true],
        ),
        (
            "support",
            [true, true, false, false, false, false, false, true, true],
        ),
        (
            "member",
            [
                false, false, false, false, false, false, false, false, false,
            ],
        ),
    ];
    for (n, (role, allowed)) in table.iter().enumerate() {
        let caller = env.user(&format!("r{n}@example.com"), role).await;
        let calls: [(&str, String, Value); 9] = [
            ("GET", "/admin/users".into(), Value::Null),
            // A real change would differ per role; an unknown uid answers 404 once allowed.
            (
                "PUT",
                "/admin/users".into(),
                json!({"uid": "ID0000000000", "state": "banned"}),
            ),
            ("GET", "/admin/permissions".into(), Value::Null),
            (
                "POST",
                "/admin/permissions".into(),
                json!({"role": "nobody", "verb": "get", "path": "api/v2/x", "action": "accept"}),
            ),
            (
                "POST",
                "/admin/restrictions".into(),
                json!({"scope": "ip", "value": format!("10.0.0.{n}"), "category": "blacklist", "state": "disabled"}),
            ),
            ("GET", format!("/admin/api_keys?uid={target}"), Value::Null),
            (
                "POST",
                "/admin/users/labels".into(),
                json!({"uid": "ID0000000000", "key": "vip", "value": "yes"}),
            ),
            ("GET", "/admin/activities".into(), Value::Null),
            ("GET", "/admin/levels".into(), Value::Null),
        ];
        for ((method, path, body), allowed) in calls.into_iter().zip(allowed) {
            let answer = caller.direct(method, &path, body).await;
            if *allowed {
                assert_ne!(
                    answer.status, 401,
                    "{role} {method} {path}: {}",
                    answer.body
                );
                assert!(
                    answer.status < 500,
                    "{role} {method} {path}: {}",
                    answer.body
                );
            } else {
                answer.errors(401, &["admin.ability.not_permitted"]);
            }
        }
        let abilities = caller.direct("GET", "/admin/abilities", Value::Null).await;
        assert_eq!(
            abilities.ok(),
            &if *role == "member" {
                json!({})
            } else {
                json!(barong::domain::abilities::ability_map(role))
            }
        );
    }
    // The two layers: the seeds also keep an admin away from permissions at the gateway.
    let admin = env.login("r1@example.com").await;
    assert_eq!(
        admin.decide("GET", "/admin/permissions").await,
        Err((401, "authz.invalid_permission".into()))
    );
    // No bearer, a bad one.
    send(
        &env.server,
        "GET",
        "/api/v2/barong/admin/users",
        "Bearer x.y.z",
        Value::Null,
    )
    .await
    .errors(401, &["jwt.decode_and_verify"]);
}

/// Each kind of admin change reaches the authz decision on this instance at once.
async fn authz_follows_admin_changes(backend: Backend) {
    let env = Env::new(backend).await;
    let root = env.user("root@example.com", "superadmin").await;
    let member = env.user("member@example.com", "member").await;
    let within = Duration::from_secs(2);
    let path = "/resource/users/me";
    member.decide("GET", path).await.expect("allowed");

    // A permission created (DROP) then deleted via the admin API.
    root.call("POST", "/admin/permissions", json!({"role": "member", "verb": "get", "path": "api/v2/barong/resource/users", "action": "drop"}))
        .await
        .assert(200, json!(200));
    eventually("change 1", within, || async {
        member.decide("GET", path).await == Err((401, "authz.invalid_permission".into()))
    })
    .await;
    let permissions = root
        .call("GET", "/admin/permissions?limit=100&page=1", Value::Null)
        .await;
    let total: i64 = permissions.headers["total"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("n");
    let last = root
        .call(
            "GET",
            &format!("/admin/permissions?limit=1&page={total}"),
            Value::Null,
        )
        .await;
    let id = last.ok()[0]["id"].as_i64().expect("id");
    root.call("DELETE", "/admin/permissions", json!({"id": id}))
        .await
        .assert(200, json!(200));
    eventually("change 2", within, || async {
        member.decide("GET", path).await.is_ok()
    })
    .await;

    // A label changes the level in the minted token; a role change the role.
    assert_eq!(member.claims().await.expect("claims")["level"], 1);
    root.call(
        "POST",
        "/admin/users/labels",
        json!({"uid": member.uid, "key": "phone", "value": "verified", "scope": "private"}),
    )
    .await
    .assert(200, json!(200));
    eventually("change 3", within, || async {
        member.claims().await.is_ok_and(|c| c["level"] == 2)
    })
    .await;
    root.call(
        "POST",
        "/admin/users/role",
        json!({"uid": member.uid, "role": "trader"}),
    )
    .await
    .assert(200, json!(200));
    eventually("change 4", within, || async {
        member.claims().await.is_ok_and(|c| c["role"] == "trader")
    })
    .await;

    // A restriction created, then deleted.
    // The client's address is 8.8.4.4: the session (bound to loopback) is refused anyway;
    // what matters is whether the restriction answers first.
    // A session of its own: the address mismatch destroys it.
    let probe = env.login("member@example.com").await;
    let restricted = || async {
        let response = http()
            .get(format!(
                "{}/api/v2/auth/api/v2/barong{path}",
                env.server.authz
            ))
            .header("cookie", format!("_barong_session={}", probe.cookie))
            .header("user-agent", AGENT)
            .header("x-forwarded-for", "8.8.4.4")
            .send()
            .await
            .expect("authz");
        let body: Value = response.json().await.unwrap_or(Value::Null);
        body["errors"][0] == "authz.restrict.blacklist"
    };
    root.call(
        "POST",
        "/admin/restrictions",
        json!({"scope": "ip", "value": "8.8.4.4", "category": "blacklist"}),
    )
    .await
    .assert(200, json!(200));
    eventually("change 5", within, || async { restricted().await }).await;
    let rows = root
        .call("GET", "/admin/restrictions?scope=ip", Value::Null)
        .await;
    let id = rows
        .ok()
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["value"] == "8.8.4.4")
        .expect("row")["id"]
        .as_i64()
        .expect("id");
    root.call(
        "PUT",
        "/admin/restrictions",
        json!({"id": id, "state": "disabled"}),
    )
    .await
    .assert(200, json!(200));
    eventually("change 6", within, || async { !restricted().await }).await;
    root.call("DELETE", "/admin/restrictions", json!({"id": id}))
        .await
        .assert(200, json!(200));

    // A state change: the session is refused, an API key deactivated.
    let store = env.db.open().await;
    let user = store
        .find_user_by_uid(&member.uid)
        .await
        .expect("db")
        .expect("member");
    store
        .create_api_key(&barong::domain::NewApiKey {
            holder: barong::domain::KeyHolder::User(user.id),
            kid: "fedcba9876543210".into(),
            algorithm: "HS256".into(),
            scope: vec![],
            secret_encrypted: "x".into(),
            state: "active".into(),
        })
        .await
        .expect("key");
    root.call(
        "PUT",
        "/admin/users",
        json!({"uid": member.uid, "state": "banned"}),
    )
    .await
    .assert(200, json!(200));
    eventually("change 7", within, || async {
        member.decide("GET", path).await == Err((401, "authz.user_not_active".into()))
    })
    .await;
    let key = store
        .find_api_key("fedcba9876543210")
        .await
        .expect("db")
        .expect("key");
    assert_eq!(key.state, "inactive");
    root.call(
        "PUT",
        "/admin/users",
        json!({"uid": member.uid, "state": "active"}),
    )
    .await
    .assert(200, json!(200));
    eventually("change 8", within, || async {
        member.decide("GET", path).await.is_ok()
    })
    .await;
}

async fn profiles(backend: Backend) {
    let env = Env::new(backend).await;
    let root = env.user("root@example.com", "superadmin").await;
    let alice = env.create("alice@example.com", "member");
    let profile = json!({"uid": alice, "first_name": "Zebulon", "last_name": "Quixworthy",
                         "dob": "1990-05-17", "address": "42 Marigold Lane", "postcode": "Z9 8QX",
                         "city": "Ravensholm", "country": "GB"});

    root.call("POST", "/admin/profiles", json!({"uid": "ID0000000000"}))
        .await
        .errors(404, &["admin.user.doesnt_exist"]);
    let created = root.call("POST", "/admin/profiles", profile.clone()).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(
        (
            &created.body["last_name"],
            &created.body["dob"],
            &created.body["state"]
        ),
        (
            &json!("Quixworthy"),
            &json!("1990-05-17"),
            &json!("submitted")
        )
    );
    root.call("POST", "/admin/profiles", profile.clone())
        .await
        .errors(422, &["state.exists"]);

    let listed = root
        .call("GET", "/admin/profiles?limit=10", Value::Null)
        .await;
    assert_eq!(listed.ok().as_array().expect("rows").len(), 1);
    assert_eq!(listed.headers["total"], "1");
    assert_eq!(listed.body[0]["city"], "Ravensholm");
    let by_country = root
        .call("GET", "/admin/users?country=GB&extended=true", Value::Null)
        .await;
    assert_eq!(emails(by_country.ok()), ["alice@example.com"]);
    assert_eq!(by_country.body[0]["profiles"][0]["first_name"], "Zebulon");
    let shown = root
        .call("GET", &format!("/admin/users/{alice}"), Value::Null)
        .await;
    assert_eq!(shown.ok()["profiles"][0]["state"], "submitted");

    // An admin's decision on the submitted profile; the label follows.
    root.call(
        "PUT",
        "/admin/profiles",
        json!({"uid": alice, "state": "approved"}),
    )
    .await
    .errors(422, &["admin.profile.invalid_state"]);
    let decided = root
        .call(
            "PUT",
            "/admin/profiles",
            json!({"uid": alice, "state": "verified"}),
        )
        .await;
    assert_eq!(decided.ok()["state"], "verified");
    root.call(
        "PUT",
        "/admin/profiles",
        json!({"uid": alice, "state": "rejected"}),
    )
    .await
    .errors(404, &["admin.profiles.doesnt_exist_or_not_editable"]);
    let labels = root
        .call("GET", &format!("/admin/users/{alice}"), Value::Null)
        .await
        .body["labels"]
        .clone();
    assert!(
        labels
            .as_array()
            .expect("labels")
            .iter()
            .any(|l| l["key"] == "profile" && l["value"] == "verified")
    );

    // The superadmin guard, and the abilities.
    root.call(
        "POST",
        "/admin/profiles",
        json!({"uid": root.uid, "first_name": "Root", "country": "GB"}),
    )
    .await;
    let admin = env.user("admin@example.com", "admin").await;
    admin
        .call(
            "PUT",
            "/admin/profiles",
            json!({"uid": root.uid, "state": "verified"}),
        )
        .await
        .errors(422, &["admin.profiles.superadmin_change"]);
    let accountant = env.user("acc@example.com", "accountant").await;
    assert_eq!(
        accountant
            .direct("GET", "/admin/profiles", Value::Null)
            .await
            .status,
        200
    );
    accountant
        .direct(
            "PUT",
            "/admin/profiles",
            json!({"uid": alice, "state": "verified"}),
        )
        .await
        .errors(401, &["admin.ability.not_permitted"]);
}

/// Changes whose effect must be there on the very next decision of the instance that made
/// them: a permission created or deleted (twenty rounds, so a race between the answer and the
/// cache refresh shows), and a `blocklogin` restriction, which ends every session at once.
async fn admin_changes_take_effect_before_the_answer(backend: Backend) {
    let env = Env::new(backend).await;
    let root = env.user("root@example.com", "superadmin").await;
    let member = env.user("member@example.com", "member").await;
    let path = "/resource/users/me";
    assert!(member.decide("GET", path).await.is_ok());
    for round in 0..20 {
        root.call(
            "POST",
            "/admin/permissions",
            json!({"role": "member", "verb": "GET", "path": "api/v2/barong/resource/users/me",
                   "action": "DROP"}),
        )
        .await
        .assert(200, json!(200));
        assert_eq!(
            member.decide("GET", path).await.err(),
            Some((401, "authz.invalid_permission".to_owned())),
            "round {round}: the DROP row is not in force"
        );
        let mut id = None;
        for page in 1..=10 {
            let rows = root
                .call(
                    "GET",
                    &format!("/admin/permissions?limit=100&page={page}"),
                    Value::Null,
                )
                .await;
            id = id.or_else(|| {
                rows.ok().as_array().expect("rows").iter().find_map(|r| {
                    (r["action"] == "DROP" && r["path"] == "api/v2/barong/resource/users/me")
                        .then(|| r["id"].as_i64())
                        .flatten()
                })
            });
        }
        let id = id.expect("the DROP row");
        root.call("DELETE", "/admin/permissions", json!({"id": id}))
            .await
            .assert(200, json!(200));
        assert!(
            member.decide("GET", path).await.is_ok(),
            "round {round}: the deleted DROP row is still in force"
        );
    }

    // A disabled blocklogin row ends nothing; enabling it ends every session, the admin's too.
    root.call(
        "POST",
        "/admin/restrictions",
        json!({"scope": "ip", "value": "10.9.9.9", "category": "blocklogin", "state": "disabled"}),
    )
    .await
    .assert(200, json!(200));
    assert!(member.decide("GET", path).await.is_ok());
    let rows = root
        .call(
            "GET",
            "/admin/restrictions?category=blocklogin",
            Value::Null,
        )
        .await;
    let id = rows.ok().as_array().expect("rows")[0]["id"]
        .as_i64()
        .expect("id");
    root.call(
        "PUT",
        "/admin/restrictions",
        json!({"id": id, "state": "enabled"}),
    )
    .await
    .assert(200, json!(200));
    for session in [&member, &root] {
        assert_eq!(
            session.decide("GET", path).await.err(),
            Some((401, "authz.invalid_session".to_owned()))
        );
    }
    // Logging in again works (the row blocks 10.9.9.9 only).
    let again = env.login("member@example.com").await;
    assert!(again.decide("GET", path).await.is_ok());
}

/// `width` claims of `session` asked at once, each over a connection of its own (`http()`
/// builds a client per call), so every worker thread of the server takes a share.
async fn claims_at_once(session: &Session<'_>, width: usize) -> Vec<Result<Value, (u16, String)>> {
    futures_util::future::join_all((0..width).map(|_| session.claims())).await
}

/// Like `claims_at_once`, the decision on `path`.
async fn decide_at_once(
    session: &Session<'_>,
    path: &str,
    width: usize,
) -> Vec<Result<String, (u16, String)>> {
    futures_util::future::join_all((0..width).map(|_| session.decide("GET", path))).await
}

/// The same changes with the member's entries hot on every worker thread (each thread's front,
/// `src/authz/thread_front.rs`, holds a copy of its own after a few hits): the very next
/// decisions, many at once over as many connections, all see the change. Nothing is polled.
async fn hot_entries_follow_changes_on_every_thread(backend: Backend) {
    let env = Env::new(backend).await;
    let root = env.user("root@example.com", "superadmin").await;
    let member = env.user("member@example.com", "member").await;
    let path = "/resource/users/me";
    for _ in 0..4 {
        for answer in claims_at_once(&member, 48).await {
            assert_eq!(answer.expect("allowed")["role"], "member");
        }
    }
    root.call(
        "POST",
        "/admin/users/role",
        json!({"uid": member.uid, "role": "trader"}),
    )
    .await
    .assert(200, json!(200));
    for answer in claims_at_once(&member, 64).await {
        assert_eq!(answer.expect("allowed")["role"], "trader", "a stale role");
    }

    // Hot again under the new role, then banned: refused at once everywhere.
    for _ in 0..4 {
        assert!(claims_at_once(&member, 48).await.iter().all(Result::is_ok));
    }
    root.call(
        "PUT",
        "/admin/users",
        json!({"uid": member.uid, "state": "banned"}),
    )
    .await
    .assert(200, json!(200));
    for answer in claims_at_once(&member, 64).await {
        assert_eq!(
            answer.err(),
            Some((401, "authz.user_not_active".to_owned())),
            "a banned user allowed"
        );
    }

    // A hot session logged out: refused at once everywhere.
    let other = env.user("other@example.com", "member").await;
    for _ in 0..4 {
        assert!(
            decide_at_once(&other, path, 48)
                .await
                .iter()
                .all(Result::is_ok)
        );
    }
    let logout = http()
        .delete(env.server.url("/api/v2/barong/identity/sessions"))
        .header("cookie", format!("_barong_session={}", other.cookie))
        .header("x-csrf-token", &other.csrf)
        .header("user-agent", AGENT)
        .send()
        .await
        .expect("logout");
    assert_eq!(logout.status(), StatusCode::OK);
    for answer in decide_at_once(&other, path, 64).await {
        assert_eq!(
            answer.err(),
            Some((401, "authz.invalid_session".to_owned())),
            "a logged-out session allowed"
        );
    }
}

both_backends!(
    admin_changes_take_effect_before_the_answer,
    hot_entries_follow_changes_on_every_thread,
    profiles,
    users_list_show_and_updates,
    labels_comments_and_storage,
    permissions_restrictions_and_the_rest,
    abilities_per_role,
    authz_follows_admin_changes,
);
