//! The service layer: what the REST namespaces share, between the HTTP adapters of `api/` and
//! the store. The state every handler is given ([`ApiState`]), the error of the rules
//! ([`error::ApiError`]), and the rules more than one namespace applies: TOTP checks
//! (`totp`), passwords asked again of a signed-in user (`confirm`), activity rows (`activity`), opening sessions (`sessions`), telling the caches what a
//! change made stale (`changes`). A namespace never imports another; both import this.

pub mod activity;
pub mod api_keys;
pub mod changes;
pub mod confirm;
pub mod documents;
pub mod error;
pub mod labels;
pub mod passkeys;
pub mod sessions;
pub mod totp;

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::captcha::Captcha;
use crate::config::Config;
use crate::crypto::tokens::TokenSigner;
use crate::domain::StateRules;
use crate::domain::password::PasswordPolicy;
use crate::invalidation::InvalidationBus;
use crate::store::Store;

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
    pub bearer: Arc<crate::crypto::bearer::JwtVerifier>,
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
}

impl ApiState {
    /// The GeoIP country of an address, when GeoIP is configured (`BARONG_MAXMINDDB_PATH`).
    pub fn country_of(&self, ip: std::net::IpAddr) -> Option<String> {
        self.geoip.as_ref().and_then(|geo| geo.locate(ip).country)
    }

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
