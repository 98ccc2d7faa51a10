//! Activity rows of the user category, written by every namespace that records what a user did.

use std::net::IpAddr;

use serde_json::json;

use super::ApiState;
use crate::domain::NewActivity;

/// What identity handlers need to know about the caller: Barong's `remote_ip`, the raw
/// `User-Agent` and the session cookie value, if any.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    pub ip: IpAddr,
    pub user_agent: Option<String>,
    pub cookie: Option<String>,
}

/// Writes a user-category activity (Barong drops invalid rows silently; so do we).
pub async fn record_activity(
    state: &ApiState,
    user_id: i64,
    meta: &RequestMeta,
    topic: &str,
    action: &str,
    result: &str,
    reason: Option<&str>,
) {
    let activity = NewActivity {
        user_id,
        target_uid: None,
        category: "user".into(),
        user_ip: meta.ip.to_string(),
        user_ip_country: None,
        user_agent: meta.user_agent.clone().unwrap_or_default(),
        topic: topic.into(),
        action: action.into(),
        result: result.into(),
        data: reason.map(|r| json!({ "reason": r }).to_string()),
    };
    if let Err(error) = state.store.insert_activities(&[activity]).await {
        tracing::warn!(%error, topic, action, "activity not recorded");
    }
}
