//! PostgreSQL: the production backend, and the one several instances share.
//! `tokio-postgres` behind a `deadpool-postgres` pool; TLS through rustls when the URL's
//! `sslmode` asks for it.

mod admin;
mod conn;
mod kyc;
mod migrate;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::config::SslMode;
use tokio_postgres::{NoTls, Row};

mod profiles;

use super::prelude::*;
use super::sql::{Database, Dialect};
use super::{
    Backend, ClaimUse, EventDomain, SharedCounters, Store, StoreError, StoreOptions, StoreResult,
    UserChange,
};
use crate::crypto::encryption::Encryptor;
use crate::domain::{
    Comment, DataStorage, Document, Label, LabelWrite, Level, NewDocument, NewMail, NewPhone,
    NewProfile, NewUser, Phone, Profile, ProfileChanges, ProfileState, StateRules, User,
    UserFilter, UserUpdate, derive_level, derive_state,
};

mod events;

/// The PostgreSQL implementation of [`Store`].
pub struct PostgresStore {
    pool: Pool,
    /// The Event API switch (see [`EventDomain`]).
    events: arc_swap::ArcSwapOption<String>,
    /// Kept for the dedicated `LISTEN` connection, which cannot come from the pool.
    config: tokio_postgres::Config,
}

impl PostgresStore {
    /// Connects (once, to fail fast with a clear message when the server is unreachable).
    pub async fn open(options: &StoreOptions) -> StoreResult<Self> {
        let mut config: tokio_postgres::Config = options
            .url
            .parse()
            .map_err(|e| StoreError::Backend(format!("invalid PostgreSQL URL: {e}")))?;
        config.connect_timeout(options.connect_timeout);
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        // TLS only when the URL demands it (`sslmode=require`): `prefer`, the driver's default,
        // would otherwise fail on servers with self-signed certificates instead of falling back.
        let manager = if config.get_ssl_mode() == SslMode::Require {
            Manager::from_config(config.clone(), tls_connector(), manager_config)
        } else {
            Manager::from_config(config.clone(), NoTls, manager_config)
        };
        let timeout = Some(options.connect_timeout);
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(timeout)
            .create_timeout(timeout)
            .recycle_timeout(Some(Duration::from_secs(2)))
            .build()
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        let store = Self {
            pool,
            config,
            events: arc_swap::ArcSwapOption::empty(),
        };
        store.ping().await?;
        Ok(store)
    }

    async fn client(&self) -> StoreResult<deadpool_postgres::Client> {
        pool_client(&self.pool).await
    }
}

async fn pool_client(pool: &Pool) -> StoreResult<deadpool_postgres::Client> {
    pool.get().await.map_err(|e| match e {
        deadpool_postgres::PoolError::Backend(e) => map_error(e),
        other => StoreError::Unavailable(other.to_string()),
    })
}

/// The `rate_limits` table, on the store's pool.
struct PgCounters {
    pool: Pool,
}

#[async_trait]
impl SharedCounters for PgCounters {
    async fn take_slot(
        &self,
        bucket: &str,
        key: &str,
        limit: u32,
        window_secs: u64,
    ) -> StoreResult<bool> {
        let client = pool_client(&self.pool).await?;
        let limit = i32::try_from(limit).unwrap_or(i32::MAX);
        let window = window_secs as f64;
        // One statement: the conflicting row is locked and re-read before the `WHERE`, so two
        // instances racing for the last slot are serialised and only one gets it. An ended
        // window is reopened in place.
        let row = client
            .query_opt(
                "INSERT INTO rate_limits AS r (bucket, key, used, ends_at)
                 VALUES ($1, $2, 1, now() + make_interval(secs => $4))
                 ON CONFLICT (bucket, key) DO UPDATE SET
                     used = CASE WHEN r.ends_at <= now() THEN 1 ELSE r.used + 1 END,
                     ends_at = CASE WHEN r.ends_at <= now() THEN EXCLUDED.ends_at
                                    ELSE r.ends_at END
                 WHERE r.ends_at <= now() OR r.used < $3
                 RETURNING used",
                &[&bucket, &key, &limit, &window],
            )
            .await
            .map_err(map_error)?;
        Ok(row.is_some())
    }

    async fn slots_used_up(&self, bucket: &str, key: &str, limit: u32) -> StoreResult<bool> {
        let client = pool_client(&self.pool).await?;
        let limit = i32::try_from(limit).unwrap_or(i32::MAX);
        let row = client
            .query_opt(
                "SELECT 1 FROM rate_limits
                 WHERE bucket = $1 AND key = $2 AND ends_at > now() AND used >= $3",
                &[&bucket, &key, &limit],
            )
            .await
            .map_err(map_error)?;
        Ok(row.is_some())
    }

    async fn give_back(&self, bucket: &str, key: &str) -> StoreResult<()> {
        let client = pool_client(&self.pool).await?;
        client
            .execute(
                "UPDATE rate_limits SET used = used - 1
                 WHERE bucket = $1 AND key = $2 AND used > 0 AND ends_at > now()",
                &[&bucket, &key],
            )
            .await
            .map_err(map_error)?;
        Ok(())
    }

    async fn forget(&self, bucket: &str, key: &str) -> StoreResult<()> {
        let client = pool_client(&self.pool).await?;
        client
            .execute(
                "DELETE FROM rate_limits WHERE bucket = $1 AND key = $2",
                &[&bucket, &key],
            )
            .await
            .map_err(map_error)?;
        Ok(())
    }

    async fn purge_ended(&self) -> StoreResult<u64> {
        let client = pool_client(&self.pool).await?;
        client
            .execute("DELETE FROM rate_limits WHERE ends_at <= now()", &[])
            .await
            .map_err(map_error)
    }
}

fn tls_connector() -> tokio_postgres_rustls::MakeRustlsConnect {
    crate::crypto::install_tls_provider();
    tokio_postgres_rustls::MakeRustlsConnect::with_webpki_roots()
}

/// Holds one connection in `LISTEN` and forwards each notification's payload to `sink`.
/// Returns when the connection drops (the caller reconnects) or the sink closes.
async fn listen(
    config: &tokio_postgres::Config,
    sink: tokio::sync::mpsc::Sender<String>,
) -> StoreResult<()> {
    if config.get_ssl_mode() == SslMode::Require {
        let (client, connection) = config.connect(tls_connector()).await.map_err(map_error)?;
        forward_notifications(client, connection, sink).await
    } else {
        let (client, connection) = config.connect(NoTls).await.map_err(map_error)?;
        forward_notifications(client, connection, sink).await
    }
}

async fn forward_notifications<S, T>(
    client: tokio_postgres::Client,
    mut connection: tokio_postgres::Connection<S, T>,
    sink: tokio::sync::mpsc::Sender<String>,
) -> StoreResult<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use futures_util::StreamExt;
    let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
    // The connection must be polled for LISTEN to complete, so both run together.
    let statement = format!("LISTEN {INVALIDATION_CHANNEL}");
    let listen = client.batch_execute(&statement);
    tokio::pin!(listen);
    let mut listening = false;
    loop {
        tokio::select! {
            result = &mut listen, if !listening => {
                result.map_err(map_error)?;
                listening = true;
            }
            message = messages.next() => match message {
                Some(Ok(tokio_postgres::AsyncMessage::Notification(n))) => {
                    if sink.send(n.payload().to_owned()).await.is_err() {
                        return Ok(());
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(map_error(e)),
                None => return Err(StoreError::Unavailable("LISTEN connection closed".into())),
            }
        }
    }
}

pub(crate) use conn::describe;

use conn::map_error;

fn user_from_row(row: &Row) -> User {
    User {
        id: row.get("id"),
        uid: row.get("uid"),
        username: row.get("username"),
        email: row.get("email"),
        password_digest: row.get("password_digest"),
        role: row.get("role"),
        data: row.get("data"),
        level: row.get("level"),
        otp: row.get("otp"),
        state: row.get("state"),
        referral_id: row.get("referral_id"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    }
}

/// The channel instances use to tell each other what to forget.
const INVALIDATION_CHANNEL: &str = "barong_invalidate";

const USER_COLUMNS: &str = "id, uid, username, email, password_digest, role, data, level, otp, \
     state, referral_id, created_at, updated_at";

// ---- identity helpers ----------------------------------------------------------------------

type Tx<'a> = deadpool_postgres::Transaction<'a>;

fn label_from_row(row: &Row) -> Label {
    Label {
        key: row.get("key"),
        value: row.get("value"),
        scope: row.get("scope"),
        description: row.get("description"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    }
}

async fn upsert_label(
    tx: &Tx<'_>,
    user_id: i64,
    key: &str,
    value: &str,
    scope: &str,
) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        "INSERT INTO labels (user_id, key, value, scope) VALUES ($1, $2, $3, $4)
         ON CONFLICT (user_id, key, scope) DO UPDATE SET value = excluded.value,
             updated_at = now()",
        &[&user_id, &key, &value, &scope],
    )
    .await?;
    Ok(())
}

/// [`upsert_label`] with its `model.label.*` event (and Barong's `system.document.*`).
async fn set_label(
    tx: &Tx<'_>,
    domain: &EventDomain,
    user_id: i64,
    key: &str,
    value: &str,
    scope: &str,
) -> Result<(), tokio_postgres::Error> {
    let before = events::label_before(tx, domain, user_id, key, scope).await?;
    upsert_label(tx, user_id, key, value, scope).await?;
    events::label_changed(tx, domain, before, user_id, key, scope).await
}

/// The tail of every label change: state and level recomputed from the labels, then Barong's
/// user side effects; the change to publish (no session revoked).
async fn relabelled(
    tx: &Tx<'_>,
    domain: &EventDomain,
    before: &User,
    rules: &StateRules,
) -> Result<UserChange, tokio_postgres::Error> {
    recompute_state_level(tx, before.id, rules).await?;
    let (user, kids) = user_side_effects(tx, domain, before).await?;
    Ok(UserChange {
        user,
        sessions: Vec::new(),
        kids,
    })
}

/// Recomputes state and level of a user from its labels, inside a transaction.
async fn recompute_state_level(
    tx: &Tx<'_>,
    user_id: i64,
    rules: &StateRules,
) -> Result<(), tokio_postgres::Error> {
    let labels: Vec<(String, String, String)> = tx
        .query(
            "SELECT key, value, scope FROM labels WHERE user_id = $1",
            &[&user_id],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let levels: Vec<Level> = tx
        .query("SELECT id, key, value, description FROM levels", &[])
        .await?
        .iter()
        .map(|r| Level {
            id: r.get(0),
            key: r.get(1),
            value: r.get(2),
            description: r.get(3),
        })
        .collect();
    let state = derive_state(&labels, rules);
    let level = derive_level(&labels, &levels);
    tx.execute(
        "UPDATE users SET state = $2, level = $3, updated_at = now()
         WHERE id = $1 AND (state <> $2 OR level <> $3)",
        &[&user_id, &state, &level],
    )
    .await?;
    Ok(())
}

async fn insert_mail(tx: &Tx<'_>, mail: &NewMail) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        "INSERT INTO mail_outbox (kind, recipient, language, subject, body_html)
         VALUES ($1, $2, $3, $4, $5)",
        &[
            &mail.kind,
            &mail.recipient,
            &mail.language,
            &mail.subject,
            &mail.body_html,
        ],
    )
    .await?;
    if let Some(claim) = &mail.confirmation {
        tx.execute(
            "INSERT INTO confirmation_tokens (email, token, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (email) DO UPDATE SET token = excluded.token,
                 expires_at = excluded.expires_at",
            &[&mail.recipient, &claim.token, &claim.expires_at],
        )
        .await?;
    }
    Ok(())
}

/// Consumes the stored one-time claim of `email` in `table` if it is `token` and unexpired.
async fn take_claim(
    tx: &Tx<'_>,
    table: &str,
    column: &str,
    email: &str,
    token: &str,
) -> Result<bool, tokio_postgres::Error> {
    let n = tx
        .execute(
            &format!("DELETE FROM {table} WHERE email = $1 AND {column} = $2 AND expires_at > $3"),
            &[&email, &token, &chrono::Utc::now().timestamp()],
        )
        .await?;
    Ok(n == 1)
}

/// Marks a one-time token used; false when it already was.
async fn use_token(tx: &Tx<'_>, jti: &str, expires_at: i64) -> Result<bool, tokio_postgres::Error> {
    tx.execute(
        "DELETE FROM one_time_tokens WHERE expires_at < $1",
        &[&chrono::Utc::now().timestamp()],
    )
    .await?;
    let n = tx
        .execute(
            "INSERT INTO one_time_tokens (jti, expires_at) VALUES ($1, $2)
             ON CONFLICT (jti) DO NOTHING",
            &[&jti, &expires_at],
        )
        .await?;
    Ok(n > 0)
}

async fn user_by_id(tx: &Tx<'_>, id: i64) -> Result<User, tokio_postgres::Error> {
    let row = tx
        .query_one(
            &format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"),
            &[&id],
        )
        .await?;
    Ok(user_from_row(&row))
}

// ---- resource ----------------------------------------------------------------------------------

/// Barong's after-update side effects, given the user before the change: when 2FA went
/// off or the state changed to anything but `active`, every active key of the user and of its
/// service accounts becomes `inactive`; a non-active state is copied to the service accounts.
/// Returns the user now and the deactivated kids.
async fn user_side_effects(
    tx: &Tx<'_>,
    domain: &EventDomain,
    before: &User,
) -> Result<(User, Vec<String>), tokio_postgres::Error> {
    let after = user_by_id(tx, before.id).await?;
    events::user_updated(tx, domain, before, &after).await?;
    let state_changed = after.state != before.state && after.state != "active";
    let mut kids = Vec::new();
    if (before.otp && !after.otp) || state_changed {
        kids = tx
            .query(
                "UPDATE api_keys SET state = 'inactive', updated_at = now()
                 WHERE state = 'active' AND (
                     (key_holder_account_type = 'User' AND key_holder_account_id = $1)
                     OR (key_holder_account_type = 'ServiceAccount' AND key_holder_account_id IN
                         (SELECT id FROM service_accounts WHERE owner_id = $1)))
                 RETURNING kid",
                &[&before.id],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
    }
    if state_changed {
        tx.execute(
            "UPDATE service_accounts SET state = $2, updated_at = now() WHERE owner_id = $1",
            &[&before.id, &after.state],
        )
        .await?;
    }
    Ok((after, kids))
}

fn data_storage_from_row(row: &Row) -> DataStorage {
    DataStorage {
        title: row.get("title"),
        data: row.get("data"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    }
}

async fn delete_sessions_except(
    tx: &Tx<'_>,
    user_id: i64,
    keep: Option<&str>,
) -> Result<Vec<String>, tokio_postgres::Error> {
    Ok(tx
        .query(
            "DELETE FROM sessions WHERE user_id = $1 AND ($2::TEXT IS NULL OR id <> $2)
             RETURNING id",
            &[&user_id, &keep],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

#[async_trait]
impl Database for PostgresStore {
    type Conn = conn::PgConn;
    const DIALECT: Dialect = Dialect::Postgres;

    async fn conn(&self) -> StoreResult<conn::PgConn> {
        Ok(conn::PgConn(self.client().await?))
    }

    fn event_domain(&self) -> EventDomain {
        self.events.load_full()
    }
}

#[async_trait]
impl Store for PostgresStore {
    fn pool_status(&self) -> crate::store::PoolStatus {
        let status = self.pool.status();
        crate::store::PoolStatus {
            max_size: status.max_size,
            size: status.size,
            available: status.available,
            waiting: status.waiting,
        }
    }

    fn shared_counters(&self) -> Option<Arc<dyn SharedCounters>> {
        Some(Arc::new(PgCounters {
            pool: self.pool.clone(),
        }))
    }

    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn migrate(&self) -> StoreResult<Vec<String>> {
        let mut client = self.client().await?;
        migrate::apply(&mut client).await
    }

    async fn ping(&self) -> StoreResult<()> {
        let client = self.client().await?;
        client.simple_query("SELECT 1").await.map_err(map_error)?;
        Ok(())
    }

    async fn notify_invalidation(&self, message: &str) -> StoreResult<()> {
        let client = self.client().await?;
        client
            .execute(
                "SELECT pg_notify($1, $2)",
                &[&INVALIDATION_CHANNEL, &message],
            )
            .await
            .map_err(map_error)?;
        Ok(())
    }

    async fn listen_invalidations(
        &self,
        sink: tokio::sync::mpsc::Sender<String>,
    ) -> StoreResult<()> {
        listen(&self.config, sink).await
    }

    fn enable_events(&self, domain: &str) {
        self.events
            .store(Some(std::sync::Arc::new(domain.to_owned())));
    }
}

#[async_trait]
impl UserStore for PostgresStore {
    async fn create_user(&self, user: &NewUser) -> StoreResult<User> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_error)?;
        let row = tx
            .query_one(
                &format!(
                    "INSERT INTO users (uid, username, email, password_digest, role, data, level,
                         otp, state, referral_id)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {USER_COLUMNS}"
                ),
                &[
                    &user.uid,
                    &user.username,
                    &user.email,
                    &user.password_digest,
                    &user.role,
                    &user.data,
                    &user.level,
                    &user.otp,
                    &user.state,
                    &user.referral_id,
                ],
            )
            .await
            .map_err(map_error)?;
        let created = user_from_row(&row);
        for label in &user.labels {
            tx.execute(
                "INSERT INTO labels (user_id, key, value, scope) VALUES ($1, $2, $3, $4)",
                &[&created.id, &label.key, &label.value, &label.scope],
            )
            .await
            .map_err(map_error)?;
        }
        tx.commit().await.map_err(map_error)?;
        Ok(created)
    }

    async fn find_user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE lower(email) = lower($1)"),
                &[&email],
            )
            .await
            .map_err(map_error)?;
        Ok(row.as_ref().map(user_from_row))
    }

    async fn find_user_by_uid(&self, uid: &str) -> StoreResult<Option<User>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE uid = $1"),
                &[&uid],
            )
            .await
            .map_err(map_error)?;
        Ok(row.as_ref().map(user_from_row))
    }

    async fn count_users(&self) -> StoreResult<i64> {
        let client = self.client().await?;
        let row = client
            .query_one("SELECT COUNT(*) FROM users", &[])
            .await
            .map_err(map_error)?;
        Ok(row.get(0))
    }

    async fn find_user_by_id(&self, id: i64) -> StoreResult<Option<User>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"),
                &[&id],
            )
            .await
            .map_err(map_error)?;
        Ok(row.as_ref().map(user_from_row))
    }

    async fn update_user_access(
        &self,
        id: i64,
        role: &str,
        state: &str,
        level: i32,
        otp: bool,
    ) -> StoreResult<()> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE users SET role = $2, state = $3, level = $4, otp = $5, updated_at = now()
                 WHERE id = $1",
                &[&id, &role, &state, &level, &otp],
            )
            .await
            .map_err(map_error)?;
        Ok(())
    }

    async fn find_user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE username = $1"),
                &[&username],
            )
            .await
            .map_err(map_error)?;
        Ok(row.as_ref().map(user_from_row))
    }

    async fn update_password_digest(&self, user_id: i64, digest: &str) -> StoreResult<()> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE users SET password_digest = $2 WHERE id = $1",
                &[&user_id, &digest],
            )
            .await
            .map_err(map_error)?;
        Ok(())
    }

    async fn update_user_data(&self, user_id: i64, data: &str) -> StoreResult<User> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_error)?;
        let domain = self.event_domain();
        let before = user_by_id(&tx, user_id).await.map_err(map_error)?;
        let row = tx
            .query_one(
                &format!(
                    "UPDATE users SET data = $2, updated_at = now() WHERE id = $1
                     RETURNING {USER_COLUMNS}"
                ),
                &[&user_id, &data],
            )
            .await
            .map_err(map_error)?;
        let user = user_from_row(&row);
        events::user_updated(&tx, &domain, &before, &user)
            .await
            .map_err(map_error)?;
        tx.commit().await.map_err(map_error)?;
        Ok(user)
    }

    async fn delete_own_account(
        &self,
        user_id: i64,
        rules: &StateRules,
    ) -> StoreResult<UserChange> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_error)?;
        let domain = self.event_domain();
        let result = async {
            let before = user_by_id(&tx, user_id).await?;
            set_label(&tx, &domain, user_id, "delete", "by_user", "private").await?;
            recompute_state_level(&tx, user_id, rules).await?;
            let (user, kids) = user_side_effects(&tx, &domain, &before).await?;
            let sessions = delete_sessions_except(&tx, user_id, None).await?;
            Ok::<_, tokio_postgres::Error>(UserChange {
                user,
                sessions,
                kids,
            })
        }
        .await
        .map_err(map_error)?;
        tx.commit().await.map_err(map_error)?;
        Ok(result)
    }

    async fn list_users(
        &self,
        filter: &UserFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<User>, i64)> {
        self.admin_list_users_impl(filter, limit, offset).await
    }

    async fn update_user(&self, user_id: i64, update: &UserUpdate) -> StoreResult<UserChange> {
        self.admin_update_user_impl(user_id, update).await
    }

    async fn users_with_label(
        &self,
        filter: &crate::domain::LabelFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<User>, i64)> {
        self.users_with_label_impl(filter, limit, offset).await
    }

    async fn users_with_pending_documents(&self) -> StoreResult<Vec<User>> {
        self.users_with_pending_documents_impl().await
    }
}

#[async_trait]
impl CredentialStore for PostgresStore {
    async fn register_user(
        &self,
        user: &NewUser,
        superadmin_if_first: bool,
        mail: Option<&NewMail>,
        rules: &StateRules,
    ) -> StoreResult<User> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_error)?;
        // Serialises sign-ups so that "the first user" is decided once.
        tx.execute("SELECT pg_advisory_xact_lock(7205759403792793)", &[])
            .await
            .map_err(map_error)?;
        let row = tx
            .query_one(
                "INSERT INTO users (uid, username, email, password_digest, role, data, level,
                     otp, state, referral_id)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
                &[
                    &user.uid,
                    &user.username,
                    &user.email,
                    &user.password_digest,
                    &user.role,
                    &user.data,
                    &user.level,
                    &user.otp,
                    &user.state,
                    &user.referral_id,
                ],
            )
            .await
            .map_err(map_error)?;
        let id: i64 = row.get(0);
        for label in &user.labels {
            upsert_label(&tx, id, &label.key, &label.value, &label.scope)
                .await
                .map_err(map_error)?;
        }
        let count: i64 = tx
            .query_one("SELECT COUNT(*) FROM users", &[])
            .await
            .map_err(map_error)?
            .get(0);
        if superadmin_if_first && count == 1 {
            tx.execute(
                "UPDATE users SET role = 'superadmin'
                 WHERE id = $1 AND EXISTS (SELECT 1 FROM permissions WHERE role = 'superadmin')",
                &[&id],
            )
            .await
            .map_err(map_error)?;
            upsert_label(&tx, id, "email", "verified", "private")
                .await
                .map_err(map_error)?;
            recompute_state_level(&tx, id, rules)
                .await
                .map_err(map_error)?;
        } else if let Some(mail) = mail {
            insert_mail(&tx, mail).await.map_err(map_error)?;
        }
        let created = user_by_id(&tx, id).await.map_err(map_error)?;
        events::user_created(&tx, &self.event_domain(), &created)
            .await
            .map_err(map_error)?;
        tx.commit().await.map_err(map_error)?;
        Ok(created)
    }

    async fn confirm_email(
        &self,
        user_id: i64,
        claim: &ClaimUse<'_>,
        rules: &StateRules,
    ) -> StoreResult<Option<User>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_error)?;
        let taken = take_claim(
            &tx,
            "confirmation_tokens",
            "token",
            claim.email,
            claim.token,
        )
        .await
        .map_err(map_error)?;
        if !taken
            || !use_token(&tx, claim.jti, claim.expires_at)
                .await
                .map_err(map_error)?
        {
            return Ok(None);
        }
        let domain = self.event_domain();
        let before = user_by_id(&tx, user_id).await.map_err(map_error)?;
        let label = events::label_before(&tx, &domain, user_id, "email", "private")
            .await
            .map_err(map_error)?;
        upsert_label(&tx, user_id, "email", "verified", "private")
            .await
            .map_err(map_error)?;
        recompute_state_level(&tx, user_id, rules)
            .await
            .map_err(map_error)?;
        let user = user_by_id(&tx, user_id).await.map_err(map_error)?;
        async {
            events::user_updated(&tx, &domain, &before, &user).await?;
            events::label_changed(&tx, &domain, label, user_id, "email", "private").await?;
            events::email_confirmed(&tx, &domain, &user).await
        }
        .await
        .map_err(map_error)?;
        tx.commit().await.map_err(map_error)?;
        Ok(Some(user))
    }

    async fn use_once(&self, key: &str, expires_at: i64) -> StoreResult<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_error)?;
        let fresh = use_token(&tx, key, expires_at).await.map_err(map_error)?;
        tx.commit().await.map_err(map_error)?;
        Ok(fresh)
    }

    async fn set_reset_token(
        &self,
        email: &str,
        reset_token: &str,
        expires_at: i64,
        mail: &NewMail,
    ) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_error)?;
        tx.execute(
            "INSERT INTO password_reset_tokens (email, reset_token, expires_at)
             VALUES ($1, $2, $3)
             ON CONFLICT (email) DO UPDATE SET reset_token = excluded.reset_token,
                 expires_at = excluded.expires_at",
            &[&email, &reset_token, &expires_at],
        )
        .await
        .map_err(map_error)?;
        insert_mail(&tx, mail).await.map_err(map_error)?;
        tx.commit().await.map_err(map_error)
    }

    async fn find_reset_token(&self, email: &str, now: i64) -> StoreResult<Option<String>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT reset_token FROM password_reset_tokens WHERE email = $1 AND expires_at > $2",
                &[&email, &now],
            )
            .await
            .map_err(map_error)?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn reset_password(
        &self,
        user_id: i64,
        claim: &ClaimUse<'_>,
        digest: &str,
    ) -> StoreResult<Option<Vec<String>>> {
        let email = claim.email;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_error)?;
        let taken = take_claim(
            &tx,
            "password_reset_tokens",
            "reset_token",
            email,
            claim.token,
        )
        .await
        .map_err(map_error)?;
        if !taken
            || !use_token(&tx, claim.jti, claim.expires_at)
                .await
                .map_err(map_error)?
        {
            return Ok(None);
        }
        tx.execute(
            "UPDATE users SET password_digest = $2, updated_at = now() WHERE id = $1",
            &[&user_id, &digest],
        )
        .await
        .map_err(map_error)?;
        tx.execute(
            "DELETE FROM password_reset_tokens WHERE email = $1",
            &[&email],
        )
        .await
        .map_err(map_error)?;
        let ids = tx
            .query(
                "DELETE FROM sessions WHERE user_id = $1 RETURNING id",
                &[&user_id],
            )
            .await
            .map_err(map_error)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        tx.commit().await.map_err(map_error)?;
        Ok(Some(ids))
    }

    async fn create_whitelink_token(&self, token: &str, expires_at: i64) -> StoreResult<()> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO whitelink_tokens (token, expires_at) VALUES ($1, $2)
                 ON CONFLICT (token) DO UPDATE SET expires_at = excluded.expires_at",
                &[&token, &expires_at],
            )
            .await
            .map_err(map_error)?;
        Ok(())
    }

    async fn whitelink_token_valid(&self, token: &str, now: i64) -> StoreResult<bool> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT COUNT(*) FROM whitelink_tokens WHERE token = $1 AND expires_at > $2",
                &[&token, &now],
            )
            .await
            .map_err(map_error)?;
        Ok(row.get::<_, i64>(0) > 0)
    }

    async fn change_password(
        &self,
        user_id: i64,
        digest: &str,
        keep: Option<&str>,
    ) -> StoreResult<Vec<String>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_error)?;
        tx.execute(
            "UPDATE users SET password_digest = $2, updated_at = now() WHERE id = $1",
            &[&user_id, &digest],
        )
        .await
        .map_err(map_error)?;
        let ids = delete_sessions_except(&tx, user_id, keep)
            .await
            .map_err(map_error)?;
        tx.commit().await.map_err(map_error)?;
        Ok(ids)
    }

    async fn set_otp_secret(&self, user_id: i64, secret_encrypted: &str) -> StoreResult<()> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO otp_secrets (user_id, secret_encrypted) VALUES ($1, $2)
                 ON CONFLICT (user_id) DO UPDATE SET secret_encrypted = excluded.secret_encrypted,
                     last_step = 0, updated_at = now()",
                &[&user_id, &secret_encrypted],
            )
            .await
            .map_err(map_error)?;
        Ok(())
    }

    async fn find_otp_secret(&self, user_id: i64) -> StoreResult<Option<(String, i64)>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT secret_encrypted, last_step FROM otp_secrets WHERE user_id = $1",
                &[&user_id],
            )
            .await
            .map_err(map_error)?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
    }

    async fn accept_otp_step(&self, user_id: i64, step: i64) -> StoreResult<bool> {
        let client = self.client().await?;
        let n = client
            .execute(
                "UPDATE otp_secrets SET last_step = $2, updated_at = now()
                 WHERE user_id = $1 AND last_step < $2",
                &[&user_id, &step],
            )
            .await
            .map_err(map_error)?;
        Ok(n > 0)
    }

    async fn set_user_otp(
        &self,
        user_id: i64,
        enabled: bool,
        keep: Option<&str>,
        rules: &StateRules,
    ) -> StoreResult<UserChange> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_error)?;
        let domain = self.event_domain();
        let result = async {
            let before = user_by_id(&tx, user_id).await?;
            tx.execute(
                "UPDATE users SET otp = $2, updated_at = now() WHERE id = $1",
                &[&user_id, &enabled],
            )
            .await?;
            let mut sessions = Vec::new();
            if enabled {
                set_label(&tx, &domain, user_id, "otp", "enabled", "private").await?;
                sessions = delete_sessions_except(&tx, user_id, keep).await?;
            } else {
                tx.execute(
                    "DELETE FROM labels WHERE user_id = $1 AND key = 'otp'",
                    &[&user_id],
                )
                .await?;
            }
            recompute_state_level(&tx, user_id, rules).await?;
            let (user, kids) = user_side_effects(&tx, &self.event_domain(), &before).await?;
            Ok::<_, tokio_postgres::Error>(UserChange {
                user,
                sessions,
                kids,
            })
        }
        .await
        .map_err(map_error)?;
        tx.commit().await.map_err(map_error)?;
        Ok(result)
    }
}

#[async_trait]
impl LabelStore for PostgresStore {
    async fn list_user_labels(&self, user_id: i64) -> StoreResult<Vec<Label>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT * FROM labels WHERE user_id = $1 ORDER BY id",
                &[&user_id],
            )
            .await
            .map_err(map_error)?;
        Ok(rows.iter().map(label_from_row).collect())
    }

    async fn create_label(
        &self,
        user_id: i64,
        key: &str,
        value: &str,
        scope: &str,
        rules: &StateRules,
    ) -> StoreResult<(Label, UserChange)> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_error)?;
        let result = async {
            let before = user_by_id(&tx, user_id).await?;
            let row = tx
                .query_one(
                    "INSERT INTO labels (user_id, key, value, scope) VALUES ($1, $2, $3, $4)
                     RETURNING *",
                    &[&user_id, &key, &value, &scope],
                )
                .await?;
            let change = relabelled(&tx, &self.event_domain(), &before, rules).await?;
            events::label_changed(&tx, &self.event_domain(), None, user_id, key, scope).await?;
            Ok::<_, tokio_postgres::Error>((label_from_row(&row), change))
        }
        .await
        .map_err(map_error)?;
        tx.commit().await.map_err(map_error)?;
        Ok(result)
    }

    async fn update_label_value(
        &self,
        user_id: i64,
        key: &str,
        scope: &str,
        value: &str,
        rules: &StateRules,
    ) -> StoreResult<Option<(Label, UserChange)>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_error)?;
        let result = async {
            let before = user_by_id(&tx, user_id).await?;
            let old_label =
                events::label_before(&tx, &self.event_domain(), user_id, key, scope).await?;
            let Some(row) = tx
                .query_opt(
                    "UPDATE labels SET value = $4, updated_at = now()
                     WHERE user_id = $1 AND key = $2 AND scope = $3 RETURNING *",
                    &[&user_id, &key, &scope, &value],
                )
                .await?
            else {
                return Ok(None);
            };
            let change = relabelled(&tx, &self.event_domain(), &before, rules).await?;
            events::label_changed(&tx, &self.event_domain(), old_label, user_id, key, scope)
                .await?;
            Ok::<_, tokio_postgres::Error>(Some((label_from_row(&row), change)))
        }
        .await
        .map_err(map_error)?;
        tx.commit().await.map_err(map_error)?;
        Ok(result)
    }

    async fn delete_label(
        &self,
        user_id: i64,
        key: &str,
        scope: &str,
        rules: &StateRules,
    ) -> StoreResult<Option<UserChange>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_error)?;
        let result = async {
            let before = user_by_id(&tx, user_id).await?;
            let n = tx
                .execute(
                    "DELETE FROM labels WHERE user_id = $1 AND key = $2 AND scope = $3",
                    &[&user_id, &key, &scope],
                )
                .await?;
            if n == 0 {
                return Ok(None);
            }
            let change = relabelled(&tx, &self.event_domain(), &before, rules).await?;
            Ok::<_, tokio_postgres::Error>(Some(change))
        }
        .await
        .map_err(map_error)?;
        tx.commit().await.map_err(map_error)?;
        Ok(result)
    }

    async fn write_label(
        &self,
        user_id: i64,
        key: &str,
        scope: &str,
        value: &str,
        write: &LabelWrite,
        rules: &StateRules,
    ) -> StoreResult<Option<UserChange>> {
        self.admin_write_label_impl(user_id, key, scope, value, write, rules)
            .await
    }

    async fn count_private_labels(&self) -> StoreResult<Vec<(String, String, i64)>> {
        self.count_private_labels_impl().await
    }
}

#[async_trait]
impl RecordStore for PostgresStore {
    async fn create_data_storage(
        &self,
        user_id: i64,
        title: &str,
        data: &str,
        rules: &StateRules,
    ) -> StoreResult<(DataStorage, UserChange)> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_error)?;
        // One writer per user at a time, so the case-insensitive check below holds.
        tx.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", &[&user_id])
            .await
            .map_err(map_error)?;
        let taken: bool = tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM data_storages
                     WHERE user_id = $1 AND lower(title) = lower($2))",
                &[&user_id, &title],
            )
            .await
            .map_err(map_error)?
            .get(0);
        if taken {
            return Err(StoreError::Conflict(super::Clash::Title));
        }
        let domain = self.event_domain();
        let result = async {
            let before = user_by_id(&tx, user_id).await?;
            let row = tx
                .query_one(
                    "INSERT INTO data_storages (user_id, title, data) VALUES ($1, $2, $3)
                     RETURNING *",
                    &[&user_id, &title, &data],
                )
                .await?;
            set_label(
                &tx,
                &domain,
                user_id,
                &title.to_lowercase(),
                "recorded",
                "private",
            )
            .await?;
            let change = relabelled(&tx, &domain, &before, rules).await?;
            let storage = data_storage_from_row(&row);
            events::data_storage_created(&tx, &domain, &storage, &change.user).await?;
            Ok::<_, tokio_postgres::Error>((storage, change))
        }
        .await
        .map_err(map_error)?;
        tx.commit().await.map_err(map_error)?;
        Ok(result)
    }

    async fn list_data_storages(&self, user_id: i64) -> StoreResult<Vec<DataStorage>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT * FROM data_storages WHERE user_id = $1 ORDER BY id",
                &[&user_id],
            )
            .await
            .map_err(map_error)?;
        Ok(rows.iter().map(data_storage_from_row).collect())
    }

    async fn create_comment(
        &self,
        user_id: i64,
        author_uid: &str,
        title: &str,
        data: &str,
    ) -> StoreResult<Comment> {
        self.create_comment_impl(user_id, author_uid, title, data)
            .await
    }

    async fn find_comment(&self, id: i64) -> StoreResult<Option<Comment>> {
        self.find_comment_impl(id).await
    }

    async fn update_comment(
        &self,
        id: i64,
        title: Option<&str>,
        data: Option<&str>,
    ) -> StoreResult<Option<Comment>> {
        self.update_comment_impl(id, title, data).await
    }

    async fn delete_comment(&self, id: i64) -> StoreResult<Option<Comment>> {
        self.delete_comment_impl(id).await
    }

    async fn list_comments(&self, user_id: i64) -> StoreResult<Vec<Comment>> {
        self.list_comments_impl(user_id).await
    }

    async fn delete_data_storage(&self, user_id: i64, title: &str) -> StoreResult<bool> {
        self.delete_data_storage_impl(user_id, title).await
    }
}

#[async_trait]
impl ProfileStore for PostgresStore {
    async fn create_profile(
        &self,
        user_id: i64,
        profile: &NewProfile,
        enc: &Encryptor,
        rules: &StateRules,
    ) -> StoreResult<(Profile, UserChange)> {
        self.profile_create(user_id, profile, enc, rules).await
    }

    async fn update_profile(
        &self,
        id: i64,
        changes: &ProfileChanges,
        enc: &Encryptor,
        rules: &StateRules,
    ) -> StoreResult<Option<(Profile, UserChange)>> {
        self.profile_update(id, changes, enc, rules).await
    }

    async fn list_user_profiles(&self, user_id: i64, enc: &Encryptor) -> StoreResult<Vec<Profile>> {
        self.profiles_of_user(user_id, enc).await
    }

    async fn find_user_profile_in_state(
        &self,
        user_id: i64,
        state: ProfileState,
        enc: &Encryptor,
    ) -> StoreResult<Option<Profile>> {
        self.profile_of_user_in_state(user_id, state, enc).await
    }

    async fn find_profile(&self, id: i64, enc: &Encryptor) -> StoreResult<Option<Profile>> {
        self.profile_by_id(id, enc).await
    }

    async fn find_profile_by_applicant_id(
        &self,
        applicant_id: &str,
        enc: &Encryptor,
    ) -> StoreResult<Option<Profile>> {
        self.profile_by_applicant(applicant_id, enc).await
    }

    async fn list_profiles(
        &self,
        limit: i64,
        offset: i64,
        enc: &Encryptor,
    ) -> StoreResult<(Vec<Profile>, i64)> {
        self.profiles_page(limit, offset, enc).await
    }
}

#[async_trait]
impl PhoneStore for PostgresStore {
    async fn create_phone(&self, phone: &NewPhone) -> StoreResult<Phone> {
        self.kyc_create_phone(phone).await
    }

    async fn list_user_phones(&self, user_id: i64) -> StoreResult<Vec<Phone>> {
        self.kyc_list_user_phones(user_id).await
    }

    async fn find_user_phone(
        &self,
        user_id: i64,
        number_index: &str,
    ) -> StoreResult<Option<Phone>> {
        self.kyc_find_user_phone(user_id, number_index).await
    }

    async fn list_phones_by_number_index(&self, number_index: &str) -> StoreResult<Vec<Phone>> {
        self.kyc_list_phones_by_number_index(number_index).await
    }

    async fn claim_phone_code_send(
        &self,
        phone_id: i64,
        now: i64,
        min_interval: i64,
        window: i64,
        max_in_window: i64,
    ) -> StoreResult<bool> {
        self.kyc_claim_phone_code_send(phone_id, now, min_interval, window, max_in_window)
            .await
    }

    async fn verify_phone(
        &self,
        phone_id: i64,
        rules: &StateRules,
    ) -> StoreResult<Option<UserChange>> {
        self.kyc_verify_phone(phone_id, rules).await
    }

    async fn delete_phone(&self, phone_id: i64) -> StoreResult<bool> {
        self.kyc_delete_phone(phone_id).await
    }
}

#[async_trait]
impl DocumentStore for PostgresStore {
    async fn create_documents(
        &self,
        user_id: i64,
        documents: &[NewDocument],
        label: Option<(&str, &str)>,
        rules: &StateRules,
        events: &crate::store::DocumentEvents,
    ) -> StoreResult<(Vec<Document>, UserChange)> {
        self.kyc_create_documents(user_id, documents, label, rules, events)
            .await
    }

    async fn count_user_documents(
        &self,
        user_id: i64,
        identificator: Option<&str>,
    ) -> StoreResult<i64> {
        self.kyc_count_user_documents(user_id, identificator).await
    }

    async fn list_user_documents(&self, user_id: i64) -> StoreResult<Vec<Document>> {
        self.kyc_list_user_documents(user_id).await
    }

    async fn list_documents_by_number_index(&self, index: &str) -> StoreResult<Vec<Document>> {
        self.kyc_list_documents_by_number_index(index).await
    }

    async fn list_pending_documents(
        &self,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<Document>, i64)> {
        self.kyc_list_pending_documents(limit, offset).await
    }
}
