use super::settings::DEFAULT_PASSWORD_REGEXP;
use super::settings::*;
use super::sources::*;
use super::value::*;
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
        let path = std::env::temp_dir().join(format!("barong-config-{}-{n}", std::process::id()));
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
    assert!(load(&both).unwrap().tls.tls_cert_path.is_some());
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
    assert!(c.tls.tls_cert_path.is_none() && c.tls.authz_tls_cert_path.is_some());
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
    assert_eq!(c.server.log_format, LogFormat::Json);
    assert_eq!(c.encryption_key_bytes().unwrap()[31], 0x1f);
    // Barong's default makes the first sign-up a superadmin; production asks for it.
    assert!(!c.users.first_registration_superadmin);
    pairs.push(("BARONG_FIRST_REGISTRATION_SUPERADMIN", "true"));
    assert!(load(&pairs).unwrap().users.first_registration_superadmin);
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
            load(&[("BARONG_DATABASE_URL", good)])
                .unwrap()
                .database
                .database_url,
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
    assert_eq!(
        c.database.database_url,
        "sqlite:///var/lib/barong/barong.db"
    );
    assert_eq!(c.uploads.uploads_url, "file:///var/lib/barong/uploads");
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
        load(&pairs).unwrap().phone.phone_verification,
        PhoneVerification::TwilioVerify
    );
}

#[test]
fn jwt_verify_algorithm_follows_and_must_match_the_signer() {
    let c = load(&[("BARONG_JWT_ALGORITHM", "EdDSA")]).unwrap();
    assert_eq!(c.bearer.jwt_verify_algorithm, JwtAlgorithm::EdDsa);
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
    let e = Config::from_sources(&HashMap::new(), Some("barong_session_name = \"x\"")).unwrap_err();
    assert_eq!(e.setting, "barong_session_name");
    let e = Config::from_sources(&HashMap::new(), Some("session_expire_time = 1.5")).unwrap_err();
    assert_eq!(e.setting, "BARONG_SESSION_EXPIRE_TIME");
    let e = Config::from_sources(&HashMap::new(), Some("[smtp]\nhost = \"x\"")).unwrap_err();
    assert_eq!(e.setting, "smtp");
    let e = Config::from_sources(&HashMap::new(), Some("session_expire_time = ")).unwrap_err();
    assert_eq!(e.setting, "config file");
    assert!(e.message.contains("line 1"), "{e}");
    let e = Config::from_sources(&HashMap::new(), Some("csrf_protection = \"yes\"")).unwrap_err();
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
    let yml =
        BarongYml::from_yaml("activation_requirements:\nuser_storage_titles:\nstate_triggers:\n")
            .unwrap();
    assert_eq!(
        yml.activation_requirements,
        BarongYml::default().activation_requirements
    );
    assert!(yml.state_triggers.is_empty());
    let yml = BarongYml::from_yaml("activation_requirements: {email: verified, phone: verified}")
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
