//! The layer every aggregate module is written against, once for both backends.
//!
//! SQL is written in PostgreSQL's spelling with numbered `$n` placeholders. Each backend runs it
//! through its [`Conn`]: PostgreSQL as it is, SQLite after a one-pass rewrite of the few things
//! it spells differently (`$n`, `now()`, `GREATEST`, row locks; see `sqlite::conn`). What the
//! rewrite cannot express is a [`Dialect`] fragment (`now_plus`, `day`, `email_eq`), and the
//! handful of statements that only mean something on one backend (advisory locks) go through
//! [`Exec::lock`]. Arguments are one [`Value`] enum and rows one owned [`Row`], so a mapping
//! from a row to a domain type is written once too.

mod value;

use arc_swap::ArcSwapOption;
use async_trait::async_trait;

pub use value::{FromValue, Row, Value};

use super::{EventDomain, StoreError, StoreResult};

/// Builds the argument slice of a statement: `args![id, email, None::<String>]`.
macro_rules! args {
    ($($value:expr),* $(,)?) => {
        &[$($crate::store::sql::Value::from($value)),*][..]
    };
}
pub(crate) use args;

/// Which SQL the backend speaks, for the few fragments the rewrite does not cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// `now()` plus the seconds bound at placeholder `ph` (a timestamp, as `now()` is).
    pub fn now_plus(self, ph: &str) -> String {
        match self {
            Dialect::Postgres => format!("(now() + make_interval(secs => CAST({ph} AS BIGINT)))"),
            Dialect::Sqlite => {
                format!("strftime('%Y-%m-%dT%H:%M:%fZ', 'now', {ph} || ' seconds')")
            }
        }
    }

    /// The UTC day (`YYYY-MM-DD`) of a timestamp column.
    pub fn day(self, column: &str) -> String {
        match self {
            Dialect::Postgres => format!("to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD')"),
            // Timestamps are RFC 3339 text in UTC: the day is the first ten characters.
            Dialect::Sqlite => format!("substr({column}, 1, 10)"),
        }
    }

    /// Case-insensitive e-mail equality, each spelt the way its index is built
    /// (`lower(email)` on PostgreSQL, `email COLLATE NOCASE` on SQLite).
    pub fn email_eq(self, column: &str, ph: &str) -> String {
        match self {
            Dialect::Postgres => format!("lower({column}) = lower({ph})"),
            Dialect::Sqlite => format!("{column} = {ph} COLLATE NOCASE"),
        }
    }
}

/// Runs statements: a pooled connection, or a transaction on one.
#[async_trait]
pub trait Exec: Send {
    /// Runs one statement and returns its rows (`RETURNING` rows for writes).
    async fn query(&mut self, sql: &str, args: &[Value]) -> StoreResult<Vec<Row>>;

    /// Runs one statement and returns how many rows it changed.
    async fn execute(&mut self, sql: &str, args: &[Value]) -> StoreResult<u64>;

    /// Runs a statement that only PostgreSQL needs to serialise writers (advisory or table
    /// locks, `SELECT ... FOR UPDATE` on a row that is not read); nothing on SQLite, whose
    /// write transactions start with `BEGIN IMMEDIATE` and so already hold the one write lock.
    async fn lock(&mut self, sql: &str, args: &[Value]) -> StoreResult<()>;

    /// The first row, if any.
    async fn query_opt(&mut self, sql: &str, args: &[Value]) -> StoreResult<Option<Row>> {
        Ok(self.query(sql, args).await?.into_iter().next())
    }

    /// The first row; its absence is a backend error (use for `COUNT(*)`, `RETURNING` of a
    /// row that exists).
    async fn query_one(&mut self, sql: &str, args: &[Value]) -> StoreResult<Row> {
        self.query_opt(sql, args)
            .await?
            .ok_or_else(|| StoreError::Backend("query returned no rows".into()))
    }

    /// The first column of the first row.
    async fn scalar<T: FromValue + Send>(&mut self, sql: &str, args: &[Value]) -> StoreResult<T> {
        self.query_one(sql, args).await?.at(0)
    }
}

/// A backend's pooled connection.
#[async_trait]
pub trait Conn: Exec + Sized + 'static {
    /// How a write transaction starts.
    const BEGIN: &'static str;

    /// Runs statements without arguments (`COMMIT`, `ROLLBACK`).
    async fn batch(&mut self, sql: &str) -> StoreResult<()>;

    /// Takes the connection out of the pool for good (it closes when dropped).
    fn detach(self);

    /// Rolls back in the background and only then returns the connection to the pool (a
    /// transaction dropped before its commit: an early `?` or `return`); a connection that
    /// cannot roll back is never handed out again.
    fn abandon(mut self) {
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if self.batch("ROLLBACK").await.is_err() {
                        self.detach();
                    }
                });
            }
            Err(_) => self.detach(),
        }
    }
}

/// A store backed by SQL: what the aggregate modules need from a backend.
#[async_trait]
pub trait Database: Send + Sync + 'static {
    type Conn: Conn;
    const DIALECT: Dialect;

    /// A connection from the pool.
    async fn conn(&self) -> StoreResult<Self::Conn>;

    /// The Event API switch (see [`EventDomain`]).
    fn event_switch(&self) -> &ArcSwapOption<String>;

    /// The Event API's domain now, to write events with (`None`: the API is off).
    fn event_domain(&self) -> EventDomain {
        self.event_switch().load_full()
    }

    /// Starts a write transaction; it rolls back unless [`Tx::commit`] is called.
    async fn begin(&self) -> StoreResult<Tx<Self::Conn>> {
        let mut conn = self.conn().await?;
        conn.batch(<Self::Conn as Conn>::BEGIN).await?;
        Ok(Tx { conn: Some(conn) })
    }
}

/// A transaction: commits on [`Tx::commit`], rolls back when dropped before.
pub struct Tx<C: Conn> {
    conn: Option<C>,
}

impl<C: Conn> Tx<C> {
    pub async fn commit(mut self) -> StoreResult<()> {
        let Some(mut conn) = self.conn.take() else {
            return Err(finished());
        };
        match conn.batch("COMMIT").await {
            Ok(()) => Ok(()),
            Err(e) => {
                conn.abandon();
                Err(e)
            }
        }
    }

    fn conn(&mut self) -> StoreResult<&mut C> {
        self.conn.as_mut().ok_or_else(finished)
    }
}

fn finished() -> StoreError {
    StoreError::Backend("transaction already finished".into())
}

impl<C: Conn> Drop for Tx<C> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            conn.abandon();
        }
    }
}

#[async_trait]
impl<C: Conn> Exec for Tx<C> {
    async fn query(&mut self, sql: &str, args: &[Value]) -> StoreResult<Vec<Row>> {
        self.conn()?.query(sql, args).await
    }

    async fn execute(&mut self, sql: &str, args: &[Value]) -> StoreResult<u64> {
        self.conn()?.execute(sql, args).await
    }

    async fn lock(&mut self, sql: &str, args: &[Value]) -> StoreResult<()> {
        self.conn()?.lock(sql, args).await
    }
}

/// The rows of a `VALUES` list for `rows` tuples of `types`, placeholders numbered from 1:
/// `(CAST($1 AS TEXT), CAST($2 AS BIGINT)), (...)` (the casts type them on PostgreSQL).
pub fn values(rows: usize, types: &[&str]) -> String {
    let mut n = 0;
    (0..rows)
        .map(|_| {
            let row: Vec<String> = types
                .iter()
                .map(|t| {
                    n += 1;
                    format!("CAST(${n} AS {t})")
                })
                .collect();
            format!("({})", row.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Decodes every row with `f`.
pub fn all<T>(rows: Vec<Row>, f: impl Fn(&Row) -> StoreResult<T>) -> StoreResult<Vec<T>> {
    rows.iter().map(f).collect()
}

/// Decodes the row, if any, with `f`.
pub fn opt<T>(row: Option<Row>, f: impl Fn(&Row) -> StoreResult<T>) -> StoreResult<Option<T>> {
    row.as_ref().map(f).transpose()
}
