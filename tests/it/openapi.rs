//! The OpenAPI document the REST listener serves at Barong's swagger routes, on both backends.
//! That it tells the truth about every answer is checked by `tests/schemathesis.sh` (CI).

use crate::common;
use common::{Backend, TestDb, TestServer};
use reqwest::StatusCode;
use serde_json::Value;

async fn swagger_is_served_at_barongs_routes(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(db.dir.path(), &db.url, &[]);
    let http = common::client();
    for path in ["/api/v2/swagger", "/api/v2/barong/swagger"] {
        let response = http.get(server.url(path)).send().await.expect("swagger");
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let doc: Value = response.json().await.expect("json");
        assert_eq!(doc["swagger"], "2.0");
        let paths = doc["paths"].as_object().expect("paths");
        // Only what this server serves: every listed GET without parameters answers 2xx,
        // and the KYC paths still to come are not listed.
        assert!(paths.contains_key("/api/v2/barong/identity/users"));
        assert!(!paths.contains_key("/api/v2/barong/resource/profiles"));
        for (listed, item) in paths {
            if item
                .get("get")
                .is_some_and(|get| get.get("parameters").is_none())
                && !listed.contains('{')
                && listed.contains("/public/")
            {
                let answer = http.get(server.url(listed)).send().await.expect("get");
                assert!(
                    answer.status().is_success(),
                    "{listed}: {}",
                    answer.status()
                );
            }
        }
    }
}

both_backends!(swagger_is_served_at_barongs_routes);
