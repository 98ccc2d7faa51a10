//! PostgreSQL SQL for KYC profiles (see the trait section in `store/mod.rs`).

use tokio_postgres::Row;

use super::{PostgresStore, Tx, events, map_error, relabelled, set_label, user_by_id};
use crate::crypto::encryption::Encryptor;
use crate::domain::{NewProfile, Profile, ProfileChanges, ProfileState, StateRules, User};
use crate::store::profiles::{ProfileRow, SealedProfile, open, open_all, seal};
use crate::store::sql::Database;
use crate::store::{StoreError, StoreResult, UserChange};

fn row_from(row: &Row) -> ProfileRow {
    ProfileRow {
        id: row.get("id"),
        user_id: row.get("user_id"),
        author: row.get("author"),
        applicant_id: row.get("applicant_id"),
        sealed: SealedProfile {
            first_name: row.get("first_name_encrypted"),
            last_name: row.get("last_name_encrypted"),
            dob: row.get("dob_encrypted"),
            address: row.get("address_encrypted"),
            postcode: row.get("postcode_encrypted"),
            city: row.get("city_encrypted"),
            country: row.get("country"),
            metadata: row.get("metadata"),
        },
        state: i64::from(row.get::<_, i16>("state")),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    }
}

/// The label follows the profile, then state and level follow the labels.
async fn after_write(
    tx: &Tx<'_>,
    domain: &crate::store::EventDomain,
    before: &User,
    state: i64,
    rules: &StateRules,
) -> Result<UserChange, tokio_postgres::Error> {
    let name = ProfileState::from_code(state).map_or("drafted", ProfileState::as_str);
    set_label(tx, domain, before.id, "profile", name, "private").await?;
    let change = relabelled(tx, domain, before, rules).await?;
    Ok(change)
}

impl PostgresStore {
    pub(super) async fn profile_create(
        &self,
        user_id: i64,
        profile: &NewProfile,
        enc: &Encryptor,
        rules: &StateRules,
    ) -> StoreResult<(Profile, UserChange)> {
        let domain = self.event_domain();
        let s = seal(&profile.data, enc);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_error)?;
        // One writer per user at a time, so the "one open profile" check below holds.
        tx.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", &[&user_id])
            .await
            .map_err(map_error)?;
        if profile.state.is_open() {
            let exists: bool = tx
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM profiles WHERE user_id = $1 AND state IN (0, 1))",
                    &[&user_id],
                )
                .await
                .map_err(map_error)?
                .get(0);
            if exists {
                return Err(StoreError::Conflict(crate::store::Clash::OpenProfile));
            }
        }
        let result = async {
            let before = user_by_id(&tx, user_id).await?;
            let row = tx
                .query_one(
                    "INSERT INTO profiles (user_id, author, applicant_id, first_name_encrypted,
                         last_name_encrypted, dob_encrypted, address_encrypted,
                         postcode_encrypted, city_encrypted, country, state, metadata)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                     RETURNING *",
                    &[
                        &user_id,
                        &profile.author,
                        &profile.applicant_id,
                        &s.first_name,
                        &s.last_name,
                        &s.dob,
                        &s.address,
                        &s.postcode,
                        &s.city,
                        &s.country,
                        &profile.state.code(),
                        &s.metadata,
                    ],
                )
                .await?;
            let row = row_from(&row);
            let change = after_write(&tx, &domain, &before, row.state, rules).await?;
            Ok::<_, tokio_postgres::Error>((row, change))
        }
        .await
        .map_err(map_error)?;
        let profile = open(result.0, enc)?;
        events::profile_changed(&tx, &domain, None, &profile, enc)
            .await
            .map_err(map_error)?;
        tx.commit().await.map_err(map_error)?;
        Ok((profile, result.1))
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
        let state = changes.state.map(ProfileState::code);
        let only = changes.only_in_state.map(ProfileState::code);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_error)?;
        let result = async {
            let Some(found) = tx
                .query_opt(
                    "SELECT * FROM profiles
                     WHERE id = $1 AND ($2::smallint IS NULL OR state = $2) FOR UPDATE",
                    &[&id, &only],
                )
                .await?
            else {
                return Ok(None);
            };
            let found = row_from(&found);
            let user_id = found.user_id;
            let before = user_by_id(&tx, user_id).await?;
            let row = tx
                .query_one(
                    "UPDATE profiles SET
                         first_name_encrypted = COALESCE($2, first_name_encrypted),
                         last_name_encrypted = COALESCE($3, last_name_encrypted),
                         dob_encrypted = COALESCE($4, dob_encrypted),
                         address_encrypted = COALESCE($5, address_encrypted),
                         postcode_encrypted = COALESCE($6, postcode_encrypted),
                         city_encrypted = COALESCE($7, city_encrypted),
                         country = COALESCE($8, country),
                         metadata = COALESCE($9, metadata),
                         state = COALESCE($10, state),
                         applicant_id = COALESCE($11, applicant_id),
                         updated_at = now()
                     WHERE id = $1 RETURNING *",
                    &[
                        &id,
                        &s.first_name,
                        &s.last_name,
                        &s.dob,
                        &s.address,
                        &s.postcode,
                        &s.city,
                        &s.country,
                        &s.metadata,
                        &state,
                        &changes.applicant_id,
                    ],
                )
                .await?;
            let row = row_from(&row);
            let change = after_write(&tx, &domain, &before, row.state, rules).await?;
            Ok::<_, tokio_postgres::Error>(Some((found, row, change)))
        }
        .await
        .map_err(map_error)?;
        let Some((found, row, change)) = result else {
            return Ok(None);
        };
        let (before, after) = (open(found, enc)?, open(row, enc)?);
        events::profile_changed(&tx, &domain, Some(&before), &after, enc)
            .await
            .map_err(map_error)?;
        tx.commit().await.map_err(map_error)?;
        Ok(Some((after, change)))
    }

    async fn profile_rows(
        &self,
        sql: &str,
        args: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> StoreResult<Vec<ProfileRow>> {
        let client = self.client().await?;
        let rows = client.query(sql, args).await.map_err(map_error)?;
        Ok(rows.iter().map(row_from).collect())
    }

    pub(super) async fn profiles_of_user(
        &self,
        user_id: i64,
        enc: &Encryptor,
    ) -> StoreResult<Vec<Profile>> {
        let rows = self
            .profile_rows(
                "SELECT * FROM profiles WHERE user_id = $1 ORDER BY id",
                &[&user_id],
            )
            .await?;
        open_all(rows, enc)
    }

    pub(super) async fn profile_of_user_in_state(
        &self,
        user_id: i64,
        state: ProfileState,
        enc: &Encryptor,
    ) -> StoreResult<Option<Profile>> {
        let rows = self
            .profile_rows(
                "SELECT * FROM profiles WHERE user_id = $1 AND state = $2
                 ORDER BY id DESC LIMIT 1",
                &[&user_id, &state.code()],
            )
            .await?;
        rows.into_iter().next().map(|r| open(r, enc)).transpose()
    }

    pub(super) async fn profile_by_id(
        &self,
        id: i64,
        enc: &Encryptor,
    ) -> StoreResult<Option<Profile>> {
        let rows = self
            .profile_rows("SELECT * FROM profiles WHERE id = $1", &[&id])
            .await?;
        rows.into_iter().next().map(|r| open(r, enc)).transpose()
    }

    pub(super) async fn profile_by_applicant(
        &self,
        applicant_id: &str,
        enc: &Encryptor,
    ) -> StoreResult<Option<Profile>> {
        let rows = self
            .profile_rows(
                "SELECT * FROM profiles WHERE applicant_id = $1 ORDER BY id DESC LIMIT 1",
                &[&applicant_id],
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
        let client = self.client().await?;
        let total: i64 = client
            .query_one("SELECT COUNT(*) FROM profiles", &[])
            .await
            .map_err(map_error)?
            .get(0);
        let rows = client
            .query(
                "SELECT * FROM profiles ORDER BY id LIMIT $1 OFFSET $2",
                &[&limit, &offset],
            )
            .await
            .map_err(map_error)?;
        Ok((open_all(rows.iter().map(row_from).collect(), enc)?, total))
    }
}
