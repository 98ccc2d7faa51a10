use super::settings::DEFAULT_PASSWORD_REGEXP;
use super::settings::*;
use super::sources::*;
use super::value::*;
use super::*;
use std::sync::atomic::{AtomicUsize, Ordering};

pub(super) fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

pub(super) fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::from_sources(&env(pairs), None)
}

pub(super) fn error(pairs: &[(&str, &str)]) -> ConfigError {
    load(pairs).expect_err("the configuration should be rejected")
}

/// A file removed when the test ends (no tempfile crate in this module's dependencies).
pub(super) struct TempFile(PathBuf);

impl TempFile {
    pub(super) fn new(contents: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("barong-config-{}-{n}", std::process::id()));
        std::fs::write(&path, contents).expect("write temp file");
        Self(path)
    }

    pub(super) fn path(&self) -> &str {
        self.0.to_str().expect("UTF-8 temp path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

pub(super) const HEX_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

#[test]
fn defaults_load_from_an_empty_map() {
    let c = load(&[]).unwrap();
    assert_eq!(c.server.env, Environment::Development);
    assert_eq!(c.session.session_expire_time, 1800);
    assert_eq!(c.keys.jwt_expire_time, 3600);
    assert_eq!(c.authz.apikey_nonce_lifetime, 5000);
    assert_eq!(c.users.uid_prefix, "ID");
    assert_eq!(c.server.authz_addr, "127.0.0.1:8002".parse().unwrap());
    assert_eq!(c.server.api_addr, "127.0.0.1:8001".parse().unwrap());
    assert_eq!(c.database.database_url, "sqlite://data/barong.db");
    assert_eq!(c.server.data_dir, PathBuf::from("data"));
    assert_eq!(c.uploads.uploads_url, "file://data/uploads");
    assert_eq!(c.uploads_dir(), Some(PathBuf::from("data/uploads")));
    assert_eq!(c.keys.jwt_algorithm, JwtAlgorithm::Rs256);
    assert_eq!(c.bearer.jwt_verify_algorithm, JwtAlgorithm::Rs256);
    assert_eq!(c.server.log_format, LogFormat::Text);
    assert_eq!(c.session.session_name, "_barong_session");
    assert!(c.authz.csrf_protection);
    assert_eq!(c.network.gateway, Gateway::Cloudflare);
    assert_eq!(c.kyc.kyc_provider, KycProvider::Kycaid);
    assert_eq!(c.captcha.captcha, CaptchaType::None);
    assert_eq!(c.phone.phone_verification, PhoneVerification::Mock);
    assert_eq!(c.compat.storage_provider, StorageProvider::Local);
    assert_eq!(c.authz.geoip_lang, GeoipLang::En);
    assert_eq!(c.users.password_regexp, DEFAULT_PASSWORD_REGEXP);
    assert_eq!(c.users.password_min_entropy, 14);
    assert_eq!(c.kyc.doc_num_limit, 10);
    assert_eq!(c.mail.smtp_host, "localhost");
    assert_eq!(c.mail.smtp_port, 1025);
    assert_eq!(c.events.event_api_rabbitmq_password.expose(), "guest");
    assert_eq!(c.cors.api_cors_origins, vec!["*"]);
    assert!(c.cors_allows_any_origin());
    assert_eq!(c.cors.api_cors_max_age, 3600);
    assert_eq!(
        c.uploads.upload_extension_whitelist,
        vec!["jpg", "jpeg", "png", "pdf"]
    );
    assert_eq!(c.server.max_body_size, 1_048_576);
    assert_eq!(c.database.db_pool_size, 16);
    assert_eq!(c.database.db_connect_timeout, 2000);
    assert_eq!(c.files.seeds_file, None);
    assert_eq!(c.keys.jwt_private_key_path, None);
    assert_eq!(c.keys.encryption_key, None);
    assert_eq!(c.bearer.jwt_audience, Vec::<String>::new());
    assert_eq!(c.bearer.jwt_issuer, None);
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
    assert_eq!(c.session.session_expire_time, 60);
    assert_eq!(c.users.uid_prefix, "AB");
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
    assert_eq!(c.session.session_expire_time, 1200);
    assert!(!c.authz.csrf_protection);
    assert_eq!(c.database.database_url, "postgres://barong@db/barong");
    let origins = vec!["https://a.example.com", "http://b.example.com:8080"];
    assert_eq!(c.cors.api_cors_origins, origins);
    assert_eq!(c.bearer.jwt_audience, vec!["peatio", "barong"]);
    assert_eq!(
        c.events.event_api_rabbitmq_url.as_deref(),
        Some("amqp://guest:guest@mq:5672")
    );
}

#[test]
fn load_reads_a_toml_file() {
    let file = TempFile::new("smtp_host = \"mail.internal\"\n");
    let c = Config::load(Some(Path::new(file.path()))).unwrap();
    if std::env::var_os("BARONG_SMTP_HOST").is_none() {
        assert_eq!(c.mail.smtp_host, "mail.internal");
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
        e.to_string()
            .starts_with(r#"invalid BARONG_SESSION_EXPIRE_TIME="30m": expected a whole number"#)
    );
    error(&[("BARONG_DOC_NUM_LIMIT", "-1")]);
    error(&[("BARONG_SMTP_PORT", "70000")]);
    error(&[("BARONG_DB_POOL_SIZE", "0")]);
    error(&[("JWT_DEFAULT_LEEWAY", "ten")]);
    let c = load(&[("JWT_EXPIRATION_LEEWAY", "30")]).unwrap();
    assert_eq!(c.bearer.jwt_expiration_leeway, Some(30));
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
    assert_eq!(c.compat.storage_provider, StorageProvider::AliCloud);
    let c = load(&[("BARONG_STORAGE_PROVIDER", "AWS")]).unwrap();
    assert_eq!(c.compat.storage_provider, StorageProvider::Aws);
}

#[test]
fn given_compat_settings_are_named_for_the_start_warning() {
    assert!(load(&[]).unwrap().ignored.is_empty());
    let c = load(&[
        ("BARONG_STORAGE_PROVIDER", "aws"),
        ("BARONG_VAULT_TOKEN", "s.x"),
        ("BARONG_SESSION_NAME", "_s"),
    ])
    .unwrap();
    assert_eq!(c.ignored, ["BARONG_STORAGE_PROVIDER", "BARONG_VAULT_TOKEN"]);
    // A file counts as given, as the environment does.
    let file = Config::from_sources(&HashMap::new(), Some("sentry_dsn_backend = \"x\"")).unwrap();
    assert_eq!(file.ignored, ["BARONG_SENTRY_DSN_BACKEND"]);
}

#[test]
fn replay_store_follows_an_explicit_redis_url() {
    assert_eq!(
        load(&[]).unwrap().authz.apikey_replay_store,
        ReplayStore::Memory
    );
    let redis = [("BARONG_REDIS_URL", "redis://10.0.0.5:6379/2")];
    assert_eq!(
        load(&redis).unwrap().authz.apikey_replay_store,
        ReplayStore::Redis
    );
    let memory = [
        ("BARONG_REDIS_URL", "redis://10.0.0.5:6379/2"),
        ("BARONG_APIKEY_REPLAY_STORE", "memory"),
    ];
    assert_eq!(
        load(&memory).unwrap().authz.apikey_replay_store,
        ReplayStore::Memory
    );
    assert!(load(&[("BARONG_APIKEY_REPLAY_STORE", "etcd")]).is_err());
}

#[test]
fn uid_prefix_rule_and_upper_case() {
    assert_eq!(
        load(&[("BARONG_UID_PREFIX", "uid")])
            .unwrap()
            .users
            .uid_prefix,
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
    assert_eq!(c.users.password_regexp, "^.{12,}$");
}

#[test]
fn cors_origins() {
    let c = load(&[(
        "BARONG_API_CORS_ORIGINS",
        "https://A.example.com/, http://localhost:3000",
    )])
    .unwrap();
    assert_eq!(
        c.cors.api_cors_origins,
        vec!["https://a.example.com", "http://localhost:3000"]
    );
    assert!(!c.cors_allows_any_origin());
    let c = load(&[("BARONG_API_CORS_ORIGINS", "https://a.example.com:443")]).unwrap();
    assert_eq!(c.cors.api_cors_origins, vec!["https://a.example.com"]);
    let c = load(&[("BARONG_API_CORS_ORIGINS", "https://a.example.com,*,junk")]).unwrap();
    assert_eq!(c.cors.api_cors_origins, vec!["*"]);
    assert!(
        load(&[("BARONG_API_CORS_ORIGINS", "")])
            .unwrap()
            .cors
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
            .cors
            .api_cors_max_age,
        600
    );
    assert_eq!(
        load(&[("BARONG_API_CORS_MAX_AGE", "10m")])
            .unwrap()
            .cors
            .api_cors_max_age,
        3600
    );
    assert_eq!(
        load(&[("BARONG_API_CORS_MAX_AGE", "")])
            .unwrap()
            .cors
            .api_cors_max_age,
        3600
    );
}

#[test]
fn bad_address() {
    let e = error(&[("BARONG_AUTHZ_ADDR", "localhost")]);
    assert!(
        e.message.starts_with(
            r#"invalid BARONG_AUTHZ_ADDR="localhost": expected an IP address and port"#
        )
    );
    let e = error(&[("BARONG_API_ADDR", "127.0.0.1:8002")]);
    assert_eq!(e.setting, "BARONG_API_ADDR");
    let same = [
        ("BARONG_API_ADDR", "127.0.0.1:0"),
        ("BARONG_AUTHZ_ADDR", "127.0.0.1:0"),
    ];
    assert!(load(&same).is_ok());
    assert_eq!(load(&[]).unwrap().server.authz_grpc_addr, None);
    let grpc = load(&[("BARONG_AUTHZ_GRPC_ADDR", "127.0.0.1:8003")]).unwrap();
    assert_eq!(
        grpc.server.authz_grpc_addr,
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
        c.keys.jwt_private_key_path.as_deref(),
        Some(Path::new(file.path()))
    );
    assert_eq!(c.authz.maxminddb_path, None);
}

mod checks;
