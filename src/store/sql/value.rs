//! One argument type and one row type for both backends. Each backend converts at its edge
//! (SQLite: `rusqlite` values; PostgreSQL: `ToSql` by the parameter's type, rows by the column's
//! type), so the decoding of a row into a domain type is written once.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, Utc};

use crate::domain::UserState;
use crate::store::{StoreError, StoreResult};

/// A bound argument or a column value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Bool(bool),
    Float(f64),
    Text(String),
    /// A timestamp: `TIMESTAMPTZ` on PostgreSQL, RFC 3339 text with milliseconds on SQLite
    /// (so that times sort and compare as text there).
    Time(DateTime<Utc>),
    /// A calendar date: `DATE` on PostgreSQL, `YYYY-MM-DD` text on SQLite.
    Date(NaiveDate),
}

impl Value {
    /// An epoch-seconds bound compared with a timestamp column.
    pub fn epoch(secs: i64) -> Value {
        Value::Time(DateTime::from_timestamp(secs, 0).unwrap_or_default())
    }

    /// The SQLite text of a time.
    pub fn time_text(t: &DateTime<Utc>) -> String {
        t.to_rfc3339_opts(SecondsFormat::Millis, true)
    }
}

macro_rules! from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Self {
                Value::Int(i64::from(v))
            }
        }
    )*};
}
from_int!(i16, i32, i64, u32);

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}

impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Text(v.clone())
    }
}

impl From<&UserState> for Value {
    fn from(v: &UserState) -> Self {
        Value::Text(v.as_str().to_owned())
    }
}

impl From<UserState> for Value {
    fn from(v: UserState) -> Self {
        Value::from(&v)
    }
}

impl From<DateTime<Utc>> for Value {
    fn from(v: DateTime<Utc>) -> Self {
        Value::Time(v)
    }
}

impl From<NaiveDate> for Value {
    fn from(v: NaiveDate) -> Self {
        Value::Date(v)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

impl<T: Clone + Into<Value>> From<&Option<T>> for Value {
    fn from(v: &Option<T>) -> Self {
        v.clone().map_or(Value::Null, Into::into)
    }
}

/// A result row: values by position, names shared by every row of one statement.
#[derive(Debug, Clone)]
pub struct Row {
    columns: Arc<[String]>,
    values: Vec<Value>,
}

impl Row {
    pub fn new(columns: Arc<[String]>, values: Vec<Value>) -> Self {
        Self { columns, values }
    }

    /// The column named `name` (the first one of that name).
    pub fn get<T: FromValue>(&self, name: &str) -> StoreResult<T> {
        let i = self
            .columns
            .iter()
            .position(|c| c == name)
            .ok_or_else(|| StoreError::Backend(format!("no column {name}")))?;
        let value = self.values.get(i).unwrap_or(&Value::Null);
        T::from_value(value).map_err(|e| StoreError::Backend(format!("{name}: {e}")))
    }

    /// The `i`-th column.
    pub fn at<T: FromValue>(&self, i: usize) -> StoreResult<T> {
        let value = self
            .values
            .get(i)
            .ok_or_else(|| StoreError::Backend(format!("no column {i}")))?;
        T::from_value(value).map_err(|e| StoreError::Backend(format!("column {i}: {e}")))
    }
}

/// A Rust type a column decodes to, whichever backend stored it.
pub trait FromValue: Sized + Send {
    fn from_value(value: &Value) -> Result<Self, String>;
}

fn wrong(want: &str, got: &Value) -> String {
    format!("expected {want}, found {got:?}")
}

impl FromValue for i64 {
    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::Int(i) => Ok(*i),
            other => Err(wrong("an integer", other)),
        }
    }
}

impl FromValue for i32 {
    fn from_value(value: &Value) -> Result<Self, String> {
        i32::try_from(i64::from_value(value)?).map_err(|e| e.to_string())
    }
}

impl FromValue for bool {
    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::Bool(b) => Ok(*b),
            // SQLite has no boolean type: 0 and 1.
            Value::Int(i) => Ok(*i != 0),
            other => Err(wrong("a boolean", other)),
        }
    }
}

impl FromValue for f64 {
    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::Float(f) => Ok(*f),
            Value::Int(i) => Ok(*i as f64),
            other => Err(wrong("a number", other)),
        }
    }
}

impl FromValue for String {
    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::Text(s) => Ok(s.clone()),
            // SQLite's column affinity may have turned digits into an integer.
            Value::Int(i) => Ok(i.to_string()),
            other => Err(wrong("text", other)),
        }
    }
}

/// Never fails on text: a state only barong.yml names is kept as it is.
impl FromValue for UserState {
    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::Text(s) => Ok(UserState::parse(s)),
            other => Err(wrong("text", other)),
        }
    }
}

impl FromValue for DateTime<Utc> {
    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::Time(t) => Ok(*t),
            Value::Text(s) => DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .or_else(|_| {
                    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").map(|t| t.and_utc())
                })
                .map_err(|e| format!("{s:?}: {e}")),
            other => Err(wrong("a timestamp", other)),
        }
    }
}

impl FromValue for NaiveDate {
    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::Date(d) => Ok(*d),
            Value::Text(s) => {
                NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|e| format!("{s:?}: {e}"))
            }
            other => Err(wrong("a date", other)),
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::Null => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_what_either_backend_stores() {
        let row = Row::new(
            Arc::from(vec!["otp".to_owned(), "at".to_owned(), "n".to_owned()]),
            vec![
                Value::Int(1),
                Value::Text("2024-01-02T03:04:05.006Z".into()),
                Value::Null,
            ],
        );
        assert!(row.get::<bool>("otp").expect("bool"));
        let at: DateTime<Utc> = row.get("at").expect("time");
        assert_eq!(Value::time_text(&at), "2024-01-02T03:04:05.006Z");
        assert_eq!(row.get::<Option<i64>>("n").expect("null"), None);
        assert!(row.get::<i64>("missing").is_err());
    }
}
