//! PostgreSQL: the production backend, and the one several instances share.
//! `tokio-postgres` behind a `deadpool-postgres` pool; TLS through rustls when the URL's
//! `sslmode` asks for it.

mod conn;
mod migrate;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;
use tokio_postgres::config::SslMode;

use super::sql::{Database, Dialect, Exec, args};
use super::{Backend, SharedCounters, Store, StoreError, StoreOptions, StoreResult};

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

/// The `rate_limits` table, on the store's pool. Its statements go through the same pooled
/// connection type as the rest of the store (`conn::PgConn`: prepared once per connection).
struct PgCounters {
    pool: Pool,
}

impl PgCounters {
    async fn conn(&self) -> StoreResult<conn::PgConn> {
        Ok(conn::PgConn::new(pool_client(&self.pool).await?))
    }
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
        let window = window_secs as f64;
        // One statement: the conflicting row is locked and re-read before the `WHERE`, so two
        // instances racing for the last slot are serialised and only one gets it. An ended
        // window is reopened in place.
        let row = self
            .conn()
            .await?
            .query_opt(
                "INSERT INTO rate_limits AS r (bucket, key, used, ends_at)
                 VALUES ($1, $2, 1, now() + make_interval(secs => $4))
                 ON CONFLICT (bucket, key) DO UPDATE SET
                     used = CASE WHEN r.ends_at <= now() THEN 1 ELSE r.used + 1 END,
                     ends_at = CASE WHEN r.ends_at <= now() THEN EXCLUDED.ends_at
                                    ELSE r.ends_at END
                 WHERE r.ends_at <= now() OR r.used < $3
                 RETURNING used",
                args![bucket, key, clamp(limit), window],
            )
            .await?;
        Ok(row.is_some())
    }

    async fn slots_used_up(&self, bucket: &str, key: &str, limit: u32) -> StoreResult<bool> {
        let row = self
            .conn()
            .await?
            .query_opt(
                "SELECT 1 FROM rate_limits
                 WHERE bucket = $1 AND key = $2 AND ends_at > now() AND used >= $3",
                args![bucket, key, clamp(limit)],
            )
            .await?;
        Ok(row.is_some())
    }

    async fn give_back(&self, bucket: &str, key: &str) -> StoreResult<()> {
        self.conn()
            .await?
            .execute(
                "UPDATE rate_limits SET used = used - 1
                 WHERE bucket = $1 AND key = $2 AND used > 0 AND ends_at > now()",
                args![bucket, key],
            )
            .await?;
        Ok(())
    }

    async fn forget(&self, bucket: &str, key: &str) -> StoreResult<()> {
        self.conn()
            .await?
            .execute(
                "DELETE FROM rate_limits WHERE bucket = $1 AND key = $2",
                args![bucket, key],
            )
            .await?;
        Ok(())
    }

    async fn purge_ended(&self) -> StoreResult<u64> {
        self.conn()
            .await?
            .execute("DELETE FROM rate_limits WHERE ends_at <= now()", args![])
            .await
    }
}

/// A limit as the `used` column's `INTEGER`.
fn clamp(limit: u32) -> i32 {
    i32::try_from(limit).unwrap_or(i32::MAX)
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

/// The channel instances use to tell each other what to forget.
const INVALIDATION_CHANNEL: &str = "barong_invalidate";

#[async_trait]
impl Database for PostgresStore {
    type Conn = conn::PgConn;
    const DIALECT: Dialect = Dialect::Postgres;

    async fn conn(&self) -> StoreResult<conn::PgConn> {
        Ok(conn::PgConn::new(self.client().await?))
    }

    fn event_switch(&self) -> &arc_swap::ArcSwapOption<String> {
        &self.events
    }
}

#[async_trait]
impl Store for PostgresStore {
    fn pool_status(&self) -> crate::store::PoolStatus {
        self.pool.status().into()
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
}
