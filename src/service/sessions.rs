//! Ending sessions, as their owner (resource) or an admin ends them: the caches are told and
//! the user's activity records it.

use serde_json::Value;

use super::ApiState;
use super::activity::RequestMeta;
use crate::domain::{NewActivity, User};
use crate::invalidation::Invalidation;

/// Drops ended sessions from every authz cache: here before returning, elsewhere as the bus
/// relays it.
pub async fn forget(state: &ApiState, ended: Vec<String>) {
    let ended = ended.into_iter().map(Invalidation::Session);
    state.invalidation.publish_all_applied(ended).await;
}

/// The `session` activity of the user whose sessions were ended (by themselves or an admin,
/// whose address and agent it then carries, with `by` naming the admin).
pub async fn record_end(
    state: &ApiState,
    user: &User,
    meta: &RequestMeta,
    action: &str,
    data: Value,
) {
    let activity = NewActivity {
        user_id: user.id,
        target_uid: None,
        category: "user".into(),
        user_ip: meta.ip.to_string(),
        user_ip_country: state.country_of(meta.ip),
        user_agent: meta.user_agent.clone().unwrap_or_default(),
        topic: "session".into(),
        action: action.into(),
        result: "succeed".into(),
        data: Some(data.to_string()),
    };
    if let Err(error) = state.store.insert_activities(&[activity]).await {
        tracing::warn!(%error, action, "session activity not recorded");
    }
}
