//! Labels and what private labels decide: the user's state and level.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};

use super::{Level, UserState};

/// A stored label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    pub key: String,
    pub value: String,
    pub scope: String,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Barong's two label scopes. Public labels are the user's to see and edit; private ones are
/// written by admins, the management API and the server, and only they decide state and level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LabelScope {
    Public,
    Private,
}

impl LabelScope {
    /// The scope named by `text` exactly (Barong's `scope.inclusion`); `None` otherwise.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "public" => Some(Self::Public),
            "private" => Some(Self::Private),
            _ => None,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Private => "private",
        }
    }

    /// Whether a stored scope column holds this scope. The column stays text because the
    /// management API stores the scope it is sent; a scope Barong never writes is neither
    /// (fail closed): not private, so it grants no activation or level, and not public, so no
    /// user request may change it. State triggers look at every scope, that one included.
    pub fn is(self, column: &str) -> bool {
        Self::parse(column) == Some(self)
    }
}

impl fmt::Display for LabelScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for LabelScope {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Barong's `barong.yml` rules for the automatic state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateRules {
    /// Private `key: value` labels a user needs to be `active`.
    pub activation_requirements: Vec<(String, String)>,
    /// `(state, label keys)` in file order; later matches win.
    pub state_triggers: Vec<(String, Vec<String>)>,
}

impl Default for StateRules {
    fn default() -> Self {
        let keys = |k: &[&str]| k.iter().map(|s| (*s).to_owned()).collect();
        Self {
            activation_requirements: vec![("email".into(), "verified".into())],
            state_triggers: vec![
                ("banned".into(), keys(&["ban", "fraud"])),
                ("deleted".into(), keys(&["delete"])),
                ("locked".into(), keys(&["suspicious", "lock"])),
            ],
        }
    }
}

/// `update_state`: pending, active when every activation requirement is among the private
/// labels, then each trigger state whose key is on any label (any scope).
pub fn derive_state(labels: &[(String, String, String)], rules: &StateRules) -> UserState {
    let private = |key: &str, value: &str| {
        labels
            .iter()
            .any(|(k, v, s)| LabelScope::Private.is(s) && k == key && v == value)
    };
    let mut state = if rules
        .activation_requirements
        .iter()
        .all(|(k, v)| private(k, v))
    {
        "active"
    } else {
        "pending"
    };
    for (trigger_state, keys) in &rules.state_triggers {
        if keys
            .iter()
            .any(|key| labels.iter().any(|(k, _, _)| k == key))
        {
            state = trigger_state;
        }
    }
    UserState::parse(state)
}

/// The largest level id reached walking levels in id order, stopping at the first whose
/// `key:value` is not a private label of the user.
pub fn derive_level(labels: &[(String, String, String)], levels: &[Level]) -> i32 {
    let mut sorted: Vec<&Level> = levels.iter().collect();
    sorted.sort_by_key(|l| l.id);
    let mut reached = 0;
    for level in sorted {
        let held = labels
            .iter()
            .any(|(k, v, s)| LabelScope::Private.is(s) && *k == level.key && *v == level.value);
        if !held {
            break;
        }
        reached = level.id as i32;
    }
    reached
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(k: &str, v: &str, s: &str) -> (String, String, String) {
        (k.into(), v.into(), s.into())
    }

    fn levels() -> Vec<Level> {
        [(1, "email"), (2, "phone"), (3, "document")]
            .iter()
            .map(|(id, key)| Level {
                id: *id,
                key: (*key).into(),
                value: "verified".into(),
                description: None,
            })
            .collect()
    }

    #[test]
    fn state_and_level_follow_private_labels() {
        let rules = StateRules::default();
        assert_eq!(derive_state(&[], &rules), "pending");
        let verified = [label("email", "verified", "private")];
        assert_eq!(derive_state(&verified, &rules), "active");
        assert_eq!(derive_level(&verified, &levels()), 1);
        let public = [label("email", "verified", "public")];
        assert_eq!(derive_state(&public, &rules), "pending");
        assert_eq!(derive_level(&public, &levels()), 0);
        let gap = [
            label("email", "verified", "private"),
            label("document", "verified", "private"),
        ];
        assert_eq!(derive_level(&gap, &levels()), 1);
        let banned = [
            label("email", "verified", "private"),
            label("ban", "yes", "public"),
            label("lock", "yes", "private"),
        ];
        assert_eq!(derive_state(&banned, &rules), "locked");
    }

    #[test]
    fn scopes_parse_print_and_refuse_other_text() {
        for scope in [LabelScope::Public, LabelScope::Private] {
            assert_eq!(LabelScope::parse(scope.as_str()), Some(scope));
            assert_eq!(scope.to_string(), scope.as_str());
            assert_eq!(
                serde_json::to_string(&scope).unwrap(),
                format!("\"{scope}\"")
            );
            assert!(scope.is(scope.as_str()));
        }
        for other in ["", "Private", "PUBLIC", " private", "secret"] {
            assert_eq!(LabelScope::parse(other), None, "{other:?}");
            assert!(!LabelScope::Private.is(other) && !LabelScope::Public.is(other));
        }
        // A label of an unknown scope is not private: it does not activate the user.
        let rules = StateRules::default();
        assert_eq!(
            derive_state(&[label("email", "verified", "secret")], &rules),
            "pending"
        );
        assert_eq!(
            derive_level(&[label("email", "verified", "secret")], &levels()),
            0
        );
    }
}
