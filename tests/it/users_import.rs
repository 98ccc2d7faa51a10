//! `barong users import FILE` on both backends: Barong's export columns (CSV and JSON), bcrypt
//! digests kept as they are (the imported password logs in), the phone and profile columns
//! (encrypted with the server's key), refused rows and parts reported, idempotent on a second
//! run.

use crate::common;
use barong::crypto::encryption::Encryptor;
use barong::crypto::keys::EncryptionKey;
use common::{Backend, TestDb, TestServer, barong_command, client};
use serde_json::json;

const ENCRYPTION_KEY: &str = "0202020202020202020202020202020202020202020202020202020202020202";

/// Runs the import; its stdout and stderr.
fn run_import(db: &TestDb, file: &std::path::Path) -> (String, String) {
    let output = barong_command(db.dir.path(), &db.url)
        .env("BARONG_ENCRYPTION_KEY", ENCRYPTION_KEY)
        .args(["users", "import"])
        .arg(file)
        .output()
        .expect("run barong users import");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(output.status.success(), "{stdout} {stderr}");
    (stdout, stderr)
}

async fn imports_barong_export(backend: Backend) {
    let db = TestDb::new(backend).await;
    let digest = bcrypt::hash("Imported-Pa55word!", 4).expect("bcrypt");
    let csv = db.dir.path().join("users.csv");
    std::fs::write(
        &csv,
        format!(
            "email,password_digest,phone,first_name,last_name,dob,address,postcode,city,country,state\n\
             alice@example.com,{digest},+44 7418 084106,Alice,Smith,1990-02-03,\"1, Rue \"\"X\"\"\",75001,Paris,FR,submitted\n\
             \"bob@example.com\",{digest},,Bob,,,,,Lyon,,\n\
             ,{digest},,Nobody,,,,,,,\n\
             dan@example.com,{digest},12,Dan,,,,,,,\n\
             eve@example.com,{digest},+44 7418 084107,Eve,,,,,,Narnia,\n\
             fay@example.com,{digest},,Fay,,someday,,,,,\n"
        ),
    )
    .expect("csv");
    let (out, err) = run_import(&db, &csv);
    assert!(
        out.contains("created=4 skipped=0 refused=2 incomplete=2"),
        "{out}"
    );
    assert!(
        err.contains("row 3: refused: email and password_digest are required"),
        "{err}"
    );
    assert!(err.contains("row 6: refused: dob is invalid"), "{err}");
    assert!(
        err.contains("row 4: user created without phone and profile: Number is invalid"),
        "{err}"
    );
    assert!(
        err.contains(
            "row 5: user created without profile: Country must have alpha2 or alpha3 format"
        ),
        "{err}"
    );
    // Known e-mails are skipped, users whose phone or profile was refused included.
    let (out, _) = run_import(&db, &csv);
    assert!(
        out.contains("created=0 skipped=4 refused=2 incomplete=0"),
        "{out}"
    );

    let store = db.open().await;
    let encryptor = Encryptor::new(&EncryptionKey::parse(ENCRYPTION_KEY).expect("key"));
    let user = |email: &'static str| {
        let store = store.clone();
        async move {
            store
                .find_user_by_email(email)
                .await
                .expect("find")
                .expect(email)
        }
    };
    let alice = user("alice@example.com").await;
    let profiles = store
        .list_user_profiles(alice.id, &encryptor)
        .await
        .expect("profiles");
    assert_eq!(profiles.len(), 1);
    let data = &profiles[0].data;
    assert_eq!(
        (
            data.first_name.as_deref(),
            data.last_name.as_deref(),
            data.city.as_deref(),
            data.country.as_deref(),
            data.postcode.as_deref(),
            data.address.as_deref(),
        ),
        (
            Some("Alice"),
            Some("Smith"),
            Some("Paris"),
            Some("FR"),
            Some("75001"),
            Some("1, Rue \"X\"")
        )
    );
    assert_eq!(
        data.dob.map(|d| d.to_string()).as_deref(),
        Some("1990-02-03")
    );
    assert_eq!(profiles[0].state.as_str(), "submitted");
    let phones = store.list_user_phones(alice.id).await.expect("phones");
    assert_eq!(phones.len(), 1);
    assert!(
        phones[0].validated_at.is_some(),
        "imported phones are verified"
    );
    assert_eq!(
        encryptor
            .decrypt(&phones[0].number_encrypted)
            .expect("decrypt"),
        "+447418084106"
    );
    // A profile is always created, from whatever profile columns there are.
    let bob = user("bob@example.com").await;
    let profiles = store
        .list_user_profiles(bob.id, &encryptor)
        .await
        .expect("profiles");
    assert_eq!(profiles.len(), 1);
    assert_eq!(profiles[0].data.city.as_deref(), Some("Lyon"));
    assert_eq!(profiles[0].state.as_str(), "drafted");
    // A refused phone: no phone, no profile. A refused profile: the phone stays.
    let dan = user("dan@example.com").await;
    assert!(
        store
            .list_user_phones(dan.id)
            .await
            .expect("phones")
            .is_empty()
    );
    assert!(
        store
            .list_user_profiles(dan.id, &encryptor)
            .await
            .expect("profiles")
            .is_empty()
    );
    let eve = user("eve@example.com").await;
    assert_eq!(
        store.list_user_phones(eve.id).await.expect("phones").len(),
        1
    );
    assert!(
        store
            .list_user_profiles(eve.id, &encryptor)
            .await
            .expect("profiles")
            .is_empty()
    );

    let json_file = db.dir.path().join("users.json");
    std::fs::write(
        &json_file,
        json!([{"email": "carol@example.com", "password_digest": digest, "referral_uid": alice.uid}])
            .to_string(),
    )
    .expect("json");
    let (out, _) = run_import(&db, &json_file);
    assert!(
        out.contains("created=1 skipped=0 refused=0 incomplete=0"),
        "{out}"
    );
    let carol = user("carol@example.com").await;
    assert_eq!(carol.referral_id, Some(alice.id));
    assert_eq!(carol.password_digest, digest, "bcrypt digest kept as is");
    assert_eq!(carol.state, "pending");

    // The imported bcrypt password logs in.
    let server = TestServer::start(
        db.dir.path(),
        &db.url,
        &[("BARONG_ENCRYPTION_KEY", ENCRYPTION_KEY)],
    );
    let response = client()
        .post(server.url("/api/v2/barong/identity/sessions"))
        .json(&json!({"email": "carol@example.com", "password": "Imported-Pa55word!"}))
        .send()
        .await
        .expect("login");
    let status = response.status().as_u16();
    let body = response.text().await.expect("body");
    assert_eq!(status, 200, "{body}");
}

both_backends!(imports_barong_export);
