//! Storage tests: the same suite against SQLite and PostgreSQL, through the `Store` trait.

use crate::common;
use std::sync::Arc;

use barong::domain::{
    NewActivity, NewLabel, NewLevel, NewPermission, NewRestriction, NewSession, NewUser,
    session_key,
};
use barong::seed::{DEFAULT_SEEDS, Seeds};
use barong::store::{ClaimUse, Store, StoreError};
use common::{Backend, TestDb};

async fn migrated(db: &TestDb) -> Arc<dyn Store> {
    let store = db.open().await;
    store.migrate().await.expect("migrate");
    store
}

fn new_user(uid: &str, email: &str, username: Option<&str>) -> NewUser {
    NewUser {
        uid: uid.into(),
        username: username.map(Into::into),
        email: email.into(),
        password_digest: "$argon2id$placeholder".into(),
        role: "member".into(),
        data: Some(r#"{"language":"en"}"#.into()),
        level: 1,
        otp: false,
        state: "pending".into(),
        referral_id: None,
        labels: vec![NewLabel {
            key: "email".into(),
            value: "verified".into(),
            scope: "private".into(),
        }],
    }
}

async fn migrations_apply_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.open().await;
    let first = store.migrate().await.expect("first");
    assert_eq!(
        first,
        [
            "0001_schema",
            "0002_otp_secrets",
            "0003_kyc_profiles",
            "0004_kyc_documents",
            "0005_rate_limits",
            "0006_confirmation_tokens",
            "0007_signing_keys",
            "0008_sealed_events",
            "0009_session_devices",
            "0010_passkeys"
        ]
    );
    let second = store.migrate().await.expect("second");
    assert!(second.is_empty(), "second run applied {second:?}");
}

async fn concurrent_migrations_do_not_collide(backend: Backend) {
    let db = TestDb::new(backend).await;
    // Two independent pools stand for two processes starting at once.
    let (a, b) = (db.open().await, db.open().await);
    let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
    let mut applied = ra.expect("a").len() + rb.expect("b").len();
    applied += a.migrate().await.expect("again").len();
    assert_eq!(applied, 10, "each migration ran exactly once");
    assert_eq!(a.count_users().await.expect("count"), 0);
}

async fn users_round_trip_and_conflicts_name_the_column(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = migrated(&db).await;
    let created = store
        .create_user(&new_user(
            "ID0000000001",
            "alice@example.com",
            Some("alice"),
        ))
        .await
        .expect("create");
    assert!(created.id > 0);
    assert_eq!(created.state, "pending");
    assert!(!created.otp);

    let by_uid = store.find_user_by_uid("ID0000000001").await.expect("uid");
    assert_eq!(by_uid.as_ref(), Some(&created));
    let by_email = store
        .find_user_by_email("ALICE@example.com")
        .await
        .expect("email");
    assert_eq!(by_email.map(|u| u.uid), Some("ID0000000001".into()));
    assert!(
        store
            .find_user_by_uid("ID404")
            .await
            .expect("none")
            .is_none()
    );

    let clash = |uid: &str, email: &str, name: Option<&str>| new_user(uid, email, name);
    for (user, column) in [
        (clash("ID0000000002", "alice@example.com", None), "email"),
        (clash("ID0000000001", "bob@example.com", None), "uid"),
        (
            clash("ID0000000003", "carol@example.com", Some("alice")),
            "username",
        ),
    ] {
        match store.create_user(&user).await {
            Err(StoreError::Conflict(found)) => assert_eq!(found, column),
            other => panic!("expected a conflict on {column}, got {other:?}"),
        }
    }
    // Users without a username do not clash with each other.
    store
        .create_user(&clash("ID0000000004", "d@example.com", None))
        .await
        .expect("d");
    store
        .create_user(&clash("ID0000000005", "e@example.com", None))
        .await
        .expect("e");
    assert_eq!(store.count_users().await.expect("count"), 3);
}

async fn seeds_load_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = migrated(&db).await;
    assert!(store.is_unseeded().await.expect("unseeded"));
    let seeds = Seeds::parse(DEFAULT_SEEDS).expect("parse");
    let first = seeds.apply(store.as_ref(), "ID").await.expect("first");
    assert_eq!(first.levels, 3);
    assert_eq!(first.permissions, seeds.permissions.len());
    assert_eq!(first.restrictions, 6);
    let second = seeds.apply(store.as_ref(), "ID").await.expect("second");
    assert_eq!(second, Default::default(), "a second load inserts nothing");
    assert!(!store.is_unseeded().await.expect("seeded"));

    let levels = store.list_levels().await.expect("levels");
    let pairs: Vec<_> = levels
        .iter()
        .map(|l| (l.id, l.key.as_str(), l.value.as_str()))
        .collect();
    assert_eq!(
        pairs,
        [
            (1, "email", "verified"),
            (2, "phone", "verified"),
            (3, "document", "verified")
        ]
    );
    let restrictions = store.list_restrictions().await.expect("restrictions");
    let codes: Vec<_> = restrictions
        .iter()
        .map(|r| (r.category.as_str(), r.code))
        .collect();
    assert!(codes.contains(&("maintenance", 471)));
    assert!(codes.contains(&("blacklist", 433)));
    assert!(
        codes.contains(&("whitelist", 423)),
        "whitelist gets the scope default: {codes:?}"
    );
}

async fn seeds_with_users_get_level_labels(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = migrated(&db).await;
    let yaml = "levels:\n  - {key: email, value: verified}\n  - {key: phone, value: verified}\n\
                permissions:\n  - {role: admin, verb: all, path: api/v2, action: accept}\n\
                users:\n  - {email: admin@barong.io, password: Tecohvi0, role: admin, state: active, level: 2}\n";
    let seeds = Seeds::parse(yaml).expect("parse");
    let report = seeds.apply(store.as_ref(), "ID").await.expect("apply");
    assert_eq!((report.levels, report.permissions, report.users), (2, 1, 1));
    let again = seeds.apply(store.as_ref(), "ID").await.expect("again");
    assert_eq!(again.users, 0);
    let admin = store
        .find_user_by_email("admin@barong.io")
        .await
        .expect("find")
        .expect("admin");
    assert_eq!(
        (admin.role.as_str(), admin.state.as_str(), admin.level),
        ("admin", "active", 2)
    );
    assert!(admin.uid.starts_with("ID") && admin.uid.len() == 12);
    assert!(admin.password_digest.starts_with("$argon2id$"));
    let permissions = store.list_permissions().await.expect("permissions");
    assert_eq!(
        (permissions[0].verb.as_str(), permissions[0].action.as_str()),
        ("ALL", "ACCEPT")
    );
}

async fn rows_are_deduplicated_as_barong_seeds_them(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = migrated(&db).await;
    let level = NewLevel {
        id: 1,
        key: "email".into(),
        value: "verified".into(),
        description: None,
    };
    assert!(store.insert_level_if_absent(&level).await.expect("level"));
    assert!(
        !store
            .insert_level_if_absent(&level)
            .await
            .expect("level again")
    );
    let permission = NewPermission {
        role: "member".into(),
        verb: "get".into(),
        path: "api/v2/x".into(),
        action: "accept".into(),
        topic: None,
    };
    assert!(
        store
            .insert_permission_if_absent(&permission)
            .await
            .expect("p")
    );
    assert!(
        !store
            .insert_permission_if_absent(&permission)
            .await
            .expect("p again")
    );
    let restriction = NewRestriction {
        category: "blacklist".into(),
        scope: "ip".into(),
        value: "10.0.0.1".into(),
        code: None,
        state: "enabled".into(),
    };
    assert!(
        store
            .insert_restriction_if_absent(&restriction)
            .await
            .expect("r")
    );
    assert!(
        !store
            .insert_restriction_if_absent(&restriction)
            .await
            .expect("r again")
    );
    let disabled = NewRestriction {
        state: "disabled".into(),
        ..restriction
    };
    assert!(
        store
            .insert_restriction_if_absent(&disabled)
            .await
            .expect("other state")
    );
}

/// A password login's session for `user`, keyed by `cookie`.
fn new_session(user: &barong::domain::User, cookie: &str, expire_at: i64) -> NewSession {
    NewSession {
        id: session_key(cookie),
        user_id: user.id,
        uid: user.uid.clone(),
        user_ip: "10.1.2.3".into(),
        user_agent: Some("Mozilla/5.0".into()),
        csrf_token: "0123456789abcdef0123".into(),
        expire_at,
        authenticated_with: "password".into(),
        user_ip_country: None,
    }
}

async fn sessions_open_find_extend_and_revoke(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = migrated(&db).await;
    let alice = store
        .create_user(&new_user("ID00000000A1", "a@x.io", None))
        .await
        .expect("a");
    let session = |cookie: &str, expire_at: i64| new_session(&alice, cookie, expire_at);
    for cookie in ["one", "two", "three"] {
        store
            .create_session(&session(cookie, 1_000))
            .await
            .expect("create");
    }
    let found = store
        .find_session(&session_key("one"))
        .await
        .expect("find")
        .expect("one");
    assert_eq!(
        (found.uid.as_str(), found.expire_at),
        (alice.uid.as_str(), 1_000)
    );
    assert_eq!(found.user_agent.as_deref(), Some("Mozilla/5.0"));
    assert!(
        store
            .find_session(&session_key("nope"))
            .await
            .expect("none")
            .is_none()
    );

    // Sliding expiry moves forward only.
    store
        .extend_sessions(&[(session_key("one"), 2_000), (session_key("two"), 500)])
        .await
        .expect("extend");
    let one = store
        .find_session(&session_key("one"))
        .await
        .expect("one")
        .expect("one");
    let two = store
        .find_session(&session_key("two"))
        .await
        .expect("two")
        .expect("two");
    assert_eq!((one.expire_at, two.expire_at), (2_000, 1_000));
    store.extend_sessions(&[]).await.expect("empty batch");

    assert!(
        store
            .delete_session(&session_key("three"))
            .await
            .expect("delete")
    );
    assert!(
        !store
            .delete_session(&session_key("three"))
            .await
            .expect("again")
    );
    let revoked = store
        .delete_user_sessions(alice.id, Some(&session_key("one")))
        .await
        .expect("revoke others");
    assert_eq!(revoked, [session_key("two")]);
    let rest = store
        .delete_user_sessions(alice.id, None)
        .await
        .expect("revoke all");
    assert_eq!(rest, [session_key("one")]);
}

async fn activities_are_batched_and_invalid_rows_dropped(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = migrated(&db).await;
    let alice = store
        .create_user(&new_user("ID00000000B1", "b@x.io", None))
        .await
        .expect("b");
    let activity = |category: &str, target: Option<&str>, agent: &str| NewActivity {
        user_id: alice.id,
        target_uid: target.map(Into::into),
        category: category.into(),
        user_ip: "10.0.0.1".into(),
        user_ip_country: None,
        user_agent: agent.into(),
        topic: "session".into(),
        action: "login".into(),
        result: "succeed".into(),
        data: None,
    };
    let batch = [
        activity("user", None, "Mozilla/5.0"),
        activity("admin", Some("ID00000000B1"), "Mozilla/5.0"),
        activity("admin", Some("ID_UNKNOWN"), "Mozilla/5.0"),
        activity("user", Some("ID00000000B1"), "Mozilla/5.0"),
        activity("user", None, ""),
    ];
    assert_eq!(store.insert_activities(&batch).await.expect("insert"), 2);
    let stored = store.list_user_activities(alice.id).await.expect("list");
    assert_eq!(stored.len(), 2);
    assert!(stored[0].id > stored[1].id, "newest first");
    assert_eq!(stored[0].category, "admin");
}

// ---- signing keys --------------------------------------------------------------------------------

fn stored_key(kid: &str, created_at: i64) -> barong::domain::StoredSigningKey {
    barong::domain::StoredSigningKey {
        kid: kid.into(),
        algorithm: "ES256".into(),
        private_key: format!("encrypted-{kid}"),
        created_at,
        retired_at: None,
    }
}

/// Rotations racing on two pools leave exactly one current key, the configured key recorded
/// once, and every replaced key retired.
async fn concurrent_rotations_leave_one_current_key(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (a, b) = (migrated(&db).await, db.open().await);
    let now = chrono::Utc::now().timestamp();
    let first = stored_key("configured", now - 1);
    let rotations = (0..8).map(|i| {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        let first = first.clone();
        async move {
            store
                .rotate_signing_key(&stored_key(&format!("k{i}"), now), &first)
                .await
        }
    });
    for result in futures_util::future::join_all(rotations).await {
        result.expect("rotate");
    }
    let keys = a.list_signing_keys(0).await.expect("list");
    assert_eq!(keys.len(), 9, "{keys:?}");
    assert_eq!(keys.iter().filter(|k| k.retired_at.is_none()).count(), 1);
    assert_eq!(keys.iter().filter(|k| k.kid == "configured").count(), 1);
    // Keys retired before the cut-off are no longer listed; the current one always is.
    let listed = a.list_signing_keys(now + 10).await.expect("list");
    assert_eq!(listed.len(), 1);
    assert!(listed[0].retired_at.is_none());
}

both_backends!(
    activities_are_batched_and_invalid_rows_dropped,
    sessions_open_find_extend_and_revoke,
    migrations_apply_once,
    concurrent_migrations_do_not_collide,
    users_round_trip_and_conflicts_name_the_column,
    seeds_load_once,
    seeds_with_users_get_level_labels,
    rows_are_deduplicated_as_barong_seeds_them,
    concurrent_rotations_leave_one_current_key,
);

// ---- identity ----------------------------------------------------------------------------------

fn mail(to: &str) -> barong::domain::NewMail {
    barong::domain::NewMail {
        kind: "email_confirmation".into(),
        recipient: to.into(),
        language: "en".into(),
        subject: "Registration Confirmation".into(),
        body_html: "<p>hi</p>".into(),
        confirmation: None,
    }
}

fn plain_user(uid: &str, email: &str) -> NewUser {
    let mut user = new_user(uid, email, None);
    user.labels.clear();
    user.level = 0;
    user
}

async fn seeded(db: &TestDb) -> Arc<dyn Store> {
    let store = migrated(db).await;
    Seeds::parse(DEFAULT_SEEDS)
        .expect("seeds")
        .apply(store.as_ref(), "ID")
        .await
        .expect("apply");
    store
}

async fn register_first_superadmin_then_queue_mail(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = seeded(&db).await;
    let rules = barong::domain::StateRules::default();
    let first = store
        .register_user(
            &plain_user("ID0000000001", "a@x.io"),
            true,
            Some(&mail("a@x.io")),
            &rules,
        )
        .await
        .expect("first");
    assert_eq!(
        (first.role.as_str(), first.state.as_str(), first.level),
        ("superadmin", "active", 1)
    );
    let labels = store.list_user_labels(first.id).await.expect("labels");
    assert_eq!(
        (
            labels[0].key.as_str(),
            labels[0].value.as_str(),
            labels[0].scope.as_str()
        ),
        ("email", "verified", "private")
    );
    assert_eq!(store.count_unsent_mails().await.expect("count"), 0);
    let second = store
        .register_user(
            &plain_user("ID0000000002", "b@x.io"),
            true,
            Some(&mail("b@x.io")),
            &rules,
        )
        .await
        .expect("second");
    assert_eq!(
        (second.role.as_str(), second.state.as_str(), second.level),
        ("member", "pending", 0)
    );
    assert_eq!(store.count_unsent_mails().await.expect("count"), 1);
    // A clash writes nothing, not even the mail.
    let clash = store
        .register_user(
            &plain_user("ID0000000003", "b@x.io"),
            true,
            Some(&mail("b@x.io")),
            &rules,
        )
        .await;
    assert!(
        matches!(clash, Err(StoreError::Conflict(ref c)) if c == "email"),
        "{clash:?}"
    );
    assert_eq!(store.count_unsent_mails().await.expect("count"), 1);
    assert_eq!(
        store
            .find_user_by_id(second.id)
            .await
            .expect("by id")
            .map(|u| u.uid),
        Some("ID0000000002".to_owned())
    );
}

async fn confirm_email_and_reset_password_are_single_use(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = seeded(&db).await;
    let rules = barong::domain::StateRules::default();
    let user = store
        .register_user(&plain_user("ID0000000001", "a@x.io"), false, None, &rules)
        .await
        .expect("user");
    let exp = chrono::Utc::now().timestamp() + 60;
    let claim = |token: &'static str, jti: &'static str| ClaimUse {
        email: "a@x.io",
        token,
        jti,
        expires_at: exp,
    };
    // No confirmation mail stored: nothing matches.
    assert!(
        store
            .confirm_email(user.id, &claim("c1", "jti-0"), &rules)
            .await
            .expect("unsent")
            .is_none()
    );
    let mut confirmation = mail("a@x.io");
    for token in ["c1", "c2"] {
        confirmation.confirmation = Some(barong::domain::OneTimeClaim {
            token: token.into(),
            expires_at: exp,
        });
        store.queue_mail(&confirmation).await.expect("queue");
    }
    // Only the latest one matches.
    assert!(
        store
            .confirm_email(user.id, &claim("c1", "jti-1"), &rules)
            .await
            .expect("older")
            .is_none()
    );
    let confirmed = store
        .confirm_email(user.id, &claim("c2", "jti-1"), &rules)
        .await
        .expect("confirm")
        .expect("first use");
    assert_eq!((confirmed.state.as_str(), confirmed.level), ("active", 1));
    assert!(
        store
            .confirm_email(user.id, &claim("c2", "jti-1"), &rules)
            .await
            .expect("again")
            .is_none()
    );

    let now = chrono::Utc::now().timestamp();
    store
        .set_reset_token("a@x.io", "r1", exp, &mail("a@x.io"))
        .await
        .expect("r1");
    store
        .set_reset_token("a@x.io", "r2", exp, &mail("a@x.io"))
        .await
        .expect("r2");
    assert_eq!(
        store.find_reset_token("a@x.io", now).await.expect("find"),
        Some("r2".into())
    );
    for n in 0..2 {
        store
            .create_session(&NewSession {
                id: session_key(&format!("cookie-{n}")),
                user_id: user.id,
                uid: user.uid.clone(),
                user_ip: "1.2.3.4".into(),
                user_agent: None,
                csrf_token: "c".into(),
                expire_at: exp,
                authenticated_with: "password".into(),
                user_ip_country: None,
            })
            .await
            .expect("session");
    }
    assert!(
        store
            .reset_password(user.id, &claim("r1", "jti-2"), "$argon2id$new")
            .await
            .expect("older reset token")
            .is_none()
    );
    let revoked = store
        .reset_password(user.id, &claim("r2", "jti-2"), "$argon2id$new")
        .await
        .expect("reset")
        .expect("first use");
    assert_eq!(revoked.len(), 2);
    assert!(
        store
            .find_reset_token("a@x.io", now)
            .await
            .expect("find")
            .is_none()
    );
    let after = store
        .find_user_by_uid(&user.uid)
        .await
        .expect("f")
        .expect("u");
    assert_eq!(after.password_digest, "$argon2id$new");
    assert!(
        store
            .reset_password(user.id, &claim("r2", "jti-3"), "$argon2id$other")
            .await
            .expect("again")
            .is_none()
    );
    store
        .update_password_digest(user.id, "$argon2id$third")
        .await
        .expect("update");
    let after = store
        .find_user_by_uid(&user.uid)
        .await
        .expect("f")
        .expect("u");
    assert_eq!(after.password_digest, "$argon2id$third");
}

/// `PUT resource/users/me` changes `data` through `update_user_data`: with the Event API on, the
/// same transaction writes `model.user.updated` carrying the new data (none when it is off).
async fn user_data_change_emits_model_user_updated(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = migrated(&db).await;
    let user = store
        .create_user(&new_user("ID0000000E01", "events@x.io", None))
        .await
        .expect("user");
    store
        .update_user_data(user.id, "{\"lang\":\"en\"}")
        .await
        .expect("data, events off");
    assert_eq!(store.count_unsent_events().await.expect("count"), 0);
    store.enable_events("exchange.example");
    store
        .update_user_data(user.id, "{\"lang\":\"fr\"}")
        .await
        .expect("data");
    let events = store.claim_events(10, 60).await.expect("claim");
    let updated: Vec<_> = events
        .iter()
        .filter(|e| e.routing_key == "user.updated")
        .collect();
    assert_eq!(updated.len(), 1, "{events:?}");
    let payload: serde_json::Value = serde_json::from_str(&updated[0].payload).expect("json");
    assert_eq!(payload["name"], "model.user.updated");
    // The record is Barong's event user object (no `data`); `changes` has the old value.
    assert_eq!(payload["record"]["uid"], "ID0000000E01", "{payload}");
    assert_eq!(payload["changes"]["data"], "{\"lang\":\"en\"}", "{payload}");
}

async fn mail_outbox_claims_retries_and_sends_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = migrated(&db).await;
    store.queue_mail(&mail("a@x.io")).await.expect("queue a");
    store.queue_mail(&mail("b@x.io")).await.expect("queue b");
    let claimed = store.claim_mails(10, 60).await.expect("claim");
    assert_eq!(
        claimed
            .iter()
            .map(|m| (m.recipient.as_str(), m.attempts))
            .collect::<Vec<_>>(),
        [("a@x.io", 1), ("b@x.io", 1)]
    );
    // Claimed mails are leased: a second worker gets nothing.
    assert!(store.claim_mails(10, 60).await.expect("claim").is_empty());
    store.mark_mail_sent(claimed[0].id).await.expect("sent");
    store
        .mark_mail_sent(claimed[0].id)
        .await
        .expect("sent twice is harmless");
    store
        .mark_mail_failed(claimed[1].id, "refused", 0)
        .await
        .expect("failed");
    assert_eq!(store.count_unsent_mails().await.expect("count"), 1);
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let retried = store.claim_mails(10, 60).await.expect("claim");
    assert_eq!(retried.len(), 1);
    assert_eq!(
        (retried[0].recipient.as_str(), retried[0].attempts),
        ("b@x.io", 2)
    );
    store.mark_mail_sent(retried[0].id).await.expect("sent");
    assert_eq!(store.count_unsent_mails().await.expect("count"), 0);
    // A sent mail is never failed again.
    store
        .mark_mail_failed(retried[0].id, "late", 0)
        .await
        .expect("noop");
    assert_eq!(store.count_unsent_mails().await.expect("count"), 0);
}

async fn whitelink_tokens_expire(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = migrated(&db).await;
    let now = chrono::Utc::now().timestamp();
    store
        .create_whitelink_token("t1", now + 10)
        .await
        .expect("t1");
    store
        .create_whitelink_token("t2", now - 10)
        .await
        .expect("t2");
    assert!(store.whitelink_token_valid("t1", now).await.expect("t1"));
    assert!(!store.whitelink_token_valid("t2", now).await.expect("t2"));
    assert!(!store.whitelink_token_valid("t3", now).await.expect("t3"));
}

async fn first_user_without_superadmin_permission_stays_member(backend: Backend) {
    // Barong's quirk: no `superadmin` permission row, no role change; the label still activates.
    let db = TestDb::new(backend).await;
    let store = migrated(&db).await;
    let rules = barong::domain::StateRules::default();
    let first = store
        .register_user(&plain_user("ID0000000001", "a@x.io"), true, None, &rules)
        .await
        .expect("first");
    assert_eq!(
        (first.role.as_str(), first.state.as_str(), first.level),
        ("member", "active", 0)
    );
}

both_backends!(
    register_first_superadmin_then_queue_mail,
    confirm_email_and_reset_password_are_single_use,
    mail_outbox_claims_retries_and_sends_once,
    user_data_change_emits_model_user_updated,
    whitelink_tokens_expire,
    first_user_without_superadmin_permission_stays_member,
);

// ---- resource ----------------------------------------------------------------------------------

/// An active user with 2FA, an active key, and a service account with an active key.
async fn user_with_keys(store: &Arc<dyn Store>) -> (barong::domain::User, i64) {
    use barong::domain::{KeyHolder, NewApiKey, NewServiceAccount};
    let mut user = new_user("IDRES0000001", "res@x.io", None);
    user.state = "active".into();
    user.otp = true;
    let user = store.create_user(&user).await.expect("user");
    store
        .insert_level_if_absent(&NewLevel {
            id: 1,
            key: "email".into(),
            value: "verified".into(),
            description: None,
        })
        .await
        .expect("level");
    let sa = store
        .create_service_account(&NewServiceAccount {
            uid: "SIRES0000001".into(),
            owner_id: Some(user.id),
            email: "sa@x.io".into(),
            role: "member".into(),
            level: 0,
            state: "active".into(),
        })
        .await
        .expect("sa");
    for (kid, holder) in [
        ("k-user", KeyHolder::User(user.id)),
        ("k-sa", KeyHolder::ServiceAccount(sa.id)),
    ] {
        store
            .create_api_key(&NewApiKey {
                holder,
                kid: kid.into(),
                algorithm: "HS256".into(),
                scope: vec![],
                secret_encrypted: "x".into(),
                state: "active".into(),
            })
            .await
            .expect("key");
    }
    (user, sa.id)
}

async fn otp_off_deactivates_keys_and_steps_are_single_use(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = migrated(&db).await;
    let (user, _) = user_with_keys(&store).await;
    let rules = barong::domain::StateRules::default();

    assert!(store.find_otp_secret(user.id).await.expect("q").is_none());
    assert!(!store.accept_otp_step(user.id, 5).await.expect("no secret"));
    store.set_otp_secret(user.id, "enc1").await.expect("set");
    store
        .set_otp_secret(user.id, "enc2")
        .await
        .expect("overwrite");
    assert_eq!(
        store.find_otp_secret(user.id).await.expect("q"),
        Some(("enc2".to_owned(), 0))
    );
    assert!(store.accept_otp_step(user.id, 5).await.expect("first"));
    assert!(!store.accept_otp_step(user.id, 5).await.expect("replay"));
    assert!(!store.accept_otp_step(user.id, 4).await.expect("older"));
    assert!(store.accept_otp_step(user.id, 6).await.expect("newer"));
    store
        .set_otp_secret(user.id, "enc3")
        .await
        .expect("new secret");
    assert!(
        store
            .accept_otp_step(user.id, 6)
            .await
            .expect("fresh secret")
    );

    let on = store
        .set_user_otp(user.id, true, None, &rules)
        .await
        .expect("on");
    assert!(on.user.otp && on.kids.is_empty());
    let labels = store.list_user_labels(user.id).await.expect("labels");
    assert!(
        labels
            .iter()
            .any(|l| l.key == "otp" && l.scope == "private")
    );
    let off = store
        .set_user_otp(user.id, false, None, &rules)
        .await
        .expect("off");
    assert!(!off.user.otp);
    let mut kids = off.kids.clone();
    kids.sort();
    assert_eq!(kids, ["k-sa", "k-user"]);
    for kid in ["k-user", "k-sa"] {
        let key = store.find_api_key(kid).await.expect("q").expect("key");
        assert_eq!(key.state, "inactive");
    }
    let labels = store.list_user_labels(user.id).await.expect("labels");
    assert!(!labels.iter().any(|l| l.key == "otp"));
}

async fn labels_recompute_state_and_self_deletion(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = migrated(&db).await;
    let (user, sa_id) = user_with_keys(&store).await;
    let rules = barong::domain::StateRules::default();
    // new_user() comes with email:verified; start without it.
    store
        .delete_label(user.id, "email", "private", &rules)
        .await
        .expect("delete")
        .expect("existed");
    // A private email:verified label makes the user active with level 1.
    let (label, change) = store
        .create_label(user.id, "email", "verified", "private", &rules)
        .await
        .expect("label");
    assert_eq!(
        (label.key.as_str(), label.scope.as_str()),
        ("email", "private")
    );
    assert_eq!(
        (change.user.state.as_str(), change.user.level),
        ("active", 1)
    );
    assert!(matches!(
        store
            .create_label(user.id, "email", "other", "private", &rules)
            .await,
        Err(StoreError::Conflict(_))
    ));
    let (_, change) = store
        .update_label_value(user.id, "email", "private", "pending", &rules)
        .await
        .expect("update")
        .expect("exists");
    assert_eq!(
        (change.user.state.as_str(), change.user.level),
        ("pending", 0)
    );
    assert!(
        store
            .update_label_value(user.id, "nope", "public", "x", &rules)
            .await
            .expect("update")
            .is_none()
    );
    assert!(
        store
            .delete_label(user.id, "nope", "public", &rules)
            .await
            .expect("delete")
            .is_none()
    );
    let change = store
        .delete_label(user.id, "email", "private", &rules)
        .await
        .expect("delete")
        .expect("existed");
    assert_eq!(change.user.state, "pending");
    // The state went from active to pending: keys were deactivated.
    assert_eq!(
        store
            .find_api_key("k-user")
            .await
            .expect("q")
            .expect("k")
            .state,
        "inactive"
    );

    // Self-deletion: state deleted, service account deleted, every session gone.
    for id in ["s1", "s2"] {
        store
            .create_session(&NewSession {
                id: session_key(id),
                user_id: user.id,
                uid: user.uid.clone(),
                user_ip: "1.2.3.4".into(),
                user_agent: None,
                csrf_token: "c".into(),
                expire_at: chrono::Utc::now().timestamp() + 100,
                authenticated_with: "password".into(),
                user_ip_country: None,
            })
            .await
            .expect("session");
    }
    let ids = store
        .change_password(user.id, "$argon2id$new", Some(&session_key("s1")))
        .await
        .expect("password");
    assert_eq!(ids, [session_key("s2")]);
    let gone = store
        .delete_own_account(user.id, &rules)
        .await
        .expect("delete");
    assert_eq!(gone.user.state, "deleted");
    assert_eq!(gone.sessions, [session_key("s1")]);
    let sa = store
        .find_service_account_by_id(sa_id)
        .await
        .expect("q")
        .expect("sa");
    assert_eq!(sa.state, "deleted");
    assert_eq!(
        store
            .list_owned_service_accounts(user.id)
            .await
            .expect("list")
            .len(),
        1
    );
    assert!(
        store
            .find_service_account_by_uid("SIRES0000001")
            .await
            .expect("q")
            .is_some()
    );
}

async fn api_key_listing_update_delete_and_data_storage(backend: Backend) {
    use barong::domain::KeyHolder;
    let db = TestDb::new(backend).await;
    let store = migrated(&db).await;
    let (user, _) = user_with_keys(&store).await;
    let holder = KeyHolder::User(user.id);
    let (keys, total) = store
        .list_api_keys(holder, "kid", true, 10, 0)
        .await
        .expect("list");
    assert_eq!((keys.len(), total), (1, 1));
    let key = store
        .update_api_key(keys[0].id, &["a".into(), "b".into()], Some("inactive"))
        .await
        .expect("update")
        .expect("key");
    assert_eq!((key.scope.len(), key.state.as_str()), (2, "inactive"));
    let key = store
        .update_api_key(key.id, &[], None)
        .await
        .expect("update")
        .expect("key");
    assert_eq!((key.scope.len(), key.state.as_str()), (0, "inactive"));
    let (page, total) = store
        .list_api_keys(holder, "id", false, 10, 1)
        .await
        .expect("list");
    assert_eq!((page.len(), total), (0, 1));
    assert!(store.delete_api_key(key.id).await.expect("delete"));
    assert!(!store.delete_api_key(key.id).await.expect("again"));

    let rules = barong::domain::StateRules::default();
    let (row, change) = store
        .create_data_storage(user.id, "personal", "{}", &rules)
        .await
        .expect("storage");
    assert_eq!(row.title, "personal");
    assert_eq!(change.user.id, user.id);
    assert!(matches!(
        store
            .create_data_storage(user.id, "PERSONAL", "{}", &rules)
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.list_data_storages(user.id).await.expect("list").len(),
        1
    );
    let labels = store.list_user_labels(user.id).await.expect("labels");
    assert!(
        labels
            .iter()
            .any(|l| l.key == "personal" && l.value == "recorded" && l.scope == "private")
    );
    let updated = store
        .update_user_data(user.id, r#"{"a":1}"#)
        .await
        .expect("data");
    assert_eq!(updated.data.as_deref(), Some(r#"{"a":1}"#));
}

async fn service_accounts_listed_found_and_disabled(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = migrated(&db).await;
    let (user, sa_id) = user_with_keys(&store).await;
    let lone = store
        .create_service_account(&barong::domain::NewServiceAccount {
            uid: "SIRES0000002".into(),
            owner_id: None,
            email: "lone@x.io".into(),
            role: "member".into(),
            level: 0,
            state: "active".into(),
        })
        .await
        .expect("sa");
    let (all, total) = store
        .list_service_accounts(None, 100, 0)
        .await
        .expect("all");
    assert_eq!((all.len(), total), (2, 2));
    let (page, total) = store.list_service_accounts(None, 1, 1).await.expect("page");
    assert_eq!((page[0].id, total), (lone.id, 2));
    let (owned, total) = store
        .list_service_accounts(Some(user.id), 100, 0)
        .await
        .expect("owned");
    assert_eq!((owned[0].id, total), (sa_id, 1));
    let found = store
        .find_service_account_by_email("lone@x.io")
        .await
        .expect("q")
        .expect("found");
    assert_eq!(found.id, lone.id);

    let (disabled, kids) = store
        .disable_service_account(sa_id)
        .await
        .expect("disable")
        .expect("exists");
    assert_eq!(
        (disabled.state.as_str(), kids),
        ("disabled", vec!["k-sa".to_owned()])
    );
    let key = store.find_api_key("k-sa").await.expect("q").expect("key");
    assert_eq!(key.state, "inactive");
    let user_key = store.find_api_key("k-user").await.expect("q").expect("key");
    assert_eq!(user_key.state, "active", "the owner's own key is untouched");
    assert!(
        store
            .disable_service_account(-1)
            .await
            .expect("q")
            .is_none()
    );
}

async fn data_storage_writes_its_model_event(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = migrated(&db).await;
    let (user, _) = user_with_keys(&store).await;
    store.enable_events("exchange.example");
    let rules = barong::domain::StateRules::default();
    store
        .create_data_storage(user.id, "Passport", r#"{"n":1}"#, &rules)
        .await
        .expect("data storage");
    let events = store.claim_events(100, 60).await.expect("claim");
    let storage = events
        .iter()
        .find(|e| e.routing_key == "data_storage.created")
        .expect("model.data_storage.created in the change's transaction");
    assert_eq!(storage.exchange, "barong.events.model");
    let payload: serde_json::Value = serde_json::from_str(&storage.payload).expect("json");
    assert_eq!(payload["name"], "model.data_storage.created");
    let record = &payload["record"];
    assert_eq!(
        (record["title"].as_str(), record["data"].as_str()),
        (Some("Passport"), Some(r#"{"n":1}"#))
    );
    assert_eq!(record["user"]["uid"], "IDRES0000001");
    assert!(
        events.iter().any(|e| e.routing_key == "label.created"),
        "the `passport: recorded` label has its own event"
    );
}

both_backends!(
    data_storage_writes_its_model_event,
    otp_off_deactivates_keys_and_steps_are_single_use,
    labels_recompute_state_and_self_deletion,
    api_key_listing_update_delete_and_data_storage,
    service_accounts_listed_found_and_disabled,
);

/// The shared abuse-limit counters: 400 takers on two pools (two instances) racing for one
/// key get exactly the limit; a slot given back is taken again; ended windows reopen and purge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_counters_never_give_more_than_the_limit() {
    let sqlite = TestDb::new(Backend::Sqlite).await;
    assert!(
        sqlite.open().await.shared_counters().is_none(),
        "SQLite counts in process"
    );
    let db = TestDb::new(Backend::Postgres).await;
    let (a, b) = (db.open().await, db.open().await);
    a.migrate().await.expect("migrate");
    let (a, b) = (
        a.shared_counters().expect("PostgreSQL shares"),
        b.shared_counters().expect("PostgreSQL shares"),
    );
    let barrier = Arc::new(tokio::sync::Barrier::new(400));
    let tasks: Vec<_> = (0..400)
        .map(|n| {
            let counters = if n % 2 == 0 { a.clone() } else { b.clone() };
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                counters.take_slot("login_ip", "192.0.2.1", 30, 300).await
            })
        })
        .collect();
    let mut taken = 0;
    for task in tasks {
        taken += usize::from(task.await.expect("task").expect("take"));
    }
    assert_eq!(taken, 30);
    assert!(
        a.slots_used_up("login_ip", "192.0.2.1", 30)
            .await
            .expect("peek")
    );
    assert!(
        !a.slots_used_up("login_ip", "192.0.2.2", 30)
            .await
            .expect("peek")
    );
    b.give_back("login_ip", "192.0.2.1")
        .await
        .expect("give back");
    assert!(
        a.take_slot("login_ip", "192.0.2.1", 30, 300)
            .await
            .expect("take")
    );
    assert!(
        !a.take_slot("login_ip", "192.0.2.1", 30, 300)
            .await
            .expect("take")
    );
    assert!(
        a.take_slot("otp", "192.0.2.1", 30, 300)
            .await
            .expect("buckets are apart")
    );
    b.forget("login_ip", "192.0.2.1").await.expect("forget");
    assert!(
        a.take_slot("login_ip", "192.0.2.1", 30, 300)
            .await
            .expect("take")
    );

    assert!(a.take_slot("short", "k", 1, 1).await.expect("take"));
    assert!(!a.take_slot("short", "k", 1, 1).await.expect("take"));
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert!(a.purge_ended().await.expect("purge") >= 1);
    assert!(a.take_slot("short", "k", 1, 1).await.expect("a new window"));
}

/// Statements are prepared once per pooled PostgreSQL connection (`store/postgres/conn.rs`).
/// Another instance adding a column under a prepared `SELECT *` makes the server refuse the
/// old statement: a read outside a transaction prepares again and answers; a transaction the
/// refusal aborted is the store's retryable `Unavailable`, and nothing of it is written; the
/// next attempt works.
#[tokio::test]
async fn prepared_statements_outlive_columns_added_by_another_instance() {
    let db = TestDb::new(Backend::Postgres).await;
    // One connection, so the statements the change meets are the ones prepared before it.
    let store = barong::store::open(&barong::store::StoreOptions {
        url: db.url.clone(),
        pool_size: 1,
        connect_timeout: std::time::Duration::from_secs(5),
    })
    .await
    .expect("open");
    store.migrate().await.expect("migrate");
    let alice = store
        .create_user(&new_user("ID00000000A1", "a@x.io", None))
        .await
        .expect("alice");
    store
        .create_session(&new_session(&alice, "one", 1_000))
        .await
        .expect("session");
    for _ in 0..3 {
        let found = store.find_session(&session_key("one")).await;
        assert!(found.expect("find").is_some());
    }

    let (other, connection) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    let task = tokio::spawn(connection);
    // A transaction meets the change first.
    let rules = barong::domain::StateRules::default();
    store
        .create_label(alice.id, "document", "pending", "private", &rules)
        .await
        .expect("a label, prepared");
    other
        .batch_execute("ALTER TABLE labels ADD COLUMN note text")
        .await
        .expect("another instance's migration");
    match store
        .create_label(alice.id, "phone", "verified", "private", &rules)
        .await
    {
        Err(StoreError::Unavailable(_)) => {}
        other => panic!("the aborted transaction is retryable: {other:?}"),
    }
    let labels = store.list_user_labels(alice.id).await.expect("labels");
    assert!(
        labels.iter().all(|label| label.key != "phone"),
        "nothing of it was written"
    );
    let (label, _) = store
        .create_label(alice.id, "phone", "verified", "private", &rules)
        .await
        .expect("the retry");
    assert_eq!(label.key, "phone");

    // A read outside a transaction meets it: answered at once.
    other
        .batch_execute("ALTER TABLE sessions ADD COLUMN note text")
        .await
        .expect("another instance's migration");
    let found = store
        .find_session(&session_key("one"))
        .await
        .expect("read after the change")
        .expect("one");
    assert_eq!(found.user_id, alice.id);
    drop(other);
    let _ = task.await;
}
