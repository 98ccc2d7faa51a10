//! Settings: every Barong setting (same environment names, same defaults) plus the ones this server
//! adds (listed in `docs/configuration.md`), read from the environment and an optional TOML file.
//!
//! Resolution follows Barong's `Barong::App.set`: the
//! environment wins, then the TOML file (our stand-in for Rails credentials), then the default.
//! Values are typed as Barong types them: `bool` is exactly `true`/`false`, integers are all digits,
//! enumerated settings reject unknown values, paths must exist. Any bad value stops the start with one
//! line naming the setting ([`ConfigError`]), so an operator never meets a panic or a stack trace.
//!
//! The settings live in one table (the `settings!` invocation below): it declares the typed field of
//! [`Config`], the environment name, the default and the parser in one place, so `describe()`, the TOML
//! key check and the field list cannot drift apart.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde_yaml_ng::Value as Yaml;

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

/// A password, token or key. `Debug` and `Display` print `[redacted]` so a secret cannot reach a log
/// line, an error or `barong config` by accident; [`Secret::expose`] is the one deliberate way out.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the code that has to use it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Barong's secrets default to `''`, which means "not configured".
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// How a raw setting text becomes a typed value and how that value is shown by `describe()`.
trait Value: Sized {
    /// Secret values are never echoed in errors nor shown by `describe()`.
    const SECRET: bool = false;
    /// Parses the raw text; the error is the part after `invalid NAME="value": `.
    fn parse(raw: &str) -> Result<Self, String>;
    /// The display value for `barong config`.
    fn show(&self) -> String;
}

impl Value for String {
    fn parse(raw: &str) -> Result<Self, String> {
        Ok(raw.to_owned())
    }
    fn show(&self) -> String {
        // URLs (database, redis, rabbitmq) may carry a password.
        redact_url_password(self)
    }
}

impl Value for bool {
    fn parse(raw: &str) -> Result<Self, String> {
        // Barong accepts exactly these two strings; "1", "yes" or "TRUE" abort the boot.
        match raw {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err("expected true or false".into()),
        }
    }
    fn show(&self) -> String {
        self.to_string()
    }
}

/// Barong's integer rule (`^\d+$`) plus the range of the Rust type.
macro_rules! integer_value {
    ($($ty:ty),*) => {$(
        impl Value for $ty {
            fn parse(raw: &str) -> Result<Self, String> {
                let digits = !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit());
                digits
                    .then(|| raw.parse().ok())
                    .flatten()
                    .ok_or_else(|| format!("expected a whole number from 0 to {}", <$ty>::MAX))
            }
            fn show(&self) -> String {
                self.to_string()
            }
        }
    )*};
}
integer_value!(u16, u32, u64);

/// A rate limit: at most `count` events per `window` seconds; `count == 0` turns it off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Events allowed per window (0: unlimited).
    pub count: u32,
    /// The window, seconds.
    pub window: u64,
}

impl RateLimit {
    /// Whether the limit is on.
    pub fn enabled(&self) -> bool {
        self.count > 0 && self.window > 0
    }
}

impl Value for RateLimit {
    fn parse(raw: &str) -> Result<Self, String> {
        let bad = || "expected COUNT/SECONDS (e.g. 5/300) or 0 (off)".to_owned();
        if raw == "0" {
            return Ok(RateLimit {
                count: 0,
                window: 0,
            });
        }
        let (count, window) = raw.split_once('/').ok_or_else(bad)?;
        let count = u32::parse(count.trim()).map_err(|_| bad())?;
        let window = u64::parse(window.trim()).map_err(|_| bad())?;
        if window == 0 && count > 0 {
            return Err(bad());
        }
        Ok(RateLimit { count, window })
    }
    fn show(&self) -> String {
        if self.enabled() {
            format!("{}/{}", self.count, self.window)
        } else {
            "0".into()
        }
    }
}

impl Value for SocketAddr {
    fn parse(raw: &str) -> Result<Self, String> {
        raw.parse()
            .map_err(|_| "expected an IP address and port, e.g. 127.0.0.1:8001".into())
    }
    fn show(&self) -> String {
        self.to_string()
    }
}

impl Value for PathBuf {
    fn parse(raw: &str) -> Result<Self, String> {
        if raw.is_empty() {
            return Err("expected a path".into());
        }
        Ok(PathBuf::from(raw))
    }
    fn show(&self) -> String {
        self.display().to_string()
    }
}

impl Value for Vec<String> {
    fn parse(raw: &str) -> Result<Self, String> {
        // Barong's `array` type: comma split, whitespace squished; empty items carry no meaning.
        Ok(split_list(raw))
    }
    fn show(&self) -> String {
        self.join(",")
    }
}

impl Value for Vec<ipnet::IpNet> {
    fn parse(raw: &str) -> Result<Self, String> {
        crate::domain::client_ip::parse_networks(raw)
    }
    fn show(&self) -> String {
        let items: Vec<String> = self.iter().map(ToString::to_string).collect();
        items.join(",")
    }
}

impl Value for Secret {
    const SECRET: bool = true;
    fn parse(raw: &str) -> Result<Self, String> {
        Ok(Secret::new(raw))
    }
    fn show(&self) -> String {
        show_secret(self)
    }
}

impl Value for crate::domain::Binding {
    fn parse(raw: &str) -> Result<Self, String> {
        raw.parse()
    }
    fn show(&self) -> String {
        self.as_str().to_owned()
    }
}

impl<T: Value> Value for Option<T> {
    const SECRET: bool = T::SECRET;
    fn parse(raw: &str) -> Result<Self, String> {
        // An empty value means "unset", as Barong's `''` defaults do (e.g. BARONG_MAXMINDDB_PATH).
        if raw.is_empty() {
            return Ok(None);
        }
        T::parse(raw).map(Some)
    }
    fn show(&self) -> String {
        self.as_ref().map(Value::show).unwrap_or_default()
    }
}

fn show_secret(secret: &Secret) -> String {
    if secret.is_empty() {
        String::new()
    } else {
        "[redacted]".into()
    }
}

fn split_list(raw: &str) -> Vec<String> {
    raw.split(',')
        .map(|item| item.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|item| !item.is_empty())
        .collect()
}

/// Declares an enumerated setting: its variants, their spellings and the "expected one of" text.
macro_rules! string_enum {
    (
        $(#[$attr:meta])*
        $name:ident (case_insensitive = $ci:literal) {
            $($(#[$vattr:meta])* $variant:ident = $text:literal,)+
        }
    ) => {
        $(#[$attr])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vattr])* $variant,)+
        }

        impl $name {
            /// Every variant, in the order the settings documentation lists them.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The canonical spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;

            fn from_str(raw: &str) -> Result<Self, String> {
                let matches = |text: &str| if $ci { raw.eq_ignore_ascii_case(text) } else { raw == text };
                Self::ALL.iter().copied().find(|v| matches(v.as_str())).ok_or_else(|| {
                    let names: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                    format!("expected one of {}", names.join(", "))
                })
            }
        }

        impl Value for $name {
            fn parse(raw: &str) -> Result<Self, String> {
                raw.parse()
            }
            fn show(&self) -> String {
                self.as_str().to_owned()
            }
        }
    };
}

string_enum! {
    /// `BARONG_ENV`: production refuses to start without explicit keys and database.
    Environment (case_insensitive = false) {
        /// Generated keys and SQLite are fine.
        Development = "development",
        /// As development; for test suites.
        Test = "test",
        /// Keys, encryption key and database must be given explicitly.
        Production = "production",
    }
}

string_enum! {
    /// Where API-key replay protection remembers the requests it has seen
    /// (`BARONG_APIKEY_REPLAY_STORE`).
    ReplayStore (case_insensitive = false) {
        /// In this process: a replay sent to another instance is not recognised.
        Memory = "memory",
        /// In Redis (`BARONG_REDIS_URL`), shared by every instance.
        Redis = "redis",
    }
}

string_enum! {
    /// JWT signing algorithm (`BARONG_JWT_ALGORITHM`, `JWT_ALGORITHM`).
    JwtAlgorithm (case_insensitive = false) {
        /// RSA PKCS#1 v1.5 with SHA-256, Barong's only algorithm.
        Rs256 = "RS256",
        /// ECDSA P-256 with SHA-256.
        Es256 = "ES256",
        /// Ed25519.
        EdDsa = "EdDSA",
    }
}

string_enum! {
    /// `BARONG_LOG_FORMAT`.
    LogFormat (case_insensitive = false) {
        /// Human-readable lines.
        Text = "text",
        /// One JSON object per line.
        Json = "json",
    }
}

string_enum! {
    /// `BARONG_GATEWAY`: which CDN header carries the client IP.
    Gateway (case_insensitive = false) {
        /// `True-Client-IP` is trusted when non-empty.
        Akamai = "akamai",
        /// The default: `X-Forwarded-For`.
        Cloudflare = "cloudflare",
    }
}

string_enum! {
    /// `BARONG_KYC_PROVIDER`.
    KycProvider (case_insensitive = false) {
        /// KYCAID applicants and callbacks.
        Kycaid = "kycaid",
        /// Admins verify by hand; the KYC callback answers 422.
        Local = "local",
    }
}

string_enum! {
    /// `BARONG_CAPTCHA`.
    CaptchaType (case_insensitive = false) {
        /// No captcha is enforced.
        None = "none",
        /// Google reCAPTCHA v2.
        Recaptcha = "recaptcha",
        /// GeeTest.
        Geetest = "geetest",
    }
}

string_enum! {
    /// `BARONG_PHONE_VERIFICATION`.
    PhoneVerification (case_insensitive = false) {
        /// Codes are not sent; any code is accepted as Barong's mock does.
        Mock = "mock",
        /// Codes sent by SMS through Twilio.
        TwilioSms = "twilio_sms",
        /// Twilio Verify service.
        TwilioVerify = "twilio_verify",
    }
}

string_enum! {
    /// `BARONG_STORAGE_PROVIDER`; Barong compares it case-insensitively (`Google`, `AWS`, `AliCloud`).
    StorageProvider (case_insensitive = true) {
        /// Files on the local disk.
        Local = "local",
        /// Google Cloud Storage.
        Google = "google",
        /// Amazon S3 or compatible.
        Aws = "aws",
        /// Alibaba Cloud OSS.
        AliCloud = "alicloud",
    }
}

string_enum! {
    /// `BARONG_GEOIP_LANG`: language of country and continent names.
    GeoipLang (case_insensitive = false) {
        /// English.
        En = "en",
        /// German.
        De = "de",
        /// Spanish.
        Es = "es",
        /// French.
        Fr = "fr",
        /// Japanese.
        Ja = "ja",
        /// Russian.
        Ru = "ru",
    }
}

/// Where a setting's value comes from when neither the environment nor the file gives it.
enum Dflt {
    /// A fixed text, parsed like any given value.
    Lit(&'static str),
    /// Computed from other settings (e.g. the database under `BARONG_DATA_DIR`).
    Derived(fn(&Sources) -> String),
}

impl From<&'static str> for Dflt {
    fn from(text: &'static str) -> Self {
        Dflt::Lit(text)
    }
}

/// Picks the setting's parser: the type's own, or a named function for settings with extra rules.
macro_rules! parser {
    ($ty:ty) => {
        <$ty as Value>::parse
    };
    ($ty:ty, $parse:path) => {
        $parse
    };
}

/// Declares [`Config`]'s fields together with each setting's name, default and parser.
macro_rules! settings {
    ($(
        $(#[$doc:meta])*
        $field:ident: $ty:ty = $name:literal, $default:expr $(, $parse:path)?;
    )*) => {
        /// The effective configuration: one typed field per setting, named after the environment
        /// variable without `BARONG_`, lower-cased. `Debug` prints what `describe()` shows, so a
        /// logged configuration never carries a secret or a password inside a URL.
        #[derive(Clone, PartialEq)]
        pub struct Config {
            $($(#[$doc])* pub $field: $ty,)*
            /// Contents of the `BARONG_CONFIG` file (Barong's `config/barong.yml`); built-in defaults
            /// when `BARONG_CONFIG` is unset.
            pub barong_yml: BarongYml,
        }

        /// Every setting's name, in `describe()` order.
        const NAMES: &[&str] = &[$($name),*];

        fn default_of(name: &str) -> Dflt {
            match name {
                $($name => Dflt::from($default),)*
                _ => Dflt::Lit(""),
            }
        }

        impl Config {
            fn parse_fields(src: &Sources) -> Result<Self, ConfigError> {
                Ok(Config {
                    $($field: src.get($name, parser!($ty $(, $parse)?))?,)*
                    barong_yml: BarongYml::default(),
                })
            }

            /// (env name, display value) for every setting in a stable order, for `barong config`.
            /// Secrets show as `[redacted]` (or `""` when unset); passwords inside URLs are redacted.
            pub fn describe(&self) -> Vec<(&'static str, String)> {
                vec![$(($name, Value::show(&self.$field)),)*]
            }
        }

        impl fmt::Debug for Config {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut map = f.debug_map();
                map.entries(self.describe());
                map.entry(&"barong_yml", &self.barong_yml);
                map.finish()
            }
        }
    };
}

settings! {
    // ---- This server (`docs/configuration.md`) ---------------------------------------------------
    /// `BARONG_ENV` (`development`): `production` demands explicit keys and database.
    env: Environment = "BARONG_ENV", "development";
    /// `BARONG_DATA_DIR` (`data`): home of the embedded defaults (database, generated keys, uploads).
    data_dir: PathBuf = "BARONG_DATA_DIR", "data";
    /// `BARONG_DATABASE_URL` (`sqlite://<data dir>/barong.db`): `sqlite://`, `postgres://` or `postgresql://`.
    database_url: String = "BARONG_DATABASE_URL", Dflt::Derived(default_database_url), parse_database_url;
    /// `BARONG_DB_POOL_SIZE` (`16`): database connections per process.
    db_pool_size: u32 = "BARONG_DB_POOL_SIZE", "16", parse_positive_u32;
    /// `BARONG_DB_CONNECT_TIMEOUT` (`2000` ms): how long to wait for a database connection.
    db_connect_timeout: u64 = "BARONG_DB_CONNECT_TIMEOUT", "2000", parse_positive_u64;
    /// `BARONG_AUTHZ_ADDR` (`127.0.0.1:8002`): the authz listener.
    authz_addr: SocketAddr = "BARONG_AUTHZ_ADDR", "127.0.0.1:8002";
    /// `BARONG_AUTHZ_GRPC_ADDR` (unset: off): the same decision as Envoy's gRPC `ext_authz`
    /// (`envoy.service.auth.v3.Authorization/Check`), on its own listener with the TLS (and
    /// mTLS) settings of the authz listener.
    authz_grpc_addr: Option<SocketAddr> = "BARONG_AUTHZ_GRPC_ADDR", "";
    /// `BARONG_API_ADDR` (`127.0.0.1:8001`): the REST listener.
    api_addr: SocketAddr = "BARONG_API_ADDR", "127.0.0.1:8001";
    /// `BARONG_MAX_BODY_SIZE` (`1048576` bytes): largest accepted request body.
    max_body_size: u64 = "BARONG_MAX_BODY_SIZE", "1048576", parse_positive_u64;
    /// `BARONG_AUTHZ_CACHE_TTL` (`10` s): longest time a cached session, user, API key,
    /// permission or restriction may be served on an instance that missed an invalidation.
    authz_cache_ttl: u64 = "BARONG_AUTHZ_CACHE_TTL", "10", parse_positive_u64;
    /// `BARONG_SESSION_WRITE_BEHIND` (`30` s): the sliding session expiry is written to the
    /// database at most once per session per this interval (a crash loses at most this much).
    session_write_behind: u64 = "BARONG_SESSION_WRITE_BEHIND", "30", parse_positive_u64;
    /// `BARONG_SESSION_BINDING` (`network`, Barong's /16 or /96): what a session is bound to
    /// besides its agent: `network`, `address` (the exact login address) or `none`.
    session_binding: crate::domain::Binding = "BARONG_SESSION_BINDING", "network";
    /// `BARONG_SESSION_CLIENT_AGENT` (unset): a regular expression; sessions whose `User-Agent`
    /// matches it follow the two `BARONG_SESSION_CLIENT_*` settings instead (a mobile app).
    session_client_agent: String = "BARONG_SESSION_CLIENT_AGENT", "", parse_agent_pattern;
    /// `BARONG_SESSION_CLIENT_BINDING` (`network`): the binding of those sessions.
    session_client_binding: crate::domain::Binding = "BARONG_SESSION_CLIENT_BINDING", "network";
    /// `BARONG_SESSION_CLIENT_EXPIRE_TIME` (`0`: `BARONG_SESSION_EXPIRE_TIME`): their inactivity
    /// timeout, in seconds.
    session_client_expire_time: u64 = "BARONG_SESSION_CLIENT_EXPIRE_TIME", "0";
    /// `BARONG_SESSION_NEW_DEVICE_NOTICE` (`false`): a login from a device and network the user
    /// never logged in from sends a mail and `system.session.new_device`.
    session_new_device_notice: bool = "BARONG_SESSION_NEW_DEVICE_NOTICE", "false";
    /// `BARONG_JWT_REUSE_TIME` (`30` s): a minted JWT is reused for the same principal and claims
    /// for this long (capped at a tenth of `BARONG_JWT_EXPIRE_TIME`); `0` signs every time.
    jwt_reuse_time: u64 = "BARONG_JWT_REUSE_TIME", "30";
    /// `BARONG_APIKEY_REPLAY_PROTECTION` (`false`, Barong's behaviour): refuse a
    /// (kid, nonce, signature) seen before inside the nonce window.
    apikey_replay_protection: bool = "BARONG_APIKEY_REPLAY_PROTECTION", "false";
    /// `BARONG_APIKEY_FUTURE_SKEW` (`1000` ms): with replay protection on, how far in the future
    /// a nonce may be.
    apikey_future_skew: u64 = "BARONG_APIKEY_FUTURE_SKEW", "1000";
    /// `JWT_PRIVATE_KEY_PATH` (unset: a key is generated into the data dir outside production).
    jwt_private_key_path: Option<PathBuf> = "JWT_PRIVATE_KEY_PATH", "", parse_existing_file;
    /// `BARONG_JWT_ALGORITHM` (`RS256`): algorithm of the signing key.
    jwt_algorithm: JwtAlgorithm = "BARONG_JWT_ALGORITHM", "RS256";
    /// `BARONG_MULTISIG_PRIVATE_KEY_PATH` (unset: the JWT signing key): a separate key for the
    /// jwt-multisig signatures of events and of management `otp/sign` (signer id `barong`).
    multisig_private_key_path: Option<PathBuf> = "BARONG_MULTISIG_PRIVATE_KEY_PATH", "", parse_existing_file;
    /// `BARONG_MULTISIG_ALGORITHM` (`RS256`): algorithm of `BARONG_MULTISIG_PRIVATE_KEY_PATH`.
    multisig_algorithm: JwtAlgorithm = "BARONG_MULTISIG_ALGORITHM", "RS256";
    /// `BARONG_KEYS_RELOAD_INTERVAL` (`30` s): how often an instance re-reads the signing keys
    /// from the database (PostgreSQL instances also hear of a rotation at once).
    keys_reload_interval: u64 = "BARONG_KEYS_RELOAD_INTERVAL", "30", parse_positive_u64;
    /// `BARONG_MANAGEMENT_MAX_AGE` (`300` s): a management request without `exp` is refused once
    /// its `iat` is older than this (and one without either is refused).
    management_max_age: u64 = "BARONG_MANAGEMENT_MAX_AGE", "300", parse_positive_u64;
    /// `BARONG_ENCRYPTION_KEY` (unset: generated into the data dir outside production): 32 bytes as
    /// 64 hex characters or base64; encrypts TOTP secrets, API key secrets and personal data.
    encryption_key: Option<Secret> = "BARONG_ENCRYPTION_KEY", "", parse_encryption_key;
    /// `BARONG_UPLOADS_URL` (`file://<data dir>/uploads`): `file://`, `s3://` or `gs://`.
    uploads_url: String = "BARONG_UPLOADS_URL", Dflt::Derived(default_uploads_url), parse_uploads_url;
    /// `BARONG_LOG_FORMAT` (`text`, `json` when `BARONG_ENV=production`).
    log_format: LogFormat = "BARONG_LOG_FORMAT", Dflt::Derived(default_log_format);
    /// `BARONG_TLS_CERT_PATH` (unset: plain HTTP): PEM certificate chain (leaf first) for both
    /// listeners, served over rustls, TLS 1.2 and 1.3; reloaded when the file changes or on SIGHUP.
    tls_cert_path: Option<PathBuf> = "BARONG_TLS_CERT_PATH", "", parse_existing_file;
    /// `BARONG_TLS_KEY_PATH` (unset): PEM private key (PKCS#8, PKCS#1 or SEC1) matching
    /// `tls_cert_path`.
    tls_key_path: Option<PathBuf> = "BARONG_TLS_KEY_PATH", "", parse_existing_file;
    /// `BARONG_AUTHZ_TLS_CERT_PATH` (unset: `BARONG_TLS_CERT_PATH`): a certificate chain for the
    /// authz listener only (e.g. from the internal CA the proxy trusts).
    authz_tls_cert_path: Option<PathBuf> = "BARONG_AUTHZ_TLS_CERT_PATH", "", parse_existing_file;
    /// `BARONG_AUTHZ_TLS_KEY_PATH` (unset: `BARONG_TLS_KEY_PATH`): the key of
    /// `authz_tls_cert_path`.
    authz_tls_key_path: Option<PathBuf> = "BARONG_AUTHZ_TLS_KEY_PATH", "", parse_existing_file;
    /// `BARONG_AUTHZ_CLIENT_CA_PATH` (unset): authz listener requires client certificates from this CA.
    authz_client_ca_path: Option<PathBuf> = "BARONG_AUTHZ_CLIENT_CA_PATH", "", parse_existing_file;
    /// `BARONG_TLS_RELOAD_INTERVAL` (`2` s): how often the TLS files are checked for changes;
    /// `0` reloads them on SIGHUP only.
    tls_reload_interval: u64 = "BARONG_TLS_RELOAD_INTERVAL", "2";

    // ---- This server: abuse limits and HTTP hardening (README "Reliability and security") -----
    /// `BARONG_RATE_LIMIT_LOGIN_ACCOUNT` (`5/300`): failed logins per e-mail per window (count/seconds,
    /// `0` off); then `429 identity.session.too_many_attempts` until the window ends.
    rate_limit_login_account: RateLimit = "BARONG_RATE_LIMIT_LOGIN_ACCOUNT", "5/300";
    /// `BARONG_RATE_LIMIT_LOGIN_IP` (`30/300`): failed logins per client IP per window.
    rate_limit_login_ip: RateLimit = "BARONG_RATE_LIMIT_LOGIN_IP", "30/300";
    /// `BARONG_RATE_LIMIT_OTP` (`5/300`): wrong TOTP codes per user per window; further codes are
    /// refused unchecked.
    rate_limit_otp: RateLimit = "BARONG_RATE_LIMIT_OTP", "5/300";
    /// `BARONG_RATE_LIMIT_MAIL_ADDRESS` (`10/3600`): mail-sending requests (confirmation and reset
    /// codes) per e-mail address per window.
    rate_limit_mail_address: RateLimit = "BARONG_RATE_LIMIT_MAIL_ADDRESS", "10/3600";
    /// `BARONG_RATE_LIMIT_MAIL_IP` (`100/3600`): mail-sending requests per client IP per window.
    rate_limit_mail_ip: RateLimit = "BARONG_RATE_LIMIT_MAIL_IP", "100/3600";
    /// `BARONG_RATE_LIMIT_SIGNUP_IP` (`100/3600`): sign-up requests per client IP per window.
    rate_limit_signup_ip: RateLimit = "BARONG_RATE_LIMIT_SIGNUP_IP", "100/3600";
    /// `BARONG_PASSWORD_HASH_CONCURRENCY` (`0`: one per core): password hashes and checks running
    /// at once; each holds 19 MiB while it runs.
    password_hash_concurrency: u32 = "BARONG_PASSWORD_HASH_CONCURRENCY", "0";
    /// `BARONG_PASSWORD_HASH_QUEUE` (`64`): requests waiting for a hashing turn at most; more are
    /// answered `503 server.busy` at once.
    password_hash_queue: u32 = "BARONG_PASSWORD_HASH_QUEUE", "64";
    /// `BARONG_APIKEY_REPLAY_STORE` (`redis` when `BARONG_REDIS_URL` is given, else `memory`):
    /// where replay protection remembers signed requests; `memory` is per instance.
    apikey_replay_store: ReplayStore = "BARONG_APIKEY_REPLAY_STORE", Dflt::Derived(default_replay_store);
    /// `BARONG_HEADER_READ_TIMEOUT` (`10` s): a client that has not sent a whole request head by then
    /// is disconnected (slowloris), on both listeners.
    header_read_timeout: u64 = "BARONG_HEADER_READ_TIMEOUT", "10", parse_positive_u64;
    /// `BARONG_MAX_HEADER_SIZE` (`65536` bytes, at least 8192): largest request head (431 above).
    max_header_size: u64 = "BARONG_MAX_HEADER_SIZE", "65536", parse_header_size;
    /// `BARONG_REQUEST_TIMEOUT` (`30` s): longest a REST request may take, body upload included
    /// (408 above).
    request_timeout: u64 = "BARONG_REQUEST_TIMEOUT", "30", parse_positive_u64;

    // ---- Barong: general ----------------------------------------------------------------------
    /// `BARONG_APP_NAME` (`Barong`): TOTP issuer; Twilio Verify service name.
    app_name: String = "BARONG_APP_NAME", "Barong";
    /// `BARONG_DOMAIN` (`openware.com`): prefix of e-mail links and the KYCAID callback URL.
    domain: String = "BARONG_DOMAIN", "openware.com";
    /// `BARONG_UID_PREFIX` (`ID`): user UID prefix, 2 to 6 letters (`^[A-z]{2,6}$`), stored upper-cased.
    uid_prefix: String = "BARONG_UID_PREFIX", "ID", parse_uid_prefix;
    /// `BARONG_SESSION_NAME` (`_barong_session`): session cookie name.
    session_name: String = "BARONG_SESSION_NAME", "_barong_session";
    /// `BARONG_SESSION_EXPIRE_TIME` (`1800` s): session inactivity timeout.
    session_expire_time: u64 = "BARONG_SESSION_EXPIRE_TIME", "1800";
    /// `BARONG_JWT_EXPIRE_TIME` (`3600` s): lifetime of authz JWTs and of confirmation/reset tokens.
    jwt_expire_time: u64 = "BARONG_JWT_EXPIRE_TIME", "3600";
    /// `BARONG_APIKEY_NONCE_LIFETIME` (`5000` ms): allowed clock difference of `X-Auth-Nonce`.
    apikey_nonce_lifetime: u64 = "BARONG_APIKEY_NONCE_LIFETIME", "5000";
    /// `BARONG_CSRF_PROTECTION` (`true`): require `X-CSRF-Token` on state-changing cookie requests.
    csrf_protection: bool = "BARONG_CSRF_PROTECTION", "true";
    /// `BARONG_GATEWAY` (`cloudflare`): `akamai` takes the client IP from `True-Client-IP`
    /// (sent by a trusted proxy).
    gateway: Gateway = "BARONG_GATEWAY", "cloudflare";
    /// `BARONG_TRUSTED_PROXIES` (loopback and private ranges, as Rails): the networks whose
    /// `X-Forwarded-For` is believed; a request from any other peer is its own client address.
    trusted_proxies: Vec<ipnet::IpNet> = "BARONG_TRUSTED_PROXIES", crate::domain::client_ip::DEFAULT_TRUSTED_PROXIES;
    /// `BARONG_TRUST_CLIENT_IP_HEADER` (`false`): also believe `Client-IP` from a trusted proxy.
    trust_client_ip_header: bool = "BARONG_TRUST_CLIENT_IP_HEADER", "false";
    /// `BARONG_KYC_PROVIDER` (`kycaid`).
    kyc_provider: KycProvider = "BARONG_KYC_PROVIDER", "kycaid";
    /// `BARONG_REQUIRED_DOCS_EXPIRE` (`true`): documents need a non-past `doc_expire`.
    required_docs_expire: bool = "BARONG_REQUIRED_DOCS_EXPIRE", "true";
    /// `BARONG_DOC_NUM_LIMIT` (`10`): documents per user.
    doc_num_limit: u32 = "BARONG_DOC_NUM_LIMIT", "10";
    /// `BARONG_GEOIP_LANG` (`en`): language of GeoIP country/continent names.
    geoip_lang: GeoipLang = "BARONG_GEOIP_LANG", "en";
    /// `BARONG_MAXMINDDB_PATH` (unset): MaxMind GeoLite2 database for restrictions.
    maxminddb_path: Option<PathBuf> = "BARONG_MAXMINDDB_PATH", "", parse_existing_file;
    /// `BARONG_PROFILE_DOUBLE_VERIFICATION` (`false`): a profile's author cannot verify it.
    profile_double_verification: bool = "BARONG_PROFILE_DOUBLE_VERIFICATION", "false";
    /// `BARONG_CRC32_SALT` (empty): salt of the searchable phone/document number indexes.
    crc32_salt: Secret = "BARONG_CRC32_SALT", "";
    /// `BARONG_API_DATA_MASKING_ENABLED` (`true`): mask personal data in user-facing entities.
    api_data_masking_enabled: bool = "BARONG_API_DATA_MASKING_ENABLED", "true";
    /// `BARONG_FIRST_REGISTRATION_SUPERADMIN` (`true`): the first user becomes an active superadmin.
    first_registration_superadmin: bool = "BARONG_FIRST_REGISTRATION_SUPERADMIN", "true";
    /// `BARONG_MGN_API_KEYS_USER` (`false`): management API key endpoints for users.
    mgn_api_keys_user: bool = "BARONG_MGN_API_KEYS_USER", "false";
    /// `BARONG_MGN_API_KEYS_SA` (`false`): management API key endpoints for service accounts.
    mgn_api_keys_sa: bool = "BARONG_MGN_API_KEYS_SA", "false";

    // ---- Barong: password ---------------------------------------------------------------------
    /// `BARONG_PASSWORD_REGEXP`: the regex source as given (no Ruby `(?-mix:` wrapping); it is known
    /// to compile with `fancy_regex`.
    password_regexp: String = "BARONG_PASSWORD_REGEXP", DEFAULT_PASSWORD_REGEXP, parse_password_regexp;
    /// `BARONG_PASSWORD_MIN_ENTROPY` (`14`): weaker passwords get `password.weak`.
    password_min_entropy: u32 = "BARONG_PASSWORD_MIN_ENTROPY", "14";
    /// `BARONG_PASSWORD_USE_DICTIONARY` (`true`): dictionary adjustment in the entropy.
    password_use_dictionary: bool = "BARONG_PASSWORD_USE_DICTIONARY", "true";

    // ---- Barong: captcha ----------------------------------------------------------------------
    /// `BARONG_CAPTCHA` (`none`).
    captcha: CaptchaType = "BARONG_CAPTCHA", "none";
    /// `BARONG_RECAPTCHA_SITE_KEY` (empty): public, shown as `captcha_id` by `/configs`.
    recaptcha_site_key: String = "BARONG_RECAPTCHA_SITE_KEY", "";
    /// `BARONG_RECAPTCHA_SECRET_KEY` (empty).
    recaptcha_secret_key: Secret = "BARONG_RECAPTCHA_SECRET_KEY", "";
    /// `BARONG_GEETEST_ID` (empty).
    geetest_id: String = "BARONG_GEETEST_ID", "";
    /// `BARONG_GEETEST_KEY` (empty).
    geetest_key: Secret = "BARONG_GEETEST_KEY", "";
    /// `BARONG_RECAPTCHA_VERIFY_URL` (Google's `siteverify`): where reCAPTCHA answers are checked.
    recaptcha_verify_url: String = "BARONG_RECAPTCHA_VERIFY_URL", "https://www.google.com/recaptcha/api/siteverify";
    /// `BARONG_GEETEST_API_URL` (`http://api.geetest.com`): base of GeeTest's `register.php` and `validate.php`.
    geetest_api_url: String = "BARONG_GEETEST_API_URL", "http://api.geetest.com";

    // ---- Barong: phone ------------------------------------------------------------------------
    /// `BARONG_PHONE_VERIFICATION` (`mock`); Twilio modes need account SID and auth token.
    phone_verification: PhoneVerification = "BARONG_PHONE_VERIFICATION", "mock";
    /// `BARONG_TWILIO_PHONE_NUMBER` (`+15005550000`): SMS sender.
    twilio_phone_number: String = "BARONG_TWILIO_PHONE_NUMBER", "+15005550000";
    /// `BARONG_TWILIO_ACCOUNT_SID` (empty).
    twilio_account_sid: String = "BARONG_TWILIO_ACCOUNT_SID", "";
    /// `BARONG_TWILIO_AUTH_TOKEN` (empty).
    twilio_auth_token: Secret = "BARONG_TWILIO_AUTH_TOKEN", "";
    /// `BARONG_TWILIO_SERVICE_SID` (empty: created at start in `twilio_verify` mode).
    twilio_service_sid: String = "BARONG_TWILIO_SERVICE_SID", "";
    /// `BARONG_SMS_CONTENT_TEMPLATE`: `{{code}}` is replaced by the phone code.
    sms_content_template: String = "BARONG_SMS_CONTENT_TEMPLATE", "Your verification code for Barong: {{code}}";
    /// `BARONG_TWILIO_API_URL` (`https://api.twilio.com`): base of Twilio's Messages API
    /// (`twilio_sms`); tests point it at a local fake.
    twilio_api_url: String = "BARONG_TWILIO_API_URL", "https://api.twilio.com";
    /// `BARONG_TWILIO_VERIFY_URL` (`https://verify.twilio.com`): base of Twilio Verify
    /// (`twilio_verify`).
    twilio_verify_url: String = "BARONG_TWILIO_VERIFY_URL", "https://verify.twilio.com";
    /// `BARONG_PHONE_RESEND_INTERVAL` (`30` s): least time between two codes to one phone.
    phone_resend_interval: u64 = "BARONG_PHONE_RESEND_INTERVAL", "30";
    /// `BARONG_PHONE_MAX_CODES_PER_HOUR` (`5`): most codes sent to one phone in an hour.
    phone_max_codes_per_hour: u64 = "BARONG_PHONE_MAX_CODES_PER_HOUR", "5", parse_positive_u64;

    // ---- Barong: storage and uploads ----------------------------------------------------------
    /// `BARONG_STORAGE_PROVIDER` (`local`; `google`, `aws`, `alicloud` in any case).
    storage_provider: StorageProvider = "BARONG_STORAGE_PROVIDER", "local";
    /// `BARONG_STORAGE_BUCKET_NAME` (`local`).
    storage_bucket_name: String = "BARONG_STORAGE_BUCKET_NAME", "local";
    /// `BARONG_STORAGE_ACCESS_KEY` (empty): the key id, not secret on its own.
    storage_access_key: String = "BARONG_STORAGE_ACCESS_KEY", "";
    /// `BARONG_STORAGE_SECRET_KEY` (empty).
    storage_secret_key: Secret = "BARONG_STORAGE_SECRET_KEY", "";
    /// `BARONG_STORAGE_ENDPOINT` (empty; AWS-compatible and AliCloud).
    storage_endpoint: String = "BARONG_STORAGE_ENDPOINT", "";
    /// `BARONG_STORAGE_SIGNATURE_VERSION` (`4`; AWS).
    storage_signature_version: u32 = "BARONG_STORAGE_SIGNATURE_VERSION", "4";
    /// `BARONG_STORAGE_REGION` (empty).
    storage_region: String = "BARONG_STORAGE_REGION", "";
    /// `BARONG_STORAGE_PATHSTYLE` (`false`): path-style bucket URLs.
    storage_pathstyle: bool = "BARONG_STORAGE_PATHSTYLE", "false";
    /// `BARONG_UPLOAD_SIZE_MIN_RANGE` (`1`): smallest upload, in **bytes** (Barong's actual unit).
    upload_size_min_range: u64 = "BARONG_UPLOAD_SIZE_MIN_RANGE", "1";
    /// `BARONG_UPLOAD_SIZE_MAX_RANGE` (`10`): largest upload, in megabytes.
    upload_size_max_range: u64 = "BARONG_UPLOAD_SIZE_MAX_RANGE", "10";
    /// `BARONG_UPLOAD_AUTH_URL_EXPIRATION` (`1` minute): signed URL lifetime for private buckets.
    upload_auth_url_expiration: u64 = "BARONG_UPLOAD_AUTH_URL_EXPIRATION", "1";
    /// `BARONG_UPLOAD_EXTENSION_WHITELIST` (`jpg, jpeg, png, pdf`).
    upload_extension_whitelist: Vec<String> = "BARONG_UPLOAD_EXTENSION_WHITELIST", "jpg, jpeg, png, pdf";

    // ---- Barong: infrastructure (kept for compatibility even where unused) --------------------
    /// `BARONG_REDIS_URL` (`redis://localhost:6379/1`).
    redis_url: String = "BARONG_REDIS_URL", "redis://localhost:6379/1";
    /// `BARONG_REDIS_CLUSTER` (`false`).
    redis_cluster: bool = "BARONG_REDIS_CLUSTER", "false";
    /// `BARONG_REDIS_PASSWORD` (empty).
    redis_password: Secret = "BARONG_REDIS_PASSWORD", "";
    /// `BARONG_VAULT_ADDRESS` (`http://localhost:8200`).
    vault_address: String = "BARONG_VAULT_ADDRESS", "http://localhost:8200";
    /// `BARONG_VAULT_TOKEN` (empty).
    vault_token: Secret = "BARONG_VAULT_TOKEN", "";
    /// `BARONG_VAULT_APP_NAME` (`barong`): prefix of Vault TOTP and transit keys.
    vault_app_name: String = "BARONG_VAULT_APP_NAME", "barong";
    /// `BARONG_EVENT_API_RABBITMQ_HOST` (`localhost`).
    event_api_rabbitmq_host: String = "BARONG_EVENT_API_RABBITMQ_HOST", "localhost";
    /// `BARONG_EVENT_API_RABBITMQ_PORT` (`5672`).
    event_api_rabbitmq_port: u16 = "BARONG_EVENT_API_RABBITMQ_PORT", "5672";
    /// `BARONG_EVENT_API_RABBITMQ_USERNAME` (`guest`).
    event_api_rabbitmq_username: String = "BARONG_EVENT_API_RABBITMQ_USERNAME", "guest";
    /// `BARONG_EVENT_API_RABBITMQ_PASSWORD` (`guest`).
    event_api_rabbitmq_password: Secret = "BARONG_EVENT_API_RABBITMQ_PASSWORD", "guest";
    /// `EVENT_API_RABBITMQ_URL` (no prefix; unset): overrides the four settings above for publishing.
    event_api_rabbitmq_url: Option<String> = "EVENT_API_RABBITMQ_URL", "";
    /// `BARONG_EVENT_API_ENABLED` (`false`; this server's switch, Barong always publishes): events
    /// are written to the outbox and delivered to RabbitMQ. A set `EVENT_API_RABBITMQ_URL` turns
    /// it on too. Off, no event is written anywhere.
    event_api_enabled: bool = "BARONG_EVENT_API_ENABLED", "false";
    /// `BARONG_EVENT_API_RETRY_MAX_BACKOFF` (`30` s): longest wait between two delivery attempts
    /// while RabbitMQ is unreachable (the wait starts at 1 s and doubles).
    event_api_retry_max_backoff: u64 = "BARONG_EVENT_API_RETRY_MAX_BACKOFF", "30", parse_positive_u64;
    /// `BARONG_EVENT_API_POLL_INTERVAL` (`200` ms): how often the event worker looks at the outbox.
    event_api_poll_interval: u64 = "BARONG_EVENT_API_POLL_INTERVAL", "200", parse_positive_u64;
    /// `BARONG_MANAGEMENT_API_FILE` (unset: no signer, every management call is refused): Barong's
    /// `config/management_api.yml` (keychain, jwt options, scopes).
    management_api_file: Option<PathBuf> = "BARONG_MANAGEMENT_API_FILE", "", parse_existing_file;
    /// `BARONG_SENTRY_DSN_BACKEND` (empty: no error reporting).
    sentry_dsn_backend: Secret = "BARONG_SENTRY_DSN_BACKEND", "";

    // ---- Barong: CORS -------------------------------------------------------------------------
    /// `BARONG_API_CORS_ORIGINS` (`*`): normalized `http(s)://host[:port]` origins, or `["*"]` when a
    /// `*` item comes before any malformed one (Barong stops at the first `*`).
    api_cors_origins: Vec<String> = "BARONG_API_CORS_ORIGINS", "*", parse_cors_origins;
    /// `BARONG_API_CORS_MAX_AGE` (`3600` s; a non-numeric value also means 3600, as in Barong).
    api_cors_max_age: u64 = "BARONG_API_CORS_MAX_AGE", "3600", parse_cors_max_age;
    /// `BARONG_API_CORS_ALLOW_CREDENTIALS` (`false`).
    api_cors_allow_credentials: bool = "BARONG_API_CORS_ALLOW_CREDENTIALS", "false";

    // ---- Barong: mail -------------------------------------------------------------------------
    /// `BARONG_SENDER_EMAIL` (`noreply@barong.io`).
    sender_email: String = "BARONG_SENDER_EMAIL", "noreply@barong.io";
    /// `BARONG_SENDER_NAME` (`Barong`).
    sender_name: String = "BARONG_SENDER_NAME", "Barong";
    /// `BARONG_SMTP_HOST` (`localhost`).
    smtp_host: String = "BARONG_SMTP_HOST", "localhost";
    /// `BARONG_SMTP_PORT` (`1025`).
    smtp_port: u16 = "BARONG_SMTP_PORT", "1025";
    /// `BARONG_SMTP_USER` (empty: no authentication).
    smtp_user: String = "BARONG_SMTP_USER", "";
    /// `BARONG_SMTP_PASSWORD` (empty).
    smtp_password: Secret = "BARONG_SMTP_PASSWORD", "";
    /// `BARONG_SMTP_LOGO_LINK`: logo in the mail templates.
    smtp_logo_link: String = "BARONG_SMTP_LOGO_LINK", "https://storage.cloud.google.com/public_peatio/logo.png";
    /// `BARONG_DEFAULT_LANGUAGE` (`en`): mail language when the request names none.
    default_language: String = "BARONG_DEFAULT_LANGUAGE", "en";
    /// `BARONG_MAIL_RETRY_BACKOFF` (`5` s): wait after the first failed delivery; doubles per attempt.
    mail_retry_backoff: u64 = "BARONG_MAIL_RETRY_BACKOFF", "5", parse_positive_u64;
    /// `BARONG_MAIL_RETRY_MAX_BACKOFF` (`600` s): the longest wait between two delivery attempts.
    mail_retry_max_backoff: u64 = "BARONG_MAIL_RETRY_MAX_BACKOFF", "600", parse_positive_u64;
    /// `BARONG_MAIL_POLL_INTERVAL` (`1000` ms): how often the mail worker looks for due mail.
    mail_poll_interval: u64 = "BARONG_MAIL_POLL_INTERVAL", "1000", parse_positive_u64;

    // ---- Barong: KYCAID and Auth0 -------------------------------------------------------------
    /// `BARONG_KYCAID_AUTHORIZATION_TOKEN` (empty).
    kycaid_authorization_token: Secret = "BARONG_KYCAID_AUTHORIZATION_TOKEN", "";
    /// `BARONG_KYCAID_SANDBOX_MODE` (`true`).
    kycaid_sandbox_mode: bool = "BARONG_KYCAID_SANDBOX_MODE", "true";
    /// `BARONG_KYCAID_API_ENDPOINT` (`https://api.kycaid.com/`).
    kycaid_api_endpoint: String = "BARONG_KYCAID_API_ENDPOINT", "https://api.kycaid.com/";
    /// `BARONG_KYCAID_FORM_ID` (empty).
    kycaid_form_id: String = "BARONG_KYCAID_FORM_ID", "";
    /// `BARONG_AUTH0_DOMAIN` (empty: Auth0 login disabled).
    auth0_domain: String = "BARONG_AUTH0_DOMAIN", "";
    /// `BARONG_AUTH0_CLIENT_ID` (empty).
    auth0_client_id: String = "BARONG_AUTH0_CLIENT_ID", "";

    // ---- Barong: config files -----------------------------------------------------------------
    /// `BARONG_CONFIG` (unset: built-in copy of Barong's `config/barong.yml`), loaded into `barong_yml`.
    config: Option<PathBuf> = "BARONG_CONFIG", "", parse_existing_file;
    /// `BARONG_SEEDS_FILE` (unset: built-in default seeds).
    seeds_file: Option<PathBuf> = "BARONG_SEEDS_FILE", "", parse_existing_file;
    /// `BARONG_AUTHZ_RULES_FILE` (unset: built-in copy of Barong's `config/authz_rules.yml`).
    authz_rules_file: Option<PathBuf> = "BARONG_AUTHZ_RULES_FILE", "", parse_existing_file;

    // ---- Barong: keys and bearer verification (peatio-core authenticator, unprefixed) ---------
    /// `SECRET_KEY_BASE` (unset): Barong's PII encryption master secret, for reading Barong's data.
    secret_key_base: Option<Secret> = "SECRET_KEY_BASE", "";
    /// `JWT_ISSUER` (unset: `iss` not verified).
    jwt_issuer: Option<String> = "JWT_ISSUER", "";
    /// `JWT_AUDIENCE` (unset: `aud` not verified): comma list.
    jwt_audience: Vec<String> = "JWT_AUDIENCE", "";
    /// `JWT_ALGORITHM` (follows `BARONG_JWT_ALGORITHM`): must match it, since the resource APIs verify
    /// the tokens this server signs. TOML key `jwt_verify_algorithm` (`jwt_algorithm` is the signer's).
    jwt_verify_algorithm: JwtAlgorithm = "JWT_ALGORITHM", Dflt::Derived(default_jwt_verify_algorithm);
    /// `JWT_DEFAULT_LEEWAY` (unset), seconds.
    jwt_default_leeway: Option<u64> = "JWT_DEFAULT_LEEWAY", "";
    /// `JWT_ISSUED_AT_LEEWAY` (unset), seconds.
    jwt_issued_at_leeway: Option<u64> = "JWT_ISSUED_AT_LEEWAY", "";
    /// `JWT_EXPIRATION_LEEWAY` (unset), seconds.
    jwt_expiration_leeway: Option<u64> = "JWT_EXPIRATION_LEEWAY", "";
    /// `JWT_NOT_BEFORE_LEEWAY` (unset), seconds.
    jwt_not_before_leeway: Option<u64> = "JWT_NOT_BEFORE_LEEWAY", "";
}

/// Barong's default password policy (lower, upper, digit, printable; 8 to 80 characters).
const DEFAULT_PASSWORD_REGEXP: &str =
    r"^(?=.*[[:lower:]])(?=.*[[:upper:]])(?=.*[[:digit:]])(?=.*[[:graph:]]).{8,80}$";

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
        self.env == Environment::Production
    }

    /// The 32 bytes of `BARONG_ENCRYPTION_KEY` (hex, or standard / URL-safe base64), when given.
    pub fn encryption_key_bytes(&self) -> Option<[u8; 32]> {
        self.encryption_key
            .as_ref()
            .and_then(|key| decode_key32(key.expose()))
    }

    /// The upload directory when `BARONG_UPLOADS_URL` is a `file://` URL (relative paths allowed).
    pub fn uploads_dir(&self) -> Option<PathBuf> {
        self.uploads_url.strip_prefix("file://").map(PathBuf::from)
    }

    /// The session policies: Barong's binding and expiry, and the client pattern's, if any.
    pub fn session_policies(&self) -> crate::domain::SessionPolicies {
        let expire_time = |seconds: u64| i64::try_from(seconds).unwrap_or(i64::MAX);
        let default = crate::domain::SessionPolicy {
            binding: self.session_binding,
            expire_time: expire_time(self.session_expire_time),
        };
        // The pattern was compiled once when the setting was read; an empty one is no pattern.
        let client = regex::Regex::new(&self.session_client_agent)
            .ok()
            .filter(|_| !self.session_client_agent.is_empty())
            .map(|pattern| {
                let seconds = match self.session_client_expire_time {
                    0 => self.session_expire_time,
                    seconds => seconds,
                };
                let policy = crate::domain::SessionPolicy {
                    binding: self.session_client_binding,
                    expire_time: expire_time(seconds),
                };
                (pattern, policy)
            });
        crate::domain::SessionPolicies { default, client }
    }

    /// Whose forwarding headers the client address is read from.
    pub fn trusted_proxies(&self) -> crate::domain::client_ip::TrustedProxies {
        crate::domain::client_ip::TrustedProxies {
            networks: self.trusted_proxies.clone(),
            client_ip_header: self.trust_client_ip_header,
            true_client_ip: self.gateway == Gateway::Akamai,
        }
    }

    /// Whether CORS allows any origin (`*` in `BARONG_API_CORS_ORIGINS`).
    pub fn cors_allows_any_origin(&self) -> bool {
        self.api_cors_origins.iter().any(|origin| origin == "*")
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
        config.barong_yml = config.read_barong_yml()?;
        Ok(config)
    }

    /// Production must not run on generated keys or on the default embedded database by accident.
    fn check_production(&self, src: &Sources) -> Result<(), ConfigError> {
        if !self.is_production() {
            return Ok(());
        }
        if self.jwt_private_key_path.is_none() {
            return Err(ConfigError::missing("JWT_PRIVATE_KEY_PATH", PRODUCTION));
        }
        if self.encryption_key.is_none() {
            return Err(ConfigError::missing("BARONG_ENCRYPTION_KEY", PRODUCTION));
        }
        if src.given("BARONG_DATABASE_URL").is_none() {
            return Err(ConfigError::missing("BARONG_DATABASE_URL", PRODUCTION));
        }
        // Settings meant for a developer's machine that would open a hole in front of users.
        if self.phone_verification == PhoneVerification::Mock {
            return Err(ConfigError::invalid(
                "BARONG_PHONE_VERIFICATION",
                Some("mock"),
                "mock accepts any code; use twilio_sms or twilio_verify when BARONG_ENV=production",
            ));
        }
        if self.cors_allows_any_origin() && self.api_cors_allow_credentials {
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
            self.first_registration_superadmin = false;
        }
    }

    /// Barong raises 'Invalid twilio config' at boot for Twilio modes without SID or token.
    fn check_phone(&self) -> Result<(), ConfigError> {
        if self.phone_verification == PhoneVerification::Mock {
            return Ok(());
        }
        let why = format!(
            "required when BARONG_PHONE_VERIFICATION={}",
            self.phone_verification
        );
        if self.twilio_account_sid.trim().is_empty() {
            return Err(ConfigError::missing("BARONG_TWILIO_ACCOUNT_SID", &why));
        }
        if self.twilio_auth_token.expose().trim().is_empty() {
            return Err(ConfigError::missing("BARONG_TWILIO_AUTH_TOKEN", &why));
        }
        Ok(())
    }

    /// A certificate without its key (or the reverse) cannot serve HTTPS; client certificates
    /// (mTLS) are only asked for over HTTPS.
    fn check_tls(&self) -> Result<(), ConfigError> {
        let pairs = [
            (
                &self.tls_cert_path,
                "BARONG_TLS_CERT_PATH",
                &self.tls_key_path,
                "BARONG_TLS_KEY_PATH",
            ),
            (
                &self.authz_tls_cert_path,
                "BARONG_AUTHZ_TLS_CERT_PATH",
                &self.authz_tls_key_path,
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
        let authz_tls = self.tls_cert_path.is_some() || self.authz_tls_cert_path.is_some();
        if !authz_tls && self.authz_client_ca_path.is_some() {
            let why = "required when BARONG_AUTHZ_CLIENT_CA_PATH is set";
            return Err(ConfigError::missing("BARONG_TLS_CERT_PATH", why));
        }
        Ok(())
    }

    /// The resource APIs verify tokens signed by our own key: another algorithm would reject them all.
    fn check_jwt(&self) -> Result<(), ConfigError> {
        if self.jwt_verify_algorithm == self.jwt_algorithm {
            return Ok(());
        }
        let problem = format!(
            "expected {}, the algorithm of BARONG_JWT_ALGORITHM (this server verifies its own tokens)",
            self.jwt_algorithm
        );
        let shown = self.jwt_verify_algorithm.as_str();
        Err(ConfigError::invalid("JWT_ALGORITHM", Some(shown), &problem))
    }

    /// Both listeners on one address would fail later with a less helpful bind error (port 0 asks
    /// the system for a free port, so it may repeat).
    fn check_addrs(&self) -> Result<(), ConfigError> {
        if let Some(grpc) = self.authz_grpc_addr
            && grpc.port() != 0
            && (grpc == self.authz_addr || grpc == self.api_addr)
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
        if self.api_addr != self.authz_addr || self.api_addr.port() == 0 {
            return Ok(());
        }
        let shown = self.api_addr.to_string();
        let problem = "expected an address different from BARONG_AUTHZ_ADDR";
        Err(ConfigError::invalid(
            "BARONG_API_ADDR",
            Some(&shown),
            problem,
        ))
    }

    fn read_barong_yml(&self) -> Result<BarongYml, ConfigError> {
        let Some(path) = &self.config else {
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
    fn default() -> Self {
        Config::from_sources(&HashMap::new(), None)
            .expect("the built-in defaults are valid (tested)")
    }
}

/// The environment and the file, as raw text per setting name.
struct Sources<'a> {
    env: &'a HashMap<String, String>,
    file: HashMap<&'static str, String>,
}

impl Sources<'_> {
    /// The explicitly given value: the environment wins over the file.
    fn given(&self, name: &str) -> Option<&str> {
        self.env
            .get(name)
            .or_else(|| self.file.get(name))
            .map(String::as_str)
    }

    /// The given value or the default, before parsing.
    fn resolved(&self, name: &str) -> String {
        match self.given(name) {
            Some(value) => value.to_owned(),
            None => match default_of(name) {
                Dflt::Lit(text) => text.to_owned(),
                Dflt::Derived(derive) => derive(self),
            },
        }
    }

    fn get<T: Value>(
        &self,
        name: &'static str,
        parse: fn(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        let raw = self.resolved(name);
        parse(&raw).map_err(|problem| {
            let shown = (!T::SECRET).then(|| redact_url_password(&raw));
            ConfigError::invalid(name, shown.as_deref(), &problem)
        })
    }
}

fn default_database_url(src: &Sources) -> String {
    let dir = PathBuf::from(src.resolved("BARONG_DATA_DIR"));
    format!("sqlite://{}", dir.join("barong.db").display())
}

fn default_uploads_url(src: &Sources) -> String {
    let dir = PathBuf::from(src.resolved("BARONG_DATA_DIR"));
    format!("file://{}", dir.join("uploads").display())
}

fn default_log_format(src: &Sources) -> String {
    let production = src.resolved("BARONG_ENV") == Environment::Production.as_str();
    let format = if production {
        LogFormat::Json
    } else {
        LogFormat::Text
    };
    format.as_str().to_owned()
}

fn default_replay_store(src: &Sources) -> String {
    let store = if src.given("BARONG_REDIS_URL").is_some() {
        ReplayStore::Redis
    } else {
        ReplayStore::Memory
    };
    store.as_str().to_owned()
}

fn default_jwt_verify_algorithm(src: &Sources) -> String {
    src.resolved("BARONG_JWT_ALGORITHM")
}

/// Reads our settings from the process environment; a non-UTF-8 value is an error, not a guess.
fn process_env() -> Result<HashMap<String, String>, ConfigError> {
    let mut env = HashMap::new();
    for &name in NAMES {
        match std::env::var(name) {
            Ok(value) => {
                env.insert(name.to_owned(), value);
            }
            Err(std::env::VarError::NotPresent) => {}
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(ConfigError::invalid(name, None, "expected UTF-8 text"));
            }
        }
    }
    Ok(env)
}

/// The TOML key of a setting: its name lower-cased without `BARONG_`. `JWT_ALGORITHM` would collide
/// with `BARONG_JWT_ALGORITHM`, so it is `jwt_verify_algorithm`.
fn toml_key(name: &str) -> String {
    if name == "JWT_ALGORITHM" {
        return "jwt_verify_algorithm".into();
    }
    name.strip_prefix("BARONG_")
        .unwrap_or(name)
        .to_ascii_lowercase()
}

/// Parses the TOML file into raw texts per setting name; unknown keys are errors (typos must not
/// silently fall back to defaults).
fn parse_toml(text: &str, origin: &str) -> Result<HashMap<&'static str, String>, ConfigError> {
    let table: toml::Table = toml::from_str(text).map_err(|e| {
        let head = e.span().and_then(|span| text.get(..span.start));
        let line = head.map(|head| head.matches('\n').count() + 1);
        let at = line.map(|n| format!(" at line {n}")).unwrap_or_default();
        ConfigError::new(
            "config file",
            format!("invalid {origin}: {}{at}", e.message()),
        )
    })?;
    let mut values = HashMap::new();
    for (key, value) in &table {
        let Some(&name) = NAMES.iter().find(|name| toml_key(name) == *key) else {
            let message = format!(
                "unknown key {key:?} in {origin}: expected a setting name lower-cased without \
                 BARONG_, e.g. session_expire_time"
            );
            return Err(ConfigError::new(key, message));
        };
        let text = toml_text(value).ok_or_else(|| {
            let problem = format!("key {key} in {origin}: expected a string, integer or boolean");
            ConfigError::invalid(name, None, &problem)
        })?;
        values.insert(name, text);
    }
    Ok(values)
}

/// TOML scalars become the text an environment variable would hold; arrays become comma lists.
fn toml_text(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(text) => Some(text.clone()),
        toml::Value::Integer(number) => Some(number.to_string()),
        toml::Value::Boolean(flag) => Some(flag.to_string()),
        toml::Value::Array(items) => {
            let texts: Option<Vec<String>> = items
                .iter()
                .map(|item| match item {
                    toml::Value::Array(_) => None,
                    scalar => toml_text(scalar),
                })
                .collect();
            texts.map(|texts| texts.join(","))
        }
        _ => None,
    }
}

/// Hides the password of `scheme://user:password@host...` and of a `password=` query parameter,
/// so database, Redis and RabbitMQ URLs can be shown and echoed in errors.
fn redact_url_password(text: &str) -> String {
    let Some(start) = text.find("://").map(|i| i + 3) else {
        return text.to_owned();
    };
    let authority_end = text[start..]
        .find(['/', '?', '#'])
        .map_or(text.len(), |i| start + i);
    let mut out = text.to_owned();
    if let Some(at) = text[start..authority_end].rfind('@').map(|i| start + i)
        && let Some(colon) = text[start..at].find(':').map(|i| start + i)
    {
        out = format!("{}:[redacted]{}", &text[..colon], &text[at..]);
    }
    redact_password_param(&out)
}

fn redact_password_param(text: &str) -> String {
    let Some((head, query)) = text.split_once('?') else {
        return text.to_owned();
    };
    let params: Vec<String> = query
        .split('&')
        .map(|param| match param.split_once('=') {
            Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=[redacted]"),
            _ => param.to_owned(),
        })
        .collect();
    format!("{head}?{}", params.join("&"))
}

fn parse_existing_file(raw: &str) -> Result<Option<PathBuf>, String> {
    if raw.is_empty() {
        return Ok(None);
    }
    let path = PathBuf::from(raw);
    if path.is_file() {
        Ok(Some(path))
    } else {
        Err("expected an existing file".into())
    }
}

/// hyper cannot read a request head into less than 8 KiB.
fn parse_header_size(raw: &str) -> Result<u64, String> {
    match u64::parse(raw)? {
        value if value >= 8192 => Ok(value),
        _ => Err("expected a number of bytes of at least 8192".into()),
    }
}

fn parse_positive_u32(raw: &str) -> Result<u32, String> {
    match u32::parse(raw)? {
        0 => Err("expected a whole number greater than 0".into()),
        value => Ok(value),
    }
}

fn parse_positive_u64(raw: &str) -> Result<u64, String> {
    match u64::parse(raw)? {
        0 => Err("expected a whole number greater than 0".into()),
        value => Ok(value),
    }
}

/// Barong checks `^[A-z]{2,6}$`; note that `[A-z]` also admits `[ \ ] ^ _` and the backtick.
fn parse_uid_prefix(raw: &str) -> Result<String, String> {
    let length_ok = (2..=6).contains(&raw.chars().count());
    if length_ok && raw.chars().all(|c| ('A'..='z').contains(&c)) {
        Ok(raw.to_ascii_uppercase())
    } else {
        Err("expected 2 to 6 letters (^[A-z]{2,6}$)".into())
    }
}

fn parse_password_regexp(raw: &str) -> Result<String, String> {
    match fancy_regex::Regex::new(raw) {
        Ok(_) => Ok(raw.to_owned()),
        Err(e) => Err(format!("expected a valid regular expression ({e})")),
    }
}

fn parse_agent_pattern(raw: &str) -> Result<String, String> {
    match regex::Regex::new(raw) {
        Ok(_) => Ok(raw.to_owned()),
        Err(e) => Err(format!("expected a valid regular expression ({e})")),
    }
}

fn parse_database_url(raw: &str) -> Result<String, String> {
    let schemes = ["sqlite://", "postgres://", "postgresql://"];
    let has_rest = |scheme: &&str| {
        raw.strip_prefix(*scheme)
            .is_some_and(|rest| !rest.is_empty())
    };
    if schemes.iter().any(has_rest) {
        Ok(raw.to_owned())
    } else {
        Err("expected a sqlite://, postgres:// or postgresql:// URL".into())
    }
}

fn parse_uploads_url(raw: &str) -> Result<String, String> {
    let schemes = ["file://", "s3://", "gs://"];
    let has_rest = |scheme: &&str| {
        raw.strip_prefix(*scheme)
            .is_some_and(|rest| !rest.is_empty())
    };
    if schemes.iter().any(has_rest) {
        Ok(raw.to_owned())
    } else {
        Err("expected a file://, s3:// or gs:// URL".into())
    }
}

fn parse_encryption_key(raw: &str) -> Result<Option<Secret>, String> {
    let key = raw.trim();
    if key.is_empty() {
        return Ok(None);
    }
    match decode_key32(key) {
        Some(_) => Ok(Some(Secret::new(key))),
        None => Err("expected 32 bytes as 64 hex characters or base64".into()),
    }
}

/// Barong stops at the first `*` (any origin) and aborts on a malformed origin before it. Origins
/// are normalized as browsers send them (lower-case host, no default port, no trailing slash).
fn parse_cors_origins(raw: &str) -> Result<Vec<String>, String> {
    let mut origins = Vec::new();
    for item in split_list(raw) {
        if item == "*" {
            return Ok(vec!["*".into()]);
        }
        let origin = parse_cors_origin(&item).ok_or_else(|| {
            format!("expected a comma list of http(s)://host[:port] origins or *, got {item:?}")
        })?;
        origins.push(origin);
    }
    Ok(origins)
}

fn parse_cors_origin(item: &str) -> Option<String> {
    let url = url::Url::parse(item).ok()?;
    let plain = url.username().is_empty()
        && url.password().is_none()
        && url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none();
    let host_ok = match url.host()? {
        url::Host::Domain(domain) => domain.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        }),
        url::Host::Ipv4(_) | url::Host::Ipv6(_) => true,
    };
    let scheme_ok = matches!(url.scheme(), "http" | "https");
    (plain && host_ok && scheme_ok).then(|| url.origin().ascii_serialization())
}

/// Barong's quirk: anything but digits (or an empty value) means the default 3600.
fn parse_cors_max_age(raw: &str) -> Result<u64, String> {
    Ok(u64::parse(raw).unwrap_or(3600))
}

/// Decodes a 32-byte key given as 64 hex characters or as base64 (standard or URL-safe alphabet,
/// with or without its single `=` of padding).
fn decode_key32(text: &str) -> Option<[u8; 32]> {
    if text.len() == 64 {
        return decode_hex32(text);
    }
    decode_base64_32(text)
}

fn decode_hex32(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(text.as_bytes().chunks(2)) {
        let high = char::from(pair[0]).to_digit(16)?;
        let low = char::from(pair[1]).to_digit(16)?;
        *byte = u8::try_from(high * 16 + low).ok()?;
    }
    Some(out)
}

fn decode_base64_32(text: &str) -> Option<[u8; 32]> {
    // 32 bytes are 43 base64 characters (256 of 258 bits) plus one `=`.
    let body = text.strip_suffix('=').unwrap_or(text);
    if body.len() != 43 || (body.contains(['+', '/']) && body.contains(['-', '_'])) {
        return None;
    }
    let mut bytes = Vec::with_capacity(32);
    let (mut bits, mut count) = (0u32, 0u32);
    for c in body.bytes() {
        bits = (bits << 6) | base64_sextet(c)?;
        count += 6;
        if count >= 8 {
            count -= 8;
            bytes.push(u8::try_from(bits >> count).ok()?);
            bits &= (1 << count) - 1;
        }
    }
    // The two spare bits must be zero, or strict decoders would reject the key later.
    if bits != 0 {
        return None;
    }
    bytes.try_into().ok()
}

fn base64_sextet(c: u8) -> Option<u32> {
    let value = match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' | b'-' => 62,
        b'/' | b'_' => 63,
        _ => return None,
    };
    Some(u32::from(value))
}

/// Barong's `config/barong.yml` (`BARONG_CONFIG`): lists that drive activation, state triggers,
/// document types, data storage titles, captcha and profile verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BarongYml {
    /// Private labels (key, value) a user needs to become `active`; default `email: verified`.
    pub activation_requirements: Vec<(String, String)>,
    /// Label keys forcing a state, in file order: (state, label keys).
    pub state_triggers: Vec<(String, Vec<String>)>,
    /// Allowed `doc_type` values.
    pub document_types: Vec<String>,
    /// Allowed data storage titles; empty by default.
    pub user_storage_titles: Vec<String>,
    /// Endpoint names where captcha is enforced (when `BARONG_CAPTCHA` is not `none`).
    pub captcha_protected_endpoints: Vec<String>,
    /// Roles exempt from profile double verification.
    pub profile_verification_roles: Vec<String>,
}

impl Default for BarongYml {
    /// The contents of Barong's shipped `config/barong.yml`.
    fn default() -> Self {
        let strings = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect();
        let trigger = |state: &str, labels: &[&str]| (state.to_owned(), strings(labels));
        Self {
            activation_requirements: default_activation_requirements(),
            state_triggers: vec![
                trigger("banned", &["ban", "fraud"]),
                trigger("deleted", &["delete"]),
                trigger("locked", &["suspicious", "lock"]),
            ],
            document_types: strings(&[
                "Passport",
                "Identity card",
                "Driver license",
                "Utility Bill",
                "Residental",
                "Institutional",
                "Address",
            ]),
            user_storage_titles: Vec::new(),
            captcha_protected_endpoints: strings(&[
                "user_create",
                "session_create",
                "password_reset",
                "email_confirmation",
            ]),
            profile_verification_roles: strings(&["superadmin"]),
        }
    }
}

fn default_activation_requirements() -> Vec<(String, String)> {
    vec![("email".into(), "verified".into())]
}

impl BarongYml {
    /// Parses a barong.yml document. A key that is absent keeps its default, except
    /// `captcha_protected_endpoints`: Barong protects nothing when that list is absent.
    /// A key present but empty (`null`) means an empty list, except `activation_requirements`,
    /// which Barong then replaces by `email: verified`. Unknown keys are ignored, as in Barong.
    pub fn from_yaml(text: &str) -> Result<Self, ConfigError> {
        Self::parse(text).map_err(|problem| ConfigError::invalid("BARONG_CONFIG", None, &problem))
    }

    fn parse(text: &str) -> Result<Self, String> {
        let document: Yaml =
            serde_yaml_ng::from_str(text).map_err(|e| format!("expected a YAML document ({e})"))?;
        let mapping = match document {
            Yaml::Null => serde_yaml_ng::Mapping::new(),
            Yaml::Mapping(mapping) => mapping,
            _ => return Err("expected a YAML mapping of barong.yml keys".into()),
        };
        let mut yml = Self {
            captcha_protected_endpoints: Vec::new(),
            ..Self::default()
        };
        for (key, value) in &mapping {
            yml.set(key.as_str().unwrap_or_default(), value)?;
        }
        Ok(yml)
    }

    fn set(&mut self, key: &str, value: &Yaml) -> Result<(), String> {
        match key {
            "activation_requirements" if value.is_null() => {
                self.activation_requirements = default_activation_requirements();
            }
            "activation_requirements" => self.activation_requirements = yaml_pairs(key, value)?,
            "state_triggers" => self.state_triggers = yaml_triggers(key, value)?,
            "document_types" => self.document_types = yaml_list(key, value)?,
            "user_storage_titles" => self.user_storage_titles = yaml_list(key, value)?,
            "captcha_protected_endpoints" => {
                self.captcha_protected_endpoints = yaml_list(key, value)?;
            }
            "profile_verification_roles" => {
                self.profile_verification_roles = yaml_list(key, value)?;
            }
            _ => {}
        }
        Ok(())
    }
}

fn yaml_scalar(value: &Yaml) -> Option<String> {
    match value {
        Yaml::String(text) => Some(text.clone()),
        Yaml::Number(number) => Some(number.to_string()),
        Yaml::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

fn yaml_list(key: &str, value: &Yaml) -> Result<Vec<String>, String> {
    let problem = || format!("key {key}: expected a list of strings");
    match value {
        Yaml::Null => Ok(Vec::new()),
        Yaml::Sequence(items) => items
            .iter()
            .map(|item| yaml_scalar(item).ok_or_else(problem))
            .collect(),
        _ => Err(problem()),
    }
}

fn yaml_pairs(key: &str, value: &Yaml) -> Result<Vec<(String, String)>, String> {
    let problem = || format!("key {key}: expected a mapping of label key to label value");
    let Yaml::Mapping(mapping) = value else {
        return Err(problem());
    };
    mapping
        .iter()
        .map(|(k, v)| yaml_scalar(k).zip(yaml_scalar(v)).ok_or_else(problem))
        .collect()
}

fn yaml_triggers(key: &str, value: &Yaml) -> Result<Vec<(String, Vec<String>)>, String> {
    let problem = || format!("key {key}: expected a mapping of state to a list of label keys");
    match value {
        Yaml::Null => Ok(Vec::new()),
        Yaml::Mapping(mapping) => mapping
            .iter()
            .map(|(state, labels)| {
                let state = yaml_scalar(state).ok_or_else(problem)?;
                Ok((state, yaml_list(key, labels).map_err(|_| problem())?))
            })
            .collect(),
        _ => Err(problem()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_sources(&env(pairs), None)
    }

    fn error(pairs: &[(&str, &str)]) -> ConfigError {
        load(pairs).expect_err("the configuration should be rejected")
    }

    /// A file removed when the test ends (no tempfile crate in this module's dependencies).
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(contents: &str) -> Self {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path =
                std::env::temp_dir().join(format!("barong-config-{}-{n}", std::process::id()));
            std::fs::write(&path, contents).expect("write temp file");
            Self(path)
        }

        fn path(&self) -> &str {
            self.0.to_str().expect("UTF-8 temp path")
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    const HEX_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    #[test]
    fn defaults_load_from_an_empty_map() {
        let c = load(&[]).unwrap();
        assert_eq!(c.env, Environment::Development);
        assert_eq!(c.session_expire_time, 1800);
        assert_eq!(c.jwt_expire_time, 3600);
        assert_eq!(c.apikey_nonce_lifetime, 5000);
        assert_eq!(c.uid_prefix, "ID");
        assert_eq!(c.authz_addr, "127.0.0.1:8002".parse().unwrap());
        assert_eq!(c.api_addr, "127.0.0.1:8001".parse().unwrap());
        assert_eq!(c.database_url, "sqlite://data/barong.db");
        assert_eq!(c.data_dir, PathBuf::from("data"));
        assert_eq!(c.uploads_url, "file://data/uploads");
        assert_eq!(c.uploads_dir(), Some(PathBuf::from("data/uploads")));
        assert_eq!(c.jwt_algorithm, JwtAlgorithm::Rs256);
        assert_eq!(c.jwt_verify_algorithm, JwtAlgorithm::Rs256);
        assert_eq!(c.log_format, LogFormat::Text);
        assert_eq!(c.session_name, "_barong_session");
        assert!(c.csrf_protection);
        assert_eq!(c.gateway, Gateway::Cloudflare);
        assert_eq!(c.kyc_provider, KycProvider::Kycaid);
        assert_eq!(c.captcha, CaptchaType::None);
        assert_eq!(c.phone_verification, PhoneVerification::Mock);
        assert_eq!(c.storage_provider, StorageProvider::Local);
        assert_eq!(c.geoip_lang, GeoipLang::En);
        assert_eq!(c.password_regexp, DEFAULT_PASSWORD_REGEXP);
        assert_eq!(c.password_min_entropy, 14);
        assert_eq!(c.doc_num_limit, 10);
        assert_eq!(c.smtp_host, "localhost");
        assert_eq!(c.smtp_port, 1025);
        assert_eq!(c.event_api_rabbitmq_password.expose(), "guest");
        assert_eq!(c.api_cors_origins, vec!["*"]);
        assert!(c.cors_allows_any_origin());
        assert_eq!(c.api_cors_max_age, 3600);
        assert_eq!(
            c.upload_extension_whitelist,
            vec!["jpg", "jpeg", "png", "pdf"]
        );
        assert_eq!(c.max_body_size, 1_048_576);
        assert_eq!(c.db_pool_size, 16);
        assert_eq!(c.db_connect_timeout, 2000);
        assert_eq!(c.seeds_file, None);
        assert_eq!(c.jwt_private_key_path, None);
        assert_eq!(c.encryption_key, None);
        assert_eq!(c.jwt_audience, Vec::<String>::new());
        assert_eq!(c.jwt_issuer, None);
        assert_eq!(c.barong_yml, BarongYml::default());
        assert!(!c.is_production());
        assert_eq!(Config::default(), c);
    }

    #[test]
    fn default_password_regexp_compiles_and_matches() {
        let re = fancy_regex::Regex::new(DEFAULT_PASSWORD_REGEXP).unwrap();
        assert!(re.is_match("Password1!").unwrap());
        assert!(!re.is_match("password1").unwrap());
        assert!(!re.is_match("Sh0rt").unwrap());
    }

    #[test]
    fn environment_overrides_file() {
        let file = "session_expire_time = 900\nuid_prefix = \"ab\"\n";
        let vars = env(&[("BARONG_SESSION_EXPIRE_TIME", "60")]);
        let c = Config::from_sources(&vars, Some(file)).unwrap();
        assert_eq!(c.session_expire_time, 60);
        assert_eq!(c.uid_prefix, "AB");
    }

    #[test]
    fn file_only_values_of_every_toml_type() {
        let file = r#"
            session_expire_time = 1200
            csrf_protection = false
            database_url = "postgres://barong@db/barong"
            api_cors_origins = ["https://a.example.com", "http://b.example.com:8080"]
            jwt_audience = "peatio, barong"
            jwt_verify_algorithm = "RS256"
            event_api_rabbitmq_url = "amqp://guest:guest@mq:5672"
        "#;
        let c = Config::from_sources(&HashMap::new(), Some(file)).unwrap();
        assert_eq!(c.session_expire_time, 1200);
        assert!(!c.csrf_protection);
        assert_eq!(c.database_url, "postgres://barong@db/barong");
        let origins = vec!["https://a.example.com", "http://b.example.com:8080"];
        assert_eq!(c.api_cors_origins, origins);
        assert_eq!(c.jwt_audience, vec!["peatio", "barong"]);
        assert_eq!(
            c.event_api_rabbitmq_url.as_deref(),
            Some("amqp://guest:guest@mq:5672")
        );
    }

    #[test]
    fn load_reads_a_toml_file() {
        let file = TempFile::new("smtp_host = \"mail.internal\"\n");
        let c = Config::load(Some(Path::new(file.path()))).unwrap();
        if std::env::var_os("BARONG_SMTP_HOST").is_none() {
            assert_eq!(c.smtp_host, "mail.internal");
        }
        let missing = Config::load(Some(Path::new("/nonexistent/barong.toml"))).unwrap_err();
        assert!(
            missing.message.contains("/nonexistent/barong.toml"),
            "{missing}"
        );
    }

    #[test]
    fn bad_bool() {
        let e = error(&[("BARONG_CSRF_PROTECTION", "yes")]);
        assert_eq!(
            e.to_string(),
            r#"invalid BARONG_CSRF_PROTECTION="yes": expected true or false"#
        );
        assert_eq!(e.setting, "BARONG_CSRF_PROTECTION");
        error(&[("BARONG_REDIS_CLUSTER", "TRUE")]);
        error(&[("BARONG_MGN_API_KEYS_SA", "")]);
    }

    #[test]
    fn bad_integer() {
        let e = error(&[("BARONG_SESSION_EXPIRE_TIME", "30m")]);
        assert_eq!(e.setting, "BARONG_SESSION_EXPIRE_TIME");
        assert!(
            e.to_string().starts_with(
                r#"invalid BARONG_SESSION_EXPIRE_TIME="30m": expected a whole number"#
            )
        );
        error(&[("BARONG_DOC_NUM_LIMIT", "-1")]);
        error(&[("BARONG_SMTP_PORT", "70000")]);
        error(&[("BARONG_DB_POOL_SIZE", "0")]);
        error(&[("JWT_DEFAULT_LEEWAY", "ten")]);
        let c = load(&[("JWT_EXPIRATION_LEEWAY", "30")]).unwrap();
        assert_eq!(c.jwt_expiration_leeway, Some(30));
    }

    #[test]
    fn bad_enum() {
        let e = error(&[("BARONG_JWT_ALGORITHM", "HS1")]);
        assert_eq!(
            e.to_string(),
            r#"invalid BARONG_JWT_ALGORITHM="HS1": expected one of RS256, ES256, EdDSA"#
        );
        error(&[("BARONG_ENV", "staging")]);
        error(&[("BARONG_GATEWAY", "Cloudflare")]);
        error(&[("BARONG_PHONE_VERIFICATION", "twilio")]);
        error(&[("BARONG_GEOIP_LANG", "it")]);
        error(&[("BARONG_LOG_FORMAT", "yaml")]);
        error(&[("BARONG_STORAGE_PROVIDER", "azure")]);
    }

    #[test]
    fn storage_provider_is_case_insensitive() {
        let c = load(&[("BARONG_STORAGE_PROVIDER", "AliCloud")]).unwrap();
        assert_eq!(c.storage_provider, StorageProvider::AliCloud);
        let c = load(&[("BARONG_STORAGE_PROVIDER", "AWS")]).unwrap();
        assert_eq!(c.storage_provider, StorageProvider::Aws);
    }

    #[test]
    fn replay_store_follows_an_explicit_redis_url() {
        assert_eq!(load(&[]).unwrap().apikey_replay_store, ReplayStore::Memory);
        let redis = [("BARONG_REDIS_URL", "redis://10.0.0.5:6379/2")];
        assert_eq!(
            load(&redis).unwrap().apikey_replay_store,
            ReplayStore::Redis
        );
        let memory = [
            ("BARONG_REDIS_URL", "redis://10.0.0.5:6379/2"),
            ("BARONG_APIKEY_REPLAY_STORE", "memory"),
        ];
        assert_eq!(
            load(&memory).unwrap().apikey_replay_store,
            ReplayStore::Memory
        );
        assert!(load(&[("BARONG_APIKEY_REPLAY_STORE", "etcd")]).is_err());
    }

    #[test]
    fn uid_prefix_rule_and_upper_case() {
        assert_eq!(
            load(&[("BARONG_UID_PREFIX", "uid")]).unwrap().uid_prefix,
            "UID"
        );
        for bad in ["I", "TOOLONGX", "I1", "ID-"] {
            let e = error(&[("BARONG_UID_PREFIX", bad)]);
            assert_eq!(e.setting, "BARONG_UID_PREFIX");
            assert!(e.message.contains("^[A-z]{2,6}$"), "{e}");
        }
    }

    #[test]
    fn bad_regexp() {
        let e = error(&[("BARONG_PASSWORD_REGEXP", "^(abc")]);
        assert_eq!(e.setting, "BARONG_PASSWORD_REGEXP");
        assert!(e.message.starts_with(
            r#"invalid BARONG_PASSWORD_REGEXP="^(abc": expected a valid regular expression"#
        ));
        let c = load(&[("BARONG_PASSWORD_REGEXP", "^.{12,}$")]).unwrap();
        assert_eq!(c.password_regexp, "^.{12,}$");
    }

    #[test]
    fn cors_origins() {
        let c = load(&[(
            "BARONG_API_CORS_ORIGINS",
            "https://A.example.com/, http://localhost:3000",
        )])
        .unwrap();
        assert_eq!(
            c.api_cors_origins,
            vec!["https://a.example.com", "http://localhost:3000"]
        );
        assert!(!c.cors_allows_any_origin());
        let c = load(&[("BARONG_API_CORS_ORIGINS", "https://a.example.com:443")]).unwrap();
        assert_eq!(c.api_cors_origins, vec!["https://a.example.com"]);
        let c = load(&[("BARONG_API_CORS_ORIGINS", "https://a.example.com,*,junk")]).unwrap();
        assert_eq!(c.api_cors_origins, vec!["*"]);
        assert!(
            load(&[("BARONG_API_CORS_ORIGINS", "")])
                .unwrap()
                .api_cors_origins
                .is_empty()
        );
        for bad in [
            "example.com",
            "ftp://example.com",
            "https://example.com/path",
            "https://*.example.com",
        ] {
            let e = error(&[("BARONG_API_CORS_ORIGINS", bad)]);
            assert_eq!(e.setting, "BARONG_API_CORS_ORIGINS");
            assert!(e.message.contains("http(s)://host[:port]"), "{e}");
        }
    }

    #[test]
    fn cors_max_age_falls_back_to_3600() {
        assert_eq!(
            load(&[("BARONG_API_CORS_MAX_AGE", "600")])
                .unwrap()
                .api_cors_max_age,
            600
        );
        assert_eq!(
            load(&[("BARONG_API_CORS_MAX_AGE", "10m")])
                .unwrap()
                .api_cors_max_age,
            3600
        );
        assert_eq!(
            load(&[("BARONG_API_CORS_MAX_AGE", "")])
                .unwrap()
                .api_cors_max_age,
            3600
        );
    }

    #[test]
    fn bad_address() {
        let e = error(&[("BARONG_AUTHZ_ADDR", "localhost")]);
        assert!(e.message.starts_with(
            r#"invalid BARONG_AUTHZ_ADDR="localhost": expected an IP address and port"#
        ));
        let e = error(&[("BARONG_API_ADDR", "127.0.0.1:8002")]);
        assert_eq!(e.setting, "BARONG_API_ADDR");
        let same = [
            ("BARONG_API_ADDR", "127.0.0.1:0"),
            ("BARONG_AUTHZ_ADDR", "127.0.0.1:0"),
        ];
        assert!(load(&same).is_ok());
        assert_eq!(load(&[]).unwrap().authz_grpc_addr, None);
        let grpc = load(&[("BARONG_AUTHZ_GRPC_ADDR", "127.0.0.1:8003")]).unwrap();
        assert_eq!(
            grpc.authz_grpc_addr,
            Some("127.0.0.1:8003".parse().unwrap())
        );
        let e = error(&[("BARONG_AUTHZ_GRPC_ADDR", "127.0.0.1:8002")]);
        assert_eq!(e.setting, "BARONG_AUTHZ_GRPC_ADDR");
    }

    #[test]
    fn missing_file_paths() {
        for name in [
            "JWT_PRIVATE_KEY_PATH",
            "BARONG_MAXMINDDB_PATH",
            "BARONG_SEEDS_FILE",
            "BARONG_AUTHZ_RULES_FILE",
            "BARONG_CONFIG",
        ] {
            let e = error(&[(name, "/nonexistent/file.pem")]);
            assert_eq!(e.setting, name);
            let expected =
                format!(r#"invalid {name}="/nonexistent/file.pem": expected an existing file"#);
            assert_eq!(e.message, expected);
        }
        let file = TempFile::new("key");
        let c = load(&[
            ("JWT_PRIVATE_KEY_PATH", file.path()),
            ("BARONG_MAXMINDDB_PATH", ""),
        ])
        .unwrap();
        assert_eq!(
            c.jwt_private_key_path.as_deref(),
            Some(Path::new(file.path()))
        );
        assert_eq!(c.maxminddb_path, None);
    }

    #[test]
    fn tls_needs_both_files_and_client_ca_needs_tls() {
        let file = TempFile::new("pem");
        let e = error(&[("BARONG_TLS_CERT_PATH", file.path())]);
        assert_eq!(
            e.message,
            "missing BARONG_TLS_KEY_PATH: required when BARONG_TLS_CERT_PATH is set"
        );
        let e = error(&[("BARONG_TLS_KEY_PATH", file.path())]);
        assert_eq!(e.setting, "BARONG_TLS_CERT_PATH");
        let e = error(&[("BARONG_AUTHZ_CLIENT_CA_PATH", file.path())]);
        assert_eq!(e.setting, "BARONG_TLS_CERT_PATH");
        let both = [
            ("BARONG_TLS_CERT_PATH", file.path()),
            ("BARONG_TLS_KEY_PATH", file.path()),
            ("BARONG_AUTHZ_CLIENT_CA_PATH", file.path()),
        ];
        assert!(load(&both).unwrap().tls_cert_path.is_some());
        let e = error(&[("BARONG_AUTHZ_TLS_CERT_PATH", file.path())]);
        assert_eq!(
            e.message,
            "missing BARONG_AUTHZ_TLS_KEY_PATH: required when BARONG_AUTHZ_TLS_CERT_PATH is set"
        );
        let e = error(&[("BARONG_AUTHZ_TLS_KEY_PATH", file.path())]);
        assert_eq!(e.setting, "BARONG_AUTHZ_TLS_CERT_PATH");
        let authz_only = [
            ("BARONG_AUTHZ_TLS_CERT_PATH", file.path()),
            ("BARONG_AUTHZ_TLS_KEY_PATH", file.path()),
            ("BARONG_AUTHZ_CLIENT_CA_PATH", file.path()),
        ];
        let c = load(&authz_only).unwrap();
        assert!(c.tls_cert_path.is_none() && c.authz_tls_cert_path.is_some());
    }

    #[test]
    fn production_requires_keys_and_database() {
        let key = TempFile::new("pem");
        let e = error(&[("BARONG_ENV", "production")]);
        assert_eq!(
            e.to_string(),
            "missing JWT_PRIVATE_KEY_PATH: required when BARONG_ENV=production"
        );
        let e = error(&[
            ("BARONG_ENV", "production"),
            ("JWT_PRIVATE_KEY_PATH", key.path()),
        ]);
        assert_eq!(
            e.to_string(),
            "missing BARONG_ENCRYPTION_KEY: required when BARONG_ENV=production"
        );
        let mut pairs = vec![
            ("BARONG_ENV", "production"),
            ("JWT_PRIVATE_KEY_PATH", key.path()),
            ("BARONG_ENCRYPTION_KEY", HEX_KEY),
        ];
        let e = error(&pairs);
        assert_eq!(
            e.to_string(),
            "missing BARONG_DATABASE_URL: required when BARONG_ENV=production"
        );
        pairs.push(("BARONG_DATABASE_URL", "postgres://barong:pw@db/barong"));
        let e = error(&pairs);
        assert_eq!(e.setting, "BARONG_PHONE_VERIFICATION");
        pairs.extend([
            ("BARONG_PHONE_VERIFICATION", "twilio_sms"),
            ("BARONG_TWILIO_ACCOUNT_SID", "AC0"),
            ("BARONG_TWILIO_AUTH_TOKEN", "t"),
        ]);
        let c = load(&pairs).unwrap();
        assert!(c.is_production());
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.encryption_key_bytes().unwrap()[31], 0x1f);
        // Barong's default makes the first sign-up a superadmin; production asks for it.
        assert!(!c.first_registration_superadmin);
        pairs.push(("BARONG_FIRST_REGISTRATION_SUPERADMIN", "true"));
        assert!(load(&pairs).unwrap().first_registration_superadmin);
        pairs.pop();
        // Any origin with credentials: every site could act as the signed-in user.
        pairs.extend([
            ("BARONG_API_CORS_ORIGINS", "*"),
            ("BARONG_API_CORS_ALLOW_CREDENTIALS", "true"),
        ]);
        assert_eq!(error(&pairs).setting, "BARONG_API_CORS_ORIGINS");
        pairs.pop();
        assert!(load(&pairs).is_ok());
    }

    #[test]
    fn trusted_proxies_setting() {
        let c = load(&[]).unwrap();
        let t = c.trusted_proxies();
        assert!(t.trusts("10.1.2.3".parse().unwrap()) && !t.client_ip_header);
        let c = load(&[
            ("BARONG_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/24"),
            ("BARONG_TRUST_CLIENT_IP_HEADER", "true"),
        ])
        .unwrap();
        let t = c.trusted_proxies();
        assert!(t.trusts("10.0.0.9".parse().unwrap()));
        assert!(!t.trusts("10.0.1.9".parse().unwrap()) && t.client_ip_header);
        assert_eq!(
            error(&[("BARONG_TRUSTED_PROXIES", "10.0.0.0/40")]).setting,
            "BARONG_TRUSTED_PROXIES"
        );
    }

    #[test]
    fn database_url_schemes() {
        for good in [
            "sqlite:///var/lib/barong.db",
            "postgres://h/db",
            "postgresql://u@h:5432/db",
        ] {
            assert_eq!(
                load(&[("BARONG_DATABASE_URL", good)]).unwrap().database_url,
                good
            );
        }
        let e = error(&[("BARONG_DATABASE_URL", "mysql://root:hunter2@db/barong")]);
        let expected = concat!(
            r#"invalid BARONG_DATABASE_URL="mysql://root:[redacted]@db/barong": "#,
            "expected a sqlite://, postgres:// or postgresql:// URL"
        );
        assert_eq!(e.message, expected);
    }

    #[test]
    fn data_dir_moves_derived_defaults() {
        let c = load(&[("BARONG_DATA_DIR", "/var/lib/barong")]).unwrap();
        assert_eq!(c.database_url, "sqlite:///var/lib/barong/barong.db");
        assert_eq!(c.uploads_url, "file:///var/lib/barong/uploads");
        assert_eq!(
            c.uploads_dir(),
            Some(PathBuf::from("/var/lib/barong/uploads"))
        );
        let c = load(&[("BARONG_UPLOADS_URL", "s3://bucket/docs")]).unwrap();
        assert_eq!(c.uploads_dir(), None);
        error(&[("BARONG_UPLOADS_URL", "http://example.com")]);
    }

    #[test]
    fn encryption_key_shapes() {
        let base64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        let url_safe = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
        let expected: Vec<u8> = (0..32).collect();
        for good in [HEX_KEY, base64, url_safe] {
            let c = load(&[("BARONG_ENCRYPTION_KEY", good)]).unwrap();
            assert_eq!(c.encryption_key_bytes().unwrap().to_vec(), expected);
        }
        let bad_keys = [
            "short",
            &HEX_KEY[..62],
            "zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9=",
        ];
        for bad in bad_keys {
            let e = error(&[("BARONG_ENCRYPTION_KEY", bad)]);
            assert_eq!(
                e.message,
                "invalid BARONG_ENCRYPTION_KEY: expected 32 bytes as 64 hex characters or base64"
            );
        }
    }

    #[test]
    fn twilio_modes_need_sid_and_token() {
        let e = error(&[("BARONG_PHONE_VERIFICATION", "twilio_sms")]);
        assert_eq!(
            e.message,
            "missing BARONG_TWILIO_ACCOUNT_SID: required when BARONG_PHONE_VERIFICATION=twilio_sms"
        );
        let pairs = [
            ("BARONG_PHONE_VERIFICATION", "twilio_verify"),
            ("BARONG_TWILIO_ACCOUNT_SID", "AC1"),
        ];
        assert_eq!(error(&pairs).setting, "BARONG_TWILIO_AUTH_TOKEN");
        let pairs = [
            ("BARONG_PHONE_VERIFICATION", "twilio_verify"),
            ("BARONG_TWILIO_ACCOUNT_SID", "AC1"),
            ("BARONG_TWILIO_AUTH_TOKEN", "tok"),
        ];
        assert_eq!(
            load(&pairs).unwrap().phone_verification,
            PhoneVerification::TwilioVerify
        );
    }

    #[test]
    fn jwt_verify_algorithm_follows_and_must_match_the_signer() {
        let c = load(&[("BARONG_JWT_ALGORITHM", "EdDSA")]).unwrap();
        assert_eq!(c.jwt_verify_algorithm, JwtAlgorithm::EdDsa);
        let e = error(&[
            ("BARONG_JWT_ALGORITHM", "ES256"),
            ("JWT_ALGORITHM", "RS256"),
        ]);
        assert_eq!(e.setting, "JWT_ALGORITHM");
        assert!(
            e.message
                .starts_with(r#"invalid JWT_ALGORITHM="RS256": expected ES256"#),
            "{e}"
        );
    }

    #[test]
    fn unknown_and_mistyped_toml_keys() {
        let e = Config::from_sources(&HashMap::new(), Some("sesion_expire_time = 5")).unwrap_err();
        assert_eq!(e.setting, "sesion_expire_time");
        assert!(
            e.message
                .starts_with(r#"unknown key "sesion_expire_time" in config file"#),
            "{e}"
        );
        let e =
            Config::from_sources(&HashMap::new(), Some("barong_session_name = \"x\"")).unwrap_err();
        assert_eq!(e.setting, "barong_session_name");
        let e =
            Config::from_sources(&HashMap::new(), Some("session_expire_time = 1.5")).unwrap_err();
        assert_eq!(e.setting, "BARONG_SESSION_EXPIRE_TIME");
        let e = Config::from_sources(&HashMap::new(), Some("[smtp]\nhost = \"x\"")).unwrap_err();
        assert_eq!(e.setting, "smtp");
        let e = Config::from_sources(&HashMap::new(), Some("session_expire_time = ")).unwrap_err();
        assert_eq!(e.setting, "config file");
        assert!(e.message.contains("line 1"), "{e}");
        let e =
            Config::from_sources(&HashMap::new(), Some("csrf_protection = \"yes\"")).unwrap_err();
        assert_eq!(
            e.message,
            r#"invalid BARONG_CSRF_PROTECTION="yes": expected true or false"#
        );
    }

    #[test]
    fn toml_keys_are_unique_and_reach_every_setting() {
        let mut keys: Vec<String> = NAMES.iter().map(|n| toml_key(n)).collect();
        assert!(keys.contains(&"jwt_private_key_path".to_owned()));
        assert!(keys.contains(&"database_url".to_owned()));
        assert!(keys.contains(&"jwt_algorithm".to_owned()));
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), NAMES.len());
    }

    #[test]
    fn describe_covers_every_setting_once() {
        let described = Config::default().describe();
        let names: Vec<&str> = described.iter().map(|(name, _)| *name).collect();
        assert_eq!(names, NAMES);
        let value = |name: &str| {
            described
                .iter()
                .find(|(n, _)| *n == name)
                .unwrap()
                .1
                .clone()
        };
        assert_eq!(value("BARONG_SESSION_EXPIRE_TIME"), "1800");
        assert_eq!(value("BARONG_API_CORS_ORIGINS"), "*");
        assert_eq!(value("BARONG_SMTP_PASSWORD"), "");
        assert_eq!(value("BARONG_EVENT_API_RABBITMQ_PASSWORD"), "[redacted]");
        assert_eq!(value("JWT_PRIVATE_KEY_PATH"), "");
        assert_eq!(value("BARONG_LOG_FORMAT"), "text");
    }

    #[test]
    fn secrets_never_appear_in_describe_debug_or_errors() {
        let secrets = [
            ("BARONG_SMTP_PASSWORD", "smtp-s3cret"),
            ("BARONG_ENCRYPTION_KEY", HEX_KEY),
            ("BARONG_TWILIO_AUTH_TOKEN", "twilio-s3cret"),
            ("BARONG_RECAPTCHA_SECRET_KEY", "recaptcha-s3cret"),
            ("BARONG_GEETEST_KEY", "geetest-s3cret"),
            ("BARONG_KYCAID_AUTHORIZATION_TOKEN", "kycaid-s3cret"),
            ("BARONG_STORAGE_SECRET_KEY", "storage-s3cret"),
            ("BARONG_VAULT_TOKEN", "vault-s3cret"),
            ("BARONG_REDIS_PASSWORD", "redis-s3cret"),
            ("BARONG_EVENT_API_RABBITMQ_PASSWORD", "rabbit-s3cret"),
            (
                "BARONG_SENTRY_DSN_BACKEND",
                "https://sentry-s3cret@sentry.io/1",
            ),
            ("BARONG_CRC32_SALT", "salt-s3cret"),
            ("SECRET_KEY_BASE", "base-s3cret"),
            (
                "BARONG_DATABASE_URL",
                "postgres://barong:db-s3cret@db/barong",
            ),
            (
                "EVENT_API_RABBITMQ_URL",
                "amqp://guest:url-s3cret@mq/?password=q-s3cret",
            ),
        ];
        let c = load(&secrets).unwrap();
        let shown = format!("{:?} {:?}", c.describe(), c);
        // Every secret above contains "s3cret", except the encryption key.
        assert!(!shown.contains("s3cret"), "a secret leaked: {shown}");
        assert!(
            !shown.contains(HEX_KEY),
            "the encryption key leaked: {shown}"
        );
        let described = c.describe();
        let value = |name: &str| {
            described
                .iter()
                .find(|(n, _)| *n == name)
                .unwrap()
                .1
                .clone()
        };
        assert_eq!(value("BARONG_SMTP_PASSWORD"), "[redacted]");
        assert_eq!(
            value("BARONG_DATABASE_URL"),
            "postgres://barong:[redacted]@db/barong"
        );

        let e = error(&[("BARONG_ENCRYPTION_KEY", "not-a-key-s3cret")]);
        assert!(!e.to_string().contains("s3cret"), "{e}");
        let e = error(&[("BARONG_DATABASE_URL", "mysql://u:db-s3cret@h/d")]);
        assert!(!e.to_string().contains("s3cret"), "{e}");
        assert_eq!(Secret::new("x").to_string(), "[redacted]");
        assert_eq!(format!("{:?}", Secret::new("x")), "[redacted]");
    }

    #[test]
    fn error_messages_are_one_line() {
        let errors = [
            error(&[("BARONG_PASSWORD_REGEXP", "(?<=a+)b[")]),
            Config::from_sources(&HashMap::new(), Some("a = [\n1,\n")).unwrap_err(),
            BarongYml::from_yaml("state_triggers: [\n").unwrap_err(),
            error(&[
                ("BARONG_SESSION_NAME", "x"),
                ("BARONG_DOC_NUM_LIMIT", "1\n2"),
            ]),
        ];
        for e in errors {
            assert!(!e.to_string().contains('\n'), "{e}");
        }
    }

    #[test]
    fn barong_yml_defaults_and_partial_keys() {
        let d = BarongYml::default();
        assert_eq!(
            d.activation_requirements,
            vec![("email".to_owned(), "verified".to_owned())]
        );
        let states: Vec<&str> = d.state_triggers.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(states, ["banned", "deleted", "locked"]);
        assert_eq!(d.state_triggers[2].1, ["suspicious", "lock"]);
        assert_eq!(d.document_types.len(), 7);
        assert!(d.user_storage_titles.is_empty());
        assert_eq!(d.captcha_protected_endpoints.len(), 4);
        assert_eq!(d.profile_verification_roles, ["superadmin"]);

        let text = "state_triggers:\n  locked: [lock]\n  banned: [ban]\n\
                    user_storage_titles: [personal, company]\nextra: 1\n";
        let yml = BarongYml::from_yaml(text).unwrap();
        assert_eq!(
            yml.state_triggers[0],
            ("locked".to_owned(), vec!["lock".to_owned()])
        );
        assert_eq!(yml.state_triggers[1].0, "banned");
        assert_eq!(yml.user_storage_titles, ["personal", "company"]);
        assert_eq!(yml.activation_requirements, d.activation_requirements);
        assert_eq!(yml.document_types, d.document_types);
        assert_eq!(yml.profile_verification_roles, d.profile_verification_roles);
        // Barong protects nothing when the list is absent.
        assert!(yml.captcha_protected_endpoints.is_empty());
    }

    #[test]
    fn barong_yml_null_values_and_bad_shapes() {
        let yml = BarongYml::from_yaml(
            "activation_requirements:\nuser_storage_titles:\nstate_triggers:\n",
        )
        .unwrap();
        assert_eq!(
            yml.activation_requirements,
            BarongYml::default().activation_requirements
        );
        assert!(yml.state_triggers.is_empty());
        let yml =
            BarongYml::from_yaml("activation_requirements: {email: verified, phone: verified}")
                .unwrap();
        assert_eq!(yml.activation_requirements.len(), 2);
        assert!(BarongYml::from_yaml("").is_ok());
        let e = BarongYml::from_yaml("document_types: Passport").unwrap_err();
        assert_eq!(e.setting, "BARONG_CONFIG");
        assert_eq!(
            e.message,
            "invalid BARONG_CONFIG: key document_types: expected a list of strings"
        );
        assert!(BarongYml::from_yaml("state_triggers: [ban]").is_err());
        assert!(BarongYml::from_yaml("- a\n- b").is_err());
    }

    #[test]
    fn barong_config_file_is_loaded() {
        let file = TempFile::new("captcha_protected_endpoints:\n  - session_create\n");
        let c = load(&[("BARONG_CONFIG", file.path())]).unwrap();
        assert_eq!(c.barong_yml.captcha_protected_endpoints, ["session_create"]);
        assert_eq!(
            c.barong_yml.state_triggers,
            BarongYml::default().state_triggers
        );
        let bad = TempFile::new("document_types: 5\n");
        let e = error(&[("BARONG_CONFIG", bad.path())]);
        assert_eq!(e.setting, "BARONG_CONFIG");
        assert!(e.message.contains(bad.path()), "{e}");
    }
}
