//! The checks across settings (TLS pairs, production, Twilio, JWT), the TOML keys,
//! `describe()` and secrets, and Barong's `config/barong.yml`.

use super::*;

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
