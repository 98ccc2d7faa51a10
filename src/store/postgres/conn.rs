//! PostgreSQL's side of the shared layer: arguments typed by the parameter the server infers,
//! rows decoded by column type, and error mapping. The shared SQL is PostgreSQL's own.

use std::error::Error;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::BytesMut;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use tokio_postgres::Statement;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

use crate::store::sql::{Conn, Exec, Row, Value};
use crate::store::{Clash, StoreError, StoreResult};

type BoxError = Box<dyn Error + Sync + Send>;

/// One `Value` fits any column width: the server says which type each parameter has and the
/// integer is narrowed (or refused when it does not fit) here.
impl ToSql for Value {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(i) => match *ty {
                Type::INT2 => i16::try_from(*i)?.to_sql_checked(ty, out),
                Type::INT4 => i32::try_from(*i)?.to_sql_checked(ty, out),
                Type::FLOAT8 => (*i as f64).to_sql_checked(ty, out),
                Type::TEXT | Type::VARCHAR => i.to_string().to_sql_checked(ty, out),
                _ => i.to_sql_checked(ty, out),
            },
            Value::Bool(b) => b.to_sql_checked(ty, out),
            Value::Float(f) => f.to_sql_checked(ty, out),
            Value::Text(s) => s.to_sql_checked(ty, out),
            Value::Time(t) => t.to_sql_checked(ty, out),
            Value::Date(d) => d.to_sql_checked(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

fn column(row: &tokio_postgres::Row, i: usize) -> Result<Value, tokio_postgres::Error> {
    fn some<T>(v: Option<T>, f: impl FnOnce(T) -> Value) -> Value {
        v.map_or(Value::Null, f)
    }
    let ty = row.columns()[i].type_().clone();
    Ok(match ty {
        Type::INT2 => some(row.try_get::<_, Option<i16>>(i)?, |v| Value::Int(v.into())),
        Type::INT4 => some(row.try_get::<_, Option<i32>>(i)?, |v| Value::Int(v.into())),
        Type::INT8 => some(row.try_get::<_, Option<i64>>(i)?, Value::Int),
        Type::BOOL => some(row.try_get::<_, Option<bool>>(i)?, Value::Bool),
        Type::FLOAT4 => some(row.try_get::<_, Option<f32>>(i)?, |v| {
            Value::Float(v.into())
        }),
        Type::FLOAT8 => some(row.try_get::<_, Option<f64>>(i)?, Value::Float),
        Type::TIMESTAMPTZ => some(row.try_get::<_, Option<DateTime<Utc>>>(i)?, Value::Time),
        Type::TIMESTAMP => some(row.try_get::<_, Option<NaiveDateTime>>(i)?, |v| {
            Value::Time(v.and_utc())
        }),
        Type::DATE => some(row.try_get::<_, Option<NaiveDate>>(i)?, Value::Date),
        Type::JSON | Type::JSONB => some(row.try_get::<_, Option<serde_json::Value>>(i)?, |v| {
            Value::Text(v.to_string())
        }),
        _ => some(row.try_get::<_, Option<String>>(i)?, Value::Text),
    })
}

fn rows(rows: &[tokio_postgres::Row]) -> StoreResult<Vec<Row>> {
    let Some(first) = rows.first() else {
        return Ok(Vec::new());
    };
    let columns: Arc<[String]> = first
        .columns()
        .iter()
        .map(|c| c.name().to_owned())
        .collect();
    rows.iter()
        .map(|r| {
            let values = (0..columns.len())
                .map(|i| column(r, i))
                .collect::<Result<_, _>>()
                .map_err(map_error)?;
            Ok(Row::new(columns.clone(), values))
        })
        .collect()
}

fn params(args: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    args.iter().map(|v| v as &(dyn ToSql + Sync)).collect()
}

/// Statements a connection keeps prepared. The store's SQL is a fixed set plus the admin
/// listings' filter and ordering combinations (pages are arguments: `admin_sql::page`); should
/// a connection reach this many anyway, it runs the rest unprepared rather than growing
/// without end, here and in its server process.
const PREPARED_PER_CONNECTION: usize = 256;

/// A pooled PostgreSQL connection.
pub struct PgConn {
    client: deadpool_postgres::Object,
    /// Between `BEGIN` and `COMMIT`/`ROLLBACK`: a failed statement has aborted the transaction,
    /// so it cannot be retried in it.
    in_transaction: bool,
}

impl PgConn {
    pub(super) fn new(client: deadpool_postgres::Object) -> Self {
        Self {
            client,
            in_transaction: false,
        }
    }

    /// Runs `sql` as a statement prepared once per connection (the connection's cache): one
    /// round trip and no parse or plan in the server, where running the text makes two (an
    /// unnamed prepare, then the execution) and plans it every time. This is the authz path's
    /// miss (the session, the user, the API key) as much as the REST API's.
    async fn run(&mut self, sql: &str, args: &[Value], want: Want) -> StoreResult<Ran> {
        let params = params(args);
        let client = &self.client;
        let cache = &client.statement_cache;
        if cache.size() >= PREPARED_PER_CONNECTION {
            let statement = client.prepare(sql).await.map_err(map_error)?;
            return want
                .run(client, &statement, &params)
                .await
                .map_err(map_error);
        }
        let statement = client.prepare_cached(sql).await.map_err(map_error)?;
        match want.run(client, &statement, &params).await {
            // A table's columns changed under a prepared `SELECT *` (another instance migrated
            // it): the server refuses the old statement. Every pooled connection forgets its
            // statements, and this one prepares again, unless the refusal aborted its
            // transaction: that caller gets the store's "unavailable" (a 503, try again).
            Err(error) if plan_changed(&error) => {
                match deadpool_postgres::Object::pool(client) {
                    Some(pool) => pool.manager().statement_caches.clear(),
                    None => cache.clear(),
                }
                if self.in_transaction {
                    return Err(StoreError::Unavailable(describe(&error)));
                }
                let statement = client.prepare_cached(sql).await.map_err(map_error)?;
                want.run(client, &statement, &params)
                    .await
                    .map_err(map_error)
            }
            ran => ran.map_err(map_error),
        }
    }
}

/// What a statement is run for: its rows, or the count of rows it changed.
#[derive(Clone, Copy)]
enum Want {
    Rows,
    Count,
}

enum Ran {
    Rows(Vec<tokio_postgres::Row>),
    Count(u64),
}

impl Want {
    async fn run(
        self,
        client: &tokio_postgres::Client,
        statement: &Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Ran, tokio_postgres::Error> {
        Ok(match self {
            Want::Rows => Ran::Rows(client.query(statement, params).await?),
            Want::Count => Ran::Count(client.execute(statement, params).await?),
        })
    }
}

/// "cached plan must not change result type": a prepared statement's result columns changed.
/// (A failed statement outside a transaction changed nothing, so running it again is safe.)
fn plan_changed(error: &tokio_postgres::Error) -> bool {
    error.as_db_error().is_some_and(|db| {
        db.code() == &SqlState::FEATURE_NOT_SUPPORTED && db.message().starts_with("cached plan")
    })
}

#[async_trait]
impl Exec for PgConn {
    async fn query(&mut self, sql: &str, args: &[Value]) -> StoreResult<Vec<Row>> {
        match self.run(sql, args, Want::Rows).await? {
            Ran::Rows(found) => rows(&found),
            Ran::Count(_) => Ok(Vec::new()),
        }
    }

    async fn execute(&mut self, sql: &str, args: &[Value]) -> StoreResult<u64> {
        match self.run(sql, args, Want::Count).await? {
            Ran::Count(n) => Ok(n),
            Ran::Rows(found) => Ok(found.len() as u64),
        }
    }

    async fn lock(&mut self, sql: &str, args: &[Value]) -> StoreResult<()> {
        self.execute(sql, args).await?;
        Ok(())
    }
}

#[async_trait]
impl Conn for PgConn {
    const BEGIN: &'static str = "BEGIN";

    async fn batch(&mut self, sql: &str) -> StoreResult<()> {
        let result = self.client.batch_execute(sql).await.map_err(map_error);
        match sql {
            Self::BEGIN => self.in_transaction = result.is_ok(),
            "COMMIT" | "ROLLBACK" => self.in_transaction = false,
            _ => {}
        }
        result
    }

    fn detach(self) {
        drop(deadpool_postgres::Object::take(self.client));
    }
}

/// The most useful line of a driver error: the server's message when there is one.
pub(crate) fn describe(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => db.message().to_owned(),
        None => match std::error::Error::source(error) {
            Some(source) => format!("{error}: {source}"),
            None => error.to_string(),
        },
    }
}

/// Maps driver errors: a unique violation says what clashed (from its table and the detail
/// `Key (email)=(...) already exists.`), lost connections are `Unavailable`.
pub(crate) fn map_error(error: tokio_postgres::Error) -> StoreError {
    if let Some(db) = error.as_db_error() {
        if db.code() == &SqlState::UNIQUE_VIOLATION {
            let column = db
                .detail()
                .and_then(|d| d.strip_prefix("Key ("))
                .and_then(|d| d.split(")=").next())
                .map(|c| c.split(',').next().unwrap_or(c).trim())
                .map(|c| c.trim_start_matches("lower(").trim_end_matches("::text"))
                .unwrap_or("unknown");
            return StoreError::Conflict(Clash::of(db.table().unwrap_or(""), column));
        }
        return StoreError::Backend(db.message().to_owned());
    }
    if error.is_closed() || std::error::Error::source(&error).is_some() {
        return StoreError::Unavailable(describe(&error));
    }
    StoreError::Backend(describe(&error))
}
