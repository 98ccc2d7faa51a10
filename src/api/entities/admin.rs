//! The admin variants of Barong's entities: unmasked, with descriptions and comments.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use crate::api::ApiState;
use crate::api::entities::{data_storage, document, iso8601, phone, user_profiles};
use crate::api::error::ApiError;
use crate::domain::{Activity, Comment, Label, Level, Permission, Restriction, User};

/// The plain `User` entity.
pub(crate) async fn user(state: &ApiState, u: &User) -> Result<Value, ApiError> {
    Ok(Value::Object(user_fields(state, u).await?))
}

async fn user_fields(state: &ApiState, u: &User) -> Result<Map<String, Value>, ApiError> {
    let referral_uid = match u.referral_id {
        Some(id) => state.store.find_user_by_id(id).await?.map(|r| r.uid),
        None => None,
    };
    let mut m = Map::new();
    m.insert("email".into(), json!(u.email));
    m.insert("uid".into(), json!(u.uid));
    m.insert("role".into(), json!(u.role));
    m.insert("level".into(), json!(u.level));
    m.insert("otp".into(), json!(u.otp));
    m.insert("state".into(), json!(u.state));
    m.insert("referral_uid".into(), json!(referral_uid));
    m.insert("data".into(), json!(u.data));
    m.insert("username".into(), json!(u.username));
    Ok(m)
}

/// Admin `UserWithProfile`: `email username uid role level otp state data profiles
/// referral_uid created_at updated_at`, profiles unmasked.
pub(crate) async fn user_with_profile(state: &ApiState, u: &User) -> Result<Value, ApiError> {
    user_with_profile_masked(state, u, false).await
}

/// `UserWithProfile` with the profiles masked when `mask` (the generic entity).
pub(crate) async fn user_with_profile_masked(
    state: &ApiState,
    u: &User,
    mask: bool,
) -> Result<Value, ApiError> {
    let f = user_fields(state, u).await?;
    let mut m = Map::new();
    for key in [
        "email", "username", "uid", "role", "level", "otp", "state", "data",
    ] {
        m.insert(key.into(), f.get(key).cloned().unwrap_or(Value::Null));
    }
    m.insert(
        "profiles".into(),
        Value::Array(user_profiles(state, u.id, mask).await?),
    );
    m.insert(
        "referral_uid".into(),
        f.get("referral_uid").cloned().unwrap_or(Value::Null),
    );
    m.insert("created_at".into(), json!(iso8601(&u.created_at)));
    m.insert("updated_at".into(), json!(iso8601(&u.updated_at)));
    Ok(Value::Object(m))
}

/// Admin `UserWithKYC`: labels with descriptions, data storages and comments;
/// profiles, phones and documents unmasked.
pub(crate) async fn user_with_kyc(state: &ApiState, u: &User) -> Result<Value, ApiError> {
    let mut m = user_fields(state, u).await?;
    m.insert(
        "profiles".into(),
        Value::Array(user_profiles(state, u.id, false).await?),
    );
    let labels = state.store.list_user_labels(u.id).await?;
    m.insert(
        "labels".into(),
        Value::Array(labels.iter().map(label_view).collect()),
    );
    m.insert(
        "phones".into(),
        Value::Array(kyc_phones(state, u.id).await?),
    );
    m.insert(
        "documents".into(),
        Value::Array(kyc_documents(state, u.id).await?),
    );
    let storages = state.store.list_data_storages(u.id).await?;
    m.insert(
        "data_storages".into(),
        Value::Array(storages.iter().map(data_storage).collect()),
    );
    let comments = state.store.list_comments(u.id).await?;
    m.insert(
        "comments".into(),
        Value::Array(comments.iter().map(comment).collect()),
    );
    m.insert("created_at".into(), json!(iso8601(&u.created_at)));
    m.insert("updated_at".into(), json!(iso8601(&u.updated_at)));
    Ok(Value::Object(m))
}

/// A user's phones, unmasked (admin and management views).
pub(crate) async fn kyc_phones(state: &ApiState, user_id: i64) -> Result<Vec<Value>, ApiError> {
    Ok(state
        .store
        .list_user_phones(user_id)
        .await?
        .iter()
        .map(|p| phone(p, &state.encryptor, false))
        .collect())
}

/// A user's documents, unmasked (admin and management views).
pub(crate) async fn kyc_documents(state: &ApiState, user_id: i64) -> Result<Vec<Value>, ApiError> {
    Ok(state
        .store
        .list_user_documents(user_id)
        .await?
        .iter()
        .map(|d| document(d, &state.encryptor, &state.uploads, false))
        .collect())
}

/// `AdminLabelView`.
pub(crate) fn label_view(l: &Label) -> Value {
    json!({
        "key": l.key,
        "value": l.value,
        "scope": l.scope,
        "description": l.description,
        "created_at": iso8601(&l.created_at),
        "updated_at": iso8601(&l.updated_at),
    })
}

/// `Comment`.
pub(crate) fn comment(c: &Comment) -> Value {
    json!({
        "id": c.id,
        "author_uid": c.author_uid,
        "title": c.title,
        "data": c.data,
        "created_at": iso8601(&c.created_at),
        "updated_at": iso8601(&c.updated_at),
    })
}

/// `Level`.
pub(crate) fn level(l: &Level) -> Value {
    json!({ "id": l.id, "key": l.key, "value": l.value })
}

/// `Permission`.
pub(crate) fn permission(p: &Permission) -> Value {
    json!({
        "id": p.id,
        "action": p.action,
        "role": p.role,
        "verb": p.verb,
        "path": p.path,
        "topic": p.topic,
        "created_at": iso8601(&p.created_at),
        "updated_at": iso8601(&p.updated_at),
    })
}

/// `Restriction`.
pub(crate) fn restriction(r: &Restriction) -> Value {
    json!({
        "id": r.id,
        "category": r.category,
        "scope": r.scope,
        "value": r.value,
        "code": r.code,
        "state": r.state,
        "created_at": iso8601(&r.created_at),
        "updated_at": iso8601(&r.updated_at),
    })
}

/// Renders users by id once per listing (activities name the same users again and again).
pub(crate) struct UserCache<'a> {
    state: &'a ApiState,
    seen: HashMap<i64, Value>,
}

impl<'a> UserCache<'a> {
    pub(crate) fn new(state: &'a ApiState) -> Self {
        Self {
            state,
            seen: HashMap::new(),
        }
    }

    async fn by_id(&mut self, id: i64) -> Result<Value, ApiError> {
        if let Some(v) = self.seen.get(&id) {
            return Ok(v.clone());
        }
        let rendered = match self.state.store.find_user_by_id(id).await? {
            Some(u) => user(self.state, &u).await?,
            None => Value::Null,
        };
        self.seen.insert(id, rendered.clone());
        Ok(rendered)
    }

    async fn by_uid(&mut self, uid: Option<&str>) -> Result<Value, ApiError> {
        let Some(uid) = uid.filter(|u| !u.is_empty()) else {
            return Ok(Value::Null);
        };
        match self.state.store.find_user_by_uid(uid).await? {
            Some(u) => self.by_id(u.id).await,
            None => Ok(Value::Null),
        }
    }

    /// `ActivityWithUser`.
    pub(crate) async fn activity_with_user(&mut self, a: &Activity) -> Result<Value, ApiError> {
        let user = self.by_id(a.user_id).await?;
        Ok(json!({
            "user_ip": a.user_ip,
            "user_ip_country": a.user_ip_country,
            "user_agent": a.user_agent,
            "topic": a.topic,
            "action": a.action,
            "result": a.result,
            "data": a.data,
            "user": user,
            "created_at": iso8601(&a.created_at),
        }))
    }

    /// `AdminActivity`.
    pub(crate) async fn admin_activity(&mut self, a: &Activity) -> Result<Value, ApiError> {
        let admin = self.by_id(a.user_id).await?;
        let target = self.by_uid(a.target_uid.as_deref()).await?;
        Ok(json!({
            "user_ip": a.user_ip,
            "user_ip_country": a.user_ip_country,
            "user_agent": a.user_agent,
            "topic": a.topic,
            "action": a.action,
            "result": a.result,
            "data": a.data,
            "admin": admin,
            "target": target,
            "created_at": iso8601(&a.created_at),
        }))
    }
}
