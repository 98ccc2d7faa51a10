//! SQLite's side of the shared layer: the rewrite of the shared SQL, argument and row
//! conversion, and error mapping. Statements run on the pooled connection's blocking thread.

use std::borrow::Cow;
use std::sync::Arc;

use async_trait::async_trait;
use deadpool_sqlite::rusqlite::types::{ToSqlOutput, ValueRef};
use deadpool_sqlite::rusqlite::{self, ToSql, params_from_iter};

use crate::store::sql::{Conn, Exec, Row, Value};
use crate::store::{Clash, StoreError, StoreResult};

/// The current time in the stored format (RFC 3339, milliseconds, `Z`), as SQL.
const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

/// Rewrites the shared (PostgreSQL-spelt) SQL for SQLite in one pass, outside quoted text:
/// `$n` becomes `?n`; `now()` the current time as stored text; `GREATEST(` the scalar `max(`;
/// `FOR UPDATE [SKIP LOCKED]` goes (SQLite locks the whole database: write transactions
/// begin `IMMEDIATE`, so a row lock has nothing left to serialise).
pub(crate) fn rewrite(sql: &str) -> Cow<'_, str> {
    if !sql.contains(['$', '(']) && !sql.contains("FOR UPDATE") {
        return Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len() + 32);
    let mut rest = sql;
    while let Some(c) = rest.chars().next() {
        if c == '\'' {
            let end = rest[1..].find('\'').map_or(rest.len(), |i| i + 2);
            out.push_str(&rest[..end]);
            rest = &rest[end..];
            continue;
        }
        let word_start = !out.ends_with(|p: char| p.is_ascii_alphanumeric() || p == '_');
        if c == '$' {
            out.push('?');
            rest = &rest[1..];
        } else if word_start && rest.starts_with("now()") {
            out.push_str(NOW);
            rest = &rest[5..];
        } else if word_start && rest.starts_with("GREATEST(") {
            out.push_str("max(");
            rest = &rest[9..];
        } else if let Some(tail) = [" FOR UPDATE SKIP LOCKED", " FOR UPDATE"]
            .iter()
            .find_map(|lock| rest.strip_prefix(lock))
        {
            rest = tail;
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    Cow::Owned(out)
}

impl ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Value::Null => ToSqlOutput::Owned(rusqlite::types::Value::Null),
            Value::Int(i) => ToSqlOutput::Owned(rusqlite::types::Value::Integer(*i)),
            Value::Bool(b) => ToSqlOutput::Owned(rusqlite::types::Value::Integer(i64::from(*b))),
            Value::Float(f) => ToSqlOutput::Owned(rusqlite::types::Value::Real(*f)),
            Value::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Value::Time(t) => ToSqlOutput::Owned(rusqlite::types::Value::Text(Value::time_text(t))),
            Value::Date(d) => ToSqlOutput::Owned(rusqlite::types::Value::Text(
                d.format("%Y-%m-%d").to_string(),
            )),
        })
    }
}

fn value(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Real(f) => Value::Float(f),
        ValueRef::Text(t) | ValueRef::Blob(t) => {
            Value::Text(String::from_utf8_lossy(t).into_owned())
        }
    }
}

fn run(
    c: &rusqlite::Connection,
    sql: &str,
    args: &[Value],
    rows: bool,
) -> rusqlite::Result<(Vec<Row>, u64)> {
    let mut stmt = c.prepare_cached(sql)?;
    if !rows {
        let n = stmt.execute(params_from_iter(args.iter()))?;
        return Ok((Vec::new(), n as u64));
    }
    let columns: Arc<[String]> = stmt
        .column_names()
        .iter()
        .map(|c| (*c).to_owned())
        .collect();
    let width = columns.len();
    let mut result = Vec::new();
    let mut cursor = stmt.query(params_from_iter(args.iter()))?;
    while let Some(r) = cursor.next()? {
        let values = (0..width)
            .map(|i| r.get_ref(i).map(value))
            .collect::<rusqlite::Result<_>>()?;
        result.push(Row::new(columns.clone(), values));
    }
    Ok((result, 0))
}

/// A pooled SQLite connection.
pub struct SqliteConn(pub(super) deadpool_sqlite::Object);

impl SqliteConn {
    async fn run(&self, sql: &str, args: &[Value], rows: bool) -> StoreResult<(Vec<Row>, u64)> {
        let sql = rewrite(sql).into_owned();
        let args = args.to_vec();
        self.0
            .interact(move |c| run(c, &sql, &args, rows))
            .await
            .map_err(|e| StoreError::Backend(e.to_string()))?
            .map_err(map_error)
    }
}

#[async_trait]
impl Exec for SqliteConn {
    async fn query(&mut self, sql: &str, args: &[Value]) -> StoreResult<Vec<Row>> {
        Ok(self.run(sql, args, true).await?.0)
    }

    async fn execute(&mut self, sql: &str, args: &[Value]) -> StoreResult<u64> {
        Ok(self.run(sql, args, false).await?.1)
    }

    async fn lock(&mut self, _sql: &str, _args: &[Value]) -> StoreResult<()> {
        Ok(())
    }
}

#[async_trait]
impl Conn for SqliteConn {
    const BEGIN: &'static str = "BEGIN IMMEDIATE";

    async fn batch(&mut self, sql: &str) -> StoreResult<()> {
        let sql = sql.to_owned();
        self.0
            .interact(move |c| c.execute_batch(&sql))
            .await
            .map_err(|e| StoreError::Backend(e.to_string()))?
            .map_err(map_error)
    }

    fn detach(self) {
        drop(deadpool_sqlite::Object::take(self.0));
    }
}

/// Maps driver errors; a unique violation says what clashed (SQLite names the columns:
/// `UNIQUE constraint failed: users.email`).
pub(crate) fn map_error(error: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(code, Some(message)) = &error
        && code.code == rusqlite::ErrorCode::ConstraintViolation
        && let Some(columns) = message.strip_prefix("UNIQUE constraint failed: ")
    {
        let first = columns.split(',').next().unwrap_or(columns).trim();
        let (table, column) = first.split_once('.').unwrap_or(("", first));
        return StoreError::Conflict(Clash::of(table, column));
    }
    StoreError::Backend(error.to_string())
}

#[cfg(test)]
mod tests {
    use super::rewrite;

    #[test]
    fn rewrites_only_what_sqlite_spells_differently() {
        assert_eq!(
            rewrite(
                "UPDATE t SET a = GREATEST(a, $12), at = now() WHERE b = '$1 now()' AND c = $2 FOR UPDATE"
            ),
            "UPDATE t SET a = max(a, ?12), at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') \
             WHERE b = '$1 now()' AND c = ?2"
        );
        assert_eq!(rewrite("SELECT known() FROM t"), "SELECT known() FROM t");
    }
}
