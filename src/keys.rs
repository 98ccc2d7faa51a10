//! The signing keys of a running instance: the configured key until the first rotation, then
//! the keys `barong keys rotate` stores in the database. Every instance re-reads them on a
//! rotation announcement (PostgreSQL `NOTIFY`, through the invalidation relay) and every
//! `BARONG_KEYS_RELOAD_INTERVAL`, so a new key becomes current everywhere without a restart.
//!
//! A retired key keeps verifying, and stays in the JWKS, for `retention`: the token lifetime,
//! the expiration leeway, and the reload interval (an instance that has not heard of the
//! rotation yet may still sign with it for that long). Then it leaves the ring.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::crypto::encryption::Encryptor;
use crate::crypto::jws::JwtSigner;
use crate::crypto::keyring::{KeyRing, KeySpec, SharedKeys};
use crate::crypto::keys::{self, KeyAlgorithm, KeyError, SigningKey};
use crate::domain::StoredSigningKey;
use crate::invalidation::{Invalidation, InvalidationBus, Stamped};
use crate::store::{Store, StoreError};

/// Why the keys could not be read or rotated.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Key(#[from] KeyError),
    #[error("signing key {0} cannot be decrypted with BARONG_ENCRYPTION_KEY")]
    Decrypt(String),
    #[error("signing key {kid}: unknown algorithm {algorithm}")]
    Algorithm { kid: String, algorithm: String },
}

/// How long a retired key keeps verifying, seconds.
pub fn retention(config: &Config) -> i64 {
    let leeway = crate::crypto::bearer::Leeways::from_config(&config.bearer)
        .exp
        .max(0);
    let seconds = config
        .keys
        .jwt_expire_time
        .saturating_add(config.keys.keys_reload_interval);
    i64::try_from(seconds)
        .unwrap_or(i64::MAX / 2)
        .saturating_add(leeway)
}

/// The ring from the database, or the configured key alone before the first rotation.
pub async fn load_ring(
    store: &dyn Store,
    encryptor: &Encryptor,
    configured: &SigningKey,
    retention: i64,
) -> Result<KeyRing, KeysError> {
    let now = chrono::Utc::now().timestamp();
    let rows = store.list_signing_keys(now - retention).await?;
    let mut current = None;
    let mut previous = Vec::new();
    for row in &rows {
        let key = decrypt(encryptor, row)?;
        match row.retired_at {
            None if current.is_none() => current = Some(key),
            // A second current row (cannot happen through `rotate`) verifies like a retired one.
            None => previous.push(KeySpec {
                key,
                retires_at: Some(now + retention),
            }),
            Some(at) => previous.push(KeySpec {
                key,
                retires_at: Some(at + retention),
            }),
        }
    }
    let current = current.unwrap_or_else(|| configured.clone());
    Ok(KeyRing::new(&current, &previous)?)
}

fn decrypt(encryptor: &Encryptor, row: &StoredSigningKey) -> Result<SigningKey, KeysError> {
    let algorithm =
        KeyAlgorithm::from_name(&row.algorithm).ok_or_else(|| KeysError::Algorithm {
            kid: row.kid.clone(),
            algorithm: row.algorithm.clone(),
        })?;
    let pem = encryptor
        .decrypt(&row.private_key)
        .map_err(|_| KeysError::Decrypt(row.kid.clone()))?;
    let origin = Path::new("signing_keys").join(&row.kid);
    Ok(SigningKey::from_pem(pem, algorithm, &origin)?)
}

/// Where an instance reads its keys from.
pub struct KeySource {
    pub store: Arc<dyn Store>,
    pub encryptor: Arc<Encryptor>,
    /// The configured key: current until the first rotation.
    pub configured: SigningKey,
    /// How long a retired key keeps verifying, seconds (see [`retention`]).
    pub retention: i64,
}

/// Keeps `shared` up to date until `shutdown`: on every rotation announcement and every
/// `interval`. A failed read keeps the ring in use (its retired keys still expire on time).
pub async fn watch(
    source: KeySource,
    shared: Arc<SharedKeys>,
    bus: InvalidationBus,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let KeySource {
        store,
        encryptor,
        configured,
        retention,
    } = source;
    let mut announcements = bus.subscribe();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
            received = announcements.recv() => match received {
                Ok(Stamped { invalidation: Invalidation::SigningKeys, .. }) => {}
                Ok(_) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            },
        }
        match load_ring(store.as_ref(), &encryptor, &configured, retention).await {
            Ok(ring) => {
                let before = shared.load().current().kid().to_owned();
                if ring.current().kid() != before {
                    tracing::info!(kid = ring.current().kid(), previous = %before, "signing key rotated");
                }
                shared.replace(ring);
            }
            Err(error) => {
                tracing::warn!(%error, "signing keys not reloaded; keeping the current ones")
            }
        }
    }
}

/// What `barong keys rotate` did.
#[derive(Debug)]
pub struct Rotation {
    pub new_kid: String,
    pub previous_kid: String,
    /// When tokens of the previous key stop verifying.
    pub previous_verifies_until: i64,
}

/// Makes a new key of `algorithm` current for every instance: stored encrypted, announced.
pub async fn rotate(
    store: &dyn Store,
    encryptor: &Encryptor,
    configured: &SigningKey,
    algorithm: KeyAlgorithm,
    retention: i64,
) -> Result<Rotation, KeysError> {
    let previous = load_ring(store, encryptor, configured, retention).await?;
    let now = chrono::Utc::now().timestamp();
    let pem = keys::generate_private_key_pem(algorithm)?;
    let key = SigningKey::from_pem(pem.clone(), algorithm, Path::new("generated key"))?;
    let new = StoredSigningKey {
        kid: JwtSigner::new(&key)?.kid().to_owned(),
        algorithm: algorithm.name().to_owned(),
        private_key: encryptor.encrypt(&pem),
        created_at: now,
        retired_at: None,
    };
    let first = StoredSigningKey {
        kid: JwtSigner::new(configured)?.kid().to_owned(),
        algorithm: configured.algorithm.name().to_owned(),
        private_key: encryptor.encrypt(&configured.pem),
        created_at: now - 1,
        retired_at: None,
    };
    store.rotate_signing_key(&new, &first).await?;
    // Other instances hear of it at once (PostgreSQL); all of them also poll.
    let announcement = format!("cli-{} {}", now, Invalidation::SigningKeys.encode());
    if let Err(error) = store.notify_invalidation(&announcement).await {
        tracing::warn!(%error, "rotation not announced; instances pick it up when they poll");
    }
    Ok(Rotation {
        new_kid: new.kid,
        previous_kid: previous.current().kid().to_owned(),
        previous_verifies_until: now + retention,
    })
}
