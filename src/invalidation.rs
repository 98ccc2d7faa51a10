//! Cache invalidation: what changed in the database that a cache on some instance may hold.
//!
//! Writers publish an [`Invalidation`] after their transaction commits; every cache subscribes.
//! Inside one process this is a broadcast channel (effective at once). Across instances sharing
//! PostgreSQL it is relayed through `LISTEN/NOTIFY` (see `store::postgres`), with cache TTLs as
//! the floor when a notification is missed.

use tokio::sync::broadcast;

/// One change that makes cached data stale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalidation {
    /// A session was deleted or revoked (id = SHA-256 hex of the cookie value).
    Session(String),
    /// A user's role, state, level, otp flag or labels changed (by uid).
    User(String),
    /// An API key was changed or deleted (by kid).
    ApiKey(String),
    /// The permissions table changed.
    Permissions,
    /// The restrictions table changed.
    Restrictions,
}

impl Invalidation {
    /// Compact text form used on the wire between instances (`session:<id>`, `user:<uid>`, ...).
    pub fn encode(&self) -> String {
        match self {
            Self::Session(id) => format!("session:{id}"),
            Self::User(uid) => format!("user:{uid}"),
            Self::ApiKey(kid) => format!("apikey:{kid}"),
            Self::Permissions => "permissions".into(),
            Self::Restrictions => "restrictions".into(),
        }
    }

    /// Parses [`Invalidation::encode`]'s form; unknown text is ignored by the caller.
    pub fn decode(text: &str) -> Option<Self> {
        match text.split_once(':') {
            Some(("session", id)) => Some(Self::Session(id.into())),
            Some(("user", uid)) => Some(Self::User(uid.into())),
            Some(("apikey", kid)) => Some(Self::ApiKey(kid.into())),
            None if text == "permissions" => Some(Self::Permissions),
            None if text == "restrictions" => Some(Self::Restrictions),
            _ => None,
        }
    }
}

/// The in-process bus. Cheap to clone.
#[derive(Clone)]
pub struct InvalidationBus {
    sender: broadcast::Sender<Invalidation>,
}

impl Default for InvalidationBus {
    fn default() -> Self {
        Self::new()
    }
}

impl InvalidationBus {
    pub fn new() -> Self {
        let (sender, _) = broadcast::channel(4096);
        Self { sender }
    }

    /// Tells every subscriber in this process (and, through the relay, other instances).
    pub fn publish(&self, invalidation: Invalidation) {
        // No subscriber yet is fine: nothing is cached then.
        let _ = self.sender.send(invalidation);
    }

    /// A receiver of everything published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Invalidation> {
        self.sender.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_round_trip() {
        for inv in [
            Invalidation::Session("ab".into()),
            Invalidation::User("ID1".into()),
            Invalidation::ApiKey("k1".into()),
            Invalidation::Permissions,
            Invalidation::Restrictions,
        ] {
            assert_eq!(Invalidation::decode(&inv.encode()), Some(inv));
        }
        assert_eq!(Invalidation::decode("bogus"), None);
    }
}
