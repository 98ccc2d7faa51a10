//! The OpenAPI (Swagger 2.0) document of the REST API, where Barong serves its own:
//! `GET /api/v2/swagger` (Barong's mount point) and `GET /api/v2/barong/swagger` (behind a
//! gateway). It is Barong's user API document (`openapi/build.py`) minus what this server does
//! not serve, kept true by `tests/schemathesis.sh`.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use super::ApiState;

/// The document, built by `openapi/build.py`.
pub const USER_API: &str = include_str!("../../openapi/user_api.json");

/// Both swagger routes.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/v2/swagger", get(document))
        .route("/api/v2/barong/swagger", get(document))
}

async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], USER_API)
}
