//! Levels, permissions and restrictions: the rows that decide who may do what.

use chrono::{DateTime, Utc};
use serde::Deserialize;

/// A KYC level: reached when the user holds the private label `key:value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Level {
    pub id: i64,
    pub key: String,
    pub value: String,
    pub description: Option<String>,
}

/// A level as the seeds file describes it; ids are assigned 1..n in file order.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct NewLevel {
    #[serde(skip)]
    pub id: i64,
    pub key: String,
    pub value: String,
    #[serde(default)]
    pub description: Option<String>,
}

/// An RBAC row: `role` may (ACCEPT), may not (DROP) or is audited (AUDIT) on `verb` + path prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permission {
    pub id: i64,
    pub role: String,
    pub verb: String,
    pub path: String,
    pub action: String,
    pub topic: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A permission as the seeds file or the admin API gives it; verb and action are stored upper-case.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct NewPermission {
    pub role: String,
    pub verb: String,
    pub path: String,
    pub action: String,
    #[serde(default)]
    pub topic: Option<String>,
}

impl NewPermission {
    /// Barong stores verb and action upper-case whatever the input was.
    pub fn normalized(mut self) -> Self {
        self.verb = self.verb.to_uppercase();
        self.action = self.action.to_uppercase();
        self
    }
}

/// A restriction row (whitelist, maintenance, blacklist, blocklogin by scope).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restriction {
    pub id: i64,
    pub category: String,
    pub scope: String,
    pub value: String,
    pub code: i32,
    pub state: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A restriction as the seeds file or the admin API gives it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct NewRestriction {
    pub category: String,
    pub scope: String,
    pub value: String,
    #[serde(default)]
    pub code: Option<i32>,
    #[serde(default = "default_restriction_state")]
    pub state: String,
}

fn default_restriction_state() -> String {
    "enabled".to_owned()
}

impl NewRestriction {
    /// The status code Barong assigns before validation: a blank code, or any whitelist row,
    /// gets the default of its category and scope; other categories keep a custom code.
    pub fn effective_code(&self) -> i32 {
        match self.code {
            Some(code) if self.category != "whitelist" => code,
            _ => default_restriction_code(&self.category, &self.scope),
        }
    }
}

/// Whether `code` may be a restriction's status: one that denies (4xx). Barong stores any
/// integer; a 2xx there would make the decision answer "allow" to the very clients it restricts.
pub fn is_restriction_code(code: i64) -> bool {
    (400..=499).contains(&code)
}

/// Barong's default deny status per category and scope (maintenance 471, else by scope).
pub fn default_restriction_code(category: &str, scope: &str) -> i32 {
    if category == "maintenance" {
        return 471;
    }
    match scope {
        "continent" | "country" => 423,
        "ip_subnet" => 403,
        _ => 401,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn restriction(category: &str, scope: &str, code: Option<i32>) -> NewRestriction {
        NewRestriction {
            category: category.into(),
            scope: scope.into(),
            value: "x".into(),
            code,
            state: "enabled".into(),
        }
    }

    #[test]
    fn restriction_codes_follow_barong_defaults() {
        assert_eq!(
            restriction("maintenance", "all", None).effective_code(),
            471
        );
        assert_eq!(restriction("blacklist", "ip", None).effective_code(), 401);
        assert_eq!(restriction("blacklist", "all", None).effective_code(), 401);
        assert_eq!(
            restriction("blacklist", "ip_subnet", None).effective_code(),
            403
        );
        assert_eq!(
            restriction("blacklist", "country", None).effective_code(),
            423
        );
        assert_eq!(
            restriction("blocklogin", "continent", None).effective_code(),
            423
        );
        assert_eq!(
            restriction("blacklist", "ip", Some(433)).effective_code(),
            433
        );
        assert_eq!(
            restriction("whitelist", "ip", Some(433)).effective_code(),
            401
        );
    }
}
