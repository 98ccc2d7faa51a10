//! The public API over HTTP against the real server, on both backends: ping, time, version,
//! configs, health, password strength; and malformed requests answered with JSON 4xx.

use crate::common;
use common::{Backend, TestDb, TestServer, client};
use reqwest::StatusCode;
use serde_json::{Value, json};

const DEFAULT_REGEXP: &str =
    "^(?=.*[[:lower:]])(?=.*[[:upper:]])(?=.*[[:digit:]])(?=.*[[:graph:]]).{8,80}$";

async fn start(backend: Backend) -> (TestDb, TestServer) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(db.dir.path(), &db.url, &[]);
    (db, server)
}

async fn get_json(url: &str) -> (StatusCode, Value) {
    let response = client().get(url).send().await.expect("request");
    let status = response.status();
    (status, response.json().await.expect("json body"))
}

async fn informational_endpoints_answer_as_barong(backend: Backend) {
    let (_db, server) = start(backend).await;
    for prefix in ["/api/v2/barong", "/api/v2"] {
        for module in ["public", "identity"] {
            let base = format!("{prefix}/{module}");
            let (status, body) = get_json(&server.url(&format!("{base}/ping"))).await;
            assert_eq!((status, body), (StatusCode::OK, json!({"ping": "pong"})));

            let (status, body) = get_json(&server.url(&format!("{base}/time"))).await;
            assert_eq!(status, StatusCode::OK);
            let now = chrono::Utc::now().timestamp();
            let time = body["time"].as_i64().expect("integer time");
            assert!((now - time).abs() <= 5, "{time} vs {now}");

            let (status, body) = get_json(&server.url(&format!("{base}/version"))).await;
            assert_eq!(status, StatusCode::OK);
            let keys: Vec<_> = body.as_object().expect("object").keys().cloned().collect();
            assert_eq!(keys, ["git_tag", "git_sha", "build_date", "version"]);
            // The build's own commit and its date, read from git at build time.
            let head = std::process::Command::new("git")
                .args(["rev-parse", "--short=7", "HEAD"])
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .output()
                .expect("git");
            let head = String::from_utf8_lossy(&head.stdout).trim().to_owned();
            assert_eq!(body["git_sha"], head.as_str(), "{body}");
            let date = body["build_date"].as_str().expect("build_date");
            assert!(
                chrono::DateTime::parse_from_rfc3339(date).is_ok_and(|d| d.timestamp() > 0)
                    && date.contains(".000"),
                "{date}"
            );

            let (status, body) = get_json(&server.url(&format!("{base}/configs"))).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(
                body,
                json!({
                    "session_expire_time": 1800,
                    "captcha_type": "none",
                    "phone_verification_type": "mock",
                    "password_min_entropy": 14,
                    "password_regexp": "(?-mix:^(?=.*[[:lower:]])(?=.*[[:upper:]])(?=.*[[:digit:]])(?=.*[[:graph:]]).{8,80}$)"
                })
            );
        }
    }
}

async fn configs_follow_the_settings(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(
        db.dir.path(),
        &db.url,
        &[
            ("BARONG_CAPTCHA", "recaptcha"),
            ("BARONG_RECAPTCHA_SITE_KEY", "site-key-1"),
            ("BARONG_SESSION_EXPIRE_TIME", "600"),
            ("BARONG_PASSWORD_MIN_ENTROPY", "20"),
        ],
    );
    let (_, body) = get_json(&server.url("/api/v2/barong/public/configs")).await;
    assert_eq!(body["captcha_type"], "recaptcha");
    assert_eq!(body["captcha_id"], "site-key-1");
    assert_eq!(body["session_expire_time"], 600);
    assert_eq!(body["password_min_entropy"], 20);
}

async fn health_checks(backend: Backend) {
    let (_db, server) = start(backend).await;
    for path in ["alive", "ready"] {
        let response = client()
            .get(server.url(&format!("/api/v2/barong/public/health/{path}")))
            .send()
            .await
            .expect("health");
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
}

async fn password_strength_accepts_every_parameter_source(backend: Backend) {
    let (_db, server) = start(backend).await;
    let http = client();
    let url = server.url("/api/v2/barong/public/password/validate");
    let form = http
        .post(&url)
        .form(&[("password", "Password1")])
        .send()
        .await
        .expect("form");
    assert_eq!(form.status(), StatusCode::CREATED);
    let form: Value = form.json().await.expect("json");
    let policy =
        barong::domain::password::PasswordPolicy::new(DEFAULT_REGEXP, 14.0, true).expect("policy");
    assert_eq!(form, json!({"entropy": policy.entropy("Password1")}));

    let json_body = http
        .post(&url)
        .json(&json!({"password": "Password1"}))
        .send()
        .await
        .expect("json");
    assert_eq!(json_body.json::<Value>().await.expect("json"), form);
    let query = http
        .post(format!("{url}?password=Password1"))
        .send()
        .await
        .expect("query");
    assert_eq!(query.json::<Value>().await.expect("json"), form);
    let multipart = reqwest::multipart::Form::new().text("password", "Password1");
    let multipart = http
        .post(&url)
        .multipart(multipart)
        .send()
        .await
        .expect("multipart");
    assert_eq!(multipart.json::<Value>().await.expect("json"), form);

    let strong = http
        .post(&url)
        .form(&[("password", "Iequ4geiEWQw")])
        .send()
        .await
        .expect("strong");
    let entropy = strong.json::<Value>().await.expect("json")["entropy"]
        .as_f64()
        .expect("number");
    assert!(entropy >= 14.0, "{entropy}");

    for (module, path) in [
        ("public", "/api/v2/barong/public"),
        ("identity", "/api/v2/identity"),
    ] {
        let missing = http
            .post(server.url(&format!("{path}/password/validate")))
            .send()
            .await
            .expect("missing");
        assert_eq!(missing.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            missing.json::<Value>().await.expect("json"),
            json!({"errors": [format!("{module}.general.missing_password")]})
        );
    }
}

async fn malformed_requests_get_json_4xx(backend: Backend) {
    let (_db, server) = start(backend).await;
    let http = client();
    let url = server.url("/api/v2/barong/public/password/validate");

    let not_found = json!({"error": "Route is not found"});
    for (method, path) in [
        (reqwest::Method::GET, "/api/v2/barong/public/nope"),
        (reqwest::Method::GET, "/nothing/here"),
        (reqwest::Method::DELETE, "/api/v2/barong/public/ping"),
        (
            reqwest::Method::GET,
            "/api/v2/barong/public/password/validate",
        ),
    ] {
        let response = http
            .request(method.clone(), server.url(path))
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{method} {path}");
        assert_eq!(response.json::<Value>().await.expect("json"), not_found);
    }

    let broken = http
        .post(&url)
        .header("content-type", "application/json")
        .body("{\"password\": ")
        .send()
        .await
        .expect("broken json");
    assert_eq!(broken.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        broken.json::<Value>().await.expect("json"),
        json!({"errors": ["request.malformed_body"]})
    );

    let array = http
        .post(&url)
        .json(&json!(["password"]))
        .send()
        .await
        .expect("array");
    assert_eq!(array.status(), StatusCode::BAD_REQUEST);

    let bad_multipart = http
        .post(&url)
        .header("content-type", "multipart/form-data; boundary=xyz")
        .body("--xyz\r\nnot a part")
        .send()
        .await
        .expect("bad multipart");
    assert_eq!(bad_multipart.status(), StatusCode::BAD_REQUEST);

    let huge = "a".repeat(2 * 1024 * 1024);
    let too_big = http
        .post(&url)
        .form(&[("password", huge.as_str())])
        .send()
        .await
        .expect("big");
    assert_eq!(too_big.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        too_big.json::<Value>().await.expect("json"),
        json!({"errors": ["request.body_too_large"]})
    );

    // Invalid UTF-8 in a form body is replaced, never a 500. (A fresh client: the server
    // closes a connection whose oversized body it did not read.)
    let binary = client()
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![
            b'p', b'a', b's', b's', b'w', b'o', b'r', b'd', b'=', 0xff, 0xfe,
        ])
        .send()
        .await
        .expect("binary");
    assert_eq!(binary.status(), StatusCode::CREATED);
}

async fn sigterm_stops_cleanly(backend: Backend) {
    let (_db, server) = start(backend).await;
    let (status, _) = get_json(&server.url("/api/v2/barong/public/ping")).await;
    assert_eq!(status, StatusCode::OK);
    let exit = server.terminate();
    assert!(exit.success(), "exit status {exit:?}");
}

both_backends!(
    informational_endpoints_answer_as_barong,
    configs_follow_the_settings,
    health_checks,
    password_strength_accepts_every_parameter_source,
    malformed_requests_get_json_4xx,
    sigterm_stops_cleanly,
);
