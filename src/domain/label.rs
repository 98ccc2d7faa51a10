//! Labels and what private labels decide: the user's state and level.

use chrono::{DateTime, Utc};

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
            .any(|(k, v, s)| s == "private" && k == key && v == value)
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
            .any(|(k, v, s)| s == "private" && *k == level.key && *v == level.value);
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
}
