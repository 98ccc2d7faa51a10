//! SQLite SQL for KYC profiles (see the trait section in `store/mod.rs`).

use deadpool_sqlite::rusqlite::{self, OptionalExtension, Row, params};

use super::{SqliteStore, events, now_text, relabelled, set_label, timestamp, user_by_id};
use crate::crypto::encryption::Encryptor;
use crate::domain::{NewProfile, Profile, ProfileChanges, ProfileState, StateRules};
use crate::store::profiles::{ProfileRow, SealedProfile, open, open_all, seal};
use crate::store::sql::Database;
use crate::store::{StoreResult, UserChange};

fn row_from(row: &Row<'_>) -> rusqlite::Result<ProfileRow> {
    Ok(ProfileRow {
        id: row.get("id")?,
        user_id: row.get("user_id")?,
        author: row.get("author")?,
        applicant_id: row.get("applicant_id")?,
        sealed: SealedProfile {
            first_name: row.get("first_name_encrypted")?,
            last_name: row.get("last_name_encrypted")?,
            dob: row.get("dob_encrypted")?,
            address: row.get("address_encrypted")?,
            postcode: row.get("postcode_encrypted")?,
            city: row.get("city_encrypted")?,
            country: row.get("country")?,
            metadata: row.get("metadata")?,
        },
        state: row.get("state")?,
        created_at: timestamp(row, "created_at")?,
        updated_at: timestamp(row, "updated_at")?,
    })
}

/// Barong's `state.exists` as a unique-constraint failure, so `map_error` names the column.
fn state_exists() -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE),
        Some("UNIQUE constraint failed: profiles.state".into()),
    )
}

/// [`open`] inside a transaction closure: an unreadable row aborts the transaction.
fn open_in_tx(row: ProfileRow, enc: &Encryptor) -> rusqlite::Result<Profile> {
    open(row, enc).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// The label follows the profile, then state and level follow the labels.
fn after_write(
    tx: &rusqlite::Transaction<'_>,
    domain: &crate::store::EventDomain,
    before: &crate::domain::User,
    state: i64,
    rules: &StateRules,
) -> rusqlite::Result<UserChange> {
    let name = ProfileState::from_code(state).map_or("drafted", ProfileState::as_str);
    set_label(tx, domain, before.id, "profile", name, "private")?;
    let change = relabelled(tx, domain, before, rules)?;
    Ok(change)
}

impl SqliteStore {
    pub(super) async fn profile_create(
        &self,
        user_id: i64,
        profile: &NewProfile,
        enc: &Encryptor,
        rules: &StateRules,
    ) -> StoreResult<(Profile, UserChange)> {
        let domain = self.event_domain();
        let s = seal(&profile.data, enc);
        let state = i64::from(profile.state.code());
        let open_state = profile.state.is_open();
        let enc = enc.clone();
        let (author, applicant, rules) = (
            profile.author.clone(),
            profile.applicant_id.clone(),
            rules.clone(),
        );
        let (row, change) = self
            .with_conn(move |c| {
                let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                if open_state {
                    let exists: bool = tx.query_row(
                        "SELECT EXISTS (SELECT 1 FROM profiles
                             WHERE user_id = ?1 AND state IN (0, 1))",
                        [user_id],
                        |r| r.get(0),
                    )?;
                    if exists {
                        return Err(state_exists());
                    }
                }
                let before = user_by_id(&tx, user_id)?;
                let row = tx.query_row(
                    "INSERT INTO profiles (user_id, author, applicant_id, first_name_encrypted,
                         last_name_encrypted, dob_encrypted, address_encrypted,
                         postcode_encrypted, city_encrypted, country, state, metadata,
                         created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?13)
                     RETURNING *",
                    params![
                        user_id,
                        author,
                        applicant,
                        s.first_name,
                        s.last_name,
                        s.dob,
                        s.address,
                        s.postcode,
                        s.city,
                        s.country,
                        state,
                        s.metadata,
                        now_text()
                    ],
                    row_from,
                )?;
                let change = after_write(&tx, &domain, &before, row.state, &rules)?;
                let profile = open_in_tx(row, &enc)?;
                events::profile_changed(&tx, &domain, None, &profile, &enc)?;
                tx.commit()?;
                Ok((profile, change))
            })
            .await?;
        Ok((row, change))
    }

    pub(super) async fn profile_update(
        &self,
        id: i64,
        changes: &ProfileChanges,
        enc: &Encryptor,
        rules: &StateRules,
    ) -> StoreResult<Option<(Profile, UserChange)>> {
        let domain = self.event_domain();
        let s = seal(&changes.data, enc);
        let state = changes.state.map(|v| i64::from(v.code()));
        let only = changes.only_in_state.map(|v| i64::from(v.code()));
        let (applicant, rules) = (changes.applicant_id.clone(), rules.clone());
        let enc = enc.clone();
        let result = self
            .with_conn(move |c| {
                let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let Some(found) = tx
                    .query_row(
                        "SELECT * FROM profiles WHERE id = ?1 AND (?2 IS NULL OR state = ?2)",
                        params![id, only],
                        row_from,
                    )
                    .optional()?
                else {
                    return Ok(None);
                };
                let user_id = found.user_id;
                let before = user_by_id(&tx, user_id)?;
                let row = tx.query_row(
                    "UPDATE profiles SET
                         first_name_encrypted = COALESCE(?2, first_name_encrypted),
                         last_name_encrypted = COALESCE(?3, last_name_encrypted),
                         dob_encrypted = COALESCE(?4, dob_encrypted),
                         address_encrypted = COALESCE(?5, address_encrypted),
                         postcode_encrypted = COALESCE(?6, postcode_encrypted),
                         city_encrypted = COALESCE(?7, city_encrypted),
                         country = COALESCE(?8, country),
                         metadata = COALESCE(?9, metadata),
                         state = COALESCE(?10, state),
                         applicant_id = COALESCE(?11, applicant_id),
                         updated_at = ?12
                     WHERE id = ?1 RETURNING *",
                    params![
                        id,
                        s.first_name,
                        s.last_name,
                        s.dob,
                        s.address,
                        s.postcode,
                        s.city,
                        s.country,
                        s.metadata,
                        state,
                        applicant,
                        now_text()
                    ],
                    row_from,
                )?;
                let change = after_write(&tx, &domain, &before, row.state, &rules)?;
                let (before, after) = (open_in_tx(found, &enc)?, open_in_tx(row, &enc)?);
                events::profile_changed(&tx, &domain, Some(&before), &after, &enc)?;
                tx.commit()?;
                Ok(Some((after, change)))
            })
            .await?;
        Ok(result)
    }

    /// Rows of one `WHERE` clause (with `?1` bound to `arg`), in id order.
    async fn profile_rows(
        &self,
        clause: &'static str,
        arg: rusqlite::types::Value,
    ) -> StoreResult<Vec<ProfileRow>> {
        self.with_conn(move |c| {
            let mut stmt = c.prepare(&format!("SELECT * FROM profiles WHERE {clause}"))?;
            stmt.query_map([arg], row_from)?.collect()
        })
        .await
    }

    pub(super) async fn profiles_of_user(
        &self,
        user_id: i64,
        enc: &Encryptor,
    ) -> StoreResult<Vec<Profile>> {
        let rows = self
            .profile_rows("user_id = ?1 ORDER BY id", user_id.into())
            .await?;
        open_all(rows, enc)
    }

    pub(super) async fn profile_of_user_in_state(
        &self,
        user_id: i64,
        state: ProfileState,
        enc: &Encryptor,
    ) -> StoreResult<Option<Profile>> {
        let code = i64::from(state.code());
        let row = self
            .with_conn(move |c| {
                c.query_row(
                    "SELECT * FROM profiles WHERE user_id = ?1 AND state = ?2
                     ORDER BY id DESC LIMIT 1",
                    params![user_id, code],
                    row_from,
                )
                .optional()
            })
            .await?;
        row.map(|r| open(r, enc)).transpose()
    }

    pub(super) async fn profile_by_id(
        &self,
        id: i64,
        enc: &Encryptor,
    ) -> StoreResult<Option<Profile>> {
        let rows = self.profile_rows("id = ?1", id.into()).await?;
        rows.into_iter().next().map(|r| open(r, enc)).transpose()
    }

    pub(super) async fn profile_by_applicant(
        &self,
        applicant_id: &str,
        enc: &Encryptor,
    ) -> StoreResult<Option<Profile>> {
        let rows = self
            .profile_rows(
                "applicant_id = ?1 ORDER BY id DESC LIMIT 1",
                applicant_id.to_owned().into(),
            )
            .await?;
        rows.into_iter().next().map(|r| open(r, enc)).transpose()
    }

    pub(super) async fn profiles_page(
        &self,
        limit: i64,
        offset: i64,
        enc: &Encryptor,
    ) -> StoreResult<(Vec<Profile>, i64)> {
        let (rows, total) = self
            .with_conn(move |c| {
                let total: i64 = c.query_row("SELECT COUNT(*) FROM profiles", [], |r| r.get(0))?;
                let mut stmt =
                    c.prepare("SELECT * FROM profiles ORDER BY id LIMIT ?1 OFFSET ?2")?;
                let rows = stmt
                    .query_map(params![limit, offset], row_from)?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok((rows, total))
            })
            .await?;
        Ok((open_all(rows, enc)?, total))
    }
}
