//! A user's (or service account's) state: Barong's named states and the ones an operator names.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The `state` column of users and service accounts.
///
/// Barong stores states as free text: `state_triggers` in barong.yml may name any state, so a
/// stored row must always parse. Only `active` and `pending` let anyone in; everything else,
/// named here or not, is refused (fail closed).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum UserState {
    /// The default of a new user until the activation requirements hold.
    #[default]
    Pending,
    Active,
    Banned,
    Deleted,
    Locked,
    /// A service account whose owner was taken away (`disabled` by the store).
    Disabled,
    /// A state only barong.yml names; never the text of a named state.
    Other(CustomState),
}

/// The text of a state this code does not name. Its field is private so that `active` can
/// never hide in here and be refused where the named state would be allowed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CustomState(Box<str>);

impl UserState {
    /// The state stored as `text`; never fails (unknown text is [`UserState::Other`]).
    /// Case matters, as it does in Barong's comparisons: `Active` is not `active`.
    pub fn parse(text: &str) -> Self {
        match text {
            "pending" => Self::Pending,
            "active" => Self::Active,
            "banned" => Self::Banned,
            "deleted" => Self::Deleted,
            "locked" => Self::Locked,
            "disabled" => Self::Disabled,
            other => Self::Other(CustomState(other.into())),
        }
    }

    /// The stored and wire text, borrowed (the authz path signs it without allocating).
    pub fn as_str(&self) -> &str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Banned => "banned",
            Self::Deleted => "deleted",
            Self::Locked => "locked",
            Self::Disabled => "disabled",
            Self::Other(CustomState(text)) => text,
        }
    }

    /// Barong lets `active` and `pending` log in and pass authz (as a user or a key holder).
    pub fn allows_login(&self) -> bool {
        matches!(self, Self::Active | Self::Pending)
    }

    pub fn is_active(&self) -> bool {
        matches!(self, Self::Active)
    }
}

impl From<&str> for UserState {
    fn from(text: &str) -> Self {
        Self::parse(text)
    }
}

impl From<String> for UserState {
    fn from(text: String) -> Self {
        Self::parse(&text)
    }
}

impl FromStr for UserState {
    type Err = std::convert::Infallible;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(Self::parse(text))
    }
}

impl fmt::Display for UserState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl AsRef<str> for UserState {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

// Tests and a few call sites compare with the stored text; this keeps them readable.
impl PartialEq<str> for UserState {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for UserState {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for UserState {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for UserState {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Ok(Self::parse(&text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMED: [&str; 6] = [
        "pending", "active", "banned", "deleted", "locked", "disabled",
    ];

    #[test]
    fn named_states_round_trip() {
        for text in NAMED {
            let state = UserState::parse(text);
            assert!(!matches!(state, UserState::Other(_)), "{text}");
            assert_eq!(state.as_str(), text);
            assert_eq!(state.to_string(), text);
            assert_eq!(text.parse::<UserState>(), Ok(state.clone()));
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{text}\""));
            assert_eq!(serde_json::from_str::<UserState>(&json).unwrap(), state);
        }
    }

    #[test]
    fn unknown_states_parse_keep_their_text_and_are_refused() {
        for text in ["frozen", "Active", "ACTIVE", " active", "", "pending "] {
            let state = UserState::parse(text);
            assert!(matches!(state, UserState::Other(_)), "{text:?}");
            assert_eq!(state.as_str(), text);
            assert_eq!(serde_json::to_string(&state).unwrap(), format!("{text:?}"));
            assert!(!state.allows_login(), "{text:?}");
            assert!(!state.is_active(), "{text:?}");
        }
    }

    #[test]
    fn only_active_and_pending_log_in() {
        for text in NAMED {
            let state = UserState::parse(text);
            assert_eq!(state.allows_login(), matches!(text, "active" | "pending"));
            assert_eq!(state.is_active(), text == "active");
        }
        assert_eq!(UserState::default(), UserState::Pending);
    }
}
