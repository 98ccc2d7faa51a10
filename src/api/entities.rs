//! Barong's response entities (reference §7), rendered with fields in Barong's order. Shared by
//! every namespace so a user looks the same wherever it is returned.

use serde_json::{Value, json};

use super::ApiState;
use super::error::ApiError;
use crate::domain::User;

/// Barong's entity timestamps: `YYYY-MM-DDTHH:MM:SSZ`.
pub(crate) fn iso8601(time: &chrono::DateTime<chrono::Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `UserWithFullInfo` (§7.3), with `csrf_token` when the response opens a session.
pub(crate) async fn user_full_info(
    state: &ApiState,
    user: &User,
    csrf_token: Option<&str>,
) -> Result<Value, ApiError> {
    let referral_uid = match user.referral_id {
        Some(id) => state.store.find_user_by_id(id).await?.map(|u| u.uid),
        None => None,
    };
    let labels: Vec<Value> = state
        .store
        .list_user_labels(user.id)
        .await?
        .iter()
        .map(|l| {
            json!({
                "key": l.key,
                "value": l.value,
                "scope": l.scope,
                "created_at": iso8601(&l.created_at),
                "updated_at": iso8601(&l.updated_at),
            })
        })
        .collect();
    let mut body = serde_json::Map::new();
    body.insert("email".into(), json!(user.email));
    body.insert("uid".into(), json!(user.uid));
    body.insert("role".into(), json!(user.role));
    body.insert("level".into(), json!(user.level));
    body.insert("otp".into(), json!(user.otp));
    body.insert("state".into(), json!(user.state));
    body.insert("referral_uid".into(), json!(referral_uid));
    body.insert("data".into(), json!(user.data));
    if let Some(csrf) = csrf_token {
        body.insert("csrf_token".into(), json!(csrf));
    }
    body.insert("username".into(), json!(user.username));
    body.insert("labels".into(), Value::Array(labels));
    body.insert("phones".into(), json!([]));
    body.insert("profiles".into(), json!([]));
    body.insert("data_storages".into(), json!([]));
    body.insert("created_at".into(), json!(iso8601(&user.created_at)));
    body.insert("updated_at".into(), json!(iso8601(&user.updated_at)));
    Ok(Value::Object(body))
}
