//! KYC profiles: storage (both backends, through the `Store` trait) and the HTTP endpoints
//! through the real authz path, the KYCAID callback signed as KYCAID signs it, and a direct
//! look at the database for personal data in clear text.

mod common;
mod support;

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

/// Every byte the database holds that a reader of its files or tables could see: the SQLite
/// files (main and WAL) or every PostgreSQL table as JSON rows.
async fn raw_database_text(db: &TestDb) -> String {
    match db.backend {
        Backend::Sqlite => {
            let path = db.url.trim_start_matches("sqlite://").to_owned();
            let mut bytes = std::fs::read(&path).expect("db file");
            if let Ok(wal) = std::fs::read(format!("{path}-wal")) {
                bytes.extend(wal);
            }
            String::from_utf8_lossy(&bytes).into_owned()
        }
        Backend::Postgres => {
            let (client, connection) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
                .await
                .expect("connect");
            let task = tokio::spawn(connection);
            let tables = client
                .query(
                    "SELECT table_name::text FROM information_schema.tables
                     WHERE table_schema = 'public'",
                    &[],
                )
                .await
                .expect("tables");
            let mut text = String::new();
            for table in tables {
                let name: String = table.get(0);
                let rows = client
                    .query(&format!("SELECT row_to_json(t)::text FROM {name} t"), &[])
                    .await
                    .expect("rows");
                for row in rows {
                    text.push_str(&row.get::<_, String>(0));
                    text.push('\n');
                }
            }
            drop(client);
            let _ = task.await;
            text
        }
    }
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
    assert_no_clear_pii(&raw_database_text(&db).await);
}

both_backends!(storage_profiles_lifecycle);
