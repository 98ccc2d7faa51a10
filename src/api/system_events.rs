//! Barong's `system.*` events raised by the REST API: confirmation and reset
//! tokens, password resets and changes, logins and account deletions. They go to the event
//! outbox right after the change they report (the `model.*` events are written by the store
//! inside the change's transaction).

use serde_json::{Map, Value};

use super::ApiState;
use crate::domain::User;
use crate::domain::event::{self, user_json};

/// Queues `system.<name>` with the record `{user, ...fields}` when the Event API is on. A
/// failure is logged, never the caller's: the change it reports has already happened.
pub(crate) async fn emit(state: &ApiState, name: &str, user: &User, fields: &[(&str, Value)]) {
    if !crate::events::enabled(&state.config) {
        return;
    }
    let referral_uid = match user.referral_id {
        Some(id) => match state.store.find_user_by_id(id).await {
            Ok(found) => found.map(|u| u.uid),
            Err(_) => None,
        },
        None => None,
    };
    let mut record = Map::new();
    record.insert("user".into(), user_json(user, referral_uid.as_deref()));
    for (key, value) in fields {
        record.insert((*key).into(), value.clone());
    }
    let event = event::system(name, Value::Object(record));
    if let Err(error) = state.store.queue_events(&[event]).await {
        tracing::error!(%error, event = name, "system event not queued");
    }
}

/// `{user, domain, ...}`: the record of the user token and password events.
pub(crate) async fn emit_with_domain(
    state: &ApiState,
    name: &str,
    user: &User,
    token: Option<&str>,
) {
    let mut fields = vec![("domain", Value::String(state.config.users.domain.clone()))];
    if let Some(token) = token {
        fields.push(("token", Value::String(token.to_owned())));
    }
    emit(state, name, user, &fields).await;
}
