//! PostgreSQL's side of the shared layer: arguments typed by the parameter the server infers,
//! rows decoded by column type, and error mapping. The shared SQL is PostgreSQL's own.

use std::error::Error;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::BytesMut;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
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

/// A pooled PostgreSQL connection.
pub struct PgConn(pub(super) deadpool_postgres::Object);

#[async_trait]
impl Exec for PgConn {
    async fn query(&mut self, sql: &str, args: &[Value]) -> StoreResult<Vec<Row>> {
        let found = self.0.query(sql, &params(args)).await.map_err(map_error)?;
        rows(&found)
    }

    async fn execute(&mut self, sql: &str, args: &[Value]) -> StoreResult<u64> {
        self.0.execute(sql, &params(args)).await.map_err(map_error)
    }

    async fn lock(&mut self, sql: &str, args: &[Value]) -> StoreResult<()> {
        self.0
            .execute(sql, &params(args))
            .await
            .map_err(map_error)?;
        Ok(())
    }
}

#[async_trait]
impl Conn for PgConn {
    const BEGIN: &'static str = "BEGIN";

    async fn batch(&mut self, sql: &str) -> StoreResult<()> {
        self.0.batch_execute(sql).await.map_err(map_error)
    }

    fn detach(self) {
        drop(deadpool_postgres::Object::take(self.0));
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
