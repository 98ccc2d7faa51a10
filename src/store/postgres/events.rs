//! The event outbox on PostgreSQL (Barong's Event API): events are written inside
//! the transaction of the change they describe, then claimed and marked by `crate::events`.

use serde_json::{Value, json};

use super::{Tx, label_from_row, user_by_id};
use crate::crypto::encryption::Encryptor;
use crate::domain::event::{self, NewEvent};
use crate::domain::{Document, Profile, User};
use crate::store::{DocumentEvents, EventDomain};

type PgResult<T> = Result<T, tokio_postgres::Error>;

/// Writes `event` when the Event API is on (`domain` is set); nothing otherwise.
pub(super) async fn record(tx: &Tx<'_>, domain: &EventDomain, event: &NewEvent) -> PgResult<()> {
    if domain.is_none() {
        return Ok(());
    }
    tx.execute(
        "INSERT INTO event_outbox (exchange, routing_key, payload) VALUES ($1, $2, $3)",
        &[
            &event.exchange(),
            &event.routing_key(),
            &event::outbox_payload(event),
        ],
    )
    .await?;
    Ok(())
}

/// Writes `event` sealed: its payload encrypted with `enc`, so personal data never sits in the
/// outbox in clear; the publisher opens it just before signing.
pub(super) async fn record_sealed(
    tx: &Tx<'_>,
    domain: &EventDomain,
    event: &NewEvent,
    enc: &Encryptor,
) -> PgResult<()> {
    if domain.is_none() {
        return Ok(());
    }
    tx.execute(
        "INSERT INTO event_outbox (exchange, routing_key, payload, sealed)
         VALUES ($1, $2, $3, true)",
        &[
            &event.exchange(),
            &event.routing_key(),
            &enc.encrypt(&event::outbox_payload(event)),
        ],
    )
    .await?;
    Ok(())
}

/// The event view of a user, its referral uid resolved.
pub(super) async fn user_json(tx: &Tx<'_>, user: &User) -> PgResult<Value> {
    let referral: Option<String> = match user.referral_id {
        Some(id) => tx
            .query_opt("SELECT uid FROM users WHERE id = $1", &[&id])
            .await?
            .map(|r| r.get(0)),
        None => None,
    };
    Ok(event::user_json(user, referral.as_deref()))
}

/// `model.data_storage.created`, the user as it is after the change.
pub(super) async fn data_storage_created(
    tx: &Tx<'_>,
    domain: &EventDomain,
    storage: &crate::domain::DataStorage,
    user: &User,
) -> PgResult<()> {
    if domain.is_none() {
        return Ok(());
    }
    let record_json = event::data_storage_json(storage, user_json(tx, user).await?);
    record(
        tx,
        domain,
        &event::model_created("data_storage", record_json),
    )
    .await
}

/// `model.user.created` for a freshly inserted user.
pub(super) async fn user_created(tx: &Tx<'_>, domain: &EventDomain, user: &User) -> PgResult<()> {
    if domain.is_none() {
        return Ok(());
    }
    let record_json = user_json(tx, user).await?;
    record(tx, domain, &event::model_created("user", record_json)).await
}

/// `model.user.updated` when anything but `updated_at` changed between `before` and `after`
/// (`data` included).
pub(super) async fn user_updated(
    tx: &Tx<'_>,
    domain: &EventDomain,
    before: &User,
    after: &User,
) -> PgResult<()> {
    if domain.is_none() {
        return Ok(());
    }
    let old = user_json(tx, before).await?;
    let new = user_json(tx, after).await?;
    let data = (before.data.as_deref(), after.data.as_deref());
    if let Some(e) = event::user_updated(&old, new, data) {
        record(tx, domain, &e).await?;
    }
    Ok(())
}

/// `model.profile.created` (no `before`) or `model.profile.updated`, sealed; the nested user is
/// the one the transaction leaves (labels, state and level already recomputed).
pub(super) async fn profile_changed(
    tx: &Tx<'_>,
    domain: &EventDomain,
    before: Option<&Profile>,
    after: &Profile,
    enc: &Encryptor,
) -> PgResult<()> {
    if domain.is_none() {
        return Ok(());
    }
    let user = user_json(tx, &user_by_id(tx, after.user_id).await?).await?;
    if let Some(e) = event::profile_changed(before, after, user) {
        record_sealed(tx, domain, &e, enc).await?;
    }
    Ok(())
}

/// `model.document.created` for each inserted document, sealed (the number is in clear inside).
pub(super) async fn documents_created(
    tx: &Tx<'_>,
    domain: &EventDomain,
    documents: &[Document],
    user_id: i64,
    sealer: &DocumentEvents,
) -> PgResult<()> {
    if domain.is_none() {
        return Ok(());
    }
    let user = user_json(tx, &user_by_id(tx, user_id).await?).await?;
    for (i, d) in documents.iter().enumerate() {
        let e = event::model_created("document", sealer.record(i, d, user.clone()));
        record_sealed(tx, domain, &e, &sealer.enc).await?;
    }
    Ok(())
}

/// The label record of (user, key, scope) as it is now, with its id and the current user.
async fn label_record(
    tx: &Tx<'_>,
    user_id: i64,
    key: &str,
    scope: &str,
) -> PgResult<Option<Value>> {
    let Some(row) = tx
        .query_opt(
            "SELECT * FROM labels WHERE user_id = $1 AND key = $2 AND scope = $3",
            &[&user_id, &key, &scope],
        )
        .await?
    else {
        return Ok(None);
    };
    let id: i64 = row.get("id");
    let label = label_from_row(&row);
    let user = user_json(tx, &user_by_id(tx, user_id).await?).await?;
    Ok(Some(event::label_json(id, &label, user)))
}

/// The label before a change, to compute `changes` afterwards (`None` when the API is off).
pub(super) async fn label_before(
    tx: &Tx<'_>,
    domain: &EventDomain,
    user_id: i64,
    key: &str,
    scope: &str,
) -> PgResult<Option<Value>> {
    if domain.is_none() {
        return Ok(None);
    }
    label_record(tx, user_id, key, scope).await
}

/// `model.label.created` (no `before`) or `model.label.updated`, plus Barong's
/// `system.document.verified|rejected` for a private `document` label set to those values.
pub(super) async fn label_changed(
    tx: &Tx<'_>,
    domain: &EventDomain,
    before: Option<Value>,
    user_id: i64,
    key: &str,
    scope: &str,
) -> PgResult<()> {
    if domain.is_none() {
        return Ok(());
    }
    let Some(after) = label_record(tx, user_id, key, scope).await? else {
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
        record(tx, domain, &e).await?;
        let value = after["value"].as_str().unwrap_or_default().to_owned();
        if key == "document"
            && scope == "private"
            && matches!(value.as_str(), "verified" | "rejected")
        {
            record(
                tx,
                domain,
                &event::system(&format!("document.{value}"), after),
            )
            .await?;
        }
    }
    Ok(())
}

/// `system.user.email.confirmed`: `{user, domain}`.
pub(super) async fn email_confirmed(
    tx: &Tx<'_>,
    domain: &EventDomain,
    user: &User,
) -> PgResult<()> {
    let Some(d) = domain else {
        return Ok(());
    };
    let record_json = json!({ "user": user_json(tx, user).await?, "domain": d.as_str() });
    record(
        tx,
        domain,
        &event::system("user.email.confirmed", record_json),
    )
    .await
}
