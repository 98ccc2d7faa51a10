//! Users and the labels created with them.

use chrono::{DateTime, Utc};

/// A user row as Barong stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub uid: String,
    pub username: Option<String>,
    pub email: String,
    pub password_digest: String,
    pub role: String,
    pub data: Option<String>,
    pub level: i32,
    pub otp: bool,
    pub state: String,
    pub referral_id: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What it takes to create a user; `labels` are written in the same transaction.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub uid: String,
    pub username: Option<String>,
    pub email: String,
    pub password_digest: String,
    pub role: String,
    pub data: Option<String>,
    pub level: i32,
    pub otp: bool,
    pub state: String,
    pub referral_id: Option<i64>,
    pub labels: Vec<NewLabel>,
}

/// A label to attach to a user (`scope` is `public` or `private`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLabel {
    pub key: String,
    pub value: String,
    pub scope: String,
}

/// Barong's uid format: the configured prefix (upper-cased) and 10 upper-case hex digits
/// taken from 5 random bytes, e.g. `ID30DD0DD986`. The caller supplies the randomness.
pub fn generate_uid(prefix: &str, random: [u8; 5]) -> String {
    format!("{}{}", prefix.to_uppercase(), hex::encode_upper(random))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_has_prefix_and_ten_hex_digits() {
        let uid = generate_uid("id", [0x30, 0xdd, 0x0d, 0xd9, 0x86]);
        assert_eq!(uid, "ID30DD0DD986");
    }
}
