//! Cache invalidation: what changed in the database that a cache on some instance may hold.
//!
//! Writers call [`InvalidationBus::publish`] after their transaction commits. Caches of this
//! process see it at once; [`relay`] forwards it to the other instances sharing PostgreSQL with
//! `NOTIFY` and applies theirs (received with `LISTEN`) locally. A missed notification (a
//! dropped LISTEN connection) is covered by the cache TTLs, the documented upper bound.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::store::Store;

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
    /// Every session was deleted (a `blocklogin` restriction was enabled).
    AllSessions,
    /// The signing keys changed (a rotation).
    SigningKeys,
}

/// An invalidation as the caches receive it: local ones carry their place in this process's
/// publication order, so a writer can wait until they are applied
/// ([`InvalidationBus::publish_applied`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamped {
    pub invalidation: Invalidation,
    pub seq: Option<u64>,
}

impl Invalidation {
    /// Compact text form used on the wire between instances (`session:<id>`, `user:<uid>`, ...).
    pub fn encode(&self) -> String {
        match self {
            Self::Session(id) => format!("session:{id}"),
            Self::User(uid) => format!("user:{uid}"),
            Self::ApiKey(kid) => format!("apikey:{kid}"),
            Self::Permissions => "permissions".into(),
            Self::AllSessions => "sessions".into(),
            Self::Restrictions => "restrictions".into(),
            Self::SigningKeys => "keys".into(),
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
            None if text == "sessions" => Some(Self::AllSessions),
            None if text == "keys" => Some(Self::SigningKeys),
            _ => None,
        }
    }
}

/// The in-process bus. Cheap to clone.
#[derive(Clone)]
pub struct InvalidationBus {
    /// Everything to apply here: local changes and those relayed from other instances.
    applied: broadcast::Sender<Stamped>,
    /// Local changes only: what the relay announces to other instances.
    local: broadcast::Sender<Invalidation>,
    /// Distinguishes our own notifications from other instances' on the shared channel.
    instance: Arc<str>,
    /// The number of the last local publication (held while sending, so numbers follow the
    /// channel's order).
    published: Arc<std::sync::Mutex<u64>>,
    /// The number of the last local publication the caches have applied.
    done: Arc<watch::Sender<u64>>,
}

impl Default for InvalidationBus {
    fn default() -> Self {
        Self::new()
    }
}

impl InvalidationBus {
    pub fn new() -> Self {
        let (applied, _) = broadcast::channel(4096);
        let (local, _) = broadcast::channel(4096);
        let instance = hex::encode(rand::random::<[u8; 8]>());
        Self {
            applied,
            local,
            instance: instance.into(),
            published: Arc::default(),
            done: Arc::new(watch::channel(0).0),
        }
    }

    /// Announces a committed change: applied here as soon as the caches read it, relayed to
    /// other instances. Returns its number in this process's publication order.
    pub fn publish(&self, invalidation: Invalidation) -> u64 {
        // No subscriber is fine: nothing is cached then.
        let _ = self.local.send(invalidation.clone());
        let mut published = self
            .published
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *published += 1;
        let _ = self.applied.send(Stamped {
            invalidation,
            seq: Some(*published),
        });
        *published
    }

    /// Publishes and waits (at most two seconds) until this instance's caches have applied the
    /// change, so that the caller's answer is never followed by a decision on the old data.
    pub async fn publish_applied(&self, invalidation: Invalidation) {
        let seq = self.publish(invalidation);
        if self.applied.receiver_count() == 0 {
            return;
        }
        let mut done = self.done.subscribe();
        let applied = done.wait_for(|done| *done >= seq);
        if tokio::time::timeout(Duration::from_secs(2), applied)
            .await
            .is_err()
        {
            tracing::warn!(seq, "cache did not apply an invalidation within 2 s");
        }
    }

    /// Publishes every invalidation of `all`, in order, and waits as [`Self::publish_applied`]
    /// for the last: acknowledgements come in publication order, so that covers them all.
    pub async fn publish_all_applied(&self, all: impl IntoIterator<Item = Invalidation>) {
        let mut last = None;
        for invalidation in all {
            if let Some(previous) = last.replace(invalidation) {
                self.publish(previous);
            }
        }
        if let Some(last) = last {
            self.publish_applied(last).await;
        }
    }

    /// Called by the caches once a local publication (and every one before it) is applied.
    pub fn acknowledge(&self, seq: u64) {
        self.done.send_if_modified(|done| {
            let newer = seq > *done;
            if newer {
                *done = seq;
            }
            newer
        });
    }

    /// The number of the last local publication, for a cache that lost track (lagged).
    pub fn last_published(&self) -> u64 {
        *self
            .published
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A receiver of every invalidation to apply from now on (local and relayed).
    pub fn subscribe(&self) -> broadcast::Receiver<Stamped> {
        self.applied.subscribe()
    }
}

/// Relays invalidations between instances through the store until `shutdown`.
/// With SQLite (one process) there is nothing to relay and this returns at once.
pub async fn relay(store: Arc<dyn Store>, bus: InvalidationBus, shutdown: CancellationToken) {
    if store.backend() == crate::store::Backend::Sqlite {
        return;
    }
    let announce = tokio::spawn(announce(store.clone(), bus.clone(), shutdown.clone()));
    let mut backoff = Duration::from_millis(100);
    while !shutdown.is_cancelled() {
        let (sink, mut incoming) = mpsc::channel::<String>(1024);
        let listener = store.listen_invalidations(sink);
        tokio::pin!(listener);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                result = &mut listener => {
                    if let Err(error) = result {
                        tracing::warn!(%error, "invalidation LISTEN lost; caches fall back to their TTL until it is back");
                    }
                    break;
                }
                Some(payload) = incoming.recv() => {
                    backoff = Duration::from_millis(100);
                    apply_remote(&bus, &payload);
                }
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => {}
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
    let _ = announce.await;
}

/// `<instance> <invalidation>`: ours are ignored, others applied without relaying again.
fn apply_remote(bus: &InvalidationBus, payload: &str) {
    let Some((instance, text)) = payload.split_once(' ') else {
        return;
    };
    if instance == &*bus.instance {
        return;
    }
    if let Some(invalidation) = Invalidation::decode(text) {
        let _ = bus.applied.send(Stamped {
            invalidation,
            seq: None,
        });
    }
}

async fn announce(store: Arc<dyn Store>, bus: InvalidationBus, shutdown: CancellationToken) {
    let mut local = bus.local.subscribe();
    loop {
        let invalidation = tokio::select! {
            () = shutdown.cancelled() => return,
            received = local.recv() => match received {
                Ok(invalidation) => invalidation,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "invalidation relay lagged; other instances rely on TTLs");
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
        };
        let payload = format!("{} {}", bus.instance, invalidation.encode());
        if let Err(error) = store.notify_invalidation(&payload).await {
            tracing::warn!(%error, "could not announce an invalidation; other instances rely on TTLs");
        }
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
            Invalidation::AllSessions,
            Invalidation::SigningKeys,
        ] {
            assert_eq!(Invalidation::decode(&inv.encode()), Some(inv));
        }
        assert_eq!(Invalidation::decode("bogus"), None);
    }

    #[test]
    fn remote_payloads_apply_unless_they_are_our_own() {
        let bus = InvalidationBus::new();
        let mut rx = bus.subscribe();
        apply_remote(&bus, &format!("{} user:ID1", bus.instance));
        apply_remote(&bus, "someone-else user:ID2");
        apply_remote(&bus, "garbage");
        assert_eq!(
            rx.try_recv().ok().map(|s| s.invalidation),
            Some(Invalidation::User("ID2".into()))
        );
        assert!(rx.try_recv().is_err());
    }
}
