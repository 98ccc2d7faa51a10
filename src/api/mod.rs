//! The Barong REST API on the REST listener, one module per Barong namespace. Every route is
//! served under `/api/v2/barong/...` (the public path behind a gateway) and `/api/v2/...`
//! (Barong's own mount point, for proxies that strip `/barong`).

pub(crate) mod admin;
pub mod auth;
mod entities;
pub mod error;
pub mod hashing;
mod identity;
mod kyc;
pub mod limits;
pub mod management;
mod middleware;
pub mod pagination;
pub mod params;
mod public;
pub(crate) mod resource;
mod swagger;
mod system_events;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tower_http::trace::TraceLayer;

use crate::captcha::Captcha;
use crate::config::Config;
use crate::crypto::tokens::TokenSigner;
use crate::domain::StateRules;
use crate::domain::password::PasswordPolicy;
use crate::invalidation::InvalidationBus;
use crate::store::Store;

pub use error::ApiError;

/// What every handler may use; cheap to clone.
#[derive(Clone)]
pub struct ApiState {
    pub store: Arc<dyn Store>,
    pub password_policy: Arc<PasswordPolicy>,
    /// The body of `GET configs`, computed once from the settings.
    pub public_configs: Arc<Value>,
    /// Build information answered by `GET version`.
    pub version: Arc<Value>,
    /// Largest request body accepted, in bytes.
    pub max_body_size: usize,
    /// How long a readiness check waits for the database.
    pub ready_timeout: Duration,
    /// Every setting (identity reads session, mail, captcha and uid settings from it).
    pub config: Arc<Config>,
    /// Where revoked sessions and changed users are announced to the caches.
    pub invalidation: InvalidationBus,
    /// Signs and verifies the confirmation and reset tokens.
    pub tokens: Arc<TokenSigner>,
    /// The configured captcha.
    pub captcha: Arc<Captcha>,
    /// Wakes the mail worker after a mail was queued.
    pub mail_wakeup: Arc<tokio::sync::Notify>,
    /// Verifies the bearer tokens of resource and admin requests (see `auth::CurrentUser`).
    pub bearer: Arc<crate::crypto::jws::JwtVerifier>,
    /// `activation_requirements` and `state_triggers` of `barong.yml`.
    pub state_rules: Arc<StateRules>,
    /// Encrypts TOTP and API-key secrets at rest (`BARONG_ENCRYPTION_KEY`).
    pub encryptor: Arc<crate::crypto::encryption::Encryptor>,
    /// Abuse limits (failed logins, TOTP codes, mail, sign-ups) and the request metrics.
    pub observe: Arc<crate::observe::Observability>,
    /// GeoIP (`BARONG_MAXMINDDB_PATH`), shared with the authz path: the country of a login.
    pub geoip: Option<Arc<crate::authz::geo::GeoIp>>,
    /// Sends and checks phone codes (`BARONG_PHONE_VERIFICATION`).
    pub phone_verifier: Arc<crate::sms::PhoneVerifier>,
    /// Where KYC uploads are stored (`BARONG_UPLOADS_URL`).
    pub uploads: Arc<crate::uploads::Uploads>,
    /// Management API signers and scopes (`BARONG_MANAGEMENT_API_FILE`).
    pub management: Arc<management::ManagementConfig>,
}

impl ApiState {
    /// What the store needs to write the sealed `model.document.created` events of `documents`.
    pub(crate) fn document_events(
        &self,
        documents: &[crate::domain::NewDocument],
    ) -> crate::store::DocumentEvents {
        crate::store::DocumentEvents {
            enc: self.encryptor.as_ref().clone(),
            upload_urls: documents
                .iter()
                .map(|d| self.uploads.url_of(&d.upload))
                .collect(),
        }
    }
}

/// The complete REST router, both mount points, with Barong's 404 for everything else.
pub fn router(state: ApiState) -> Router {
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
        .nest("/management", management::routes(&state));
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
