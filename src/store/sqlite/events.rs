//! The event outbox on SQLite (Barong's Event API): events are written inside the
//! transaction of the change they describe, then claimed and marked by `crate::events`.

use deadpool_sqlite::rusqlite::{self, OptionalExtension, params};
use serde_json::{Value, json};

use super::{label_by_key, now_text, user_by_id};
use crate::crypto::encryption::Encryptor;
use crate::domain::event::{self, NewEvent};
use crate::domain::{Document, Profile, User};
use crate::store::{DocumentEvents, EventDomain};

/// Writes `event` when the Event API is on (`domain` is set); nothing otherwise.
pub(super) fn record(
    tx: &rusqlite::Transaction<'_>,
    domain: &EventDomain,
    event: &NewEvent,
) -> rusqlite::Result<()> {
    if domain.is_none() {
        return Ok(());
    }
    let now = now_text();
    tx.execute(
        "INSERT INTO event_outbox (exchange, routing_key, payload, next_attempt_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?4)",
        params![
            event.exchange(),
            event.routing_key(),
            event::outbox_payload(event),
            now
        ],
    )?;
    Ok(())
}

/// Writes `event` sealed: its payload encrypted with `enc`, so personal data never sits in the
/// outbox in clear; the publisher opens it just before signing.
pub(super) fn record_sealed(
    tx: &rusqlite::Transaction<'_>,
    domain: &EventDomain,
    event: &NewEvent,
    enc: &Encryptor,
) -> rusqlite::Result<()> {
    if domain.is_none() {
        return Ok(());
    }
    let now = now_text();
    tx.execute(
        "INSERT INTO event_outbox (exchange, routing_key, payload, sealed, next_attempt_at,
             created_at)
         VALUES (?1, ?2, ?3, 1, ?4, ?4)",
        params![
            event.exchange(),
            event.routing_key(),
            enc.encrypt(&event::outbox_payload(event)),
            now
        ],
    )?;
    Ok(())
}

/// `model.profile.created` (no `before`) or `model.profile.updated`, sealed; the nested user is
/// the one the transaction leaves (labels, state and level already recomputed).
pub(super) fn profile_changed(
    tx: &rusqlite::Transaction<'_>,
    domain: &EventDomain,
    before: Option<&Profile>,
    after: &Profile,
    enc: &Encryptor,
) -> rusqlite::Result<()> {
    if domain.is_none() {
        return Ok(());
    }
    let user = user_json(tx, &user_by_id(tx, after.user_id)?)?;
    if let Some(e) = event::profile_changed(before, after, user) {
        record_sealed(tx, domain, &e, enc)?;
    }
    Ok(())
}

/// `model.document.created` for each inserted document, sealed (the number is in clear inside).
pub(super) fn documents_created(
    tx: &rusqlite::Transaction<'_>,
    domain: &EventDomain,
    documents: &[Document],
    user_id: i64,
    sealer: &DocumentEvents,
) -> rusqlite::Result<()> {
    if domain.is_none() {
        return Ok(());
    }
    let user = user_json(tx, &user_by_id(tx, user_id)?)?;
    for (i, d) in documents.iter().enumerate() {
        let e = event::model_created("document", sealer.record(i, d, user.clone()));
        record_sealed(tx, domain, &e, &sealer.enc)?;
    }
    Ok(())
}

/// The event view of a user, its referral uid resolved.
pub(super) fn user_json(tx: &rusqlite::Transaction<'_>, user: &User) -> rusqlite::Result<Value> {
    let referral: Option<String> = match user.referral_id {
        Some(id) => tx
            .query_row("SELECT uid FROM users WHERE id = ?1", [id], |r| r.get(0))
            .optional()?,
        None => None,
    };
    Ok(event::user_json(user, referral.as_deref()))
}

/// `model.data_storage.created`, the user as it is after the change.
pub(super) fn data_storage_created(
    tx: &rusqlite::Transaction<'_>,
    domain: &EventDomain,
    storage: &crate::domain::DataStorage,
    user: &User,
) -> rusqlite::Result<()> {
    if domain.is_none() {
        return Ok(());
    }
    let record_json = event::data_storage_json(storage, user_json(tx, user)?);
    record(
        tx,
        domain,
        &event::model_created("data_storage", record_json),
    )
}

/// `model.user.created` for a freshly inserted user.
pub(super) fn user_created(
    tx: &rusqlite::Transaction<'_>,
    domain: &EventDomain,
    user: &User,
) -> rusqlite::Result<()> {
    if domain.is_none() {
        return Ok(());
    }
    record(
        tx,
        domain,
        &event::model_created("user", user_json(tx, user)?),
    )
}

/// `model.user.updated` when anything but `updated_at` changed between `before` and `after`
/// (`data` included).
pub(super) fn user_updated(
    tx: &rusqlite::Transaction<'_>,
    domain: &EventDomain,
    before: &User,
    after: &User,
) -> rusqlite::Result<()> {
    if domain.is_none() {
        return Ok(());
    }
    let old = user_json(tx, before)?;
    let data = (before.data.as_deref(), after.data.as_deref());
    if let Some(e) = event::user_updated(&old, user_json(tx, after)?, data) {
        record(tx, domain, &e)?;
    }
    Ok(())
}

/// The label record of (user, key, scope) as it is now, with its id and the current user.
fn label_record(
    tx: &rusqlite::Transaction<'_>,
    user_id: i64,
    key: &str,
    scope: &str,
) -> rusqlite::Result<Option<Value>> {
    let Some(label) = label_by_key(tx, user_id, key, scope)? else {
        return Ok(None);
    };
    let id: i64 = tx.query_row(
        "SELECT id FROM labels WHERE user_id = ?1 AND key = ?2 AND scope = ?3",
        params![user_id, key, scope],
        |r| r.get(0),
    )?;
    let user = user_json(tx, &user_by_id(tx, user_id)?)?;
    Ok(Some(event::label_json(id, &label, user)))
}

/// The label before a change, to compute `changes` afterwards (`None` when the API is off).
pub(super) fn label_before(
    tx: &rusqlite::Transaction<'_>,
    domain: &EventDomain,
    user_id: i64,
    key: &str,
    scope: &str,
) -> rusqlite::Result<Option<Value>> {
    if domain.is_none() {
        return Ok(None);
    }
    label_record(tx, user_id, key, scope)
}

/// `model.label.created` (no `before`) or `model.label.updated`, plus Barong's
/// `system.document.verified|rejected` for a private `document` label set to those values.
pub(super) fn label_changed(
    tx: &rusqlite::Transaction<'_>,
    domain: &EventDomain,
    before: Option<Value>,
    user_id: i64,
    key: &str,
    scope: &str,
) -> rusqlite::Result<()> {
    if domain.is_none() {
        return Ok(());
    }
    let Some(after) = label_record(tx, user_id, key, scope)? else {
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
        record(tx, domain, &e)?;
        let value = after["value"].as_str().unwrap_or_default();
        if key == "document" && scope == "private" && matches!(value, "verified" | "rejected") {
            record(
                tx,
                domain,
                &event::system(&format!("document.{value}"), after),
            )?;
        }
    }
    Ok(())
}

/// `system.user.email.confirmed`: `{user, domain}`.
pub(super) fn email_confirmed(
    tx: &rusqlite::Transaction<'_>,
    domain: &EventDomain,
    user: &User,
) -> rusqlite::Result<()> {
    let Some(d) = domain else {
        return Ok(());
    };
    let record_json = json!({ "user": user_json(tx, user)?, "domain": d.as_str() });
    record(
        tx,
        domain,
        &event::system("user.email.confirmed", record_json),
    )
}
