//! The passkey storage through the `Store` trait, on SQLite and PostgreSQL: what the HTTP tests
//! cannot race on purpose. A challenge is taken by one of many concurrent takers; a counter
//! moves by compare-and-set; the last passkey goes only when confirmed, even when two deletes
//! race; a credential is registered once.

use std::sync::Arc;

use barong::domain::NewUser;
use barong::domain::passkey::{ChallengePurpose, NewPasskey, PasskeyChallenge, PasskeyDeletion};
use barong::store::{Store, StoreError};

use crate::common::{Backend, TestDb};

async fn with_user(db: &TestDb) -> (Arc<dyn Store>, i64) {
    let store = db.open().await;
    store.migrate().await.expect("migrate");
    let user = store
        .create_user(&NewUser {
            uid: "ID0000PASSKEY".into(),
            username: None,
            email: "passkey@barong.test".into(),
            password_digest: "$argon2id$placeholder".into(),
            role: "member".into(),
            data: None,
            level: 0,
            otp: false,
            state: "active".into(),
            referral_id: None,
            labels: vec![],
        })
        .await
        .expect("user");
    (store, user.id)
}

fn passkey(user_id: i64, credential_id: &str) -> NewPasskey {
    NewPasskey {
        user_id,
        credential_id: credential_id.into(),
        user_handle: "7d8e2c1a-0000-4000-8000-000000000000".into(),
        name: "Laptop".into(),
        credential: "{}".into(),
        counter: 1,
        created_at: 1_700_000_000,
    }
}

async fn challenges_are_taken_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (store, user_id) = with_user(&db).await;
    let challenge = PasskeyChallenge {
        challenge: "c2hhcmVk".into(),
        purpose: ChallengePurpose::SecondFactor,
        user_id: Some(user_id),
        state: r#"{"s":1}"#.into(),
        expires_at: 2_000_000_000,
    };
    store
        .passkey_challenge_insert(&challenge, 1_700_000_000)
        .await
        .expect("insert");
    let takers = (0..16).map(|_| {
        let store = store.clone();
        tokio::spawn(async move { store.passkey_challenge_take("c2hhcmVk").await })
    });
    let taken: Vec<_> = futures_util::future::join_all(takers)
        .await
        .into_iter()
        .map(|r| r.expect("task").expect("take"))
        .collect();
    let winners: Vec<_> = taken.into_iter().flatten().collect();
    assert_eq!(
        winners,
        std::slice::from_ref(&challenge),
        "exactly one taker"
    );
    // Expired challenges are pruned when a new one is stored.
    let old = PasskeyChallenge {
        challenge: "b2xk".into(),
        expires_at: 100,
        ..challenge.clone()
    };
    store.passkey_challenge_insert(&old, 50).await.expect("old");
    let new = PasskeyChallenge {
        challenge: "bmV3".into(),
        ..challenge
    };
    store
        .passkey_challenge_insert(&new, 200)
        .await
        .expect("new");
    assert_eq!(
        store.passkey_challenge_take("b2xk").await.expect("take"),
        None
    );
}

async fn counters_move_by_compare_and_set(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (store, user_id) = with_user(&db).await;
    let stored = store
        .passkey_insert(&passkey(user_id, "cred-a"))
        .await
        .expect("insert");
    assert_eq!((stored.counter, stored.last_used_at), (1, None));
    match store.passkey_insert(&passkey(user_id, "cred-a")).await {
        Err(StoreError::Conflict(column)) => assert_eq!(column, "credential_id"),
        other => panic!("a credential is registered once: {other:?}"),
    }
    let racers = (0..8).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .passkey_used(stored.id, 1, 2 + i, "{}", 1_700_000_100)
                .await
        })
    });
    let won = futures_util::future::join_all(racers)
        .await
        .into_iter()
        .filter(|r| matches!(r, Ok(Ok(true))))
        .count();
    assert_eq!(won, 1, "one assertion per counter value");
    let found = store
        .passkey_find("cred-a")
        .await
        .expect("find")
        .expect("there");
    assert!(found.counter >= 2);
    assert_eq!(found.last_used_at, Some(1_700_000_100));
    let renamed = store
        .passkey_rename(user_id, stored.id, "Work")
        .await
        .expect("rename");
    assert_eq!(renamed.map(|p| p.name).as_deref(), Some("Work"));
    assert_eq!(
        store
            .passkey_rename(user_id + 1, stored.id, "x")
            .await
            .expect("rename"),
        None
    );
}

async fn the_last_passkey_goes_only_when_confirmed(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (store, user_id) = with_user(&db).await;
    let a = store
        .passkey_insert(&passkey(user_id, "cred-a"))
        .await
        .expect("a");
    let b = store
        .passkey_insert(&passkey(user_id, "cred-b"))
        .await
        .expect("b");
    assert_eq!(
        store
            .passkey_delete(user_id + 1, a.id, true)
            .await
            .expect("other user"),
        PasskeyDeletion::NotFound
    );
    // Two unconfirmed deletes racing for the last two passkeys: one of them stays.
    let (first, second) = tokio::join!(
        store.passkey_delete(user_id, a.id, false),
        store.passkey_delete(user_id, b.id, false)
    );
    let mut outcomes = [first.expect("first"), second.expect("second")];
    outcomes.sort_by_key(|o| *o == PasskeyDeletion::Deleted);
    assert_eq!(
        outcomes,
        [PasskeyDeletion::NeedsConfirmation, PasskeyDeletion::Deleted]
    );
    let left = store.passkey_list(user_id).await.expect("list");
    assert_eq!(left.len(), 1);
    assert_eq!(
        store
            .passkey_delete(user_id, left[0].id, true)
            .await
            .expect("confirmed"),
        PasskeyDeletion::Deleted
    );
    assert!(store.passkey_list(user_id).await.expect("list").is_empty());
}

both_backends!(
    challenges_are_taken_once,
    counters_move_by_compare_and_set,
    the_last_passkey_goes_only_when_confirmed,
);
