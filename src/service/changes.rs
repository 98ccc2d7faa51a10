//! Telling the caches what a user change made stale (`invalidation`), after the store wrote it.

use super::ApiState;
use crate::invalidation::Invalidation;
use crate::store::UserChange;

/// Tells the caches what a user change made stale.
pub fn publish_change(state: &ApiState, change: &UserChange) {
    for id in &change.sessions {
        state
            .invalidation
            .publish(Invalidation::Session(id.clone()));
    }
    for kid in &change.kids {
        state
            .invalidation
            .publish(Invalidation::ApiKey(kid.clone()));
    }
    state
        .invalidation
        .publish(Invalidation::User(change.user.uid.clone()));
}
