//! The event outbox's writers (Barong's Event API): events are written inside the transaction
//! of the change they describe, when the API is on (`domain` is set), and claimed by
//! `crate::events` through [`super::OutboxStore`].

#![allow(
    dead_code,
    reason = "helpers of the aggregates still migrating to the shared layer"
)]

use serde_json::{Value, json};

use super::rows::label_by_key;
use super::rows::user_by_id;
use super::sql::{Exec, args};
use super::{DocumentEvents, EventDomain, StoreResult};
use crate::crypto::encryption::Encryptor;
use crate::domain::event::{self, NewEvent};
use crate::domain::{DataStorage, Document, LabelScope, Profile, User};

/// Writes `event` when the Event API is on; nothing otherwise.
pub(super) async fn record(
    c: &mut impl Exec,
    domain: &EventDomain,
    event: &NewEvent,
) -> StoreResult<()> {
    if domain.is_none() {
        return Ok(());
    }
    c.execute(
        "INSERT INTO event_outbox (exchange, routing_key, payload, next_attempt_at, created_at)
         VALUES ($1, $2, $3, now(), now())",
        args![
            event.exchange(),
            event.routing_key(),
            event::outbox_payload(event)
        ],
    )
    .await?;
    Ok(())
}

/// Writes `event` sealed: its payload encrypted with `enc`, so personal data never sits in the
/// outbox in clear; the publisher opens it just before signing.
async fn record_sealed(
    c: &mut impl Exec,
    domain: &EventDomain,
    event: &NewEvent,
    enc: &Encryptor,
) -> StoreResult<()> {
    if domain.is_none() {
        return Ok(());
    }
    c.execute(
        "INSERT INTO event_outbox (exchange, routing_key, payload, sealed, next_attempt_at,
             created_at)
         VALUES ($1, $2, $3, TRUE, now(), now())",
        args![
            event.exchange(),
            event.routing_key(),
            enc.encrypt(&event::outbox_payload(event))
        ],
    )
    .await?;
    Ok(())
}

/// The event view of a user, its referral uid resolved.
async fn user_json(c: &mut impl Exec, user: &User) -> StoreResult<Value> {
    let referral: Option<String> = match user.referral_id {
        Some(id) => match c
            .query_opt("SELECT uid FROM users WHERE id = $1", args![id])
            .await?
        {
            Some(row) => Some(row.at(0)?),
            None => None,
        },
        None => None,
    };
    Ok(event::user_json(user, referral.as_deref()))
}

/// `model.data_storage.created`, the user as it is after the change.
pub(super) async fn data_storage_created(
    c: &mut impl Exec,
    domain: &EventDomain,
    storage: &DataStorage,
    user: &User,
) -> StoreResult<()> {
    if domain.is_none() {
        return Ok(());
    }
    let record_json = event::data_storage_json(storage, user_json(c, user).await?);
    record(
        c,
        domain,
        &event::model_created("data_storage", record_json),
    )
    .await
}

/// `model.user.created` for a freshly inserted user.
pub(super) async fn user_created(
    c: &mut impl Exec,
    domain: &EventDomain,
    user: &User,
) -> StoreResult<()> {
    if domain.is_none() {
        return Ok(());
    }
    let record_json = user_json(c, user).await?;
    record(c, domain, &event::model_created("user", record_json)).await
}

/// `model.user.updated` when anything but `updated_at` changed between `before` and `after`
/// (`data` included).
pub(super) async fn user_updated(
    c: &mut impl Exec,
    domain: &EventDomain,
    before: &User,
    after: &User,
) -> StoreResult<()> {
    if domain.is_none() {
        return Ok(());
    }
    let old = user_json(c, before).await?;
    let new = user_json(c, after).await?;
    let data = (before.data.as_deref(), after.data.as_deref());
    if let Some(e) = event::user_updated(&old, new, data) {
        record(c, domain, &e).await?;
    }
    Ok(())
}

/// `model.profile.created` (no `before`) or `model.profile.updated`, sealed; the nested user is
/// the one the transaction leaves (labels, state and level already recomputed).
pub(super) async fn profile_changed(
    c: &mut impl Exec,
    domain: &EventDomain,
    before: Option<&Profile>,
    after: &Profile,
    enc: &Encryptor,
) -> StoreResult<()> {
    if domain.is_none() {
        return Ok(());
    }
    let user = user_by_id(c, after.user_id).await?;
    let user = user_json(c, &user).await?;
    if let Some(e) = event::profile_changed(before, after, user) {
        record_sealed(c, domain, &e, enc).await?;
    }
    Ok(())
}

/// `model.document.created` for each inserted document, sealed (the number is in clear inside).
pub(super) async fn documents_created(
    c: &mut impl Exec,
    domain: &EventDomain,
    documents: &[Document],
    user_id: i64,
    sealer: &DocumentEvents,
) -> StoreResult<()> {
    if domain.is_none() {
        return Ok(());
    }
    let user = user_by_id(c, user_id).await?;
    let user = user_json(c, &user).await?;
    for (i, d) in documents.iter().enumerate() {
        let e = event::model_created("document", sealer.record(i, d, user.clone()));
        record_sealed(c, domain, &e, &sealer.enc).await?;
    }
    Ok(())
}

/// The label record of (user, key, scope) as it is now, with its id and the current user.
async fn label_record(
    c: &mut impl Exec,
    user_id: i64,
    key: &str,
    scope: &str,
) -> StoreResult<Option<Value>> {
    let Some((id, label)) = label_by_key(c, user_id, key, scope).await? else {
        return Ok(None);
    };
    let user = user_by_id(c, user_id).await?;
    let user = user_json(c, &user).await?;
    Ok(Some(event::label_json(id, &label, user)))
}

/// The label before a change, to compute `changes` afterwards (`None` when the API is off).
pub(super) async fn label_before(
    c: &mut impl Exec,
    domain: &EventDomain,
    user_id: i64,
    key: &str,
    scope: &str,
) -> StoreResult<Option<Value>> {
    if domain.is_none() {
        return Ok(None);
    }
    label_record(c, user_id, key, scope).await
}

/// `model.label.created` (no `before`) or `model.label.updated`, plus Barong's
/// `system.document.verified|rejected` for a private `document` label set to those values.
pub(super) async fn label_changed(
    c: &mut impl Exec,
    domain: &EventDomain,
    before: Option<Value>,
    user_id: i64,
    key: &str,
    scope: &str,
) -> StoreResult<()> {
    if domain.is_none() {
        return Ok(());
    }
    let Some(after) = label_record(c, user_id, key, scope).await? else {
        return Ok(());
    };
    let changed = match &before {
        None => Some(event::model_created("label", after.clone())),
        Some(old) => {
            // The nested user is the current one on both sides: only label attributes count.
            let mut old = old.clone();
            old["user"] = after["user"].clone();
            event::model_updated("label", &old, after.clone())
        }
    };
    if let Some(e) = changed {
        record(c, domain, &e).await?;
        let value = after["value"].as_str().unwrap_or_default().to_owned();
        if key == "document"
            && LabelScope::Private.is(scope)
            && matches!(value.as_str(), "verified" | "rejected")
        {
            let system = event::system(&format!("document.{value}"), after);
            record(c, domain, &system).await?;
        }
    }
    Ok(())
}

/// `system.user.email.confirmed`: `{user, domain}`.
pub(super) async fn email_confirmed(
    c: &mut impl Exec,
    domain: &EventDomain,
    user: &User,
) -> StoreResult<()> {
    let Some(d) = domain else {
        return Ok(());
    };
    let record_json = json!({ "user": user_json(c, user).await?, "domain": d.as_str() });
    let e = event::system("user.email.confirmed", record_json);
    record(c, domain, &e).await
}
