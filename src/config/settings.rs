//! The table of every setting, grouped by concern: one line declares a field, its environment
//! name, its default and its parser, so `describe()`, the TOML key check and the fields cannot
//! drift apart.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use super::enums::*;
use super::value::*;
use super::{BarongYml, ConfigError};
use std::collections::HashMap;

/// Barong's default password policy (lower, upper, digit, printable; 8 to 80 characters).
pub(super) const DEFAULT_PASSWORD_REGEXP: &str =
    r"^(?=.*[[:lower:]])(?=.*[[:upper:]])(?=.*[[:digit:]])(?=.*[[:graph:]]).{8,80}$";

/// Where a setting's value comes from when neither the environment nor the file gives it.
pub(super) enum Dflt {
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

/// The environment and the file, as raw text per setting name.
pub(super) struct Sources<'a> {
    pub(super) env: &'a HashMap<String, String>,
    pub(super) file: HashMap<&'static str, String>,
}

impl Sources<'_> {
    /// The explicitly given value: the environment wins over the file.
    pub(super) fn given(&self, name: &str) -> Option<&str> {
        self.env
            .get(name)
            .or_else(|| self.file.get(name))
            .map(String::as_str)
    }

    /// The given value or the default, before parsing.
    pub(super) fn resolved(&self, name: &str) -> String {
        match self.given(name) {
            Some(value) => value.to_owned(),
            None => match default_of(name) {
                Dflt::Lit(text) => text.to_owned(),
                Dflt::Derived(derive) => derive(self),
            },
        }
    }

    pub(super) fn get<T: Value>(
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

pub(super) fn default_database_url(src: &Sources) -> String {
    let dir = PathBuf::from(src.resolved("BARONG_DATA_DIR"));
    format!("sqlite://{}", dir.join("barong.db").display())
}

pub(super) fn default_uploads_url(src: &Sources) -> String {
    let dir = PathBuf::from(src.resolved("BARONG_DATA_DIR"));
    format!("file://{}", dir.join("uploads").display())
}

pub(super) fn default_log_format(src: &Sources) -> String {
    let production = src.resolved("BARONG_ENV") == Environment::Production.as_str();
    let format = if production {
        LogFormat::Json
    } else {
        LogFormat::Text
    };
    format.as_str().to_owned()
}

pub(super) fn default_replay_store(src: &Sources) -> String {
    let store = if src.given("BARONG_REDIS_URL").is_some() {
        ReplayStore::Redis
    } else {
        ReplayStore::Memory
    };
    store.as_str().to_owned()
}

pub(super) fn default_jwt_verify_algorithm(src: &Sources) -> String {
    src.resolved("BARONG_JWT_ALGORITHM")
}

/// Declares [`Config`]: one sub-struct per concern, each field with its setting's name, default
/// and parser. A component is handed the group it uses (`&config.mail`), never the whole.
macro_rules! settings {
    ($(
        $(#[$gdoc:meta])*
        $group:ident: $Group:ident {
            $(
                $(#[$doc:meta])*
                $field:ident: $ty:ty = $name:literal, $default:expr $(, $parse:path)?;
            )*
        }
    )*) => {
        $(
            $(#[$gdoc])*
            /// `Debug` prints what `describe()` shows: never a secret nor a password inside a URL.
            #[derive(Clone, PartialEq)]
            pub struct $Group {
                $($(#[$doc])* pub $field: $ty,)*
            }

            impl $Group {
                /// The names of this group's settings.
                pub const NAMES: &'static [&'static str] = &[$($name),*];

                fn parse(src: &Sources) -> Result<Self, ConfigError> {
                    Ok($Group {
                        $($field: src.get($name, parser!($ty $(, $parse)?))?,)*
                    })
                }

                fn describe(&self, out: &mut Vec<(&'static str, String)>) {
                    $(out.push(($name, Value::show(&self.$field)));)*
                }
            }

            impl fmt::Debug for $Group {
                fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    let mut shown = Vec::new();
                    self.describe(&mut shown);
                    f.debug_map().entries(shown).finish()
                }
            }
        )*

        /// The effective configuration, one sub-struct per concern; a field is named after its
        /// environment variable without `BARONG_`, lower-cased.
        #[derive(Clone, PartialEq)]
        pub struct Config {
            $($(#[$gdoc])* pub $group: $Group,)*
            /// Contents of the `BARONG_CONFIG` file (Barong's `config/barong.yml`); built-in defaults
            /// when `BARONG_CONFIG` is unset.
            pub barong_yml: BarongYml,
            /// The `compat` settings given explicitly (environment or file): accepted so Barong's
            /// deployments start unchanged, unused here; the server warns about each at start.
            pub ignored: Vec<&'static str>,
        }

        /// Every setting's name, in `describe()` order.
        pub(super) const NAMES: &[&str] = &[$($($name,)*)*];

        pub(super) fn default_of(name: &str) -> Dflt {
            match name {
                $($($name => Dflt::from($default),)*)*
                _ => Dflt::Lit(""),
            }
        }

        impl Config {
            pub(super) fn parse_fields(src: &Sources) -> Result<Self, ConfigError> {
                Ok(Config {
                    $($group: $Group::parse(src)?,)*
                    barong_yml: BarongYml::default(),
                    ignored: Compat::NAMES
                        .iter()
                        .copied()
                        .filter(|name| src.given(name).is_some())
                        .collect(),
                })
            }

            /// (env name, display value) for every setting in a stable order, for `barong config`.
            /// Secrets show as `[redacted]` (or `""` when unset); passwords inside URLs are redacted.
            pub fn describe(&self) -> Vec<(&'static str, String)> {
                let mut out = Vec::with_capacity(NAMES.len());
                $(self.$group.describe(&mut out);)*
                out
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
    /// The process and its two listeners.
    server: Server {
        /// `BARONG_ENV` (`development`): `production` demands explicit keys and database.
        env: Environment = "BARONG_ENV", "development";
        /// `BARONG_DATA_DIR` (`data`): home of the embedded defaults (database, generated keys, uploads).
        data_dir: PathBuf = "BARONG_DATA_DIR", "data";
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
        /// `BARONG_LOG_FORMAT` (`text`, `json` when `BARONG_ENV=production`).
        log_format: LogFormat = "BARONG_LOG_FORMAT", Dflt::Derived(default_log_format);
        /// `BARONG_HEADER_READ_TIMEOUT` (`10` s): a client that has not sent a whole request head by then
        /// is disconnected (slowloris), on both listeners.
        header_read_timeout: u64 = "BARONG_HEADER_READ_TIMEOUT", "10", parse_positive_u64;
        /// `BARONG_MAX_HEADER_SIZE` (`65536` bytes, at least 8192): largest request head (431 above).
        max_header_size: u64 = "BARONG_MAX_HEADER_SIZE", "65536", parse_header_size;
        /// `BARONG_REQUEST_TIMEOUT` (`30` s): longest a REST request may take, body upload included
        /// (408 above).
        request_timeout: u64 = "BARONG_REQUEST_TIMEOUT", "30", parse_positive_u64;
    }
    /// The database the store opens.
    database: Database {
        /// `BARONG_DATABASE_URL` (`sqlite://<data dir>/barong.db`): `sqlite://`, `postgres://` or `postgresql://`.
        database_url: String = "BARONG_DATABASE_URL", Dflt::Derived(default_database_url), parse_database_url;
        /// `BARONG_DB_POOL_SIZE` (`16`): database connections per process.
        db_pool_size: u32 = "BARONG_DB_POOL_SIZE", "16", parse_positive_u32;
        /// `BARONG_DB_CONNECT_TIMEOUT` (`2000` ms): how long to wait for a database connection.
        db_connect_timeout: u64 = "BARONG_DB_CONNECT_TIMEOUT", "2000", parse_positive_u64;
    }
    /// HTTPS on the listeners (`src/server/tls.rs`).
    tls: Tls {
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
    }
    /// The decision on the authz listener (`src/authz/`).
    authz: Authz {
        /// `BARONG_AUTHZ_CACHE_TTL` (`10` s): longest time a cached session, user, API key,
        /// permission or restriction may be served on an instance that missed an invalidation.
        authz_cache_ttl: u64 = "BARONG_AUTHZ_CACHE_TTL", "10", parse_positive_u64;
        /// `BARONG_JWT_REUSE_TIME` (`30` s): a minted JWT is reused for the same principal and claims
        /// for this long (capped at a tenth of `BARONG_JWT_EXPIRE_TIME`); `0` signs every time.
        jwt_reuse_time: u64 = "BARONG_JWT_REUSE_TIME", "30";
        /// `BARONG_APIKEY_REPLAY_PROTECTION` (`false`, Barong's behaviour): refuse a
        /// (kid, nonce, signature) seen before inside the nonce window.
        apikey_replay_protection: bool = "BARONG_APIKEY_REPLAY_PROTECTION", "false";
        /// `BARONG_APIKEY_FUTURE_SKEW` (`1000` ms): with replay protection on, how far in the future
        /// a nonce may be.
        apikey_future_skew: u64 = "BARONG_APIKEY_FUTURE_SKEW", "1000";
        /// `BARONG_APIKEY_REPLAY_STORE` (`redis` when `BARONG_REDIS_URL` is given, else `memory`):
        /// where replay protection remembers signed requests; `memory` is per instance.
        apikey_replay_store: ReplayStore = "BARONG_APIKEY_REPLAY_STORE", Dflt::Derived(default_replay_store);
        /// `BARONG_APIKEY_NONCE_LIFETIME` (`5000` ms): allowed clock difference of `X-Auth-Nonce`.
        apikey_nonce_lifetime: u64 = "BARONG_APIKEY_NONCE_LIFETIME", "5000";
        /// `BARONG_CSRF_PROTECTION` (`true`): require `X-CSRF-Token` on state-changing cookie requests.
        csrf_protection: bool = "BARONG_CSRF_PROTECTION", "true";
        /// `BARONG_AUTHZ_RULES_FILE` (unset: built-in copy of Barong's `config/authz_rules.yml`).
        authz_rules_file: Option<PathBuf> = "BARONG_AUTHZ_RULES_FILE", "", parse_existing_file;
        /// `BARONG_MAXMINDDB_PATH` (unset): MaxMind GeoLite2 database for restrictions.
        maxminddb_path: Option<PathBuf> = "BARONG_MAXMINDDB_PATH", "", parse_existing_file;
        /// `BARONG_GEOIP_LANG` (`en`): language of GeoIP country/continent names.
        geoip_lang: GeoipLang = "BARONG_GEOIP_LANG", "en";
    }
    /// The session cookie and its policies.
    session: Session {
        /// `BARONG_SESSION_NAME` (`_barong_session`): session cookie name.
        session_name: String = "BARONG_SESSION_NAME", "_barong_session";
        /// `BARONG_SESSION_EXPIRE_TIME` (`1800` s): session inactivity timeout.
        session_expire_time: u64 = "BARONG_SESSION_EXPIRE_TIME", "1800";
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
    }
    /// Passkeys (WebAuthn, `docs/passkeys.md`); gathered with their checks in `passkeys.rs`.
    passkey: PasskeySettings {
        /// `BARONG_PASSKEY_RP_ID` (unset: passkeys off): the relying-party id, a domain name.
        passkey_rp_id: String = "BARONG_PASSKEY_RP_ID", "", parse_rp_id;
        /// `BARONG_PASSKEY_RP_NAME` (unset: `BARONG_APP_NAME`): the name authenticators show.
        passkey_rp_name: String = "BARONG_PASSKEY_RP_NAME", "";
        /// `BARONG_PASSKEY_ORIGINS` (unset: `https://<rp id>`): comma list of the exact origins a
        /// passkey ceremony may come from.
        passkey_origins: Vec<String> = "BARONG_PASSKEY_ORIGINS", "";
        /// `BARONG_PASSKEY_PASSWORDLESS` (`false`): a discoverable passkey alone opens a session.
        passkey_passwordless: bool = "BARONG_PASSKEY_PASSWORDLESS", "false";
        /// `BARONG_PASSKEY_CHALLENGE_TTL` (`120` s): how long a passkey challenge may be answered.
        passkey_challenge_ttl: u64 = "BARONG_PASSKEY_CHALLENGE_TTL", "120", parse_positive_u64;
    }
    /// Signing and encryption keys.
    keys: Keys {
        /// `JWT_PRIVATE_KEY_PATH` (unset: a key is generated into the data dir outside production).
        jwt_private_key_path: Option<PathBuf> = "JWT_PRIVATE_KEY_PATH", "", parse_existing_file;
        /// `BARONG_JWT_ALGORITHM` (`RS256`): algorithm of the signing key.
        jwt_algorithm: JwtAlgorithm = "BARONG_JWT_ALGORITHM", "RS256";
        /// `BARONG_JWT_EXPIRE_TIME` (`3600` s): lifetime of authz JWTs and of confirmation/reset tokens.
        jwt_expire_time: u64 = "BARONG_JWT_EXPIRE_TIME", "3600";
        /// `BARONG_MULTISIG_PRIVATE_KEY_PATH` (unset: the JWT signing key): a separate key for the
        /// jwt-multisig signatures of events and of management `otp/sign` (signer id `barong`).
        multisig_private_key_path: Option<PathBuf> = "BARONG_MULTISIG_PRIVATE_KEY_PATH", "", parse_existing_file;
        /// `BARONG_MULTISIG_ALGORITHM` (`RS256`): algorithm of `BARONG_MULTISIG_PRIVATE_KEY_PATH`.
        multisig_algorithm: JwtAlgorithm = "BARONG_MULTISIG_ALGORITHM", "RS256";
        /// `BARONG_KEYS_RELOAD_INTERVAL` (`30` s): how often an instance re-reads the signing keys
        /// from the database (PostgreSQL instances also hear of a rotation at once).
        keys_reload_interval: u64 = "BARONG_KEYS_RELOAD_INTERVAL", "30", parse_positive_u64;
        /// `BARONG_ENCRYPTION_KEY` (unset: generated into the data dir outside production): 32 bytes as
        /// 64 hex characters or base64; encrypts TOTP secrets, API key secrets and personal data.
        encryption_key: Option<Secret> = "BARONG_ENCRYPTION_KEY", "", parse_encryption_key;
    }
    /// How bearer tokens are verified (peatio-core's authenticator, unprefixed names).
    bearer: Bearer {
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
    /// Abuse limits (`src/src/limits/mod.rs`) and the password-hashing queue.
    limits: Limits {
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
    }
    /// Where the client address is read from.
    network: Network {
        /// `BARONG_GATEWAY` (`cloudflare`): `akamai` takes the client IP from `True-Client-IP`
        /// (sent by a trusted proxy).
        gateway: Gateway = "BARONG_GATEWAY", "cloudflare";
        /// `BARONG_TRUSTED_PROXIES` (loopback and private ranges, as Rails): the networks whose
        /// `X-Forwarded-For` is believed; a request from any other peer is its own client address.
        trusted_proxies: Vec<ipnet::IpNet> = "BARONG_TRUSTED_PROXIES", crate::domain::client_ip::DEFAULT_TRUSTED_PROXIES;
        /// `BARONG_TRUST_CLIENT_IP_HEADER` (`false`): also believe `Client-IP` from a trusted proxy.
        trust_client_ip_header: bool = "BARONG_TRUST_CLIENT_IP_HEADER", "false";
    }
    /// Barong's account rules.
    users: Users {
        /// `BARONG_APP_NAME` (`Barong`): TOTP issuer; Twilio Verify service name.
        app_name: String = "BARONG_APP_NAME", "Barong";
        /// `BARONG_DOMAIN` (`openware.com`): prefix of e-mail links and the KYCAID callback URL.
        domain: String = "BARONG_DOMAIN", "openware.com";
        /// `BARONG_UID_PREFIX` (`ID`): user UID prefix, 2 to 6 letters (`^[A-z]{2,6}$`), stored upper-cased.
        uid_prefix: String = "BARONG_UID_PREFIX", "ID", parse_uid_prefix;
        /// `BARONG_FIRST_REGISTRATION_SUPERADMIN` (`true`): the first user becomes an active superadmin.
        first_registration_superadmin: bool = "BARONG_FIRST_REGISTRATION_SUPERADMIN", "true";
        /// `BARONG_API_DATA_MASKING_ENABLED` (`true`): mask personal data in user-facing entities.
        api_data_masking_enabled: bool = "BARONG_API_DATA_MASKING_ENABLED", "true";
        /// `BARONG_PROFILE_DOUBLE_VERIFICATION` (`false`): a profile's author cannot verify it.
        profile_double_verification: bool = "BARONG_PROFILE_DOUBLE_VERIFICATION", "false";
        /// `BARONG_PASSWORD_REGEXP`: the regex source as given (no Ruby `(?-mix:` wrapping); it is known
        /// to compile with `fancy_regex`.
        password_regexp: String = "BARONG_PASSWORD_REGEXP", DEFAULT_PASSWORD_REGEXP, parse_password_regexp;
        /// `BARONG_PASSWORD_MIN_ENTROPY` (`14`): weaker passwords get `password.weak`.
        password_min_entropy: u32 = "BARONG_PASSWORD_MIN_ENTROPY", "14";
        /// `BARONG_PASSWORD_USE_DICTIONARY` (`true`): dictionary adjustment in the entropy.
        password_use_dictionary: bool = "BARONG_PASSWORD_USE_DICTIONARY", "true";
    }
    /// KYC documents and KYCAID.
    kyc: Kyc {
        /// `BARONG_KYC_PROVIDER` (`kycaid`).
        kyc_provider: KycProvider = "BARONG_KYC_PROVIDER", "kycaid";
        /// `BARONG_REQUIRED_DOCS_EXPIRE` (`true`): documents need a non-past `doc_expire`.
        required_docs_expire: bool = "BARONG_REQUIRED_DOCS_EXPIRE", "true";
        /// `BARONG_DOC_NUM_LIMIT` (`10`): documents per user.
        doc_num_limit: u32 = "BARONG_DOC_NUM_LIMIT", "10";
        /// `BARONG_KYCAID_AUTHORIZATION_TOKEN` (empty).
        kycaid_authorization_token: Secret = "BARONG_KYCAID_AUTHORIZATION_TOKEN", "";
        /// `BARONG_KYCAID_API_ENDPOINT` (`https://api.kycaid.com/`).
        kycaid_api_endpoint: String = "BARONG_KYCAID_API_ENDPOINT", "https://api.kycaid.com/";
    }
    /// The management API (`src/api/management/`).
    management: Management {
        /// `BARONG_MANAGEMENT_API_FILE` (unset: no signer, every management call is refused): Barong's
        /// `config/management_api.yml` (keychain, jwt options, scopes).
        management_api_file: Option<PathBuf> = "BARONG_MANAGEMENT_API_FILE", "", parse_existing_file;
        /// `BARONG_MANAGEMENT_MAX_AGE` (`300` s): a management request without `exp` is refused once
        /// its `iat` is older than this (and one without either is refused).
        management_max_age: u64 = "BARONG_MANAGEMENT_MAX_AGE", "300", parse_positive_u64;
        /// `BARONG_MGN_API_KEYS_USER` (`false`): management API key endpoints for users.
        mgn_api_keys_user: bool = "BARONG_MGN_API_KEYS_USER", "false";
        /// `BARONG_MGN_API_KEYS_SA` (`false`): management API key endpoints for service accounts.
        mgn_api_keys_sa: bool = "BARONG_MGN_API_KEYS_SA", "false";
    }
    /// reCAPTCHA and GeeTest (`src/captcha.rs`).
    captcha: Captcha {
        /// `BARONG_CAPTCHA` (`none`).
        captcha: CaptchaType = "BARONG_CAPTCHA", "none";
        /// `BARONG_RECAPTCHA_SITE_KEY` (empty): public, shown as `captcha_id` by `/configs`.
        recaptcha_site_key: String = "BARONG_RECAPTCHA_SITE_KEY", "";
        /// `BARONG_RECAPTCHA_SECRET_KEY` (empty).
        recaptcha_secret_key: Secret = "BARONG_RECAPTCHA_SECRET_KEY", "";
        /// `BARONG_RECAPTCHA_VERIFY_URL` (Google's `siteverify`): where reCAPTCHA answers are checked.
        recaptcha_verify_url: String = "BARONG_RECAPTCHA_VERIFY_URL", "https://www.google.com/recaptcha/api/siteverify";
        /// `BARONG_GEETEST_ID` (empty).
        geetest_id: String = "BARONG_GEETEST_ID", "";
        /// `BARONG_GEETEST_KEY` (empty).
        geetest_key: Secret = "BARONG_GEETEST_KEY", "";
        /// `BARONG_GEETEST_API_URL` (`http://api.geetest.com`): base of GeeTest's `register.php` and `validate.php`.
        geetest_api_url: String = "BARONG_GEETEST_API_URL", "http://api.geetest.com";
    }
    /// Phone codes (`src/sms.rs`).
    phone: Phone {
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
    }
    /// Document uploads and their object storage (`src/uploads.rs`).
    uploads: Uploads {
        /// `BARONG_UPLOADS_URL` (`file://<data dir>/uploads`): `file://`, `s3://` or `gs://`.
        uploads_url: String = "BARONG_UPLOADS_URL", Dflt::Derived(default_uploads_url), parse_uploads_url;
        /// `BARONG_UPLOAD_SIZE_MIN_RANGE` (`1`): smallest upload, in **bytes** (Barong's actual unit).
        upload_size_min_range: u64 = "BARONG_UPLOAD_SIZE_MIN_RANGE", "1";
        /// `BARONG_UPLOAD_SIZE_MAX_RANGE` (`10`): largest upload, in megabytes.
        upload_size_max_range: u64 = "BARONG_UPLOAD_SIZE_MAX_RANGE", "10";
        /// `BARONG_UPLOAD_EXTENSION_WHITELIST` (`jpg, jpeg, png, pdf`).
        upload_extension_whitelist: Vec<String> = "BARONG_UPLOAD_EXTENSION_WHITELIST", "jpg, jpeg, png, pdf";
    }
    /// Redis (shared counters and replay protection).
    redis: Redis {
        /// `BARONG_REDIS_URL` (`redis://localhost:6379/1`).
        redis_url: String = "BARONG_REDIS_URL", "redis://localhost:6379/1";
        /// `BARONG_REDIS_CLUSTER` (`false`).
        redis_cluster: bool = "BARONG_REDIS_CLUSTER", "false";
        /// `BARONG_REDIS_PASSWORD` (empty).
        redis_password: Secret = "BARONG_REDIS_PASSWORD", "";
    }
    /// The Event API (`src/events/`).
    events: Events {
        /// `BARONG_EVENT_API_ENABLED` (`false`; this server's switch, Barong always publishes): events
        /// are written to the outbox and delivered to RabbitMQ. A set `EVENT_API_RABBITMQ_URL` turns
        /// it on too. Off, no event is written anywhere.
        event_api_enabled: bool = "BARONG_EVENT_API_ENABLED", "false";
        /// `EVENT_API_RABBITMQ_URL` (no prefix; unset): overrides the four settings above for publishing.
        event_api_rabbitmq_url: Option<String> = "EVENT_API_RABBITMQ_URL", "";
        /// `BARONG_EVENT_API_RABBITMQ_HOST` (`localhost`).
        event_api_rabbitmq_host: String = "BARONG_EVENT_API_RABBITMQ_HOST", "localhost";
        /// `BARONG_EVENT_API_RABBITMQ_PORT` (`5672`).
        event_api_rabbitmq_port: u16 = "BARONG_EVENT_API_RABBITMQ_PORT", "5672";
        /// `BARONG_EVENT_API_RABBITMQ_USERNAME` (`guest`).
        event_api_rabbitmq_username: String = "BARONG_EVENT_API_RABBITMQ_USERNAME", "guest";
        /// `BARONG_EVENT_API_RABBITMQ_PASSWORD` (`guest`).
        event_api_rabbitmq_password: Secret = "BARONG_EVENT_API_RABBITMQ_PASSWORD", "guest";
        /// `BARONG_EVENT_API_RETRY_MAX_BACKOFF` (`30` s): longest wait between two delivery attempts
        /// while RabbitMQ is unreachable (the wait starts at 1 s and doubles).
        event_api_retry_max_backoff: u64 = "BARONG_EVENT_API_RETRY_MAX_BACKOFF", "30", parse_positive_u64;
        /// `BARONG_EVENT_API_POLL_INTERVAL` (`200` ms): how often the event worker looks at the outbox.
        event_api_poll_interval: u64 = "BARONG_EVENT_API_POLL_INTERVAL", "200", parse_positive_u64;
    }
    /// CORS on the REST listener.
    cors: Cors {
        /// `BARONG_API_CORS_ORIGINS` (`*`): normalized `http(s)://host[:port]` origins, or `["*"]` when a
        /// `*` item comes before any malformed one (Barong stops at the first `*`).
        api_cors_origins: Vec<String> = "BARONG_API_CORS_ORIGINS", "*", parse_cors_origins;
        /// `BARONG_API_CORS_MAX_AGE` (`3600` s; a non-numeric value also means 3600, as in Barong).
        api_cors_max_age: u64 = "BARONG_API_CORS_MAX_AGE", "3600", parse_cors_max_age;
        /// `BARONG_API_CORS_ALLOW_CREDENTIALS` (`false`).
        api_cors_allow_credentials: bool = "BARONG_API_CORS_ALLOW_CREDENTIALS", "false";
    }
    /// Outgoing mail (`src/mail/`).
    mail: Mail {
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
    }
    /// Barong's configuration files.
    files: Files {
        /// `BARONG_CONFIG` (unset: built-in copy of Barong's `config/barong.yml`), loaded into `barong_yml`.
        config: Option<PathBuf> = "BARONG_CONFIG", "", parse_existing_file;
        /// `BARONG_SEEDS_FILE` (unset: built-in default seeds).
        seeds_file: Option<PathBuf> = "BARONG_SEEDS_FILE", "", parse_existing_file;
    }
    /// Barong settings accepted for compatibility that this server does not use.
    compat: Compat {
        /// `SECRET_KEY_BASE` (unset): Barong's PII encryption master secret, for reading Barong's data.
        secret_key_base: Option<Secret> = "SECRET_KEY_BASE", "";
        /// `BARONG_CRC32_SALT` (empty): salt of the searchable phone/document number indexes.
        crc32_salt: Secret = "BARONG_CRC32_SALT", "";
        /// `BARONG_KYCAID_SANDBOX_MODE` (`true`).
        kycaid_sandbox_mode: bool = "BARONG_KYCAID_SANDBOX_MODE", "true";
        /// `BARONG_KYCAID_FORM_ID` (empty).
        kycaid_form_id: String = "BARONG_KYCAID_FORM_ID", "";
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
        /// `BARONG_UPLOAD_AUTH_URL_EXPIRATION` (`1` minute): signed URL lifetime for private buckets.
        upload_auth_url_expiration: u64 = "BARONG_UPLOAD_AUTH_URL_EXPIRATION", "1";
        /// `BARONG_VAULT_ADDRESS` (`http://localhost:8200`).
        vault_address: String = "BARONG_VAULT_ADDRESS", "http://localhost:8200";
        /// `BARONG_VAULT_TOKEN` (empty).
        vault_token: Secret = "BARONG_VAULT_TOKEN", "";
        /// `BARONG_VAULT_APP_NAME` (`barong`): prefix of Vault TOTP and transit keys.
        vault_app_name: String = "BARONG_VAULT_APP_NAME", "barong";
        /// `BARONG_SENTRY_DSN_BACKEND` (empty: no error reporting).
        sentry_dsn_backend: Secret = "BARONG_SENTRY_DSN_BACKEND", "";
        /// `BARONG_AUTH0_DOMAIN` (empty: Auth0 login disabled).
        auth0_domain: String = "BARONG_AUTH0_DOMAIN", "";
        /// `BARONG_AUTH0_CLIENT_ID` (empty).
        auth0_client_id: String = "BARONG_AUTH0_CLIENT_ID", "";
    }
}
