//! Barong's response entities, rendered with fields in Barong's order. Shared by
//! every namespace so a user looks the same wherever it is returned.

pub(crate) mod admin;

use serde_json::{Value, json};

use super::ApiState;
use super::error::ApiError;
use crate::crypto::encryption::Encryptor;
use crate::domain::{
    Activity, ApiKey, DataStorage, Document, Label, Phone, Profile, Session, User, describe_device,
    mask_dob, mask_doc_number, mask_ip, mask_last_name, mask_phone,
};
use crate::uploads::Uploads;

/// Barong's entity timestamps: `YYYY-MM-DDTHH:MM:SSZ`.
pub(crate) fn iso8601(time: &chrono::DateTime<chrono::Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `UserWithFullInfo`, with `csrf_token` when the response opens a session.
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
        .map(label)
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
    let mask = state.config.users.api_data_masking_enabled;
    let phones: Vec<Value> = state
        .store
        .list_user_phones(user.id)
        .await?
        .iter()
        .map(|p| phone(p, &state.encryptor, mask))
        .collect();
    body.insert("phones".into(), Value::Array(phones));
    body.insert(
        "profiles".into(),
        Value::Array(user_profiles(state, user.id, masked(state)).await?),
    );
    let storages: Vec<Value> = state
        .store
        .list_data_storages(user.id)
        .await?
        .iter()
        .map(data_storage)
        .collect();
    body.insert("data_storages".into(), Value::Array(storages));
    body.insert("created_at".into(), json!(iso8601(&user.created_at)));
    body.insert("updated_at".into(), json!(iso8601(&user.updated_at)));
    Ok(Value::Object(body))
}

/// `Label`.
pub(crate) fn label(l: &Label) -> Value {
    json!({
        "key": l.key,
        "value": l.value,
        "scope": l.scope,
        "created_at": iso8601(&l.created_at),
        "updated_at": iso8601(&l.updated_at),
    })
}

/// `APIKey`; `secret` only in the answer that creates the key.
pub(crate) fn api_key(key: &ApiKey, secret: Option<&str>) -> Value {
    let mut body = serde_json::Map::new();
    body.insert("kid".into(), json!(key.kid));
    body.insert("algorithm".into(), json!(key.algorithm));
    body.insert("scope".into(), json!(key.scope));
    body.insert("state".into(), json!(key.state));
    if let Some(secret) = secret {
        body.insert("secret".into(), json!(secret));
    }
    body.insert("created_at".into(), json!(iso8601(&key.created_at)));
    body.insert("updated_at".into(), json!(iso8601(&key.updated_at)));
    Value::Object(body)
}

/// `APIKey` as the resource listings show it: Barong's, plus (beyond Barong) the last
/// authenticated use, written behind (see `authz::expiry`). The admin and management views
/// keep Barong's exact shape.
pub(crate) fn api_key_with_use(key: &ApiKey) -> Value {
    let mut body = api_key(key, None);
    let last_used_at = key
        .last_used_at
        .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        .map(|t| iso8601(&t));
    if let Value::Object(map) = &mut body {
        map.insert("last_used_at".into(), json!(last_used_at));
    }
    body
}

/// The resource `Activity`.
pub(crate) fn activity(a: &Activity) -> Value {
    json!({
        "id": a.id,
        "user_ip": a.user_ip,
        "user_ip_country": a.user_ip_country,
        "user_agent": a.user_agent,
        "topic": a.topic,
        "action": a.action,
        "result": a.result,
        "data": a.data,
        "created_at": iso8601(&a.created_at),
    })
}

/// `DataStorage`.
pub(crate) fn data_storage(d: &DataStorage) -> Value {
    json!({
        "title": d.title,
        "data": d.data,
        "created_at": iso8601(&d.created_at),
        "updated_at": iso8601(&d.updated_at),
    })
}

/// Whether user-facing entities mask personal data (`BARONG_API_DATA_MASKING_ENABLED`).
pub(crate) fn masked(state: &ApiState) -> bool {
    state.config.users.api_data_masking_enabled
}

/// `Profile`: `last_name` and `dob` masked when `mask` (user-facing entities with
/// masking on); admin and management pass false.
pub(crate) fn profile(p: &Profile, mask: bool) -> Value {
    let d = &p.data;
    let last_name = d.last_name.as_deref().map(|n| {
        if mask {
            mask_last_name(n)
        } else {
            n.to_owned()
        }
    });
    let dob = d.dob.map(|dob| {
        if mask {
            mask_dob(dob)
        } else {
            dob.format("%Y-%m-%d").to_string()
        }
    });
    json!({
        "first_name": d.first_name,
        "last_name": last_name,
        "dob": dob,
        "address": d.address,
        "postcode": d.postcode,
        "city": d.city,
        "country": d.country,
        "state": p.state.as_str(),
        "metadata": d.metadata,
        "created_at": iso8601(&p.created_at),
        "updated_at": iso8601(&p.updated_at),
    })
}

/// Every profile of a user as `Profile` entities, oldest first (`UserWithProfile`,
/// `UserWithFullInfo`, `UserWithKYC` embed them).
pub(crate) async fn user_profiles(
    state: &ApiState,
    user_id: i64,
    mask: bool,
) -> Result<Vec<Value>, ApiError> {
    Ok(state
        .store
        .list_user_profiles(user_id, &state.encryptor)
        .await?
        .iter()
        .map(|p| profile(p, mask))
        .collect())
}

/// Rails' JSON time: milliseconds and `Z`.
pub(crate) fn json_time(time: &chrono::DateTime<chrono::Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// `Phone`: `number` as digits without `+`, masked for users (`mask`), unmasked for the
/// admin and management variants. A number that cannot be decrypted shows as empty (and is
/// logged without its value).
pub(crate) fn phone(p: &Phone, encryptor: &Encryptor, mask: bool) -> Value {
    let number = encryptor
        .decrypt(&p.number_encrypted)
        .map(|e164| e164.trim_start_matches('+').to_owned())
        .unwrap_or_else(|_| {
            tracing::error!(phone_id = p.id, "phone number unreadable");
            String::new()
        });
    let number = if mask { mask_phone(&number) } else { number };
    json!({
        "country": p.country,
        "number": number,
        "validated_at": p.validated_at.as_ref().map(json_time),
    })
}

/// A document's number in clear (masked when `mask`), `None` when it has none.
fn doc_number(d: &Document, encryptor: &Encryptor, mask: bool) -> Option<String> {
    let number = encryptor
        .decrypt(d.doc_number_encrypted.as_deref()?)
        .unwrap_or_else(|_| {
            tracing::error!(document_id = d.id, "document number unreadable");
            String::new()
        });
    Some(if mask {
        mask_doc_number(&number)
    } else {
        number
    })
}

/// `Document`; `mask` for user-facing answers. Used by the admin and management views
/// (the resource API answers [`document_summary`]).
pub(crate) fn document(
    d: &Document,
    encryptor: &Encryptor,
    uploads: &Uploads,
    mask: bool,
) -> Value {
    json!({
        "upload": {"url": uploads.url_of(&d.upload)},
        "doc_type": d.doc_type,
        "doc_number": doc_number(d, encryptor, mask),
        "doc_expire": d.doc_expire.map(|e| e.format("%Y-%m-%d").to_string()),
        "metadata": d.metadata,
        "created_at": iso8601(&d.created_at),
        "updated_at": iso8601(&d.updated_at),
    })
}

/// The resource `GET documents` view: `upload`, `doc_type`, `doc_number` (masked), `doc_expire`.
pub(crate) fn document_summary(
    d: &Document,
    encryptor: &Encryptor,
    uploads: &Uploads,
    mask: bool,
) -> Value {
    json!({
        "upload": {"url": uploads.url_of(&d.upload)},
        "doc_type": d.doc_type,
        "doc_number": doc_number(d, encryptor, mask),
        "doc_expire": d.doc_expire.map(|e| e.format("%Y-%m-%d").to_string()),
    })
}

/// One session as its owner (`current` known, addresses masked as the settings say) or an
/// admin (`current` absent, unmasked) sees it.
pub(crate) fn session(session: &Session, current: Option<bool>, mask: bool) -> Value {
    let user_ip = if mask {
        mask_ip(&session.user_ip)
    } else {
        session.user_ip.clone()
    };
    let expire_at = chrono::DateTime::from_timestamp(session.expire_at, 0)
        .map(|t| iso8601(&t))
        .unwrap_or_default();
    let mut body = json!({
        "id": session.public_id,
        "user_agent": session.user_agent,
        "device": describe_device(session.user_agent.as_deref()),
        "user_ip": user_ip,
        "user_ip_country": session.user_ip_country,
        "authenticated_with": session.authenticated_with,
        "created_at": iso8601(&session.created_at),
        "last_seen_at": iso8601(&session.updated_at),
        "expire_at": expire_at,
    });
    if let (Some(current), Value::Object(map)) = (current, &mut body) {
        map.insert("current".into(), Value::Bool(current));
    }
    body
}
