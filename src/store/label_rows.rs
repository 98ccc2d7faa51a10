//! The label writes other aggregates make (sign-up, phones, documents, profiles): a label set
//! with its event, and the user's state and level recomputed from the labels.

use super::access::all_levels;
use super::sql::{Exec, all, args};
use super::{EventDomain, StoreResult, events};
use crate::domain::{StateRules, derive_level, derive_state};

/// Sets (or overwrites) a label, without its event.
pub(super) async fn upsert_label(
    c: &mut impl Exec,
    user_id: i64,
    key: &str,
    value: &str,
    scope: &str,
) -> StoreResult<()> {
    c.execute(
        "INSERT INTO labels (user_id, key, value, scope, created_at, updated_at)
         VALUES ($1, $2, $3, $4, now(), now())
         ON CONFLICT (user_id, key, scope) DO UPDATE SET value = excluded.value,
             updated_at = excluded.updated_at",
        args![user_id, key, value, scope],
    )
    .await?;
    Ok(())
}

/// [`upsert_label`] with its `model.label.*` event (and Barong's `system.document.*`).
pub(super) async fn set_label(
    c: &mut impl Exec,
    domain: &EventDomain,
    user_id: i64,
    key: &str,
    value: &str,
    scope: &str,
) -> StoreResult<()> {
    let before = events::label_before(c, domain, user_id, key, scope).await?;
    upsert_label(c, user_id, key, value, scope).await?;
    events::label_changed(c, domain, before, user_id, key, scope).await
}

/// Recomputes state and level of a user from its labels.
pub(super) async fn recompute_state_level(
    c: &mut impl Exec,
    user_id: i64,
    rules: &StateRules,
) -> StoreResult<()> {
    let rows = c
        .query(
            "SELECT key, value, scope FROM labels WHERE user_id = $1",
            args![user_id],
        )
        .await?;
    let labels: Vec<(String, String, String)> = all(rows, |r| Ok((r.at(0)?, r.at(1)?, r.at(2)?)))?;
    let levels = all_levels(c).await?;
    let state = derive_state(&labels, rules);
    let level = derive_level(&labels, &levels);
    c.execute(
        "UPDATE users SET state = $2, level = $3, updated_at = now()
         WHERE id = $1 AND (state <> $2 OR level <> $3)",
        args![user_id, state, level],
    )
    .await?;
    Ok(())
}
