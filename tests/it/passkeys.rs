//! Passkeys (WebAuthn) through the real request path, on both backends: a software
//! authenticator (PyPI `fido2`, `tests/support/soft_authenticator.py`) answers the server's
//! options as a browser and a platform authenticator would; the resource calls carry the
//! bearer the authz listener mints from the session. Registration, list, rename, delete (the
//! last one needs proof), login with a passkey as the second factor and alone, clone detection,
//! replayed and expired challenges, wrong origins and relying-party ids, two instances.

use std::time::Duration;

use barong::crypto::totp;

use crate::common;
use crate::support::webauthn::{
    Authenticator, Browser, PASSWORD, RP_ID, create_user, finish_login, identity, login_options,
    start,
};
use common::{Backend, TestDb, TestServer};
use serde_json::{Value, json};

async fn register_list_rename_delete(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = start(&db, &[]);
    create_user(&db, "alice@barong.test");
    let alice = Browser::login(&server, "alice@barong.test").await;
    // A session alone does not start a registration: a stolen cookie must not add a way in.
    alice
        .passkey_options(&server, Value::Null)
        .await
        .errors(422, "resource.passkey.confirmation_required");
    let wrong = json!({"password": "Wrong-Passw0rd"});
    alice
        .passkey_options(&server, wrong)
        .await
        .errors(422, "resource.passkey.invalid_password");
    let proof = json!({"password": PASSWORD});
    let options = alice.passkey_options(&server, proof.clone()).await;
    let public_key = &options.status(201)["publicKey"];
    assert_eq!(public_key["rp"]["id"], RP_ID);
    assert_eq!(
        public_key["authenticatorSelection"]["residentKey"],
        "preferred"
    );
    assert_eq!(
        public_key["authenticatorSelection"]["userVerification"],
        "required"
    );
    let laptop = Authenticator::new(&db, "laptop");
    let credential = laptop.create(&options.body, json!({}));
    let register = json!({"credential": credential, "name": "  Laptop "});
    let first = alice
        .call(&server, "POST", "/passkeys", register.clone())
        .await;
    let first = first.status(201).clone();
    assert_eq!(first["name"], "Laptop");
    assert_eq!(first["last_used_at"], Value::Null);
    // The same answer again: its challenge was taken by the first.
    alice
        .call(&server, "POST", "/passkeys", register)
        .await
        .errors(422, "resource.passkey.invalid_challenge");
    // Answers for another origin or another relying party are refused, and use up the challenge.
    for extra in [
        json!({"origin": "https://evil.test"}),
        json!({"origin": "https://exchange.test:8443"}),
        json!({"rp_id": "evil.test"}),
    ] {
        let options = alice.passkey_options(&server, proof.clone()).await;
        let other = Authenticator::new(&db, "other");
        let credential = other.create(options.status(201), extra.clone());
        alice
            .call(
                &server,
                "POST",
                "/passkeys",
                json!({"credential": credential}),
            )
            .await
            .errors(422, "resource.passkey.invalid_credential");
    }
    alice
        .call(
            &server,
            "POST",
            "/passkeys",
            json!({"credential": {"id": "x"}}),
        )
        .await
        .errors(422, "resource.passkey.invalid_credential");
    alice
        .call(&server, "POST", "/passkeys", json!({}))
        .await
        .errors(422, "resource.passkey.missing_credential");
    let phone = Authenticator::new(&db, "phone");
    let second = alice.register(&server, &phone, "Phone").await;
    let list = alice.call(&server, "GET", "/passkeys", Value::Null).await;
    let names: Vec<&str> = list
        .status(200)
        .as_array()
        .expect("list")
        .iter()
        .map(|p| p["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["Laptop", "Phone"]);
    assert!(list.body[0]["created_at"].is_string(), "{}", list.body);
    assert!(
        list.body[0].get("credential").is_none(),
        "no key material is shown"
    );
    let path = format!("/passkeys/{}", second["id"]);
    let renamed = alice
        .call(&server, "PATCH", &path, json!({"name": "Work phone"}))
        .await;
    assert_eq!(renamed.status(200)["name"], "Work phone");
    alice
        .call(&server, "PATCH", &path, json!({"name": " "}))
        .await
        .errors(422, "resource.passkey.empty_name");
    alice
        .call(&server, "PATCH", "/passkeys/999999", json!({"name": "x"}))
        .await
        .errors(404, "resource.passkey.not_found");
    // Another user sees none of these and cannot touch them.
    create_user(&db, "bob@barong.test");
    let bob = Browser::login(&server, "bob@barong.test").await;
    assert_eq!(
        bob.call(&server, "GET", "/passkeys", Value::Null)
            .await
            .status(200),
        &json!([])
    );
    bob.call(&server, "DELETE", &path, json!({"password": PASSWORD}))
        .await
        .errors(404, "resource.passkey.not_found");
    // Not the last one: the session is enough.
    let first_path = format!("/passkeys/{}", first["id"]);
    alice
        .call(&server, "DELETE", &first_path, Value::Null)
        .await
        .status(204);
    // The last one needs the password (or a TOTP code with 2FA on).
    alice
        .call(&server, "DELETE", &path, Value::Null)
        .await
        .errors(422, "resource.passkey.confirmation_required");
    alice
        .call(
            &server,
            "DELETE",
            &path,
            json!({"password": "Wrong-Passw0rd"}),
        )
        .await
        .errors(422, "resource.passkey.invalid_password");
    alice
        .call(&server, "DELETE", &path, json!({"password": PASSWORD}))
        .await
        .status(204);
    assert_eq!(
        alice
            .call(&server, "GET", "/passkeys", Value::Null)
            .await
            .status(200),
        &json!([])
    );
}

async fn login_with_passkey_as_second_factor(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = start(&db, &[]);
    create_user(&db, "carol@barong.test");
    let carol = Browser::login(&server, "carol@barong.test").await;
    assert_eq!(carol.authenticated_with(&server).await, "password");
    let key = Authenticator::new(&db, "key");
    carol.register(&server, &key, "Laptop").await;
    // From now on the password alone is not enough.
    identity(
        &server,
        "sessions",
        json!({"email": "carol@barong.test", "password": PASSWORD}),
    )
    .await
    .errors(401, "identity.session.missing_passkey");
    identity(
        &server,
        "sessions/passkey/options",
        json!({"email": "carol@barong.test", "password": "Wrong-Passw0rd"}),
    )
    .await
    .errors(401, "identity.session.invalid_params");
    let options = login_options(&server, "carol@barong.test").await;
    let allowed = options.status(201)["publicKey"]["allowCredentials"]
        .as_array()
        .expect("allowed")
        .len();
    assert_eq!(allowed, 1);
    let assertion = key.get(&options.body, json!({}));
    let session = finish_login(&server, &assertion).await;
    let browser = Browser::of(&session);
    assert_eq!(session.body["email"], "carol@barong.test");
    assert_eq!(
        browser.authenticated_with(&server).await,
        "password+passkey"
    );
    let list = browser.call(&server, "GET", "/passkeys", Value::Null).await;
    assert!(
        list.status(200)[0]["last_used_at"].is_string(),
        "{}",
        list.body
    );
    // The same assertion again: its challenge is gone.
    finish_login(&server, &assertion)
        .await
        .errors(401, "identity.session.invalid_challenge");
    // Wrong origin, wrong relying party, a signature over something else.
    for extra in [
        json!({"origin": "https://evil.test"}),
        json!({"rp_id": "evil.test"}),
    ] {
        let options = login_options(&server, "carol@barong.test").await;
        let assertion = key.get(options.status(201), extra);
        finish_login(&server, &assertion)
            .await
            .errors(401, "identity.session.invalid_passkey");
    }
    // A cloned authenticator: its counter is behind the one last accepted.
    let options = login_options(&server, "carol@barong.test").await;
    let cloned = key.get(options.status(201), json!({"counter": 1}));
    finish_login(&server, &cloned)
        .await
        .errors(401, "identity.session.passkey_cloned");
    let activity = browser
        .call(&server, "GET", "/users/activity/session", Value::Null)
        .await;
    let rows = activity.status(200).as_array().expect("activity").clone();
    let clone_row = rows
        .iter()
        .find(|row| row["action"] == "login::passkey" && row["result"] == "failed")
        .unwrap_or_else(|| panic!("clone recorded: {rows:?}"));
    assert!(
        clone_row["data"].to_string().contains("cloned"),
        "{clone_row}"
    );
    // The genuine authenticator still logs in (its counter moves on).
    let options = login_options(&server, "carol@barong.test").await;
    let assertion = key.get(options.status(201), json!({}));
    finish_login(&server, &assertion).await.status(200);
    // Garbage and missing answers.
    finish_login(&server, &json!({"id": 1}))
        .await
        .errors(401, "identity.session.invalid_passkey");
    identity(&server, "sessions/passkey", json!({}))
        .await
        .errors(422, "identity.session.missing_credential");
    // A user without passkeys gets no options (after the password).
    create_user(&db, "dave@barong.test");
    login_options(&server, "dave@barong.test")
        .await
        .errors(422, "identity.session.no_passkeys");
}

async fn passwordless_off_then_on(backend: Backend) {
    let db = TestDb::new(backend).await;
    // Without a relying party there are no passkeys at all.
    let off = TestServer::start(db.dir.path(), &db.url, &[]);
    create_user(&db, "erin@barong.test");
    let erin = Browser::login(&off, "erin@barong.test").await;
    erin.passkey_options(&off, Value::Null)
        .await
        .errors(422, "resource.passkey.disabled");
    identity(&off, "sessions/passkey/options", json!({}))
        .await
        .errors(422, "identity.session.passkey_disabled");
    drop(off);
    let server = start(&db, &[]);
    let erin = Browser::login(&server, "erin@barong.test").await;
    let key = Authenticator::new(&db, "key");
    erin.register(&server, &key, "Laptop").await;
    // Passwordless is off by default.
    identity(&server, "sessions/passkey/options", json!({}))
        .await
        .errors(403, "identity.session.passwordless_disabled");
    drop(server);
    let server = start(
        &db,
        &[
            ("BARONG_PASSKEY_PASSWORDLESS", "true"),
            ("BARONG_RATE_LIMIT_LOGIN_IP", "4/300"),
        ],
    );
    let options = identity(&server, "sessions/passkey/options", json!({})).await;
    let public_key = &options.status(201)["publicKey"];
    assert!(
        public_key["allowCredentials"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "{public_key}"
    );
    let assertion = key.get(&options.body, json!({}));
    let session = finish_login(&server, &assertion).await;
    let browser = Browser::of(&session);
    assert_eq!(session.body["email"], "erin@barong.test");
    assert_eq!(browser.authenticated_with(&server).await, "passkey");
    // A passwordless answer naming a handle that is not the credential's owner's.
    let options = identity(&server, "sessions/passkey/options", json!({})).await;
    let mut forged = key.get(options.status(201), json!({}));
    forged["response"]["userHandle"] = json!("AAAAAAAAAAAAAAAAAAAAAA");
    finish_login(&server, &forged)
        .await
        .errors(401, "identity.session.invalid_passkey");
    // Anyone may ask for passwordless options: each takes a login slot of its address until a
    // login from there succeeds (4 here), so they cannot fill the database.
    let mut last = identity(&server, "sessions/passkey/options", json!({})).await;
    for _ in 0..4 {
        if last.status == 429 {
            break;
        }
        last = identity(&server, "sessions/passkey/options", json!({})).await;
    }
    last.errors(429, "identity.session.too_many_attempts");
}

async fn expired_challenges_are_refused(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = start(&db, &[("BARONG_PASSKEY_CHALLENGE_TTL", "3")]);
    create_user(&db, "frank@barong.test");
    let frank = Browser::login(&server, "frank@barong.test").await;
    let key = Authenticator::new(&db, "key");
    let options = frank
        .passkey_options(&server, json!({"password": PASSWORD}))
        .await;
    let credential = key.create(options.status(201), json!({}));
    tokio::time::sleep(Duration::from_millis(4100)).await;
    frank
        .call(
            &server,
            "POST",
            "/passkeys",
            json!({"credential": credential}),
        )
        .await
        .errors(422, "resource.passkey.challenge_expired");
    frank.register(&server, &key, "Laptop").await;
    let options = login_options(&server, "frank@barong.test").await;
    let assertion = key.get(options.status(201), json!({}));
    tokio::time::sleep(Duration::from_millis(4100)).await;
    finish_login(&server, &assertion)
        .await
        .errors(401, "identity.session.challenge_expired");
}

/// TOTP codes of three consecutive steps of the accepted window: three uses without waiting.
fn codes(secret: &str) -> Vec<String> {
    let now = chrono::Utc::now().timestamp() as u64;
    (0..3)
        .map(|i| totp::code_at(secret, now - totp::PERIOD + i * totp::PERIOD).expect("code"))
        .collect()
}

/// A TOTP user keeps Barong's login and may use a passkey instead of the code; its last passkey
/// goes with a TOTP code.
async fn totp_users_may_use_a_passkey_instead(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = start(&db, &[]);
    create_user(&db, "heidi@barong.test");
    let heidi = Browser::login(&server, "heidi@barong.test").await;
    let qr = heidi
        .call(&server, "POST", "/otp/generate_qrcode", Value::Null)
        .await;
    let url = qr.status(201)["data"]["url"]
        .as_str()
        .expect("url")
        .to_owned();
    let secret = url
        .split("secret=")
        .nth(1)
        .and_then(|rest| rest.split('&').next())
        .expect("secret")
        .to_owned();
    let codes = codes(&secret);
    heidi
        .call(&server, "POST", "/otp/enable", json!({"code": codes[0]}))
        .await
        .status(201);
    let key = Authenticator::new(&db, "key");
    // With TOTP on, only a code starts a registration: the password is not enough.
    heidi
        .passkey_options(&server, json!({"password": PASSWORD}))
        .await
        .errors(422, "resource.passkey.confirmation_required");
    heidi
        .passkey_options(&server, json!({"otp_code": "000000"}))
        .await
        .errors(422, "resource.passkey.invalid_otp");
    let proof = json!({"otp_code": codes[1]});
    let passkey = heidi.register_with(&server, &key, "Laptop", proof).await;
    let password_only = json!({"email": "heidi@barong.test", "password": PASSWORD});
    identity(&server, "sessions", password_only.clone())
        .await
        .errors(401, "identity.session.missing_otp");
    let mut with_code = password_only;
    with_code["otp_code"] = json!(codes[2]);
    let by_code = Browser::of(&identity(&server, "sessions", with_code).await);
    assert_eq!(by_code.authenticated_with(&server).await, "password+2fa");
    let options = login_options(&server, "heidi@barong.test").await;
    let assertion = key.get(options.status(201), json!({}));
    let by_passkey = Browser::of(&finish_login(&server, &assertion).await);
    assert_eq!(
        by_passkey.authenticated_with(&server).await,
        "password+passkey"
    );
    let path = format!("/passkeys/{}", passkey["id"]);
    by_passkey
        .call(&server, "DELETE", &path, json!({"otp_code": "000000"}))
        .await
        .errors(422, "resource.passkey.invalid_otp");
    by_passkey
        .call(&server, "DELETE", &path, json!({"password": PASSWORD}))
        .await
        .status(204);
}

/// Passwords asked again behind a session (`DELETE users/me`, `PUT users/password`, passkey
/// proofs) take the account's login slots: a stolen cookie does not buy unlimited guesses, and
/// a locked account refuses even the right password until its window ends.
async fn password_confirmations_share_the_login_limit(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = start(&db, &[("BARONG_RATE_LIMIT_LOGIN_ACCOUNT", "3/300")]);
    create_user(&db, "ivan@barong.test");
    let ivan = Browser::login(&server, "ivan@barong.test").await;
    // The right password gives its slot back: any number of these.
    for _ in 0..4 {
        ivan.passkey_options(&server, json!({"password": PASSWORD}))
            .await
            .status(201);
    }
    let wrong = "Wrong-Passw0rd";
    ivan.passkey_options(&server, json!({"password": wrong}))
        .await
        .errors(422, "resource.passkey.invalid_password");
    let change = json!({"old_password": wrong, "new_password": "N3w-Passw0rd!x", "confirm_password": "N3w-Passw0rd!x"});
    ivan.call(&server, "PUT", "/users/password", change)
        .await
        .errors(400, "resource.password.prev_pass_not_correct");
    ivan.call(&server, "DELETE", "/users/me", json!({"password": wrong}))
        .await
        .errors(422, "resource.user.invalid_password");
    // Three wrong guesses: the right password is refused now, here and at the login page.
    ivan.passkey_options(&server, json!({"password": PASSWORD}))
        .await
        .errors(422, "resource.passkey.invalid_password");
    identity(
        &server,
        "sessions",
        json!({"email": "ivan@barong.test", "password": PASSWORD}),
    )
    .await
    .errors(429, "identity.session.too_many_attempts");
    // A burst of wrong guesses released together is refused past the limit just the same.
    let answers = futures_util::future::join_all((0..20).map(|_| {
        ivan.call(
            &server,
            "DELETE",
            "/users/me",
            json!({"password": PASSWORD}),
        )
    }))
    .await;
    assert!(answers.iter().all(|a| a.status == 422), "none deleted");
}

both_backends!(
    totp_users_may_use_a_passkey_instead,
    password_confirmations_share_the_login_limit,
    register_list_rename_delete,
    login_with_passkey_as_second_factor,
    passwordless_off_then_on,
    expired_challenges_are_refused,
);

/// Two instances on one PostgreSQL database: a challenge issued by one is answered on the
/// other, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn challenges_work_across_instances() {
    let db = TestDb::new(Backend::Postgres).await;
    let first = start(&db, &[]);
    let second = start(&db, &[]);
    create_user(&db, "grace@barong.test");
    let grace = Browser::login(&first, "grace@barong.test").await;
    let key = Authenticator::new(&db, "key");
    let options = grace
        .passkey_options(&first, json!({"password": PASSWORD}))
        .await;
    let credential = key.create(options.status(201), json!({}));
    grace
        .call(
            &second,
            "POST",
            "/passkeys",
            json!({"credential": credential}),
        )
        .await
        .status(201);
    let options = login_options(&second, "grace@barong.test").await;
    let assertion = key.get(options.status(201), json!({}));
    let session = finish_login(&first, &assertion).await;
    assert_eq!(
        Browser::of(&session).authenticated_with(&first).await,
        "password+passkey"
    );
    finish_login(&second, &assertion)
        .await
        .errors(401, "identity.session.invalid_challenge");
}
