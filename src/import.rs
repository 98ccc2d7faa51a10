//! `barong users import FILE`: users from Barong's export, in the columns of the management
//! `users/import` call (`email`, `password_digest`, `referral_uid`, ...), as CSV with a header
//! row or as a JSON array of objects. Bcrypt digests are stored as they are (login accepts them
//! and rehashes). Idempotent: a user whose e-mail exists is skipped.

use std::path::Path;

use serde_json::{Map, Value};

use crate::domain::{NewUser, StateRules, generate_uid};
use crate::store::{Store, StoreError};

/// What an import did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub created: usize,
    pub skipped: usize,
    /// `(row number, reason)` of refused rows.
    pub refused: Vec<(usize, String)>,
}

/// Why a file cannot be imported at all.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}")]
    File(String),
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// Reads the rows of a CSV (header row first) or JSON (array of objects) export.
pub fn read_rows(path: &Path) -> Result<Vec<Map<String, Value>>, ImportError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ImportError::File(format!("{}: {e}", path.display())))?;
    if text.trim_start().starts_with('[') {
        let rows: Vec<Map<String, Value>> = serde_json::from_str(&text)
            .map_err(|e| ImportError::File(format!("{}: {e}", path.display())))?;
        return Ok(rows);
    }
    let mut records = parse_csv(&text).into_iter();
    let header = records
        .next()
        .ok_or_else(|| ImportError::File(format!("{}: empty file", path.display())))?;
    Ok(records
        .filter(|r| r.iter().any(|f| !f.is_empty()))
        .map(|record| {
            header
                .iter()
                .zip(record)
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| (k.trim().to_owned(), Value::String(v)))
                .collect()
        })
        .collect())
}

/// RFC 4180 CSV: quoted fields may hold commas, newlines and doubled quotes.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => field.push(c),
        }
    }
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        records.push(record);
    }
    records
}

fn text(row: &Map<String, Value>, name: &str) -> Option<String> {
    row.get(name)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Imports the rows in order (a referral may name a user imported earlier in the same file).
pub async fn import_users(
    store: &dyn Store,
    rows: &[Map<String, Value>],
    uid_prefix: &str,
    rules: &StateRules,
) -> Result<ImportReport, ImportError> {
    let mut report = ImportReport::default();
    for (index, row) in rows.iter().enumerate() {
        let number = index + 1;
        let (Some(email), Some(digest)) = (text(row, "email"), text(row, "password_digest")) else {
            report
                .refused
                .push((number, "email and password_digest are required".into()));
            continue;
        };
        if !crate::domain::email_is_valid(&email) {
            report.refused.push((number, "Email is invalid".into()));
            continue;
        }
        if store.find_user_by_email(&email).await?.is_some() {
            report.skipped += 1;
            continue;
        }
        let referral_id = match text(row, "referral_uid") {
            Some(uid) => store.find_user_by_uid(&uid).await?.map(|u| u.id),
            None => None,
        };
        let user = NewUser {
            uid: generate_uid(uid_prefix, rand::random()),
            username: None,
            email,
            password_digest: digest,
            role: "member".into(),
            data: None,
            level: 0,
            otp: false,
            state: "pending".into(),
            referral_id,
            labels: Vec::new(),
        };
        match store.register_user(&user, false, None, rules).await {
            Ok(_) => report.created += 1,
            // Created meanwhile by someone else: the import stays idempotent.
            Err(StoreError::Conflict(column)) if column == "email" => report.skipped += 1,
            Err(StoreError::Conflict(column)) => {
                report.refused.push((number, format!("{column} clash")))
            }
            Err(other) => return Err(other.into()),
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_with_quotes_commas_and_newlines() {
        let rows =
            parse_csv("email,city\r\n\"a@b.c\",\"Paris, \"\"FR\"\"\"\nx@y.z,\"multi\nline\"\n");
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[1], vec!["a@b.c", "Paris, \"FR\""]);
        assert_eq!(rows[2], vec!["x@y.z", "multi\nline"]);
    }
}
