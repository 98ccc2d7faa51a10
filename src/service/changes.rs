//! Telling the caches what a user change made stale (`invalidation`), after the store wrote it.

use super::ApiState;
use crate::invalidation::Invalidation;
use crate::store::UserChange;

/// Tells the caches what a user change made stale, and answers once this instance's caches
/// applied it: a change that revokes sessions (a deletion, a ban, 2FA turned off by an admin)
/// is never followed by a decision here on the old session (the race `675a1c5` closed for
/// logout). Other instances apply it through the relay, within its bound.
pub async fn publish_change(state: &ApiState, change: &UserChange) {
    let sessions = change.sessions.iter().cloned().map(Invalidation::Session);
    let kids = change.kids.iter().cloned().map(Invalidation::ApiKey);
    let user = Invalidation::User(change.user.uid.clone());
    let all = sessions.chain(kids).chain(std::iter::once(user));
    state.invalidation.publish_all_applied(all).await;
}
