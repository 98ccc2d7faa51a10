//! Storage: one [`Store`] trait that the rest of the server talks to, made of one sub-trait per
//! aggregate (users, sessions, labels, keys, ...), with an embedded SQLite backend (the
//! zero-setup default) and a PostgreSQL one (production, several instances).
//!
//! Each aggregate module (`users.rs`, `sessions.rs`, ...) declares its trait and implements it
//! once, for every backend, against the small layer in [`sql`]; the backends (`sqlite.rs`,
//! `postgres.rs`) keep their pool, error mapping, migrations runner and the few statements that
//! truly differ. Both run the same test suite (`tests/it/storage.rs`), so a behaviour that
//! differs between them is a bug.

mod access;
mod activities;
mod admin_sql;
mod credentials;
mod documents;
mod events;
mod keys;
mod label_rows;
mod labels;
mod migrate;
mod outbox;
mod passkeys;
mod phones;
mod postgres;
mod profiles;
mod records;
mod rows;
mod sessions;
mod signing_keys;
pub(crate) mod sql;
mod sqlite;
mod users;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::crypto::encryption::Encryptor;
use crate::domain::{Document, User};

pub use access::AccessStore;
pub use activities::ActivityStore;
pub use credentials::CredentialStore;
pub use documents::DocumentStore;
pub use keys::KeyStore;
pub use labels::LabelStore;
pub use outbox::OutboxStore;
pub use passkeys::PasskeyStore;
pub use phones::PhoneStore;
pub use postgres::PostgresStore;
pub use profiles::ProfileStore;
pub use records::RecordStore;
pub use sessions::SessionStore;
pub use signing_keys::SigningKeyStore;
pub use sqlite::SqliteStore;
pub use users::UserStore;

/// `use crate::store::prelude::*;` brings [`Store`] and every aggregate trait into scope, so
/// any store method can be called on an `Arc<dyn Store>`.
pub mod prelude {
    pub use super::{
        AccessStore, ActivityStore, CredentialStore, DocumentStore, KeyStore, LabelStore,
        OutboxStore, PhoneStore, ProfileStore, RecordStore, SessionStore, SigningKeyStore, Store,
        UserStore,
    };
}

/// What can go wrong below the domain: the HTTP layer maps these to Barong's keys in one place.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached (connect refused, pool timeout): callers answer 503.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A unique rule refused the write; says what clashed.
    #[error("conflict on {0}")]
    Conflict(Clash),
    /// A migration failed; the message names the file.
    #[error("migration failed: {0}")]
    Migration(String),
    /// Anything else the driver reported.
    #[error("database error: {0}")]
    Backend(String),
}

/// What a refused write clashed with (a unique index, or a rule the store checks itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Clash {
    /// A user's or service account's e-mail.
    Email,
    /// A user's or service account's uid.
    Uid,
    Username,
    /// An API key's kid.
    Kid,
    /// The user already has a label with this key and scope.
    Label,
    /// The user already has a data storage with this title (any case).
    Title,
    /// The user already has this phone number.
    PhoneNumber,
    /// Another account verified this phone number.
    PhoneVerified,
    /// The user already has a drafted or submitted profile.
    OpenProfile,
    /// Another unique rule, by column.
    Other(String),
}

impl Clash {
    /// What clashed, from the table and the first column of the unique index.
    pub(crate) fn of(table: &str, column: &str) -> Clash {
        match (table, column) {
            ("labels", _) => Clash::Label,
            ("data_storages", _) => Clash::Title,
            ("phones", "user_id") => Clash::PhoneNumber,
            ("phones", _) => Clash::PhoneVerified,
            ("profiles", _) => Clash::OpenProfile,
            (_, "email") => Clash::Email,
            (_, "uid") => Clash::Uid,
            (_, "username") => Clash::Username,
            (_, "kid") => Clash::Kid,
            (_, other) => Clash::Other(other.to_owned()),
        }
    }

    /// The attribute that clashed, as Barong names it in `<attribute>.taken`.
    pub fn attribute(&self) -> &str {
        match self {
            Clash::Email => "email",
            Clash::Uid => "uid",
            Clash::Username => "username",
            Clash::Kid => "kid",
            Clash::Label => "key",
            Clash::Title => "title",
            Clash::PhoneNumber => "number",
            Clash::PhoneVerified => "verified",
            Clash::OpenProfile => "state",
            Clash::Other(column) => column,
        }
    }
}

impl std::fmt::Display for Clash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.attribute())
    }
}

/// Compares by attribute name, for callers (and tests) that name the column.
impl PartialEq<str> for Clash {
    fn eq(&self, other: &str) -> bool {
        self.attribute() == other
    }
}

impl PartialEq<&str> for Clash {
    fn eq(&self, other: &&str) -> bool {
        self.attribute() == *other
    }
}

/// The Event API switch of a store: `BARONG_DOMAIN` (the `domain` of system events) when the
/// Event API is on; `None`, the default, writes no event at all.
pub type EventDomain = Option<Arc<String>>;

/// What `create_documents` needs for the sealed `model.document.created` events: the encryption
/// key (to read the number and seal the payload) and the public URL of each document's upload,
/// in the order of the documents (the store does not know the object storage).
#[derive(Clone)]
pub struct DocumentEvents {
    pub enc: Encryptor,
    pub upload_urls: Vec<String>,
}

impl DocumentEvents {
    /// The event record of the `i`-th inserted document.
    pub(crate) fn record(
        &self,
        i: usize,
        d: &Document,
        user: serde_json::Value,
    ) -> serde_json::Value {
        let number = d
            .doc_number_encrypted
            .as_deref()
            .and_then(|n| self.enc.decrypt(n).ok());
        let url = self.upload_urls.get(i).map_or("", String::as_str);
        crate::domain::event::document_json(d, url, number.as_deref(), user)
    }
}

/// Shorthand used by every store method.
pub type StoreResult<T> = Result<T, StoreError>;

/// Which implementation is behind a [`Store`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// How to open a store: the URL from `BARONG_DATABASE_URL` plus pool limits.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub url: String,
    pub pool_size: usize,
    pub connect_timeout: Duration,
}
/// A one-time token being used: the e-mail it was sent to, its one-time claim, and its `jti`
/// with the time until which the `jti` is remembered as used.
#[derive(Debug, Clone, Copy)]
pub struct ClaimUse<'a> {
    pub email: &'a str,
    pub token: &'a str,
    pub jti: &'a str,
    pub expires_at: i64,
}

/// The persistence interface of the server: every aggregate trait, plus what only the backend
/// knows (its kind, migrations, pool, the cross-instance invalidation bus).
#[async_trait]
pub trait Store:
    AccessStore
    + UserStore
    + CredentialStore
    + SessionStore
    + LabelStore
    + RecordStore
    + KeyStore
    + ActivityStore
    + SigningKeyStore
    + ProfileStore
    + PhoneStore
    + DocumentStore
    + OutboxStore
    + PasskeyStore
    + Send
    + Sync
    + 'static
{
    /// Which backend this is (for logs and `barong config`).
    fn backend(&self) -> Backend;

    /// Applies pending migrations from `sql/<backend>/`; returns the versions it applied.
    /// Safe to run twice and from two processes at once.
    async fn migrate(&self) -> StoreResult<Vec<String>>;

    /// A cheap round trip, for readiness checks.
    async fn ping(&self) -> StoreResult<()>;

    /// Announces an invalidation to every instance sharing this database (PostgreSQL
    /// `NOTIFY`; a no-op for the single-process SQLite backend).
    async fn notify_invalidation(&self, message: &str) -> StoreResult<()>;

    /// Streams invalidations announced by any instance into `sink` until it closes or the
    /// connection drops (PostgreSQL `LISTEN`; SQLite returns at once).
    async fn listen_invalidations(
        &self,
        sink: tokio::sync::mpsc::Sender<String>,
    ) -> StoreResult<()>;

    /// The connection pool's usage now, for `/metrics`.
    fn pool_status(&self) -> PoolStatus;

    /// Abuse-limit counters every instance on this database shares, when the backend can hold
    /// them; `None` (SQLite: one process per database file) keeps them in process.
    fn shared_counters(&self) -> Option<Arc<dyn SharedCounters>> {
        None
    }
}

/// Fixed-window counters kept in the database, so several instances enforce one limit.
///
/// Every method is one atomic statement: two instances taking the last slot of a window at the
/// same moment cannot both get it, and no increment is lost.
#[async_trait]
pub trait SharedCounters: Send + Sync + 'static {
    /// Takes one of the `limit` slots of `key` in `bucket`, opening a `window_secs` window when
    /// none is open; false (nothing counted) when the window's slots are used up.
    async fn take_slot(
        &self,
        bucket: &str,
        key: &str,
        limit: u32,
        window_secs: u64,
    ) -> StoreResult<bool>;

    /// Whether the open window of `key` has no slot left (counts nothing).
    async fn slots_used_up(&self, bucket: &str, key: &str, limit: u32) -> StoreResult<bool>;

    /// Gives one slot of `key` back (an attempt that turned out not to count).
    async fn give_back(&self, bucket: &str, key: &str) -> StoreResult<()>;

    /// Closes the window of `key`.
    async fn forget(&self, bucket: &str, key: &str) -> StoreResult<()>;

    /// Deletes the windows that have ended; returns how many.
    async fn purge_ended(&self) -> StoreResult<u64>;
}

impl From<deadpool_postgres::Status> for PoolStatus {
    // `deadpool_sqlite::Status` is the same type: both pools are deadpool's.
    fn from(status: deadpool_postgres::Status) -> Self {
        Self {
            max_size: status.max_size,
            size: status.size,
            available: status.available,
            waiting: status.waiting,
        }
    }
}

/// Connections of a store's pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStatus {
    /// The most connections the pool opens.
    pub max_size: usize,
    /// Connections open now.
    pub size: usize,
    /// Open connections idle now.
    pub available: usize,
    /// Callers waiting for a connection.
    pub waiting: usize,
}

/// The api_keys columns a listing may be ordered by (Barong accepts any column of the model).
pub const API_KEY_COLUMNS: &[&str] = &[
    "id",
    "key_holder_account_type",
    "key_holder_account_id",
    "kid",
    "algorithm",
    "scope",
    "secret_encrypted",
    "state",
    "created_at",
    "updated_at",
];

/// A user after a change, with what the caches must forget: deleted session ids and the kids
/// of API keys that were deactivated.
#[derive(Debug, Clone)]
pub struct UserChange {
    pub user: User,
    pub sessions: Vec<String>,
    pub kids: Vec<String>,
}

/// A new session's public id: 128 random bits, unrelated to the cookie.
pub(crate) fn new_public_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// Opens the store named by `options.url` (`sqlite://PATH` or `postgres://...`).
pub async fn open(options: &StoreOptions) -> StoreResult<Arc<dyn Store>> {
    let url = options.url.as_str();
    if let Some(path) = url.strip_prefix("sqlite://") {
        Ok(Arc::new(SqliteStore::open(path, options).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::open(options).await?))
    } else {
        Err(StoreError::Backend(
            "BARONG_DATABASE_URL must start with sqlite:// or postgres://".into(),
        ))
    }
}
