//! The caches that keep decisions off the database: sessions, users, service accounts, API keys
//! (secret decrypted once), and the compiled permission and restriction snapshots.
//!
//! Freshness: every entry lives at most `BARONG_AUTHZ_CACHE_TTL`; invalidations (local at once,
//! other instances through LISTEN/NOTIFY) evict entries as soon as they arrive. Memory is bounded
//! by weighers (approximate bytes per entry).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use tokio::sync::broadcast;

use super::apikey::KeyMac;
use super::policy::{Permissions, Restrictions};
use super::timed_cache::TimedCache;
use crate::clock::Tick;
use crate::crypto::encryption::Encryptor;
use crate::domain::{ApiKey, ServiceAccount, Session, SessionDigest, User, session_digest_of_key};
use crate::invalidation::{Invalidation, InvalidationBus};
use crate::snapshot::Snapshot;
use crate::store::{Store, StoreError};

/// A cached session: only what the decision reads (the row has more), so 100,000 cached
/// sessions stay small; its sliding expiry is kept in memory.
#[derive(Debug)]
pub struct CachedSession {
    pub user_id: i64,
    /// The address the session was opened from, parsed once; `None` if the stored text does
    /// not parse (then no binding allows it).
    pub user_ip: Option<std::net::IpAddr>,
    pub user_agent: Option<Box<str>>,
    pub csrf_token: Box<str>,
    /// Read through [`Self::expiry`]: a thread's copy slides its origin's.
    sliding: SlidingExpiry,
    /// `Some` in a thread's own copy of a hot session (`thread_front`): the shared entry it
    /// copies. Every copy slides that one expiry. A pointer here rather than the expiry behind
    /// an `Arc` of its own: that would cost every cached session an allocation, 4 MiB for
    /// 100,000 (`benches/load.sh`), for the few that ever get copied.
    origin: Option<Arc<CachedSession>>,
    /// The session's policy, chosen from its agent on first use (the agent never changes).
    pub policy: std::sync::OnceLock<crate::domain::SessionPolicy>,
}

/// A session's expiry as it slides.
#[derive(Debug)]
pub struct SlidingExpiry {
    /// The current expiry (moves on every use).
    pub expire_at: AtomicI64,
    /// The expiry last queued for the database.
    pub persisted: AtomicI64,
}

impl CachedSession {
    fn of(session: Session) -> Self {
        Self {
            user_id: session.user_id,
            user_ip: session.user_ip.parse().ok(),
            user_agent: session.user_agent.map(String::into_boxed_str),
            csrf_token: session.csrf_token.into_boxed_str(),
            sliding: SlidingExpiry {
                expire_at: AtomicI64::new(session.expire_at),
                persisted: AtomicI64::new(session.expire_at),
            },
            origin: None,
            policy: std::sync::OnceLock::new(),
        }
    }

    /// The expiry this session slides, shared by every thread's copy.
    pub fn expiry(&self) -> &SlidingExpiry {
        self.origin
            .as_deref()
            .map_or(&self.sliding, |origin| &origin.sliding)
    }

    /// A thread's own copy (see `origin`).
    fn own_copy(entry: &Option<Arc<CachedSession>>) -> Option<Arc<CachedSession>> {
        let shared = entry.as_ref()?;
        let origin = shared.origin.clone().unwrap_or_else(|| shared.clone());
        Some(Arc::new(CachedSession {
            user_id: shared.user_id,
            user_ip: shared.user_ip,
            user_agent: shared.user_agent.clone(),
            csrf_token: shared.csrf_token.clone(),
            // Never read: `expiry` goes to the origin's.
            sliding: SlidingExpiry {
                expire_at: AtomicI64::new(0),
                persisted: AtomicI64::new(0),
            },
            origin: Some(origin),
            policy: shared.policy.clone(),
        }))
    }
}

/// A cached API key with its HMAC key ready (the secret is decrypted once, on load).
/// Like a session, a thread may hold a copy of its own; the last use is shared.
#[derive(Clone)]
pub struct CachedKey {
    pub key: ApiKey,
    pub hmac: Option<KeyMac>,
    /// `key.state == "active"`, read on every request (one byte here, not the string's).
    pub active: bool,
    /// The last use queued for the database (epoch seconds).
    pub used: Arc<AtomicI64>,
}

impl std::fmt::Debug for CachedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedKey")
            .field("kid", &self.key.kid)
            .finish_non_exhaustive()
    }
}

/// Why a load failed: the decision fails closed with 503 for these.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct LoadError(pub String);

impl From<StoreError> for LoadError {
    fn from(error: StoreError) -> Self {
        Self(error.to_string())
    }
}

/// All caches of the authz path.
pub struct Caches {
    store: Arc<dyn Store>,
    encryptor: Arc<Encryptor>,
    sessions: TimedCache<SessionDigest, Option<Arc<CachedSession>>>,
    users: TimedCache<i64, Option<Arc<User>>>,
    service_accounts: TimedCache<i64, Option<Arc<ServiceAccount>>>,
    api_keys: TimedCache<String, Option<Arc<CachedKey>>>,
    pub permissions: Snapshot<Permissions>,
    pub restrictions: Snapshot<Restrictions>,
}

/// Memory bounds (approximate bytes) per cache.
const SESSIONS_BYTES: u64 = 64 << 20;
const USERS_BYTES: u64 = 32 << 20;
const KEYS_BYTES: u64 = 16 << 20;

impl Caches {
    /// Builds the caches and loads the first snapshots (failing start-up if the database
    /// cannot give them).
    pub async fn new(
        store: Arc<dyn Store>,
        encryptor: Arc<Encryptor>,
        ttl: Duration,
    ) -> Result<Arc<Self>, StoreError> {
        let permissions = Permissions::new(store.list_permissions().await?);
        let restrictions = Restrictions::new(store.list_restrictions().await?);
        Ok(Arc::new(Self {
            store,
            encryptor,
            // Approximate bytes: the entry (about 110 beside key and value), the digest, the
            // `CachedSession` and its agent and CSRF token.
            sessions: TimedCache::new(
                ttl,
                SESSIONS_BYTES,
                350,
                |_, _| 350,
                CachedSession::own_copy,
            ),
            users: TimedCache::new(ttl, USERS_BYTES, 500, |_, _| 500, own_copy),
            service_accounts: TimedCache::new(ttl, USERS_BYTES, 400, |_, _| 400, own_copy),
            api_keys: TimedCache::new(
                ttl,
                KEYS_BYTES,
                700,
                |k: &String, _| 700 + k.len() as u64,
                own_copy,
            ),
            permissions: Snapshot::new(permissions),
            restrictions: Snapshot::new(restrictions),
        }))
    }

    /// The session whose cookie hashes to `digest` (its row id is the digest in hex).
    /// (Every read takes the decision's clock, `now`: see `TimedCache::get_or_load`.)
    pub async fn session(
        &self,
        digest: &SessionDigest,
        now: Tick,
    ) -> Result<Option<Arc<CachedSession>>, LoadError> {
        let load = || async {
            let session = self.store.find_session(&hex::encode(digest)).await?;
            Ok::<_, StoreError>(session.map(|session| Arc::new(CachedSession::of(session))))
        };
        Ok(self.sessions.get_or_load(digest, now, load).await?)
    }

    /// What `read` makes of the session this thread's front holds for `digest` (and the
    /// users, service accounts and keys below): lent, not cloned; `None` when the front does
    /// not hold it or `read` gives up (`TimedCache::lend`).
    pub fn lend_session<R>(
        &self,
        digest: &SessionDigest,
        now: Tick,
        read: impl FnOnce(Option<&Arc<CachedSession>>) -> Option<R>,
    ) -> Option<R> {
        self.sessions
            .lend(digest, now, |session| read(session.as_ref()))
    }

    pub fn lend_user<R>(
        &self,
        id: i64,
        now: Tick,
        read: impl FnOnce(Option<&Arc<User>>) -> Option<R>,
    ) -> Option<R> {
        self.users.lend(&id, now, |user| read(user.as_ref()))
    }

    pub fn lend_service_account<R>(
        &self,
        id: i64,
        now: Tick,
        read: impl FnOnce(Option<&Arc<ServiceAccount>>) -> Option<R>,
    ) -> Option<R> {
        self.service_accounts
            .lend(&id, now, |account| read(account.as_ref()))
    }

    pub fn lend_api_key<R>(
        &self,
        kid: &str,
        now: Tick,
        read: impl FnOnce(Option<&Arc<CachedKey>>) -> Option<R>,
    ) -> Option<R> {
        self.api_keys.lend(kid, now, |key| read(key.as_ref()))
    }

    /// Forgets the session with row id `id` (the hex of its digest).
    pub async fn forget_session(&self, id: &str) {
        if let Some(digest) = session_digest_of_key(id) {
            self.sessions.invalidate(&digest);
        }
    }

    pub async fn user(&self, id: i64, now: Tick) -> Result<Option<Arc<User>>, LoadError> {
        let load =
            || async { Ok::<_, StoreError>(self.store.find_user_by_id(id).await?.map(Arc::new)) };
        Ok(self.users.get_or_load(&id, now, load).await?)
    }

    pub async fn service_account(
        &self,
        id: i64,
        now: Tick,
    ) -> Result<Option<Arc<ServiceAccount>>, LoadError> {
        let load = || async {
            let account = self.store.find_service_account_by_id(id).await?;
            Ok::<_, StoreError>(account.map(Arc::new))
        };
        Ok(self.service_accounts.get_or_load(&id, now, load).await?)
    }

    pub async fn api_key(&self, kid: &str, now: Tick) -> Result<Option<Arc<CachedKey>>, LoadError> {
        let (store, encryptor) = (&self.store, &self.encryptor);
        Ok(self
            .api_keys
            .get_or_load(kid, now, || async move {
                let Some(key) = store.find_api_key(kid).await? else {
                    return Ok::<_, StoreError>(None);
                };
                let hmac = match encryptor.decrypt(&key.secret_encrypted) {
                    Ok(secret) => KeyMac::new(&key.algorithm, secret.as_bytes()),
                    Err(error) => {
                        tracing::error!(kid = %key.kid, %error, "API key secret unreadable");
                        None
                    }
                };
                let used = Arc::new(AtomicI64::new(key.last_used_at.unwrap_or(0)));
                let active = key.state == "active";
                Ok(Some(Arc::new(CachedKey {
                    key,
                    hmac,
                    active,
                    used,
                })))
            })
            .await?)
    }

    /// Reloads the permission snapshot; on failure the previous one stays in use.
    pub async fn reload_permissions(&self) {
        match self.store.list_permissions().await {
            Ok(rows) => self.permissions.store(Arc::new(Permissions::new(rows))),
            Err(error) => tracing::warn!(%error, "permissions not reloaded; keeping the last ones"),
        }
    }

    /// Reloads the restriction snapshot; on failure the previous one stays in use.
    pub async fn reload_restrictions(&self) {
        match self.store.list_restrictions().await {
            Ok(rows) => self.restrictions.store(Arc::new(Restrictions::new(rows))),
            Err(error) => {
                tracing::warn!(%error, "restrictions not reloaded; keeping the last ones")
            }
        }
    }

    async fn apply(&self, invalidation: Invalidation) {
        match invalidation {
            Invalidation::Session(id) => self.forget_session(&id).await,
            Invalidation::User(uid) => {
                let owned_by = |holder: Option<&str>| holder == Some(uid.as_str());
                self.users
                    .invalidate_where(|_, user| owned_by(user.as_ref().map(|u| u.uid.as_str())));
                self.service_accounts
                    .invalidate_where(|_, sa| owned_by(sa.as_ref().map(|s| s.uid.as_str())));
            }
            Invalidation::ApiKey(kid) => self.api_keys.invalidate(kid.as_str()),
            Invalidation::Permissions => self.reload_permissions().await,
            Invalidation::Restrictions => self.reload_restrictions().await,
            Invalidation::AllSessions => self.sessions.invalidate_all(),
            // Applied by the key watcher (`crate::keys`), not a cache.
            Invalidation::SigningKeys => {}
        }
    }

    /// Applies invalidations as they arrive and refreshes the snapshots every `ttl`.
    pub async fn maintain(self: Arc<Self>, bus: InvalidationBus, ttl: Duration) {
        let mut receiver = bus.subscribe();
        let mut refresh = tokio::time::interval(ttl);
        refresh.tick().await;
        loop {
            tokio::select! {
                received = receiver.recv() => match received {
                    Ok(stamped) => {
                        self.apply(stamped.invalidation).await;
                        if let Some(seq) = stamped.seq {
                            bus.acknowledge(seq);
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let published = bus.last_published();
                        self.clear().await;
                        bus.acknowledge(published);
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = refresh.tick() => {
                    self.reload_permissions().await;
                    self.reload_restrictions().await;
                }
            }
        }
    }

    /// Missed invalidations: forget everything rather than risk serving stale entries.
    async fn clear(&self) {
        self.sessions.invalidate_all();
        self.users.invalidate_all();
        self.service_accounts.invalidate_all();
        self.api_keys.invalidate_all();
        self.reload_permissions().await;
        self.reload_restrictions().await;
    }

    /// (cache, lookups, misses) since start, for the hit ratio in `/metrics`.
    pub fn lookups(&self) -> [(&'static str, u64, u64); 4] {
        let counts = [
            ("sessions", self.sessions.lookups()),
            ("users", self.users.lookups()),
            ("service_accounts", self.service_accounts.lookups()),
            ("api_keys", self.api_keys.lookups()),
        ];
        counts.map(|(name, (lookups, misses))| (name, lookups, misses))
    }

    /// Entry counts, for metrics and the memory benchmark.
    pub fn sizes(&self) -> [(&'static str, u64); 4] {
        [
            ("sessions", self.sessions.entry_count()),
            ("users", self.users.entry_count()),
            ("service_accounts", self.service_accounts.entry_count()),
            ("api_keys", self.api_keys.entry_count()),
        ]
    }
}

/// A thread's own copy of a cached entry (`thread_front`): a new allocation with the same
/// fields, so its reference count is written by this thread only.
fn own_copy<T: Clone>(entry: &Option<Arc<T>>) -> Option<Arc<T>> {
    entry.as_deref().map(|value| Arc::new(value.clone()))
}

/// Notes a use of a key at `now`; returns it when it is due for the database (at most once
/// per key per `write_every` seconds).
pub fn key_used(key: &CachedKey, now: i64, write_every: i64) -> Option<i64> {
    let queued = key.used.load(Ordering::Relaxed);
    (now - queued >= write_every
        && key
            .used
            .compare_exchange(queued, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok())
    .then_some(now)
}

/// Moves a session's sliding expiry; returns the expiry to persist when it is due.
pub fn slide(session: &CachedSession, new_expiry: i64, write_every: i64) -> Option<i64> {
    // Read first: the expiry moves once a second at most, and a `fetch_max` takes the cache
    // line for writing even when it changes nothing (two cores using one session would pass
    // it back and forth on every request).
    let expiry = session.expiry();
    if expiry.expire_at.load(Ordering::Relaxed) < new_expiry {
        expiry.expire_at.fetch_max(new_expiry, Ordering::Relaxed);
    }
    let persisted = expiry.persisted.load(Ordering::Relaxed);
    if new_expiry - persisted >= write_every
        && expiry
            .persisted
            .compare_exchange(persisted, new_expiry, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        return Some(new_expiry);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_threads_copy_slides_the_shared_expiry() {
        let now = chrono::Utc::now();
        let shared = Arc::new(CachedSession::of(Session {
            id: "00".into(),
            user_id: 7,
            uid: "ID7".into(),
            user_ip: "10.0.0.1".into(),
            user_agent: Some("agent".into()),
            csrf_token: "csrf".into(),
            expire_at: 1_000,
            created_at: now,
            updated_at: now,
            public_id: "p".into(),
            authenticated_with: "password".into(),
            user_ip_country: None,
        }));
        let copy = CachedSession::own_copy(&Some(shared.clone())).expect("a copy");
        let copy_of_copy = CachedSession::own_copy(&Some(copy.clone())).expect("a copy");
        assert!(!Arc::ptr_eq(&copy, &shared));
        assert_eq!(copy.csrf_token, shared.csrf_token);
        assert_eq!(slide(&copy, 2_000, 30), Some(2_000), "due for the database");
        assert_eq!(shared.expiry().expire_at.load(Ordering::Relaxed), 2_000);
        // The origin's write-behind mark moved too: no second write from another copy.
        assert_eq!(slide(&copy_of_copy, 2_010, 30), None);
        assert_eq!(copy.expiry().expire_at.load(Ordering::Relaxed), 2_010);
        assert_eq!(CachedSession::own_copy(&None).map(|_| ()), None);
    }
}
