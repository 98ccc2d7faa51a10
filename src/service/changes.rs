//! Telling the caches what a user change made stale (`invalidation`), after the store wrote it.

use super::ApiState;
use crate::invalidation::Invalidation;
use crate::store::UserChange;

/// Tells the caches what a user change made stale, and answers once this instance's caches
/// applied it: a change that revokes sessions (a deletion, a ban, 2FA turned off by an admin)
/// is never followed by a decision here on the old session (the race `675a1c5` closed for
/// logout). Other instances apply it through the relay, within its bound.
pub async fn publish_change(state: &ApiState, change: &UserChange) {
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
    // Acknowledgements are in publication order: waiting for the last one waits for all.
    state
        .invalidation
        .publish_applied(Invalidation::User(change.user.uid.clone()))
        .await;
}
