//! Server-side sessions behind the `_barong_session` cookie.
//!
//! The cookie carries an opaque random id; the database keys the row by the SHA-256 of that id,
//! so a leaked table (or log) does not hand out live cookies.

use chrono::{DateTime, Utc};

/// A stored session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// SHA-256 hex of the cookie value.
    pub id: String,
    pub user_id: i64,
    pub uid: String,
    pub user_ip: String,
    pub user_agent: Option<String>,
    pub csrf_token: String,
    /// Epoch seconds after which the session is refused (sliding: pushed forward on use).
    pub expire_at: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What it takes to open a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    pub id: String,
    pub user_id: i64,
    pub uid: String,
    pub user_ip: String,
    pub user_agent: Option<String>,
    pub csrf_token: String,
    pub expire_at: i64,
}

/// The storage key of a cookie value: lowercase hex SHA-256.
pub fn session_key(cookie_value: &str) -> String {
    hex::encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        cookie_value.as_bytes(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_key_is_sha256_hex() {
        assert_eq!(
            session_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
