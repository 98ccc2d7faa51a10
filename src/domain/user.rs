//! Users and the labels created with them.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use regex::Regex;

use super::UserState;
use super::password::PasswordPolicy;

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
    pub state: UserState,
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
    pub state: UserState,
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

/// Barong's e-mail format (email_validator 1.6 strict mode), as a linear-time
/// regex: the anchored local part makes the gem's atomic group unnecessary.
#[expect(
    clippy::expect_used,
    reason = "a constant pattern, compiled by the unit tests"
)]
static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    let atom = r#"[\p{L}0-9\-+_!"'#$%^&*{}/=?`|~]"#;
    let label =
        r"[\p{Alphabetic}\p{Nd}](?:(?:[\p{Alphabetic}\p{Nd}]|-){0,62}[\p{Alphabetic}\p{Nd}]+)?";
    Regex::new(&format!(
        r"(?i)^(?:{atom}\.?){{0,63}}{atom}@(?:{label}\.?)*\p{{Alphabetic}}{{1,63}}$"
    ))
    .expect("e-mail regex compiles")
});

/// Longest e-mail we look at; anything longer is `email.invalid` (Barong's column is 255).
const EMAIL_MAX: usize = 255;

/// Whether `email` (surrounding whitespace ignored) is a valid address for Barong.
pub fn email_is_valid(email: &str) -> bool {
    let email = email.trim();
    !email.is_empty() && email.len() <= EMAIL_MAX && EMAIL.is_match(email)
}

/// The attributes of a sign-up that Barong's User model validates.
#[derive(Debug, Clone, Default)]
pub struct UserInput<'a> {
    pub email: &'a str,
    pub password: &'a str,
    /// Already lower-cased, as Barong lower-cases before validation.
    pub username: Option<&'a str>,
    pub data: Option<&'a str>,
    /// Another user already has this e-mail.
    pub email_taken: bool,
    /// Another user already has this username.
    pub username_taken: bool,
}

/// The most characters `data` may hold.
pub const DATA_MAX: usize = 1024;

/// Barong's User validations that need no database, in Barong's order: data length,
/// data format, e-mail, username, password length and policy. Uniqueness (`email.taken`,
/// `username.taken`) is the caller's, with the store.
pub fn validate_user(input: &UserInput<'_>, policy: &PasswordPolicy) -> Vec<String> {
    let mut errors: Vec<String> = Vec::new();
    let mut add = |key: &str| {
        if !errors.iter().any(|e| e == key) {
            errors.push(key.to_owned());
        }
    };
    if let Some(data) = input.data {
        if data.chars().count() > DATA_MAX {
            add("data.too_long");
        }
        if !data_is_valid(data) {
            add("data.invalid_format");
        }
    }
    if input.email.trim().is_empty() {
        add("email.invalid");
        add("email.blank");
    } else if !email_is_valid(input.email) {
        add("email.invalid");
    }
    if input.email_taken {
        add("email.taken");
    }
    if let Some(username) = input.username {
        let len = username.chars().count();
        if len < 4 {
            add("username.too_short");
        }
        if len > 12 {
            add("username.too_long");
        }
        if username.is_empty() || !username.bytes().all(|b| b.is_ascii_alphanumeric()) {
            add("username.invalid");
        }
        if input.username_taken {
            add("username.taken");
        }
    }
    if input.password.is_empty() {
        add("password.blank");
    }
    if input.password.len() > 72 {
        add("password.too_long");
    }
    if let Err(problem) = policy.check(input.password) {
        add(problem.key());
    }
    errors
}

/// `data` must be JSON text of an object.
pub fn data_is_valid(data: &str) -> bool {
    matches!(
        serde_json::from_str::<serde_json::Value>(data),
        Ok(serde_json::Value::Object(_))
    )
}

/// The mail language of a user: `data.language` lower-cased, else the default.
pub fn user_language(data: Option<&str>, default: &str) -> String {
    data.and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok())
        .and_then(|v| {
            v.get("language")
                .and_then(|l| l.as_str())
                .map(str::to_owned)
        })
        .filter(|l| !l.trim().is_empty())
        .unwrap_or_else(|| default.to_owned())
        .to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_format() {
        for good in [
            "user@example.com",
            "user@localhost",
            "  user@example.com ",
            "ünïcødé@exämple.com",
            "a.b+c@sub.example.org",
            "o'brien@example.com",
        ] {
            assert!(email_is_valid(good), "{good}");
        }
        for bad in [
            "",
            "user",
            "user@",
            "@example.com",
            "user@1.2.3.4",
            ".user@example.com",
            "user.@example.com",
            "us..er@example.com",
            "user@exa mple.com",
            "user@example.com\r\nBcc: x@y.com",
            "a'; DROP TABLE users;--@example.com",
        ] {
            assert!(!email_is_valid(bad), "{bad}");
        }
        let long = format!("{}@example.com", "a".repeat(65));
        assert!(!email_is_valid(&long));
        let huge = format!("a@{}!", "b".repeat(100_000));
        assert!(!email_is_valid(&huge));
    }

    #[test]
    fn validation_order_and_keys() {
        let policy = PasswordPolicy::barong_default();
        let input = UserInput {
            email: "bad",
            password: "Password1",
            username: None,
            data: None,
            ..Default::default()
        };
        assert_eq!(
            validate_user(&input, &policy),
            ["email.invalid", "password.weak"]
        );
        let input = UserInput {
            email: "a@b.com",
            password: "Tecohvi0",
            username: Some(""),
            data: Some("[1]"),
            ..Default::default()
        };
        assert_eq!(
            validate_user(&input, &policy),
            [
                "data.invalid_format",
                "username.too_short",
                "username.invalid"
            ]
        );
        assert!(
            validate_user(
                &UserInput {
                    email: "a@b.com",
                    password: "Tecohvi0",
                    username: Some("alice1"),
                    data: Some(r#"{"language":"ru"}"#),
                    ..Default::default()
                },
                &policy
            )
            .is_empty()
        );
    }

    #[test]
    fn language_from_data() {
        assert_eq!(user_language(Some(r#"{"language":"RU"}"#), "en"), "ru");
        assert_eq!(user_language(Some("{}"), "EN"), "en");
        assert_eq!(user_language(None, "en"), "en");
    }

    #[test]
    fn uid_has_prefix_and_ten_hex_digits() {
        let uid = generate_uid("id", [0x30, 0xdd, 0x0d, 0xd9, 0x86]);
        assert_eq!(uid, "ID30DD0DD986");
    }
}

/// A stored data storage row: one per title per user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataStorage {
    pub title: String,
    pub data: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The largest `data` of a data storage row, in characters.
pub const DATA_STORAGE_MAX: usize = 5120;
