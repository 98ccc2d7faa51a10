//! `barong users import FILE` on both backends: Barong's export columns (CSV and JSON), bcrypt
//! digests kept as they are (the imported password logs in), idempotent on a second run.

use crate::common;
use common::{Backend, TestDb, TestServer, barong_command, client};
use serde_json::json;

fn run_import(db: &TestDb, file: &std::path::Path) -> String {
    let output = barong_command(db.dir.path(), &db.url)
        .args(["users", "import"])
        .arg(file)
        .output()
        .expect("run barong users import");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

async fn imports_barong_export(backend: Backend) {
    let db = TestDb::new(backend).await;
    let digest = bcrypt::hash("Imported-Pa55word!", 4).expect("bcrypt");
    let csv = db.dir.path().join("users.csv");
    std::fs::write(
        &csv,
        format!(
            "email,password_digest,first_name,city\n\
             alice@example.com,{digest},Alice,\"Paris, FR\"\n\
             \"bob@example.com\",{digest},Bob,Lyon\n\
             ,{digest},Nobody,\n"
        ),
    )
    .expect("csv");
    let out = run_import(&db, &csv);
    assert!(out.contains("created=2 skipped=0 refused=1"), "{out}");
    let out = run_import(&db, &csv);
    assert!(out.contains("created=0 skipped=2 refused=1"), "{out}");

    let alice = db
        .open()
        .await
        .find_user_by_email("alice@example.com")
        .await
        .expect("find")
        .expect("alice");
    let json_file = db.dir.path().join("users.json");
    std::fs::write(
        &json_file,
        json!([{"email": "carol@example.com", "password_digest": digest, "referral_uid": alice.uid}])
            .to_string(),
    )
    .expect("json");
    let out = run_import(&db, &json_file);
    assert!(out.contains("created=1 skipped=0 refused=0"), "{out}");
    let store = db.open().await;
    let carol = store
        .find_user_by_email("carol@example.com")
        .await
        .expect("find")
        .expect("carol");
    assert_eq!(carol.referral_id, Some(alice.id));
    assert_eq!(carol.password_digest, digest, "bcrypt digest kept as is");
    assert_eq!(carol.state, "pending");

    // The imported bcrypt password logs in.
    let server = TestServer::start(db.dir.path(), &db.url, &[]);
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
