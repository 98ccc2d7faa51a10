//! `barong serve`: opens the store, provisions keys, then runs the authz and REST listeners (and
//! the authz gRPC listener when `BARONG_AUTHZ_GRPC_ADDR` is set) until SIGTERM/SIGINT, when they
//! stop accepting, finish in-flight requests and return.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::api::{self, ApiState};
use crate::authz::audit::AuditQueue;
use crate::authz::cache::Caches;
use crate::authz::expiry::ExpiryQueue;
use crate::authz::geo::GeoIp;
use crate::authz::replay::ReplayGuard;
use crate::authz::token::TokenMinter;
use crate::authz::{self, Authz, AuthzSettings, Rules};
use crate::config::{CaptchaType, Config, ReplayStore};
use crate::crypto::encryption::Encryptor;
use crate::crypto::keyring::{MultisigKey, SharedKeys};
use crate::crypto::keys::{self, EncryptionKey, KeyAlgorithm, SigningKey};
use crate::domain::password::PasswordPolicy;
use crate::invalidation::{self, InvalidationBus};
use crate::seed::{DEFAULT_SEEDS, Seeds};
use crate::store::{self, Store, StoreOptions};

pub mod deadline;
pub mod listen;
pub mod tls;

use listen::{ConnLimits, serve_connections};

/// Why the server could not start or stopped with an error; printed as one line by `main`.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}")]
    Keys(#[from] keys::KeyError),
    #[error("{0}")]
    Store(#[from] store::StoreError),
    #[error("{0}")]
    Seed(#[from] crate::seed::SeedError),
    #[error("{0}")]
    Rules(#[from] authz::rules::RulesError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    SigningKeys(#[from] crate::keys::KeysError),
    #[error("{0}")]
    Invalid(String),
}

/// Keys the server signs and encrypts with.
pub struct Keys {
    /// The configured JWT signing key (the current one until the database holds rotated keys).
    pub signing: SigningKey,
    pub encryption: EncryptionKey,
    /// The separate jwt-multisig key (`BARONG_MULTISIG_PRIVATE_KEY_PATH`), if any.
    pub multisig: Option<SigningKey>,
}

/// The signing algorithm chosen by `BARONG_JWT_ALGORITHM`.
pub fn key_algorithm(config: &Config) -> KeyAlgorithm {
    match config.keys.jwt_algorithm {
        crate::config::JwtAlgorithm::Rs256 => KeyAlgorithm::Rs256,
        crate::config::JwtAlgorithm::Es256 => KeyAlgorithm::Es256,
        crate::config::JwtAlgorithm::EdDsa => KeyAlgorithm::EdDsa,
    }
}

/// The algorithm of the separate multisig key (`BARONG_MULTISIG_ALGORITHM`).
pub fn multisig_algorithm(config: &Config) -> KeyAlgorithm {
    match config.keys.multisig_algorithm {
        crate::config::JwtAlgorithm::Rs256 => KeyAlgorithm::Rs256,
        crate::config::JwtAlgorithm::Es256 => KeyAlgorithm::Es256,
        crate::config::JwtAlgorithm::EdDsa => KeyAlgorithm::EdDsa,
    }
}

/// Loads the configured keys; outside production, generates missing ones into the data dir.
pub fn load_keys(config: &Config) -> Result<Keys, ServeError> {
    let algorithm = key_algorithm(config);
    let signing = match &config.keys.jwt_private_key_path {
        Some(path) => SigningKey::load(path, algorithm)?,
        None => {
            let (key, generated) =
                keys::ensure_dev_signing_key(&config.server.data_dir, algorithm)?;
            let path = keys::dev_signing_key_path(&config.server.data_dir, algorithm);
            if generated {
                tracing::warn!(path = %path.display(), "JWT_PRIVATE_KEY_PATH unset: generated a development signing key");
            } else {
                tracing::warn!(path = %path.display(), "JWT_PRIVATE_KEY_PATH unset: using the development signing key");
            }
            key
        }
    };
    let encryption = load_encryption_key(config)?;
    let multisig = match &config.keys.multisig_private_key_path {
        Some(path) => Some(SigningKey::load(path, multisig_algorithm(config))?),
        None => None,
    };
    Ok(Keys {
        signing,
        encryption,
        multisig,
    })
}

/// The key that encrypts personal data at rest; outside production, a missing one is generated
/// into the data dir. Commands that only read or write such data need no signing key.
pub fn load_encryption_key(config: &Config) -> Result<EncryptionKey, ServeError> {
    Ok(match &config.keys.encryption_key {
        Some(secret) => EncryptionKey::parse(secret.expose())
            .ok_or_else(|| ServeError::Invalid("invalid BARONG_ENCRYPTION_KEY".into()))?,
        None => {
            let (key, generated) = keys::ensure_dev_encryption_key(&config.server.data_dir)?;
            let verb = if generated { "generated" } else { "using" };
            tracing::warn!(dir = %config.server.data_dir.display(), "BARONG_ENCRYPTION_KEY unset: {verb} the development encryption key");
            key
        }
    })
}

/// Opens the configured store.
pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, ServeError> {
    let options = StoreOptions {
        url: config.database.database_url.clone(),
        pool_size: config.database.db_pool_size as usize,
        connect_timeout: Duration::from_millis(config.database.db_connect_timeout),
    };
    Ok(store::open(&options).await?)
}

/// Loads the seeds file (or the built-in defaults) and inserts what is missing.
pub async fn seed(
    config: &Config,
    store: &dyn Store,
    file: Option<&Path>,
) -> Result<crate::seed::SeedReport, ServeError> {
    let seeds = match file.or(config.files.seeds_file.as_deref()) {
        Some(path) => Seeds::from_file(path)?,
        None => Seeds::parse(DEFAULT_SEEDS)?,
    };
    Ok(seeds.apply(store, &config.users.uid_prefix).await?)
}

/// Runs the server until a shutdown signal.
pub async fn serve(config: Config, migrate: bool) -> Result<(), ServeError> {
    let started = Instant::now();
    for name in &config.ignored {
        // Barong's deployments set these; refusing them would break a drop-in start, and
        // accepting them silently would let an operator believe they act (docs/configuration.md).
        tracing::warn!(
            setting = name,
            "accepted for compatibility with Barong and not used by this server"
        );
    }
    let keys = load_keys(&config)?;
    let https =
        tls::ListenersTls::load(&config.tls).map_err(|e| ServeError::Invalid(e.to_string()))?;
    let store = open_store(&config).await?;
    if migrate {
        let applied = store.migrate().await?;
        tracing::info!(?applied, "migrations applied");
    }
    if store.is_unseeded().await? {
        let report = seed(&config, store.as_ref(), None).await?;
        tracing::info!(?report, "empty database: default seeds loaded");
    }
    let bus = InvalidationBus::new();
    let encryptor = Arc::new(Encryptor::new(&keys.encryption));
    let retention = crate::keys::retention(&config);
    let ring = crate::keys::load_ring(store.as_ref(), &encryptor, &keys.signing, retention).await?;
    tracing::info!(
        kid = ring.current().kid(),
        keys = ring.keys().len(),
        "signing keys loaded"
    );
    let ring = Arc::new(SharedKeys::new(ring));
    let shutdown = CancellationToken::new();
    let source = crate::keys::KeySource {
        store: store.clone(),
        encryptor: encryptor.clone(),
        configured: keys.signing.clone(),
        retention,
    };
    let _keys = tokio::spawn(crate::keys::watch(
        source,
        ring.clone(),
        bus.clone(),
        Duration::from_secs(config.keys.keys_reload_interval),
        shutdown.clone(),
    ));
    let (authz_state, writers) =
        build_authz(&config, &keys, ring.clone(), store.clone(), bus.clone()).await?;
    let api_state = api_state(
        &config,
        store.clone(),
        &keys,
        ring.clone(),
        bus.clone(),
        authz_state.observe.clone(),
        authz_state.geoip.clone(),
    )?;
    // Before the listeners open, so that no change goes unrecorded.
    let _events = crate::events::start(
        &config,
        store.clone(),
        api_state.tokens.clone(),
        encryptor.as_ref().clone(),
        shutdown.clone(),
    );
    let maintain = tokio::spawn(authz_state.caches.clone().maintain(
        bus.clone(),
        Duration::from_secs(config.authz.authz_cache_ttl),
    ));
    let relay = tokio::spawn(invalidation::relay(
        store.clone(),
        bus.clone(),
        shutdown.clone(),
    ));

    let poll = (config.tls.tls_reload_interval > 0)
        .then(|| Duration::from_secs(config.tls.tls_reload_interval));
    tokio::spawn(tls::watch(https.reloaders(), poll, shutdown.clone()));
    spawn_signal_handler(shutdown.clone())?;
    let authz_listener = bind(config.server.authz_addr).await?;
    let api_listener = bind(config.server.api_addr).await?;
    let grpc_listener = match config.server.authz_grpc_addr {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    let grpc_addr = match &grpc_listener {
        Some(listener) => listener
            .local_addr()
            .map_err(|e| ServeError::Invalid(e.to_string()))?
            .to_string(),
        None => "off".to_owned(),
    };
    tracing::info!(
        authz = %authz_listener.local_addr().map_err(|e| ServeError::Invalid(e.to_string()))?,
        api = %api_listener.local_addr().map_err(|e| ServeError::Invalid(e.to_string()))?,
        authz_grpc = %grpc_addr,
        backend = ?store.backend(),
        authz_tls = https.authz.is_some(),
        api_tls = https.api.is_some(),
        startup_ms = started.elapsed().as_millis() as u64,
        "barong listening"
    );

    let _mail = crate::mail::spawn_worker(
        &config.mail,
        store.clone(),
        api_state.mail_wakeup.clone(),
        shutdown.clone(),
    );
    let api_router = with_authz_routes(
        api::router(api_state, management_config(&config)?),
        authz_state.clone(),
    );
    let limits = ConnLimits {
        header_read_timeout: Duration::from_secs(config.server.header_read_timeout),
        max_header_size: usize::try_from(config.server.max_header_size).unwrap_or(usize::MAX),
    };
    // The gRPC front of the same decision, with the authz listener's TLS (and mTLS) settings.
    let grpc_task = grpc_listener.map(|listener| {
        let state = authz_state.clone();
        tokio::spawn(serve_connections(
            "authz-grpc",
            listener,
            https.authz.clone(),
            move |peer| {
                hyper_util::service::TowerToHyperService::new(authz::grpc::service(&state, peer))
            },
            shutdown.clone(),
            limits,
        ))
    });
    let authz_task = tokio::spawn(serve_connections(
        "authz",
        authz_listener,
        https.authz,
        move |peer| {
            let state = authz::ConnectionHandle::new(&authz_state);
            hyper::service::service_fn(move |request| authz::handle(state.clone(), peer, request))
        },
        shutdown.clone(),
        limits,
    ));
    let api_task = tokio::spawn(serve_connections(
        "rest",
        api_listener,
        https.api,
        move |peer| listen::router_service(api_router.clone(), peer),
        shutdown.clone(),
        limits,
    ));
    let (authz_result, api_result) = tokio::join!(authz_task, api_task);
    if api_result.is_err() {
        tracing::error!("REST listener task failed");
    }
    if authz_result.is_err() {
        tracing::error!("authz listener task failed");
    }
    if let Some(task) = grpc_task
        && task.await.is_err()
    {
        tracing::error!("authz gRPC listener task failed");
    }
    // Every connection is closed, so the queues' last senders go with the authz state: the
    // writers drain what is queued and end.
    maintain.abort();
    let _ = relay.await;
    for writer in writers {
        let _ = writer.await;
    }
    tracing::info!("barong stopped: queued activities and session expiries written");
    Ok(())
}

/// Barong serves the decision on its API port too; proxies configured for Barong call it there.
fn with_authz_routes(router: axum::Router, authz: Arc<Authz>) -> axum::Router {
    use axum::extract::ConnectInfo;
    use axum::response::IntoResponse;
    let decide = move |ConnectInfo(peer): ConnectInfo<SocketAddr>,
                       request: axum::extract::Request| {
        let authz = authz.clone();
        async move {
            match authz::handle(authz, peer, request).await {
                Ok(response) => response.into_response(),
                Err(never) => match never {},
            }
        }
    };
    router
        .route("/api/v2/auth", axum::routing::any(decide.clone()))
        .route("/api/v2/auth/{*path}", axum::routing::any(decide))
}

/// The authz state and the background writers it feeds (public for the benchmarks, which drive
/// [`authz::handle`] in-process on exactly what `serve` builds). Needs a Tokio runtime: the
/// writers are spawned on it.
pub async fn build_authz(
    config: &Config,
    keys: &Keys,
    ring: Arc<SharedKeys>,
    store: Arc<dyn Store>,
    bus: InvalidationBus,
) -> Result<(Arc<Authz>, Vec<tokio::task::JoinHandle<()>>), ServeError> {
    let encryptor = Arc::new(Encryptor::new(&keys.encryption));
    let ttl = Duration::from_secs(config.authz.authz_cache_ttl);
    let caches = Caches::new(store.clone(), encryptor, ttl).await?;
    let geoip = match &config.authz.maxminddb_path {
        Some(path) => Some(Arc::new(
            GeoIp::open(path, config.authz.geoip_lang.as_str()).map_err(ServeError::Invalid)?,
        )),
        None => None,
    };
    let (audit, audit_task) = AuditQueue::start(store.clone());
    let (expiry, expiry_task) = ExpiryQueue::start(store.clone());
    let nonce_window = Duration::from_millis(config.authz.apikey_nonce_lifetime.saturating_mul(2));
    let nonce_window = nonce_window.max(Duration::from_secs(1));
    let replay = match (
        config.authz.apikey_replay_protection,
        config.authz.apikey_replay_store,
    ) {
        (false, _) => None,
        (true, ReplayStore::Memory) => Some(ReplayGuard::memory(nonce_window)),
        (true, ReplayStore::Redis) if config.redis.redis_cluster => {
            return Err(ServeError::Invalid(
                "BARONG_REDIS_CLUSTER=true: replay protection needs one Redis endpoint".into(),
            ));
        }
        (true, ReplayStore::Redis) => Some(
            ReplayGuard::redis(
                &config.redis.redis_url,
                config.redis.redis_password.expose(),
                nonce_window,
            )
            .map_err(|e| ServeError::Invalid(format!("BARONG_REDIS_URL: {e}")))?,
        ),
    };
    let observe = Arc::new(crate::observe::Observability::new(
        &config.limits,
        store.shared_counters(),
    ));
    let authz = Authz {
        settings: AuthzSettings {
            session_name: config.session.session_name.clone(),
            sessions: config.session_policies(),
            session_write_behind: i64::try_from(config.session.session_write_behind).unwrap_or(30),
            csrf_protection: config.authz.csrf_protection,
            trusted_proxies: config.trusted_proxies(),
            nonce_lifetime_ms: i64::try_from(config.authz.apikey_nonce_lifetime).unwrap_or(5000),
            replay_protection: config.authz.apikey_replay_protection,
            future_skew_ms: i64::try_from(config.authz.apikey_future_skew).unwrap_or(1000),
        },
        rules: Rules::load(config.authz.authz_rules_file.as_deref())?,
        caches,
        tokens: TokenMinter::new(
            ring.clone(),
            config.keys.jwt_expire_time,
            config.authz.jwt_reuse_time,
        ),
        keys: ring,
        audit,
        expiry,
        store,
        bus,
        geoip,
        replay,
        metrics: Default::default(),
        observe,
    };
    Ok((Arc::new(authz), vec![audit_task, expiry_task]))
}

/// The REST state from the settings: policy compiled once, `configs` body rendered once.
pub fn api_state(
    config: &Config,
    store: Arc<dyn Store>,
    keys: &Keys,
    ring: Arc<SharedKeys>,
    invalidation: InvalidationBus,
    observe: Arc<crate::observe::Observability>,
    geoip: Option<Arc<GeoIp>>,
) -> Result<ApiState, ServeError> {
    let audience = if config.bearer.jwt_audience.is_empty() {
        vec!["peatio".into(), "barong".into()]
    } else {
        config.bearer.jwt_audience.clone()
    };
    let issuer = config
        .bearer
        .jwt_issuer
        .clone()
        .unwrap_or_else(|| "barong".into());
    let bearer = crate::crypto::bearer::JwtVerifier::new(
        ring.clone(),
        &issuer,
        &audience,
        crate::crypto::bearer::Leeways::from_config(&config.bearer),
    );
    let multisig = match &keys.multisig {
        Some(key) => Some(MultisigKey::new(key)?),
        None => None,
    };
    let policy = PasswordPolicy::new(
        &config.users.password_regexp,
        config.users.password_min_entropy as f64,
        config.users.password_use_dictionary,
    )
    .map_err(|e| ServeError::Invalid(format!("invalid BARONG_PASSWORD_REGEXP: {e}")))?;
    Ok(ApiState {
        store,
        password_policy: Arc::new(policy),
        public_configs: Arc::new(public_configs(config)),
        version: Arc::new(version_info()),
        max_body_size: config.server.max_body_size as usize,
        ready_timeout: Duration::from_millis(config.database.db_connect_timeout),
        config: Arc::new(config.clone()),
        invalidation,
        tokens: Arc::new(crate::crypto::tokens::TokenSigner::new(
            ring,
            multisig,
            i64::try_from(config.keys.jwt_expire_time).unwrap_or(3600),
        )),
        captcha: Arc::new(crate::captcha::Captcha::from_config(config)),
        mail_wakeup: Arc::new(tokio::sync::Notify::new()),
        bearer: Arc::new(bearer),
        state_rules: Arc::new(crate::domain::StateRules {
            activation_requirements: config.barong_yml.activation_requirements.clone(),
            state_triggers: config.barong_yml.state_triggers.clone(),
        }),
        encryptor: Arc::new(Encryptor::new(&keys.encryption)),
        observe,
        geoip,
        phone_verifier: Arc::new(crate::sms::PhoneVerifier::new(config)),
        uploads: Arc::new(
            crate::uploads::Uploads::open(&config.uploads.uploads_url)
                .map_err(|e| ServeError::Invalid(e.to_string()))?,
        ),
    })
}

/// The management API's signers and scopes (`BARONG_MANAGEMENT_API_FILE`; none: every call 401).
fn management_config(
    config: &Config,
) -> Result<crate::api::management::ManagementConfig, ServeError> {
    let management = match &config.management.management_api_file {
        Some(path) => crate::api::management::ManagementConfig::load(path)
            .map_err(|e| ServeError::Invalid(format!("BARONG_MANAGEMENT_API_FILE: {e}")))?,
        None => crate::api::management::ManagementConfig::default(),
    };
    let max_age = i64::try_from(config.management.management_max_age).unwrap_or(300);
    Ok(management.with_max_age(max_age))
}

/// The body of `GET configs`, null entries omitted as Barong omits them.
fn public_configs(config: &Config) -> Value {
    let mut body = serde_json::Map::new();
    body.insert(
        "session_expire_time".into(),
        json!(config.session.session_expire_time),
    );
    body.insert(
        "captcha_type".into(),
        json!(config.captcha.captcha.as_str()),
    );
    if config.captcha.captcha == CaptchaType::Recaptcha {
        body.insert(
            "captcha_id".into(),
            json!(config.captcha.recaptcha_site_key),
        );
    }
    body.insert(
        "phone_verification_type".into(),
        json!(config.phone.phone_verification.as_str()),
    );
    body.insert(
        "password_min_entropy".into(),
        json!(config.users.password_min_entropy),
    );
    body.insert(
        "password_regexp".into(),
        json!(format!("(?-mix:{})", config.users.password_regexp)),
    );
    Value::Object(body)
}

/// Barong's `version` fields; the API level we implement is Barong 2.7.0.
fn version_info() -> Value {
    json!({
        "git_tag": "2.7.0",
        "git_sha": option_env!("BARONG_GIT_SHA").unwrap_or("unknown"),
        "build_date": option_env!("BARONG_BUILD_DATE").unwrap_or("1970-01-01T00:00:00.000+00:00"),
        "version": "2.7.0",
    })
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })
}

/// Registers SIGTERM and SIGINT handlers now (before the listeners announce themselves, so a
/// signal sent right after start-up is not lost) and cancels `token` when one arrives.
fn spawn_signal_handler(token: CancellationToken) -> Result<(), ServeError> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let register = |kind| {
            signal(kind).map_err(|e| ServeError::Invalid(format!("cannot handle signals: {e}")))
        };
        let mut term = register(SignalKind::terminate())?;
        let mut int = register(SignalKind::interrupt())?;
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {},
                _ = int.recv() => {},
            }
            tracing::info!("shutdown signal received: finishing in-flight requests");
            token.cancel();
        });
    }
    #[cfg(not(unix))]
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        token.cancel();
    });
    Ok(())
}
