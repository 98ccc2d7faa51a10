//! Settings: every Barong setting (same environment names, same defaults) plus the ones this server
//! adds (listed in `docs/configuration.md`), read from the environment and an optional TOML file.
//!
//! Resolution follows Barong's `Barong::App.set`: the
//! environment wins, then the TOML file (our stand-in for Rails credentials), then the default.
//! Values are typed as Barong types them: `bool` is exactly `true`/`false`, integers are all digits,
//! enumerated settings reject unknown values, paths must exist. Any bad value stops the start with one
//! line naming the setting ([`ConfigError`]), so an operator never meets a panic or a stack trace.
//!
//! The settings live in one table (`settings.rs`), grouped by concern: [`Config`] holds one
//! sub-struct per group (`config.mail`, `config.session`, ...) and a component is handed the group
//! it uses. `value.rs` and `enums.rs` type the raw texts, `sources.rs` reads them, `barong_yml.rs`
//! reads Barong's `config/barong.yml`. Barong's settings this server accepts but does not use are
//! the `compat` group: [`Config::ignored`] names the ones given, and the server warns at start.

mod barong_yml;
mod enums;
mod passkeys;
mod settings;
mod sources;
#[cfg(test)]
mod tests;
mod value;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub use barong_yml::BarongYml;
pub use enums::*;
pub use passkeys::Passkeys;
pub use settings::*;
use sources::{parse_toml, process_env};
use value::decode_key32;
pub use value::{RateLimit, Secret};

/// A bad or missing setting. `Display` is one line naming the setting and what is allowed, e.g.
/// `invalid BARONG_CSRF_PROTECTION="yes": expected true or false`; secret values are never echoed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ConfigError {
    /// The setting's environment name (or the TOML key / "config file" for file-level problems).
    pub setting: String,
    /// The whole line shown to the operator, setting name included.
    pub message: String,
}

impl ConfigError {
    /// `invalid NAME="value": problem`, or `invalid NAME: problem` when the value must not be shown.
    pub fn invalid(setting: &str, shown: Option<&str>, problem: &str) -> Self {
        let message = match shown {
            Some(value) => format!("invalid {setting}={value:?}: {problem}"),
            None => format!("invalid {setting}: {problem}"),
        };
        Self::new(setting, message)
    }

    /// `missing NAME: why`.
    pub fn missing(setting: &str, why: &str) -> Self {
        Self::new(setting, format!("missing {setting}: {why}"))
    }

    /// Keeps the message on one line: parser errors (TOML, YAML, regex) may span several.
    fn new(setting: &str, message: String) -> Self {
        let message = message.replace(['\r', '\n'], " ");
        Self {
            setting: setting.to_owned(),
            message,
        }
    }
}

const PRODUCTION: &str = "required when BARONG_ENV=production";

impl Config {
    /// Reads the process environment and the optional TOML file (`--config`).
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let env = process_env()?;
        let values = match file {
            Some(path) => {
                let origin = format!("config file {}", path.display());
                let text = std::fs::read_to_string(path).map_err(|e| {
                    ConfigError::new("config file", format!("cannot read {origin}: {e}"))
                })?;
                parse_toml(&text, &origin)?
            }
            None => HashMap::new(),
        };
        Self::build(&env, values)
    }

    /// Same from explicit sources: `env` stands for the environment, `file` is TOML text.
    pub fn from_sources(
        env: &HashMap<String, String>,
        file: Option<&str>,
    ) -> Result<Config, ConfigError> {
        let values = match file {
            Some(text) => parse_toml(text, "config file")?,
            None => HashMap::new(),
        };
        Self::build(env, values)
    }

    /// Whether `BARONG_ENV=production`.
    pub fn is_production(&self) -> bool {
        self.server.env == Environment::Production
    }

    /// The 32 bytes of `BARONG_ENCRYPTION_KEY` (hex, or standard / URL-safe base64), when given.
    pub fn encryption_key_bytes(&self) -> Option<[u8; 32]> {
        self.keys
            .encryption_key
            .as_ref()
            .and_then(|key| decode_key32(key.expose()))
    }

    /// The upload directory when `BARONG_UPLOADS_URL` is a `file://` URL (relative paths allowed).
    pub fn uploads_dir(&self) -> Option<PathBuf> {
        self.uploads
            .uploads_url
            .strip_prefix("file://")
            .map(PathBuf::from)
    }

    /// The session policies: Barong's binding and expiry, and the client pattern's, if any.
    pub fn session_policies(&self) -> crate::domain::SessionPolicies {
        let expire_time = |seconds: u64| i64::try_from(seconds).unwrap_or(i64::MAX);
        let default = crate::domain::SessionPolicy {
            binding: self.session.session_binding,
            expire_time: expire_time(self.session.session_expire_time),
        };
        // The pattern was compiled once when the setting was read; an empty one is no pattern.
        let client = regex::Regex::new(&self.session.session_client_agent)
            .ok()
            .filter(|_| !self.session.session_client_agent.is_empty())
            .map(|pattern| {
                let seconds = match self.session.session_client_expire_time {
                    0 => self.session.session_expire_time,
                    seconds => seconds,
                };
                let policy = crate::domain::SessionPolicy {
                    binding: self.session.session_client_binding,
                    expire_time: expire_time(seconds),
                };
                (pattern, policy)
            });
        crate::domain::SessionPolicies { default, client }
    }

    /// Whose forwarding headers the client address is read from.
    pub fn trusted_proxies(&self) -> crate::domain::client_ip::TrustedProxies {
        crate::domain::client_ip::TrustedProxies {
            networks: self.network.trusted_proxies.clone(),
            client_ip_header: self.network.trust_client_ip_header,
            true_client_ip: self.network.gateway == Gateway::Akamai,
        }
    }

    /// Whether CORS allows any origin (`*` in `BARONG_API_CORS_ORIGINS`).
    pub fn cors_allows_any_origin(&self) -> bool {
        self.cors
            .api_cors_origins
            .iter()
            .any(|origin| origin == "*")
    }

    fn build(
        env: &HashMap<String, String>,
        file: HashMap<&'static str, String>,
    ) -> Result<Config, ConfigError> {
        let src = Sources { env, file };
        let mut config = Self::parse_fields(&src)?;
        config.check_production(&src)?;
        config.production_defaults(&src);
        config.check_phone()?;
        config.check_tls()?;
        config.check_jwt()?;
        config.check_addrs()?;
        config.check_passkeys()?;
        config.barong_yml = config.read_barong_yml()?;
        Ok(config)
    }

    /// Production must not run on generated keys or on the default embedded database by accident.
    fn check_production(&self, src: &Sources) -> Result<(), ConfigError> {
        if !self.is_production() {
            return Ok(());
        }
        if self.keys.jwt_private_key_path.is_none() {
            return Err(ConfigError::missing("JWT_PRIVATE_KEY_PATH", PRODUCTION));
        }
        if self.keys.encryption_key.is_none() {
            return Err(ConfigError::missing("BARONG_ENCRYPTION_KEY", PRODUCTION));
        }
        if src.given("BARONG_DATABASE_URL").is_none() {
            return Err(ConfigError::missing("BARONG_DATABASE_URL", PRODUCTION));
        }
        // Settings meant for a developer's machine that would open a hole in front of users.
        if self.phone.phone_verification == PhoneVerification::Mock {
            return Err(ConfigError::invalid(
                "BARONG_PHONE_VERIFICATION",
                Some("mock"),
                "mock accepts any code; use twilio_sms or twilio_verify when BARONG_ENV=production",
            ));
        }
        if self.cors_allows_any_origin() && self.cors.api_cors_allow_credentials {
            return Err(ConfigError::invalid(
                "BARONG_API_CORS_ORIGINS",
                Some("*"),
                "any origin together with BARONG_API_CORS_ALLOW_CREDENTIALS=true lets every site \
                 act as the user; list the origins when BARONG_ENV=production",
            ));
        }
        Ok(())
    }

    /// Production defaults that differ from Barong's: the first registered user becomes a
    /// superadmin only when `BARONG_FIRST_REGISTRATION_SUPERADMIN` is set explicitly.
    fn production_defaults(&mut self, src: &Sources) {
        if self.is_production() && src.given("BARONG_FIRST_REGISTRATION_SUPERADMIN").is_none() {
            self.users.first_registration_superadmin = false;
        }
    }

    /// Barong raises 'Invalid twilio config' at boot for Twilio modes without SID or token.
    fn check_phone(&self) -> Result<(), ConfigError> {
        if self.phone.phone_verification == PhoneVerification::Mock {
            return Ok(());
        }
        let why = format!(
            "required when BARONG_PHONE_VERIFICATION={}",
            self.phone.phone_verification
        );
        if self.phone.twilio_account_sid.trim().is_empty() {
            return Err(ConfigError::missing("BARONG_TWILIO_ACCOUNT_SID", &why));
        }
        if self.phone.twilio_auth_token.expose().trim().is_empty() {
            return Err(ConfigError::missing("BARONG_TWILIO_AUTH_TOKEN", &why));
        }
        Ok(())
    }

    /// A certificate without its key (or the reverse) cannot serve HTTPS; client certificates
    /// (mTLS) are only asked for over HTTPS.
    fn check_tls(&self) -> Result<(), ConfigError> {
        let pairs = [
            (
                &self.tls.tls_cert_path,
                "BARONG_TLS_CERT_PATH",
                &self.tls.tls_key_path,
                "BARONG_TLS_KEY_PATH",
            ),
            (
                &self.tls.authz_tls_cert_path,
                "BARONG_AUTHZ_TLS_CERT_PATH",
                &self.tls.authz_tls_key_path,
                "BARONG_AUTHZ_TLS_KEY_PATH",
            ),
        ];
        for (cert, cert_name, key, key_name) in pairs {
            if cert.is_some() && key.is_none() {
                let why = format!("required when {cert_name} is set");
                return Err(ConfigError::missing(key_name, &why));
            }
            if cert.is_none() && key.is_some() {
                let why = format!("required when {key_name} is set");
                return Err(ConfigError::missing(cert_name, &why));
            }
        }
        let authz_tls = self.tls.tls_cert_path.is_some() || self.tls.authz_tls_cert_path.is_some();
        if !authz_tls && self.tls.authz_client_ca_path.is_some() {
            let why = "required when BARONG_AUTHZ_CLIENT_CA_PATH is set";
            return Err(ConfigError::missing("BARONG_TLS_CERT_PATH", why));
        }
        Ok(())
    }

    /// The resource APIs verify tokens signed by our own key: another algorithm would reject them all.
    fn check_jwt(&self) -> Result<(), ConfigError> {
        if self.bearer.jwt_verify_algorithm == self.keys.jwt_algorithm {
            return Ok(());
        }
        let problem = format!(
            "expected {}, the algorithm of BARONG_JWT_ALGORITHM (this server verifies its own tokens)",
            self.keys.jwt_algorithm
        );
        let shown = self.bearer.jwt_verify_algorithm.as_str();
        Err(ConfigError::invalid("JWT_ALGORITHM", Some(shown), &problem))
    }

    /// Both listeners on one address would fail later with a less helpful bind error (port 0 asks
    /// the system for a free port, so it may repeat).
    fn check_addrs(&self) -> Result<(), ConfigError> {
        if let Some(grpc) = self.server.authz_grpc_addr
            && grpc.port() != 0
            && (grpc == self.server.authz_addr || grpc == self.server.api_addr)
        {
            let shown = grpc.to_string();
            let problem =
                "expected an address different from BARONG_AUTHZ_ADDR and BARONG_API_ADDR";
            return Err(ConfigError::invalid(
                "BARONG_AUTHZ_GRPC_ADDR",
                Some(&shown),
                problem,
            ));
        }
        if self.server.api_addr != self.server.authz_addr || self.server.api_addr.port() == 0 {
            return Ok(());
        }
        let shown = self.server.api_addr.to_string();
        let problem = "expected an address different from BARONG_AUTHZ_ADDR";
        Err(ConfigError::invalid(
            "BARONG_API_ADDR",
            Some(&shown),
            problem,
        ))
    }

    fn read_barong_yml(&self) -> Result<BarongYml, ConfigError> {
        let Some(path) = &self.files.config else {
            return Ok(BarongYml::default());
        };
        let shown = path.display().to_string();
        let invalid =
            |problem: String| ConfigError::invalid("BARONG_CONFIG", Some(&shown), &problem);
        let text = std::fs::read_to_string(path)
            .map_err(|e| invalid(format!("cannot read the file ({e})")))?;
        BarongYml::parse(&text).map_err(invalid)
    }
}

impl Default for Config {
    /// All defaults, as with an empty environment and no file (a development configuration).
    #[expect(
        clippy::expect_used,
        reason = "the built-in defaults are valid; a unit test loads them"
    )]
    fn default() -> Self {
        Config::from_sources(&HashMap::new(), None)
            .expect("the built-in defaults are valid (tested)")
    }
}
