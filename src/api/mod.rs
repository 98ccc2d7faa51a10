//! The Barong REST API on the REST listener, one module per Barong namespace. Every route is
//! served under `/api/v2/barong/...` (the public path behind a gateway) and `/api/v2/...`
//! (Barong's own mount point, for proxies that strip `/barong`).

pub(crate) mod admin;
pub mod auth;
mod entities;
pub mod error;
mod identity;
mod kyc;
pub mod management;
mod meta;
mod middleware;
pub mod pagination;
pub mod params;
mod public;
pub(crate) mod resource;
mod swagger;
mod system_events;

use axum::Router;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use tower_http::trace::TraceLayer;

pub use crate::service::ApiState;
pub use error::ApiError;

/// The complete REST router, both mount points, with Barong's 404 for everything else.
pub fn router(state: ApiState, management: management::ManagementConfig) -> Router {
    let namespaces = Router::new()
        .nest(
            "/identity",
            public::routes("identity").merge(identity::routes()),
        )
        .nest(
            "/public",
            public::routes("public")
                .merge(public::health_routes())
                .merge(kyc::routes()),
        )
        .nest("/resource", resource::routes())
        .nest("/admin", admin::routes(state.clone()))
        .nest("/management", management::routes(&state, management));
    Router::new()
        .nest("/api/v2/barong", namespaces.clone())
        .nest("/api/v2", namespaces)
        .merge(swagger::routes())
        .fallback(route_not_found)
        .method_not_allowed_fallback(route_not_found)
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::harden,
        ))
        .with_state(state)
}

/// Barong answers an unknown path, or a known path with the wrong method, with 404.
async fn route_not_found() -> Response {
    ApiError::route_not_found().into_response()
}

/// One span per request: its id (set by `middleware::harden`), the method and the path only
/// (queries may carry tokens).
fn request_span(request: &Request) -> tracing::Span {
    let id = request
        .headers()
        .get(crate::observe::REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!(
        "rest",
        request_id = %id,
        method = %request.method(),
        path = %request.uri().path(),
    )
}
