//! Barong's Event API payloads: pure functions from domain rows to the JSON
//! that goes into the event outbox. Signing and delivery live in `crate::events`.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use super::{Label, User};

/// An event to write to the outbox, in the transaction of the change it describes.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// The full event name, e.g. `model.user.created`.
    pub name: String,
    /// The payload without `name` (added at signing, as Barong does).
    pub payload: Value,
}

impl NewEvent {
    /// Barong's exchange: `barong.events.<first segment of the name>`.
    pub fn exchange(&self) -> String {
        exchange_and_key(&self.name).0
    }

    /// Barong's routing key: the name without its first segment.
    pub fn routing_key(&self) -> String {
        exchange_and_key(&self.name).1
    }
}

/// An event claimed from the outbox for delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEvent {
    pub id: i64,
    pub exchange: String,
    pub routing_key: String,
    /// The unsigned payload JSON, `name` included; encrypted with the encryption key when
    /// `sealed` (personal data).
    pub payload: String,
    pub sealed: bool,
    /// Delivery attempts so far, this one included.
    pub attempts: i32,
}

/// `system.user.password.reset.token` → (`barong.events.system`, `user.password.reset.token`).
pub fn exchange_and_key(name: &str) -> (String, String) {
    let (category, key) = name.split_once('.').unwrap_or((name, ""));
    (format!("barong.events.{category}"), key.to_owned())
}

/// Barong's ISO 8601 timestamps in events: seconds, `Z`.
fn iso(time: &DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `user.as_json_for_event_api`; `referral_uid` is resolved by the caller.
pub fn user_json(user: &User, referral_uid: Option<&str>) -> Value {
    json!({
        "uid": user.uid,
        "username": user.username,
        "email": user.email,
        "role": user.role,
        "level": user.level,
        "otp": user.otp,
        "state": user.state,
        "referral_uid": referral_uid,
        "created_at": iso(&user.created_at),
        "updated_at": iso(&user.updated_at),
    })
}

/// A label record `{id, key, value, description, user}` (the nested user keeps its nulls).
pub fn label_json(id: i64, label: &Label, user: Value) -> Value {
    json!({
        "id": id,
        "key": label.key,
        "value": label.value,
        "description": label.description,
        "user": user,
    })
}

/// A data storage record `{user, title, data, created_at, updated_at}`.
pub fn data_storage_json(storage: &super::DataStorage, user: Value) -> Value {
    json!({
        "user": user,
        "title": storage.title,
        "data": storage.data,
        "created_at": iso(&storage.created_at),
        "updated_at": iso(&storage.updated_at),
    })
}

/// A profile record `{user, first_name, last_name, dob, address, postcode, city, country,
/// metadata, created_at, updated_at}`, personal fields in clear: callers seal the event.
pub fn profile_json(profile: &super::Profile, user: Value) -> Value {
    let d = &profile.data;
    json!({
        "user": user,
        "first_name": d.first_name,
        "last_name": d.last_name,
        "dob": d.dob.map(|dob| dob.format("%Y-%m-%d").to_string()),
        "address": d.address,
        "postcode": d.postcode,
        "city": d.city,
        "country": d.country,
        "metadata": d.metadata,
        "created_at": iso(&profile.created_at),
        "updated_at": iso(&profile.updated_at),
    })
}

/// A document record `{user, upload, doc_type, doc_number, doc_expire, metadata, created_at,
/// updated_at}`: `upload` is the file's URL percent-encoded as Barong's `URI.encode`, the number
/// in clear (callers seal the event).
pub fn document_json(
    document: &super::Document,
    upload_url: &str,
    doc_number: Option<&str>,
    user: Value,
) -> Value {
    json!({
        "user": user,
        "upload": uri_encode(upload_url),
        "doc_type": document.doc_type,
        "doc_number": doc_number,
        "doc_expire": document.doc_expire.map(|e| e.format("%Y-%m-%d").to_string()),
        "metadata": document.metadata,
        "created_at": iso(&document.created_at),
        "updated_at": iso(&document.updated_at),
    })
}

/// Ruby's `URI.encode` (`URI::DEFAULT_PARSER.escape`): every byte outside the URI's reserved and
/// unreserved characters is percent-encoded; `%` itself is kept.
fn uri_encode(text: &str) -> String {
    use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
    const KEPT: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'!')
        .remove(b'~')
        .remove(b'*')
        .remove(b'\'')
        .remove(b'(')
        .remove(b')')
        .remove(b';')
        .remove(b'/')
        .remove(b'?')
        .remove(b':')
        .remove(b'@')
        .remove(b'&')
        .remove(b'=')
        .remove(b'+')
        .remove(b'$')
        .remove(b',')
        .remove(b'[')
        .remove(b']')
        .remove(b'#')
        .remove(b'%');
    utf8_percent_encode(text, KEPT).to_string()
}

/// `model.profile.created` (no `before`) or `model.profile.updated` (`None` when nothing
/// changed), both profiles nested with the same `user`.
pub fn profile_changed(
    before: Option<&super::Profile>,
    after: &super::Profile,
    user: Value,
) -> Option<NewEvent> {
    let new = profile_json(after, user.clone());
    match before {
        None => Some(model_created("profile", new)),
        Some(old) => model_updated("profile", &profile_json(old, user), new),
    }
}

/// Model events drop null values from the top level of `record`.
fn drop_nulls(record: Value) -> Value {
    match record {
        Value::Object(map) => {
            Value::Object(map.into_iter().filter(|(_, v)| !v.is_null()).collect())
        }
        other => other,
    }
}

/// `model.<model>.created`: `{record}`.
pub fn model_created(model: &str, record: Value) -> NewEvent {
    NewEvent {
        name: format!("model.{model}.created"),
        payload: json!({ "record": drop_nulls(record) }),
    }
}

/// `model.<model>.updated`: `{record, changes}` where `changes` holds the before values of the
/// attributes that changed (`updated_at` and unchanged nested objects excluded); `None` when
/// nothing changed, as Barong emits nothing then.
pub fn model_updated(model: &str, before: &Value, after: Value) -> Option<NewEvent> {
    let (Value::Object(old), Value::Object(new)) = (before, &after) else {
        return None;
    };
    let changes: Map<String, Value> = old
        .iter()
        .filter(|(k, v)| k.as_str() != "updated_at" && new.get(k.as_str()) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if changes.is_empty() {
        return None;
    }
    Some(NewEvent {
        name: format!("model.{model}.updated"),
        payload: json!({ "record": drop_nulls(after), "changes": Value::Object(changes) }),
    })
}

/// `model.user.updated` between two states of a user. The event's user object does not carry
/// `data`, but a change of it is a change of the user for Barong (`previous_changes`): it is
/// named in `changes` with its old value, and alone it is enough to emit the event.
pub fn user_updated(
    before: &Value,
    after: Value,
    (old_data, new_data): (Option<&str>, Option<&str>),
) -> Option<NewEvent> {
    let mut event = model_updated("user", before, after.clone());
    if old_data != new_data {
        let event = event.get_or_insert_with(|| NewEvent {
            name: "model.user.updated".into(),
            payload: json!({ "record": drop_nulls(after), "changes": {} }),
        });
        event.payload["changes"]["data"] = json!(old_data);
    }
    event
}

/// A system event: its record is sent as given (nothing dropped).
pub fn system(name: &str, record: Value) -> NewEvent {
    NewEvent {
        name: format!("system.{name}"),
        payload: json!({ "record": record }),
    }
}

/// The payload stored in the outbox: the event's payload plus its `name`.
pub fn outbox_payload(event: &NewEvent) -> String {
    let mut payload = match &event.payload {
        Value::Object(map) => map.clone(),
        other => {
            let mut map = Map::new();
            map.insert("record".into(), other.clone());
            map
        }
    };
    payload.insert("name".into(), Value::String(event.name.clone()));
    Value::Object(payload).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_urls_are_encoded_as_ruby_uri_encode() {
        assert_eq!(
            uri_encode("https://cdn.example/documents/ID1/a b é.png?x=1&y=%20"),
            "https://cdn.example/documents/ID1/a%20b%20%C3%A9.png?x=1&y=%20"
        );
    }

    #[test]
    fn exchange_is_the_first_segment() {
        assert_eq!(
            exchange_and_key("system.user.password.reset.token"),
            (
                "barong.events.system".to_owned(),
                "user.password.reset.token".to_owned()
            )
        );
        assert_eq!(exchange_and_key("model.user.created").1, "user.created");
    }

    #[test]
    fn updated_lists_before_values_and_skips_no_change() {
        let before = json!({"state": "pending", "level": 0, "updated_at": "a", "username": null});
        let after = json!({"state": "active", "level": 0, "updated_at": "b", "username": null});
        let event = model_updated("user", &before, after.clone()).expect("changed");
        assert_eq!(event.payload["changes"], json!({"state": "pending"}));
        assert!(event.payload["record"].get("username").is_none());
        assert!(model_updated("user", &after, after.clone()).is_none());
    }
}
